//! The scheduler machine itself: connection and session bookkeeping, strict inbound frame
//! handling and acks, timers, and the `handle` / `poll_action` / `poll_timeout` contract.
//! Run logic (dispatch, results, errors) lives in `runs.rs`.

use super::config::SchedulerConfig;
use super::inject_id::envelope_id;
use super::io::{AckIgnored, ConnId, SchedAction, SchedEvent, SchedInput};
use super::outbound::ack_frame_at;
use super::state::{PkgEventRecord, RunState, SchedStats, SessionInfo};
use crate::id_map::IdMap;
use crate::rng::Rng;
use crate::time::Instant;
use crate::v1::codec::{decode, decode_light, Body, DecodeError, DecodeErrorKind, Inbound, Light};
use crate::v1::envelope::Envelope;
use crate::v1::payloads::{HandshakePayload, PkgEventPayload, RegisterPayload};
use crate::v1::types::FrameType;
use crate::worker::io::Incoming;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

/// How many injected frame ids are remembered to recognise their acks.
const INJECTED_MEMORY: usize = 1024;

#[derive(Debug, Clone)]
pub(crate) struct ConnState {
    /// The worker id of the last handshake on this connection (the real handler's local
    /// `worker_id`, which its `finally` cleanup removes).
    pub worker_id: Option<String>,
    /// A close was requested; later frames are not read.
    pub closing: bool,
    /// The session cleanup already ran (it runs once per connection).
    pub cleaned: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingAck {
    pub run: usize,
    pub node: usize,
    pub sent_at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// The dispatch's ack waiter.
    AckDeadline,
    /// The next dispatch attempt after a failure.
    Retry,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct TimerTarget {
    pub run: usize,
    pub node: usize,
    pub kind: TimerKind,
}

/// One entry of the timer heap, ordered by its key (deadline, then a unique number) only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimerEntry {
    pub key: (Instant, u64),
    pub target: TimerTarget,
}

impl PartialEq for TimerEntry {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for TimerEntry {}
impl PartialOrd for TimerEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for TimerEntry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// The reference scheduler. Feed it with [`Scheduler::handle`], drain
/// [`Scheduler::poll_action`] until `None`, and tick it at [`Scheduler::poll_timeout`].
#[derive(Debug, Clone)]
pub struct Scheduler {
    pub(crate) cfg: SchedulerConfig,
    pub(crate) rng: Rng,
    pub(crate) actions: VecDeque<SchedAction>,
    pub(crate) conns: BTreeMap<ConnId, ConnState>,
    /// In registration (insertion) order; a handshake for a known id replaces in place.
    pub(crate) sessions: Vec<SessionInfo>,
    /// Runs are never removed, so the `(run, node)` indices held by timers and pending
    /// acks stay valid for the machine's lifetime (indexing by them cannot panic).
    pub(crate) runs: Vec<RunState>,
    /// Looked up, never iterated (see `id_map`).
    pub(crate) run_index: IdMap<usize>,
    /// By dispatch id; looked up, never iterated.
    pub(crate) pending_acks: IdMap<PendingAck>,
    /// Earliest key first; each node holds the key of its one live timer. Cancelling only
    /// clears the node's key (no tree removal per ack): the dead entry stays in the heap
    /// until it reaches the top, where `purge_timers` drops it, so after every change the
    /// top is live and it is what `poll_timeout` reports.
    pub(crate) timers: BinaryHeap<Reverse<TimerEntry>>,
    pub(crate) next_timer: u64,
    /// Runs whose roll-up must be recomputed before `handle` returns, possibly repeated:
    /// `refresh_dirty_runs` takes each once, in ascending order (a vector, not a set, so
    /// marking allocates nothing once the buffer has grown).
    pub(crate) dirty: Vec<usize>,
    pub(crate) injected: VecDeque<(String, ConnId)>,
    pub(crate) pkg_events: Vec<PkgEventRecord>,
    pub(crate) stats: SchedStats,
    /// The last stamp's date and time of day, for the next frame's `ts` (output unchanged).
    pub(crate) stamps: crate::time::StampCache,
}

impl Scheduler {
    pub fn new(cfg: SchedulerConfig) -> Self {
        Scheduler {
            rng: Rng::new(cfg.seed),
            cfg,
            actions: VecDeque::new(),
            conns: BTreeMap::new(),
            sessions: Vec::new(),
            runs: Vec::new(),
            run_index: IdMap::default(),
            pending_acks: IdMap::default(),
            timers: BinaryHeap::new(),
            next_timer: 0,
            dirty: Vec::new(),
            injected: VecDeque::new(),
            pkg_events: Vec::new(),
            stats: SchedStats::default(),
            stamps: crate::time::StampCache::new(),
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }

    /// Processes one input at `now`. Deadlines that passed are handled first, so a late tick
    /// and an input carrying a later time behave the same.
    pub fn handle(&mut self, now: Instant, input: SchedInput) {
        self.fire_timers(now);
        match input {
            SchedInput::Connected(conn) => self.on_connected(conn),
            SchedInput::Frame(conn, frame) => self.on_frame(now, conn, frame),
            SchedInput::Disconnected(conn) => self.on_disconnected(conn),
            SchedInput::Tick => {}
            SchedInput::SubmitRun(spec) => {
                let run_id = spec.run_id.clone();
                if let Err(error) = self.submit_run(now, spec) {
                    self.emit(SchedEvent::RunRejected { run_id, error });
                }
            }
            SchedInput::Inject(conn, text) => self.inject(conn, text),
            SchedInput::InjectToWorker { worker_id, text } => {
                match self
                    .sessions
                    .iter()
                    .find(|s| s.worker_id == worker_id)
                    .map(|s| s.conn)
                {
                    Some(conn) => self.inject(conn, text),
                    None => self.emit(SchedEvent::InjectUndeliverable { worker_id }),
                }
            }
        }
        self.refresh_dirty_runs(now);
    }

    /// Exactly `handle(now, SchedInput::Frame(conn, Incoming::Text(text)))` for a host that
    /// already decoded `text`: `decoded` must be `decode(text, self.config().max_frame_bytes)`.
    /// Lets the simulator decode a worker's frame once for its checker and this machine.
    pub fn handle_decoded(
        &mut self,
        now: Instant,
        conn: ConnId,
        decoded: Result<Inbound, DecodeError>,
    ) {
        self.fire_timers(now);
        if self.takes_frames(conn) {
            self.on_decoded(now, conn, decoded);
        }
        self.refresh_dirty_runs(now);
    }

    /// Exactly `handle(now, SchedInput::Frame(conn, Incoming::Text(text)))` for a host that
    /// already read `text` with the light path: `light` must be
    /// `decode_light(text, self.config().max_frame_bytes)`. Lets the simulator's checker
    /// read a worker's ack or heartbeat once for itself and this machine.
    pub fn handle_light(&mut self, now: Instant, conn: ConnId, light: Light<'_>) {
        self.fire_timers(now);
        if self.takes_frames(conn) {
            self.on_light(now, conn, light);
        }
        self.refresh_dirty_runs(now);
    }

    pub fn poll_action(&mut self) -> Option<SchedAction> {
        self.actions.pop_front()
    }

    /// The earliest pending deadline (ack waiters and dispatch retries).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse(e)| e.key.0)
    }

