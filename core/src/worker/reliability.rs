//! Ack tracking for frames that request one: resend with capped exponential backoff plus
//! jitter, resolve by `ack.for`, and the extra acks of each dispatch (spec R1, §5.1-5.2).

use super::io::{Level, OutFrame};
use super::Worker;
use crate::id_map::IdMap;
use crate::time::Instant;
use crate::v1::types::FrameType;
use std::time::Duration;

/// `d` in microseconds when it is a whole number of them and fits a `u64`.
fn whole_micros(d: Duration) -> Option<u64> {
    if !d.subsec_nanos().is_multiple_of(1000) {
        return None;
    }
    d.as_secs()
        .checked_mul(1_000_000)?
        .checked_add(u64::from(d.subsec_micros()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// handshake / register: belong to one connection, dropped when it ends.
    Session,
    /// result / command.error / pkg.event: durable, resent after every re-registration.
    Outbox,
}

/// What a tracked frame keeps to be sent again.
#[derive(Debug, Clone)]
enum Kept {
    /// A session frame, whole.
    Frame(OutFrame),
    /// An outbox frame: its text is the outbox model's entry under the same id (which lives
    /// at least as long as this: both go on its ack, and a superseded entry is forgotten here
    /// first), so only the envelope fields the frame carries besides its text are kept.
    Outbox {
        kind: FrameType,
        corr: Option<String>,
        seq: Option<u64>,
    },
}

impl Kept {
    fn kind(&self) -> FrameType {
        match self {
            Kept::Frame(f) => f.kind,
            Kept::Outbox { kind, .. } => *kind,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Pending {
    kept: Kept,
    class: Class,
    resends: u32,
    /// None while the connection is down (outbox frames wait for the next registration).
    next_at: Option<Instant>,
}

#[derive(Debug, Clone)]
struct ExtraAck {
    at: Instant,
    for_id: String,
    corr: Option<String>,
    seq: Option<u64>,
}

#[derive(Debug, Default)]
pub(super) struct Reliability {
    /// By envelope id. Its order reaches no output: the resend pass sorts the due ids (the
    /// order a `BTreeMap` gave), every other pass is order-free (min, retain, update all).
    pending: IdMap<Pending>,
    extra_acks: Vec<ExtraAck>,
    /// The earliest `next_at` in `pending`, valid unless `stale`: the driver asks for the
    /// next deadline after every input and most inputs leave `pending` alone, so it is
    /// recomputed once after the inputs that change it ([`Self::settle`]) instead of from
    /// every entry on every ask. The resend pass also skips its scan while nothing is due.
    earliest: Option<Instant>,
    /// `pending` changed since `earliest` was computed.
    stale: bool,
}

impl Reliability {
    /// Every deadline tracked here. Valid between inputs (`Worker::leave` settles it).
    pub fn next_deadline(&self) -> Option<Instant> {
        debug_assert!(!self.stale, "next_deadline asked before settle");
        let e = self.extra_acks.iter().map(|e| e.at).min();
        match (self.earliest, e) {
            (Some(p), Some(e)) => Some(p.min(e)),
            (p, e) => p.or(e),
        }
    }

    /// Brings `earliest` up to date after changes to `pending`; returns it.
    pub fn settle(&mut self) -> Option<Instant> {
        if self.stale {
            self.earliest = self.pending.values().filter_map(|p| p.next_at).min();
            self.stale = false;
        }
        self.earliest
    }

    /// [`Self::next_deadline`] computed from every entry, as it was before `earliest` was
    /// kept: the worker tests compare the two after every input.
    #[cfg(test)]
    pub fn next_deadline_by_scan(&self) -> Option<Instant> {
        let p = self.pending.values().filter_map(|p| p.next_at).min();
        let e = self.extra_acks.iter().map(|e| e.at).min();
        p.into_iter().chain(e).min()
    }

    /// Stops tracking a frame without an ack (it was superseded by a newer copy).
    pub fn forget(&mut self, id: &str) {
        if self.pending.remove(id).is_some() {
            self.stale = true;
        }
    }
}

impl Worker {
    /// Delay before resend `k` (0-based): `min(base * 2^k, max)` plus up to 20 % jitter.
    fn retry_delay(&mut self, k: u32) -> Duration {
        let base = self.cfg.ack_retry_base.max(Duration::from_millis(1));
        let d = base
            .saturating_mul(1u32 << k.min(20))
            .min(self.cfg.ack_retry_max.max(base));
        let jitter_us = self.rng.below(d.as_micros() as u64 / 5 + 1);
        // Saturating: a `Duration::MAX` bound made `+` panic (only such configs change).
        d.saturating_add(Duration::from_micros(jitter_us))
    }

    /// `self.now + self.retry_delay(k)`, in whole microseconds when both bounds are (every
    /// real configuration): the same instant and the same RNG draw without the `Duration`
    /// arithmetic (nanosecond normalising, 128-bit products) on every tracked frame.
    fn retry_at(&mut self, k: u32) -> Instant {
        let base = self.cfg.ack_retry_base.max(Duration::from_millis(1));
        let max = self.cfg.ack_retry_max.max(base);
        match (whole_micros(base), whole_micros(max)) {
            // `base` below 2^40 us: times 2^20 it stays far below `Duration`'s saturation,
            // so `saturating_mul` and `min` are exact in microseconds.
            (Some(b), Some(m)) if b < 1 << 40 => {
                let d = (b << k.min(20)).min(m);
                let jitter = self.rng.below(d / 5 + 1);
                Instant(self.now.0.saturating_add(d + jitter))
            }
            _ => self.now + self.retry_delay(k),
        }
    }

    pub(super) fn send_tracked(&mut self, frame: OutFrame, class: Class) {
        let next = self.retry_at(0);
        let kept = match class {
            Class::Session => Kept::Frame(frame.clone()),
            Class::Outbox => Kept::Outbox {
                kind: frame.kind,
                corr: frame.corr.clone(),
                seq: frame.seq,
            },
        };
        let replaced = self.rel.pending.insert(
            frame.id.clone(),
            Pending {
                kept,
                class,
                resends: 0,
                next_at: Some(next),
            },
        );
        if replaced.is_some() {
            self.rel.stale = true;
        } else if !self.rel.stale {
            // A new entry only moves the minimum down to its own deadline.
            self.rel.earliest = Some(self.rel.earliest.map_or(next, |e| e.min(next)));
        }
        self.send(frame);
    }

    /// An `ack.for` arrived.
    pub(super) fn on_ack(&mut self, for_id: &str) {
        let resolved = self.rel.pending.remove(for_id);
        let known = resolved.is_some();
        self.rel.stale |= known;
        if let Some(p) = &resolved {
            log!(
                self,
                Level::Debug,
                "ack resolved",
                "type" => super::LogValue::Static(p.kept.kind().as_str()),
                "for" => for_id,
                "resends" => p.resends,
            );
        }
        if let Some(id) = self.outbox.remove(for_id) {
            self.push(super::Action::Forget { id });
        }
        if self.handshake_id.as_deref() == Some(for_id) {
            self.handshake_id = None;
            self.on_handshake_acked();
        } else if self.register_id.as_deref() == Some(for_id) {
            self.register_id = None;
            self.on_register_acked();
        } else if !known {
            log!(
                self,
                Level::Debug,
                "ack for an unknown or already settled frame",
                "for" => for_id,
            );
        }
    }

    pub(super) fn fire_reliability_timers(&mut self) {
        let now = self.now;
        // Nothing due (the common tick): no scan of every tracked frame.
        if self.rel.settle().is_none_or(|t| t > now) {
            return self.fire_extra_acks();
        }
        let mut due: Vec<String> = self
            .rel
            .pending
            .iter()
            .filter(|(_, p)| p.next_at.is_some_and(|t| t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        // In id order, as ever: each resend draws its jitter from the RNG in this order.
        due.sort_unstable();
        for id in due {
            let Some(p) = self.rel.pending.get(&id) else {
                continue;
            };
            let (resends_done, kind) = (p.resends, p.kept.kind());
            let frame = match &p.kept {
                Kept::Frame(f) => Some(f.clone()),
                Kept::Outbox { kind, corr, seq } => self.outbox.text(&id).map(|text| {
                    OutFrame::new(*kind, id.clone(), corr.clone(), *seq, text.to_string())
                }),
            };
            let Some(frame) = frame else {
                // Unreachable while the outbox entry outlives its tracking (see `Kept`);
                // without its text there is nothing to re-send.
                self.rel.pending.remove(&id);
                self.rel.stale = true;
                continue;
            };
            if resends_done >= self.cfg.ack_retry_attempts {
                self.stats.frames_dropped_after_retries += 1;
                log!(
                    self,
                    Level::Error,
                    "no ack after every retry: treating the session as dead and reconnecting",
                    "type" => super::LogValue::Static(kind.as_str()),
                    "id" => &id,
                    "attempts" => self.cfg.ack_retry_attempts,
                );
                // Outbox frames stay durable and go out again after re-registration.
                self.lose_session("no ack from the scheduler");
                return;
            }
            let resends = resends_done + 1;
            let next = self.retry_at(resends);
            if let Some(p) = self.rel.pending.get_mut(&id) {
                p.resends = resends;
                p.next_at = Some(next);
                self.rel.stale = true;
            }
            self.stats.ack_retries += 1;
            log!(
                self,
                Level::Debug,
                "resending a frame that was not acked",
                "type" => super::LogValue::Static(frame.kind.as_str()),
                "id" => &id,
                "attempt" => resends,
            );
            self.send(frame);
        }
        self.fire_extra_acks();
    }

    /// The extra acks whose time has come (see [`Self::ack_dispatch`]).
    fn fire_extra_acks(&mut self) {
        let now = self.now;
        // Most ticks have none due: no split of the list into two new ones.
        if !self.rel.extra_acks.iter().any(|e| e.at <= now) {
            return;
        }
        let (due, later): (Vec<ExtraAck>, Vec<ExtraAck>) = std::mem::take(&mut self.rel.extra_acks)
            .into_iter()
            .partition(|e| e.at <= now);
        self.rel.extra_acks = later;
        if self.connected() {
            for e in due {
                let ack = self.ack_frame(&e.for_id, e.corr, e.seq);
                self.send(ack);
            }
        }
    }

    /// Acks a dispatch now and schedules the extra acks that defeat the scheduler's
    /// ack-registration race (spec §5.1).
    pub(super) fn ack_dispatch(&mut self, for_id: &str, corr: Option<String>, seq: Option<u64>) {
        // Scheduling the extra acks draws nothing from the RNG, so they may be queued before
        // the ack is built; the ack then takes `corr` itself.
        for &d in &self.cfg.extra_ack_delays {
            self.rel.extra_acks.push(ExtraAck {
                at: self.now + d,
                for_id: for_id.to_string(),
                corr: corr.clone(),
                seq,
            });
        }
        let ack = self.ack_frame(for_id, corr, seq);
        self.send(ack);
    }

    /// The connection ended: session frames are void; outbox frames wait for re-registration.
    pub(super) fn reliability_on_disconnect(&mut self) {
        self.rel.pending.retain(|_, p| p.class == Class::Outbox);
        for p in self.rel.pending.values_mut() {
            p.next_at = None;
        }
        self.rel.stale = true;
        self.rel.extra_acks.clear();
    }

    /// Re-sends every durable frame after (re-)registration, oldest first.
    pub(super) fn replay_outbox(&mut self) {
        let frames: Vec<(String, FrameType, std::sync::Arc<str>)> = self
            .outbox
            .iter()
            .map(|e| (e.id.clone(), e.kind, e.frame.clone()))
            .collect();
        if !frames.is_empty() {
            log!(
                self,
                Level::Info,
                "re-sending unacknowledged frames from the outbox",
                "count" => frames.len(),
            );
        }
        for (id, kind, text) in frames {
            let frame = OutFrame::new(kind, id.clone(), None, None, text.to_string());
            if self.rel.pending.remove(&id).is_some() {
                self.rel.stale = true;
            }
            self.send_tracked(frame, Class::Outbox);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::WorkerConfig;

    /// `retry_at` gives `now + retry_delay` and draws the same number from the RNG, for
    /// whole-microsecond bounds (its own arithmetic) and for any others (the fallback).
    #[test]
    fn retry_at_is_now_plus_retry_delay() {
        let ds = [
            Duration::ZERO,
            Duration::from_micros(1),
            Duration::from_millis(1),
            Duration::from_millis(250),
            Duration::from_secs(30),
            Duration::from_nanos(1_500_001),
            Duration::from_secs(1 << 41),
            Duration::MAX,
        ];
        for base in ds {
            for max in ds {
                let cfg = WorkerConfig {
                    ack_retry_base: base,
                    ack_retry_max: max,
                    ..WorkerConfig::default()
                };
                let (mut a, mut b) = (Worker::new(cfg.clone()), Worker::new(cfg));
                a.now = Instant(1_762_175_750_123_456);
                b.now = a.now;
                for k in [0, 1, 2, 5, 19, 20, 21, 40] {
                    let want = b.now + b.retry_delay(k);
                    assert_eq!(a.retry_at(k), want, "{base:?} {max:?} {k}");
                    assert_eq!(a.rng.next_u64(), b.rng.next_u64());
                }
            }
        }
    }
}
