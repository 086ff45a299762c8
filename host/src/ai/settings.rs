//! Runtime knobs of the AI and tool executors, taken from the worker's configuration.
//!
//! The fields live in [`WorkerSettings`] (so they get the loader's precedence, provenance,
//! validation and `config show`); this is the executors' view of them. See the README's
//! configuration table for names, aliases (`SPLAI_ARTIFACT_ROOT`, `SPLAI_MODEL_CACHE_DIR`,
//! `SPLAI_TOOL_ALLOWLIST`, `HF_TOKEN`, `HF_ENDPOINT`) and defaults.
//!
//! The hub token is a [`Secret`]: `Debug` prints `***`; only the hub client reads it, and no
//! executor passes it to a task's environment or a log line.

use crate::config::{ConfigError, LoadContext, WorkerSettings};
use astra_core::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::config::{DEFAULT_ARTIFACT_ROOT, DEFAULT_HF_ENDPOINT as DEFAULT_HUB_ENDPOINT};

#[derive(Debug, Clone, PartialEq)]
pub struct AiSettings {
    /// Executors write `<artifact_root>/<run_id>/<task_id>/output.json`.
    pub artifact_root: PathBuf,
    /// The model cache (see [`crate::ai::cache`] for the layouts it resolves).
    pub model_cache_dir: PathBuf,
    /// Retrieval indexes; `None` means `<runner data dir>/.ai-index` (see `retrieval`).
    pub index_dir: Option<PathBuf>,
    pub hub_token: Option<Secret>,
    pub hub_endpoint: String,
    /// Programs `tool_execution` may start (bare names looked up in the sandbox PATH, or
    /// absolute paths). `sh` must be listed for `script` to work.
    pub tool_allowlist: Vec<String>,
    pub tool_timeout: Duration,
    /// Bytes of stdout and of stderr kept per tool run; the rest is dropped and flagged.
    pub tool_output_cap: usize,
    /// Threads for model inference (the embedding thread's compute pool).
    pub threads: usize,
}

impl Default for AiSettings {
    /// The configuration defaults (no file, no environment).
    fn default() -> Self {
        AiSettings::from_config(&WorkerSettings::default())
    }
}

/// Half the CPUs (at least 1): inference must not starve the network loop on small boxes.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
}

impl AiSettings {
    /// The executors' knobs from a loaded configuration.
    pub fn from_config(s: &WorkerSettings) -> AiSettings {
        AiSettings {
            artifact_root: s.artifact_root.clone(),
            model_cache_dir: s.model_cache_dir.clone(),
            index_dir: s.index_dir.clone(),
            hub_token: s.hf_token.clone(),
            hub_endpoint: s.hf_endpoint.clone(),
            tool_allowlist: s.tool_allowlist.clone(),
            tool_timeout: Duration::from_secs(s.tool_timeout_seconds),
            tool_output_cap: usize::try_from(s.tool_output_bytes).unwrap_or(usize::MAX),
            threads: match s.ai_threads {
                0 => default_threads(),
                n => n as usize,
            },
        }
    }

    /// From the process environment alone (no config file, no `.env`), through the same
    /// loader as the worker, for callers that have no loaded configuration (tests, tools).
    pub fn from_env() -> Result<AiSettings, ConfigError> {
        let mut ctx = LoadContext::from_process(Default::default())?;
        ctx.file_candidates.clear();
        ctx.cwd = std::env::temp_dir().join(".astra-no-dotenv");
        Self::from_context(&ctx)
    }

    /// From exactly what `ctx` holds.
    pub fn from_context(ctx: &LoadContext) -> Result<AiSettings, ConfigError> {
        Ok(AiSettings::from_config(
            &crate::config::load_with(ctx)?.settings,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn load(pairs: &[(&str, &str)]) -> Result<AiSettings, ConfigError> {
        let env: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut ctx = LoadContext::new(env, PathBuf::from("/nonexistent-cwd"));
        ctx.file_candidates.clear();
        AiSettings::from_context(&ctx)
    }

    #[test]
    fn defaults_follow_the_splai_worker() {
        let s = load(&[]).unwrap();
        assert_eq!(s.artifact_root, PathBuf::from("/tmp/splai-artifacts"));
        assert_eq!(
            s.model_cache_dir,
            PathBuf::from("/tmp/splai-artifacts/models")
        );
        assert_eq!(s.hub_endpoint, "https://huggingface.co");
        assert!(s.tool_allowlist.is_empty());
        assert_eq!(s.tool_timeout, Duration::from_secs(30));
        assert_eq!(s.tool_output_cap, 1 << 20);
        assert!(s.threads >= 1);
        assert_eq!(AiSettings::default(), s);
    }

    #[test]
    fn splai_aliases_work_and_primary_names_win() {
        let s = load(&[("SPLAI_ARTIFACT_ROOT", "/a"), ("HF_ENDPOINT", "http://h/")]).unwrap();
        assert_eq!(s.artifact_root, PathBuf::from("/a"));
        assert_eq!(s.model_cache_dir, PathBuf::from("/a/models"));
        assert_eq!(s.hub_endpoint, "http://h");
        let s = load(&[
            ("SPLAI_ARTIFACT_ROOT", "/a"),
            ("ASTRA_WORKER_ARTIFACT_ROOT", "/b"),
            ("SPLAI_MODEL_CACHE_DIR", "/m"),
            ("ASTRA_WORKER_TOOL_ALLOWLIST", " echo, ,cat "),
            ("ASTRA_WORKER_AI_THREADS", "3"),
        ])
        .unwrap();
        assert_eq!(s.artifact_root, PathBuf::from("/b"));
        assert_eq!(s.model_cache_dir, PathBuf::from("/m"));
        assert_eq!(s.tool_allowlist, vec!["echo", "cat"]);
        assert_eq!(s.threads, 3);
    }

    #[test]
    fn token_is_never_printed() {
        let s = load(&[("HF_TOKEN", "hf_supersecret")]).unwrap();
        assert_eq!(
            s.hub_token.as_ref().map(|t| t.expose()),
            Some("hf_supersecret")
        );
        assert!(!format!("{s:?}").contains("supersecret"));
    }

    #[test]
    fn bad_numbers_name_the_field_and_variable() {
        let e = load(&[("ASTRA_WORKER_TOOL_TIMEOUT_SECONDS", "0")])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("tool_timeout_seconds: \"0\" from env ASTRA_WORKER_TOOL_TIMEOUT_SECONDS"),
            "{e}"
        );
    }
}