    // -------------------------------------------------------------------------------------
    // inspection

    pub fn run(&self, run_id: &str) -> Option<&RunState> {
        self.run_index.get(run_id).and_then(|&i| self.runs.get(i))
    }
    /// All runs in submission order.
    pub fn runs(&self) -> &[RunState] {
        &self.runs
    }
    /// Live sessions in registration order.
    pub fn sessions(&self) -> &[SessionInfo] {
        &self.sessions
    }
    pub fn session(&self, worker_id: &str) -> Option<&SessionInfo> {
        self.sessions.iter().find(|s| s.worker_id == worker_id)
    }
    /// The worker id of the last handshake seen on `conn`, while the connection is open.
    pub fn conn_worker(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn).and_then(|c| c.worker_id.as_deref())
    }
    pub fn pkg_events(&self) -> &[PkgEventRecord] {
        &self.pkg_events
    }
    pub fn stats(&self) -> &SchedStats {
        &self.stats
    }

    // -------------------------------------------------------------------------------------
    // plumbing shared with runs.rs

    pub(crate) fn emit(&mut self, e: SchedEvent) {
        self.actions.push_back(SchedAction::Event(e));
    }

    pub(crate) fn new_id(&mut self) -> String {
        self.rng.uuid_v4()
    }

    fn send_ack(&mut self, now: Instant, conn: ConnId, acked: &Envelope) {
        let mut id = [0u8; crate::rng::UUID_LEN];
        let id = self.rng.uuid_v4_into(&mut id);
        let ts = self.cfg.wall.unix_micros(now);
        let text = ack_frame_at(id, ts, &mut self.stamps, acked);
        self.stats.acks_sent += 1;
        self.actions.push_back(SchedAction::Send { conn, text });
    }

