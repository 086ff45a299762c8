//! The scheduler host: feeding the reference scheduler machine, carrying out its actions
//! (with dispatch corruption), its timer, and restarts that lose all in-memory state.

use super::Sim;
use crate::event::{Ev, Rec};
use astra_core::scheduler::{
    ConnId, SchedAction, SchedEvent, SchedInput, Scheduler, SchedulerConfig,
};
use astra_core::v1::codec::{Inbound, Light};
use astra_core::work::TaskKey;
use astra_core::worker::Incoming;
use std::time::Duration;

/// One input to the scheduler machine, for one call. A decoded frame arrives boxed (as the
/// checker's `SentFrame` holds it) and is unboxed only for `handle_decoded`.
#[allow(clippy::large_enum_variant)]
enum Feed<'a> {
    Input(SchedInput),
    Decoded(ConnId, Box<Inbound>),
    Light(ConnId, Light<'a>),
}

impl Sim {
    pub(super) fn sched_input(&mut self, input: SchedInput) {
        self.sched_feed(Feed::Input(input));
    }

    /// A frame the checker's strict decode already read: the scheduler's `handle_decoded`.
    pub(super) fn sched_decoded(&mut self, conn: ConnId, frame: Box<Inbound>) {
        self.sched_feed(Feed::Decoded(conn, frame));
    }

    /// An ack or heartbeat the checker's light read already read: `handle_light`.
    pub(super) fn sched_light(&mut self, conn: ConnId, light: Light<'_>) {
        self.sched_feed(Feed::Light(conn, light));
    }

    fn sched_feed(&mut self, feed: Feed<'_>) {
        let was_tick = matches!(feed, Feed::Input(SchedInput::Tick));
        let now = self.now;
        let Some(s) = self.sched.as_mut() else { return };
        self.inputs += 1;
        match feed {
            Feed::Input(input) => s.handle(now, input),
            Feed::Decoded(conn, f) => s.handle_decoded(now, conn, Ok(*f)),
            Feed::Light(conn, l) => s.handle_light(now, conn, l),
        }
        while let Some(a) = self.sched.as_mut().and_then(Scheduler::poll_action) {
            self.sched_action(a);
        }
        self.rearm_sched(was_tick);
    }

    fn rearm_sched(&mut self, after_tick: bool) {
        let now = self.now;
        let Some(s) = self.sched.as_ref() else { return };
        let mut t = s.poll_timeout();
        if after_tick && t.is_some_and(|t| t <= now) {
            self.stats.timer_spins += 1;
            t = Some(now + Duration::from_millis(1));
        }
        if t == self.sched_timer_at {
            return;
        }
        self.sched_timer_at = t;
        self.sched_token += 1;
        if let Some(t) = t {
            let token = self.sched_token;
            self.q.push(t.max(now), Ev::SchedTimer { token });
        }
    }

    pub(super) fn on_sched_timer(&mut self, token: u64) {
        if self.sched.is_none() || token != self.sched_token {
            return;
        }
        self.sched_timer_at = None;
        self.sched_input(SchedInput::Tick);
    }

    fn sched_action(&mut self, a: SchedAction) {
        self.hash.u64(100);
        if self.opts.debug {
            eprintln!("{:?} sched {a:?}", self.now);
        }
        match a {
            SchedAction::Send { conn, text } => {
                self.hash.str(&text);
                let corrupt = self.chaos
                    && self.swarm.faults.malformed > 0.0
                    && crate::frames::sniff_type(&text) == "cmd.dispatch"
                    && self.rng.chance(self.swarm.faults.malformed);
                let frame = if corrupt {
                    self.stats.frames_corrupted += 1;
                    self.note(Rec::Fault("corrupted dispatch", None));
                    crate::frames::corrupt(&mut self.rng, &text)
                } else {
                    Incoming::Text(text)
                };
                self.send_to_worker(conn, frame);
            }
            SchedAction::Close { conn, code, .. } => {
                self.hash.u64(code as u64);
                self.close_sched_side(conn);
                // The driver reports the socket gone once the close completes.
                let at = self.soon();
                self.q.push(at, Ev::SchedSeesClose { conn });
            }
            SchedAction::Event(e) => self.sched_event(e),
        }
    }

    fn sched_event(&mut self, e: SchedEvent) {
        match e {
            SchedEvent::ResultRecorded {
                run_id,
                node_id,
                phantom: false,
                ..
            } => {
                self.hash.str(&run_id);
                self.hash.str(&node_id);
                self.recorded.insert(TaskKey {
                    run_id,
                    task_id: node_id,
                });
            }
            SchedEvent::CommandErrorRecorded {
                run_id: Some(run_id),
                node_id: Some(node_id),
                ..
            } => {
                self.hash.str(&run_id);
                self.hash.str(&node_id);
                self.recorded.insert(TaskKey {
                    run_id,
                    task_id: node_id,
                });
            }
            SchedEvent::RunFinished { run_id, .. } => {
                self.hash.str(&run_id);
                self.stats.runs_finished += 1;
            }
            SchedEvent::Dispatched { dispatch_id, .. } => self.hash.str(&dispatch_id),
            _ => self.hash.u64(101),
        }
    }

    /// The scheduler process dies: every socket drops, all state is gone until it is back.
    pub(super) fn restart_scheduler(&mut self) {
        if self.sched.is_none() {
            return;
        }
        self.stats.sched_restarts += 1;
        self.note(Rec::Fault("scheduler restart", None));
        self.sched = None;
        self.sched_gen += 1;
        self.sched_timer_at = None;
        self.sched_token += 1;
        self.recorded.clear();
        self.crash_lost.clear();
        let open: Vec<_> = self
            .conns
            .iter()
            .filter(|(_, i)| i.sched_open)
            .map(|(c, _)| *c)
            .collect();
        for c in open {
            self.close_sched_side(c);
        }
        let d = self.between(Duration::from_millis(500), Duration::from_secs(5));
        self.q.push(self.now + d, Ev::SchedulerUp);
    }

    pub(super) fn on_scheduler_up(&mut self) {
        if self.sched.is_some() {
            return;
        }
        let cfg = SchedulerConfig {
            seed: self.rng.next_u64(),
            ..self.swarm.sched_cfg.clone()
        };
        self.sched = Some(Scheduler::new(cfg));
    }
}
