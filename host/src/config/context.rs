//! `LoadContext`: everything the loader reads from the outside world, injectable for tests.

use super::error::ConfigError;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// The environment variable naming an explicit config file.
pub const CONFIG_FILE_VAR: &str = "ASTRA_WORKER_CONFIG_FILE";
/// The prefix of every configuration environment variable (matched case-insensitively).
pub const ENV_PREFIX: &str = "ASTRA_WORKER_";

/// The inputs of [`crate::config::load_with`]. Nothing else of the process is consulted, so
/// tests can build one without touching the real environment or working directory.
///
/// `Debug` lists only variable names and override keys: values may hold the auth token.
#[derive(Clone, Default)]
pub struct LoadContext {
    /// Environment variables (all of them; only `ASTRA_WORKER_*` and `HOME` are used).
    pub env: BTreeMap<String, String>,
    /// Working directory: relative paths, `./config/...` candidates and `.env` are resolved
    /// against it. Should be absolute.
    pub cwd: PathBuf,
    /// An explicit config file (e.g. from `--config`); beats `ASTRA_WORKER_CONFIG_FILE`.
    /// Like that variable, a missing or unsupported file is an error.
    pub config_file: Option<PathBuf>,
    /// Searched in order when no file is named explicitly; the first existing one is used.
    /// Relative entries are resolved against `cwd`.
    pub file_candidates: Vec<PathBuf>,
    /// Highest-priority values keyed by field name (from command-line flags).
    pub overrides: BTreeMap<String, serde_json::Value>,
    /// How to name an override's source, keyed by field name, e.g. `"--id"`. Without an
    /// entry the flag is shown as `--field-name`.
    pub override_flags: BTreeMap<String, String>,
}

impl LoadContext {
    /// A context with the given environment and cwd, the standard file search list, and no
    /// overrides.
    pub fn new(env: BTreeMap<String, String>, cwd: PathBuf) -> Self {
        LoadContext {
            env,
            cwd,
            file_candidates: default_file_candidates(),
            ..Default::default()
        }
    }

    /// The real process: its environment and current directory, plus `overrides`.
    /// Variables whose name or value is not Unicode are skipped (they cannot be config).
    pub fn from_process(
        overrides: BTreeMap<String, serde_json::Value>,
    ) -> Result<Self, ConfigError> {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let cwd = std::env::current_dir().map_err(ConfigError::Cwd)?;
        Ok(LoadContext {
            overrides,
            ..LoadContext::new(env, cwd)
        })
    }

    /// Sets an override (builder style), e.g. `.with_override("worker_id", "w1".into())`.
    pub fn with_override(mut self, field: &str, value: serde_json::Value) -> Self {
        self.overrides.insert(field.to_string(), value);
        self
    }

    /// The label of the override for `field`, e.g. `--worker-id`.
    pub(crate) fn flag_for(&self, field: &str) -> String {
        self.override_flags
            .get(field)
            .cloned()
            .unwrap_or_else(|| format!("--{}", field.replace('_', "-")))
    }
}

impl fmt::Debug for LoadContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadContext")
            .field("env_names", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .field("config_file", &self.config_file)
            .field("file_candidates", &self.file_candidates)
            .field(
                "override_fields",
                &self.overrides.keys().collect::<Vec<_>>(),
            )
            .field("override_flags", &self.override_flags)
            .finish()
    }
}

/// The Python worker's search list, highest priority first.
pub fn default_file_candidates() -> Vec<PathBuf> {
    [
        "/etc/astraflow/worker.yaml",
        "/etc/astraflow/worker.yml",
        "./config/worker.yaml",
        "./config/worker.yml",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}
