//! The ggml block formats this backend reads (Q4_1, Q8_0 weights) and the activation
//! formats it quantizes to (Q8_1 for Q4_1 weights, Q8_0 for Q8_0 weights), with the
//! quantizers written to give the same bytes as ggml's x86 `quantize_row_q8_1` /
//! `quantize_row_q8_0` (scale = max|x| / 127 stored as f16, values rounded to nearest with
//! ties to even as `_mm256_round_ps` does, Q8_1's `s` = d * sum of the quants as f16), so
//! the integer dot products see the same inputs as llama.cpp's.

use half::f16;

/// Values per block in all formats here.
pub const QK: usize = 32;

/// ggml `block_q4_1`: `x = d * q + m`, q in 0..16; low nibbles hold values 0..16, high
/// nibbles 16..32.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct BlockQ4_1 {
    pub d: u16,
    pub m: u16,
    pub qs: [u8; 16],
}

/// ggml `block_q8_0`: `x = d * q`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8_0 {
    pub d: u16,
    pub qs: [i8; QK],
}

impl Default for BlockQ8_0 {
    fn default() -> Self {
        BlockQ8_0 { d: 0, qs: [0; QK] }
    }
}

/// ggml `block_q8_1`: Q8_0 plus `s = d * sum(qs)`, which lets a Q4_1 dot product add the
/// weight block's offset `m` once per block.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8_1 {
    pub d: u16,
    pub s: u16,
    pub qs: [i8; QK],
}

impl Default for BlockQ8_1 {
    fn default() -> Self {
        BlockQ8_1 {
            d: 0,
            s: 0,
            qs: [0; QK],
        }
    }
}

/// The blocks of four consecutive rows at the same column, regrouped at load time (the
/// same bytes as four [`BlockQ4_1`]s): the four scales and offsets side by side, so one F16C
/// conversion serves four rows, and the quants of rows (0, 1) and (2, 3) adjacent, so one
/// 256-bit load brings two rows' nibbles. A matrix of such groups is read as one stream.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct BlockQ4_1x4 {
    pub d: [u16; 4],
    pub m: [u16; 4],
    pub qs: [[u8; 16]; 4],
}

/// Four rows' [`BlockQ8_0`]s at the same column, regrouped as [`BlockQ4_1x4`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct BlockQ8_0x4 {
    pub d: [u16; 4],
    pub qs: [[i8; QK]; 4],
}

impl BlockQ4_1x4 {
    /// Row `r` (0..4) of the group as a plain block.
    #[inline]
    pub fn row(&self, r: usize) -> BlockQ4_1 {
        BlockQ4_1 {
            d: self.d[r],
            m: self.m[r],
            qs: self.qs[r],
        }
    }
}

impl BlockQ8_0x4 {
    #[inline]
    pub fn row(&self, r: usize) -> BlockQ8_0 {
        BlockQ8_0 {
            d: self.d[r],
            qs: self.qs[r],
        }
    }
}

/// Regroups a row-major matrix of `bpr` blocks per row (rows a multiple of 4) into groups
/// of four rows: group `g`, column block `b` holds rows `4g..4g+4` at block `b`.
pub fn interleave4<B: Copy, G>(blocks: &[B], bpr: usize, group: impl Fn([B; 4]) -> G) -> Vec<G> {
    let rows = blocks.len() / bpr;
    debug_assert!(rows.is_multiple_of(4));
    let mut out = Vec::with_capacity(blocks.len() / 4);
    for g in 0..rows / 4 {
        for b in 0..bpr {
            out.push(group([0, 1, 2, 3].map(|r| blocks[(4 * g + r) * bpr + b])));
        }
    }
    out
}

pub const Q4_1_BYTES: usize = 20;
pub const Q8_0_BYTES: usize = 34;

#[inline]
pub fn h2f(h: u16) -> f32 {
    f16::from_bits(h).to_f32()
}

#[inline]
fn f2h(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

impl BlockQ4_1 {
    /// Parses one block as stored in a GGUF file (little-endian).
    pub fn from_bytes(b: &[u8]) -> BlockQ4_1 {
        let mut qs = [0u8; 16];
        qs.copy_from_slice(&b[4..20]);
        BlockQ4_1 {
            d: u16::from_le_bytes([b[0], b[1]]),
            m: u16::from_le_bytes([b[2], b[3]]),
            qs,
        }
    }
}

impl BlockQ8_0 {
    pub fn from_bytes(b: &[u8]) -> BlockQ8_0 {
        let mut qs = [0i8; QK];
        for (q, &v) in qs.iter_mut().zip(&b[2..34]) {
            *q = v as i8;
        }
        BlockQ8_0 {
            d: u16::from_le_bytes([b[0], b[1]]),
            qs,
        }
    }

    /// ggml's `dequantize_row_q8_0` for one block.
    pub fn dequantize(&self, out: &mut [f32]) {
        let d = h2f(self.d);
        for (o, &q) in out.iter_mut().zip(&self.qs) {
            *o = q as f32 * d;
        }
    }
}

/// Scale, inverse scale and the rounded quants of one 32-value block, as ggml computes
/// them before storing.
#[inline(always)]
fn quantize_block(x: &[f32]) -> (f32, [i8; QK]) {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut qs = [0i8; QK];
    for (q, &v) in qs.iter_mut().zip(x) {
        // Round to nearest, ties to even: adding and removing 1.5 * 2^23 leaves no
        // fraction bits (exact for |v| < 2^22; here |v * id| <= 127, so the cast cannot
        // saturate either). Same result as `round_ties_even`, without a libm call on
        // baseline x86-64.
        const R: f32 = 12582912.0;
        *q = ((v * id + R) - R) as i8;
    }
    (d, qs)
}

/// ggml `quantize_row_q8_1`: `x.len()` must be a multiple of 32. With AVX2 the same code
/// is compiled for it (the max and the rounding vectorize; same bits).
pub fn quantize_q8_1(x: &[f32], out: &mut Vec<BlockQ8_1>) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::has_avx2() {
            // SAFETY: avx2, fma and f16c are present (run-time check above).
            return unsafe { quantize_q8_1_avx2(x, out) };
        }
    }
    quantize_q8_1_portable(x, out)
}

