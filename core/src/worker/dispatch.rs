//! Dispatch handling: ack at once (twice), validate, recognise duplicates, enforce the
//! concurrency key and local limits, start or queue, and turn every finished task into
//! exactly one terminal frame (`result` or `command.error`, spec §6, R2, R6-R9).

use super::frames::{error_payload, non_empty_message, task_details, Head};
use super::io::{Action, Level};
use super::{DuplicatePolicy, Worker};
use crate::id_map::FixedMap;
use crate::v1::codec::{DecodeError, DecodeErrorKind};
use crate::v1::envelope::Envelope;
use crate::v1::payloads::*;
use crate::v1::types::FrameType;
use crate::work::task::codes;
use crate::work::{Feedback, HandlerKey, TaskKey, TaskOutcome, TaskSpec, Verdict};
use serde_json::{Map, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// What the worker remembers about an admitted task to build its terminal frame.
#[derive(Debug, Clone)]
pub(super) struct DispatchMeta {
    pub(super) seq: Option<u64>,
    node_id: String,
    metadata: Map<String, Value>,
}

#[derive(Debug, Clone)]
struct Cached {
    kind: FrameType,
    /// The outbox entry's text too, shared (one copy for both).
    frame: Arc<str>,
    outbox_id: String,
}

/// Terminal frames of recently finished tasks, to answer re-dispatches without re-running.
#[derive(Debug)]
pub(super) struct FinishedCache {
    /// Only looked up, never iterated (`order` keeps the age order; see `id_map`).
    map: FixedMap<TaskKey, Cached>,
    order: VecDeque<TaskKey>,
    cap: usize,
}

impl FinishedCache {
    pub fn new(cap: usize) -> Self {
        // Room for the first few hundred tasks up front: growing a hash map rehashes every
        // key (two strings each) at each doubling, which showed in the simulator's profile.
        let initial = cap.clamp(1, 256);
        FinishedCache {
            map: FixedMap::with_capacity_and_hasher(initial, Default::default()),
            order: VecDeque::with_capacity(initial),
            cap: cap.max(1),
        }
    }

    pub fn remember(&mut self, key: TaskKey, kind: FrameType, frame: Arc<str>, outbox_id: String) {
        if self
            .map
            .insert(
                key.clone(),
                Cached {
                    kind,
                    frame,
                    outbox_id,
                },
            )
            .is_none()
        {
            self.order.push_back(key);
        }
        while self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }

    fn get(&self, key: &TaskKey) -> Option<&Cached> {
        self.map.get(key)
    }

    /// The envelope id of the task's latest terminal frame.
    pub fn outbox_id(&self, key: &TaskKey) -> Option<String> {
        self.map.get(key).map(|c| c.outbox_id.clone())
    }
}

impl Worker {
    pub(super) fn on_dispatch(&mut self, mut env: Envelope, mut d: DispatchPayload) {
        self.ack_dispatch(&env.id, env.corr.take(), env.seq);
        // The task takes the dispatch's strings and parameters (moved, not copied: nothing
        // else reads `d` after this).
        let spec = self.task_spec(&env, &mut d);
        let key = spec.key.clone();
        // Only the refusals below need the details map: built when one happens (three
        // owned strings in a map were ~550 instructions on every dispatch).
        let details = || {
            task_details(
                Some(&spec.key.run_id),
                Some(&spec.key.task_id),
                Some(&spec.node_id),
            )
        };
        let fail = |w: &mut Worker, code: &str, message: &str, where_: &str| {
            let p = error_payload(code, message, where_, details());
            w.emit_terminal_error(key.clone(), env.seq, p, false);
        };

        if self.finished.get(&key).is_some() {
            self.stats.duplicates += 1;
            log!(
                self,
                Level::Info,
                "re-dispatch of a finished task: re-sending its terminal frame",
                "run_id" => &key.run_id,
                "task_id" => &key.task_id,
                "id" => &env.id,
            );
            self.resend_cached(&key);
            return;
        }
        // A re-dispatch of a task already in flight is a duplicate even while draining.
        if self.draining.is_some() && !self.admission.contains(&key) {
            return fail(
                self,
                codes::WORKER_DRAINING,
                "worker is draining and takes no new work; the task was not run",
                "worker.drain",
            );
        }

        match self.admission.check(&spec) {
            Verdict::Duplicate => {
                self.stats.duplicates += 1;
                log!(
                    self,
                    Level::Info,
                    "re-dispatch of a task already in flight: acked, not run again",
                    "run_id" => &key.run_id,
                    "task_id" => &key.task_id,
                    "id" => &env.id,
                );
                if self.cfg.duplicate_policy == DuplicatePolicy::ConcurrencyViolation {
                    let k = spec.concurrency_key.clone().unwrap_or_default();
                    let p = error_payload(
                        codes::CONCURRENCY_VIOLATION,
                        &format!("Concurrency key {k} already running"),
                        "worker.concurrency",
                        details(),
                    );
                    self.emit_terminal_error(key, env.seq, p, false);
                }
            }
            Verdict::Violation { key: ck, holder } => {
                self.stats.concurrency_violations += 1;
                log!(
                    self,
                    Level::Warn,
                    "concurrency key held by another task",
                    "concurrency_key" => &ck,
                    "holder" => holder.to_string(),
                    "task_id" => &key.task_id,
                );
                fail(
                    self,
                    codes::CONCURRENCY_VIOLATION,
                    &format!("Concurrency key {ck} already running"),
                    "worker.concurrency",
                );
            }
            Verdict::Start | Verdict::Queue => {
                if let Some(r) = d.resource_refs.as_ref().and_then(|r| r.first()) {
                    let msg = format!(
                        "resource {} (type {}, pinned to worker {}) is not held by this worker",
                        r.resource_id, r.kind, r.worker_id
                    );
                    return fail(self, codes::RESOURCE_MISSING, &msg, "worker.resources");
                }
                if !self.inventory.has_handler_parts(
                    &spec.package_name,
                    &spec.package_version,
                    &spec.node_type,
                ) {
                    let hk =
                        HandlerKey::new(&spec.package_name, &spec.package_version, &spec.node_type);
                    let msg = format!("Handler not registered: {hk}");
                    return fail(self, codes::RUNNER_FAILURE, &msg, "worker.runner");
                }
                self.dispatches.insert(
                    key.clone(),
                    DispatchMeta {
                        seq: env.seq,
                        node_id: spec.node_id.clone(),
                        metadata: spec.metadata.clone(),
                    },
                );
                match self.admission.admit(spec) {
                    Some(spec) => self.start_task(spec),
                    None => {
                        log!(
                            self,
                            Level::Debug,
                            "task queued: local limits reached",
                            "run_id" => &key.run_id,
                            "task_id" => &key.task_id,
                        )
                    }
                }
            }
        }
    }

    /// The task a dispatch describes, its strings and parameters moved out of `d` (the
    /// caller reads nothing else from it but `resource_refs`).
    fn task_spec(&self, env: &Envelope, d: &mut DispatchPayload) -> TaskSpec {
        let take = std::mem::take::<String>;
        let mut metadata = Map::new();
        if let Some(k) = &d.concurrency_key {
            metadata.insert("concurrency_key".into(), Value::String(k.clone()));
        }
        metadata.insert("constraints".into(), constraints_value(&d.constraints));
        if let Some(r) = &d.resource_refs {
            metadata.insert(
                "resource_refs".into(),
                serde_json::to_value(r).unwrap_or(Value::Null),
            );
        }
        if let Some(a) = &d.affinity {
            metadata.insert(
                "affinity".into(),
                serde_json::to_value(a).unwrap_or(Value::Null),
            );
        }
        TaskSpec {
            key: TaskKey {
                run_id: take(&mut d.run_id),
                task_id: take(&mut d.task_id),
            },
            node_id: take(&mut d.node_id),
            node_type: take(&mut d.node_type),
            package_name: take(&mut d.package_name),
            package_version: take(&mut d.package_version),
            parameters: std::mem::take(&mut d.parameters),
            timeout: d.constraints.timeout_ms.map(Duration::from_millis),
            concurrency_key: d.concurrency_key.take().filter(|k| !k.is_empty()),
            metadata,
            tenant: self.cfg.tenant.clone(),
            seq: env.seq,
            dispatch_id: env.id.clone(),
        }
    }

    fn start_task(&mut self, spec: TaskSpec) {
        self.stats.tasks_started += 1;
        self.push(Action::StartTask(Box::new(spec)));
    }

    pub(super) fn on_task_feedback(&mut self, task: TaskKey, fb: Feedback) {
        if !self.admission.is_running(&task) {
            log!(
                self,
                Level::Debug,
                "dropped feedback of a task that is not running",
                "run_id" => &task.run_id,
                "task_id" => &task.task_id,
            );
            return;
        }
        if !self.is_registered() {
            return;
        }
        let metadata = fb.metadata.map(|mut m| {
            for k in RESERVED_FEEDBACK_METADATA_KEYS {
                m.remove(k);
            }
            m
        });
        // Filtered in place: the same sorted map without rebuilding it.
        let mut metrics = fb.metrics;
        metrics.retain(|_, v| v.is_finite());
        // The payload takes the key's strings (nothing reads `task` after it).
        let TaskKey { run_id, task_id } = task;
        let corr = Some(task_id.clone());
        let payload = FeedbackPayload {
            run_id,
            task_id,
            stage: fb.stage.filter(|s| !s.is_empty()),
            progress: fb
                .progress
                .filter(|p| p.is_finite())
                .map(|p| p.clamp(0.0, 1.0)),
            message: fb.message,
            chunks: (!fb.chunks.is_empty()).then_some(fb.chunks),
            metrics: (!metrics.is_empty()).then_some(metrics),
            metadata,
        };
        let frame = self.build_frame(Head::new(FrameType::Feedback).corr(corr), &payload);
        self.send(frame);
    }

    pub(super) fn on_task_finished(&mut self, task: TaskKey, outcome: TaskOutcome) {
        if !self.admission.is_running(&task) {
            log!(
                self,
                Level::Warn,
                "ignored a completion for a task that is not running",
                "run_id" => &task.run_id,
                "task_id" => &task.task_id,
            );
            return;
        }
        self.stats.tasks_finished += 1;
        // Released first so `task` can move into the terminal frame below; admission state
        // reaches nothing that frame's building reads (the freed tasks start after it).
        let ready = self.admission.finish(&task);
        let meta = self.dispatches.remove(&task);
        let (seq, node_id, ctx_meta) = match meta {
            Some(m) => (m.seq, m.node_id, m.metadata),
            None => (None, task.task_id.clone(), Map::new()),
        };
        match outcome {
            TaskOutcome::Completed(c) => {
                let mut metadata = ctx_meta;
                metadata.extend(c.metadata);
                let artifacts: Vec<Artifact> = c
                    .artifacts
                    .into_iter()
                    .enumerate()
                    .filter(|(i, a)| a.validate_at(&format!("artifacts.{i}")).is_ok())
                    .map(|(_, a)| a)
                    .collect();
                let error = match (c.status, c.error) {
                    (_, Some(e)) => Some(ResultError {
                        code: if e.code.is_empty() {
                            codes::RUNNER_FAILURE.into()
                        } else {
                            e.code
                        },
                        message: non_empty_message(&e.message),
                        remediation: e.remediation,
                    }),
                    (TaskStatus::Failed, None) => Some(ResultError {
                        code: codes::RUNNER_FAILURE.into(),
                        message: "handler reported status FAILED".into(),
                        remediation: None,
                    }),
                    _ => None,
                };
                // The payload borrows the key's strings for the frame and gives them back.
                let TaskKey { run_id, task_id } = task;
                let corr = Some(task_id.clone());
                let payload = ResultPayload {
                    run_id,
                    task_id,
                    status: c.status,
                    result: c.result,
                    duration_ms: Some(c.duration_ms),
                    metadata: Some(metadata),
                    artifacts: (!artifacts.is_empty()).then_some(artifacts),
                    error,
                };
                let head = Head::new(FrameType::Result)
                    .corr(corr)
                    .seq(seq)
                    .request_ack();
                let frame = self.build_frame(head, &payload);
                let task = TaskKey {
                    run_id: payload.run_id,
                    task_id: payload.task_id,
                };
                let text: Arc<str> = Arc::from(frame.text());
                self.finished.remember(
                    task.clone(),
                    FrameType::Result,
                    text.clone(),
                    frame.id.clone(),
                );
                self.emit_durable_shared(frame, Some(task), text);
            }
            TaskOutcome::Failed(f) => {
                let p = error_payload(
                    &f.code,
                    &f.message,
                    "worker.runner",
                    task_details(Some(&task.run_id), Some(&task.task_id), Some(&node_id)),
                );
                self.emit_terminal_error(task, seq, p, true);
            }
        }
        for spec in ready {
            self.start_task(spec);
        }
    }

    /// Sends a `command.error` for a task (durably). `remember` caches it as the task's
    /// terminal answer for re-dispatches; errors about the dispatch itself (violations,
    /// unknown handler) are not cached so a later re-dispatch can still run.
    pub(super) fn emit_terminal_error(
        &mut self,
        task: TaskKey,
        seq: Option<u64>,
        payload: ErrorPayload,
        remember: bool,
    ) {
        let head = Head::new(FrameType::CommandError)
            .corr(Some(task.task_id.clone()))
            .seq(seq)
            .request_ack();
        let frame = self.build_frame(head, &payload);
        if remember {
            let text: Arc<str> = Arc::from(frame.text());
            self.finished.remember(
                task.clone(),
                FrameType::CommandError,
                text.clone(),
                frame.id.clone(),
            );
            self.emit_durable_shared(frame, Some(task), text);
        } else {
            self.emit_durable(frame, Some(task));
        }
    }

    /// Answers a re-dispatch of a finished task at once with a copy of its terminal frame
    /// under a fresh envelope id, even while an earlier copy still waits for its ack: that
    /// earlier copy may already have reached the scheduler before the re-dispatch, and its
    /// late ack must not settle the answer to the new dispatch (seed 8026). The fresh copy
    /// supersedes the earlier one in the outbox (persisted first, then the old entry is
    /// forgotten), so each task keeps exactly one live outbox entry and an ack of the old id
    /// no longer touches anything.
    fn resend_cached(&mut self, key: &TaskKey) {
        let Some(c) = self.finished.get(key).cloned() else {
            return;
        };
        // The cached text is in this worker's own layout (nearly always): the same bytes with
        // a new id and stamp, so the re-send carries the identical payload without a parse.
        if let Some(l) = super::frames::Layout::of(&c.frame) {
            let id = self.rng.uuid_v4();
            let text = l.with_id_ts(&id, self.cfg.wall.unix_micros(self.now));
            let (corr, seq) = (l.corr.map(str::to_string), l.seq);
            let frame = super::io::OutFrame::new(c.kind, id, corr, seq, text);
            return self.resend_frame(key, c, frame);
        }
        let Ok(mut env) = serde_json::from_str::<Envelope>(&c.frame) else {
            log!(
                self,
                Level::Error,
                "cached terminal frame is unreadable; cannot re-send",
                "task_id" => &key.task_id,
            );
            return;
        };
        env.id = self.rng.uuid_v4();
        env.ts = self.cfg.wall.rfc3339(self.now);
        let text = crate::v1::codec::encode(&env);
        let frame =
            super::io::OutFrame::new(c.kind, env.id.clone(), env.corr.clone(), env.seq, text);
        self.resend_frame(key, c, frame);
    }

    /// Sends `frame`, the fresh copy of the cached answer `c`, in place of the earlier copy.
    fn resend_frame(&mut self, key: &TaskKey, c: Cached, frame: super::io::OutFrame) {
        let text: Arc<str> = Arc::from(frame.text());
        self.finished
            .remember(key.clone(), c.kind, text.clone(), frame.id.clone());
        self.emit_durable_shared(frame, Some(key.clone()), text);
        self.supersede_outbox_entry(&c.outbox_id);
    }

    /// A frame that failed to decode: log it, and where an id can be recovered ack it and, for
    /// a dispatch, answer with `command.error` so the node does not hang (spec R12).
    pub(super) fn on_bad_frame(&mut self, e: DecodeError) {
        self.stats.frames_rejected += 1;
        let r = e.recovered.clone();
        let id = r.id.clone().unwrap_or_default();
        log!(
            self,
            Level::Warn,
            "rejected an invalid frame from the scheduler",
            "reason" => e.to_string(),
            "id" => &id,
            "type" => r.kind.as_deref().unwrap_or("?"),
        );
        let Some(id) = r.id.clone() else { return };
        let is_dispatch = r.kind.as_deref() == Some(FrameType::Dispatch.as_str());
        if is_dispatch && r.run_id.as_deref().is_none_or(str::is_empty) {
            // Without its run the scheduler would pin our command.error on whichever run last
            // dispatched a node with this corr (spec §3.7) and the real node, acked, would hang.
            // Unacked, it is re-dispatched after the ack timeout.
            return;
        }
        if r.ack_request || is_dispatch {
            let ack = self.ack_frame(&id, r.corr.clone(), r.seq);
            self.send(ack);
        }
        if !is_dispatch {
            return;
        }
        let task_id = r
            .task_id
            .clone()
            .or(r.corr.clone())
            .unwrap_or_else(|| id.clone());
        let run_id = r.run_id.clone().unwrap_or_default();
        let reason = match &e.kind {
            DecodeErrorKind::TooLarge { .. } => e.to_string(),
            _ => format!("invalid cmd.dispatch: {e}"),
        };
        let details = task_details(
            r.run_id.as_deref(),
            Some(&task_id),
            r.node_id.as_deref().or(Some(&task_id)),
        );
        let p = error_payload(codes::CMD_INVALID, &reason, "worker.codec", details);
        let key = TaskKey { run_id, task_id };
        if self.admission.contains(&key) {
            // A garbled copy of a task we already have must not fail it.
            return;
        }
        if self.finished.get(&key).is_some() {
            // Nor leave the re-dispatched node hanging: answer as for an intact duplicate.
            self.stats.duplicates += 1;
            return self.resend_cached(&key);
        }
        self.emit_terminal_error(key, r.seq, p, false);
    }
}

/// `serde_json::to_value(c)` without going through serde (every dispatch): `{}`, or
/// `{"timeout_ms": n}` (`constraints_value_is_serdes` compares the two).
fn constraints_value(c: &Constraints) -> Value {
    let Constraints { timeout_ms } = c;
    let mut m = Map::new();
    if let Some(t) = timeout_ms {
        m.insert("timeout_ms".into(), Value::from(*t));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_value_is_serdes() {
        for timeout_ms in [None, Some(0), Some(1), Some(30_000), Some(u64::MAX)] {
            let c = Constraints { timeout_ms };
            assert_eq!(
                constraints_value(&c),
                serde_json::to_value(&c).unwrap(),
                "{c:?}"
            );
        }
    }
}
