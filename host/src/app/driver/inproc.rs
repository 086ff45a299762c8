//! The in-process scheduler of `transport=dummy`: the reference scheduler machine pumped
//! inside the worker's own control loop, no network at all.

use crate::app::clock::Clock;
use astra_core::scheduler::{ConnId, SchedAction, SchedInput, Scheduler, SchedulerConfig};
use astra_core::time::Instant;
use astra_core::worker::{Incoming, Input};
use std::collections::VecDeque;

pub(super) struct InProc {
    sched: Scheduler,
    conn: Option<ConnId>,
    next: u64,
    inbox: VecDeque<String>,
}

impl InProc {
    pub(super) fn new(clock: &Clock) -> Self {
        InProc {
            sched: Scheduler::new(SchedulerConfig {
                wall: clock.wall,
                ..SchedulerConfig::default()
            }),
            conn: None,
            next: 1,
            inbox: VecDeque::new(),
        }
    }

    fn pump(&mut self, clock: &Clock, input: SchedInput) {
        self.sched.handle(clock.now(), input);
        while let Some(a) = self.sched.poll_action() {
            match a {
                SchedAction::Send { conn, text } if Some(conn) == self.conn => {
                    self.inbox.push_back(text)
                }
                SchedAction::Close { conn, .. } if Some(conn) == self.conn => self.conn = None,
                _ => {}
            }
        }
    }

    /// A new connection; the worker sees it as connected at once.
    pub(super) fn connect(&mut self, clock: &Clock) {
        let id = ConnId(self.next);
        self.next += 1;
        self.conn = Some(id);
        self.pump(clock, SchedInput::Connected(id));
    }

    pub(super) fn send(&mut self, clock: &Clock, text: &str) {
        if let Some(c) = self.conn {
            self.pump(
                clock,
                SchedInput::Frame(c, Incoming::Text(text.to_string())),
            );
        }
    }

    pub(super) fn close(&mut self, clock: &Clock) {
        if let Some(c) = self.conn.take() {
            self.pump(clock, SchedInput::Disconnected(c));
        }
    }

    pub(super) fn tick(&mut self, clock: &Clock) {
        self.pump(clock, SchedInput::Tick);
    }

    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.sched.poll_timeout()
    }

    /// Moves frames the scheduler sent into the worker's input queue.
    pub(super) fn deliver(&mut self, pending: &mut VecDeque<Input>) {
        while let Some(t) = self.inbox.pop_front() {
            pending.push_back(Input::Frame(Incoming::Text(t)));
        }
    }
}
