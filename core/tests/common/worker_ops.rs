//! Shared by `proptest_worker.rs`, `fuzz_corpus_replay.rs` and the `worker_machine` fuzz target
//! (included there with `#[path]`): an operation language for driving the worker machine as an
//! honest driver would, a compact byte encoding of it (so fuzz inputs are replayable on stable
//! and seeds can be generated), and a reference model that checks the machine's invariants
//! after every step. Any violation panics with the step number and the offending action.

#![allow(dead_code)]

use astra_core::secret::Secret;
use astra_core::time::{Instant, WallClock};
use astra_core::v1::codec::{decode, Body, DEFAULT_MAX_FRAME_BYTES};
use astra_core::v1::envelope::Role;
use astra_core::v1::payloads::{PackageEntry, PackageStatus, TaskStatus};
use astra_core::v1::types::FrameType;
use astra_core::work::{Completion, HandlerKey, Inventory, TaskKey, TaskOutcome};
use astra_core::worker::{
    Action, Command, Incoming, Input, OutboxEntry, PackageOpDone, Worker, WorkerConfig,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The auth token every harness worker uses; it must never show up in a serialised action.
pub const TOKEN: &str = "tok-SECRET-5b1f0c9e";
pub const WORKER_ID: &str = "w-prop";
pub const MAX_FRAME_BYTES: usize = 4096;
const TS: &str = "2025-11-03T13:21:00.100000+00:00";
/// Tasks, concurrency keys and node types are drawn from small sets so collisions are common.
pub const TASKS: u8 = 5;
const KEYS: [Option<&str>; 4] = [Some("k0"), Some("k1"), Some("k2"), None];
const NODE_TYPES: [&str; 3] = ["echo", "sleep", "missing"];

/// Worker settings the input chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    pub seed: u8,
    /// 1..=3
    pub max_parallel: u8,
    /// Limit node type `sleep` to one running task.
    pub sleep_limit: bool,
    /// Outbox entries restored before `Start` (tasks 0..restored), 0..=2.
    pub restored: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Answer a pending `Action::Connect` (ignored when none is pending).
    ConnectResult {
        ok: bool,
    },
    /// The socket drops (ignored when no socket is open).
    Disconnect,
    /// The scheduler acks the `back`-th most recent unacked worker frame that requested an ack.
    AckRecent {
        back: u8,
    },
    /// A valid `cmd.dispatch`.
    Dispatch {
        task: u8,
        key: u8,
        node: u8,
        /// Re-use the previous envelope id of this task (a byte-identical resend).
        same_id: bool,
        with_resource: bool,
    },
    /// One of a fixed set of invalid or unexpected scheduler frames, about `task`.
    Malformed {
        variant: u8,
        task: u8,
    },
    /// A valid dispatch with one byte replaced.
    Mutated {
        task: u8,
        pos: u16,
        byte: u8,
    },
    /// Arbitrary text from the input, sent as a frame.
    Raw(String),
    /// The host reports `task` finished (whether or not it runs).
    Finish {
        task: u8,
        outcome: u8,
    },
    /// The host streams feedback for `task`.
    Feedback {
        task: u8,
        progress: u8,
    },
    /// Advance time by `ms` firing every timer on the way, then one spurious tick.
    Tick {
        ms: u16,
    },
    Drain,
    Shutdown,
    /// A late `Restore` with one entry for `task`, applied only if this run never dispatched it.
    Restore {
        task: u8,
    },
    SetInventory {
        variant: u8,
    },
    /// The scheduler pushes `pkg.install`.
    PkgInstall {
        name: u8,
    },
    /// The host finishes the `idx`-th pending package operation.
    PkgDone {
        idx: u8,
        ok: bool,
    },
}

// ------------------------------------------------------------------------------------------
// byte encoding: [seed, max_parallel, flags] then ops, each a tag byte and fixed arguments.
// Missing bytes read as 0; unknown tags wrap around, so every byte string is a valid input.

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        let v = self.b.get(self.i).copied().unwrap_or(0);
        self.i += 1;
        v
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
}

const N_TAGS: u8 = 16;

