//! The chaos phase: the workload (run submissions) and the fault streams for resets,
//! partitions, crashes, scheduler restarts and package churn, each a Bernoulli trial per
//! simulated second, scheduled by drawing the gap to its next success.

use super::Sim;
use crate::event::{Ev, Rec};
use crate::frames;
use crate::workload;
use astra_core::scheduler::SchedInput;
use astra_core::Instant;
use std::time::Duration;

/// Fault streams per worker: reset, partition, crash, package op.
const PER_WORKER: usize = 4;
/// The tick of a stream whose rate is zero.
pub(super) const NEVER: u64 = u64::MAX;

/// Trials until the first success (at least 1) of a per-trial probability `p`, from one
/// uniform draw `u` in [0, 1): the inverse of the geometric distribution's CDF.
fn geometric_gap(p: f64, u: f64) -> u64 {
    if p <= 0.0 || p.is_nan() {
        return NEVER;
    }
    if p >= 1.0 {
        return 1;
    }
    // 1 - u is in (0, 1], so the logarithm is finite; the cast saturates at u64::MAX.
    let g = ((1.0 - u).ln() / (1.0 - p).ln()).floor() + 1.0;
    g.max(1.0) as u64
}

impl Sim {
    /// Exponential-ish gap around the seed's mean submission interval.
    pub(super) fn draw_submit_gap(&mut self) -> Duration {
        let mean = self.swarm.submit_every.as_secs_f64();
        let u = self.rng.unit().max(1e-9);
        Duration::from_secs_f64((-u.ln() * mean).min(mean * 5.0))
    }

    pub(super) fn submit_run(&mut self) {
        if self.sched.is_none() {
            return;
        }
        self.next_run += 1;
        let spec = workload::random_run(&mut self.rng, self.next_run);
        self.stats.runs_submitted += 1;
        self.sched_input(SchedInput::SubmitRun(spec));
    }

    pub(super) fn on_submit(&mut self) {
        if !self.chaos {
            return;
        }
        self.submit_run();
        let gap = self.draw_submit_gap();
        self.q.push(self.now + gap, Ev::Submit);
    }

    /// The tick each fault stream fires next, drawn when the chaos phase starts.
    pub(super) fn start_fault_clock(&mut self) {
        let streams = self.slots.len() * PER_WORKER + 1;
        self.fault_next = (0..streams).map(|i| self.draw_fault_gap(i)).collect();
        self.push_next_chaos();
    }

    /// Ticks until stream `i` fires again: geometric with the stream's per-tick
    /// probability, so each stream is exactly the Bernoulli trial per tick it replaces, without
    /// a queue event for every tick that rolls nothing (most of them: rates are per minute).
    fn draw_fault_gap(&mut self, i: usize) -> u64 {
        let f = &self.swarm.faults;
        let per_min = match (i / PER_WORKER < self.slots.len(), i % PER_WORKER) {
            (false, _) => f.sched_restarts_per_min,
            (true, 0) => f.resets_per_min,
            (true, 1) => f.partitions_per_min,
            (true, 2) => f.crashes_per_min,
            (true, _) => f.pkg_ops_per_min,
        };
        geometric_gap(per_min / 60.0, self.rng.unit())
    }

    fn push_next_chaos(&mut self) {
        let Some(&next) = self.fault_next.iter().min() else {
            return;
        };
        // Ticks from the end of the chaos phase on would roll nothing (the phase's end runs
        // first at the same instant: it was queued first).
        let end = Instant::ZERO + self.opts.chaos;
        let at = Instant::ZERO + Duration::from_secs(next.min(end.as_micros() / 1_000_000 + 1));
        if at < end {
            self.q.push(at, Ev::Chaos);
        }
    }

