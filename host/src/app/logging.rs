//! tracing set-up: level and format from config, `RUST_LOG` wins when set. Logs go to
//! stderr so command output on stdout stays machine-readable.

use crate::config::{LogFormat, LogLevel};
use tracing_subscriber::EnvFilter;

pub fn init(level: LogLevel, format: LogFormat) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(level.filter_directive()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