    /// The run's roll-up is recomputed before the input returns.
    pub(crate) fn mark_dirty(&mut self, ri: usize) {
        if self.dirty.last() != Some(&ri) {
            self.dirty.push(ri);
        }
    }

    /// Replaces the node's timer (if any) with one at `at`.
    pub(crate) fn set_timer(&mut self, run: usize, node: usize, at: Instant, kind: TimerKind) {
        let key = (at, self.next_timer);
        self.next_timer += 1;
        self.timers.push(Reverse(TimerEntry {
            key,
            target: TimerTarget { run, node, kind },
        }));
        // The node's previous entry (if any) is dead from here on.
        if let Some(n) = self.runs.get_mut(run).and_then(|r| r.nodes.get_mut(node)) {
            n.timer = Some(key);
        }
        self.purge_timers();
    }

    pub(crate) fn cancel_timer(&mut self, run: usize, node: usize) {
        if let Some(n) = self.runs.get_mut(run).and_then(|r| r.nodes.get_mut(node)) {
            if n.timer.take().is_some() {
                self.purge_timers();
            }
        }
    }

    /// True while `e` is the timer its node holds.
    fn timer_live(&self, e: &TimerEntry) -> bool {
        self.runs
            .get(e.target.run)
            .and_then(|r| r.nodes.get(e.target.node))
            .is_some_and(|n| n.timer == Some(e.key))
    }

    /// Drops dead entries from the top of the heap, so that the top is live.
    fn purge_timers(&mut self) {
        while let Some(Reverse(top)) = self.timers.peek() {
            if self.timer_live(top) {
                break;
            }
            self.timers.pop();
        }
    }

    /// Fires every timer due at `now`, in key order. Timers a firing sets for `now` itself
    /// wait for the next call, so zero durations cannot spin: they are numbered from
    /// `next_timer` on, and since no deadline is ever set in the past they sort after every
    /// entry that was already due, so the loop stops at the first of them.
    fn fire_timers(&mut self, now: Instant) {
        let first_new = self.next_timer;
        while let Some(Reverse(top)) = self.timers.peek() {
            let (at, number) = top.key;
            if at > now || number >= first_new {
                break;
            }
            let Some(Reverse(TimerEntry { key, target: t })) = self.timers.pop() else {
                break;
            };
            // The top is live (purged after every change), so this is the node's timer.
            if let Some(node) = self
                .runs
                .get_mut(t.run)
                .and_then(|r| r.nodes.get_mut(t.node))
            {
                if node.timer == Some(key) {
                    node.timer = None;
                }
            }
            self.purge_timers();
            match t.kind {
                TimerKind::AckDeadline => self.ack_deadline_passed(now, t.run, t.node),
                TimerKind::Retry => self.try_dispatch(now, t.run, t.node),
            }
        }
    }

    // -------------------------------------------------------------------------------------
    // connections and sessions

    fn on_connected(&mut self, conn: ConnId) {
        if self.conns.contains_key(&conn) {
            // A driver reusing an id without reporting the disconnect: finish the old one.
            self.on_disconnected(conn);
        }
        self.conns.insert(
            conn,
            ConnState {
                worker_id: None,
                closing: false,
                cleaned: false,
            },
        );
    }

