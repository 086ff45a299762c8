//! The BERT sentence embedder: candle `BertModel` + tokenizer, mean pooling over the
//! attention mask and L2 normalisation, i.e. what sentence-transformers does for
//! all-MiniLM-L6-v2 (Transformer → Pooling(mean) → Normalize).
//!
//! A model directory holds `config.json`, `tokenizer.json`, `model.safetensors` and
//! optionally `sentence_bert_config.json` (`max_seq_length`, default 256 capped by the
//! model's position embeddings).

use super::error::EmbedError;
use candle_core::{Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config, DTYPE};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

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
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
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
        let pad_token = tokenizer
            .id_to_token(config.pad_token_id as u32)
            .unwrap_or_else(|| "[PAD]".to_string());
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id: config.pad_token_id as u32,
            pad_token,
            ..PaddingParams::default()
        }));
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
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(weights, DTYPE, &device)
            .map_err(|e| load_err(model, &weights_path, e))?;
        let bert = BertModel::load(vb, &config).map_err(|e| load_err(model, &weights_path, e))?;
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
            device,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Unit-length embeddings of `texts`, in order (one forward pass for the whole slice).
    pub fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let model = &self.info.model;
        let inference = |e: candle_core::Error| EmbedError::Inference {
            model: model.clone(),
            problem: e.to_string(),
        };
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenize {
                model: model.clone(),
                problem: e.to_string(),
            })?;
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, EmbedError> {
            let rows = encodings
                .iter()
                .map(|e| Tensor::new(f(e), &self.device))
                .collect::<Result<Vec<_>, _>>()
                .map_err(inference)?;
            Tensor::stack(&rows, 0).map_err(inference)
        };
        let ids = rows(&|e| e.get_ids())?;
        let mask = rows(&|e| e.get_attention_mask())?;
        let type_ids = ids.zeros_like().map_err(inference)?;
        let pooled = (|| {
            let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?; // (b, seq, h)
            let m = mask.to_dtype(DTYPE)?.unsqueeze(2)?; // (b, seq, 1)
            let summed = hidden.broadcast_mul(&m)?.sum(1)?; // (b, h)
            let counts = m.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (b, 1)
            let mean = summed.broadcast_div(&counts)?;
            let norm = mean
                .sqr()?
                .sum_keepdim(1)?
                .sqrt()?
                .clamp(1e-12f32, f32::MAX)?;
            mean.broadcast_div(&norm)?.to_vec2::<f32>()
        })()
        .map_err(inference)?;
        for (i, v) in pooled.iter().enumerate() {
            if v.is_empty() || v.iter().any(|x| !x.is_finite()) {
                return Err(EmbedError::InvalidVector {
                    model: model.clone(),
                    index: i,
                    problem: "empty or not finite".into(),
                });
            }
        }
        Ok(pooled)
    }
}
