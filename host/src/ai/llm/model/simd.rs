//! Run-time CPU feature detection and the small AVX helpers the kernels share. The release
//! build targets baseline x86-64, so the SIMD kernels are compiled with
//! `#[target_feature]` and chosen here at run time.

use std::sync::OnceLock;

/// Whether the AVX2 kernels may run (AVX2, FMA and F16C all present).
#[inline]
pub fn has_avx2() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Whether the VNNI forms of the kernels may run: [`has_avx2`] plus the 256-bit
/// `vpdpbusd` (AVX512-VNNI with AVX512-VL). It does in one instruction what
/// `vpmaddubsw` + `vpmaddwd` do in two, with the same exact i32 sums (no i16 saturation is
/// possible for these inputs), so the results are bit-identical. llama.cpp's
/// `-march=native` build uses it too.
#[inline]
pub fn has_vnni() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            has_avx2()
                && std::is_x86_feature_detected!("avx512vnni")
                && std::is_x86_feature_detected!("avx512vl")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// f16 bits -> f32 with the F16C instruction (exact, like `half`'s software conversion).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn h2f_f16c(h: u16) -> f32 {
    use std::arch::x86_64::*;
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h as i32)))
}

/// ggml's `hsum_float_8`: high half + low half, then the two pairs, then the last two.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn hsum8_avx(x: std::arch::x86_64::__m256) -> f32 {
    use std::arch::x86_64::*;
    let mut r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    _mm_cvtss_f32(r)
}

/// u8 × i8 products summed over each group of four neighbouring bytes into 8 i32 lanes
/// (`vpmaddubsw` to i16 pairs, then `vpmaddwd` by ones). Exact as long as a pair's sum
/// fits in i16, which the callers' value ranges guarantee.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dp_u8i8_avx2(
    a: std::arch::x86_64::__m256i,
    b: std::arch::x86_64::__m256i,
) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1))
}

/// [`dp_u8i8_avx2`] in one `vpdpbusd` (same exact i32 sums). Written as inline asm: the
/// intrinsic and the `avx512vnni` target feature need Rust 1.89, the workspace's MSRV is
/// 1.88. The EVEX form is forced, so [`has_vnni`] (AVX512-VNNI and -VL) is what the caller
/// must have checked.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dp_u8i8_vnni(
    a: std::arch::x86_64::__m256i,
    b: std::arch::x86_64::__m256i,
) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::*;
    let mut acc = _mm256_setzero_si256();
    // acc += (unsigned bytes of a) · (signed bytes of b), per group of four.
    std::arch::asm!(
        "{{evex}} vpdpbusd {acc}, {a}, {b}",
        acc = inout(ymm_reg) acc,
        a = in(ymm_reg) a,
        b = in(ymm_reg) b,
        options(pure, nomem, nostack, preserves_flags),
    );
    acc
}

/// `hsum_float_8` of a row whose lanes 0..4 are `lo` and lanes 4..8 are `hi` (the
/// two-row layouts of the x4 kernels), in [`hsum8_avx`]'s order.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn hsum8_halves(
    lo: std::arch::x86_64::__m128,
    hi: std::arch::x86_64::__m128,
) -> f32 {
    use std::arch::x86_64::*;
    let mut r = _mm_add_ps(hi, lo);
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    _mm_cvtss_f32(r)
}
