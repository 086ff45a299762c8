//! Swarm testing (VOPR `options_swarm`): each seed draws its own scenario — worker count,
//! protocol knobs, and for every selected fault whether it is live and how hard it hits.

use crate::faults::{Fault, FaultSet};
use astra_core::rng::Rng;
use astra_core::scheduler::{AckRace, SchedulerConfig};
use astra_core::worker::WorkerConfig;
use astra_core::WallClock;
use std::collections::BTreeMap;
use std::time::Duration;

/// 2025-11-03T13:20:00Z: the fixed wall-clock epoch of every simulation.
pub const EPOCH_UNIX_MICROS: u64 = 1_762_176_000_000_000;

/// Per-seed fault intensities; zero means the fault is off in this seed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultKnobs {
    pub drop: f64,
    pub dup: f64,
    pub reorder: f64,
    pub delay: f64,
    pub delay_max: Duration,
    /// Expected events per simulated minute (per worker where that makes sense).
    pub resets_per_min: f64,
    pub partitions_per_min: f64,
    pub partition_max: Duration,
    pub sched_restarts_per_min: f64,
    pub crashes_per_min: f64,
    pub slow_factor: f64,
    pub exec_failure: f64,
    /// Timers of a skewed worker fire late by up to this fraction of their wait.
    pub skew: f64,
    pub malformed: f64,
    pub pkg_ops_per_min: f64,
}

#[derive(Debug, Clone)]
pub struct Swarm {
    pub workers: usize,
    pub worker_cfgs: Vec<WorkerConfig>,
    /// Per worker: whether its timers are skewed.
    pub skewed: Vec<bool>,
    pub sched_cfg: SchedulerConfig,
    pub latency_min: Duration,
    pub latency_max: Duration,
    /// Mean virtual time between run submissions.
    pub submit_every: Duration,
    pub faults: FaultKnobs,
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn between(rng: &mut Rng, lo: u64, hi: u64) -> u64 {
    lo + rng.below(hi.saturating_sub(lo) + 1)
}

/// Live in this seed? Half of the selected faults are, so each seed explores a corner.
fn live(rng: &mut Rng, set: FaultSet, f: Fault) -> bool {
    set.has(f) && rng.chance(0.6)
}

impl Swarm {
    pub fn draw(rng: &mut Rng, max_workers: usize, set: FaultSet) -> Swarm {
        let workers = 1 + rng.below(max_workers.max(1) as u64) as usize;
        let heartbeat = ms(between(rng, 2_000, 30_000));
        let jitter = ms(rng.below(heartbeat.as_millis() as u64 / 5 + 1));
        let attempts = between(rng, 2, 6) as u32;
        let retry_base = ms(between(rng, 50, 500));
        let retry_max = ms(between(rng, 1_000, 5_000));
        let extra_acks = match rng.below(3) {
            0 => vec![],
            1 => vec![ms(200)],
            _ => vec![ms(150), ms(1_500)],
        };
        let max_parallel = between(rng, 1, 4) as u32;
        let mut per_node = BTreeMap::new();
        if rng.chance(0.5) {
            per_node.insert("sleep".to_string(), between(rng, 1, 2) as u32);
        }
        if rng.chance(0.3) {
            per_node.insert("stream".to_string(), 1);
        }
        let reconnect_min = ms(between(rng, 100, 1_000));
        let reconnect_max = ms(between(rng, 2_000, 20_000));
        let worker_cfgs = (0..workers)
            .map(|i| WorkerConfig {
                worker_id: format!("w{i}"),
                hostname: format!("sim-{i}"),
                heartbeat_interval: heartbeat,
                heartbeat_jitter: jitter,
                ack_retry_base: retry_base,
                ack_retry_max: retry_max,
                ack_retry_attempts: attempts,
                extra_ack_delays: extra_acks.clone(),
                rehandshake_delay: Some(ms(1_000)),
                reconnect_min,
                reconnect_max,
                max_parallel,
                per_node_limits: per_node.clone(),
                result_cache: between(rng, 64, 4096) as usize,
                seed: rng.next_u64(),
                wall: WallClock::new(EPOCH_UNIX_MICROS),
                ..WorkerConfig::default()
            })
            .collect();

        let mut f = FaultKnobs::default();
        if live(rng, set, Fault::Drop) {
            f.drop = rng.unit() * 0.10;
        }
        if live(rng, set, Fault::Dup) {
            f.dup = rng.unit() * 0.10;
        }
        if live(rng, set, Fault::Reorder) {
            f.reorder = rng.unit() * 0.10;
        }
        if live(rng, set, Fault::Delay) {
            f.delay = rng.unit() * 0.05;
            f.delay_max = ms(between(rng, 500, 8_000));
        }
        if live(rng, set, Fault::Reset) {
            f.resets_per_min = rng.unit() * 1.0;
        }
        if live(rng, set, Fault::Partition) {
            f.partitions_per_min = rng.unit() * 0.5;
            f.partition_max = ms(between(rng, 1_000, 60_000));
        }
        if live(rng, set, Fault::SchedRestart) {
            f.sched_restarts_per_min = rng.unit() * 0.2;
        }
        if live(rng, set, Fault::Crash) {
            f.crashes_per_min = rng.unit() * 0.3;
        }
        f.slow_factor = if live(rng, set, Fault::SlowExec) {
            1.0 + rng.unit() * 2.0
        } else {
            1.0
        };
        if live(rng, set, Fault::FailExec) {
            f.exec_failure = rng.unit() * 0.3;
        }
        let skew_on = live(rng, set, Fault::Skew);
        if skew_on {
            f.skew = rng.unit() * 0.05;
        }
        let skewed = (0..workers).map(|_| skew_on && rng.chance(0.5)).collect();
        let ack_race = live(rng, set, Fault::AckRace).then(|| AckRace {
            window: ms(between(rng, 1, 50)),
            probability: 0.2 + rng.unit() * 0.7,
        });
        if live(rng, set, Fault::Malformed) {
            f.malformed = rng.unit() * 0.05;
        }
        if live(rng, set, Fault::Packages) {
            f.pkg_ops_per_min = rng.unit() * 2.0;
        }
        let sched_cfg = SchedulerConfig {
            seed: rng.next_u64(),
            wall: WallClock::new(EPOCH_UNIX_MICROS),
            ack_timeout: ms(between(rng, 2_000, 5_000)),
            ack_race,
            ..SchedulerConfig::default()
        };
        let latency_min = ms(between(rng, 1, 20));
        let latency_max = latency_min + ms(between(rng, 0, 100));
        Swarm {
            workers,
            worker_cfgs,
            skewed,
            sched_cfg,
            latency_min,
            latency_max,
            submit_every: ms(between(rng, 10_000, 60_000)),
            faults: f,
        }
    }
}
