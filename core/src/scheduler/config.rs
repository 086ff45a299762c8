//! Settings of the reference scheduler machine: the c4bf80a constants and switches for the
//! real scheduler's bugs, so tests can run against either the faithful or a fixed scheduler.

use crate::time::WallClock;
use std::time::Duration;

/// Models the dispatch ack-registration race of spec §5.1: the real scheduler registers its
/// ack waiter only after sending the dispatch and updating its run registry, so an ack that
/// arrives in that gap is dropped as "unknown dispatch".
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct AckRace {
    /// An ack arriving strictly less than this long after its dispatch was sent may be dropped.
    pub window: Duration,
    /// Probability (clamped to [0, 1]) that such an early ack is dropped.
    pub probability: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SchedulerConfig {
    /// Seeds the generator of envelope ids and of the ack race.
    pub seed: u64,
    /// Maps the monotonic clock to the wall time written into `ts`.
    pub wall: WallClock,
    /// How long a dispatch waits for its ack before the node is reset (spec §5.2: 5 s).
    pub ack_timeout: Duration,
    /// Consecutive dispatch failures tolerated; the next one gives the node up (spec: 5).
    pub max_attempts: u32,
    /// Retry delay after failure k is `min(base_retry * 2^(k-1), max_retry)`.
    pub base_retry: Duration,
    pub max_retry: Duration,
    /// Reproduce spec §4.5: when a superseded connection goes away, its cleanup removes the
    /// session of that worker id even though it now belongs to the new connection.
    pub superseded_bug: bool,
    /// Reproduce spec §5.5: dependents are released by a per-edge counter that every result
    /// copy decrements again, so a duplicate result can release a fan-in node before all of its
    /// dependencies finished. When false a node becomes ready once every dependency is terminal.
    pub fan_in_counter_bug: bool,
    /// Reproduce the ack-registration race (spec §5.1). `None`: every matching ack counts.
    pub ack_race: Option<AckRace>,
    /// Larger inbound frames are refused as uvicorn's `ws_max_size` refuses them (close 1009).
    pub max_frame_bytes: usize,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            seed: 0,
            wall: WallClock::new(0),
            ack_timeout: Duration::from_secs(5),
            max_attempts: 5,
            base_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(30),
            superseded_bug: true,
            fan_in_counter_bug: false,
            ack_race: None,
            max_frame_bytes: crate::v1::codec::DEFAULT_MAX_FRAME_BYTES,
        }
    }
}

impl SchedulerConfig {
    /// The delay before the next dispatch attempt after `failures` consecutive failures
    /// (`failures >= 1`): 1, 2, 4, 8, 16 s with the defaults, capped at `max_retry`.
    pub fn retry_delay(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(31);
        self.base_retry
            .saturating_mul(1u32 << exp)
            .min(self.max_retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_and_caps() {
        let c = SchedulerConfig::default();
        let got: Vec<u64> = (1..=7).map(|k| c.retry_delay(k).as_secs()).collect();
        assert_eq!(got, vec![1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(c.retry_delay(u32::MAX), c.max_retry);
    }
}
