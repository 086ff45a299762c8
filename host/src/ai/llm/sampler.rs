//! Choosing the next token from logits: greedy (temperature 0) or seeded sampling with
//! temperature, top-k and top-p (nucleus), in that order (as Hugging Face `generate` does).
//!
//! The random source is SplitMix64 seeded from the task's `seed`, so a sampled completion
//! is reproducible on this worker for the same model, prompt and parameters.

/// Decoding parameters, already validated (see `request`).
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0 means greedy.
    pub temperature: f32,
    /// In (0, 1]; 1 keeps every token.
    pub top_p: f32,
    /// 0 keeps every token.
    pub top_k: usize,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            seed: 0,
        }
    }
}

/// SplitMix64: tiny, fast, and good enough to draw one uniform per token.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub struct Sampler {
    cfg: Sampling,
    rng: SplitMix64,
    /// Reused between tokens: (token, probability) candidates.
    scratch: Vec<(u32, f32)>,
}

/// The index of the largest logit; the lowest index wins a tie (as llama.cpp's greedy
/// sampler does). NaN never wins.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    for (i, &v) in logits.iter().enumerate() {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    best as u32
}

impl Sampler {
    pub fn new(cfg: Sampling) -> Self {
        let rng = SplitMix64(cfg.seed);
        Sampler {
            cfg,
            rng,
            scratch: Vec::new(),
        }
    }

    pub fn is_greedy(&self) -> bool {
        self.cfg.temperature <= 0.0
    }

    /// The next token for `logits` (one value per vocabulary entry).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        if self.is_greedy() || logits.len() <= 1 {
            return argmax(logits);
        }
        let t = self.cfg.temperature;
        let cands = &mut self.scratch;
        cands.clear();
        cands.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, &v)| (i as u32, v / t)),
        );
        if cands.is_empty() {
            return argmax(logits);
        }
        // Highest first; ties by lower id so the order (and thus the draw) is deterministic.
        cands.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.cfg.top_k > 0 && cands.len() > self.cfg.top_k {
            cands.truncate(self.cfg.top_k);
        }
        // Softmax over the survivors (stable: subtract the max).
        let max = cands[0].1;
        let mut sum = 0f32;
        for c in cands.iter_mut() {
            c.1 = (c.1 - max).exp();
            sum += c.1;
        }
        for c in cands.iter_mut() {
            c.1 /= sum;
        }
        // Nucleus: the smallest prefix whose mass reaches top_p (at least one token).
        if self.cfg.top_p < 1.0 {
            let mut acc = 0f32;
            let mut keep = cands.len();
            for (i, c) in cands.iter().enumerate() {
                acc += c.1;
                if acc >= self.cfg.top_p {
                    keep = i + 1;
                    break;
                }
            }
            cands.truncate(keep);
        }
        let total: f32 = cands.iter().map(|c| c.1).sum();
        let mut u = self.rng.next_f64() as f32 * total;
        for c in cands.iter() {
            if u < c.1 {
                return c.0;
            }
            u -= c.1;
        }
        // Rounding left `u` past the end: the last candidate.
        cands[cands.len() - 1].0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        vec![1.0, 3.0, 2.9, -1.0, 0.5, 2.0]
    }

    fn draws(cfg: Sampling, n: usize) -> Vec<u32> {
        let mut s = Sampler::new(cfg);
        (0..n).map(|_| s.sample(&logits())).collect()
    }

    #[test]
    fn temperature_zero_is_greedy_and_ties_go_to_the_lowest_id() {
        let cfg = Sampling {
            seed: 7,
            ..Sampling::default()
        };
        assert!(draws(cfg, 20).iter().all(|&t| t == 1));
        assert_eq!(argmax(&[0.5, 2.0, 2.0, f32::NAN]), 1);
    }

    #[test]
    fn the_same_seed_gives_the_same_draws_and_another_seed_differs() {
        let cfg = |seed| Sampling {
            temperature: 1.5,
            top_p: 1.0,
            top_k: 0,
            seed,
        };
        let a = draws(cfg(1), 200);
        assert_eq!(a, draws(cfg(1), 200));
        assert_ne!(a, draws(cfg(2), 200));
        // At a high temperature every token shows up.
        for t in 0..6u32 {
            assert!(a.contains(&t), "token {t} never drawn: {a:?}");
        }
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        // Probabilities at T=1: token 1 and 2 together hold ~0.6 of the mass.
        let cfg = Sampling {
            temperature: 1.0,
            top_p: 0.5,
            top_k: 0,
            seed: 3,
        };
        let d = draws(cfg, 300);
        assert!(d.iter().all(|&t| t == 1 || t == 2), "{d:?}");
        assert!(d.contains(&1) && d.contains(&2));
        // A tiny top_p keeps exactly the most likely token.
        let cfg = Sampling {
            temperature: 1.0,
            top_p: 0.01,
            top_k: 0,
            seed: 3,
        };
        assert!(draws(cfg, 50).iter().all(|&t| t == 1));
    }

    #[test]
    fn top_k_bounds_the_candidates() {
        let cfg = Sampling {
            temperature: 5.0,
            top_p: 1.0,
            top_k: 2,
            seed: 11,
        };
        let d = draws(cfg, 300);
        assert!(d.iter().all(|&t| t == 1 || t == 2), "{d:?}");
    }

    #[test]
    fn temperature_sharpens_and_flattens() {
        let count = |temp: f32| {
            let cfg = Sampling {
                temperature: temp,
                top_p: 1.0,
                top_k: 0,
                seed: 5,
            };
            draws(cfg, 2000).iter().filter(|&&t| t == 1).count()
        };
        // A low temperature picks the top token far more often than a high one.
        assert!(
            count(0.1) > count(3.0) + 500,
            "{} vs {}",
            count(0.1),
            count(3.0)
        );
    }
}
