//! The simulated network: per-connection ordered delivery with latency, and the frame-level
//! faults (drop, duplicate, reorder, delay spikes), resets and partitions.

use super::workers::PING_TIMEOUT;
use super::{ConnInfo, Sim};
use crate::event::{Ev, Proc, Read, Rec, SentFrame};
use astra_core::scheduler::{ConnId, SchedInput};
use astra_core::v1::codec::{decode, Body, DecodeErrorKind};
use astra_core::work::TaskKey;
use astra_core::worker::{Incoming, Input};
use astra_core::Instant;
use std::rc::Rc;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    ToSched,
    ToWorker,
}

impl Sim {
    pub(super) fn alloc_conn(&mut self) -> ConnId {
        let c = ConnId(self.next_conn);
        self.next_conn += 1;
        c
    }

    pub(super) fn send_to_sched(&mut self, conn: ConnId, frame: SentFrame) {
        let Some((at, dup)) = self.transmit(conn, Dir::ToSched) else {
            return;
        };
        let frame = Rc::new(frame);
        if dup {
            self.q.push(
                at,
                Ev::ToSched {
                    conn,
                    frame: Rc::clone(&frame),
                },
            );
        }
        self.q.push(at, Ev::ToSched { conn, frame });
    }

    pub(super) fn send_to_worker(&mut self, conn: ConnId, frame: Incoming) {
        let Some((at, dup)) = self.transmit(conn, Dir::ToWorker) else {
            return;
        };
        if dup {
            let frame = frame.clone();
            self.q.push(at, Ev::ToWorker { conn, frame });
        }
        self.q.push(at, Ev::ToWorker { conn, frame });
    }

    /// The fate of one frame on `conn`: `None` when it is lost, else its arrival time and
    /// whether it arrives twice.
    fn transmit(&mut self, conn: ConnId, dir: Dir) -> Option<(Instant, bool)> {
        let info = self.conns.get(&conn)?;
        let open = match dir {
            Dir::ToSched => info.worker_open,
            Dir::ToWorker => info.sched_open,
        };
        if !open {
            return None;
        }
        if self.slots[info.w].partitioned {
            self.stats.frames_dropped += 1;
            return None;
        }
        let f = &self.swarm.faults;
        let (drop, delay, delay_max, reorder, dup) =
            (f.drop, f.delay, f.delay_max, f.reorder, f.dup);
        if self.chaos && self.rng.chance(drop) {
            self.stats.frames_dropped += 1;
            return None;
        }
        let mut lat = self.between_us(self.swarm.latency_min, self.swarm.latency_max);
        if self.chaos && self.rng.chance(delay) {
            lat += self.between_us(Duration::ZERO, delay_max);
        }
        let reordered = self.chaos && self.rng.chance(reorder);
        let dup = self.chaos && self.rng.chance(dup);
        let now = self.now;
        let info = self.conns.get_mut(&conn)?;
        let last = match dir {
            Dir::ToSched => &mut info.last_to_sched,
            Dir::ToWorker => &mut info.last_to_worker,
        };
        let mut at = Instant::from_micros(now.as_micros().saturating_add(lat));
        if !reordered {
            // In order behind everything already in flight (TCP head-of-line).
            at = at.max(*last);
            *last = at;
        }
        if dup {
            self.stats.frames_duplicated += 1;
        }
        Some((at, dup))
    }

    pub(super) fn deliver_to_sched(&mut self, conn: ConnId, frame: Rc<SentFrame>) {
        let ok = self
            .conns
            .get(&conn)
            .is_some_and(|i| i.sched_open && i.sched_gen == self.sched_gen);
        let Some(max) = self.sched.as_ref().map(|s| s.config().max_frame_bytes) else {
            return;
        };
        if !ok {
            return;
        }
        self.stats.frames_to_sched += 1;
        // The last copy in flight takes the frame; an earlier duplicate copies it.
        let f = Rc::try_unwrap(frame).unwrap_or_else(|rc| (*rc).clone());
        let reuse = f.max == max && self.opts.decode_once;
        match f.read {
            // The strict read the checker already ran is the scheduler's own.
            Read::Decoded(d) if reuse => self.sched_decoded(conn, d),
            Read::Light(at) if reuse => match at.get(&f.text) {
                Some(light) => self.sched_light(conn, light),
                None => self.sched_input(SchedInput::Frame(conn, Incoming::Text(f.text))),
            },
            _ => self.sched_input(SchedInput::Frame(conn, Incoming::Text(f.text))),
        }
    }

    pub(super) fn deliver_to_worker(&mut self, conn: ConnId, frame: Incoming) {
        let Some(info) = self.conns.get(&conn) else {
            return;
        };
        let w = info.w;
        let p = Proc { w, inc: info.inc };
        if !info.worker_open || self.slots[w].inc != p.inc || self.slots[w].conn != Some(conn) {
            return;
        }
        self.stats.frames_to_worker += 1;
        let text = match frame {
            Incoming::Text(t) if crate::frames::sniff_type(&t) == "cmd.dispatch" => t,
            other => return self.worker_input(w, Input::Frame(other)),
        };
        if !self.opts.decode_once {
            return self.deliver_bytes(w, text);
        }
        // One decode of a dispatch serves the checker and the worker (its own limit).
        // (Every incarnation's config is the slot's, bar the seed.)
        let decoded = decode(&text, self.slots[w].cfg.max_frame_bytes);
        let wide;
        let seen = match &decoded {
            Ok(f) => Some(f),
            // The checker reads past the worker's limit, as it always has.
            Err(e) if matches!(e.kind, DecodeErrorKind::TooLarge { .. }) => {
                wide = decode(&text, usize::MAX).ok();
                wide.as_ref()
            }
            Err(_) => None,
        };
        if let Some(f) = seen {
            if let Body::Dispatch(d) = &f.body {
                let key = TaskKey {
                    run_id: d.run_id.clone(),
                    task_id: d.task_id.clone(),
                };
                self.checker.on_dispatch_delivered(w, &f.env.id, key);
            }
        }
        self.worker_decoded(w, decoded);
    }