/// Interprets any bytes as a setup and an op sequence (at most `max_ops` ops).
pub fn decode_input(bytes: &[u8], max_ops: usize) -> (Setup, Vec<Op>) {
    let mut r = Reader { b: bytes, i: 0 };
    let seed = r.u8();
    let mp = r.u8();
    let flags = r.u8();
    let setup = Setup {
        seed,
        max_parallel: mp % 3 + 1,
        sleep_limit: flags & 1 != 0,
        restored: (flags >> 1) % 3,
    };
    let mut ops = Vec::new();
    while !r.done() && ops.len() < max_ops {
        let op = match r.u8() % N_TAGS {
            0 => Op::ConnectResult {
                ok: r.u8() & 1 == 0,
            },
            1 => Op::Disconnect,
            2 => Op::AckRecent { back: r.u8() },
            3 => {
                let (task, key, node, f) = (r.u8(), r.u8(), r.u8(), r.u8());
                Op::Dispatch {
                    task,
                    key,
                    node,
                    same_id: f & 1 != 0,
                    with_resource: f & 2 != 0 && f & 12 == 12,
                }
            }
            4 => Op::Malformed {
                variant: r.u8(),
                task: r.u8(),
            },
            5 => Op::Mutated {
                task: r.u8(),
                pos: r.u16(),
                byte: r.u8(),
            },
            6 => {
                let n = r.u8() as usize;
                let start = r.i.min(bytes.len());
                let end = (start + n).min(bytes.len());
                r.i = start + n;
                Op::Raw(String::from_utf8_lossy(&bytes[start..end]).into_owned())
            }
            7 => Op::Finish {
                task: r.u8(),
                outcome: r.u8(),
            },
            8 => Op::Feedback {
                task: r.u8(),
                progress: r.u8(),
            },
            9 => Op::Tick { ms: r.u16() },
            10 => Op::Drain,
            11 => Op::Shutdown,
            12 => Op::Restore { task: r.u8() },
            13 => Op::SetInventory { variant: r.u8() },
            14 => Op::PkgInstall { name: r.u8() },
            _ => {
                let (idx, ok) = (r.u8(), r.u8());
                Op::PkgDone {
                    idx,
                    ok: ok & 1 == 0,
                }
            }
        };
        ops.push(op);
    }
    (setup, ops)
}

/// The inverse of [`decode_input`] (for ops whose arguments are in range): used to write seed
/// corpora and to check that the two agree.
pub fn encode_input(setup: &Setup, ops: &[Op]) -> Vec<u8> {
    let mut b = vec![
        setup.seed,
        setup.max_parallel.saturating_sub(1) % 3,
        u8::from(setup.sleep_limit) | ((setup.restored % 3) << 1),
    ];
    for op in ops {
        match op {
            Op::ConnectResult { ok } => b.extend([0, u8::from(!ok)]),
            Op::Disconnect => b.push(1),
            Op::AckRecent { back } => b.extend([2, *back]),
            Op::Dispatch {
                task,
                key,
                node,
                same_id,
                with_resource,
            } => b.extend([
                3,
                *task,
                *key,
                *node,
                u8::from(*same_id) | if *with_resource { 14 } else { 0 },
            ]),
            Op::Malformed { variant, task } => b.extend([4, *variant, *task]),
            Op::Mutated { task, pos, byte } => {
                b.extend([5, *task]);
                b.extend(pos.to_le_bytes());
                b.push(*byte);
            }
            Op::Raw(s) => {
                let bytes = &s.as_bytes()[..s.len().min(255)];
                b.extend([6, bytes.len() as u8]);
                b.extend(bytes);
            }
            Op::Finish { task, outcome } => b.extend([7, *task, *outcome]),
            Op::Feedback { task, progress } => b.extend([8, *task, *progress]),
            Op::Tick { ms } => {
                b.push(9);
                b.extend(ms.to_le_bytes());
            }
            Op::Drain => b.push(10),
            Op::Shutdown => b.push(11),
            Op::Restore { task } => b.extend([12, *task]),
            Op::SetInventory { variant } => b.extend([13, *variant]),
            Op::PkgInstall { name } => b.extend([14, *name]),
            Op::PkgDone { idx, ok } => b.extend([15, *idx, u8::from(!ok)]),
        }
    }
    b
}

// ------------------------------------------------------------------------------------------
// scheduler-side frame builders

fn task_key(task: u8) -> TaskKey {
    TaskKey {
        run_id: "r1".into(),
        task_id: format!("t{}", task % TASKS),
    }
}

