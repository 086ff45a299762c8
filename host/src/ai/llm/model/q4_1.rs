//! Q4_1 weights × Q8_1 activations, one row: the dot product llama.cpp's x86 build computes
//! (`ggml_vec_dot_q4_1_q8_1`). Per block the integer products are summed in 8 lanes of 4
//! neighbouring values, each lane is converted to f32 and fused-multiply-added with
//! `d_w * d_x` into an 8-lane accumulator; `m_w * s_x` is fused-multiply-added into a
//! separate scalar sum (GCC contracts ggml's `summs += m * s` into `vfmadd231ss` in
//! llama.cpp's `-march=native` build: seen in its `libggml-cpu.so`); at the end the lanes
//! are added as `hsum_float_8` does, then the scalar sum. The scalar kernel follows the
//! same order so both give bit-identical results.

use super::blocks::{h2f, hsum8, BlockQ4_1, BlockQ4_1x4, BlockQ8_1};

/// The kernel chosen for this CPU (AVX2+FMA+F16C when present).
pub fn dot(w: &[BlockQ4_1], x: &[BlockQ8_1]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::has_avx2() {
            // SAFETY: the CPU supports avx2, fma and f16c (checked at run time above).
            return unsafe { dot_avx2(w, x) };
        }
    }
    dot_scalar(w, x)
}

/// Four rows against the same activations, each with exactly [`dot`]'s arithmetic: the
/// four accumulation chains interleave, so the FMA latency of one row hides behind the
/// others (one row alone is latency-bound: 18 dependent FMAs for a 576-wide row).
pub fn dot4(w: [&[BlockQ4_1]; 4], x: &[BlockQ8_1]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::has_avx2() {
            // SAFETY: the CPU supports avx2, fma and f16c (checked at run time above).
            return unsafe { dot4_avx2(w, x) };
        }
    }
    w.map(|r| dot_scalar(r, x))
}

pub fn dot_scalar(w: &[BlockQ4_1], x: &[BlockQ8_1]) -> f32 {
    dot_blocks(w.iter().copied(), x)
}

/// [`dot_scalar`] over blocks as they come, so a row of an interleaved group is read in
/// place instead of being gathered into a vector first.
fn dot_blocks(w: impl Iterator<Item = BlockQ4_1>, x: &[BlockQ8_1]) -> f32 {
    let mut acc = [0f32; 8];
    let mut summs = 0f32;
    for (b, y) in w.zip(x) {
        let d = h2f(b.d) * h2f(y.d);
        summs = h2f(b.m).mul_add(h2f(y.s), summs);
        for (lane, a) in acc.iter_mut().enumerate() {
            let mut s = 0i32;
            for k in 0..4 {
                let i = lane * 4 + k;
                let q = if i < 16 {
                    b.qs[i] & 0x0F
                } else {
                    b.qs[i - 16] >> 4
                };
                s += q as i32 * y.qs[i] as i32;
            }
            *a = d.mul_add(s as f32, *a);
        }
    }
    hsum8(&acc) + summs
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_avx2(w: &[BlockQ4_1], x: &[BlockQ8_1]) -> f32 {
    use super::simd::{h2f_f16c, hsum8_avx};
    use std::arch::x86_64::*;
    let mut acc = _mm256_setzero_ps();
    let mut summs = 0f32;
    let low = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    for (b, y) in w.iter().zip(x) {
        let d = h2f_f16c(b.d) * h2f_f16c(y.d);
        summs = h2f_f16c(b.m).mul_add(h2f_f16c(y.s), summs);
        // 16 bytes of nibbles -> 32 bytes: values 0..16 (low nibbles), then 16..32.
        let raw = _mm_loadu_si128(b.qs.as_ptr() as *const __m128i);
        let both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
        let qw = _mm256_and_si256(both, low);
        let qx = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
        // u8 × i8 pairs -> i16 (at most 2*15*127, no saturation), pairs again -> i32.
        let p16 = _mm256_maddubs_epi16(qw, qx);
        let p32 = _mm256_madd_epi16(p16, ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(p32), acc);
    }
    hsum8_avx(acc) + summs
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot4_avx2(w: [&[BlockQ4_1]; 4], x: &[BlockQ8_1]) -> [f32; 4] {
    use super::simd::{h2f_f16c, hsum8_avx};
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut summs = [0f32; 4];
    let low = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    for (i, y) in x.iter().enumerate() {
        let (yd, ys) = (h2f_f16c(y.d), h2f_f16c(y.s));
        let qx = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
        for r in 0..4 {
            let b = &w[r][i];
            let d = h2f_f16c(b.d) * yd;
            summs[r] = h2f_f16c(b.m).mul_add(ys, summs[r]);
            let raw = _mm_loadu_si128(b.qs.as_ptr() as *const __m128i);
            let qw = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), low);
            let p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(qw, qx), ones);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(p32), acc[r]);
        }
    }
    [0, 1, 2, 3].map(|r| hsum8_avx(acc[r]) + summs[r])
}

