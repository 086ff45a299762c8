//! Mapping `WorkerSettings` onto the core machine's `WorkerConfig`.

use super::settings::WorkerSettings;
use astra_core::worker::WorkerConfig;
use astra_core::WallClock;
use std::time::Duration;

impl WorkerSettings {
    /// The protocol-level part of the settings, for `astra_core::worker::Worker`.
    ///
    /// `hostname` is reported in the handshake (see [`super::hostname`]); `wall` anchors the
    /// core's clock to real time; `seed` seeds its PRNG (jitter, envelope ids).
    /// `extra_ack_delay_ms = 0` gives no extra acks; `rehandshake_delay_ms = 0` disables the
    /// repeated handshake.
    pub fn to_worker_config(&self, hostname: &str, wall: WallClock, seed: u64) -> WorkerConfig {
        WorkerConfig {
            worker_id: self.worker_id.clone(),
            tenant: self.tenant.clone(),
            worker_version: self.worker_version.clone(),
            hostname: hostname.to_string(),
            protocol_version: self.handshake_protocol_version,
            auth_mode: self.auth_mode,
            auth_token: self.auth_token.clone(),
            auth_fingerprint: self.auth_fingerprint.clone(),
            heartbeat_interval: Duration::from_secs(self.heartbeat_interval_seconds),
            heartbeat_jitter: Duration::from_secs(self.heartbeat_jitter_seconds),
            ack_retry_base: Duration::from_millis(self.ack_retry_base_ms),
            ack_retry_max: Duration::from_millis(self.ack_retry_max_ms),
            ack_retry_attempts: self.ack_retry_attempts,
            extra_ack_delays: match self.extra_ack_delay_ms {
                0 => Vec::new(),
                ms => vec![Duration::from_millis(ms)],
            },
            rehandshake_delay: match self.rehandshake_delay_ms {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            reconnect_min: Duration::from_millis(self.reconnect_min_ms),
            reconnect_max: Duration::from_millis(self.reconnect_max_ms),
            max_parallel: self.concurrency_max_parallel,
            per_node_limits: self.concurrency_per_node_limits.clone().unwrap_or_default(),
            runtimes: self.runtime_names.clone(),
            features: self.feature_flags.clone(),
            duplicate_policy: self.duplicate_policy,
            drain_grace: Duration::from_secs(self.drain_grace_seconds),
            flush_timeout: Duration::from_secs(self.flush_timeout_seconds),
            max_frame_bytes: self.max_frame_bytes,
            result_cache: self.result_cache_size,
            seed,
            wall,
            // The tracing subscriber decides; the agent sets it once that is installed.
            log_level: astra_core::worker::Level::Debug,
        }
    }
}
