//! The BERT sentence embedder: tokenizer + our lean candle BERT forward ([`super::bert`]),
//! mean pooling over the attention mask and L2 normalisation, i.e. what
//! sentence-transformers does for all-MiniLM-L6-v2 (Transformer → Pooling(mean) → Normalize).
//! A batch is run as sub-batches of similar token length, so short texts are not padded
//! to the longest one (each text's vector does not depend on its batch-mates).
//!
//! A model directory holds `config.json`, `tokenizer.json`, `model.safetensors` and
//! optionally `sentence_bert_config.json` (`max_seq_length`, default 256 capped by the
//! model's position embeddings).

use super::bert::Bert;
use super::error::EmbedError;
use super::ops::{mean_pool_normalize, Parallelism};
use candle_core::Device;
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{Config, DTYPE};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokenizers::{Tokenizer, TruncationParams};

pub const REQUIRED_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];
const DEFAULT_MAX_SEQ: usize = 256;

/// What is known about a loaded model, for outputs and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub model: String,
    /// `sha256:<first 12 hex>` of the weights.
    pub version: String,
    pub dimension: usize,
    pub max_seq_length: usize,
    pub load_ms: u64,
}

pub struct BertEmbedder {
    info: ModelInfo,
    model: Bert,
    tokenizer: Tokenizer,
    pad_id: u32,
}

fn load_err(model: &str, path: &Path, problem: impl ToString) -> EmbedError {
    EmbedError::Load {
        model: model.to_string(),
        path: path.to_path_buf(),
        problem: problem.to_string(),
    }
}

fn max_seq_length(dir: &Path, config: &Config) -> usize {
    let from_st = std::fs::read(dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("max_seq_length").and_then(|x| x.as_u64()))
        .map(|n| n as usize);
    from_st
        .unwrap_or(DEFAULT_MAX_SEQ)
        .min(config.max_position_embeddings)
        .max(2)
}

impl BertEmbedder {
    /// Loads `dir` for model id `model`. Checks the files first so a missing model gives
    /// one clear message.
    pub fn load(model: &str, dir: &Path) -> Result<BertEmbedder, EmbedError> {
        let started = std::time::Instant::now();
        for f in REQUIRED_FILES {
            let path = dir.join(f);
            if !path.is_file() {
                return Err(EmbedError::NotInstalled {
                    model: model.to_string(),
                    dir: dir.to_path_buf(),
                    path,
                });
            }
        }
        let path = |f: &str| -> PathBuf { dir.join(f) };
        let config_path = path("config.json");
        let config: Config = std::fs::read(&config_path)
            .map_err(|e| load_err(model, &config_path, e))
            .and_then(|b| {
                serde_json::from_slice(&b).map_err(|e| load_err(model, &config_path, e))
            })?;
        let max_seq = max_seq_length(dir, &config);

        let tok_path = path("tokenizer.json");
        let mut tokenizer =
            Tokenizer::from_file(&tok_path).map_err(|e| load_err(model, &tok_path, e))?;
        // Padding is done per sub-batch in `embed_batch`, not by the tokenizer.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_seq,
                ..TruncationParams::default()
            }))
            .map_err(|e| load_err(model, &tok_path, e))?;

        let weights_path = path("model.safetensors");
        let weights =
            std::fs::read(&weights_path).map_err(|e| load_err(model, &weights_path, e))?;
        let version = format!("sha256:{}", &hex::encode(Sha256::digest(&weights))[..12]);
        let vb = VarBuilder::from_buffered_safetensors(weights, DTYPE, &Device::Cpu)
            .map_err(|e| load_err(model, &weights_path, e))?;
        let bert = Bert::load(vb, &config).map_err(|e| load_err(model, &weights_path, e))?;
        Ok(BertEmbedder {
            info: ModelInfo {
                model: model.to_string(),
                version,
                dimension: config.hidden_size,
                max_seq_length: max_seq,
                load_ms: started.elapsed().as_millis() as u64,
            },
            model: bert,
            tokenizer,
            pad_id: config.pad_token_id as u32,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Unit-length embeddings of `texts`, in order. Texts are grouped into sub-batches of
    /// similar token length (one forward pass each) so padding stays small, and spread
    /// over `lanes` (one-thread pools; with fewer than two, everything runs on `pool`).
    /// Call it from a thread outside both.
    pub fn embed_batch(
        &self,
        texts: &[String],
        pool: &rayon::ThreadPool,
        lanes: &[rayon::ThreadPool],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let model = &self.info.model;
        let inference = |e: candle_core::Error| EmbedError::Inference {
            model: model.clone(),
            problem: e.to_string(),
        };
        let encodings = pool
            .install(|| self.tokenizer.encode_batch(texts.to_vec(), true))
            .map_err(|e| EmbedError::Tokenize {
                model: model.clone(),
                problem: e.to_string(),
            })?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].get_ids().len()));
        let lens: Vec<usize> = order
            .iter()
            .map(|&i| encodings[i].get_ids().len())
            .collect();
        let run_part = |&(start, end): &(usize, usize), par: Parallelism| {
            let mut part = Vec::with_capacity(end - start);
            for (s, e) in sub_batches(&lens[start..end]) {
                let idx = &order[start + s..start + e];
                let seq = lens[start + s].max(1);
                let pooled = self.forward(idx, seq, &encodings, par).map_err(inference)?;
                part.extend(idx.iter().copied().zip(pooled));
            }
            Ok::<_, EmbedError>(part)
        };
        // Texts are independent, so a batch splits into one part per lane, each run on
        // its lane's single thread with unsplit matrix products: two forwards splitting
        // their GEMMs on one shared pool steal each other's halves and wait on them, which
        // ran slower than one forward at a time. A lane is a one-thread pool so that
        // candle-nn's softmax and layer norm, which split on the current rayon pool, stay
        // on it too. Lanes are entered from plain threads, which block without spinning
        // (a pool worker waiting on another pool spins, and took the lanes' cores). A
        // single part (one text) runs on `pool`, its products split across the pool.
        let parts = balanced_parts(&lens, lanes.len().max(1));
        let done: Vec<Vec<(usize, Vec<f32>)>> = if parts.len() <= 1 {
            // `texts` is not empty, so there is exactly one part.
            let par = match pool.current_num_threads() {
                1 => Parallelism::None,
                n => Parallelism::Rayon(n),
            };
            vec![pool.install(|| run_part(&parts[0], par))?]
        } else {
            std::thread::scope(|s| {
                let others: Vec<_> = parts[1..]
                    .iter()
                    .zip(&lanes[1..])
                    .map(|(part, lane)| {
                        s.spawn(|| lane.install(|| run_part(part, Parallelism::None)))
                    })
                    .collect();
                let first = lanes[0].install(|| run_part(&parts[0], Parallelism::None));
                std::iter::once(first)
                    .chain(others.into_iter().map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(EmbedError::Inference {
                                model: model.clone(),
                                problem: "a compute lane panicked".into(),
                            })
                        })
                    }))
                    .collect::<Result<_, _>>()
            })?
        };
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for (i, v) in done.into_iter().flatten() {
            if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
                return Err(EmbedError::InvalidVector {
                    model: model.clone(),
                    index: i,
                    problem: "empty or not finite".into(),
                });
            }
            out[i] = v;
        }
        Ok(out)
    }

    /// One forward pass over the texts `idx` (of `encodings`), padded to `seq` tokens;
    /// their pooled, normalised vectors in `idx`'s order.
    fn forward(
        &self,
        idx: &[usize],
        seq: usize,
        encodings: &[tokenizers::Encoding],
        par: Parallelism,
    ) -> candle_core::Result<Vec<Vec<f32>>> {
        let mut ids = vec![self.pad_id; idx.len() * seq];
        let mut mask = vec![0f32; idx.len() * seq];
        for (row, &i) in idx.iter().enumerate() {
            let e = &encodings[i];
            for (t, (&id, &m)) in e.get_ids().iter().zip(e.get_attention_mask()).enumerate() {
                ids[row * seq + t] = id;
                mask[row * seq + t] = m as f32;
            }
        }
        let hidden = self.model.forward(&ids, &mask, seq, par)?;
        mean_pool_normalize(&hidden, &mask, seq)
    }
}

