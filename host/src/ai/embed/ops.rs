//! BERT's heavy steps on raw f32 slices: the matrix products as direct calls into the
//! `gemm` crate (the GEMM candle itself runs), and the element-wise steps fused into them.
//!
//! Why not candle's ops: candle decides GEMM splitting for the whole process from
//! `RAYON_NUM_THREADS`, and split GEMMs on a one-thread compute lane ran at 60-65% of
//! unsplit ones; it runs the per-head attention products one after another; and its
//! element-wise ops over 64 Ki values go to a process-wide spinning "barrier pool"
//! (`CANDLE_NUM_THREADS`, default every physical core) that serves one caller at a time,
//! so two lanes queued on it and its spinning threads took their cores (batch 32 at two
//! threads: 210-222 sentences/s with the pool, 275-289 without). Here each call says how
//! it uses threads, and the element-wise steps ride along a pass that happens anyway:
//! a dense layer writes its bias into the output and the GEMM adds onto it
//! (`dst = 1·dst + x·Wᵀ`, the sum candle's `matmul` + `broadcast_add` computes), then
//! adds the residual or applies the activation in the same place; the attention mask is
//! the scores' starting value. Layer norm and softmax stay candle-nn's (they split on the
//! current rayon pool, i.e. not at all on a lane).

use candle_core::{CpuStorage, Result, Storage, Tensor};
use candle_nn::VarBuilder;
pub use gemm::Parallelism;
use rayon::prelude::*;

/// Runs `f` on `t`'s values as one contiguous row-major f32 slice.
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let t = t.contiguous()?;
    let len = t.elem_count();
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(CpuStorage::F32(v)) = &*storage else {
        candle_core::bail!("expected an f32 tensor on the CPU");
    };
    let start = layout.start_offset();
    match v.get(start..start + len) {
        Some(xs) => f(xs),
        None => candle_core::bail!("tensor storage shorter than its shape"),
    }
}

/// `dst (m, n) = alpha·dst + lhs (m, k) · rhs`, single-threaded or split by `par`; `rhs` is
/// `(k, n)` row-major, or `(n, k)` row-major read transposed when `rhs_t`.
///
/// # Safety
/// `dst` holds m·n, `lhs` m·k and `rhs` k·n values.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_rm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    read_dst: bool,
    lhs: &[f32],
    rhs: &[f32],
    rhs_t: bool,
    par: Parallelism,
) {
    debug_assert!(dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n);
    let (rhs_cs, rhs_rs) = if rhs_t {
        (k as isize, 1)
    } else {
        (1, n as isize)
    };
    gemm::gemm(
        m,
        n,
        k,
        dst.as_mut_ptr(),
        1,
        n as isize,
        read_dst,
        lhs.as_ptr(),
        1,
        k as isize,
        rhs.as_ptr(),
        rhs_cs,
        rhs_rs,
        if read_dst { 1.0 } else { 0.0 },
        1.0,
        false,
        false,
        false,
        par,
    );
}