    /// The byte path (`decode_once` off): the checker and the worker each decode.
    fn deliver_bytes(&mut self, w: usize, text: String) {
        if let Ok(f) = decode(&text, usize::MAX) {
            if let Body::Dispatch(d) = f.body {
                let key = TaskKey {
                    run_id: d.run_id,
                    task_id: d.task_id,
                };
                self.checker.on_dispatch_delivered(w, &f.env.id, key);
            }
        }
        self.worker_input(w, Input::Frame(Incoming::Text(text)));
    }

    pub(super) fn on_connect_done(&mut self, p: Proc, conn: ConnId) {
        if self.slots.get(p.w).is_none_or(|s| s.inc != p.inc) {
            return;
        }
        if self.slots[p.w].connecting != Some(conn) {
            return;
        }
        self.slots[p.w].connecting = None;
        if self.sched.is_none() || self.slots[p.w].partitioned {
            let reason = "connect failed: scheduler unreachable".to_string();
            return self.worker_input(p.w, Input::Disconnected { reason });
        }
        self.conns.insert(
            conn,
            ConnInfo {
                w: p.w,
                inc: p.inc,
                sched_gen: self.sched_gen,
                worker_open: true,
                sched_open: true,
                last_to_sched: Instant::ZERO,
                last_to_worker: Instant::ZERO,
            },
        );
        self.sched_input(SchedInput::Connected(conn));
        self.slots[p.w].conn = Some(conn);
        self.worker_input(p.w, Input::Connected);
    }

    /// How long until the peer of a closed socket notices.
    fn notice_delay(&mut self, w: usize) -> Duration {
        if self.slots[w].partitioned {
            PING_TIMEOUT
        } else {
            self.latency()
        }
    }

    /// The worker side closed (Close action or process death): the scheduler notices later.
    pub(super) fn close_worker_side(&mut self, conn: ConnId) {
        let Some(info) = self.conns.get_mut(&conn) else {
            return;
        };
        info.worker_open = false;
        let w = info.w;
        let d = self.notice_delay(w);
        self.q.push(self.now + d, Ev::SchedSeesClose { conn });
    }

    /// The scheduler side closed (its Close action or its restart): the worker notices later.
    pub(super) fn close_sched_side(&mut self, conn: ConnId) {
        let Some(info) = self.conns.get_mut(&conn) else {
            return;
        };
        if !info.sched_open {
            return;
        }
        info.sched_open = false;
        let (w, inc) = (info.w, info.inc);
        let d = self.notice_delay(w);
        let p = Proc { w, inc };
        self.q.push(self.now + d, Ev::WorkerSeesClose { p, conn });
    }

    /// A connection reset: both ends lose the socket and both notice.
    pub(super) fn reset(&mut self, w: usize) {
        let Some(conn) = self.slots[w].conn else {
            return;
        };
        self.stats.resets += 1;
        self.note(Rec::Fault("connection reset", Some(w)));
        self.close_sched_side(conn);
        if let Some(info) = self.conns.get_mut(&conn) {
            info.worker_open = false;
        }
        let d = self.latency();
        self.q.push(self.now + d, Ev::SchedSeesClose { conn });
    }

    pub(super) fn on_worker_sees_close(&mut self, p: Proc, conn: ConnId) {
        if self.slots.get(p.w).is_none_or(|s| s.inc != p.inc) {
            return;
        }
        if self.slots[p.w].conn != Some(conn) {
            return; // the worker closed it itself: no Disconnected (driver contract)
        }
        self.slots[p.w].conn = None;
        if let Some(info) = self.conns.get_mut(&conn) {
            info.worker_open = false;
            if !info.sched_open {
                self.conns.remove(&conn);
            }
        }
        let reason = "connection closed".to_string();
        self.worker_input(p.w, Input::Disconnected { reason });
    }

    pub(super) fn on_sched_sees_close(&mut self, conn: ConnId) {
        let Some(info) = self.conns.get_mut(&conn) else {
            return;
        };
        info.sched_open = false;
        let current = info.sched_gen == self.sched_gen;
        if current && self.sched.is_some() {
            self.sched_input(SchedInput::Disconnected(conn));
        }
        if let Some(i) = self.conns.get(&conn) {
            if !i.worker_open {
                self.conns.remove(&conn);
            }
        }
    }

    pub(super) fn start_partition(&mut self, w: usize) {
        if self.slots[w].partitioned {
            return;
        }
        self.stats.partitions += 1;
        self.note(Rec::Fault("partition", Some(w)));
        let slot = &mut self.slots[w];
        slot.partitioned = true;
        slot.partition_epoch += 1;
        let epoch = slot.partition_epoch;
        let d = self.between(Duration::from_millis(500), self.swarm.faults.partition_max);
        self.q.push(self.now + d, Ev::HealPartition { w, epoch });
    }

    pub(super) fn heal_partition(&mut self, w: usize, epoch: u64) {
        let slot = &mut self.slots[w];
        if slot.partitioned && slot.partition_epoch == epoch {
            slot.partitioned = false;
        }
    }
}
