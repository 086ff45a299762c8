//! Connection lifecycle: connect, handshake (wait for its ack), register (wait for its ack),
//! heartbeats, backoff with jitter, and the repeat handshake + register after a reconnect
//! that works around the scheduler's superseded-session bug (spec §4.5).

use super::io::{Action, Level};
use super::reliability::Class;
use super::{Phase, Worker};
use std::time::Duration;

impl Worker {
    pub(super) fn on_start(&mut self) {
        if self.phase == Phase::Idle {
            self.begin_connect();
        }
    }

    pub(super) fn begin_connect(&mut self) {
        self.phase = Phase::Connecting;
        self.push(Action::Connect);
    }

    pub(super) fn on_connected(&mut self) {
        if self.phase != Phase::Connecting {
            log!(
                self,
                Level::Warn,
                "connected while not connecting; starting a new session"
            );
        }
        self.connections += 1;
        if self.connections > 1 {
            self.stats.reconnects += 1;
        }
        self.phase = Phase::Handshaking;
        self.send_handshake();
    }

    pub(super) fn send_handshake(&mut self) {
        let f = self.handshake_frame();
        self.handshake_id = Some(f.id.clone());
        self.send_tracked(f, Class::Session);
    }

    pub(super) fn on_handshake_acked(&mut self) {
        // A handshake wipes the scheduler's view of our packages, so a register always follows.
        self.send_register();
    }

    pub(super) fn send_register(&mut self) {
        let f = self.register_frame(self.draining.is_some());
        self.register_id = Some(f.id.clone());
        self.send_tracked(f, Class::Session);
        if self.phase == Phase::Handshaking {
            self.phase = Phase::Registering;
        }
    }

    pub(super) fn on_register_acked(&mut self) {
        if self.phase != Phase::Registering {
            return;
        }
        self.phase = Phase::Active;
        self.backoff_attempt = 0;
        log!(
            self,
            Level::Info,
            "registered with the scheduler",
            "worker_id" => &self.cfg.worker_id,
            "packages" => self.inventory.packages.len(),
        );
        self.send_heartbeat();
        self.replay_outbox();
        if self.connections > 1 {
            if let Some(d) = self.cfg.rehandshake_delay {
                self.rehandshake_at = Some(self.now + d);
            }
        }
    }

    /// Re-announces the inventory (after a package change or a drain) on a live session.
    pub(super) fn reregister(&mut self) {
        if self.phase == Phase::Active {
            self.send_register();
        }
    }

    pub(super) fn send_heartbeat(&mut self) {
        if self.phase != Phase::Active {
            self.heartbeat_at = None;
            return;
        }
        let (frame, healthy) = self.heartbeat_frame();
        self.stats.heartbeats_sent += 1;
        if !healthy {
            self.stats.heartbeats_degraded += 1;
        }
        self.send(frame);
        let jitter = Duration::from_micros(
            self.rng
                .below(self.cfg.heartbeat_jitter.as_micros() as u64 + 1),
        );
        self.heartbeat_at =
            Some(self.now + self.cfg.heartbeat_interval.max(Duration::from_millis(1)) + jitter);
    }

    pub(super) fn on_disconnected(&mut self, reason: &str) {
        if matches!(self.phase, Phase::Idle | Phase::Closed | Phase::Backoff) {
            return;
        }
        log!(self, Level::Warn, "connection to the scheduler lost", "reason" => reason);
        self.end_session();
        self.schedule_reconnect();
    }

    /// Gives up on a live session (no acks): close it ourselves and reconnect later.
    pub(super) fn lose_session(&mut self, reason: &str) {
        if self.connected() {
            self.push(Action::Close {
                code: 1001,
                reason: reason.to_string(),
            });
        }
        self.end_session();
        self.schedule_reconnect();
    }

    fn end_session(&mut self) {
        self.reliability_on_disconnect();
        self.heartbeat_at = None;
        self.rehandshake_at = None;
        self.handshake_id = None;
        self.register_id = None;
    }

    /// Exponential backoff from `reconnect_min` to `reconnect_max` with "equal jitter": the
    /// delay is uniform in [d/2, d], never below the minimum.
    fn schedule_reconnect(&mut self) {
        let min = self.cfg.reconnect_min.max(Duration::from_millis(1));
        let max = self.cfg.reconnect_max.max(min);
        let d = min
            .saturating_mul(1u32 << self.backoff_attempt.min(20))
            .min(max);
        let half = d / 2;
        let delay =
            (half + Duration::from_micros(self.rng.below(half.as_micros() as u64 + 1))).max(min);
        self.backoff_attempt = self.backoff_attempt.saturating_add(1);
        self.phase = Phase::Backoff;
        self.reconnect_at = Some(self.now + delay);
        log!(self, Level::Info, "reconnecting after backoff", "delay_ms" => delay.as_millis());
    }
}
