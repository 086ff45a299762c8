//! Q8_0 weights × Q8_0 activations, one row (llama.cpp's `ggml_vec_dot_q8_0_q8_0` on x86,
//! which also matches its tinyBLAS Q8_0 path): per block, i8 products summed in 8 lanes of
//! 4 neighbours, FMA with `d_w * d_x` into 8 f32 lanes, `hsum_float_8` at the end. The
//! scalar kernel adds in the same order, so both are bit-identical.

use super::blocks::{h2f, hsum8, BlockQ8_0, BlockQ8_0x4};

pub fn dot(w: &[BlockQ8_0], x: &[BlockQ8_0]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::has_avx2() {
            // SAFETY: the CPU supports avx2, fma and f16c (checked at run time above).
            return unsafe { dot_avx2(w, x) };
        }
    }
    dot_scalar(w, x)
}

/// Four rows against the same activations, each with exactly [`dot`]'s arithmetic (four
/// interleaved accumulation chains hide the FMA latency).
pub fn dot4(w: [&[BlockQ8_0]; 4], x: &[BlockQ8_0]) -> [f32; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::has_avx2() {
            // SAFETY: the CPU supports avx2, fma and f16c (checked at run time above).
            return unsafe { dot4_avx2(w, x) };
        }
    }
    w.map(|r| dot_scalar(r, x))
}

pub fn dot_scalar(w: &[BlockQ8_0], x: &[BlockQ8_0]) -> f32 {
    dot_blocks(w.iter().copied(), x)
}

/// [`dot_scalar`] over blocks as they come, so a row of an interleaved group is read in
/// place instead of being gathered into a vector first.
fn dot_blocks(w: impl Iterator<Item = BlockQ8_0>, x: &[BlockQ8_0]) -> f32 {
    let mut acc = [0f32; 8];
    for (b, y) in w.zip(x) {
        let d = h2f(b.d) * h2f(y.d);
        for (lane, a) in acc.iter_mut().enumerate() {
            let s: i32 = (lane * 4..lane * 4 + 4)
                .map(|i| b.qs[i] as i32 * y.qs[i] as i32)
                .sum();
            *a = d.mul_add(s as f32, *a);
        }
    }
    hsum8(&acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_avx2(w: &[BlockQ8_0], x: &[BlockQ8_0]) -> f32 {
    use super::simd::{h2f_f16c, hsum8_avx};
    use std::arch::x86_64::*;
    let mut acc = _mm256_setzero_ps();
    let ones = _mm256_set1_epi16(1);
    for (b, y) in w.iter().zip(x) {
        let d = h2f_f16c(b.d) * h2f_f16c(y.d);
        let qw = _mm256_loadu_si256(b.qs.as_ptr() as *const __m256i);
        let qx = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
        // |w| (as u8: even -128 reads as 128) × sign(x, w) for maddubs; a pair sums to at
        // most 2 * 128 * 127 = 32512, so the i16 step never saturates.
        let aw = _mm256_sign_epi8(qw, qw);
        let sx = _mm256_sign_epi8(qx, qw);
        let p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(p32), acc);
    }
    hsum8_avx(acc)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot4_avx2(w: [&[BlockQ8_0]; 4], x: &[BlockQ8_0]) -> [f32; 4] {
    use super::simd::{h2f_f16c, hsum8_avx};
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); 4];
    let ones = _mm256_set1_epi16(1);
    for (i, y) in x.iter().enumerate() {
        let yd = h2f_f16c(y.d);
        let qx = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
        for r in 0..4 {
            let b = &w[r][i];
            let d = h2f_f16c(b.d) * yd;
            let qw = _mm256_loadu_si256(b.qs.as_ptr() as *const __m256i);
            let aw = _mm256_sign_epi8(qw, qw);
            let sx = _mm256_sign_epi8(qx, qw);
            let p32 = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sx), ones);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(p32), acc[r]);
        }
    }
    [0, 1, 2, 3].map(|r| hsum8_avx(acc[r]))
}

