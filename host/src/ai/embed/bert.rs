//! A lean BERT encoder forward, numerically the same model as candle-transformers'
//! `BertModel` (and Hugging Face's `BertModel`) but shaped for CPU throughput at batch 32:
//! hidden states stay 2-D `(tokens, hidden)` so every dense layer is one GEMM, Q/K/V are
//! one fused GEMM with the 1/sqrt(head_dim) scale folded into the query weights at load,
//! the products and element-wise steps are ours ([`super::ops`]: each call says how it
//! uses threads, and bias, residual, activation and mask ride along the GEMMs), the
//! softmax and layer norms are candle-nn's fused kernels, and one copy per attention turns
//! Q/K/V into per-head layout. The generic path ran a five-op softmax
//! over `(b, heads, seq, seq)` buffers, and 19% of its profile was the kernel faulting in
//! fresh tensor buffers.

use super::ops::{embeddings, per_head, Dense, Parallelism, Post};
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, HiddenAct};

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
    act: Post<'static>,
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
                qkv: Dense::from_parts(&w, &b)?,
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
            act: match c.hidden_act {
                HiddenAct::Gelu => Post::GeluErf,
                HiddenAct::Relu => Post::Relu,
                HiddenAct::GeluApproximate => Post::GeluTanh,
            },
        })
    }

    /// `ids`: `b · seq` token ids (row-major), `mask`: `b · seq` of 0/1. Returns the last
    /// hidden states `(b · seq, hidden)`. `par`: how the matrix products split across the
    /// current rayon pool.
    pub fn forward(
        &self,
        ids: &[u32],
        mask: &[f32],
        seq: usize,
        par: Parallelism,
    ) -> Result<Tensor> {
        // `embeddings` checks `seq` against the position table and the ids against it.
        if ids.len() != mask.len() {
            candle_core::bail!("{} token ids for a mask of {}", ids.len(), mask.len());
        }
        let x = embeddings(&self.word, &self.position, &self.token_type0, ids, seq)?;
        let b = ids.len() / seq;
        let mut x = self.emb_norm.forward(&x)?;
        // Additive mask: 0 for tokens, f32::MIN for padding (as HF).
        let add_mask: Vec<f32> = mask.iter().map(|m| (1.0 - m) * f32::MIN).collect();
        for l in &self.layers {
            x = self.layer(l, &x, &add_mask, b, seq, par)?;
        }
        Ok(x)
    }

    fn layer(
        &self,
        l: &Layer,
        x: &Tensor,
        mask: &[f32],
        b: usize,
        seq: usize,
        par: Parallelism,
    ) -> Result<Tensor> {
        let (nh, dh) = (self.heads, self.head_dim);
        // (b*seq, 3h) → (3, b, heads, seq, head_dim): one copy for all three.
        let qkv = l
            .qkv
            .forward(x, Post::None, par)?
            .reshape((b, seq, 3, nh, dh))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let scores = per_head(&q, &k, true, Some(mask), par)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let ctx = per_head(&probs, &v, false, None, par)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * seq, nh * dh))?;
        let a = l
            .attn_norm
            .forward(&l.attn_out.forward(&ctx, Post::Residual(x), par)?)?;
        let i = l.inter.forward(&a, self.act, par)?;
        l.out_norm
            .forward(&l.out.forward(&i, Post::Residual(&a), par)?)
    }
}
