//! Embedding errors, each saying what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model id {0:?} is invalid: use <org>/<name> (letters, digits, `-`, `_`, `.`; no `..`)")]
    BadModelId(String),
    #[error("embedding model {model} is not installed: {path} is missing; run a model_download task for it, or place config.json, tokenizer.json and model.safetensors in {dir}")]
    NotInstalled {
        model: String,
        dir: PathBuf,
        path: PathBuf,
    },
    #[error("embedding model {model}: cannot load {path}: {problem}")]
    Load {
        model: String,
        path: PathBuf,
        problem: String,
    },
    #[error("embedding model {model}: tokenizer failed: {problem}")]
    Tokenize { model: String, problem: String },
    #[error("embedding model {model}: inference failed: {problem}")]
    Inference { model: String, problem: String },
    #[error("embedding model {model} produced an invalid vector for text {index}: {problem}")]
    InvalidVector {
        model: String,
        index: usize,
        problem: String,
    },
    #[error("the embedding thread for {0} is gone (it panicked or could not start); the next task reloads the model")]
    ThreadGone(String),
    #[error("embedding cancelled")]
    Cancelled,
}
