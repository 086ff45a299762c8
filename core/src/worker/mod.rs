//! The worker session machine: handshake, registration, heartbeats, acks and retries,
//! dispatch admission, the durable outbox protocol, package lifecycle and drain.
//!
//! Contract (quinn-proto / str0m style): call [`Worker::handle`] with the current time and
//! one input, drain [`Worker::poll_action`] until `None`, then sleep until
//! [`Worker::poll_timeout`] and feed [`Input::Tick`]. Execute actions in order: a `Persist`
//! must be durable before the `Send` that follows it.
//!
//! Driver rules: after `Action::Connect` report `Connected` or `Disconnected`; after
//! `Action::Close` close the socket and do not report `Disconnected` for it; report
//! `Disconnected` for every other loss of the connection.

/// Emits a log action: `log!(self, Level::Info, "message", "key" => value, ...)`. Below
/// the configured `log_level` nothing is built (the values are not even evaluated); a kept
/// line allocates its field list and the values that are not counters or static names.
macro_rules! log {
    ($w:expr, $level:expr, $msg:expr $(, $k:literal => $v:expr)* $(,)?) => {{
        let level: $crate::worker::io::Level = $level;
        if level >= $w.cfg.log_level {
            let fields: Vec<(&'static str, $crate::worker::io::LogValue)> =
                vec![$(($k, $crate::worker::io::LogValue::from($v))),*];
            $w.push_log(level, $msg, fields);
        }
    }};
}

pub mod config;
mod dispatch;
mod drain;
mod frames;
pub mod io;
mod outbox;
mod packages;
mod reliability;
mod session;

pub use crate::frame_counts::FrameCounts;
pub use config::{DuplicatePolicy, WorkerConfig};
pub use io::*;

use crate::id_map::FixedMap;
use crate::rng::Rng;
use crate::time::Instant;
use crate::v1::codec::{decode, decode_light, Body, DecodeError, Inbound, Light};
use crate::v1::types::FrameType;
use crate::work::{Admission, AdmissionLimits, Inventory};
use outbox::OutboxModel;
use reliability::Reliability;
use std::collections::{BTreeMap, VecDeque};

/// Where the connection is, independent of draining.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Connecting,
    Handshaking,
    Registering,
    Active,
    Backoff,
    Closed,
}

pub struct Worker {
    cfg: WorkerConfig,
    /// `frames::identity_json` of the configured tenant and worker id.
    identity_json: String,
    rng: Rng,
    now: Instant,
    /// The last stamp's date and time of day, for the next frame's `ts`.
    stamps: crate::time::StampCache,
    actions: VecDeque<Action>,
    stats: Stats,
    reported_state: SessionState,

    // connection
    phase: Phase,
    connections: u64,
    backoff_attempt: u32,
    reconnect_at: Option<Instant>,
    heartbeat_at: Option<Instant>,
    rehandshake_at: Option<Instant>,
    /// Ids of the handshake/register in flight and whether they belong to the post-reconnect
    /// repeat (which must not change the phase).
    handshake_id: Option<String>,
    register_id: Option<String>,

    rel: Reliability,
    outbox: OutboxModel,

    // work
    admission: Admission,
    /// Only looked up, never iterated (see `id_map`).
    dispatches: FixedMap<crate::work::TaskKey, dispatch::DispatchMeta>,
    finished: dispatch::FinishedCache,
    inventory: Inventory,
    health: HostHealth,
    next_op_id: u64,
    pending_ops: BTreeMap<u64, PackageOp>,

    draining: Option<drain::Drain>,
}

