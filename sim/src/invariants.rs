//! The named safety invariants and the checker that evaluates them after every event from
//! what the simulator observes (actions, frames, executor starts). Tests feed it directly.

use crate::event::{LightAt, Read};
use crate::lookup::{map_with_room, LookupMap, LookupSet, TASKS_PER_PROCESS};
use astra_core::scheduler::SchedulerConfig;
use astra_core::v1::codec::{decode, decode_light, Body, Inbound, Light};
use astra_core::v1::payloads::PackageEntry;
use astra_core::work::{Inventory, TaskKey, TaskSpec};
use astra_core::worker::OutboxEntry;
use astra_core::Instant;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    /// (1) A task never runs twice at once on one worker.
    SingleExecution,
    /// (2) A concurrency key is held by at most one running task on a worker.
    ConcurrencyKey,
    /// (3) Running tasks never exceed `max_parallel`.
    MaxParallel,
    /// (4) Every frame a worker sends passes the scheduler's strict codec.
    StrictFrames,
    /// (5) Heartbeats keep their cadence while registered.
    HeartbeatCadence,
    /// (6) `register` reports exactly the package store's installed packages.
    InventoryMatchesStore,
    /// (7) Every acknowledged dispatch ends in exactly one terminal frame.
    OneTerminalPerDispatch,
    /// (8) No finished result is lost across reconnects and crashes.
    NoLostResult,
    /// After faults stop, every run finishes within the bound.
    Liveness,
}