/// Four consecutive rows stored as [`BlockQ4_1x4`] groups, each row with exactly
/// [`dot_scalar`]'s arithmetic (so bit-identical to [`dot`] on the same rows).
pub fn dot_x4(w: &[BlockQ4_1x4], x: &[BlockQ8_1]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::has_vnni() {
            // SAFETY: avx2, fma, f16c, avx512vnni and avx512vl are present (checked above).
            return unsafe { dot_x4_vnni(w, x) };
        }
        if super::simd::has_avx2() {
            // SAFETY: the CPU supports avx2, fma and f16c (checked at run time above).
            return unsafe { dot_x4_avx2(w, x) };
        }
    }
    dot_x4_scalar(w, x)
}

pub fn dot_x4_scalar(w: &[BlockQ4_1x4], x: &[BlockQ8_1]) -> [f32; 4] {
    [0, 1, 2, 3].map(|r| dot_blocks(w.iter().map(|g| g.row(r)), x))
}

/// The x4 kernel, once per way of forming the byte dot products. Rows (0, 1) share one
/// 256-bit register of nibbles, as do rows (2, 3): masking gives both rows' low nibbles
/// (values 0..16), shifting their high ones (16..32), each multiplied with that half of
/// the activations broadcast to both 128-bit lanes. So accumulator `lo[p]` holds lanes
/// 0..4 of rows 2p and 2p+1 and `hi[p]` their lanes 4..8: per lane the same FMA chain as
/// the one-row kernel, recombined into `hsum_float_8`'s order at the end.
macro_rules! q4_1_x4_kernel {
    ($name:ident, $features:literal, $dp:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(w: &[BlockQ4_1x4], x: &[BlockQ8_1]) -> [f32; 4] {
            use super::simd::{h2f_f16c, hsum8_halves, $dp};
            use std::arch::x86_64::*;
            let mut lo = [_mm256_setzero_ps(); 2];
            let mut hi = [_mm256_setzero_ps(); 2];
            let mut summs = _mm_setzero_ps();
            let low = _mm256_set1_epi8(0x0F);
            let pick = [
                _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1),
                _mm256_setr_epi32(2, 2, 2, 2, 3, 3, 3, 3),
            ];
            for (b, y) in w.iter().zip(x) {
                let yd = _mm_set1_ps(h2f_f16c(y.d));
                let ys = _mm_set1_ps(h2f_f16c(y.s));
                let d4 = _mm_cvtph_ps(_mm_loadl_epi64(b.d.as_ptr() as *const __m128i));
                let m4 = _mm_cvtph_ps(_mm_loadl_epi64(b.m.as_ptr() as *const __m128i));
                let d8 = _mm256_castps128_ps256(_mm_mul_ps(d4, yd));
                summs = _mm_fmadd_ps(m4, ys, summs);
                let xp = y.qs.as_ptr() as *const __m128i;
                let xlo = _mm256_broadcastsi128_si256(_mm_loadu_si128(xp));
                let xhi = _mm256_broadcastsi128_si256(_mm_loadu_si128(xp.add(1)));
                for p in 0..2 {
                    let raw = _mm256_loadu_si256(b.qs[2 * p].as_ptr() as *const __m256i);
                    let ql = _mm256_and_si256(raw, low);
                    let qh = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);
                    let d = _mm256_permutevar8x32_ps(d8, pick[p]);
                    lo[p] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps($dp(ql, xlo)), lo[p]);
                    hi[p] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps($dp(qh, xhi)), hi[p]);
                }
            }
            let mut s = [0f32; 4];
            _mm_storeu_ps(s.as_mut_ptr(), summs);
            let half = |v: __m256, k: i32| {
                if k == 0 {
                    _mm256_castps256_ps128(v)
                } else {
                    _mm256_extractf128_ps(v, 1)
                }
            };
            [
                hsum8_halves(half(lo[0], 0), half(hi[0], 0)) + s[0],
                hsum8_halves(half(lo[0], 1), half(hi[0], 1)) + s[1],
                hsum8_halves(half(lo[1], 0), half(hi[1], 0)) + s[2],
                hsum8_halves(half(lo[1], 1), half(hi[1], 1)) + s[3],
            ]
        }
    };
}