impl Worker {
    pub fn new(cfg: WorkerConfig) -> Self {
        let limits = AdmissionLimits {
            max_parallel: cfg.max_parallel.max(1),
            per_node: cfg.per_node_limits.clone(),
        };
        let finished = dispatch::FinishedCache::new(cfg.result_cache);
        Worker {
            identity_json: frames::identity_json(&cfg.tenant, &cfg.worker_id),
            rng: Rng::new(cfg.seed),
            now: Instant::ZERO,
            stamps: crate::time::StampCache::new(),
            actions: VecDeque::new(),
            stats: Stats::default(),
            reported_state: SessionState::New,
            phase: Phase::Idle,
            connections: 0,
            backoff_attempt: 0,
            reconnect_at: None,
            heartbeat_at: None,
            rehandshake_at: None,
            handshake_id: None,
            register_id: None,
            rel: Reliability::default(),
            outbox: OutboxModel::default(),
            admission: Admission::new(limits),
            dispatches: FixedMap::default(),
            finished,
            inventory: Inventory::default(),
            health: HostHealth {
                healthy: true,
                ..HostHealth::default()
            },
            next_op_id: 1,
            pending_ops: BTreeMap::new(),
            draining: None,
            cfg,
        }
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.cfg
    }

    /// Applies one input at time `now`. Time must not go backwards; an earlier `now` is
    /// treated as the last one seen.
    pub fn handle(&mut self, now: Instant, input: Input) {
        if !self.enter(now) {
            return;
        }
        match input {
            Input::Start => self.on_start(),
            Input::Connected => self.on_connected(),
            Input::Frame(frame) => self.on_frame(frame),
            Input::Disconnected { reason } => self.on_disconnected(&reason),
            Input::Tick => self.on_tick(),
            Input::TaskFeedback { task, feedback } => self.on_task_feedback(task, feedback),
            Input::TaskFinished { task, outcome } => self.on_task_finished(task, outcome),
            Input::PackageOpFinished(done) => self.on_package_done(done),
            Input::Restore(entries) => self.on_restore(entries),
            Input::SetInventory(inv) => self.on_set_inventory(inv),
            Input::Health(h) => self.health = h,
            Input::Command(Command::Drain) => self.on_drain(),
            Input::Command(Command::Shutdown) => self.on_shutdown(),
        }
        self.leave();
    }

    /// Exactly `handle(now, Input::Frame(Incoming::Text(text)))` for a host that already
    /// decoded `text`: `decoded` must be `decode(text, self.config().max_frame_bytes)`.
    /// Lets the simulator decode a frame once for its checker and this machine; the real
    /// drivers keep using the byte path.
    pub fn handle_decoded(&mut self, now: Instant, decoded: Result<Inbound, DecodeError>) {
        if !self.enter(now) {
            return;
        }
        self.on_decoded(decoded);
        self.leave();
    }

    /// The start of every input: time moves forward only; a closed machine takes nothing.
    fn enter(&mut self, now: Instant) -> bool {
        if now > self.now {
            self.now = now;
        }
        self.phase != Phase::Closed
    }

    /// The end of every input.
    fn leave(&mut self) {
        self.check_drain_progress();
        self.refresh_state();
        self.rel.settle();
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest instant at which the machine wants an `Input::Tick`.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        // Asked after every input: a chain of two-way minimums, not an iterator over an array.
        let earlier = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let t = earlier(self.reconnect_at, self.heartbeat_at);
        let t = earlier(t, self.rehandshake_at);
        let t = earlier(t, self.rel.next_deadline());
        earlier(t, self.draining.as_ref().and_then(|d| d.next_deadline()))
    }

    pub fn state(&self) -> SessionState {
        self.reported_state
    }