pub fn dispatch_text(id: &str, task: u8, key: u8, node: u8, with_resource: bool) -> String {
    let tk = task_key(task);
    let mut payload = json!({"run_id": tk.run_id, "task_id": tk.task_id, "node_id": tk.task_id,
        "node_type": NODE_TYPES[node as usize % NODE_TYPES.len()], "package_name": "p",
        "package_version": "1", "parameters": {"x": task}, "constraints": {"timeout_ms": 60000}});
    if let Some(k) = KEYS[key as usize % KEYS.len()] {
        payload["concurrency_key"] = json!(k);
    }
    if with_resource {
        payload["resource_refs"] =
            json!([{"resource_id": "res-1", "worker_id": "other", "type": "model"}]);
    }
    json!({"type": "cmd.dispatch", "id": id, "ts": TS, "corr": tk.task_id, "seq": task as u64 + 1,
           "tenant": "default", "sender": {"role": "scheduler", "id": "scheduler-control"},
           "ack": {"request": true}, "payload": payload})
    .to_string()
}

pub fn sched_ack(for_id: &str, n: u64) -> String {
    json!({"type": "ack", "id": format!("sa-{n}"), "ts": TS, "tenant": "default",
           "sender": {"role": "scheduler", "id": "scheduler-control"}, "ack": {"for": for_id},
           "payload": {"ok": true, "for": for_id}})
    .to_string()
}

fn malformed(variant: u8, task: u8, n: u64) -> Incoming {
    let id = format!("bad-{n}");
    let d = dispatch_text(&id, task, task, 0, false);
    let text = match variant % 10 {
        0 => "{not json".to_string(),
        1 => d.replacen("\"constraints\":{", "\"constraints\":{\"bogus\":1,", 1),
        2 => d[..d.len() - 20].to_string(),
        3 => return Incoming::Binary(17),
        4 => d.replace("13:21:00.100000+00:00", "13:21:00.100000"),
        5 => json!({"type": "heartbeat", "id": id, "ts": TS, "tenant": "default",
                    "sender": {"role": "scheduler", "id": "s"}, "ack": {"request": true},
                    "payload": {"healthy": true, "metrics": {"inflight": 0}}})
        .to_string(),
        6 => json!({"type": "cmd.drain", "id": id, "ts": TS, "tenant": "default",
                    "sender": {"role": "scheduler", "id": "s"}, "ack": {"request": true},
                    "payload": {}})
        .to_string(),
        7 => sched_ack("never-sent", n),
        // larger than MAX_FRAME_BYTES
        8 => d.replacen(
            "\"x\":",
            &format!("\"pad\":\"{}\",\"x\":", "a".repeat(5000)),
            1,
        ),
        _ => d.replace("\"tenant\":\"default\"", "\"tenant\":\"\""),
    };
    Incoming::Text(text)
}

fn inventory(variant: u8) -> Inventory {
    let mut inv = Inventory::default();
    if variant % 3 == 2 {
        return inv;
    }
    inv.packages.insert(PackageEntry {
        name: "p".into(),
        version: "1".into(),
        status: PackageStatus::Installed,
    });
    inv.handlers.insert(HandlerKey::new("p", "1", "echo"));
    if variant.is_multiple_of(3) {
        inv.handlers.insert(HandlerKey::new("p", "1", "sleep"));
    }
    inv
}

fn restored_entry(task: u8, n: u64) -> OutboxEntry {
    let tk = task_key(task);
    let id = format!("restored-{n}");
    let frame = json!({"type": "result", "id": id, "ts": TS, "corr": tk.task_id, "seq": 1,
        "tenant": "default", "sender": {"role": "worker", "id": WORKER_ID},
        "ack": {"request": true},
        "payload": {"run_id": tk.run_id, "task_id": tk.task_id, "status": "SUCCEEDED", "result": {}}})
    .to_string();
    OutboxEntry {
        id,
        kind: FrameType::Result,
        task: Some(tk),
        frame,
    }
}

fn outcome(code: u8) -> TaskOutcome {
    match code % 5 {
        0 => TaskOutcome::succeeded(json!({"y": 1}).as_object().unwrap().clone(), 3),
        1 => TaskOutcome::Completed(Completion {
            status: TaskStatus::Failed,
            result: Default::default(),
            metadata: Default::default(),
            artifacts: vec![],
            error: None,
            duration_ms: 1,
        }),
        2 => TaskOutcome::failed("E.RUNNER.TIMEOUT", "timed out", 9),
        3 => TaskOutcome::failed("", "", 0),
        _ => TaskOutcome::failed("E.RUNNER.CANCELLED", "cancelled", 2),
    }
}

