//! A quantized weight matrix (GGUF rows of ggml blocks) times f32 activations, split by
//! output rows over the current rayon pool: the model's thread runs inside the pool of
//! `ai_threads` threads (see `service.rs`), so that setting bounds the compute threads; with
//! one thread the rows run on the calling thread, with no pool hop. The activations are
//! quantized per row to the format ggml pairs with the weight type (Q8_1 for Q4_1, Q8_0
//! for Q8_0), as llama.cpp does before its integer dot products.

use super::blocks::{
    interleave4, quantize_q8_0, quantize_q8_1, BlockQ4_1, BlockQ4_1x4, BlockQ8_0, BlockQ8_0x4, QK,
};
use super::{q4_1, q8_0};
use rayon::prelude::*;

pub enum Blocks {
    Q4_1(Vec<BlockQ4_1>),
    Q8_0(Vec<BlockQ8_0>),
    /// Row groups of four (rows a multiple of 4): what [`QMatrix::new`] makes of the above.
    Q4_1x4(Vec<BlockQ4_1x4>),
    Q8_0x4(Vec<BlockQ8_0x4>),
}

pub struct QMatrix {
    pub rows: usize,
    /// Values per row (a multiple of 32).
    pub cols: usize,
    pub blocks: Blocks,
}

/// Row-chunk size so each thread gets a few chunks (some balance, little overhead), a
/// multiple of 4 for the four-row kernels.
fn chunk_rows(rows: usize, threads: usize) -> usize {
    (rows.div_ceil(threads * 4).max(16) + 3) & !3
}

impl QMatrix {
    /// A matrix of row-major GGUF blocks, regrouped into four-row groups when the row
    /// count allows (same bytes, faster kernels: see `BlockQ4_1x4`).
    pub fn new(rows: usize, cols: usize, blocks: Blocks) -> QMatrix {
        let bpr = cols / QK;
        let blocks = match blocks {
            Blocks::Q4_1(b) if rows.is_multiple_of(4) && bpr > 0 => {
                Blocks::Q4_1x4(interleave4(&b, bpr, |r| BlockQ4_1x4 {
                    d: r.map(|b| b.d),
                    m: r.map(|b| b.m),
                    qs: r.map(|b| b.qs),
                }))
            }
            Blocks::Q8_0(b) if rows.is_multiple_of(4) && bpr > 0 => {
                Blocks::Q8_0x4(interleave4(&b, bpr, |r| BlockQ8_0x4 {
                    d: r.map(|b| b.d),
                    qs: r.map(|b| b.qs),
                }))
            }
            b => b,
        };
        QMatrix { rows, cols, blocks }
    }

    /// `out[t * rows + r] = row r · x[t * cols ..][..cols]` for each of the `x.len() / cols`
    /// activation rows.
    pub fn matmul(&self, x: &[f32], out: &mut [f32]) {
        let n = x.len() / self.cols;
        debug_assert_eq!(out.len(), n * self.rows);
        let bpr = self.cols / QK;
        match &self.blocks {
            Blocks::Q4_1(w) => {
                let xq = quantize_rows(x, self.cols, quantize_q8_1);
                let row = |r: usize| &w[r * bpr..(r + 1) * bpr];
                let act = |t: usize| &xq[t * bpr..(t + 1) * bpr];
                self.run(
                    out,
                    n,
                    |r, t| q4_1::dot(row(r), act(t)),
                    |r, t| q4_1::dot4([row(r), row(r + 1), row(r + 2), row(r + 3)], act(t)),
                );
            }
            Blocks::Q4_1x4(w) => {
                let xq = quantize_rows(x, self.cols, quantize_q8_1);
                // Group g holds rows 4g..4g+4; callers pass first rows of groups to dot4.
                let group = |r: usize| &w[r / 4 * bpr..(r / 4 + 1) * bpr];
                let act = |t: usize| &xq[t * bpr..(t + 1) * bpr];
                self.run(
                    out,
                    n,
                    |r, t| q4_1::dot_x4(group(r), act(t))[r % 4],
                    |r, t| q4_1::dot_x4(group(r), act(t)),
                );
            }
            Blocks::Q8_0x4(w) => {
                let xq = quantize_rows(x, self.cols, quantize_q8_0);
                let group = |r: usize| &w[r / 4 * bpr..(r / 4 + 1) * bpr];
                let act = |t: usize| &xq[t * bpr..(t + 1) * bpr];
                self.run(
                    out,
                    n,
                    |r, t| q8_0::dot_x4(group(r), act(t))[r % 4],
                    |r, t| q8_0::dot_x4(group(r), act(t)),
                );
            }
            Blocks::Q8_0(w) => {
                let xq = quantize_rows(x, self.cols, quantize_q8_0);
                let row = |r: usize| &w[r * bpr..(r + 1) * bpr];
                let act = |t: usize| &xq[t * bpr..(t + 1) * bpr];
                self.run(
                    out,
                    n,
                    |r, t| q8_0::dot(row(r), act(t)),
                    |r, t| q8_0::dot4([row(r), row(r + 1), row(r + 2), row(r + 3)], act(t)),
                );
            }
        }
    }