    /// A tick on which at least one fault stream fires; streams fire in the order the
    /// once-a-second dice rolled them (per worker: reset, partition, crash, package op; then
    /// the scheduler restart).
    pub(super) fn on_chaos(&mut self) {
        if !self.chaos {
            return;
        }
        let tick = (self.now - Instant::ZERO).as_secs();
        for i in 0..self.fault_next.len() {
            if self.fault_next[i] != tick {
                continue;
            }
            let w = i / PER_WORKER;
            match (w < self.slots.len(), i % PER_WORKER) {
                (false, _) => self.restart_scheduler(),
                (true, 0) => self.reset(w),
                (true, 1) => self.start_partition(w),
                (true, 2) => self.crash(w),
                (true, _) => self.push_package_op(w),
            }
            let gap = self.draw_fault_gap(i);
            self.fault_next[i] = tick.saturating_add(gap);
        }
        self.push_next_chaos();
    }

    /// The scheduler pushes a `pkg.install` or `pkg.uninstall` of an extra package.
    fn push_package_op(&mut self, w: usize) {
        if self.sched.is_none() || !self.worker_up(w) {
            return;
        }
        self.stats.pkg_ops += 1;
        self.note(Rec::Fault("package op", Some(w)));
        self.next_pkg += 1;
        let id = crate::workload::numbered("pkg-op-", self.next_pkg);
        let ts = self.swarm.sched_cfg.wall.rfc3339(self.now);
        // `extra.pkg{0..3}` at `1.{0..2}.0`, from tables (no formatting per op).
        const NAMES: [&str; 3] = ["extra.pkg0", "extra.pkg1", "extra.pkg2"];
        const VERSIONS: [&str; 2] = ["1.0.0", "1.1.0"];
        let name = NAMES[self.rng.below(3) as usize].to_string();
        let version = VERSIONS[self.rng.below(2) as usize].to_string();
        let text = if self.rng.chance(0.6) {
            frames::pkg_install(id, ts, &name, &version)
        } else {
            let v = self.rng.chance(0.5).then_some(version.as_str());
            frames::pkg_uninstall(id, ts, &name, v)
        };
        let worker_id = self.slots[w].cfg.worker_id.clone();
        self.sched_input(SchedInput::InjectToWorker { worker_id, text });
    }

    /// The end of the chaos phase: faults stop, partitions heal, processes come back.
    pub(super) fn on_end_chaos(&mut self) {
        self.chaos = false;
        self.note(Rec::Note("faults off: liveness phase"));
        for w in 0..self.slots.len() {
            self.slots[w].partitioned = false;
            if !self.worker_up(w) {
                self.boot(w);
            }
        }
        if self.sched.is_none() {
            self.on_scheduler_up();
        }
        self.need_canary = true;
        self.liveness_deadline = Some(self.now + self.opts.liveness_bound);
        self.q.push(self.now, Ev::LivenessCheck);
    }

    pub(super) fn chaos_over_at(&self) -> Option<Instant> {
        self.liveness_deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use astra_core::rng::Rng;

    #[test]
    fn geometric_gap_is_the_per_tick_trial_it_replaces() {
        assert_eq!(geometric_gap(0.0, 0.5), NEVER);
        assert_eq!(geometric_gap(f64::NAN, 0.5), NEVER);
        assert_eq!(geometric_gap(1.0, 0.99), 1);
        assert_eq!(geometric_gap(0.3, 0.0), 1);
        // P(gap = 1) = p and E[gap] = 1 / p, as for a Bernoulli(p) trial every tick.
        let mut rng = Rng::new(11);
        for p in [0.2, 0.01] {
            let n = 40_000;
            let gaps: Vec<u64> = (0..n).map(|_| geometric_gap(p, rng.unit())).collect();
            let mean = gaps.iter().sum::<u64>() as f64 / n as f64;
            let first = gaps.iter().filter(|&&g| g == 1).count() as f64 / n as f64;
            let sd_mean = ((1.0 - p) / (p * p) / n as f64).sqrt();
            assert!((mean - 1.0 / p).abs() < 5.0 * sd_mean, "p={p} mean={mean}");
            let sd_first = (p * (1.0 - p) / n as f64).sqrt();
            assert!((first - p).abs() < 5.0 * sd_first, "p={p} P(1)={first}");
        }
    }
}
