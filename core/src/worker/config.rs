//! Protocol-level settings of the worker machine. The host's config loader fills these from
//! files, env and flags; the simulator randomises them per seed.

use crate::secret::Secret;
use crate::time::WallClock;
use crate::v1::payloads::AuthMode;
use std::collections::BTreeMap;
use std::time::Duration;

/// What to do when the scheduler re-dispatches a task this worker already has (spec R8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicatePolicy {
    /// Ack it; if still running, do nothing more; if finished, re-send the cached terminal
    /// frame under a new envelope id. Never runs a task twice.
    #[default]
    Attach,
    /// The Python worker's behaviour: answer a running duplicate with
    /// `E.CMD.CONCURRENCY_VIOLATION` (finished duplicates still get the cached result).
    ConcurrencyViolation,
}

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub worker_id: String,
    pub tenant: String,
    pub worker_version: String,
    pub hostname: String,
    pub protocol_version: u32,
    pub auth_mode: AuthMode,
    pub auth_token: Option<Secret>,
    pub auth_fingerprint: Option<String>,

    pub heartbeat_interval: Duration,
    pub heartbeat_jitter: Duration,

    /// Resend delay before retry k is `min(base * 2^k, max)` plus up to 20 % jitter.
    pub ack_retry_base: Duration,
    pub ack_retry_max: Duration,
    pub ack_retry_attempts: u32,
    /// Extra acks of each dispatch after the immediate one (spec R1), measured from receipt.
    pub extra_ack_delays: Vec<Duration>,
    /// After re-registering on a reconnect, repeat handshake + register once this much later
    /// (spec §4.5 superseded-session workaround). `None` disables it.
    pub rehandshake_delay: Option<Duration>,

    pub reconnect_min: Duration,
    pub reconnect_max: Duration,

    pub max_parallel: u32,
    pub per_node_limits: BTreeMap<String, u32>,
    pub runtimes: Vec<String>,
    pub features: Vec<String>,
    pub duplicate_policy: DuplicatePolicy,

    /// How long in-flight tasks may run after a drain starts before they are cancelled.
    pub drain_grace: Duration,
    /// After tasks end, how long to wait for the outbox to be acked before closing anyway
    /// (unacked entries stay persisted for the next start).
    pub flush_timeout: Duration,

    pub max_frame_bytes: usize,
    /// How many finished tasks' terminal frames are remembered to answer re-dispatches.
    pub result_cache: usize,

    pub seed: u64,
    pub wall: WallClock,
    /// Log actions below this level are not built at all. Drivers pass the level their
    /// `tracing` subscriber keeps; `Debug` (the default) emits every line.
    pub log_level: super::io::Level,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            worker_id: "worker-local".into(),
            tenant: "default".into(),
            worker_version: "0.1.0".into(),
            hostname: "localhost".into(),
            protocol_version: 1,
            auth_mode: AuthMode::Token,
            auth_token: None,
            auth_fingerprint: None,
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_jitter: Duration::from_secs(5),
            ack_retry_base: Duration::from_millis(200),
            ack_retry_max: Duration::from_millis(5000),
            ack_retry_attempts: 6,
            extra_ack_delays: vec![Duration::from_millis(200)],
            rehandshake_delay: Some(Duration::from_secs(1)),
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            max_parallel: 1,
            per_node_limits: BTreeMap::new(),
            runtimes: vec!["builtin".into(), "process".into(), "python".into()],
            features: Vec::new(),
            duplicate_policy: DuplicatePolicy::Attach,
            drain_grace: Duration::from_secs(30),
            flush_timeout: Duration::from_secs(10),
            max_frame_bytes: crate::v1::codec::DEFAULT_MAX_FRAME_BYTES,
            result_cache: 4096,
            seed: 0,
            wall: WallClock::new(0),
            log_level: super::io::Level::Debug,
        }
    }
}
