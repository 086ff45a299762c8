//! The liveness phase (VOPR `transition_to_liveness_mode`): with faults off, every run the
//! current scheduler knows must finish, every worker must go idle with an empty outbox, and
//! then the end-of-run checks (7) and (8) are evaluated.

use super::Sim;
use crate::event::Ev;
use crate::invariants::Invariant;
use astra_core::scheduler::{NodeStatus, RunState};
use astra_core::work::TaskKey;
use std::time::Duration;

const CHECK_EVERY: Duration = Duration::from_secs(1);

enum Pending {
    Run(String),
    Outbox(String),
}

impl Sim {
    /// A run that cannot finish because a crash killed a task the scheduler saw acked: the
    /// protocol has no lease, so the node stays `running` forever (spec §4.5).
    fn stranded(&self, r: &RunState) -> bool {
        r.nodes.iter().any(|n| {
            n.status == NodeStatus::Running
                && !n.pending_ack
                && self.crash_lost.contains(&TaskKey {
                    run_id: r.run_id.clone(),
                    task_id: n.spec.id.clone(),
                })
        })
    }

    fn pending(&self) -> Option<Pending> {
        let Some(s) = self.sched.as_ref() else {
            return Some(Pending::Run("the scheduler is down".into()));
        };
        for r in s.runs() {
            if r.finished_at.is_none() && !self.stranded(r) {
                let nodes: Vec<String> = r
                    .nodes
                    .iter()
                    .map(|n| {
                        format!(
                            "{}={:?}{}",
                            n.spec.id,
                            n.status,
                            if n.pending_ack { "(ack?)" } else { "" }
                        )
                    })
                    .collect();
                return Some(Pending::Run(format!(
                    "run {} not finished: {}",
                    r.run_id,
                    nodes.join(" ")
                )));
            }
        }
        for (w, slot) in self.slots.iter().enumerate() {
            let Some(m) = slot.machine.as_ref() else {
                return Some(Pending::Run(format!("w{w} is down")));
            };
            if m.in_flight() > 0 {
                return Some(Pending::Run(format!(
                    "w{w} still has {} tasks",
                    m.in_flight()
                )));
            }
            if !slot.outbox.is_empty() {
                return Some(Pending::Outbox(format!(
                    "w{w} outbox still holds {} unacked frames (state {:?})",
                    slot.outbox.len(),
                    m.state()
                )));
            }
        }
        None
    }

    pub(super) fn on_liveness_check(&mut self) {
        if self.need_canary && self.sched.is_some() {
            self.need_canary = false;
            self.submit_run();
        }
        let Some(deadline) = self.chaos_over_at() else {
            return;
        };
        match self.pending() {
            None => self.final_checks(),
            Some(p) if self.now >= deadline => {
                let (inv, d) = match p {
                    Pending::Run(d) => (Invariant::Liveness, d),
                    Pending::Outbox(d) => (Invariant::NoLostResult, d),
                };
                let bound = self.opts.liveness_bound;
                self.checker.flag(
                    inv,
                    self.now,
                    None,
                    format!("not settled {bound:?} after the faults stopped: {d}"),
                );
            }
            Some(_) => self.q.push(self.now + CHECK_EVERY, Ev::LivenessCheck),
        }
    }

    fn final_checks(&mut self) {
        for w in 0..self.slots.len() {
            self.checker.check_answered(w, self.now);
        }
        if let Some(s) = self.sched.as_ref() {
            self.stats.runs_stranded_by_crash =
                s.runs().iter().filter(|r| r.finished_at.is_none()).count() as u64;
            let known = |k: &TaskKey| {
                s.run(&k.run_id)
                    .is_some_and(|r| r.node(&k.task_id).is_some())
            };
            self.checker.check_recorded(self.now, known, &self.recorded);
        }
        self.done = true;
    }
}