    /// Fills `out` (token-major) from `dot(row, token)` / `dot4(first row, token)`, four
    /// rows at a time, weight rows outermost so they stay in cache across a prompt's
    /// tokens. With one token the chunks are slices of `out` itself; with several, a
    /// row-major buffer is transposed afterwards.
    fn run(
        &self,
        out: &mut [f32],
        n: usize,
        dot: impl Fn(usize, usize) -> f32 + Sync,
        dot4: impl Fn(usize, usize) -> [f32; 4] + Sync,
    ) {
        let threads = rayon::current_num_threads();
        // Rows `first..first + o.len() / n` into `o`, laid out (row, token).
        let body = |first: usize, o: &mut [f32]| {
            let rows = o.len() / n;
            let mut r = 0;
            while r + 4 <= rows {
                for t in 0..n {
                    let v = dot4(first + r, t);
                    for (k, vk) in v.into_iter().enumerate() {
                        o[(r + k) * n + t] = vk;
                    }
                }
                r += 4;
            }
            for r in r..rows {
                for t in 0..n {
                    o[r * n + t] = dot(first + r, t);
                }
            }
        };
        let size = chunk_rows(self.rows, threads);
        let split = |buf: &mut [f32]| {
            if threads <= 1 {
                body(0, buf);
            } else {
                buf.par_chunks_mut(size * n)
                    .enumerate()
                    .for_each(|(ci, o)| body(ci * size, o));
            }
        };
        if n == 1 {
            split(out);
            return;
        }
        let mut rt = vec![0f32; self.rows * n];
        split(&mut rt);
        for r in 0..self.rows {
            for t in 0..n {
                out[t * self.rows + r] = rt[r * n + t];
            }
        }
    }
}

fn quantize_rows<B>(x: &[f32], cols: usize, q: fn(&[f32], &mut Vec<B>)) -> Vec<B> {
    let mut all = Vec::with_capacity(x.len() / QK);
    let mut one = Vec::with_capacity(cols / QK);
    for row in x.chunks_exact(cols) {
        q(row, &mut one);
        all.append(&mut one);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize) -> QMatrix {
        let blocks = (0..rows * cols / QK)
            .map(|i| {
                let mut qs = [0u8; 16];
                qs.iter_mut()
                    .enumerate()
                    .for_each(|(j, q)| *q = (i * 7 + j * 13) as u8);
                BlockQ4_1 {
                    d: half::f16::from_f32(0.01 + (i % 5) as f32 * 1e-3).to_bits(),
                    m: half::f16::from_f32(-0.05).to_bits(),
                    qs,
                }
            })
            .collect();
        QMatrix {
            rows,
            cols,
            blocks: Blocks::Q4_1(blocks),
        }
    }

    #[test]
    fn threads_and_batching_do_not_change_a_single_bit() {
        let m = matrix(200, 96);
        let x: Vec<f32> = (0..3 * 96)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let mut one = vec![0f32; 3 * 200];
        m.matmul(&x, &mut one);
        // Each token alone, on the caller's thread.
        for t in 0..3 {
            let mut row = vec![0f32; 200];
            m.matmul(&x[t * 96..(t + 1) * 96], &mut row);
            assert_eq!(row, one[t * 200..(t + 1) * 200]);
        }
        // The batch again on a 3-thread pool.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let mut par = vec![0f32; 3 * 200];
        pool.install(|| m.matmul(&x, &mut par));
        assert_eq!(par, one);
        let mut row = vec![0f32; 200];
        pool.install(|| m.matmul(&x[96..192], &mut row));
        assert_eq!(row, one[200..400]);
        // And the values are the kernel's.
        let Blocks::Q4_1(b) = &m.blocks else {
            unreachable!()
        };
        let mut xq = Vec::new();
        quantize_q8_1(&x[..96], &mut xq);
        assert_eq!(one[5], q4_1::dot_scalar(&b[5 * 3..6 * 3], &xq));
    }

    #[test]
    fn regrouped_matrices_give_the_same_bits_as_row_major_ones() {
        let (rows, cols) = (200, 96);
        let x: Vec<f32> = (0..3 * cols)
            .map(|i| ((i * 53) % 97) as f32 / 40.0 - 1.2)
            .collect();
        let Blocks::Q4_1(b) = matrix(rows, cols).blocks else {
            unreachable!()
        };
        let q8: Vec<BlockQ8_0> = b
            .iter()
            .map(|b| {
                let mut qs = [0i8; QK];
                qs.iter_mut()
                    .zip(b.qs.iter().chain(&b.qs))
                    .for_each(|(q, &v)| *q = v as i8);
                BlockQ8_0 { d: b.d, qs }
            })
            .collect();
        for (plain, grouped) in [
            (Blocks::Q4_1(b.clone()), Blocks::Q4_1(b.clone())),
            (Blocks::Q8_0(q8.clone()), Blocks::Q8_0(q8.clone())),
        ] {
            let plain = QMatrix {
                rows,
                cols,
                blocks: plain,
            };
            let grouped = QMatrix::new(rows, cols, grouped);
            assert!(matches!(
                grouped.blocks,
                Blocks::Q4_1x4(_) | Blocks::Q8_0x4(_)
            ));
            for n in [1, 3] {
                let (mut a, mut g) = (vec![0f32; n * rows], vec![0f32; n * rows]);
                plain.matmul(&x[..n * cols], &mut a);
                grouped.matmul(&x[..n * cols], &mut g);
                assert_eq!(a, g, "{n} tokens");
            }
            for id in [0, 1, 2, 3, 4, 121, 199] {
                let (mut a, mut g) = (vec![0f32; cols], vec![0f32; cols]);
                super::super::math::embedding_row(&plain, id, &mut a);
                super::super::math::embedding_row(&grouped, id, &mut g);
                assert_eq!(a, g, "embedding row {id}");
            }
        }
        // A row count that is not a multiple of 4 stays row-major.
        let odd = QMatrix::new(6, 32, Blocks::Q4_1(b[..6].to_vec()));
        assert!(matches!(odd.blocks, Blocks::Q4_1(_)));
    }
}
