//! Turning the merged sources into a validated `WorkerSettings`, field by field.

use super::context::LoadContext;
use super::error::ConfigError;
use super::layers::Layers;
use super::parse::{self, Raw};
use super::settings::{LogFormat, LogLevel, OutboxSync, Transport, WorkerSettings};
use super::source::Source;
use super::url::{self, WS_ENDPOINT_PATH};
use astra_core::secret::Secret;
use astra_core::v1::payloads::AuthMode;
use astra_core::worker::config::DuplicatePolicy;
use serde_json::Value;
use std::collections::BTreeMap;

// Upper bounds keep durations far from `Instant` arithmetic overflow in the core while
// allowing anything an operator could mean (30 days).
const MAX_SECONDS: u64 = 30 * 24 * 3600;
const MAX_MS: u64 = MAX_SECONDS * 1000;
const MAX_COUNT: u64 = u32::MAX as u64;
// Below 64 KiB even a register frame with a modest inventory would not fit.
const MIN_FRAME_BYTES: u64 = 64 * 1024;
const MAX_FRAME_BYTES: u64 = 1 << 30;

const SECS_POS: &str = "a whole number of seconds greater than 0";
const MS_POS: &str = "a whole number of milliseconds greater than 0";
const COUNT_POS: &str = "a whole number greater than 0";

/// Everything the builder produces besides the settings.
pub(crate) struct Built {
    pub settings: WorkerSettings,
    pub sources: BTreeMap<&'static str, Source>,
    pub notes: Vec<String>,
}

struct Builder<'a> {
    layers: &'a Layers,
    sources: BTreeMap<&'static str, Source>,
}

