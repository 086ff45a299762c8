//! Command-line flags to configuration: loads settings with the flags as the highest-priority
//! source, and the jitter seed of production runs.

use crate::app::cli::Overrides;
use crate::config::{load_with, ConfigError, LoadContext, LoadedConfig};
use serde_json::Value;
use std::collections::BTreeMap;

/// Loads configuration with the command-line flags as the highest-priority source.
pub fn load_settings(o: &Overrides) -> Result<LoadedConfig, ConfigError> {
    load_with(&override_context(o)?)
}

/// The process's load context with the flags in `o` as overrides (commands with flags of
/// their own add them to it before loading).
pub fn override_context(o: &Overrides) -> Result<LoadContext, ConfigError> {
    let mut values: BTreeMap<String, Value> = BTreeMap::new();
    let mut flags: BTreeMap<String, String> = BTreeMap::new();
    let mut set = |field: &str, flag: &str, v: Option<Value>| {
        if let Some(v) = v {
            values.insert(field.to_string(), v);
            flags.insert(field.to_string(), flag.to_string());
        }
    };
    set(
        "scheduler_ws_url",
        "--url",
        o.url.clone().map(Value::String),
    );
    set(
        "worker_id",
        "--worker-id",
        o.worker_id.clone().map(Value::String),
    );
    set("tenant", "--tenant", o.tenant.clone().map(Value::String));
    set(
        "packages_dir",
        "--packages-dir",
        o.packages_dir
            .as_ref()
            .map(|p| Value::String(p.display().to_string())),
    );
    set(
        "data_dir",
        "--data-dir",
        o.data_dir
            .as_ref()
            .map(|p| Value::String(p.display().to_string())),
    );
    set(
        "concurrency_max_parallel",
        "--max-parallel",
        o.max_parallel.map(Value::from),
    );
    set(
        "metrics_listen",
        "--metrics-listen",
        o.metrics_listen.map(|a| Value::String(a.to_string())),
    );
    set(
        "transport",
        "--transport",
        o.transport.clone().map(Value::String),
    );
    set(
        "log_level",
        "--log-level",
        o.log_level.clone().map(Value::String),
    );
    set(
        "log_format",
        "--log-format",
        o.log_format.clone().map(Value::String),
    );
    let mut ctx = LoadContext::from_process(values)?;
    ctx.override_flags = flags;
    if let Some(c) = &o.config {
        ctx.config_file = Some(c.clone());
    }
    Ok(ctx)
}

/// Jitter seed for production runs: reproducibility is a simulation concern.
pub fn runtime_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64) ^ ((std::process::id() as u64) << 32)
}