// ------------------------------------------------------------------------------------------
// the driver and its reference model

pub fn config(setup: &Setup) -> WorkerConfig {
    let mut per_node = BTreeMap::new();
    if setup.sleep_limit {
        per_node.insert("sleep".to_string(), 1);
    }
    WorkerConfig {
        worker_id: WORKER_ID.into(),
        auth_token: Some(Secret::new(TOKEN)),
        max_parallel: setup.max_parallel as u32,
        per_node_limits: per_node,
        ack_retry_attempts: 3,
        drain_grace: Duration::from_secs(2),
        flush_timeout: Duration::from_secs(3),
        max_frame_bytes: MAX_FRAME_BYTES,
        seed: setup.seed as u64,
        wall: WallClock::new(1_762_176_000_000_000),
        ..WorkerConfig::default()
    }
}

pub struct Harness {
    pub w: Worker,
    pub now: Instant,
    max_parallel: usize,
    sleep_limit: bool,
    step: usize,
    n: u64,
    // driver state
    socket_open: bool,
    connect_pending: bool,
    stopped: bool,
    /// ids of worker frames that asked for an ack, most recent last, not yet acked by us
    ack_wanted: Vec<String>,
    last_dispatch_id: BTreeMap<u8, String>,
    pending_ops: Vec<u64>,
    // model
    running: BTreeMap<TaskKey, (Option<String>, String)>,
    ever_started: BTreeSet<TaskKey>,
    persisted: BTreeSet<String>,
    forgotten: BTreeSet<String>,
    /// Inputs may carry arbitrary text; if one contains the token the leak check is moot.
    token_in_input: bool,
    /// The last actions with their time, for failure reports (formatted only on failure).
    recent: std::collections::VecDeque<(Instant, Action)>,
    /// Whether the last action seen was `Stopped`.
    pub last_was_stopped: bool,
    /// Feed text frames through `Worker::handle_decoded` (decoded here) instead of bytes.
    pub decoded_frames: bool,
    /// Every action with its time, for comparing two runs.
    pub log: Vec<(Instant, Action)>,
}

impl Harness {
    pub fn new(setup: &Setup) -> Harness {
        let mut h = Harness {
            w: Worker::new(config(setup)),
            now: Instant::ZERO,
            max_parallel: setup.max_parallel as usize,
            sleep_limit: setup.sleep_limit,
            step: 0,
            n: 0,
            socket_open: false,
            connect_pending: false,
            stopped: false,
            ack_wanted: Vec::new(),
            last_dispatch_id: BTreeMap::new(),
            pending_ops: Vec::new(),
            running: BTreeMap::new(),
            ever_started: BTreeSet::new(),
            persisted: BTreeSet::new(),
            forgotten: BTreeSet::new(),
            token_in_input: false,
            recent: Default::default(),
            last_was_stopped: false,
            decoded_frames: false,
            log: Vec::new(),
        };
        h.input(Input::SetInventory(inventory(0)));
        let entries: Vec<_> = (0..setup.restored)
            .map(|t| {
                h.n += 1;
                restored_entry(t, h.n)
            })
            .collect();
        if !entries.is_empty() {
            h.restore(entries);
        }
        h.input(Input::Start);
        h
    }

    fn fail(&self, what: &str) -> ! {
        let tail: Vec<_> = self
            .recent
            .iter()
            .map(|(t, a)| format!("{t:?} {a:?}"))
            .collect();
        panic!(
            "invariant violated at step {}: {what}\n--- last actions ---\n{}",
            self.step,
            tail.join("\n")
        )
    }

    fn restore(&mut self, entries: Vec<OutboxEntry>) {
        for e in &entries {
            self.persisted.insert(e.id.clone());
        }
        self.input(Input::Restore(entries));
    }

    fn frame(&mut self, f: Incoming) -> Vec<Action> {
        if !self.socket_open {
            return Vec::new();
        }
        if let Incoming::Text(t) = &f {
            if t.contains(TOKEN) {
                self.token_in_input = true;
            }
        }
        self.input(Input::Frame(f))
    }

