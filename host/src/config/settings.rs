//! `WorkerSettings`: every knob of astra-worker, with the Python worker's names and defaults.

pub use crate::outbox::OutboxSync;
use astra_core::secret::Secret;
use astra_core::v1::payloads::AuthMode;
use astra_core::worker::config::DuplicatePolicy;
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The fully validated configuration. Built by [`crate::config::load_with`]; `Default` gives
/// the documented defaults (with relative paths, before the loader makes them absolute).
///
/// `Debug` and `Serialize` show `auth_token` as `***` (it is a [`Secret`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerSettings {
    pub scheduler_ws_url: String,
    /// Not used by the worker protocol; kept so existing config files stay valid.
    pub scheduler_rest_base_url: String,
    pub tenant: String,
    pub worker_id: String,
    pub auth_token: Option<Secret>,
    pub worker_version: String,
    pub handshake_protocol_version: u32,
    #[serde(serialize_with = "ser_auth_mode")]
    pub auth_mode: AuthMode,
    pub auth_fingerprint: Option<String>,
    pub transport: Transport,
    pub heartbeat_interval_seconds: u64,
    /// 0 disables jitter (the Python worker rejects 0).
    pub heartbeat_jitter_seconds: u64,
    pub ack_retry_base_ms: u64,
    pub ack_retry_max_ms: u64,
    pub ack_retry_attempts: u32,
    pub concurrency_max_parallel: u32,
    /// `None` (or an empty map in a source) means no per-node limits.
    pub concurrency_per_node_limits: Option<BTreeMap<String, u32>>,
    pub runtime_names: Vec<String>,
    pub feature_flags: Vec<String>,
    /// Absolute after loading (`~` expanded, relative paths joined to the cwd).
    pub packages_dir: PathBuf,
    /// Absolute after loading (`~` expanded, relative paths joined to the cwd).
    pub data_dir: PathBuf,
    /// When outbox entries reach the disk itself: `batch` (group commit off the send path)
    /// or `always` (fsync before every send).
    pub outbox_sync: OutboxSync,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    /// Where to serve metrics; `None` disables the endpoint.
    pub metrics_listen: Option<SocketAddr>,
    pub max_frame_bytes: usize,
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    /// Delay of the second ack of each dispatch; 0 disables the second ack.
    pub extra_ack_delay_ms: u64,
    /// Delay of the repeated handshake + register after a reconnect; 0 disables it.
    pub rehandshake_delay_ms: u64,
    pub drain_grace_seconds: u64,
    pub flush_timeout_seconds: u64,
    /// Default wall-clock limit of one task.
    pub task_timeout_seconds: u64,
    #[serde(serialize_with = "ser_duplicate_policy")]
    pub duplicate_policy: DuplicatePolicy,
    pub result_cache_size: usize,
    /// Executors write `<artifact_root>/<run_id>/<task_id>/output.json`. Alias
    /// `SPLAI_ARTIFACT_ROOT`. Absolute after loading.
    pub artifact_root: PathBuf,
    /// The model cache (hub layout `models--org--name/...`, or flat `org/name/`). Unset
    /// means `<artifact_root>/models`; alias `SPLAI_MODEL_CACHE_DIR`. Absolute after loading.
    pub model_cache_dir: PathBuf,
    /// Retrieval indexes; `None` means `<data_dir>/.ai-index`.
    pub index_dir: Option<PathBuf>,
    /// Sent as `Authorization: Bearer` to `hf_endpoint` only (never to a task or a log).
    /// Alias `HF_TOKEN`.
    pub hf_token: Option<Secret>,
    /// The model hub `model_download` fetches from, without a trailing `/`. Alias
    /// `HF_ENDPOINT`.
    pub hf_endpoint: String,
    /// Programs `tool_execution` may start; empty means none. Alias `SPLAI_TOOL_ALLOWLIST`.
    pub tool_allowlist: Vec<String>,
    pub tool_timeout_seconds: u64,
    /// Bytes of stdout and of stderr kept per tool run.
    pub tool_output_bytes: u64,
    /// Threads for model inference; 0 means half the CPUs (at least 1).
    pub ai_threads: u32,
    /// The config file that was read, set by the loader; never read from any source.
    pub config_path: Option<PathBuf>,
}

/// Every configurable field, in the order `config show` prints them. `config_path` is not
/// listed: it is an output of the loader, not an input.
pub const FIELDS: &[&str] = &[
    "scheduler_ws_url",
    "scheduler_rest_base_url",
    "tenant",
    "worker_id",
    "auth_token",
    "worker_version",
    "handshake_protocol_version",
    "auth_mode",
    "auth_fingerprint",
    "transport",
    "heartbeat_interval_seconds",
    "heartbeat_jitter_seconds",
    "ack_retry_base_ms",
    "ack_retry_max_ms",
    "ack_retry_attempts",
    "concurrency_max_parallel",
    "concurrency_per_node_limits",
    "runtime_names",
    "feature_flags",
    "packages_dir",
    "data_dir",
    "outbox_sync",
    "log_level",
    "log_format",
    "metrics_listen",
    "max_frame_bytes",
    "reconnect_min_ms",
    "reconnect_max_ms",
    "extra_ack_delay_ms",
    "rehandshake_delay_ms",
    "drain_grace_seconds",
    "flush_timeout_seconds",
    "task_timeout_seconds",
    "duplicate_policy",
    "result_cache_size",
    "artifact_root",
    "model_cache_dir",
    "index_dir",
    "hf_token",
    "hf_endpoint",
    "tool_allowlist",
    "tool_timeout_seconds",
    "tool_output_bytes",
    "ai_threads",
];

