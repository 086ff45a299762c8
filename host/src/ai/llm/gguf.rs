//! A llama-family GGUF model: candle parses the file, our own forward pass ([`super::model`])
//! computes on its raw Q4_1/Q8_0 blocks the way llama.cpp does; the tokenizer and chat
//! template come from the file's metadata.

use super::chat::{self, Message};
use super::error::LlmError;
use super::generate::Backend;
use super::model::{Model, Weights};
use super::request::PromptInput;
use super::tokenizer::GgufTokenizer;
use candle_core::quantized::gguf_file::Content;
// The context cap candle's llama used, kept so `context_length` (and the F32 KV cache it
// bounds: 4096 positions are ~190 MB for SmolLM2-135M) stays what it was.
use candle_transformers::models::quantized_llama::MAX_SEQ_LEN;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What is known about a loaded model, for outputs and logs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub model: String,
    pub file: PathBuf,
    /// `sha256:<first 12 hex>` of the GGUF file.
    pub version: String,
    pub context_length: usize,
    pub vocab_size: usize,
    pub has_chat_template: bool,
    /// Reading the weights and building the model (the hash excluded).
    pub load_ms: u64,
}

pub struct GgufModel {
    info: ModelInfo,
    model: Model,
    tokenizer: GgufTokenizer,
    template: Option<String>,
}

fn file_version(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", &hex::encode(h.finalize())[..12]))
}

impl GgufModel {
    pub fn load(model: &str, path: &Path) -> Result<GgufModel, LlmError> {
        let load_err = |problem: String| LlmError::Load {
            model: model.to_string(),
            path: path.to_path_buf(),
            problem,
        };
        let unsupported = |problem: String| LlmError::Unsupported {
            model: model.to_string(),
            problem,
        };
        let started = std::time::Instant::now();
        let mut file = std::fs::File::open(path).map_err(|e| load_err(e.to_string()))?;
        let ct = Content::read(&mut file).map_err(|e| load_err(format!("not a GGUF file: {e}")))?;
        let arch = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if arch != "llama" {
            return Err(unsupported(format!(
                "general.architecture = {arch:?}; only \"llama\" models are supported"
            )));
        }
        let tokenizer = GgufTokenizer::from_gguf(&ct).map_err(unsupported)?;
        let template = ct
            .metadata
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        let context_length = ct
            .metadata
            .get("llama.context_length")
            .and_then(|v| v.to_u32().ok())
            .map_or(MAX_SEQ_LEN, |n| (n as usize).min(MAX_SEQ_LEN));
        let weights = Weights::read(&ct, &mut file).map_err(unsupported)?;
        let load_ms = started.elapsed().as_millis() as u64;
        let version = file_version(path).map_err(|e| load_err(e.to_string()))?;
        Ok(GgufModel {
            info: ModelInfo {
                model: model.to_string(),
                file: path.to_path_buf(),
                version,
                context_length,
                vocab_size: tokenizer.vocab_size(),
                has_chat_template: template.is_some(),
                load_ms,
            },
            model: Model::new(weights),
            tokenizer,
            template,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn tokenizer(&self) -> &GgufTokenizer {
        &self.tokenizer
    }

    /// The chat template applied to `messages` (what the model is fed with `chat=true`).
    pub fn render_chat(&self, messages: &[Message]) -> Result<String, LlmError> {
        let Some(t) = &self.template else {
            return Err(LlmError::request(
                "chat",
                format!(
                    "model {} has no chat template (tokenizer.chat_template); set chat=false and give the raw prompt",
                    self.info.model
                ),
            ));
        };
        chat::render(
            t,
            messages,
            &self.tokenizer.bos_text(),
            &self.tokenizer.eos_text(),
        )
        .map_err(|p| LlmError::request("messages_json", p))
    }
}

impl Backend for GgufModel {
    fn model_id(&self) -> &str {
        &self.info.model
    }

    fn context_len(&self) -> usize {
        self.info.context_length
    }

    fn prompt(&self, input: &PromptInput) -> Result<(String, Vec<u32>), LlmError> {
        let text = match input {
            PromptInput::Chat(m) => self.render_chat(m)?,
            PromptInput::Raw(t) => t.clone(),
        };
        let ids = self
            .tokenizer
            .encode(&text, true)
            .map_err(|p| LlmError::request("prompt", format!("cannot be tokenized: {p}")))?;
        Ok((text, ids))
    }

    fn piece(&self, id: u32) -> &[u8] {
        self.tokenizer.piece(id)
    }

    fn is_eog(&self, id: u32) -> bool {
        self.tokenizer.is_eog(id)
    }

    fn forward(&mut self, ids: &[u32], pos: usize) -> Result<Vec<f32>, LlmError> {
        self.model
            .forward(ids, pos)
            .map_err(|problem| LlmError::Inference {
                model: self.info.model.clone(),
                problem,
            })
    }
}