/// Per-head products: `a` `(b, h, m, k)` times `b` `(b, h, k, n)` (or `(b, h, n, k)` read
/// transposed when `b_t`) → `(b, h, m, n)`, plus `add` (`(b, n)`, the same row for every
/// head and query: the additive attention mask) when given. With `par` splitting, the
/// heads spread over the current rayon pool; each product itself runs on one thread.
pub fn per_head(
    a: &Tensor,
    b: &Tensor,
    b_t: bool,
    add: Option<&[f32]>,
    par: Parallelism,
) -> Result<Tensor> {
    let (bs, h, m, k) = a.dims4()?;
    let (bb, hb, r, c) = b.dims4()?;
    let n = if b_t { r } else { c };
    if (bb, hb, if b_t { c } else { r }) != (bs, h, k) {
        candle_core::bail!("per-head product: {:?} by {:?}", a.dims(), b.dims());
    }
    if add.is_some_and(|v| v.len() != bs * n) {
        candle_core::bail!(
            "per-head product: mask of {} values for ({bs}, {n})",
            add.map_or(0, |v| v.len())
        );
    }
    let mut dst = vec![0f32; bs * h * m * n];
    with_f32(a, |av| {
        with_f32(b, |bv| {
            let one = |(i, d): (usize, &mut [f32])| {
                if let Some(add) = add {
                    let row = &add[(i / h) * n..(i / h + 1) * n];
                    d.chunks_exact_mut(n).for_each(|r| r.copy_from_slice(row));
                }
                // SAFETY: head i of `a` is m·k values at i·m·k, of `b` k·n at i·k·n, and
                // `d` is its m·n chunk of `dst` (lengths from the checked dims above).
                unsafe {
                    gemm_rm(
                        m,
                        n,
                        k,
                        d,
                        add.is_some(),
                        &av[i * m * k..(i + 1) * m * k],
                        &bv[i * k * n..(i + 1) * k * n],
                        b_t,
                        Parallelism::None,
                    )
                }
            };
            match par {
                Parallelism::None => dst.chunks_mut(m * n).enumerate().for_each(one),
                _ => dst.par_chunks_mut(m * n).enumerate().for_each(one),
            }
            Ok(())
        })
    })?;
    Tensor::from_vec(dst, (bs, h, m, n), a.device())
}

/// What a dense layer does to its output after `x Wᵀ + b`, in the same pass.
#[derive(Clone, Copy)]
pub enum Post<'a> {
    None,
    /// Adds a residual of the output's shape.
    Residual(&'a Tensor),
    /// GELU with erf, as candle's `gelu_erf` (BERT's `"gelu"`).
    GeluErf,
    /// GELU's tanh approximation, as candle's `gelu` (BERT's `"gelu_new"`).
    GeluTanh,
    Relu,
}

pub struct Dense {
    /// `Wᵀ`, row-major `(inp, out)`, so the GEMM reads it contiguously.
    wt: Vec<f32>,
    b: Vec<f32>,
    inp: usize,
    out: usize,
}

impl Dense {
    pub fn load(vb: &VarBuilder, inp: usize, out: usize) -> Result<Dense> {
        let w = vb.get((out, inp), "weight")?;
        let b = vb.get(out, "bias")?;
        Dense::from_parts(&w, &b)
    }

    /// `w`: `(out, inp)` as stored in the checkpoint, `b`: `(out)`.
    pub fn from_parts(w: &Tensor, b: &Tensor) -> Result<Dense> {
        let (out, inp) = w.dims2()?;
        let b = b.to_vec1::<f32>()?;
        if b.len() != out {
            candle_core::bail!("dense layer: bias has {} values for {out} outputs", b.len());
        }
        let wt = w.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        Ok(Dense { wt, b, inp, out })
    }

    /// `x`: `(tokens, inp)` f32 on the CPU → `post(x Wᵀ + b)`, `(tokens, out)`.
    pub fn forward(&self, x: &Tensor, post: Post, par: Parallelism) -> Result<Tensor> {
        let (m, k) = x.dims2()?;
        if k != self.inp {
            candle_core::bail!(
                "dense layer: input has {k} features, the weights {}",
                self.inp
            );
        }
        let n = self.out;
        let mut dst = Vec::with_capacity(m * n);
        for _ in 0..m {
            dst.extend_from_slice(&self.b);
        }
        with_f32(x, |xs| {
            // SAFETY: `dst` is m rows of the n-value bias, `xs` m·k values (its dims), and
            // `wt` k·n (built from a (n, k) weight in `from_parts`, k == self.inp).
            unsafe { gemm_rm(m, n, k, &mut dst, true, xs, &self.wt, false, par) };
            Ok(())
        })?;
        match post {
            Post::None => {}
            Post::Residual(r) => {
                if r.dims() != [m, n] {
                    candle_core::bail!(
                        "dense layer: residual {:?} for output ({m}, {n})",
                        r.dims()
                    );
                }
                with_f32(r, |rs| {
                    dst.iter_mut().zip(rs).for_each(|(d, r)| *d += r);
                    Ok(())
                })?;
            }
            Post::GeluErf => dst.iter_mut().for_each(|v| *v = gelu_erf(*v)),
            Post::GeluTanh => dst.iter_mut().for_each(|v| *v = gelu_tanh(*v)),
            Post::Relu => dst.iter_mut().for_each(|v| *v = v.max(0.0)),
        }
        Tensor::from_vec(dst, (m, n), x.device())
    }
}

