//! Hub download errors. Messages name what to fix and never contain the token.

use crate::ai::cache::NameError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(
        "hub request {url} failed: {reason} (check hf_endpoint / HF_ENDPOINT and the network)"
    )]
    Http { url: String, reason: String },
    #[error("hub answered {status} for {url}{hint}")]
    Status {
        url: String,
        status: u16,
        hint: &'static str,
    },
    #[error("hub response for {url} is unusable: {problem}")]
    Protocol { url: String, problem: String },
    #[error("downloaded {file} does not match the hub's checksum (expected sha256 {expected}, got {actual}); the partial file was removed, retry the download")]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },
    #[error("model cache {path}: {source} (check model_cache_dir / SPLAI_MODEL_CACHE_DIR and its permissions)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} would leave the model cache (a symlink points outside it); remove it")]
    Escape { path: PathBuf },
    #[error("download cancelled")]
    Cancelled,
}

impl HubError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HubError {
        let path = path.into();
        move |source| HubError::Io { path, source }
    }
}