    pub fn apply(&mut self, op: &Op) {
        self.step += 1;
        self.n += 1;
        let n = self.n;
        match op {
            Op::ConnectResult { ok } => {
                if self.connect_pending {
                    self.connect_pending = false;
                    if *ok {
                        self.socket_open = true;
                        self.input(Input::Connected);
                    } else {
                        self.input(Input::Disconnected {
                            reason: "refused".into(),
                        });
                    }
                }
            }
            Op::Disconnect => {
                if self.socket_open {
                    self.socket_open = false;
                    self.input(Input::Disconnected {
                        reason: "reset".into(),
                    });
                }
            }
            Op::AckRecent { back } => {
                if !self.ack_wanted.is_empty() {
                    let i = self.ack_wanted.len() - 1 - (*back as usize % self.ack_wanted.len());
                    let id = self.ack_wanted.remove(i);
                    self.frame(Incoming::Text(sched_ack(&id, n)));
                }
            }
            Op::Dispatch {
                task,
                key,
                node,
                same_id,
                with_resource,
            } => {
                let t = task % TASKS;
                let id = match self.last_dispatch_id.get(&t) {
                    Some(id) if *same_id => id.clone(),
                    _ => format!("d-{n}"),
                };
                self.last_dispatch_id.insert(t, id.clone());
                let text = dispatch_text(&id, t, *key, *node, *with_resource);
                let open = self.socket_open;
                let actions = self.frame(Incoming::Text(text));
                if open && !self.stopped {
                    let acked = actions.iter().any(|a| match a {
                        Action::Send(f) if f.kind == FrameType::Ack => {
                            frame_json(f.text())["ack"]["for"] == id.as_str()
                        }
                        _ => false,
                    });
                    if !acked {
                        self.fail(&format!("dispatch {id} was not acked at once"));
                    }
                }
            }
            Op::Malformed { variant, task } => {
                self.frame(malformed(*variant, *task, n));
            }
            Op::Mutated { task, pos, byte } => {
                let mut b = dispatch_text(&format!("m-{n}"), *task, *task, 0, false).into_bytes();
                let i = *pos as usize % b.len();
                b[i] = *byte;
                let text = String::from_utf8_lossy(&b).into_owned();
                self.frame(Incoming::Text(text));
            }
            Op::Raw(s) => {
                self.frame(Incoming::Text(s.clone()));
            }
            Op::Finish { task, outcome: o } => {
                let key = task_key(*task);
                let was_running = self.running.contains_key(&key);
                let registered = self.w.is_registered();
                let stopped = self.stopped;
                if was_running && !stopped {
                    // released before the input: queued tasks may start in the same step
                    self.running.remove(&key);
                }
                let actions = self.input(Input::TaskFinished {
                    task: key.clone(),
                    outcome: outcome(*o),
                });
                let terminal: Vec<&OutboxEntry> = actions
                    .iter()
                    .filter_map(|a| match a {
                        Action::Persist(e) if e.task.as_ref() == Some(&key) => Some(e),
                        _ => None,
                    })
                    .collect();
                let expect = usize::from(was_running && !stopped);
                if terminal.len() != expect {
                    self.fail(&format!(
                        "TaskFinished for {key} (running: {was_running}) produced {} terminal frames",
                        terminal.len()
                    ));
                }
                if let Some(e) = terminal.first() {
                    if !matches!(e.kind, FrameType::Result | FrameType::CommandError) {
                        self.fail(&format!("terminal frame of {key} is a {}", e.kind));
                    }
                    let sent = actions
                        .iter()
                        .any(|a| matches!(a, Action::Send(f) if f.id == e.id));
                    if registered && !sent {
                        self.fail(&format!(
                            "terminal frame of {key} not sent while registered"
                        ));
                    }
                }
            }
            Op::Feedback { task, progress } => {
                let fb = astra_core::work::Feedback {
                    progress: Some(*progress as f64 / 100.0),
                    stage: Some("s".into()),
                    ..Default::default()
                };
                self.input(Input::TaskFeedback {
                    task: task_key(*task),
                    feedback: fb,
                });
            }
            Op::Tick { ms } => self.advance(Duration::from_millis(*ms as u64)),
            Op::Drain => {
                self.input(Input::Command(Command::Drain));
            }
            Op::Shutdown => {
                self.input(Input::Command(Command::Shutdown));
            }
            Op::Restore { task } => {
                // The contract is to restore before `Start`; a late restore is tolerated only
                // for a task this run never saw (an unrelated entry found on disk).
                let e = restored_entry(*task, n);
                let seen = self.last_dispatch_id.contains_key(&(task % TASKS))
                    || e.task
                        .as_ref()
                        .is_some_and(|k| self.ever_started.contains(k));
                if !seen {
                    self.restore(vec![e]);
                }
            }
            Op::SetInventory { variant } => {
                self.input(Input::SetInventory(inventory(*variant)));
            }
            Op::PkgInstall { name } => {
                let text = json!({"type": "pkg.install", "id": format!("pi-{n}"), "ts": TS,
                    "tenant": "default", "sender": {"role": "scheduler", "id": "s"},
                    "ack": {"request": true},
                    "payload": {"name": format!("q{}", name % 3), "version": "2.0.0"}})
                .to_string();
                self.frame(Incoming::Text(text));
            }
            Op::PkgDone { idx, ok } => {
                if !self.pending_ops.is_empty() {
                    let op_id = self
                        .pending_ops
                        .remove(*idx as usize % self.pending_ops.len());
                    let mut inv = inventory(0);
                    if *ok {
                        inv.packages.insert(PackageEntry {
                            name: "q0".into(),
                            version: "2.0.0".into(),
                            status: PackageStatus::Installed,
                        });
                    }
                    self.input(Input::PackageOpFinished(PackageOpDone {
                        op_id,
                        name: "q0".into(),
                        version: "2.0.0".into(),
                        install: true,
                        outcome: if *ok { Ok(()) } else { Err("boom".into()) },
                        inventory: inv,
                    }));
                }
            }
        }
    }