/// candle's `gelu_erf` for f32, the same expression so the same bits.
#[inline]
fn gelu_erf(v: f32) -> f32 {
    (candle_core::cpu::erf::erf_f32(v * std::f32::consts::FRAC_1_SQRT_2) + 1.) * 0.5 * v
}

/// candle's `gelu` (tanh approximation) for f32, the same expression so the same bits.
#[inline]
fn gelu_tanh(v: f32) -> f32 {
    // candle's literal, so the same f32.
    #[allow(clippy::excessive_precision)]
    const SQRT_TWO_OVER_PI: f32 = 0.797_884_560_802_865_355_879_892_119_868_763_73;
    0.5 * v * (1.0 + f32::tanh(SQRT_TWO_OVER_PI * v * (1.0 + 0.044715 * v * v)))
}

/// BERT's input embeddings before their layer norm: `(word[id] + position[t]) + type0`
/// for each of `ids` (`rows` texts of `seq` tokens, row-major) → `(rows·seq, h)`.
pub fn embeddings(
    word: &Tensor,
    position: &Tensor,
    type0: &Tensor,
    ids: &[u32],
    seq: usize,
) -> Result<Tensor> {
    let (vocab, h) = word.dims2()?;
    let max_pos = position.dim(0)?;
    if seq == 0 || seq > max_pos {
        candle_core::bail!("sequence of {seq} tokens exceeds max_position_embeddings {max_pos}");
    }
    if !ids.len().is_multiple_of(seq) {
        candle_core::bail!("embeddings: {} ids in rows of {seq} tokens", ids.len());
    }
    let mut out = vec![0f32; ids.len() * h];
    with_f32(word, |w| {
        with_f32(position, |p| {
            with_f32(type0, |t0| {
                for (i, (&id, o)) in ids.iter().zip(out.chunks_exact_mut(h)).enumerate() {
                    let id = id as usize;
                    if id >= vocab {
                        candle_core::bail!(
                            "embeddings: token id {id} outside the vocabulary of {vocab}"
                        );
                    }
                    let (wr, pr) = (
                        &w[id * h..(id + 1) * h],
                        &p[(i % seq) * h..(i % seq + 1) * h],
                    );
                    for j in 0..h {
                        o[j] = (wr[j] + pr[j]) + t0[j];
                    }
                }
                Ok(())
            })
        })
    })?;
    Tensor::from_vec(out, (ids.len(), h), word.device())
}