/// Four consecutive rows stored as [`BlockQ8_0x4`] groups, each row with exactly
/// [`dot_scalar`]'s arithmetic.
pub fn dot_x4(w: &[BlockQ8_0x4], x: &[BlockQ8_0]) -> [f32; 4] {
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

pub fn dot_x4_scalar(w: &[BlockQ8_0x4], x: &[BlockQ8_0]) -> [f32; 4] {
    [0, 1, 2, 3].map(|r| dot_blocks(w.iter().map(|g| g.row(r)), x))
}

/// The x4 kernel per way of forming the byte dot products: one F16C conversion gives the
/// four rows' scales, the activations are loaded once per block for all four rows.
macro_rules! q8_0_x4_kernel {
    ($name:ident, $features:literal, $dp:ident) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(w: &[BlockQ8_0x4], x: &[BlockQ8_0]) -> [f32; 4] {
            use super::simd::{h2f_f16c, hsum8_avx, $dp};
            use std::arch::x86_64::*;
            let mut acc = [_mm256_setzero_ps(); 4];
            let pick = [
                _mm256_set1_epi32(0),
                _mm256_set1_epi32(1),
                _mm256_set1_epi32(2),
                _mm256_set1_epi32(3),
            ];
            for (b, y) in w.iter().zip(x) {
                let yd = _mm_set1_ps(h2f_f16c(y.d));
                let d4 = _mm_cvtph_ps(_mm_loadl_epi64(b.d.as_ptr() as *const __m128i));
                let d8 = _mm256_castps128_ps256(_mm_mul_ps(d4, yd));
                let qx = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
                for r in 0..4 {
                    let qw = _mm256_loadu_si256(b.qs[r].as_ptr() as *const __m256i);
                    // |w| as u8 (-128 reads as 128) × sign(x, w): see `dot_avx2`.
                    let p = $dp(_mm256_sign_epi8(qw, qw), _mm256_sign_epi8(qx, qw));
                    let d = _mm256_permutevar8x32_ps(d8, pick[r]);
                    acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(p), acc[r]);
                }
            }
            [0, 1, 2, 3].map(|r| hsum8_avx(acc[r]))
        }
    };
}

q8_0_x4_kernel!(dot_x4_avx2, "avx2,fma,f16c", dp_u8i8_avx2);
q8_0_x4_kernel!(dot_x4_vnni, "avx2,fma,f16c", dp_u8i8_vnni);

#[cfg(test)]
mod tests {
    use super::super::blocks::quantize_q8_0;
    use super::*;
    use proptest::prelude::*;

    fn row(seed: u64, n: usize, scale: f32) -> Vec<BlockQ8_0> {
        let mut s = seed | 1;
        let xs: Vec<f32> = (0..n * 32)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) % 20001) as f32 / 10000.0 * scale - scale
            })
            .collect();
        let mut out = Vec::new();
        quantize_q8_0(&xs, &mut out);
        out
    }

    #[test]
    fn matches_the_dequantized_dot_product() {
        let (w, x) = (row(3, 18, 0.1), row(5, 18, 4.0));
        let mut want = 0f64;
        for (b, y) in w.iter().zip(&x) {
            for i in 0..32 {
                want += h2f(b.d) as f64 * b.qs[i] as f64 * h2f(y.d) as f64 * y.qs[i] as f64;
            }
        }
        let got = dot_scalar(&w, &x) as f64;
        assert!(
            (got - want).abs() < 1e-4 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }

    proptest! {
        #[test]
        fn simd_and_scalar_kernels_agree_bit_for_bit(a in any::<u64>(), b in any::<u64>(), n in 1usize..40) {
            let (w, x) = (row(a, n, 0.5), row(b, n, 3.0));
            prop_assert_eq!(dot(&w, &x).to_bits(), dot_scalar(&w, &x).to_bits());
            let rows = [row(a ^ 1, n, 0.5), row(a ^ 2, n, 0.5), row(a ^ 3, n, 0.5)];
            let four = dot4([&w, &rows[0], &rows[1], &rows[2]], &x);
            for (r, wr) in [&w, &rows[0], &rows[1], &rows[2]].into_iter().enumerate() {
                prop_assert_eq!(four[r].to_bits(), dot_scalar(wr, &x).to_bits());
            }
            // The same four rows regrouped: every x4 kernel this CPU has, bit for bit.
            let all = [&w, &rows[0], &rows[1], &rows[2]];
            let g: Vec<BlockQ8_0x4> = (0..n)
                .map(|b| BlockQ8_0x4 {
                    d: all.map(|r| r[b].d),
                    qs: all.map(|r| r[b].qs),
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