    fn on_disconnected(&mut self, conn: ConnId) {
        if let Some(state) = self.conns.remove(&conn) {
            if !state.cleaned {
                self.cleanup(conn, state.worker_id.as_deref());
            }
        }
    }

    /// The real handler's `finally: remove_session(worker_id)`. With `superseded_bug` it
    /// removes the session of that id whichever connection now owns it (spec §4.5).
    fn cleanup(&mut self, conn: ConnId, worker_id: Option<&str>) {
        let Some(wid) = worker_id else { return };
        let Some(pos) = self.sessions.iter().position(|s| s.worker_id == wid) else {
            return;
        };
        let owner = self.sessions[pos].conn;
        if owner == conn || self.cfg.superseded_bug {
            let s = self.sessions.remove(pos);
            self.emit(SchedEvent::SessionRemoved {
                worker_id: s.worker_id,
                owner,
                by: conn,
            });
        }
    }

    /// Closes `conn` and runs its cleanup at once, as the handler's exception path does.
    fn close_now(&mut self, conn: ConnId, code: u16, reason: &str) {
        let worker_id = match self.conns.get_mut(&conn) {
            Some(c) => {
                c.closing = true;
                c.cleaned = true;
                c.worker_id.clone()
            }
            None => None,
        };
        self.actions.push_back(SchedAction::Close {
            conn,
            code,
            reason: reason.into(),
        });
        self.cleanup(conn, worker_id.as_deref());
    }

    fn reject(&mut self, conn: ConnId, code: u16, close_reason: &str, why: String) {
        self.stats.rejections += 1;
        *self.stats.rejection_reasons.entry(why.clone()).or_default() += 1;
        self.close_now(conn, code, close_reason);
        self.emit(SchedEvent::Rejected { conn, reason: why });
    }

    fn inject(&mut self, conn: ConnId, text: String) {
        if let Some(id) = envelope_id(&text) {
            if self.injected.len() >= INJECTED_MEMORY {
                self.injected.pop_front();
            }
            self.injected.push_back((id, conn));
        }
        self.stats.injected += 1;
        self.actions.push_back(SchedAction::Send { conn, text });
    }

    // -------------------------------------------------------------------------------------
    // inbound frames

    /// False (and counted) for a connection that is unknown or closing: its frames are ignored.
    fn takes_frames(&mut self, conn: ConnId) -> bool {
        if self.conns.get(&conn).is_none_or(|c| c.closing) {
            self.stats.frames_ignored += 1;
            return false;
        }
        true
    }

    fn on_frame(&mut self, now: Instant, conn: ConnId, frame: Incoming) {
        if !self.takes_frames(conn) {
            return;
        }
        let text = match frame {
            Incoming::Text(t) => t,
            Incoming::Binary(len) => {
                // Starlette's text-mode receive raises on a binary frame → 1011.
                return self.reject(
                    conn,
                    1011,
                    "internal error",
                    DecodeErrorKind::Binary { len }.to_string(),
                );
            }
        };
        // Acks and heartbeats (most frames a worker sends) act on one envelope field at
        // most: what `on_decoded` does with them, without building the decoded frame.
        if let Some(light) = decode_light(&text, self.cfg.max_frame_bytes) {
            return self.on_light(now, conn, light);
        }
        let decoded = decode(&text, self.cfg.max_frame_bytes);
        self.on_decoded(now, conn, decoded);
    }

    /// `on_decoded` of the frame `light` describes.
    fn on_light(&mut self, now: Instant, conn: ConnId, light: Light<'_>) {
        match light {
            Light::Ack { for_id } => {
                self.stats.frames_received.bump(FrameType::Ack);
                self.on_ack(now, conn, Some(for_id));
            }
            Light::Heartbeat => {
                self.stats.frames_received.bump(FrameType::Heartbeat);
                // It asks for no ack, so this is all `on_decoded` does with it.
                self.on_heartbeat(now, conn);
            }
        }
    }