    /// Advances virtual time, ticking at every deadline on the way.
    pub fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        let mut guard = 0;
        while let Some(t) = self.w.poll_timeout() {
            if t > target {
                break;
            }
            guard += 1;
            if guard > 10_000 {
                self.fail("timers keep firing without time advancing (livelock)");
            }
            self.now = t.max(self.now);
            self.input(Input::Tick);
            if let Some(next) = self.w.poll_timeout() {
                if next <= self.now {
                    self.fail(&format!(
                        "after a Tick at {:?} the next deadline {next:?} is not in the future",
                        self.now
                    ))
                }
            }
        }
        self.now = target;
        self.input(Input::Tick);
    }

    /// Feeds one input, drains the actions and checks every invariant.
    pub fn input(&mut self, i: Input) -> Vec<Action> {
        match i {
            Input::Frame(Incoming::Text(t)) if self.decoded_frames => {
                let max = self.w.config().max_frame_bytes;
                self.w.handle_decoded(self.now, decode(&t, max));
            }
            i => self.w.handle(self.now, i),
        }
        let mut out = Vec::new();
        while let Some(a) = self.w.poll_action() {
            if self.recent.len() == 12 {
                self.recent.pop_front();
            }
            self.recent.push_back((self.now, a.clone()));
            self.log.push((self.now, a.clone()));
            self.last_was_stopped = matches!(a, Action::Stopped);
            self.check(&a);
            out.push(a);
        }
        if self.stopped && self.w.poll_timeout().is_some() {
            self.fail("a stopped worker still asks for a timer");
        }
        self.check_state();
        out
    }

    fn check(&mut self, a: &Action) {
        if self.stopped {
            self.fail(&format!("action after Stopped: {a:?}"));
        }
        if !self.token_in_input {
            let ser = serde_json::to_string(a).unwrap_or_else(|e| self.fail(&e.to_string()));
            if ser.contains(TOKEN) {
                self.fail("the auth token leaked into a serialised action");
            }
        }
        match a {
            Action::Connect => {
                if self.socket_open || self.connect_pending {
                    self.fail("Connect while a socket is open or a connect is pending");
                }
                self.connect_pending = true;
            }
            Action::Close { .. } => {
                if !self.socket_open {
                    self.fail("Close without an open socket");
                }
                self.socket_open = false;
            }
            Action::Send(f) => self.check_send(f),
            Action::StartTask(spec) => {
                let key = spec.key.clone();
                if self.running.contains_key(&key) {
                    self.fail(&format!("StartTask for {key} while it is running"));
                }
                if !self.ever_started.insert(key.clone()) {
                    self.fail(&format!("{key} started a second time"));
                }
                if let Some(ck) = &spec.concurrency_key {
                    if let Some((holder, _)) = self
                        .running
                        .iter()
                        .find(|(_, (k, _))| k.as_deref() == Some(ck.as_str()))
                    {
                        self.fail(&format!("concurrency key {ck} held by {holder} and {key}"));
                    }
                }
                self.running
                    .insert(key, (spec.concurrency_key.clone(), spec.node_type.clone()));
                if self.running.len() > self.max_parallel {
                    self.fail("more tasks running than max_parallel");
                }
                let sleeping = self.running.values().filter(|(_, t)| t == "sleep").count();
                if self.sleep_limit && sleeping > 1 {
                    self.fail("per-node limit of `sleep` exceeded");
                }
            }
            Action::CancelTask { task, .. } => {
                if !self.running.contains_key(task) {
                    self.fail(&format!("CancelTask for {task}, which is not running"));
                }
            }
            Action::Persist(e) => {
                if !self.persisted.insert(e.id.clone()) {
                    self.fail(&format!("outbox id {} persisted twice", e.id));
                }
                if decode(&e.frame, DEFAULT_MAX_FRAME_BYTES).is_err() {
                    self.fail("persisted an invalid frame");
                }
                if let Some(t) = &e.task {
                    if self.running.contains_key(t) {
                        self.fail(&format!("terminal frame persisted for {t} while it runs"));
                    }
                }
            }
            Action::Forget { id } => {
                if !self.persisted.contains(id) {
                    self.fail(&format!("Forget of {id}, never persisted"));
                }
                if !self.forgotten.insert(id.clone()) {
                    self.fail(&format!("{id} forgotten twice"));
                }
            }
            Action::Package { op_id, .. } => self.pending_ops.push(*op_id),
            Action::Stopped => self.stopped = true,
            Action::State(_) | Action::Log(_) => {}
        }
    }

    fn check_send(&mut self, f: &astra_core::worker::OutFrame) {
        if !self.socket_open {
            self.fail(&format!("Send without an open socket: {f:?}"));
        }
        let d = decode(f.text(), DEFAULT_MAX_FRAME_BYTES)
            .unwrap_or_else(|e| self.fail(&format!("worker sent an invalid frame: {e}\n{f:?}")));
        if d.env.sender.role != Role::Worker || d.env.sender.id != WORKER_ID {
            self.fail("frame not sent as this worker");
        }
        if d.env.id != f.id || d.body.frame_type() != Some(f.kind) {
            self.fail("OutFrame metadata disagrees with its text");
        }
        if !f.kind.worker_sends() || matches!(d.body, Body::Unknown(_)) {
            self.fail(&format!("worker sent a {}", f.kind));
        }
        if matches!(
            f.kind,
            FrameType::Result | FrameType::CommandError | FrameType::PkgEvent
        ) {
            if !self.persisted.contains(&f.id) {
                self.fail(&format!("{} {} sent before it was persisted", f.kind, f.id));
            }
            if self.forgotten.contains(&f.id) {
                self.fail(&format!("{} {} re-sent after it was acked", f.kind, f.id));
            }
        }
        // What the scheduler may ack: frames actually sent that asked for one.
        if d.env.ack_requested() && !self.ack_wanted.contains(&f.id) {
            self.ack_wanted.push(f.id.clone());
        }
        if !self.token_in_input && f.log_text().contains(TOKEN) {
            self.fail("token in the log text of a frame");
        }
    }

    fn check_state(&mut self) {
        if self.stopped {
            return;
        }
        if self.w.running() != self.running.len() {
            self.fail(&format!(
                "worker says {} running, model says {}",
                self.w.running(),
                self.running.len()
            ));
        }
    }
}

