//! Forwards the core's structured log events and frame traces to `tracing`. Frames are
//! logged in their redacted form (no auth token) and truncated.

use astra_core::worker::{Level, LogEvent, OutFrame};

const MAX_LOGGED_FRAME: usize = 2048;

/// The least severe core log level the installed `tracing` subscriber can show, for
/// `WorkerConfig::log_level`: the machine then does not build lines nobody would see.
/// Call it after the subscriber is installed (with none, only errors are built).
pub(super) fn core_log_level() -> Level {
    use tracing::level_filters::LevelFilter;
    let max = LevelFilter::current();
    if max >= LevelFilter::DEBUG {
        Level::Debug
    } else if max >= LevelFilter::INFO {
        Level::Info
    } else if max >= LevelFilter::WARN {
        Level::Warn
    } else {
        Level::Error
    }
}

pub(super) fn forward(ev: &LogEvent) {
    let fields: String = ev
        .fields
        .sorted()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    match ev.level {
        Level::Debug => tracing::debug!(target: "astra_core", fields = %fields, "{}", ev.message),
        Level::Info => tracing::info!(target: "astra_core", fields = %fields, "{}", ev.message),
        Level::Warn => tracing::warn!(target: "astra_core", fields = %fields, "{}", ev.message),
        Level::Error => tracing::error!(target: "astra_core", fields = %fields, "{}", ev.message),
    }
}

pub(super) fn trace_out(f: &OutFrame) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!(
            dir = "out",
            r#type = f.kind.as_str(),
            id = %f.id,
            corr = f.corr.as_deref().unwrap_or(""),
            seq = f.seq.map(|s| s.to_string()).unwrap_or_default(),
            frame = %truncate(f.log_text()),
            "frame"
        );
    }
}

pub(super) fn trace_in(text: &str) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!(dir = "in", frame = %truncate(text), "frame");
    }
}

fn truncate(s: &str) -> &str {
    if s.len() <= MAX_LOGGED_FRAME {
        return s;
    }
    let mut cut = MAX_LOGGED_FRAME;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}