    fn on_decoded(&mut self, now: Instant, conn: ConnId, decoded: Result<Inbound, DecodeError>) {
        let inbound = match decoded {
            Ok(i) => i,
            Err(e) => {
                return match &e.kind {
                    // uvicorn refuses an oversized frame itself, with 1009, before the app sees it.
                    DecodeErrorKind::TooLarge { .. } => {
                        self.reject(conn, 1009, "message too big", e.to_string())
                    }
                    // The scheduler dispatches on `type` before validating a payload, and has no
                    // handler for these, so their payloads are never looked at.
                    DecodeErrorKind::Payload { frame_type, .. }
                        if !scheduler_handles(frame_type) =>
                    {
                        self.stats.frames_received.bump_name(frame_type);
                        self.emit(SchedEvent::UnknownIgnored {
                            conn,
                            kind: frame_type.clone(),
                        })
                    }
                    _ => self.reject(conn, 1011, "internal error", e.to_string()),
                };
            }
        };
        let env = inbound.env;
        match inbound.body.frame_type() {
            Some(t) => self.stats.frames_received.bump(t),
            None => self.stats.frames_received.bump_name("unknown"),
        }
        match inbound.body {
            Body::Handshake(p) => self.on_handshake(now, conn, &env, p),
            Body::Register(p) => self.on_register(now, conn, &env, p),
            Body::Heartbeat(_) => {
                self.on_heartbeat(now, conn);
                self.ack_if_requested(now, conn, &env);
            }
            Body::Ack(_) => self.on_ack(now, conn, env.ack_for()),
            Body::Result(p) => {
                // Acked before processing, as the real one does (spec §3.5).
                self.ack_if_requested(now, conn, &env);
                self.on_result(now, p);
            }
            Body::Feedback(mut p) => {
                self.on_feedback(now, &mut p);
                self.ack_if_requested(now, conn, &env);
            }
            Body::CommandError(p) => {
                self.on_command_error(now, &env, p);
                self.ack_if_requested(now, conn, &env);
            }
            Body::PkgEvent(p) => {
                self.on_pkg_event(now, conn, p);
                self.ack_if_requested(now, conn, &env);
            }
            Body::Dispatch(_) | Body::PkgInstall(_) | Body::PkgUninstall(_) | Body::Unknown(_) => {
                self.emit(SchedEvent::UnknownIgnored {
                    conn,
                    kind: env.kind.clone(),
                });
            }
        }
    }

    fn on_heartbeat(&mut self, now: Instant, conn: ConnId) {
        let wid = self.conns.get(&conn).and_then(|c| c.worker_id.as_deref());
        if let Some(wid) = wid {
            if let Some(s) = self.sessions.iter_mut().find(|s| s.worker_id == wid) {
                s.last_heartbeat = Some(now);
            }
        }
    }

    fn ack_if_requested(&mut self, now: Instant, conn: ConnId, env: &Envelope) {
        if env.ack_requested() {
            self.send_ack(now, conn, env);
        }
    }

    fn on_handshake(&mut self, now: Instant, conn: ConnId, env: &Envelope, p: HandshakePayload) {
        let worker_id = p.worker.id;
        let session = SessionInfo {
            worker_id: worker_id.clone(),
            conn,
            tenant: env.tenant.clone(),
            version: p.worker.version,
            hostname: p.worker.hostname,
            packages: Vec::new(),
            capabilities: None,
            registered: false,
            opened_at: now,
            last_heartbeat: None,
        };
        match self.sessions.iter().position(|s| s.worker_id == worker_id) {
            Some(pos) => {
                let old = self.sessions[pos].conn;
                // A fresh session object replaces the old one in place (Python dict
                // assignment keeps the key's position), wiping packages even on the same conn.
                self.sessions[pos] = session;
                if old != conn {
                    self.supersede(old);
                }
            }
            None => self.sessions.push(session),
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.worker_id = Some(worker_id.clone());
        }
        self.emit(SchedEvent::SessionOpened {
            conn,
            worker_id,
            tenant: env.tenant.clone(),
        });
        // Handshakes are always acked, requested or not.
        self.send_ack(now, conn, env);
    }

