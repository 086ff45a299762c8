//! The f32 operations between the matmuls, each written to round as ggml's CPU ops do
//! (sums in the same order and precision), so the activations fed to the next quantized
//! matmul match llama.cpp's as closely as possible.

use super::blocks::QK;
use super::matmul::{Blocks, QMatrix};
use super::weights::Config;

/// Row `id` of a Q8_0 embedding table, dequantized (`ggml_get_rows`). A Q4_1 table is
/// dequantized the same way (`d * q + m`).
pub fn embedding_row(m: &QMatrix, id: usize, out: &mut [f32]) {
    let bpr = m.cols / QK;
    match &m.blocks {
        Blocks::Q8_0(b) => {
            for (blk, o) in b[id * bpr..(id + 1) * bpr]
                .iter()
                .zip(out.chunks_exact_mut(QK))
            {
                blk.dequantize(o);
            }
        }
        Blocks::Q4_1(b) => {
            for (blk, o) in b[id * bpr..(id + 1) * bpr]
                .iter()
                .zip(out.chunks_exact_mut(QK))
            {
                let (d, mm) = (super::blocks::h2f(blk.d), super::blocks::h2f(blk.m));
                for (i, v) in o.iter_mut().enumerate() {
                    let q = if i < 16 {
                        blk.qs[i] & 15
                    } else {
                        blk.qs[i - 16] >> 4
                    };
                    *v = q as f32 * d + mm;
                }
            }
        }
    }
}

/// `ggml_rms_norm` then `ggml_mul` by the weight, per row of `e` values.
pub fn rms_norm(x: &[f32], e: usize, eps: f32, w: &[f32], out: &mut [f32]) {
    for (row, o) in x.chunks_exact(e).zip(out.chunks_exact_mut(e)) {
        let sum: f64 = row.iter().map(|&v| (v * v) as f64).sum();
        let mean = (sum / e as f64) as f32;
        let scale = 1.0 / (mean + eps).sqrt();
        for ((o, &v), &wv) in o.iter_mut().zip(row).zip(w) {
            *o = (v * scale) * wv;
        }
    }
}

pub fn add_into(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// ggml's vector `expf` (`ggml_v_expf`, the AVX-512 form llama.cpp's x86 build runs for
/// softmax and SiLU: a degree-5 polynomial on the reduced argument, scaled by 2^n), one
/// lane at a time. It differs from libm's `expf` in the last bit now and then, which is
/// why it is mirrored rather than replaced by `f32::exp`.
/// The constants of [`v_expf`] by their bits (ggml writes them as hex floats).
mod expc {
    pub const R: u32 = 0x4b40_0000; // 0x1.8p23: adding it rounds to an integer
    pub const LOG2E: u32 = 0x3fb8_aa3b; // 0x1.715476p+0
    pub const LN2_HI: u32 = 0x3f31_7200; // 0x1.62e4p-1
    pub const LN2_LO: u32 = 0x35bf_be8e; // 0x1.7f7d1cp-20
    pub const C5: u32 = 0x3c07_2010; // 0x1.0e4020p-7
    pub const C4: u32 = 0x3d2b_9f17; // 0x1.573e2ep-5
    pub const C3: u32 = 0x3e2a_af33; // 0x1.555e66p-3
    pub const C2: u32 = 0x3eff_fedb; // 0x1.fffdb6p-2
    pub const C1: u32 = 0x3f7f_fff6; // 0x1.ffffecp-1
}

#[inline(always)]
fn v_expf(x: f32) -> f32 {
    use expc::*;
    let c = f32::from_bits;
    let z = x.mul_add(c(LOG2E), c(R));
    let n = z - c(R);
    let b = (-n).mul_add(c(LN2_LO), (-n).mul_add(c(LN2_HI), x));
    if n.abs() > 192.0 {
        return if n > 0.0 { f32::INFINITY } else { 0.0 };
    }
    let u = b * b;
    let j = c(C5)
        .mul_add(b, c(C4))
        .mul_add(u, c(C3).mul_add(b, c(C2)))
        .mul_add(u, c(C1).mul_add(b, 1.0));
    // _mm512_scalef_ps(j, n): j * 2^n rounded once (exact in f64, then one rounding).
    (j as f64 * 2f64.powi(n as i32)) as f32
}

#[inline(always)]
fn swiglu_body(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = (x / (1.0 + v_expf(0.0 - x))) * u;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn swiglu_fma(gate: &mut [f32], up: &[f32]) {
    swiglu_body(gate, up)
}

/// `silu(gate) * up` into `gate` (`ggml_swiglu`, SiLU as `x / (1 + expf(-x))`).
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::has_avx2() {
            // SAFETY: avx2 and fma are present (run-time check above).
            return unsafe { swiglu_fma(gate, up) };
        }
    }
    swiglu_body(gate, up)
}