/// Splits token lengths sorted longest first into at most `parts` contiguous `(start, end)`
/// runs of about equal token count (the dense layers' cost), one per compute thread.
fn balanced_parts(lens: &[usize], parts: usize) -> Vec<(usize, usize)> {
    let parts = parts.clamp(1, lens.len().max(1));
    let total: usize = lens.iter().map(|&l| l.max(1)).sum();
    let mut out = Vec::with_capacity(parts);
    let (mut start, mut acc) = (0, 0);
    for (i, &l) in lens.iter().enumerate() {
        acc += l.max(1);
        // Cut once this part holds its share; the rest is left for the remaining parts.
        let share = total * (out.len() + 1) / parts;
        if out.len() + 1 < parts && acc >= share {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < lens.len() {
        out.push((start, lens.len()));
    }
    out
}

/// Splits token lengths sorted longest first into `(start, end)` runs whose shortest text
/// is at least 80% of the longest, so padding wastes at most ~20% of a sub-batch.
/// The dense layers see `texts x tokens` rows either way, so smaller sub-batches cost little.
fn sub_batches(lens: &[usize]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=lens.len() {
        if i == lens.len() || lens[i] * 5 < lens[start] * 4 {
            out.push((start, i));
            start = i;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{balanced_parts, sub_batches};

    #[test]
    fn balanced_parts_split_tokens_evenly_and_cover_all() {
        assert_eq!(balanced_parts(&[], 2), vec![]);
        assert_eq!(balanced_parts(&[9], 4), vec![(0, 1)]);
        assert_eq!(balanced_parts(&[5, 5, 5, 5], 1), vec![(0, 4)]);
        assert_eq!(balanced_parts(&[5, 5, 5, 5], 2), vec![(0, 2), (2, 4)]);
        // Longest first: the first part holds fewer, longer texts.
        assert_eq!(balanced_parts(&[30, 10, 10, 5, 5], 2), vec![(0, 1), (1, 5)]);
        assert_eq!(balanced_parts(&[4, 4, 4], 8), vec![(0, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn sub_batches_cover_all_and_bound_padding() {
        assert_eq!(sub_batches(&[]), vec![]);
        assert_eq!(sub_batches(&[7]), vec![(0, 1)]);
        assert_eq!(
            sub_batches(&[50, 50, 41, 40, 39, 10, 9]),
            vec![(0, 4), (4, 5), (5, 7)]
        );
    }
}
