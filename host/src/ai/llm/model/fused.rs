//! The f32 kernels that must round exactly as llama.cpp's AVX-512 build does (fused
//! multiply-adds in the same places, sums in the same lane order), generated twice by one
//! macro: [`base`] for any CPU, [`fast`] compiled with AVX2+FMA (so `mul_add` is one
//! instruction instead of a libm call, and the loops vectorize) and picked at run time by
//! `math.rs`. Both give the same bits; the tests check it.

use super::weights::Config;

/// The constants of [`v_expf`] by their bits (ggml writes them as hex floats).
pub mod expc {
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

macro_rules! fused_ops {
    ($(#[$attr:meta])*) => {
/// ggml's vector `expf` (`ggml_v_expf`, the AVX-512 form llama.cpp's x86 build runs for
/// softmax and SiLU: a degree-5 polynomial on the reduced argument, scaled by 2^n), one
/// lane at a time. It differs from libm's `expf` in the last bit now and then, which is
/// why it is mirrored rather than replaced by `f32::exp`.
$(#[$attr])*
pub fn v_expf(x: f32) -> f32 {
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
    // 2^n is built from its exponent bits (|n| <= 192 here, well inside f64's range):
    // `powi` would be a `__powidf2` library call, 5% of a decode step.
    let two_n = f64::from_bits(((n as i64 + 1023) as u64) << 52);
    (j as f64 * two_n) as f32
}

$(#[$attr])*
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = *g;
        *g = (x / (1.0 + v_expf(0.0 - x))) * u;
    }
}

/// `_mm512_reduce_add_ps` as GCC expands it: halves, quarters, then pairs.
$(#[$attr])*
pub fn reduce16(a: &[f32; 16]) -> f32 {
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
$(#[$attr])*
pub fn vec_dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 64];
    for (ca, cb) in a.chunks_exact(64).zip(b.chunks_exact(64)) {
        for i in 0..64 {
            acc[i] = ca[i].mul_add(cb[i], acc[i]);
        }
    }
    reduce64(&acc)
}

/// The reduction of [`vec_dot_f32`]'s four accumulators.
$(#[$attr])*
pub fn reduce64(acc: &[f32; 64]) -> f32 {
    let mut x = [0f32; 16];
    for l in 0..16 {
        x[l] = (acc[l] + acc[32 + l]) + (acc[16 + l] + acc[48 + l]);
    }
    reduce16(&x)
}

/// [`reduce64`] (or, for 16 lanes, [`reduce16`]) applied to every column `d` of `acc`
/// (`lanes` rows of `hd` values) into `out`: per column the same additions in the same
/// order, done row by row so they vectorize across columns. Overwrites `acc`.
$(#[$attr])*
pub fn reduce_rows(acc: &mut [f32], lanes: usize, hd: usize, out: &mut [f32]) {
    let acc = &mut acc[..lanes * hd];
    if lanes == 64 {
        // Row l (< 16) := (row l + row 32+l) + (row 16+l + row 48+l).
        for l in 0..16 {
            for d in 0..hd {
                acc[l * hd + d] = (acc[l * hd + d] + acc[(32 + l) * hd + d])
                    + (acc[(16 + l) * hd + d] + acc[(48 + l) * hd + d]);
            }
        }
    }
    // reduce16 down the rows: halves, quarters, then the two pairs.
    for (step, n) in [(8usize, 8usize), (4, 4), (2, 2)] {
        for i in 0..n {
            for d in 0..hd {
                acc[i * hd + d] += acc[(i + step) * hd + d];
            }
        }
    }
    for (d, o) in out.iter_mut().enumerate().take(hd) {
        *o = acc[d] + acc[hd + d];
    }
}

/// One position's attention over `n_kv` cached positions, all heads. llama.cpp pads its KV
/// length to a multiple of 64 or more (masked cells add exact zeros), so lane `j % 64` of
/// `ggml_vec_dot_f32` is where position `j` lands, as here. `batched` says the pass runs
/// several tokens: llama.cpp then computes `softmax · V` with tinyBLAS (one 16-lane FMA
/// accumulator per output, [`reduce16`]) instead of `ggml_vec_dot_f32`.
$(#[$attr])*
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
            let kj = &k[j * kvw + kvh * hd..][..hd];
            let dot = if hd == padded_hd {
                vec_dot_f32(kj, &qpad)
            } else {
                kpad[..hd].copy_from_slice(kj);
                vec_dot_f32(&kpad, &qpad)
            };
            *pj = dot * scale;
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
        reduce_rows(&mut acc, lanes, hd, &mut out[h * hd..(h + 1) * hd]);
    }
}

/// RoPE of one head (see `math::Rope`): `theta_scale` as ggml's rope cache iterates it.
$(#[$attr])*
pub fn rope(x: &mut [f32], pos: usize, dims: usize, theta_scale: f32) {
    let mut theta = pos as f32;
    for i in (0..dims).step_by(2) {
        let (s, c) = theta.sin_cos();
        let (x0, x1) = (x[i], x[i + 1]);
        x[i] = c.mul_add(x0, -(s * x1));
        x[i + 1] = s.mul_add(x0, c * x1);
        theta *= theta_scale;
    }
}
    };
}

/// The kernels for any CPU.
pub mod base {
    use super::expc;
    use super::Config;
    fused_ops!(#[inline]);
}

/// The kernels compiled for AVX2+FMA.
///
/// # Safety
/// Every function here may be called only after `simd::has_avx2()` returned true.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::missing_safety_doc)]
pub mod fast {
    use super::expc;
    use super::Config;
    fused_ops!(#[inline] #[target_feature(enable = "avx2,fma")]);
}