/// llama.cpp's RoPE for llama (NORM mode): pairs `(x[2i], x[2i+1])` rotated by
/// `pos * base^(-2i/dims)`, the angle advanced by repeated multiplication with
/// `theta_scale` as ggml's rope cache computes it (not one `powf` per pair).
pub struct Rope {
    theta_scale: f32,
    dims: usize,
}

impl Rope {
    pub fn new(base: f32, dims: usize) -> Rope {
        Rope {
            theta_scale: base.powf(-2.0 / dims as f32),
            dims,
        }
    }

    /// Rotates one head in place. The products are fused as in llama.cpp's AVX-512 build
    /// (one `vfmaddsub`: `x0' = fma(c, x0, -(s * x1))`, `x1' = fma(c, x1, s * x0)`).
    pub fn apply(&self, x: &mut [f32], pos: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            if super::simd::has_avx2() {
                // SAFETY: avx2 and fma are present (run-time check above).
                return unsafe { self.apply_fma(x, pos) };
            }
        }
        self.apply_body(x, pos)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn apply_fma(&self, x: &mut [f32], pos: usize) {
        self.apply_body(x, pos)
    }

    #[inline(always)]
    fn apply_body(&self, x: &mut [f32], pos: usize) {
        let mut theta = pos as f32;
        for i in (0..self.dims).step_by(2) {
            let (s, c) = theta.sin_cos();
            let (x0, x1) = (x[i], x[i + 1]);
            x[i] = c.mul_add(x0, -(s * x1));
            x[i + 1] = c.mul_add(x1, s * x0);
            theta *= self.theta_scale;
        }
    }
}

/// `_mm512_reduce_add_ps` as GCC expands it: halves, quarters, then pairs.
#[inline(always)]
fn reduce16(a: &[f32; 16]) -> f32 {
    let mut h = [0f32; 8];
    for i in 0..8 {
        h[i] = a[i + 8] + a[i];
    }
    let q = [h[4] + h[0], h[5] + h[1], h[6] + h[2], h[7] + h[3]];
    let p = [q[0] + q[2], q[1] + q[3]];
    p[0] + p[1]
}

/// `ggml_vec_dot_f32` as llama.cpp's AVX-512 build runs it: four 16-lane FMA
/// accumulators over steps of 64 values (value `i` in accumulator `(i % 64) / 16`, lane
/// `i % 16`), combined as (0+2) + (1+3), reduced by [`reduce16`]. `a.len()` must be a
/// multiple of 64 (callers zero-pad, which adds exact zeros).
#[inline(always)]
fn vec_dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 64];
    for (ca, cb) in a.chunks_exact(64).zip(b.chunks_exact(64)) {
        for i in 0..64 {
            acc[i] = ca[i].mul_add(cb[i], acc[i]);
        }
    }
    reduce64(&acc)
}

/// The reduction of [`vec_dot_f32`]'s four accumulators.
#[inline(always)]
fn reduce64(acc: &[f32; 64]) -> f32 {
    let mut x = [0f32; 16];
    for l in 0..16 {
        x[l] = (acc[l] + acc[32 + l]) + (acc[16 + l] + acc[48 + l]);
    }
    reduce16(&x)
}

