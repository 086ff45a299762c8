//! The `embedding` executor (splai-worker.md §6.4 HEAD), backed by a local candle model.
//!
//! Inputs: `texts_json` (JSON array of strings; trimmed, empties dropped), else one text
//! from `text`, `prompt` or `op`; backend `embedding_backend`, else `backend`, else
//! `local` (the only one here: a real sentence model, not SPLAI's hash); model
//! `embedding_model`, else `model`, else [`DEFAULT_EMBEDDING_MODEL`]; `batch_size`
//! (default 32). Outputs: `backend`, `model`, `model_version`, `dimension`, `text_count`,
//! `vectors`, and `vector` when there is exactly one text.

use super::{EmbedError, ModelCache, DEFAULT_BATCH, DEFAULT_EMBEDDING_MODEL};
use crate::ai::artifact;
use crate::ai::params::{self, ParamError};
use crate::ai::settings::AiSettings;
use crate::runner::{ExecutionContext, Handler, HandlerError, HandlerOutput};
use astra_core::work::task::codes;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// Most texts one task may embed.
pub const MAX_TEXTS: usize = 4096;
const MAX_BATCH: usize = 256;

pub struct EmbeddingHandler {
    artifact_root: PathBuf,
    models: Arc<ModelCache>,
}

impl EmbeddingHandler {
    pub fn new(settings: &AiSettings, models: Arc<ModelCache>) -> Self {
        EmbeddingHandler {
            artifact_root: settings.artifact_root.clone(),
            models,
        }
    }
}

/// The texts to embed, per the SPLAI precedence.
pub fn texts(p: &Map<String, Value>) -> Result<Vec<String>, ParamError> {
    if let Some(list) = params::string_list(p, "texts_json")? {
        if list.is_empty() {
            return Err(ParamError::new("texts_json", "holds no non-empty text"));
        }
        if list.len() > MAX_TEXTS {
            return Err(ParamError::new(
                "texts_json",
                format!("holds {} texts; at most {MAX_TEXTS} per task", list.len()),
            ));
        }
        return Ok(list);
    }
    match params::first_string(p, &["text", "prompt", "op"])? {
        Some((_, t)) => Ok(vec![t]),
        None => Err(ParamError::new(
            "text",
            "embedding requires non-empty text/prompt (set `texts_json`, `text`, `prompt` or `op`)",
        )),
    }
}

/// Checks the backend (only `local`) and returns the model id.
pub fn backend_and_model(p: &Map<String, Value>) -> Result<String, ParamError> {
    if let Some((field, b)) = params::first_string(p, &["embedding_backend", "backend"])? {
        if !b.eq_ignore_ascii_case("local") {
            return Err(ParamError::new(
                field,
                format!("unsupported embedding backend {b:?}; this worker embeds locally only (`local`)"),
            ));
        }
    }
    Ok(params::first_string(p, &["embedding_model", "model"])?
        .map(|(_, m)| m)
        .unwrap_or_else(|| DEFAULT_EMBEDDING_MODEL.to_string()))
}

/// Maps embedding failures to task errors: a bad or missing model names its parameter.
pub fn to_handler_error(e: EmbedError) -> HandlerError {
    match e {
        EmbedError::Cancelled => HandlerError::with_code(codes::RUNNER_CANCELLED, e.to_string()),
        EmbedError::BadModelId(_) | EmbedError::NotInstalled { .. } => HandlerError::with_code(
            codes::RESOURCE_MISSING,
            format!("parameter `embedding_model`: {e}"),
        ),
        other => HandlerError::new(other.to_string()),
    }
}

impl Handler for EmbeddingHandler {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        let p = &ctx.params;
        let texts = texts(p)?;
        let model = backend_and_model(p)?;
        let batch = params::positive_int(p, "batch_size", DEFAULT_BATCH, MAX_BATCH)?;
        let count = texts.len();
        let started = std::time::Instant::now();
        let (vectors, info) = self
            .models
            .embed(&model, texts, batch, &ctx.cancel)
            .map_err(to_handler_error)?;
        let mut fields = Map::new();
        fields.insert("backend".into(), json!("local"));
        fields.insert("model".into(), json!(info.model));
        fields.insert("model_version".into(), json!(info.version));
        fields.insert("dimension".into(), json!(info.dimension));
        fields.insert("text_count".into(), json!(count));
        if vectors.len() == 1 {
            fields.insert("vector".into(), json!(vectors[0]));
        }
        fields.insert("vectors".into(), json!(vectors));
        fields.insert(
            "duration_ms".into(),
            json!(started.elapsed().as_millis() as u64),
        );
        artifact::finish(&self.artifact_root, ctx, fields)
            .map_err(|e| HandlerError::new(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn text_precedence_and_errors() {
        assert_eq!(
            texts(&p(json!({"texts_json": "[\"a\", \"\"]", "text": "x"}))).unwrap(),
            vec!["a"]
        );
        assert_eq!(
            texts(&p(json!({"prompt": "b", "op": "embed"}))).unwrap(),
            vec!["b"]
        );
        let e = texts(&p(json!({"op": " "}))).unwrap_err();
        assert!(
            e.to_string()
                .contains("embedding requires non-empty text/prompt"),
            "{e}"
        );
        let e = texts(&p(json!({"texts_json": "[\" \"]"}))).unwrap_err();
        assert_eq!(e.field, "texts_json");
        let e = texts(&p(json!({"texts_json": "nope"}))).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("parameter `texts_json`: invalid JSON"),
            "{e}"
        );
    }

    #[test]
    fn backend_and_model_precedence() {
        assert_eq!(
            backend_and_model(&p(json!({}))).unwrap(),
            DEFAULT_EMBEDDING_MODEL
        );
        assert_eq!(
            backend_and_model(&p(
                json!({"model": "m", "embedding_model": "e", "backend": "LOCAL"})
            ))
            .unwrap(),
            "e"
        );
        let e = backend_and_model(&p(json!({"embedding_backend": "ollama"}))).unwrap_err();
        assert_eq!(e.field, "embedding_backend");
        assert!(e
            .problem
            .contains("unsupported embedding backend \"ollama\""));
    }
}
