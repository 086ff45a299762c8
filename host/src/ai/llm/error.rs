//! LLM errors, each naming what is wrong and what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error(
        "llm model id {0:?} is invalid: use <org>/<name> (letters, digits, `-`, `_`, `.`; no `..`)"
    )]
    BadModelId(String),
    #[error("llm model {model} is not installed: {problem}; run a model_download task for it, or place its .gguf file in {dir}")]
    NotInstalled {
        model: String,
        dir: PathBuf,
        problem: String,
    },
    #[error("parameter `model_file`: {0}")]
    BadModelFile(String),
    #[error("llm model {model}: cannot load {path}: {problem}")]
    Load {
        model: String,
        path: PathBuf,
        problem: String,
    },
    #[error("llm model {model}: unsupported GGUF: {problem}")]
    Unsupported { model: String, problem: String },
    #[error("parameter `{field}`: {problem}")]
    Request { field: String, problem: String },
    #[error("llm model {model}: inference failed: {problem}")]
    Inference { model: String, problem: String },
    #[error("the llm thread for {0} is gone (it panicked or could not start); the next task reloads the model")]
    ThreadGone(String),
    #[error("llm inference cancelled")]
    Cancelled,
}

impl LlmError {
    pub fn request(field: impl Into<String>, problem: impl Into<String>) -> Self {
        LlmError::Request {
            field: field.into(),
            problem: problem.into(),
        }
    }
}