/// [`quantize_q8_0`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_q8_0_avx2(x: &[f32], out: &mut Vec<BlockQ8_0>) {
    quantize_q8_0_portable(x, out)
}

/// [`quantize_q8_1`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_q8_1_avx2(x: &[f32], out: &mut Vec<BlockQ8_1>) {
    quantize_q8_1_portable(x, out)
}

#[inline(always)]
fn quantize_q8_1_portable(x: &[f32], out: &mut Vec<BlockQ8_1>) {
    out.clear();
    out.extend(x.chunks_exact(QK).map(|c| {
        let (d, qs) = quantize_block(c);
        let sum: i32 = qs.iter().map(|&q| q as i32).sum();
        BlockQ8_1 {
            d: f2h(d),
            s: f2h(d * sum as f32),
            qs,
        }
    }));
}

/// ggml `quantize_row_q8_0`: `x.len()` must be a multiple of 32.
pub fn quantize_q8_0(x: &[f32], out: &mut Vec<BlockQ8_0>) {
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::has_avx2() {
            // SAFETY: avx2, fma and f16c are present (run-time check above).
            return unsafe { quantize_q8_0_avx2(x, out) };
        }
    }
    quantize_q8_0_portable(x, out)
}

#[inline(always)]
fn quantize_q8_0_portable(x: &[f32], out: &mut Vec<BlockQ8_0>) {
    out.clear();
    out.extend(x.chunks_exact(QK).map(|c| {
        let (d, qs) = quantize_block(c);
        BlockQ8_0 { d: f2h(d), qs }
    }));
}

/// ggml's `hsum_float_8`: (lanes 0..4 + lanes 4..8), then pairs, in that order, so the
/// scalar kernels add in the same order as the AVX2 ones (and as llama.cpp's).
#[inline]
pub fn hsum8(a: &[f32; 8]) -> f32 {
    let x = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    let y = [x[0] + x[2], x[1] + x[3]];
    y[0] + y[1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_1_blocks_hold_the_scale_the_rounded_quants_and_their_scaled_sum() {
        let mut x: Vec<f32> = (0..32).map(|i| i as f32 - 10.0).collect();
        x[3] = 12.7; // 12.7 * 127/21 = 76.8: rounds to 77
        let mut out = Vec::new();
        quantize_q8_1(&x, &mut out);
        let b = out[0];
        assert_eq!(h2f(b.d), f16::from_f32(21.0 / 127.0).to_f32());
        assert_eq!(b.qs[31], 127);
        assert_eq!(b.qs[0], -60); // -10 * 127/21 = -60.48
        assert_eq!(b.qs[3], 77);
        let sum: i32 = b.qs.iter().map(|&q| q as i32).sum();
        assert_eq!(b.s, f16::from_f32(21.0 / 127.0 * sum as f32).to_bits());
        // All zeros: zero scale, zero quants (no division by zero).
        quantize_q8_0(&[0.0; 64], &mut Vec::new());
        let mut z = Vec::new();
        quantize_q8_1(&[0.0; 32], &mut z);
        assert_eq!(z[0], BlockQ8_1::default());
    }

    #[test]
    fn the_rounding_trick_equals_round_ties_even() {
        let mut x = [0f32; 32];
        x[0] = 127.0; // id = 1: the other values are quantized as they are
        for i in -126_999..=126_999 {
            x[1] = i as f32 / 1000.0;
            x[2] = i as f32 / 1000.0 + 0.0005;
            let (_, q) = quantize_block(&x);
            assert_eq!(q[1], x[1].round_ties_even() as i8, "{}", x[1]);
            assert_eq!(q[2], x[2].round_ties_even() as i8, "{}", x[2]);
        }
    }

    #[test]
    fn the_avx2_and_portable_quantizers_give_the_same_bytes() {
        let mut s = 12345u64;
        for n in [1usize, 3, 18, 48] {
            let x: Vec<f32> = (0..n * 32)
                .map(|i| {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let v = ((s >> 33) % 20001) as f32 / 1000.0 - 10.0;
                    if i % 29 == 0 {
                        0.0
                    } else {
                        v * (1 + i % 7) as f32
                    }
                })
                .collect();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            quantize_q8_1_portable(&x, &mut a);
            quantize_q8_1(&x, &mut b);
            assert_eq!(a, b);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            quantize_q8_0_portable(&x, &mut a);
            quantize_q8_0(&x, &mut b);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn ties_round_to_even_as_the_simd_quantizer_does() {
        // amax 127 makes id exactly 1, so x = q + 0.5 is an exact tie.
        let mut x = [0f32; 32];
        x[0] = 127.0;
        x[1] = 2.5;
        x[2] = -3.5;
        let mut out = Vec::new();
        quantize_q8_0(&x, &mut out);
        assert_eq!((out[0].qs[1], out[0].qs[2]), (2, -4));
    }
}
