//! Local CPU sentence embeddings with candle (feature `ai`): model resolution in the model
//! cache, a process-wide cache of loaded models each on its own thread, and the
//! `embedding` executor.

mod bert;
mod error;
mod handler;
mod model;
mod ops;
mod service;

pub use error::EmbedError;
pub use handler::{to_handler_error, EmbeddingHandler};
pub use model::{BertEmbedder, ModelInfo, REQUIRED_FILES};
pub use service::Embedder;

use super::settings::AiSettings;
use crate::runner::CancelToken;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Used when a task names no embedding model.
pub const DEFAULT_EMBEDDING_MODEL: &str = "sentence-transformers/all-MiniLM-L6-v2";
/// Texts per forward pass unless the task says otherwise.
pub const DEFAULT_BATCH: usize = 32;

/// Where `model` (`org/name` or `name`) is in the cache: the hub layout's `main` snapshot
/// (`models--org--name/snapshots/<commit>`) if present, else `<cache>/<org>/<name>`;
/// refusing anything that could leave the cache (see [`crate::ai::cache`]).
pub fn model_dir(cache: &Path, model: &str) -> Result<PathBuf, EmbedError> {
    super::cache::resolve(cache, model, super::cache::DEFAULT_REVISION)
        .map_err(|_| EmbedError::BadModelId(model.to_string()))
}

/// Loaded models by id, shared by the embedding and retrieval executors. A model loads on
/// first use (under the lock, so concurrent first uses load it once) and stays loaded.
pub struct ModelCache {
    cache_dir: PathBuf,
    threads: usize,
    loaded: Mutex<HashMap<String, Arc<Embedder>>>,
}

impl ModelCache {
    pub fn new(settings: &AiSettings) -> Self {
        ModelCache {
            cache_dir: settings.model_cache_dir.clone(),
            threads: settings.threads,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, model: &str) -> Result<Arc<Embedder>, EmbedError> {
        let dir = model_dir(&self.cache_dir, model)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = loaded.get(model) {
            return Ok(e.clone());
        }
        let e = Arc::new(Embedder::start(model, &dir, self.threads)?);
        tracing::info!(
            model,
            version = %e.info().version,
            dimension = e.info().dimension,
            load_ms = e.info().load_ms,
            threads = self.threads,
            "embedding model loaded"
        );
        loaded.insert(model.to_string(), e.clone());
        Ok(e)
    }

    /// Embeds with `model`; a dead model thread is dropped so the next call reloads it.
    pub fn embed(
        &self,
        model: &str,
        texts: Vec<String>,
        batch: usize,
        cancel: &CancelToken,
    ) -> Result<(Vec<Vec<f32>>, ModelInfo), EmbedError> {
        let e = self.get(model)?;
        match e.embed(texts, batch, cancel) {
            Ok(v) => Ok((v, e.info().clone())),
            Err(err @ EmbedError::ThreadGone(_)) => {
                self.loaded
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(model);
                Err(err)
            }
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_stay_inside_the_cache() {
        let c = Path::new("/c");
        assert_eq!(
            model_dir(c, "org/name-1.5").unwrap(),
            PathBuf::from("/c/org/name-1.5")
        );
        assert_eq!(model_dir(c, "name").unwrap(), PathBuf::from("/c/name"));
        for bad in [
            "../x",
            "a/../../b",
            "/abs",
            "a/b/c",
            "",
            "a//b",
            ".hidden/x",
        ] {
            assert!(
                matches!(model_dir(c, bad), Err(EmbedError::BadModelId(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_missing_model_names_the_file_and_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let settings = AiSettings {
            model_cache_dir: tmp.path().to_path_buf(),
            ..AiSettings::default()
        };
        let cache = ModelCache::new(&settings);
        let e = cache.get("org/absent").map(|_| ()).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("not installed")
                && msg.contains("config.json is missing")
                && msg.contains("model_download"),
            "{msg}"
        );
    }
}
