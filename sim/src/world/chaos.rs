//! The chaos phase: the workload (run submissions) and the once-a-second fault dice for
//! resets, partitions, crashes, scheduler restarts and package churn.

use super::Sim;
use crate::event::{Ev, Rec};
use crate::frames;
use crate::workload;
use astra_core::scheduler::SchedInput;
use astra_core::Instant;
use std::time::Duration;

const TICK: Duration = Duration::from_secs(1);

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

    fn per_tick(&self, per_min: f64) -> f64 {
        per_min / 60.0
    }

    pub(super) fn on_chaos(&mut self) {
        if !self.chaos {
            return;
        }
        let f = self.swarm.faults.clone();
        for w in 0..self.slots.len() {
            if f.resets_per_min > 0.0 && self.rng.chance(self.per_tick(f.resets_per_min)) {
                self.reset(w);
            }
            if f.partitions_per_min > 0.0 && self.rng.chance(self.per_tick(f.partitions_per_min)) {
                self.start_partition(w);
            }
            if f.crashes_per_min > 0.0 && self.rng.chance(self.per_tick(f.crashes_per_min)) {
                self.crash(w);
            }
            if f.pkg_ops_per_min > 0.0 && self.rng.chance(self.per_tick(f.pkg_ops_per_min)) {
                self.push_package_op(w);
            }
        }
        if f.sched_restarts_per_min > 0.0
            && self.rng.chance(self.per_tick(f.sched_restarts_per_min))
        {
            self.restart_scheduler();
        }
        self.q.push(self.now + TICK, Ev::Chaos);
    }

    /// The scheduler pushes a `pkg.install` or `pkg.uninstall` of an extra package.
    fn push_package_op(&mut self, w: usize) {
        if self.sched.is_none() || !self.worker_up(w) {
            return;
        }
        self.stats.pkg_ops += 1;
        self.note(Rec::Fault("package op", Some(w)));
        self.next_pkg += 1;
        let id = format!("pkg-op-{}", self.next_pkg);
        let ts = self.swarm.sched_cfg.wall.rfc3339(self.now);
        let name = format!("extra.pkg{}", self.rng.below(3));
        let version = format!("1.{}.0", self.rng.below(2));
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
