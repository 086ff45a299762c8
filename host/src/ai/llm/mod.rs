//! Local CPU text generation with candle (feature `ai`): the `llm_inference` executor for
//! llama-family GGUF models, loaded only from the model cache (never from the network).
//!
//! - [`request`]: the task parameters; [`handler`]: the executor (feedback frames while
//!   generating, the result with text, token counts and timings, the output artifact).
//! - [`generate`]: the decoding loop over any [`generate::Backend`]; [`sampler`] and
//!   [`stop`]: token choice and streamed text with stop strings.
//! - [`gguf`]: the GGUF backend, on [`model`]: our llama forward pass (llama.cpp's
//!   numerics, AVX2 kernels, `ai_threads` compute threads); [`tokenizer`] and [`chat`]: llama.cpp-exact token ids
//!   and the model's chat template from the GGUF metadata.
//! - [`service`]: the per-model thread; [`LlmCache`]: loaded models by file.

pub mod chat;
mod error;
pub mod generate;
pub mod gguf;
pub mod handler;
pub mod model;
pub mod request;
pub mod sampler;
pub mod service;
pub mod stop;
pub mod tokenizer;

pub use error::LlmError;
pub use gguf::{GgufModel, ModelInfo};
pub use handler::LlmHandler;

use super::settings::AiSettings;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Used when a task names no model.
pub const DEFAULT_LLM_MODEL: &str = "HuggingFaceTB/SmolLM2-135M-Instruct";

pub type Service = service::LlmService<ModelInfo>;

/// The model directory for `model`, resolved as the embedding models are (so both find
/// models in the same cache layouts).
pub fn model_dir(cache: &Path, model: &str) -> Result<PathBuf, LlmError> {
    crate::ai::embed::model_dir(cache, model).map_err(|_| LlmError::BadModelId(model.to_string()))
}

/// The GGUF file to load: `file` inside `dir` when given (a plain `*.gguf` file name),
/// else the only `*.gguf` in `dir`.
pub fn gguf_path(model: &str, dir: &Path, file: Option<&str>) -> Result<PathBuf, LlmError> {
    let not_installed = |problem: String| LlmError::NotInstalled {
        model: model.to_string(),
        dir: dir.to_path_buf(),
        problem,
    };
    if let Some(f) = file {
        let plain = !f.contains('/') && !f.contains('\\') && !f.starts_with('.');
        if !plain || !f.ends_with(".gguf") {
            return Err(LlmError::BadModelFile(format!(
                "{f:?} must be a plain file name ending in .gguf (no directories)"
            )));
        }
        let path = dir.join(f);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(not_installed(format!("{} is missing", path.display())))
        };
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| not_installed(format!("cannot read {}: {e}", dir.display())))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "gguf"))
        .collect();
    found.sort();
    match found.len() {
        0 => Err(not_installed(format!(
            "{} holds no .gguf file",
            dir.display()
        ))),
        1 => Ok(found.remove(0)),
        n => Err(LlmError::BadModelFile(format!(
            "{} holds {n} .gguf files ({}); name one in `model_file`",
            dir.display(),
            found
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Loaded models by GGUF path. A model loads on first use (under the lock, so concurrent
/// first uses load it once) and stays loaded.
pub struct LlmCache {
    cache_dir: PathBuf,
    threads: usize,
    loaded: Mutex<HashMap<PathBuf, Arc<Service>>>,
}

impl LlmCache {
    pub fn new(settings: &AiSettings) -> Self {
        LlmCache {
            cache_dir: settings.model_cache_dir.clone(),
            threads: settings.threads,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// The GGUF file `model` (and optionally `file`) resolves to.
    pub fn resolve(&self, model: &str, file: Option<&str>) -> Result<PathBuf, LlmError> {
        gguf_path(model, &model_dir(&self.cache_dir, model)?, file)
    }

    /// The model's thread, started (and the model loaded) if needed. The flag says whether
    /// this call loaded it.
    pub fn get(&self, model: &str, file: Option<&str>) -> Result<(Arc<Service>, bool), LlmError> {
        let path = self.resolve(model, file)?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = loaded.get(&path) {
            return Ok((s.clone(), false));
        }
        let (id, p) = (model.to_string(), path.clone());
        let s = Arc::new(Service::start(
            model,
            self.threads,
            move || GgufModel::load(&id, &p),
            |m: &GgufModel| m.info().clone(),
        )?);
        let info = s.info();
        tracing::info!(
            model,
            file = %info.file.display(),
            version = %info.version,
            context = info.context_length,
            load_ms = info.load_ms,
            threads = self.threads,
            "llm model loaded"
        );
        loaded.insert(path, s.clone());
        Ok((s, true))
    }

    /// Drops a model whose thread died, so the next task reloads it.
    pub fn forget(&self, model: &str, file: Option<&str>) {
        if let Ok(path) = self.resolve(model, file) {
            self.loaded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&path);
        }
    }

    /// Installs an already started service for `path` (tests use scripted backends).
    #[cfg(test)]
    pub(crate) fn insert(&self, path: PathBuf, service: Arc<Service>) {
        self.loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path, service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gguf_file_is_found_or_the_problem_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let e = gguf_path("m", dir, None).unwrap_err();
        assert!(matches!(e, LlmError::NotInstalled { .. }), "{e}");
        assert!(e.to_string().contains("holds no .gguf file"), "{e}");
        std::fs::write(dir.join("a.gguf"), b"x").unwrap();
        std::fs::write(dir.join("notes.txt"), b"x").unwrap();
        assert_eq!(gguf_path("m", dir, None).unwrap(), dir.join("a.gguf"));
        std::fs::write(dir.join("b.gguf"), b"x").unwrap();
        let e = gguf_path("m", dir, None).unwrap_err().to_string();
        assert!(
            e.contains("parameter `model_file`") && e.contains("a.gguf, b.gguf"),
            "{e}"
        );
        assert_eq!(
            gguf_path("m", dir, Some("b.gguf")).unwrap(),
            dir.join("b.gguf")
        );
        for bad in ["../x.gguf", "a/b.gguf", ".h.gguf", "x.bin"] {
            let e = gguf_path("m", dir, Some(bad)).unwrap_err();
            assert!(matches!(e, LlmError::BadModelFile(_)), "{bad}: {e}");
        }
        let e = gguf_path("m", dir, Some("c.gguf")).unwrap_err().to_string();
        assert!(
            e.contains("not installed") && e.contains("c.gguf is missing"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_model_says_how_to_install_it() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = LlmCache::new(&AiSettings {
            model_cache_dir: tmp.path().to_path_buf(),
            ..AiSettings::default()
        });
        let e = cache
            .get("org/absent", None)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not installed") && e.contains("model_download"),
            "{e}"
        );
        let e = cache.get("../x", None).map(|_| ()).unwrap_err();
        assert!(matches!(e, LlmError::BadModelId(_)), "{e}");
    }
}
