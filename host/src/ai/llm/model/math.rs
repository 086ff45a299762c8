//! The f32 operations between the matmuls, each written to round as ggml's CPU ops do
//! (sums in the same order and precision), so the activations fed to the next quantized
//! matmul match llama.cpp's as closely as possible.

use super::blocks::QK;
use super::fused::base;
#[cfg(target_arch = "x86_64")]
use super::fused::fast;
use super::matmul::{Blocks, QMatrix};
use super::weights::Config;

/// Row `id` of a Q8_0 embedding table, dequantized (`ggml_get_rows`). A Q4_1 table is
/// dequantized the same way (`d * q + m`).
pub fn embedding_row(m: &QMatrix, id: usize, out: &mut [f32]) {
    let bpr = m.cols / QK;
    let group = |g: usize| g * bpr..(g + 1) * bpr;
    match &m.blocks {
        Blocks::Q8_0x4(b) => {
            for (g, o) in b[group(id / 4)].iter().zip(out.chunks_exact_mut(QK)) {
                g.row(id % 4).dequantize(o);
            }
        }
        Blocks::Q4_1x4(b) => {
            for (g, o) in b[group(id / 4)].iter().zip(out.chunks_exact_mut(QK)) {
                dequantize_q4_1(&g.row(id % 4), o);
            }
        }
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
                dequantize_q4_1(blk, o);
            }
        }
    }
}

fn dequantize_q4_1(blk: &super::blocks::BlockQ4_1, o: &mut [f32]) {
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

/// `silu(gate) * up` into `gate` (`ggml_swiglu`, SiLU as `x / (1 + expf(-x))` with
/// ggml's vector `expf`).
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::has_avx2() {
            // SAFETY: avx2 and fma are present (run-time check above).
            return unsafe { fast::swiglu(gate, up) };
        }
    }
    base::swiglu(gate, up)
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

    /// Rotates one head in place. The products are fused as in llama.cpp's AVX-512 build:
    /// `x0' = fma(c, x0, -(s * x1))`, `x1' = fma(s, x0, c * x1)` (measured against its
    /// tensors: the other fusion of `x1'` differs in the last bit for ~1/4 of the values,
    /// which flipped a Q8_1 rounding by layer 17 and left chat 1's greedy path).
    pub fn apply(&self, x: &mut [f32], pos: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            if super::simd::has_avx2() {
                // SAFETY: avx2 and fma are present (run-time check above).
                return unsafe { fast::rope(x, pos, self.dims, self.theta_scale) };
            }
        }
        base::rope(x, pos, self.dims, self.theta_scale)
    }
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
            return unsafe { fast::attention(q, k, v, n_kv, c, scale, batched, out) };
        }
    }
    base::attention(q, k, v, n_kv, c, scale, batched, out)
}

#[cfg(test)]
mod tests {
    use super::super::fused::base::{reduce16, reduce64, reduce_rows, v_expf};
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

    /// `v_expf` as it was with `2f64.powi(n)` for the final scaling.
    fn v_expf_powi(x: f32) -> f32 {
        use super::super::fused::expc::*;
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
        (j as f64 * 2f64.powi(n as i32)) as f32
    }

    #[test]
    fn vector_expf_scales_by_exponent_bits_exactly_as_powi_did() {
        for i in -140_000..=90_000 {
            let x = i as f32 * 1e-3 + 3e-5;
            assert_eq!(v_expf(x).to_bits(), v_expf_powi(x).to_bits(), "x={x}");
            #[cfg(target_arch = "x86_64")]
            if super::super::simd::has_avx2() {
                // SAFETY: avx2 and fma are present (checked just above).
                let f = unsafe { fast::v_expf(x) };
                assert_eq!(f.to_bits(), v_expf_powi(x).to_bits(), "x={x}");
            }
        }
    }

    #[test]
    fn row_wise_reduction_equals_the_per_column_one() {
        let hd = 8;
        for lanes in [16usize, 64] {
            let acc: Vec<f32> = (0..lanes * hd)
                .map(|i| ((i * 7919) % 1000) as f32 * 1.37e-3 - 0.5)
                .collect();
            let mut want = vec![0f32; hd];
            for (d, w) in want.iter_mut().enumerate() {
                let col: Vec<f32> = (0..lanes).map(|l| acc[l * hd + d]).collect();
                *w = if lanes == 64 {
                    reduce64(&col.try_into().unwrap())
                } else {
                    reduce16(&col.try_into().unwrap())
                };
            }
            let mut got = vec![0f32; hd];
            reduce_rows(&mut acc.clone(), lanes, hd, &mut got);
            assert_eq!(got, want, "{lanes} lanes");
        }
    }

    #[test]
    fn the_avx2_and_portable_attention_give_the_same_bits() {
        if !super::super::simd::has_avx2() {
            return;
        }
        let c = Config {
            n_embd: 256,
            n_layer: 1,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 512,
            head_dim: 64,
            rope_dim: 64,
            rope_base: 10000.0,
            eps: 1e-5,
            vocab: 10,
        };
        let r = |i: usize| ((i * 2654435761) % 10007) as f32 / 5003.0 - 1.0;
        let n_kv = 150;
        let q: Vec<f32> = (0..256).map(r).collect();
        let k: Vec<f32> = (0..n_kv * 128).map(|i| r(i + 7)).collect();
        let v: Vec<f32> = (0..n_kv * 128).map(|i| r(i + 13)).collect();
        for batched in [false, true] {
            let (mut a, mut b) = (vec![0f32; 256], vec![0f32; 256]);
            base::attention(&q, &k, &v, n_kv, &c, 0.125, batched, &mut a);
            // SAFETY: avx2 and fma are present (checked above).
            unsafe { fast::attention(&q, &k, &v, n_kv, &c, 0.125, batched, &mut b) };
            assert_eq!(a, b, "batched {batched}");
        }
        let (mut g1, mut g2) = (q.clone(), q.clone());
        base::swiglu(&mut g1, &k[..256]);
        // SAFETY: as above.
        unsafe { fast::swiglu(&mut g2, &k[..256]) };
        assert_eq!(g1, g2);
        let (mut h1, mut h2) = (q[..64].to_vec(), q[..64].to_vec());
        base::rope(&mut h1, 77, 64, 0.8);
        // SAFETY: as above.
        unsafe { fast::rope(&mut h2, 77, 64, 0.8) };
        assert_eq!(h1, h2);
    }

    /// llama.cpp's RoPE output for layer 0's first K head of the fixture's chat 1 at
    /// position 1 (captured with a ggml eval callback): bit-exact only with
    /// `x1' = fma(s, x0, c * x1)`; `fma(c, x1, s * x0)` gives 0xbff96646 here.
    #[test]
    fn rope_rounds_as_llama_cpp() {
        let x = [f32::from_bits(0xc00e_bfac), f32::from_bits(0xbe07_a721)];
        let want = [0xbf8b_fc86u32, 0xbff9_6645];
        let mut a = x;
        base::rope(&mut a, 1, 2, 0.5);
        assert_eq!(a.map(f32::to_bits), want);
        #[cfg(target_arch = "x86_64")]
        if super::super::simd::has_avx2() {
            let mut b = x;
            // SAFETY: avx2 and fma are present (checked just above).
            unsafe { fast::rope(&mut b, 1, 2, 0.5) };
            assert_eq!(b.map(f32::to_bits), want);
        }
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