    /// Closes the previous connection of a worker id. Its cleanup runs only when the driver
    /// reports it gone, and that is where the superseded-session bug strikes.
    fn supersede(&mut self, old: ConnId) {
        let Some(c) = self.conns.get_mut(&old) else {
            return;
        };
        if c.closing {
            return;
        }
        c.closing = true;
        self.stats.sessions_superseded += 1;
        self.actions.push_back(SchedAction::Close {
            conn: old,
            code: 1011,
            reason: "superseded session".into(),
        });
    }

    fn on_register(&mut self, now: Instant, conn: ConnId, env: &Envelope, p: RegisterPayload) {
        let Some(worker_id) = self.conns.get(&conn).and_then(|c| c.worker_id.clone()) else {
            // Acked first, then closed (spec §3.2) [verified].
            self.send_ack(now, conn, env);
            self.close_now(conn, 1011, "handshake required");
            return;
        };
        match self.sessions.iter_mut().find(|s| s.worker_id == worker_id) {
            Some(s) => {
                s.packages = p.packages.clone();
                s.capabilities = Some(p.capabilities);
                s.registered = true;
                self.emit(SchedEvent::Registered {
                    conn,
                    worker_id,
                    packages: p.packages,
                });
            }
            // The session was removed under this connection (superseded-session bug): the
            // registration updates nothing, and the socket stays open.
            None => self.emit(SchedEvent::RegisterLost { conn, worker_id }),
        }
        self.send_ack(now, conn, env);
    }

    /// An ack frame; `for_id` is its envelope's `ack.for`.
    /// The id is copied only where no stored copy can be moved into the event.
    fn on_ack(&mut self, now: Instant, conn: ConnId, for_id: Option<&str>) {
        let Some(for_id) = for_id else {
            self.stats.acks_unknown += 1;
            return;
        };
        // Without the race fault one lookup finds and removes the waiter; with it the waiter
        // is looked at first, since a dropped ack leaves it in place.
        let found = match self.cfg.ack_race {
            None => self.pending_acks.remove_entry(for_id),
            Some(race) => match self.pending_acks.get(for_id).copied() {
                Some(p)
                    if now.saturating_duration_since(p.sent_at) < race.window
                        && self.rng.chance(race.probability) =>
                {
                    self.stats.acks_race_dropped += 1;
                    self.emit(SchedEvent::AckIgnored {
                        conn,
                        for_id: for_id.to_string(),
                        why: AckIgnored::Race,
                    });
                    return;
                }
                Some(_) => self.pending_acks.remove_entry(for_id),
                None => None,
            },
        };
        if let Some((dispatch_id, p)) = found {
            // The stored id (equal to `for_id`) moves into the event.
            self.dispatch_acked(p.run, p.node, dispatch_id);
        } else if let Some(pos) = self.injected.iter().position(|(id, _)| id == for_id) {
            let for_id = match self.injected.remove(pos) {
                Some((id, _)) => id,
                None => for_id.to_string(),
            };
            self.emit(SchedEvent::InjectedAcked { conn, for_id });
        } else {
            self.stats.acks_unknown += 1;
            self.emit(SchedEvent::AckIgnored {
                conn,
                for_id: for_id.to_string(),
                why: AckIgnored::Unknown,
            });
        }
    }

    fn on_pkg_event(&mut self, now: Instant, conn: ConnId, p: PkgEventPayload) {
        let worker_id = self.conns.get(&conn).and_then(|c| c.worker_id.clone());
        self.pkg_events.push(PkgEventRecord {
            at: now,
            conn,
            worker_id: worker_id.clone(),
            name: p.name.clone(),
            version: p.version.clone(),
            status: p.status,
            details: p.details,
        });
        self.emit(SchedEvent::PkgEvent {
            conn,
            worker_id,
            name: p.name,
            version: p.version,
            status: p.status,
        });
    }
}

/// The types the c4bf80a scheduler has a handler for; everything else is logged and ignored.
fn scheduler_handles(kind: &str) -> bool {
    FrameType::parse(kind).is_some_and(FrameType::worker_sends)
}
