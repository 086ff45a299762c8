//! Runtime knobs of the AI and tool executors, read from the environment.
//!
//! The worker's `WorkerSettings` has no fields for these yet, so they are read here.
//! Primary names carry the worker's `ASTRA_WORKER_` prefix; the SPLAI names are accepted as
//! aliases (the primary name wins when both are set). An empty value counts as unset.
//!
//! | field | variables | default |
//! |---|---|---|
//! | `artifact_root` | `ASTRA_WORKER_ARTIFACT_ROOT`, `SPLAI_ARTIFACT_ROOT` | `/tmp/splai-artifacts` |
//! | `model_cache_dir` | `ASTRA_WORKER_MODEL_CACHE_DIR`, `SPLAI_MODEL_CACHE_DIR` | `<artifact_root>/models` |
//! | `index_dir` | `ASTRA_WORKER_INDEX_DIR` | `<runner data dir>/.ai-index` |
//! | `hub_token` | `ASTRA_WORKER_HF_TOKEN`, `HF_TOKEN` | none |
//! | `hub_endpoint` | `ASTRA_WORKER_HF_ENDPOINT`, `HF_ENDPOINT` | `https://huggingface.co` |
//! | `tool_allowlist` | `ASTRA_WORKER_TOOL_ALLOWLIST`, `SPLAI_TOOL_ALLOWLIST` (comma separated program names) | empty: no command may run |
//! | `tool_timeout` | `ASTRA_WORKER_TOOL_TIMEOUT_SECONDS` | 30 s |
//! | `tool_output_cap` | `ASTRA_WORKER_TOOL_OUTPUT_BYTES` (per stream) | 1 MiB |
//! | `threads` | `ASTRA_WORKER_AI_THREADS` | half the CPUs, at least 1 |
//!
//! The hub token is a [`Secret`]: `Debug` prints `***`, and no executor passes it to a
//! task's environment or a log line.

use astra_core::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_ARTIFACT_ROOT: &str = "/tmp/splai-artifacts";
pub const DEFAULT_HUB_ENDPOINT: &str = "https://huggingface.co";
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_TOOL_OUTPUT_CAP: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct AiSettings {
    /// Executors write `<artifact_root>/<run_id>/<task_id>/output.json`.
    pub artifact_root: PathBuf,
    /// Models live in `<model_cache_dir>/<org>/<name>/`.
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
    fn default() -> Self {
        let artifact_root = PathBuf::from(DEFAULT_ARTIFACT_ROOT);
        AiSettings {
            model_cache_dir: artifact_root.join("models"),
            artifact_root,
            index_dir: None,
            hub_token: None,
            hub_endpoint: DEFAULT_HUB_ENDPOINT.to_string(),
            tool_allowlist: Vec::new(),
            tool_timeout: DEFAULT_TOOL_TIMEOUT,
            tool_output_cap: DEFAULT_TOOL_OUTPUT_CAP,
            threads: default_threads(),
        }
    }
}

/// Half the CPUs (at least 1): inference must not starve the network loop on small boxes.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| (n.get() / 2).max(1))
        .unwrap_or(1)
}

/// A malformed variable: which one and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {var}={value:?}: {problem}")]
pub struct SettingsError {
    pub var: String,
    pub value: String,
    pub problem: String,
}

impl AiSettings {
    /// Reads the process environment.
    pub fn from_env() -> Result<AiSettings, SettingsError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads through `lookup` (tests pass a map).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<AiSettings, SettingsError> {
        let get = |names: &[&str]| -> Option<(String, String)> {
            names.iter().find_map(|n| {
                lookup(n)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .map(|v| (n.to_string(), v))
            })
        };
        let mut s = AiSettings::default();
        if let Some((_, v)) = get(&["ASTRA_WORKER_ARTIFACT_ROOT", "SPLAI_ARTIFACT_ROOT"]) {
            s.artifact_root = PathBuf::from(v);
        }
        s.model_cache_dir = match get(&["ASTRA_WORKER_MODEL_CACHE_DIR", "SPLAI_MODEL_CACHE_DIR"]) {
            Some((_, v)) => PathBuf::from(v),
            None => s.artifact_root.join("models"),
        };
        s.index_dir = get(&["ASTRA_WORKER_INDEX_DIR"]).map(|(_, v)| PathBuf::from(v));
        s.hub_token = get(&["ASTRA_WORKER_HF_TOKEN", "HF_TOKEN"]).map(|(_, v)| Secret::new(v));
        if let Some((_, v)) = get(&["ASTRA_WORKER_HF_ENDPOINT", "HF_ENDPOINT"]) {
            s.hub_endpoint = v.trim_end_matches('/').to_string();
        }
        if let Some((_, v)) = get(&["ASTRA_WORKER_TOOL_ALLOWLIST", "SPLAI_TOOL_ALLOWLIST"]) {
            s.tool_allowlist = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
        }
        if let Some((var, v)) = get(&["ASTRA_WORKER_TOOL_TIMEOUT_SECONDS"]) {
            s.tool_timeout = Duration::from_secs(positive(&var, &v, 86_400)? as u64);
        }
        if let Some((var, v)) = get(&["ASTRA_WORKER_TOOL_OUTPUT_BYTES"]) {
            s.tool_output_cap = positive(&var, &v, 1 << 30)?;
        }
        if let Some((var, v)) = get(&["ASTRA_WORKER_AI_THREADS"]) {
            s.threads = positive(&var, &v, 1024)?;
        }
        Ok(s)
    }
}

fn positive(var: &str, value: &str, max: usize) -> Result<usize, SettingsError> {
    match value.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(SettingsError {
            var: var.to_string(),
            value: value.to_string(),
            problem: format!("must be an integer between 1 and {max}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<AiSettings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AiSettings::from_lookup(|k| map.get(k).cloned())
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
        assert!(s.threads >= 1);
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
        ])
        .unwrap();
        assert_eq!(s.artifact_root, PathBuf::from("/b"));
        assert_eq!(s.model_cache_dir, PathBuf::from("/m"));
        assert_eq!(s.tool_allowlist, vec!["echo", "cat"]);
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
    fn bad_numbers_name_the_variable() {
        let e = load(&[("ASTRA_WORKER_AI_THREADS", "0")]).unwrap_err();
        assert_eq!(e.var, "ASTRA_WORKER_AI_THREADS");
        assert!(e.to_string().contains("between 1 and"), "{e}");
    }
}