    pub fn is_registered(&self) -> bool {
        self.phase == Phase::Active
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Tasks acked and not yet settled: running plus queued.
    pub fn in_flight(&self) -> usize {
        self.admission.in_flight()
    }

    pub fn running(&self) -> usize {
        self.admission.running_count()
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    fn derived_state(&self) -> SessionState {
        match self.phase {
            Phase::Closed => SessionState::Closed,
            _ if self.draining.is_some() => SessionState::Draining,
            Phase::Idle => SessionState::New,
            Phase::Connecting => SessionState::Connecting,
            Phase::Handshaking => SessionState::Handshaking,
            Phase::Registering => SessionState::Registering,
            Phase::Active => SessionState::Heartbeating,
            Phase::Backoff => SessionState::Backoff,
        }
    }

    fn refresh_state(&mut self) {
        self.stats.outbox_depth = self.outbox.len() as u64;
        self.stats.inflight = self.admission.running_count() as u64;
        self.stats.queued = self.admission.queued_count() as u64;
        let s = self.derived_state();
        if s != self.reported_state {
            self.reported_state = s;
            self.actions.push_back(Action::State(s));
        }
    }

    fn push(&mut self, a: Action) {
        self.actions.push_back(a);
    }

    /// The end of `log!`: the level has been checked.
    fn push_log(
        &mut self,
        level: Level,
        message: &'static str,
        fields: Vec<(&'static str, LogValue)>,
    ) {
        self.actions.push_back(Action::Log(LogEvent {
            level,
            message,
            fields: LogFields(fields),
        }));
    }

    /// Sends a frame now (counted). Callers decide whether it is tracked for an ack.
    fn send(&mut self, frame: OutFrame) {
        self.stats.frames_sent.bump(frame.kind);
        self.actions.push_back(Action::Send(frame));
    }

    fn connected(&self) -> bool {
        matches!(
            self.phase,
            Phase::Handshaking | Phase::Registering | Phase::Active
        )
    }

    fn on_tick(&mut self) {
        let now = self.now;
        if self.reconnect_at.is_some_and(|t| t <= now) {
            self.reconnect_at = None;
            self.begin_connect();
        }
        if self.heartbeat_at.is_some_and(|t| t <= now) {
            self.send_heartbeat();
        }
        if self.rehandshake_at.is_some_and(|t| t <= now) {
            self.rehandshake_at = None;
            self.send_handshake();
        }
        self.fire_reliability_timers();
        self.fire_drain_timers();
    }

    fn on_frame(&mut self, frame: Incoming) {
        let text = match frame {
            Incoming::Text(t) => t,
            Incoming::Binary(len) => {
                self.stats.frames_rejected += 1;
                log!(
                    self,
                    Level::Warn,
                    "ignored a binary frame: the protocol carries JSON text frames only",
                    "len" => len,
                );
                return;
            }
        };
        // An ack from the scheduler (most frames it sends) needs only its `ack.for`: what
        // `on_decoded` does with the decoded ack, without building it.
        if let Some(Light::Ack { for_id }) = decode_light(&text, self.cfg.max_frame_bytes) {
            self.stats.frames_received.bump(FrameType::Ack);
            self.on_ack(for_id);
            return;
        }
        let decoded = decode(&text, self.cfg.max_frame_bytes);
        self.on_decoded(decoded);
    }

    fn on_decoded(&mut self, decoded: Result<Inbound, DecodeError>) {
        let inbound = match decoded {
            Ok(f) => f,
            Err(e) => return self.on_bad_frame(e),
        };
        // The body is decoded by the type its `type` names, so it says the type without
        // parsing the name again; only an unknown type is counted by its name.
        match inbound.body.frame_type() {
            Some(t) => self.stats.frames_received.bump(t),
            None => self.stats.frames_received.bump_name(&inbound.env.kind),
        }
        // `inbound` is this call's own value, so its id can be lent to `on_ack` as is.
        if let Some(for_id) = inbound.env.ack_for() {
            self.on_ack(for_id);
        }
        let env = inbound.env;
        match inbound.body {
            Body::Dispatch(d) => self.on_dispatch(env, *d),
            Body::PkgInstall(p) => {
                self.ack_if_requested(&env);
                self.on_pkg_install(p);
            }
            Body::PkgUninstall(p) => {
                self.ack_if_requested(&env);
                self.on_pkg_uninstall(p);
            }
            Body::Ack(_) => {}
            Body::Unknown(t) => {
                self.ack_if_requested(&env);
                log!(
                    self,
                    Level::Info,
                    "ignored a frame of a type this worker does not handle",
                    "type" => &t,
                    "id" => &env.id,
                );
            }
            _ => {
                self.ack_if_requested(&env);
                log!(
                    self,
                    Level::Warn,
                    "ignored a worker-bound frame type from the scheduler",
                    "type" => &env.kind,
                    "id" => &env.id,
                );
            }
        }
    }

    fn ack_if_requested(&mut self, env: &crate::v1::Envelope) {
        if env.ack_requested() {
            let ack = self.ack_frame(&env.id, env.corr.clone(), env.seq);
            self.send(ack);
        }
    }
}

#[cfg(test)]
mod tests;