/// Mean over the tokens `mask` keeps (0/1 per token, `(b, seq)`), then L2 normalisation
/// (sentence-transformers' Pooling(mean) → Normalize), in candle's order of operations:
/// `Σ h·m / max(Σ m, 1e-9)`, divided by `max(‖mean‖, 1e-12)`. `hidden`: `(b·seq, h)`.
pub fn mean_pool_normalize(hidden: &Tensor, mask: &[f32], seq: usize) -> Result<Vec<Vec<f32>>> {
    let (rows, h) = hidden.dims2()?;
    if seq == 0 || rows != mask.len() || !rows.is_multiple_of(seq) {
        candle_core::bail!(
            "mean pooling: {rows} hidden rows for a mask of {}",
            mask.len()
        );
    }
    with_f32(hidden, |hs| {
        Ok(hs
            .chunks_exact(seq * h)
            .zip(mask.chunks_exact(seq))
            .map(|(text, m)| {
                let mut sum = vec![0f32; h];
                for (tok, &mt) in text.chunks_exact(h).zip(m) {
                    sum.iter_mut().zip(tok).for_each(|(s, &x)| *s += x * mt);
                }
                let count = m.iter().sum::<f32>().clamp(1e-9, f32::MAX);
                sum.iter_mut().for_each(|s| *s /= count);
                let norm = sum
                    .iter()
                    .map(|x| x * x)
                    .sum::<f32>()
                    .sqrt()
                    .clamp(1e-12, f32::MAX);
                sum.iter_mut().for_each(|s| *s /= norm);
                sum
            })
            .collect())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Deterministic test values in [-1, 1].
    fn wave(len: usize, step: f32, seed: f32) -> Vec<f32> {
        (0..len).map(|i| (i as f32 * step + seed).sin()).collect()
    }

    #[test]
    fn equals_candle_matmul_plus_bias_in_every_split() {
        let dev = Device::Cpu;
        let (m, k, n) = (7, 33, 19);
        let vals = |len: usize, seed: f32| wave(len, 0.37, seed);
        let x = Tensor::from_vec(vals(m * k, 0.1), (m, k), &dev).unwrap();
        let w = Tensor::from_vec(vals(n * k, 0.7), (n, k), &dev).unwrap();
        let b = Tensor::from_vec(vals(n, 1.3), n, &dev).unwrap();
        let want = x
            .matmul(&w.t().unwrap())
            .unwrap()
            .broadcast_add(&b)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let d = Dense::from_parts(&w, &b).unwrap();
        for par in [Parallelism::None, Parallelism::Rayon(2)] {
            let got = d
                .forward(&x, Post::None, par)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            for (gr, wr) in got.iter().zip(&want) {
                for (g, w) in gr.iter().zip(wr) {
                    assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{g} vs {w}");
                }
            }
        }
        // A transposed (non-contiguous) input gives the same rows.
        let run = |x: &Tensor, post: Post| {
            d.forward(x, post, Parallelism::None)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()
        };
        let xt = x.t().unwrap().contiguous().unwrap().t().unwrap();
        let plain = run(&x, Post::None);
        assert_eq!(run(&xt, Post::None), plain);
        // The fused steps give candle's ops' bits.
        let pt = Tensor::new(plain.clone(), &dev).unwrap();
        let res = Tensor::from_vec(vals(m * n, 2.1), (m, n), &dev).unwrap();
        let want = (&pt + &res).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(run(&x, Post::Residual(&res)), want);
        let want = pt.gelu_erf().unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(run(&x, Post::GeluErf), want);
        let want = pt.gelu().unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(run(&x, Post::GeluTanh), want);
        let want = pt.relu().unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(run(&x, Post::Relu), want);
        let wrong = Tensor::zeros((m, n + 1), candle_core::DType::F32, &dev).unwrap();
        let e = d
            .forward(&x, Post::Residual(&wrong), Parallelism::None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("residual"), "{e}");
    }

    #[test]
    fn per_head_equals_candle_matmul_both_ways() {
        let dev = Device::Cpu;
        let (b, h, m, k, n) = (2, 3, 5, 4, 6);
        let vals = |len: usize, seed: f32| wave(len, 0.53, seed);
        let q = Tensor::from_vec(vals(b * h * m * k, 0.2), (b, h, m, k), &dev).unwrap();
        let kt = Tensor::from_vec(vals(b * h * n * k, 0.9), (b, h, n, k), &dev).unwrap();
        let v = Tensor::from_vec(vals(b * h * k * n, 0.4), (b, h, k, n), &dev).unwrap();
        let close = |got: Tensor, want: Tensor| {
            let (g, w) = (
                got.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                want.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            assert_eq!(g.len(), w.len());
            for (g, w) in g.iter().zip(&w) {
                assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{g} vs {w}");
            }
        };
        for par in [Parallelism::None, Parallelism::Rayon(2)] {
            let want = q.matmul(&kt.t().unwrap()).unwrap();
            close(per_head(&q, &kt, true, None, par).unwrap(), want);
            let mask: Vec<f32> = (0..b * n)
                .map(|i| if i % 4 == 3 { f32::MIN } else { 0.0 })
                .collect();
            let mt = Tensor::from_vec(mask.clone(), (b, 1, 1, n), &dev).unwrap();
            let want = q
                .matmul(&kt.t().unwrap())
                .unwrap()
                .broadcast_add(&mt)
                .unwrap();
            close(per_head(&q, &kt, true, Some(&mask), par).unwrap(), want);
            let want = q.matmul(&v).unwrap();
            close(per_head(&q, &v, false, None, par).unwrap(), want);
        }
        let e = per_head(&q, &q, false, None, Parallelism::None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("per-head product"), "{e}");
    }

    #[test]
    fn embeddings_and_pooling_equal_candle_ops() {
        let dev = Device::Cpu;
        let (vocab, maxpos, h, seq) = (11, 6, 5, 4);
        let vals = |len: usize, seed: f32| wave(len, 0.71, seed);
        let word = Tensor::from_vec(vals(vocab * h, 0.3), (vocab, h), &dev).unwrap();
        let pos = Tensor::from_vec(vals(maxpos * h, 1.1), (maxpos, h), &dev).unwrap();
        let t0 = Tensor::from_vec(vals(h, 2.5), (1, h), &dev).unwrap();
        let ids = [3u32, 0, 10, 7, 1, 2, 0, 0];
        let it = Tensor::from_vec(ids.to_vec(), ids.len(), &dev).unwrap();
        let want = word
            .index_select(&it, 0)
            .unwrap()
            .reshape((2, seq, h))
            .unwrap()
            .broadcast_add(&pos.narrow(0, 0, seq).unwrap())
            .unwrap()
            .broadcast_add(&t0)
            .unwrap()
            .reshape((2 * seq, h))
            .unwrap();
        let got = embeddings(&word, &pos, &t0, &ids, seq).unwrap();
        assert_eq!(
            got.to_vec2::<f32>().unwrap(),
            want.to_vec2::<f32>().unwrap()
        );
        let e = embeddings(&word, &pos, &t0, &[11, 0, 0, 0], seq)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("token id 11 outside the vocabulary of 11"),
            "{e}"
        );

        let mask = [1f32, 1., 1., 0., 1., 1., 0., 0.];
        let pooled = mean_pool_normalize(&got, &mask, seq).unwrap();
        let m = Tensor::from_vec(mask.to_vec(), (2, seq, 1), &dev).unwrap();
        let hid = got.reshape((2, seq, h)).unwrap();
        let mean = hid
            .broadcast_mul(&m)
            .unwrap()
            .sum(1)
            .unwrap()
            .broadcast_div(&m.sum(1).unwrap())
            .unwrap();
        let norm = mean.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap();
        let want = mean.broadcast_div(&norm).unwrap().to_vec2::<f32>().unwrap();
        for (g, w) in pooled.iter().flatten().zip(want.iter().flatten()) {
            assert!((g - w).abs() <= 1e-6, "{g} vs {w}");
        }
    }

    #[test]
    fn refuses_a_mismatched_input() {
        let dev = Device::Cpu;
        let w = Tensor::zeros((4, 3), candle_core::DType::F32, &dev).unwrap();
        let b = Tensor::zeros(4, candle_core::DType::F32, &dev).unwrap();
        let d = Dense::from_parts(&w, &b).unwrap();
        let x = Tensor::zeros((2, 5), candle_core::DType::F32, &dev).unwrap();
        let e = d
            .forward(&x, Post::None, Parallelism::None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("input has 5 features, the weights 3"), "{e}");
    }
}