/// One position's attention over `n_kv` cached positions, all heads. llama.cpp pads its KV
/// length to a multiple of 64 or more (masked cells add exact zeros), so lane `j % 64` of
/// `ggml_vec_dot_f32` is where position `j` lands, as here. `batched` says the
/// pass runs several tokens: llama.cpp then computes `softmax · V` with tinyBLAS (one
/// 16-lane FMA accumulator per output, [`reduce16`]) instead of `ggml_vec_dot_f32`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn attention_body(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_kv: usize,
    c: &Config,
    scale: f32,
    batched: bool,
    out: &mut [f32],
) {
    let (hd, kvw) = (c.head_dim, c.n_head_kv * c.head_dim);
    let group = c.n_head / c.n_head_kv;
    let mut p = vec![0f32; n_kv];
    let lanes = if batched { 16 } else { 64 };
    let mut acc = vec![0f32; lanes * hd];
    let padded_hd = hd.div_ceil(64) * 64;
    let mut qpad = vec![0f32; padded_hd];
    let mut kpad = vec![0f32; padded_hd];
    for h in 0..c.n_head {
        let kvh = h / group;
        qpad[..hd].copy_from_slice(&q[h * hd..(h + 1) * hd]);
        let mut max = f32::NEG_INFINITY;
        for (j, pj) in p.iter_mut().enumerate() {
            kpad[..hd].copy_from_slice(&k[j * kvw + kvh * hd..][..hd]);
            *pj = vec_dot_f32(&kpad, &qpad) * scale;
            max = max.max(*pj);
        }
        // ggml_vec_soft_max_f32: exp(x - max) 16 at a time, each 16 summed as a 512-bit
        // reduction and added in f64; the masked tail is exp(-inf) = 0, which the
        // zero-padded last chunk reproduces.
        let mut sum = 0f64;
        for chunk in p.chunks_mut(16) {
            let mut l16 = [0f32; 16];
            for (l, pj) in l16.iter_mut().zip(chunk.iter_mut()) {
                *pj = v_expf(*pj - max);
                *l = *pj;
            }
            sum += reduce16(&l16) as f64;
        }
        let inv = (1.0 / sum) as f32;
        p.iter_mut().for_each(|pj| *pj *= inv);
        // out[d] = sum_j p[j] v[j][d] (llama.cpp's transposed V: one dot product over j).
        acc.iter_mut().for_each(|a| *a = 0.0);
        for (j, &pj) in p.iter().enumerate() {
            let vj = &v[j * kvw + kvh * hd..][..hd];
            let lane = &mut acc[(j % lanes) * hd..][..hd];
            for (a, &vd) in lane.iter_mut().zip(vj) {
                *a = pj.mul_add(vd, *a);
            }
        }
        let oh = &mut out[h * hd..(h + 1) * hd];
        for (d, o) in oh.iter_mut().enumerate() {
            *o = if batched {
                let mut l16 = [0f32; 16];
                for (l, x) in l16.iter_mut().enumerate() {
                    *x = acc[l * hd + d];
                }
                reduce16(&l16)
            } else {
                let mut l64 = [0f32; 64];
                for (l, x) in l64.iter_mut().enumerate() {
                    *x = acc[l * hd + d];
                }
                reduce64(&l64)
            };
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn attention_fma(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_kv: usize,
    c: &Config,
    scale: f32,
    batched: bool,
    out: &mut [f32],
) {
    attention_body(q, k, v, n_kv, c, scale, batched, out)
}

/// Causal attention of one position (`q`: all heads) over the first `n_kv` cached
/// positions. With FMA in hardware the same code compiles to fused instructions (else
/// `mul_add` is a slow but exact library call).
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n_kv: usize,
    c: &Config,
    scale: f32,
    batched: bool,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::has_avx2() {
            // SAFETY: avx2 and fma are present (run-time check above).
            return unsafe { attention_fma(q, k, v, n_kv, c, scale, batched, out) };
        }
    }
    attention_body(q, k, v, n_kv, c, scale, batched, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_expf_is_within_two_ulps_of_libm() {
        for i in -2000..=800 {
            let x = i as f32 * 0.05 + 0.013;
            let (a, b) = (v_expf(x), x.exp());
            let ulps = (a.to_bits() as i64 - b.to_bits() as i64).abs();
            assert!(ulps <= 2 || (b == 0.0 && a < 1e-38), "x={x}: {a} vs {b}");
        }
        assert_eq!(v_expf(f32::NEG_INFINITY), 0.0);
        assert_eq!(v_expf(0.0), 1.0);
    }

    #[test]
    fn rms_norm_scales_rows_to_unit_mean_square_times_the_weight() {
        let x = [3.0f32, 4.0, 0.0, 0.0];
        let mut out = [0f32; 4];
        rms_norm(&x, 4, 0.0, &[1.0, 2.0, 1.0, 1.0], &mut out);
        assert!(
            (out[0] - 1.2).abs() < 1e-6 && (out[1] - 3.2).abs() < 1e-6,
            "{out:?}"
        );
    }
}