impl<'a> Builder<'a> {
    fn raw(&mut self, field: &'static str) -> Result<Raw<'a>, ConfigError> {
        let (value, origin) = self.layers.resolve(field)?;
        self.sources.insert(field, origin.clone());
        Ok(Raw {
            field,
            value,
            origin,
        })
    }
}

pub(crate) fn build(layers: &Layers, ctx: &LoadContext) -> Result<Built, ConfigError> {
    let mut b = Builder {
        layers,
        sources: BTreeMap::new(),
    };
    let mut notes = Vec::new();
    let secs = |r, min| parse::uint(r, min, MAX_SECONDS, SECS_POS);
    let ms = |r, min| parse::uint(r, min, MAX_MS, MS_POS);
    let count = |r| parse::uint(r, 1, MAX_COUNT, COUNT_POS).map(|n| n as u32);

    let raw = b.raw("scheduler_ws_url")?;
    let scheduler_ws_url = ws_url(raw, &mut notes)?;
    let raw = b.raw("scheduler_rest_base_url")?;
    let scheduler_rest_base_url = match raw.value {
        Value::String(s) if url::split(s.trim(), &["http", "https"]).is_some() => {
            s.trim().to_string()
        }
        _ => return Err(raw.invalid("an http:// or https:// URL with a host")),
    };

    let artifact_root = parse::dir_path(b.raw("artifact_root")?, &ctx.env, &ctx.cwd)?;

    let settings = WorkerSettings {
        scheduler_ws_url,
        scheduler_rest_base_url,
        tenant: parse::text(b.raw("tenant")?)?,
        worker_id: parse::text(b.raw("worker_id")?)?,
        auth_token: parse::opt_text(b.raw("auth_token")?)?.map(Secret::new),
        worker_version: parse::text(b.raw("worker_version")?)?,
        handshake_protocol_version: count(b.raw("handshake_protocol_version")?)?,
        auth_mode: parse::choice(
            b.raw("auth_mode")?,
            &[("token", AuthMode::Token), ("mtls", AuthMode::Mtls)],
        )?,
        auth_fingerprint: parse::opt_text(b.raw("auth_fingerprint")?)?,
        transport: parse::choice(
            b.raw("transport")?,
            &[
                ("websocket", Transport::Websocket),
                ("dummy", Transport::Dummy),
            ],
        )?,
        heartbeat_interval_seconds: secs(b.raw("heartbeat_interval_seconds")?, 1)?,
        heartbeat_jitter_seconds: parse::uint(
            b.raw("heartbeat_jitter_seconds")?,
            0,
            MAX_SECONDS,
            "a whole number of seconds, 0 or more (0 disables jitter)",
        )?,
        ack_retry_base_ms: ms(b.raw("ack_retry_base_ms")?, 1)?,
        ack_retry_max_ms: ms(b.raw("ack_retry_max_ms")?, 1)?,
        ack_retry_attempts: count(b.raw("ack_retry_attempts")?)?,
        concurrency_max_parallel: count(b.raw("concurrency_max_parallel")?)?,
        concurrency_per_node_limits: parse::limits(b.raw("concurrency_per_node_limits")?)?,
        runtime_names: parse::string_list(b.raw("runtime_names")?)?,
        feature_flags: parse::string_list(b.raw("feature_flags")?)?,
        packages_dir: parse::dir_path(b.raw("packages_dir")?, &ctx.env, &ctx.cwd)?,
        data_dir: parse::dir_path(b.raw("data_dir")?, &ctx.env, &ctx.cwd)?,
        outbox_sync: parse::choice(
            b.raw("outbox_sync")?,
            &[("batch", OutboxSync::Batch), ("always", OutboxSync::Always)],
        )?,
        log_level: parse::choice(
            b.raw("log_level")?,
            &[
                ("trace", LogLevel::Trace),
                ("debug", LogLevel::Debug),
                ("info", LogLevel::Info),
                ("warning", LogLevel::Warning),
                ("warn", LogLevel::Warning),
                ("error", LogLevel::Error),
                ("critical", LogLevel::Critical),
            ],
        )?,
        log_format: parse::choice(
            b.raw("log_format")?,
            &[("text", LogFormat::Text), ("json", LogFormat::Json)],
        )?,
        metrics_listen: parse::socket_opt(b.raw("metrics_listen")?)?,
        max_frame_bytes: parse::uint(
            b.raw("max_frame_bytes")?,
            MIN_FRAME_BYTES,
            MAX_FRAME_BYTES,
            "a whole number of bytes, at least 65536",
        )? as usize,
        reconnect_min_ms: ms(b.raw("reconnect_min_ms")?, 1)?,
        reconnect_max_ms: ms(b.raw("reconnect_max_ms")?, 1)?,
        extra_ack_delay_ms: parse::uint(
            b.raw("extra_ack_delay_ms")?,
            0,
            MAX_MS,
            "a whole number of milliseconds, 0 or more (0 disables the second ack)",
        )?,
        rehandshake_delay_ms: parse::uint(
            b.raw("rehandshake_delay_ms")?,
            0,
            MAX_MS,
            "a whole number of milliseconds, 0 or more (0 disables the repeated handshake)",
        )?,
        drain_grace_seconds: parse::uint(
            b.raw("drain_grace_seconds")?,
            0,
            MAX_SECONDS,
            "a whole number of seconds, 0 or more",
        )?,
        flush_timeout_seconds: parse::uint(
            b.raw("flush_timeout_seconds")?,
            0,
            MAX_SECONDS,
            "a whole number of seconds, 0 or more",
        )?,
        task_timeout_seconds: secs(b.raw("task_timeout_seconds")?, 1)?,
        duplicate_policy: parse::choice(
            b.raw("duplicate_policy")?,
            &[
                ("attach", DuplicatePolicy::Attach),
                (
                    "concurrency_violation",
                    DuplicatePolicy::ConcurrencyViolation,
                ),
            ],
        )?,
        result_cache_size: parse::uint(b.raw("result_cache_size")?, 1, MAX_COUNT, COUNT_POS)?
            as usize,
        artifact_root: artifact_root.clone(),
        model_cache_dir: parse::opt_dir_path(b.raw("model_cache_dir")?, &ctx.env, &ctx.cwd)?
            .unwrap_or_else(|| artifact_root.join("models")),
        index_dir: parse::opt_dir_path(b.raw("index_dir")?, &ctx.env, &ctx.cwd)?,
        hf_token: parse::opt_text(b.raw("hf_token")?)?.map(Secret::new),
        hf_endpoint: hub_url(b.raw("hf_endpoint")?)?,
        tool_allowlist: parse::name_list(b.raw("tool_allowlist")?)?,
        tool_timeout_seconds: parse::uint(b.raw("tool_timeout_seconds")?, 1, 24 * 3600, SECS_POS)?,
        tool_output_bytes: parse::uint(
            b.raw("tool_output_bytes")?,
            1,
            1 << 30,
            "a whole number of bytes greater than 0",
        )?,
        ai_threads: parse::uint(
            b.raw("ai_threads")?,
            0,
            1024,
            "a whole number of threads, 0 for half the CPUs",
        )? as u32,
        config_path: layers.config_path.clone(),
    };

    ordered(
        &mut b,
        "reconnect_min_ms",
        settings.reconnect_min_ms,
        "reconnect_max_ms",
        settings.reconnect_max_ms,
    )?;
    ordered(
        &mut b,
        "ack_retry_base_ms",
        settings.ack_retry_base_ms,
        "ack_retry_max_ms",
        settings.ack_retry_max_ms,
    )?;
    if settings.auth_mode == AuthMode::Mtls && settings.auth_fingerprint.is_none() {
        notes.push("auth_mode is mtls but auth_fingerprint is not set".to_string());
    }
    Ok(Built {
        settings,
        sources: b.sources,
        notes,
    })
}

fn ws_url(raw: Raw<'_>, notes: &mut Vec<String>) -> Result<String, ConfigError> {
    const EXPECTED: &str = "a ws:// or wss:// URL with a host, e.g. ws://scheduler:8080/ws/worker";
    let Value::String(s) = raw.value else {
        return Err(raw.invalid(EXPECTED));
    };
    let (url, added) = url::ws_url(s.trim()).ok_or_else(|| raw.invalid(EXPECTED))?;
    if added {
        notes.push(format!(
            "scheduler_ws_url from {} has no path; using {url}",
            raw.origin
        ));
    } else if url::split(&url, &["ws", "wss"]).is_some_and(|u| u.path() != WS_ENDPOINT_PATH) {
        notes.push(format!(
            "scheduler_ws_url path is not {WS_ENDPOINT_PATH}, the only endpoint the scheduler serves (fine behind a rewriting proxy)"
        ));
    }
    Ok(url)
}

/// The hub's base URL, trailing `/` removed.
fn hub_url(raw: Raw<'_>) -> Result<String, ConfigError> {
    const EXPECTED: &str = "an http:// or https:// URL with a host, e.g. https://huggingface.co";
    match raw.value {
        Value::String(s) if url::split(s.trim(), &["http", "https"]).is_some() => {
            Ok(s.trim().trim_end_matches('/').to_string())
        }
        _ => Err(raw.invalid(EXPECTED)),
    }
}

/// `low` must not exceed `high`; the error is reported on `low` and names both sources.
fn ordered(
    b: &mut Builder<'_>,
    low: &'static str,
    lv: u64,
    high: &'static str,
    hv: u64,
) -> Result<(), ConfigError> {
    if lv <= hv {
        return Ok(());
    }
    let raw = b.raw(low)?;
    let high_src = b.raw(high)?.origin;
    Err(raw.invalid(format!("at most {high} ({hv}, from {high_src})")))
}
