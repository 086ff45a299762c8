//! Drain and shutdown: stop taking work (re-register with an empty inventory so the scheduler
//! routes elsewhere), let in-flight tasks finish within the grace period, cancel what is left,
//! flush the outbox, then close with 1000. Shutdown does the same without the grace period.

use super::frames::{error_payload, task_details};
use super::io::{Action, Level};
use super::{Phase, Worker};
use crate::time::Instant;
use crate::work::task::codes;

#[derive(Debug, Clone)]
pub(super) struct Drain {
    grace_deadline: Instant,
    hard_deadline: Instant,
    cancelled: bool,
}

impl Drain {
    pub fn next_deadline(&self) -> Option<Instant> {
        Some(if self.cancelled {
            self.hard_deadline
        } else {
            self.grace_deadline
        })
    }
}

impl Worker {
    pub(super) fn on_drain(&mut self) {
        if self.draining.is_some() {
            return;
        }
        let grace = self.now + self.cfg.drain_grace;
        self.draining = Some(Drain {
            grace_deadline: grace,
            hard_deadline: grace + self.cfg.flush_timeout,
            cancelled: false,
        });
        log!(
            self,
            Level::Info,
            "draining: no new work; finishing in-flight tasks",
            "inflight" => self.admission.in_flight(),
            "grace_ms" => self.cfg.drain_grace.as_millis(),
        );
        self.reregister();
    }

    pub(super) fn on_shutdown(&mut self) {
        let now = self.now;
        match &mut self.draining {
            Some(d) => {
                d.grace_deadline = d.grace_deadline.min(now);
                d.hard_deadline = d.hard_deadline.min(now + self.cfg.flush_timeout);
            }
            None => {
                self.draining = Some(Drain {
                    grace_deadline: now,
                    hard_deadline: now + self.cfg.flush_timeout,
                    cancelled: false,
                });
                self.reregister();
            }
        }
        log!(
            self,
            Level::Warn,
            "shutting down: cancelling in-flight tasks"
        );
        self.fire_drain_timers();
    }

    pub(super) fn fire_drain_timers(&mut self) {
        let now = self.now;
        let Some(d) = &self.draining else { return };
        let (grace, hard, cancelled) = (d.grace_deadline, d.hard_deadline, d.cancelled);
        if !cancelled && now >= grace {
            self.cancel_everything();
        }
        if now >= hard {
            let left = self.outbox.len();
            log!(
                self,
                Level::Warn,
                "drain deadline passed; stopping with unacknowledged frames kept on disk for the next start",
                "outbox" => left,
                "running" => self.admission.running_count(),
            );
            self.stop("drain deadline passed");
        }
    }

    fn cancel_everything(&mut self) {
        if let Some(d) = &mut self.draining {
            d.cancelled = true;
        }
        let running: Vec<_> = self.admission.running_keys().into_iter().cloned().collect();
        for task in running {
            self.push(Action::CancelTask {
                task,
                reason: "worker is shutting down".into(),
            });
        }
        for spec in self.admission.take_queued() {
            let seq = self.dispatches.remove(&spec.key).and_then(|m| m.seq);
            let details = task_details(
                Some(&spec.key.run_id),
                Some(&spec.key.task_id),
                Some(&spec.node_id),
            );
            let p = error_payload(
                codes::RUNNER_CANCELLED,
                "cancelled before it started: the worker is shutting down",
                "worker.drain",
                details,
            );
            self.emit_terminal_error(spec.key, seq, p, true);
        }
    }

    /// Called after every input: a drain is complete once no task is in flight and every
    /// durable frame was acked.
    pub(super) fn check_drain_progress(&mut self) {
        if self.draining.is_none() || self.phase == Phase::Closed {
            return;
        }
        if self.admission.in_flight() == 0 && self.outbox.is_empty() {
            self.stop("drained");
        }
    }

    fn stop(&mut self, reason: &str) {
        if self.connected() {
            self.push(Action::Close {
                code: 1000,
                reason: reason.to_string(),
            });
        }
        self.phase = Phase::Closed;
        self.reconnect_at = None;
        self.heartbeat_at = None;
        self.rehandshake_at = None;
        log!(self, Level::Info, "worker stopped", "reason" => reason);
        // Report `State(Closed)` now: `Stopped` must be the very last action.
        self.refresh_state();
        self.push(Action::Stopped);
    }
}
