//! The llama forward pass over [`Weights`], in llama.cpp's order of operations so greedy
//! decoding follows it: token embeddings dequantized from Q8_0, per layer RMSNorm (sum of
//! squares in f64, as ggml) × weight, Q/K/V projections, RoPE (NORM mode: adjacent pairs,
//! angles advanced by repeated multiplication as ggml's rope cache does), causal GQA
//! attention over an F32 KV cache, output projection and residual, RMSNorm, SwiGLU MLP,
//! residual; final RMSNorm and the (possibly tied) output layer for the last position.
//! The f32 dot products of attention add in the lanes of llama.cpp's AVX-512 f32 kernels
//! (`ggml_vec_dot_f32`, tinyBLAS for batches), so rounding follows it as far as possible.

use super::math;
use super::weights::Weights;

pub struct Model {
    pub w: Weights,
    /// Per layer: keys and values, `n_head_kv * head_dim` floats per position.
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

impl Model {
    pub fn new(w: Weights) -> Model {
        let n = w.cfg.n_layer;
        Model {
            w,
            k: vec![Vec::new(); n],
            v: vec![Vec::new(); n],
            len: 0,
        }
    }

    /// Positions in the KV cache.
    pub fn cached(&self) -> usize {
        self.len
    }

    /// Runs `ids` at positions `pos..` (dropping cached positions from `pos` on) and
    /// returns the logits of the last one.
    pub fn forward(&mut self, ids: &[u32], pos: usize) -> Result<Vec<f32>, String> {
        let c = self.w.cfg.clone();
        if ids.is_empty() {
            return Err("no tokens to run".into());
        }
        if pos > self.len {
            return Err(format!(
                "position {pos} is past the {} cached positions",
                self.len
            ));
        }
        let kvw = c.n_head_kv * c.head_dim;
        for l in 0..c.n_layer {
            self.k[l].truncate(pos * kvw);
            self.v[l].truncate(pos * kvw);
        }
        self.len = pos;
        let n = ids.len();
        let e = c.n_embd;
        let mut x = vec![0f32; n * e];
        for (t, &id) in ids.iter().enumerate() {
            if id as usize >= c.vocab {
                return Err(format!(
                    "token id {id} is outside the vocabulary of {}",
                    c.vocab
                ));
            }
            math::embedding_row(&self.w.embd, id as usize, &mut x[t * e..(t + 1) * e]);
        }
        let rope = math::Rope::new(c.rope_base, c.rope_dim);
        let mut cur = vec![0f32; n * e];
        let mut q = vec![0f32; n * e];
        let mut kk = vec![0f32; n * kvw];
        let mut vv = vec![0f32; n * kvw];
        let mut attn = vec![0f32; n * e];
        let mut gate = vec![0f32; n * c.n_ff];
        let mut up = vec![0f32; n * c.n_ff];
        let scale = 1.0 / (c.head_dim as f32).sqrt();
        for l in 0..c.n_layer {
            let ly = &self.w.layers[l];
            // The last layer only needs the last position after attention (llama.cpp
            // selects the output rows there too).
            let last = l + 1 == c.n_layer;
            math::rms_norm(&x, e, c.eps, &ly.attn_norm, &mut cur);
            ly.wq.matmul(&cur, &mut q);
            ly.wk.matmul(&cur, &mut kk);
            ly.wv.matmul(&cur, &mut vv);
            for t in 0..n {
                let p = pos + t;
                for h in q[t * e..(t + 1) * e].chunks_exact_mut(c.head_dim) {
                    rope.apply(h, p);
                }
                for h in kk[t * kvw..(t + 1) * kvw].chunks_exact_mut(c.head_dim) {
                    rope.apply(h, p);
                }
            }
            self.k[l].extend_from_slice(&kk);
            self.v[l].extend_from_slice(&vv);
            let t0 = if last { n - 1 } else { 0 };
            for t in t0..n {
                math::attention(
                    &q[t * e..(t + 1) * e],
                    &self.k[l],
                    &self.v[l],
                    pos + t + 1,
                    &c,
                    scale,
                    n > 1,
                    &mut attn[t * e..(t + 1) * e],
                );
            }
            let rows = if last { 1 } else { n };
            let (xs, attn_s) = (&mut x[t0 * e..], &attn[t0 * e..]);
            let o = &mut cur[..rows * e];
            ly.wo.matmul(attn_s, o);
            math::add_into(xs, o);
            math::rms_norm(xs, e, c.eps, &ly.ffn_norm, o);
            let (g, u) = (&mut gate[..rows * c.n_ff], &mut up[..rows * c.n_ff]);
            ly.gate.matmul(o, g);
            ly.up.matmul(o, u);
            math::swiglu(g, u);
            ly.down.matmul(g, o);
            math::add_into(xs, o);
        }
        self.len = pos + n;
        let xl = &x[(n - 1) * e..];
        let mut normed = vec![0f32; e];
        math::rms_norm(xl, e, c.eps, &self.w.output_norm, &mut normed);
        let out = self.w.output();
        let mut logits = vec![0f32; out.rows];
        out.matmul(&normed, &mut logits);
        Ok(logits)
    }
}
