//! A lean BERT encoder forward over candle ops, numerically the same model as
//! candle-transformers' `BertModel` (and Hugging Face's `BertModel`) but shaped for CPU
//! throughput at batch 32: hidden states stay 2-D `(tokens, hidden)` so every dense layer is
//! one GEMM, Q/K/V are one fused GEMM with the 1/sqrt(head_dim) scale folded into the query
//! weights at load, the softmax and layer norms are candle's fused kernels, and one copy
//! per attention turns Q/K/V into per-head layout. The generic path ran a five-op softmax
//! over `(b, heads, seq, seq)` buffers, and 19% of its profile was the kernel faulting in
//! fresh tensor buffers.

use candle_core::{DType, Device, Result, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};

/// A dense layer with its weight stored transposed `(in, out)` so the GEMM reads it
/// contiguously.
struct Dense {
    wt: Tensor,
    b: Tensor,
}

impl Dense {
    fn load(vb: &VarBuilder, inp: usize, out: usize) -> Result<Dense> {
        let w = vb.get((out, inp), "weight")?;
        let b = vb.get(out, "bias")?;
        Dense::from_parts(&w, b)
    }
    fn from_parts(w: &Tensor, b: Tensor) -> Result<Dense> {
        Ok(Dense {
            wt: w.t()?.contiguous()?,
            b,
        })
    }
    /// `x`: `(tokens, in)` → `(tokens, out)`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.wt)?.broadcast_add(&self.b)
    }
}

struct Norm {
    w: Tensor,
    b: Tensor,
    eps: f32,
}

impl Norm {
    fn load(vb: &VarBuilder, size: usize, eps: f64) -> Result<Norm> {
        Ok(Norm {
            w: vb.get(size, "weight")?,
            b: vb.get(size, "bias")?,
            eps: eps as f32,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::layer_norm(x, &self.w, &self.b, self.eps)
    }
}

struct Layer {
    qkv: Dense,
    attn_out: Dense,
    attn_norm: Norm,
    inter: Dense,
    out: Dense,
    out_norm: Norm,
}

pub struct Bert {
    word: Tensor,
    position: Tensor,
    token_type0: Tensor,
    emb_norm: Norm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    act: HiddenAct,
}

impl Bert {
    /// Loads the weights under `bert.` or the root, as candle-transformers does.
    pub fn load(vb: VarBuilder, c: &Config) -> Result<Bert> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let h = c.hidden_size;
        if c.num_attention_heads == 0 || !h.is_multiple_of(c.num_attention_heads) {
            candle_core::bail!(
                "config.json: hidden_size {h} is not a multiple of num_attention_heads {}",
                c.num_attention_heads
            );
        }
        let head_dim = h / c.num_attention_heads;
        let e = vb.pp("embeddings");
        let word = e.get((c.vocab_size, h), "word_embeddings.weight")?;
        let position = e.get((c.max_position_embeddings, h), "position_embeddings.weight")?;
        let token_type0 = e
            .get((c.type_vocab_size, h), "token_type_embeddings.weight")?
            .narrow(0, 0, 1)?
            .contiguous()?;
        let emb_norm = Norm::load(&e.pp("LayerNorm"), h, c.layer_norm_eps)?;
        let scale = 1.0 / (head_dim as f64).sqrt();
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let s = l.pp("attention.self");
            let part = |name: &str| -> Result<(Tensor, Tensor)> {
                let p = s.pp(name);
                Ok((p.get((h, h), "weight")?, p.get(h, "bias")?))
            };
            let (qw, qb) = part("query")?;
            let (kw, kb) = part("key")?;
            let (vw, vb_) = part("value")?;
            // Scaling Q scales the scores: (sQ)K^T = s(QK^T).
            let w = Tensor::cat(&[(qw * scale)?, kw, vw], 0)?;
            let b = Tensor::cat(&[(qb * scale)?, kb, vb_], 0)?;
            layers.push(Layer {
                qkv: Dense::from_parts(&w, b)?,
                attn_out: Dense::load(&l.pp("attention.output.dense"), h, h)?,
                attn_norm: Norm::load(&l.pp("attention.output.LayerNorm"), h, c.layer_norm_eps)?,
                inter: Dense::load(&l.pp("intermediate.dense"), h, c.intermediate_size)?,
                out: Dense::load(&l.pp("output.dense"), c.intermediate_size, h)?,
                out_norm: Norm::load(&l.pp("output.LayerNorm"), h, c.layer_norm_eps)?,
            });
        }
        Ok(Bert {
            word,
            position,
            token_type0,
            emb_norm,
            layers,
            heads: c.num_attention_heads,
            head_dim,
            act: c.hidden_act,
        })
    }

    /// `ids`: `(b * seq)` token ids (row-major), `mask`: `(b, seq)` of 0/1 as f32.
    /// Returns the last hidden states `(b, seq, hidden)`.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor, dev: &Device) -> Result<Tensor> {
        let (b, seq) = mask.dims2()?;
        let h = self.heads * self.head_dim;
        if seq > self.position.dim(0)? {
            candle_core::bail!(
                "sequence of {seq} tokens exceeds max_position_embeddings {}",
                self.position.dim(0)?
            );
        }
        let pos = self.position.narrow(0, 0, seq)?;
        let x = self
            .word
            .index_select(ids, 0)?
            .reshape((b, seq, h))?
            .broadcast_add(&pos)?
            .broadcast_add(&self.token_type0)?;
        let mut x = self.emb_norm.forward(&x)?.reshape((b * seq, h))?;
        // Additive mask (b, 1, 1, seq): 0 for tokens, f32::MIN for padding (as HF).
        let add_mask = ((mask.ones_like()? - mask)? * f64::from(f32::MIN))?
            .reshape((b, 1, 1, seq))?
            .to_device(dev)?;
        for l in &self.layers {
            x = self.layer(l, &x, &add_mask, b, seq)?;
        }
        x.reshape((b, seq, h))
    }

    fn layer(&self, l: &Layer, x: &Tensor, mask: &Tensor, b: usize, seq: usize) -> Result<Tensor> {
        let (nh, dh) = (self.heads, self.head_dim);
        // (b*seq, 3h) → (3, b, heads, seq, head_dim): one copy for all three.
        let qkv = l
            .qkv
            .forward(x)?
            .reshape((b, seq, 3, nh, dh))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let scores = q.matmul(&k.t()?)?.broadcast_add(mask)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * seq, nh * dh))?;
        let a = l.attn_norm.forward(&(l.attn_out.forward(&ctx)? + x)?)?;
        let i = l.inter.forward(&a)?;
        let i = match self.act {
            HiddenAct::Gelu => i.gelu_erf()?,
            HiddenAct::GeluApproximate => i.gelu()?,
            HiddenAct::Relu => i.relu()?,
        };
        l.out_norm.forward(&(l.out.forward(&i)? + a)?)
    }
}

/// Mean over the tokens the mask keeps, then L2 normalisation (sentence-transformers'
/// Pooling(mean) → Normalize). `hidden`: `(b, seq, h)`, `mask`: `(b, seq)` f32.
pub fn mean_pool_normalize(hidden: &Tensor, mask: &Tensor) -> Result<Vec<Vec<f32>>> {
    let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&m)?.sum(1)?;
    let counts = m.sum(1)?.clamp(1e-9f32, f32::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12f32, f32::MAX)?;
    mean.broadcast_div(&norm)?.to_vec2::<f32>()
}