/// Fields that hold secrets: shown as `***` everywhere and never quoted in errors.
pub const SECRET_FIELDS: &[&str] = &["auth_token", "hf_token"];

/// Documented alternative environment variables (exact, case-sensitive names, as other
/// tools read them), each for one field. The `ASTRA_WORKER_*` name wins when both are set;
/// an empty alias counts as unset.
pub const ENV_ALIASES: &[(&str, &str)] = &[
    ("SPLAI_ARTIFACT_ROOT", "artifact_root"),
    ("SPLAI_MODEL_CACHE_DIR", "model_cache_dir"),
    ("SPLAI_TOOL_ALLOWLIST", "tool_allowlist"),
    ("HF_TOKEN", "hf_token"),
    ("HF_ENDPOINT", "hf_endpoint"),
];

pub const DEFAULT_ARTIFACT_ROOT: &str = "/tmp/splai-artifacts";
pub const DEFAULT_HF_ENDPOINT: &str = "https://huggingface.co";

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            scheduler_ws_url: "ws://localhost:8080/ws/worker".into(),
            scheduler_rest_base_url: "http://localhost:8080/api/v1".into(),
            tenant: "default".into(),
            worker_id: "worker-local".into(),
            auth_token: None,
            worker_version: "0.1.0".into(),
            handshake_protocol_version: 1,
            auth_mode: AuthMode::Token,
            auth_fingerprint: None,
            transport: Transport::Websocket,
            heartbeat_interval_seconds: 30,
            heartbeat_jitter_seconds: 5,
            ack_retry_base_ms: 200,
            ack_retry_max_ms: 5000,
            ack_retry_attempts: 6,
            concurrency_max_parallel: 1,
            concurrency_per_node_limits: None,
            runtime_names: vec!["builtin".into(), "process".into(), "python".into()],
            feature_flags: Vec::new(),
            packages_dir: PathBuf::from("./packages"),
            data_dir: PathBuf::from("./var/data"),
            outbox_sync: OutboxSync::Batch,
            log_level: LogLevel::Info,
            log_format: LogFormat::Text,
            metrics_listen: None,
            max_frame_bytes: 16 * 1024 * 1024,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
            extra_ack_delay_ms: 200,
            rehandshake_delay_ms: 1000,
            drain_grace_seconds: 30,
            flush_timeout_seconds: 10,
            task_timeout_seconds: 3600,
            duplicate_policy: DuplicatePolicy::Attach,
            result_cache_size: 4096,
            artifact_root: PathBuf::from(DEFAULT_ARTIFACT_ROOT),
            model_cache_dir: PathBuf::from(DEFAULT_ARTIFACT_ROOT).join("models"),
            index_dir: None,
            hf_token: None,
            hf_endpoint: DEFAULT_HF_ENDPOINT.into(),
            tool_allowlist: Vec::new(),
            tool_timeout_seconds: 30,
            tool_output_bytes: 1 << 20,
            ai_threads: 0,
            config_path: None,
        }
    }
}

/// `transport`: `websocket` talks to the scheduler; `dummy` logs sends and never receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Websocket,
    Dummy,
}

/// `log_format`: human-readable lines or one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// `log_level`, with Python's names. `Trace` is ours; `Critical` maps to tracing's ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl LogLevel {
    /// The matching `tracing` level (tracing has no CRITICAL; it maps to ERROR).
    pub fn tracing_level(self) -> tracing::Level {
        match self {
            LogLevel::Trace => tracing::Level::TRACE,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warning => tracing::Level::WARN,
            LogLevel::Error | LogLevel::Critical => tracing::Level::ERROR,
        }
    }

    /// A directive for `tracing_subscriber::EnvFilter`, e.g. `"warn"`.
    pub fn filter_directive(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warn",
            LogLevel::Error | LogLevel::Critical => "error",
        }
    }
}

// The core's enums have their own serde forms (or none); `config show` wants the config-file
// spelling, which is what these produce.
fn ser_auth_mode<S: Serializer>(m: &AuthMode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match m {
        AuthMode::Token => "token",
        AuthMode::Mtls => "mtls",
    })
}

fn ser_duplicate_policy<S: Serializer>(p: &DuplicatePolicy, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match p {
        DuplicatePolicy::Attach => "attach",
        DuplicatePolicy::ConcurrencyViolation => "concurrency_violation",
    })
}
