//! Worker configuration: sources, precedence, validation, provenance and `config show`.
//!
//! Priority, highest first: explicit overrides (CLI flags) → YAML/JSON file → `ASTRA_WORKER_*`
//! environment → documented aliases in the environment (`SPLAI_ARTIFACT_ROOT`, `HF_TOKEN`, ...,
//! see [`ENV_ALIASES`]) → `.env` in the cwd → defaults. The file beating the environment is the Python
//! worker's (unusual) order, kept for compatibility (spec §8.1).
//!
//! ```no_run
//! let loaded = astra_host::config::load(Default::default())?;
//! for w in &loaded.warnings { eprintln!("warning: {w}"); }
//! let core_cfg = loaded.settings.to_worker_config(&astra_host::config::hostname(), astra_core::WallClock::new(0), 1);
//! # Ok::<(), astra_host::config::ConfigError>(())
//! ```

mod build;
mod context;
mod core_map;
mod error;
mod files;
mod hostname;
mod layers;
mod load;
mod parse;
mod paths;
mod settings;
mod show;
mod source;
mod url;

#[cfg(test)]
mod tests;

pub use context::{default_file_candidates, LoadContext, CONFIG_FILE_VAR, ENV_PREFIX};
pub use error::ConfigError;
pub use hostname::hostname;
pub use load::{load, load_with, LoadedConfig};
pub use settings::{
    LogFormat, LogLevel, Transport, WorkerSettings, DEFAULT_ARTIFACT_ROOT, DEFAULT_HF_ENDPOINT,
    ENV_ALIASES, FIELDS, SECRET_FIELDS,
};
pub use show::{render_show, render_show_json};
pub use source::Source;
pub use url::WS_ENDPOINT_PATH;