impl Harness {
    /// Tasks started so far (each at most once).
    pub fn started(&self) -> usize {
        self.ever_started.len()
    }
    /// Durable frames written so far.
    pub fn persisted(&self) -> usize {
        self.persisted.len()
    }
    pub fn forgotten(&self) -> usize {
        self.forgotten.len()
    }
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }
}

fn frame_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Runs a whole input; panics on the first violated invariant.
pub fn run(setup: &Setup, ops: &[Op]) -> Harness {
    run_with(setup, ops, false)
}

/// As `run`, feeding text frames already decoded when `decoded_frames` is set.
pub fn run_with(setup: &Setup, ops: &[Op], decoded_frames: bool) -> Harness {
    let mut h = Harness::new(setup);
    h.decoded_frames = decoded_frames;
    for op in ops {
        h.apply(op);
    }
    h
}

/// Interprets fuzz bytes and runs them: the body of the `worker_machine` fuzz target.
pub fn run_bytes(bytes: &[u8]) {
    let (setup, ops) = decode_input(bytes, 400);
    run(&setup, &ops);
}

/// A few hand-written scenarios, the seed corpus of the `worker_machine` fuzz target.
pub fn seed_scenarios() -> Vec<(&'static str, Setup, Vec<Op>)> {
    let setup = Setup {
        seed: 7,
        max_parallel: 2,
        sleep_limit: true,
        restored: 0,
    };
    let up = vec![
        Op::ConnectResult { ok: true },
        Op::AckRecent { back: 0 },
        Op::AckRecent { back: 0 },
    ];
    let d = |task, key, node| Op::Dispatch {
        task,
        key,
        node,
        same_id: false,
        with_resource: false,
    };
    let cat = |parts: &[&[Op]]| parts.concat();
    vec![
        ("handshake_register", setup, up.clone()),
        (
            "dispatch_finish_ack",
            setup,
            cat(&[
                &up,
                &[
                    d(0, 0, 0),
                    Op::Tick { ms: 250 },
                    Op::Feedback {
                        task: 0,
                        progress: 50,
                    },
                    Op::Finish {
                        task: 0,
                        outcome: 0,
                    },
                    Op::AckRecent { back: 0 },
                ],
            ]),
        ),
        (
            "duplicates_and_key_clash",
            setup,
            cat(&[
                &up,
                &[
                    d(0, 0, 1),
                    d(0, 0, 1),
                    d(1, 0, 0),
                    d(2, 1, 1),
                    d(3, 2, 0),
                    Op::Finish {
                        task: 0,
                        outcome: 2,
                    },
                    d(0, 0, 1),
                    Op::Finish {
                        task: 3,
                        outcome: 1,
                    },
                ],
            ]),
        ),
        (
            "reconnect_replay",
            Setup {
                restored: 1,
                ..setup
            },
            cat(&[
                &up,
                &[
                    d(1, 1, 0),
                    Op::Finish {
                        task: 1,
                        outcome: 0,
                    },
                    Op::Disconnect,
                    Op::Tick { ms: 700 },
                    Op::ConnectResult { ok: false },
                    Op::Tick { ms: 2000 },
                    Op::ConnectResult { ok: true },
                    Op::AckRecent { back: 0 },
                    Op::AckRecent { back: 0 },
                    Op::Tick { ms: 1100 },
                    Op::AckRecent { back: 0 },
                    Op::AckRecent { back: 0 },
                ],
            ]),
        ),
        (
            "malformed_frames",
            setup,
            cat(&[
                &up,
                &(0..10)
                    .map(|v| Op::Malformed {
                        variant: v,
                        task: v,
                    })
                    .collect::<Vec<_>>(),
                &[
                    Op::Mutated {
                        task: 1,
                        pos: 40,
                        byte: b'}',
                    },
                    Op::Raw("{\"type\":\"cmd.dispatch\",\"id\":\"x\"}".into()),
                ],
            ]),
        ),
        (
            "drain",
            setup,
            cat(&[
                &up,
                &[
                    d(0, 0, 1),
                    d(1, 1, 1),
                    Op::Drain,
                    d(2, 2, 0),
                    Op::Tick { ms: 2500 },
                    Op::Finish {
                        task: 0,
                        outcome: 4,
                    },
                    Op::AckRecent { back: 0 },
                    Op::AckRecent { back: 1 },
                    Op::Tick { ms: 4000 },
                ],
            ]),
        ),
        // regressions found by proptest_worker (see the tests of the same names there)
        (
            "regress_redispatch_running_during_drain",
            Setup {
                max_parallel: 1,
                ..setup
            },
            cat(&[
                &up,
                &[
                    d(4, 0, 0),
                    Op::Drain,
                    d(4, 0, 0),
                    Op::Finish {
                        task: 4,
                        outcome: 0,
                    },
                ],
            ]),
        ),
        (
            "regress_stopped_is_last",
            setup,
            vec![Op::ConnectResult { ok: true }, Op::Drain],
        ),
        (
            "packages",
            setup,
            cat(&[
                &up,
                &[
                    Op::PkgInstall { name: 0 },
                    Op::PkgDone { idx: 0, ok: true },
                    Op::AckRecent { back: 0 },
                    Op::PkgInstall { name: 1 },
                    Op::PkgDone { idx: 0, ok: false },
                    Op::SetInventory { variant: 1 },
                    d(4, 3, 1),
                    Op::Restore { task: 2 },
                    d(2, 3, 0),
                    Op::Shutdown,
                    Op::Tick { ms: 4000 },
                ],
            ]),
        ),
    ]
}