impl Invariant {
    pub const ALL: [Invariant; 9] = [
        Invariant::SingleExecution,
        Invariant::ConcurrencyKey,
        Invariant::MaxParallel,
        Invariant::StrictFrames,
        Invariant::HeartbeatCadence,
        Invariant::InventoryMatchesStore,
        Invariant::OneTerminalPerDispatch,
        Invariant::NoLostResult,
        Invariant::Liveness,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Invariant::SingleExecution => "single-execution",
            Invariant::ConcurrencyKey => "concurrency-key-single-flight",
            Invariant::MaxParallel => "max-parallel",
            Invariant::StrictFrames => "strict-frames",
            Invariant::HeartbeatCadence => "heartbeat-cadence",
            Invariant::InventoryMatchesStore => "inventory-matches-store",
            Invariant::OneTerminalPerDispatch => "one-terminal-per-dispatch",
            Invariant::NoLostResult => "no-lost-result",
            Invariant::Liveness => "no liveness",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub invariant: Invariant,
    pub at: Instant,
    pub worker: Option<usize>,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant `{}` violated at {:?}",
            self.invariant.name(),
            self.at
        )?;
        if let Some(w) = self.worker {
            write!(f, " on w{w}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// Which input the worker was handling when it asked to persist a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause<'a> {
    /// A frame from the scheduler (a dispatch answered without running, or a cached copy).
    Frame,
    /// `Input::TaskFinished` for this task.
    Finished(&'a TaskKey),
    Other,
}

/// What the checker tracks for the current process (incarnation) of one worker.
#[derive(Debug, Default)]
struct Incarnation {
    max_parallel: usize,
    hb_bound: Duration,
    running: LookupMap<TaskKey, Option<String>>,
    keys: LookupMap<String, TaskKey>,
    /// What this process did for each task it heard of (one lookup per observation).
    tasks: LookupMap<TaskKey, TaskLog>,
    /// Original terminal frames per task during the current input.
    this_input: LookupMap<TaskKey, u32>,
    /// Ids of the `register` frames sent (only their first sending is checked; frame ids
    /// are unique per frame, so no other type's id can repeat one of these).
    register_ids: LookupSet<String>,
    dispatch_ids: LookupMap<String, TaskKey>,
    registered_since: Option<Instant>,
    last_hb: Option<Instant>,
}

/// One task as one worker process saw it.
#[derive(Debug, Default)]
struct TaskLog {
    /// Executions started.
    starts: u32,
    /// Original terminal frames persisted when one of its executions finished.
    exec_terminals: u32,
    /// Its terminal frames without `id`/`ts`: a match is a cached re-send.
    canon: Vec<Terminal>,
    /// The worker acked a dispatch of it.
    acked: bool,
    /// The worker persisted (or found on disk) a terminal frame for it.
    terminal: bool,
}

impl Incarnation {
    /// The task's log, created on first sight (the key is copied only then).
    fn task(&mut self, key: &TaskKey) -> &mut TaskLog {
        if !self.tasks.contains_key(key) {
            self.tasks.insert(key.clone(), TaskLog::default());
        }
        // Present: inserted just above if it was not.
        self.tasks.get_mut(key).expect("task log inserted above")
    }
}

#[derive(Debug)]
pub struct Checker {
    max_frame_bytes: usize,
    workers: Vec<Incarnation>,
    /// Every terminal frame's task, by any worker, any incarnation.
    persisted: LookupSet<TaskKey>,
    violations: Vec<Violation>,
}

/// A terminal frame counted for a task, kept to recognise its cached re-sends.
#[derive(Debug)]
struct Terminal {
    frame: String,
    /// `id_ts_cut(frame)`: where the text without `id` and `ts` is cut out of `frame`.
    cut: Option<Cut>,
}

/// `{"type":"…","id":"…","ts":"…",REST` without its `id` and `ts`, as two slices of the
/// frame itself — `frame[..head]` (`{"type":"…",`) and `frame[rest..]` (`REST`) — instead of
/// a joined copy: a terminal frame is ~1 KB, and every one the worker persists was copied
/// a second time only to be compared.
#[derive(Debug, Clone, Copy)]
struct Cut {
    head: usize,
    rest: usize,
}

impl Cut {
    fn parts(self, frame: &str) -> (&str, &str) {
        (&frame[..self.head], &frame[self.rest..])
    }
}

impl Terminal {
    fn new(frame: &str) -> Self {
        Terminal {
            frame: frame.to_string(),
            cut: id_ts_cut(frame),
        }
    }

    fn stripped(&self) -> Option<(&str, &str)> {
        self.cut.map(|c| c.parts(&self.frame))
    }
}

/// Whether `frame` (whose [`id_ts_cut`] is `cut`) is a copy of one of `copies`: equal
/// [`canonical`] forms. The text comparison settles most cases without a parse (equal
/// stripped texts imply equal canonical forms); only when it finds no match are the
/// canonical forms computed and compared. The pair of parts is equal exactly when the
/// joined texts are: the head ends at the first `"` after `{"type":"` plus two bytes, in
/// both.
fn is_copy(copies: &[Terminal], frame: &str, cut: Option<Cut>) -> bool {
    if let Some(f) = cut.map(|c| c.parts(frame)) {
        if copies.iter().any(|c| c.stripped() == Some(f)) {
            return true;
        }
    }
    if copies.is_empty() {
        return false;
    }
    let c = canonical(frame);
    copies.iter().any(|k| canonical(&k.frame) == c)
}

/// A terminal frame without its `id` and `ts` (all a cached re-send changes), as parsed
/// JSON re-serialised: key order and spacing do not matter.
fn canonical(frame: &str) -> String {
    match serde_json::from_str::<Value>(frame) {
        Ok(Value::Object(mut m)) => {
            m.remove("id");
            m.remove("ts");
            Value::Object(m).to_string()
        }
        _ => frame.to_string(),
    }
}

/// The text fast path of [`is_copy`] for the worker's own envelope layout, which always
/// begins `{"type":"…","id":"…","ts":"…",`: those two fields cut out of the text, no parse.
/// Equal results imply equal [`canonical`] forms (which depend on nothing else); unequal
/// ones do not imply the reverse (a cached re-send may order its payload keys differently).
fn id_ts_cut(frame: &str) -> Option<Cut> {
    /// The rest after a JSON string body without escapes and its closing quote.
    fn after_plain_str(s: &str) -> Option<&str> {
        // One byte loop for both tests (`find` + `contains` set up two searchers for
        // strings of a few dozen bytes); `"` is ASCII, so `end + 1` is a char boundary.
        let end = s.bytes().position(|b| b == b'"' || b == b'\\')?;
        (s.as_bytes()[end] == b'"').then(|| &s[end + 1..])
    }
    const TYPE: &str = "{\"type\":\"";
    let rest = frame.strip_prefix(TYPE)?;
    let after_type = after_plain_str(rest)?;
    let rest = after_plain_str(after_type.strip_prefix(",\"id\":\"")?)?;
    let rest = after_plain_str(rest.strip_prefix(",\"ts\":\"")?)?;
    let rest = rest.strip_prefix(',')?;
    Some(Cut {
        // `{"type":"…",`: everything up to the comma after the type's closing quote.
        head: frame.len() - after_type.len() + 1,
        rest: frame.len() - rest.len(),
    })
}

/// The joined text of [`id_ts_cut`] (what the checker compared before it kept slices).
#[cfg(test)]
fn strip_id_ts(frame: &str) -> Option<String> {
    id_ts_cut(frame).map(|c| {
        let (head, rest) = c.parts(frame);
        format!("{head}{rest}")
    })
}

impl Checker {
    pub fn new(workers: usize, sched: &SchedulerConfig) -> Self {
        Checker {
            max_frame_bytes: sched.max_frame_bytes,
            workers: (0..workers).map(|_| Incarnation::default()).collect(),
            persisted: LookupSet::default(),
            violations: Vec::new(),
        }
    }

    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    pub fn first_violation(&self) -> Option<&Violation> {
        self.violations.first()
    }

    pub fn flag(
        &mut self,
        invariant: Invariant,
        at: Instant,
        worker: Option<usize>,
        detail: String,
    ) {
        self.violations.push(Violation {
            invariant,
            at,
            worker,
            detail,
        });
    }

    fn inc(&mut self, w: usize) -> Option<&mut Incarnation> {
        self.workers.get_mut(w)
    }

    /// A worker process (re)started: its volatile state is gone.
    pub fn new_incarnation(&mut self, w: usize, max_parallel: u32, hb_bound: Duration) {
        if let Some(i) = self.inc(w) {
            let n = TASKS_PER_PROCESS;
            *i = Incarnation {
                max_parallel: max_parallel.max(1) as usize,
                hb_bound,
                tasks: map_with_room(n),
                dispatch_ids: map_with_room(n),
                ..Incarnation::default()
            };
        }
    }

    /// Keys acked by this incarnation that have no terminal frame yet (what a crash loses).
    pub fn unanswered(&self, w: usize) -> Vec<TaskKey> {
        self.workers
            .get(w)
            .map(|i| {
                // In key order, as the ordered sets gave it (a violation names the first).
                let mut lost: Vec<TaskKey> = i
                    .tasks
                    .iter()
                    .filter(|(_, t)| t.acked && !t.terminal)
                    .map(|(k, _)| k.clone())
                    .collect();
                lost.sort_unstable();
                lost
            })
            .unwrap_or_default()
    }

    pub fn begin_input(&mut self, w: usize) {
        if let Some(i) = self.inc(w) {
            // Almost always empty already: `clear` would still rebuild the map.
            if !i.this_input.is_empty() {
                i.this_input.clear();
            }
        }
    }

    /// (1)-(3) when the worker asks to start a task.
    pub fn on_start(&mut self, w: usize, now: Instant, spec: &TaskSpec) {
        let Some(i) = self.workers.get_mut(w) else {
            return;
        };
        let mut bad = Vec::new();
        if i.running.contains_key(&spec.key) {
            bad.push((
                Invariant::SingleExecution,
                format!("task {} started while already running", spec.key),
            ));
        }
        if let Some(k) = &spec.concurrency_key {
            if let Some(holder) = i.keys.get(k).filter(|h| **h != spec.key) {
                bad.push((
                    Invariant::ConcurrencyKey,
                    format!("task {} started with key {k} held by {holder}", spec.key),
                ));
            }
            i.keys.insert(k.clone(), spec.key.clone());
        }
        i.running
            .insert(spec.key.clone(), spec.concurrency_key.clone());
        i.task(&spec.key).starts += 1;
        if i.running.len() > i.max_parallel {
            bad.push((
                Invariant::MaxParallel,
                format!(
                    "{} tasks running with max_parallel {}",
                    i.running.len(),
                    i.max_parallel
                ),
            ));
        }
        for (inv, d) in bad {
            self.flag(inv, now, Some(w), d);
        }
    }

    /// The executor reported the end of a task (before the worker handles it).
    pub fn on_task_end(&mut self, w: usize, key: &TaskKey) {
        let Some(i) = self.inc(w) else { return };
        if let Some(Some(k)) = i.running.remove(key) {
            if i.keys.get(&k) == Some(key) {
                i.keys.remove(&k);
            }
        }
    }

    /// A dispatch was delivered to the worker intact.
    pub fn on_dispatch_delivered(&mut self, w: usize, dispatch_id: &str, key: TaskKey) {
        if let Some(i) = self.inc(w) {
            i.dispatch_ids.insert(dispatch_id.to_string(), key);
        }
    }

    /// The limit of the scheduler's strict decode, which `on_sent` applies.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// (4), (5), (6) and the ack side of (7) for every frame a worker sends. Returns the
    /// frame as the scheduler's strict read gives it (`decode_light(text, max_frame_bytes())`
    /// or else `decode(text, max_frame_bytes())`), so the scheduler need not read it again.
    pub fn on_sent(&mut self, w: usize, now: Instant, text: &str, store: &Inventory) -> Read {
        // An ack or heartbeat the light path reads is one the strict decode accepts.
        if let Some(light) = decode_light(text, self.max_frame_bytes) {
            if let Some(i) = self.workers.get_mut(w) {
                match light {
                    Light::Heartbeat => i.last_hb = Some(now),
                    Light::Ack { for_id } => {
                        if let Some(k) = i.dispatch_ids.get(for_id).cloned() {
                            i.task(&k).acked = true;
                        }
                    }
                }
            }
            // (`of` cannot fail for a read of this very text; the scheduler reading the
            // text itself would be the same frame anyway.)
            return LightAt::of(text, light).map_or(Read::TextOnly, Read::Light);
        }
        let f = match decode(text, self.max_frame_bytes) {
            Ok(f) => f,
            Err(e) => {
                let kind = crate::frames::sniff_type(text).to_string();
                self.flag(
                    Invariant::StrictFrames,
                    now,
                    Some(w),
                    format!("worker sent a `{kind}` the scheduler rejects: {e}"),
                );
                return Read::TextOnly;
            }
        };
        self.observe_sent(w, now, &f, store);
        Read::Decoded(Box::new(f))
    }

    fn observe_sent(&mut self, w: usize, now: Instant, f: &Inbound, store: &Inventory) {
        let Some(i) = self.workers.get_mut(w) else {
            return;
        };
        match &f.body {
            Body::Heartbeat(_) => i.last_hb = Some(now),
            Body::Ack(_) => {
                if let Some(k) = f.env.ack_for().and_then(|d| i.dispatch_ids.get(d)).cloned() {
                    i.task(&k).acked = true;
                }
            }
            Body::Register(r) if i.register_ids.insert(f.env.id.clone()) => {
                let mut got: Vec<PackageEntry> = r.packages.clone();
                got.sort();
                let want = store.register_entries();
                if got != want {
                    let detail = format!("register reported {got:?}, the store has {want:?}");
                    self.flag(Invariant::InventoryMatchesStore, now, Some(w), detail);
                }
            }
            _ => {}
        }
    }

    /// (7) at-most-once: every original terminal frame comes from one dispatch or one task end.
    pub fn on_persist(&mut self, w: usize, now: Instant, e: &OutboxEntry, cause: Cause<'_>) {
        let Some(key) = e.task.as_ref() else { return };
        self.persisted.insert(key.clone());
        let Some(i) = self.workers.get_mut(w) else {
            return;
        };
        let cut = id_ts_cut(&e.frame);
        let t = i.task(key);
        t.terminal = true;
        if is_copy(&t.canon, &e.frame, cut) {
            return; // a cached re-send of a frame already counted
        }
        t.canon.push(Terminal {
            frame: e.frame.clone(),
            cut,
        });
        let starts = t.starts;
        let n = i.this_input.entry(key.clone()).or_default();
        *n += 1;
        let mut bad = Vec::new();
        if *n > 1 {
            bad.push(format!("{} terminal frames for {key} from one input", *n));
        }
        match cause {
            Cause::Finished(k) if k == key => {
                let t = &mut i.task(key).exec_terminals;
                *t += 1;
                if *t > starts {
                    bad.push(format!(
                        "{t} terminal frames for {key} after {starts} executions"
                    ));
                }
            }
            Cause::Finished(k) => bad.push(format!("terminal frame for {key} when {k} finished")),
            Cause::Frame => {}
            Cause::Other => bad.push(format!(
                "terminal frame for {key} with no dispatch or task end"
            )),
        }
        for d in bad {
            self.flag(Invariant::OneTerminalPerDispatch, now, Some(w), d);
        }
    }

    /// Entries a restarted worker found on disk count as its answers.
    pub fn on_restore(&mut self, w: usize, entries: &[OutboxEntry]) {
        let Some(i) = self.inc(w) else { return };
        for e in entries {
            if let Some(k) = &e.task {
                let t = i.task(k);
                t.terminal = true;
                t.canon.push(Terminal::new(&e.frame));
            }
        }
    }

    /// (5) after every event: a registered worker's heartbeats are never late.
    pub fn check_heartbeat(&mut self, w: usize, now: Instant, registered: bool) {
        let Some(i) = self.inc(w) else { return };
        if !registered {
            i.registered_since = None;
            i.last_hb = None;
            return;
        }
        let since = *i.registered_since.get_or_insert(now);
        let last = i.last_hb.unwrap_or(since).max(since);
        if now > last + i.hb_bound {
            let gap = now - last;
            let bound = i.hb_bound;
            i.last_hb = Some(now);
            self.flag(
                Invariant::HeartbeatCadence,
                now,
                Some(w),
                format!("no heartbeat for {gap:?} while registered (bound {bound:?})"),
            );
        }
    }

    /// (7) at-least-once, at the end: every dispatch a live worker acked was answered.
    pub fn check_answered(&mut self, w: usize, now: Instant) {
        let missing = self.unanswered(w);
        if let Some(k) = missing.first() {
            let d = format!(
                "{} acked dispatches never answered, e.g. {k}",
                missing.len()
            );
            self.flag(Invariant::OneTerminalPerDispatch, now, Some(w), d);
        }
    }

    /// (8) at the end: every terminal frame for a node the scheduler knows was recorded.
    pub fn check_recorded(
        &mut self,
        now: Instant,
        known: impl Fn(&TaskKey) -> bool,
        recorded: &LookupSet<TaskKey>,
    ) {
        let mut lost: Vec<&TaskKey> = self
            .persisted
            .iter()
            .filter(|k| known(k) && !recorded.contains(*k))
            .collect();
        // In key order, as the ordered set gave it (the message names the first).
        lost.sort_unstable();
        if let Some(k) = lost.first() {
            let d = format!(
                "{} finished tasks never reached the scheduler, e.g. {k}",
                lost.len()
            );
            self.flag(Invariant::NoLostResult, now, None, d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow(frame: &str) -> Value {
        let mut v: Value = serde_json::from_str(frame).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut v {
            m.remove("id");
            m.remove("ts");
        }
        v
    }

    const A: &str = r#"{"type":"result","id":"u-1","ts":"2025-11-03T13:20:00.000000+00:00","corr":"t1","tenant":"default","sender":{"role":"worker","id":"w0"},"ack":{"request":true},"payload":{"run_id":"r1","task_id":"t1","status":"completed"}}"#;

    fn copy_of(a: &str, b: &str) -> bool {
        is_copy(&[Terminal::new(a)], b, id_ts_cut(b))
    }

    #[test]
    fn fast_form_is_the_frame_without_id_and_ts() {
        let c = strip_id_ts(A).unwrap_or_default();
        assert_eq!(serde_json::from_str::<Value>(&c).ok(), Some(slow(A)));
        let resent = A
            .replace("u-1", "u-2")
            .replace("13:20:00.000000", "13:21:07.250000");
        assert!(copy_of(A, &resent));
        assert!(!copy_of(A, &A.replace("completed", "failed")));
        assert!(!is_copy(&[], A, id_ts_cut(A)));
    }

    /// A cached re-send re-serialised with sorted payload keys (seen in seed 8026) is still
    /// a copy: the parsed comparison catches what the text one misses.
    #[test]
    fn reordered_payload_keys_are_still_a_copy() {
        let sorted = A.replace("u-1", "u-9").replace(
            r#""payload":{"run_id":"r1","task_id":"t1","status":"completed"}"#,
            r#""payload":{"run_id":"r1","status":"completed","task_id":"t1"}"#,
        );
        assert_ne!(strip_id_ts(A), strip_id_ts(&sorted));
        assert!(copy_of(A, &sorted));
        assert!(!copy_of(A, &sorted.replace("completed", "failed")));
    }

    #[test]
    fn other_layouts_take_the_parsed_path() {
        let reordered = r#"{"id":"u-1","type":"result","ts":"x","payload":{}}"#;
        assert_eq!(strip_id_ts(reordered), None);
        assert_eq!(canonical(reordered), slow(reordered).to_string());
        assert!(copy_of(
            reordered,
            r#"{"type":"result","id":"u-2","ts":"y","payload":{}}"#
        ));
        let escaped = A.replace("u-1", "u\\\"1");
        assert_eq!(strip_id_ts(&escaped), None);
        assert_eq!(canonical("not json"), "not json");
    }
}