q4_1_x4_kernel!(dot_x4_avx2, "avx2,fma,f16c", dp_u8i8_avx2);
q4_1_x4_kernel!(dot_x4_vnni, "avx2,fma,f16c", dp_u8i8_vnni);

#[cfg(test)]
mod tests {
    use super::super::blocks::quantize_q8_1;
    use super::*;
    use proptest::prelude::*;

    fn blocks(seed: u64, n: usize) -> (Vec<BlockQ4_1>, Vec<BlockQ8_1>) {
        // A small LCG: the test data must not depend on a random crate.
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 33) as u32
        };
        let w = (0..n)
            .map(|_| {
                let mut qs = [0u8; 16];
                qs.iter_mut().for_each(|q| *q = next() as u8);
                BlockQ4_1 {
                    d: half::f16::from_f32((next() % 1000) as f32 * 1e-5).to_bits(),
                    m: half::f16::from_f32(-((next() % 1000) as f32) * 1e-4).to_bits(),
                    qs,
                }
            })
            .collect();
        let xs: Vec<f32> = (0..n * 32)
            .map(|_| (next() % 20001) as f32 / 1000.0 - 10.0)
            .collect();
        let mut x = Vec::new();
        quantize_q8_1(&xs, &mut x);
        (w, x)
    }

    #[test]
    fn matches_the_dequantized_dot_product() {
        let (w, x) = blocks(7, 18);
        let mut want = 0f64;
        for (b, y) in w.iter().zip(&x) {
            for i in 0..32 {
                let q = if i < 16 {
                    b.qs[i] & 15
                } else {
                    b.qs[i - 16] >> 4
                };
                let wv = h2f(b.d) as f64 * q as f64 + h2f(b.m) as f64;
                want += wv * (h2f(y.d) as f64 * y.qs[i] as f64);
            }
        }
        // s is f16-rounded, so allow the error of one f16 rounding per block.
        let got = dot_scalar(&w, &x) as f64;
        assert!(
            (got - want).abs() < 1e-2 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }

    proptest! {
        #[test]
        fn simd_and_scalar_kernels_agree_bit_for_bit(seed in any::<u64>(), n in 1usize..40) {
            let (w, x) = blocks(seed, n);
            prop_assert_eq!(dot(&w, &x).to_bits(), dot_scalar(&w, &x).to_bits());
            let (w2, _) = blocks(seed ^ 1, n);
            let (w3, _) = blocks(seed ^ 2, n);
            let (w4, _) = blocks(seed ^ 3, n);
            let four = dot4([&w, &w2, &w3, &w4], &x);
            for (r, row) in [&w, &w2, &w3, &w4].into_iter().enumerate() {
                prop_assert_eq!(four[r].to_bits(), dot_scalar(row, &x).to_bits());
            }
            // The same four rows regrouped: every x4 kernel this CPU has, bit for bit.
            let g: Vec<BlockQ4_1x4> = (0..n)
                .map(|b| BlockQ4_1x4 {
                    d: [w[b].d, w2[b].d, w3[b].d, w4[b].d],
                    m: [w[b].m, w2[b].m, w3[b].m, w4[b].m],
                    qs: [w[b].qs, w2[b].qs, w3[b].qs, w4[b].qs],
                })
                .collect();
            let want = four.map(f32::to_bits);
            prop_assert_eq!(dot_x4(&g, &x).map(f32::to_bits), want);
            prop_assert_eq!(dot_x4_scalar(&g, &x).map(f32::to_bits), want);
            #[cfg(target_arch = "x86_64")]
            if super::super::simd::has_avx2() {
                // SAFETY: avx2, fma and f16c are present (checked just above).
                prop_assert_eq!(unsafe { dot_x4_avx2(&g, &x) }.map(f32::to_bits), want);
            }
        }
    }
}
