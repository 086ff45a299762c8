//! Run logic of the scheduler machine: readiness and `seq`, routing, dispatch with its ack
//! waiter and retry backoff, and the recording of results, `command.error` and feedback,
//! each reproducing what the c4bf80a code does (spec §3.5–§3.7, §5).

use super::io::{Attribution, SchedEvent};
use super::machine::{Scheduler, TimerKind};
use super::outbound::{dispatch_frame_at, DispatchFields};
use super::spec::{validate, RunSpec, SubmitError};
use super::state::{NodeState, NodeStatus, RunError, RunState, RunStatus};
use crate::time::Instant;
use crate::v1::envelope::Envelope;
use crate::v1::payloads::{ErrorPayload, FeedbackPayload, ResultPayload};
use serde_json::{Map, Value};

/// The code the scheduler records when it gives a node up (spec §5.2).
pub const DISPATCH_UNAVAILABLE: &str = "E.DISPATCH.UNAVAILABLE";
const WORKER_UNAVAILABLE: &str = "worker unavailable";
const ACK_TIMEOUT: &str = "ack timeout";

impl Scheduler {
    /// Starts a run: nodes without dependencies become ready (in spec order) and are
    /// dispatched at once.
    pub fn submit_run(&mut self, now: Instant, spec: RunSpec) -> Result<(), SubmitError> {
        validate(&spec)?;
        if self.run_index.contains_key(&spec.run_id) {
            return Err(SubmitError::DuplicateRun(spec.run_id));
        }
        let ri = self.runs.len();
        self.run_index.insert(spec.run_id.clone(), ri);
        self.runs.push(RunState {
            run_id: spec.run_id,
            tenant: spec.tenant,
            status: RunStatus::Queued,
            error: None,
            nodes: spec.nodes.into_iter().map(NodeState::new).collect(),
            next_seq: 1,
            last_dispatched: None,
            phantom_results: Default::default(),
            forced_failed: false,
            submitted_at: now,
            finished_at: None,
        });
        let ready: Vec<usize> = self.runs[ri]
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.spec.depends_on.is_empty())
            .map(|(i, _)| i)
            .collect();
        self.make_ready(now, ri, &ready);
        self.mark_dirty(ri);
        Ok(())
    }

    /// Assigns consecutive seqs in node order, then dispatches each (spec §5.4).
    fn make_ready(&mut self, now: Instant, ri: usize, nodes: &[usize]) {
        for &ni in nodes {
            let run = &mut self.runs[ri];
            let seq = run.next_seq;
            run.next_seq += 1;
            let node = &mut run.nodes[ni];
            node.status = NodeStatus::Queued;
            node.seq = Some(seq);
            node.failures = 0;
        }
        for &ni in nodes {
            self.try_dispatch(now, ri, ni);
        }
    }

    /// One dispatch attempt: the first session in registration order with the run's tenant
    /// and the exact package, ignoring load, health and package status (spec §4.3).
    pub(crate) fn try_dispatch(&mut self, now: Instant, ri: usize, ni: usize) {
        let run = &self.runs[ri];
        let node = &run.nodes[ni];
        let target = self
            .sessions
            .iter()
            .find(|s| {
                s.tenant == run.tenant
                    && s.has_package(&node.spec.package_name, &node.spec.package_version)
            })
            .map(|s| (s.conn, s.worker_id.clone()));
        let Some((conn, worker_id)) = target else {
            return self.dispatch_failed(now, ri, ni, WORKER_UNAVAILABLE);
        };
        let id = self.new_id();
        let ts = self.cfg.wall.unix_micros(now);
        let run = &self.runs[ri];
        let node = &run.nodes[ni];
        // Invariant: a node is dispatched only after `make_ready` gave it a seq.
        let seq = node.seq.unwrap_or(0);
        let text = dispatch_frame_at(
            &id,
            ts,
            &mut self.stamps,
            &DispatchFields {
                run_id: &run.run_id,
                tenant: &run.tenant,
                node_id: &node.spec.id,
                node_type: &node.spec.node_type,
                package_name: &node.spec.package_name,
                package_version: &node.spec.package_version,
                parameters: &node.spec.parameters,
                seq,
            },
        );
        self.actions
            .push_back(super::io::SchedAction::Send { conn, text });
        self.stats.dispatches_sent += 1;

        let run = &mut self.runs[ri];
        run.last_dispatched = Some(ni);
        let run_id = run.run_id.clone();
        let node = &mut run.nodes[ni];
        if let Some(old) = node.dispatch_id.replace(id.clone()) {
            self.pending_acks.remove(&old);
        }
        node.status = NodeStatus::Running;
        // The real scheduler resets `attempts` after every successful send, which is why a
        // connected worker that never acks is re-dispatched forever (spec §5.2).
        node.failures = 0;
        node.dispatch_count += 1;
        node.worker_id = Some(worker_id.clone());
        node.conn = Some(conn);
        node.pending_ack = true;
        let attempt = node.dispatch_count;
        let node_id = node.spec.id.clone();
        self.pending_acks.insert(
            id.clone(),
            super::machine::PendingAck {
                run: ri,
                node: ni,
                sent_at: now,
            },
        );
        self.set_timer(ri, ni, now + self.cfg.ack_timeout, TimerKind::AckDeadline);
        self.mark_dirty(ri);
        self.emit(SchedEvent::Dispatched {
            run_id,
            node_id,
            dispatch_id: id,
            conn,
            worker_id,
            attempt,
            seq,
        });
    }

    /// Counts a failed attempt and either schedules the next one after the backoff or, past
    /// `max_attempts`, gives the node up.
    fn dispatch_failed(&mut self, now: Instant, ri: usize, ni: usize, reason: &str) {
        let node = &mut self.runs[ri].nodes[ni];
        node.failures = node.failures.saturating_add(1);
        let failures = node.failures;
        if failures > self.cfg.max_attempts {
            return self.give_up(ri, ni, reason);
        }
        let retry_at = now + self.cfg.retry_delay(failures);
        self.set_timer(ri, ni, retry_at, TimerKind::Retry);
        let (run_id, node_id) = self.names(ri, ni);
        self.emit(SchedEvent::DispatchPending {
            run_id,
            node_id,
            failures,
            retry_at,
            reason: reason.into(),
        });
    }

    /// Records the command.error-style failure of spec §5.2: node and run `failed`,
    /// dependents not released.
    fn give_up(&mut self, ri: usize, ni: usize, reason: &str) {
        self.cancel_timer(ri, ni);
        let (run_id, node_id) = self.names(ri, ni);
        let mut details = Map::new();
        details.insert("run_id".into(), Value::String(run_id.clone()));
        details.insert("node_id".into(), Value::String(node_id.clone()));
        details.insert("worker".into(), Value::Null);
        let err = RunError {
            code: DISPATCH_UNAVAILABLE.into(),
            message: reason.into(),
            details: Some(details),
        };
        let run = &mut self.runs[ri];
        run.error = Some(err.clone());
        let node = &mut run.nodes[ni];
        let failures = node.failures;
        node.status = NodeStatus::Failed;
        node.pending_ack = false;
        node.error = Some(err);
        self.stats.dispatch_unavailable += 1;
        self.mark_dirty(ri);
        self.emit(SchedEvent::DispatchUnavailable {
            run_id,
            node_id,
            failures,
            reason: reason.into(),
        });
    }

    pub(crate) fn dispatch_acked(&mut self, ri: usize, ni: usize, dispatch_id: String) {
        self.cancel_timer(ri, ni);
        self.runs[ri].nodes[ni].pending_ack = false;
        self.stats.dispatch_acks += 1;
        let (run_id, node_id) = self.names(ri, ni);
        self.emit(SchedEvent::DispatchAcked {
            run_id,
            node_id,
            dispatch_id,
        });
    }

    /// The ack waiter fired: the node goes back to the queue whatever its status, even if a
    /// result already finished it (spec §5.5), and is retried after the backoff.
    pub(crate) fn ack_deadline_passed(&mut self, now: Instant, ri: usize, ni: usize) {
        let node = &mut self.runs[ri].nodes[ni];
        let dispatch_id = node.dispatch_id.clone().unwrap_or_default();
        let seq = node.seq.unwrap_or(0);
        node.status = NodeStatus::Queued;
        node.pending_ack = false;
        self.pending_acks.remove(&dispatch_id);
        self.stats.ack_timeouts += 1;
        self.mark_dirty(ri);
        let (run_id, node_id) = self.names(ri, ni);
        self.emit(SchedEvent::AckTimeout {
            run_id,
            node_id,
            dispatch_id,
            seq,
        });
        self.dispatch_failed(now, ri, ni, ACK_TIMEOUT);
    }

    fn names(&self, ri: usize, ni: usize) -> (String, String) {
        let run = &self.runs[ri];
        (run.run_id.clone(), run.nodes[ni].spec.id.clone())
    }

    // -------------------------------------------------------------------------------------
    // results, errors, feedback

    /// Every copy is applied: no dedupe, no seq or state check (spec §3.5, §5.5).
    /// Takes the decoded box and keeps it as the node's `last_result` (moving the payload out
    /// and boxing it again was a free, an allocation and two copies of it per result).
    pub(crate) fn on_result(&mut self, now: Instant, p: Box<ResultPayload>) {
        self.stats.results_received += 1;
        let status = NodeStatus::from_result(p.status);
        let Some(&ri) = self.run_index.get(&p.run_id) else {
            self.stats.results_unknown_run += 1;
            return self.emit(SchedEvent::ResultIgnored {
                run_id: p.run_id,
                task_id: p.task_id,
            });
        };
        let run = &mut self.runs[ri];
        let Some(ni) = run.node_index(&p.task_id) else {
            let count = run.phantom_results.entry(p.task_id.clone()).or_default();
            *count += 1;
            let duplicate = *count > 1;
            self.stats.phantom_results += 1;
            let run_id = p.run_id;
            return self.emit(SchedEvent::ResultRecorded {
                run_id,
                node_id: p.task_id,
                status,
                duplicate,
                phantom: true,
            });
        };
        let error = p.error.as_ref().map(|e| RunError {
            code: e.code.clone(),
            message: e.message.clone(),
            details: None,
        });
        if let Some(e) = &error {
            run.error = Some(e.clone());
        }
        let node = &mut run.nodes[ni];
        let duplicate = node.results_received > 0;
        node.results_received += 1;
        node.status = status;
        node.error = error;
        node.last_result = Some(p);
        if duplicate {
            self.stats.duplicate_results += 1;
        }
        self.mark_dirty(ri);
        let (run_id, node_id) = self.names(ri, ni);
        self.emit(SchedEvent::ResultRecorded {
            run_id,
            node_id,
            status,
            duplicate,
            phantom: false,
        });
        self.release_dependents(now, ri, ni);
    }

    /// Releases the dependents of a node that got a result, whatever its status: a FAILED
    /// result releases them too.
    fn release_dependents(&mut self, now: Instant, ri: usize, done: usize) {
        let run = &mut self.runs[ri];
        let mut ready = Vec::new();
        if self.cfg.fan_in_counter_bug {
            let done_id = run.nodes[done].spec.id.clone();
            for (j, n) in run.nodes.iter_mut().enumerate() {
                let edges = n.spec.depends_on.iter().filter(|d| **d == done_id).count();
                for _ in 0..edges {
                    if n.status == NodeStatus::Pending && n.pending_edges > 0 {
                        n.pending_edges -= 1;
                        if n.pending_edges == 0 {
                            ready.push(j);
                        }
                    }
                }
            }
        } else {
            let nodes = &run.nodes;
            let done_id = nodes[done].spec.id.as_str();
            // "Some node with this id is terminal": a scan of the few nodes instead of a
            // set of terminal ids built for every result.
            let terminal = |d: &str| {
                nodes
                    .iter()
                    .any(|m| m.spec.id == d && m.status.is_terminal())
            };
            for (j, n) in nodes.iter().enumerate() {
                if n.status == NodeStatus::Pending
                    && n.spec.depends_on.iter().any(|d| d == done_id)
                    && n.spec.depends_on.iter().all(|d| terminal(d))
                {
                    ready.push(j);
                }
            }
        }
        self.make_ready(now, ri, &ready);
    }

    /// Spec §3.7: run by `context.details.run_id|runId|run`, else the run whose last
    /// dispatched task is `corr`; node by `corr`, else the run's last dispatched node.
    pub(crate) fn on_command_error(&mut self, _now: Instant, env: &Envelope, mut p: ErrorPayload) {
        self.stats.command_errors += 1;
        // The payload is ours: its details move into the error instead of being copied.
        let details = p.context.take().and_then(|c| c.details);
        let named_run = details
            .as_ref()
            .and_then(|d| {
                ["run_id", "runId", "run"]
                    .iter()
                    .find_map(|k| d.get(*k).and_then(Value::as_str))
            })
            .and_then(|r| self.run_index.get(r).copied());
        let corr = env.corr.as_deref();
        let ri = named_run.or_else(|| {
            let c = corr?;
            self.runs
                .iter()
                .position(|r| r.last_dispatched.is_some_and(|i| r.nodes[i].spec.id == c))
        });
        let Some(ri) = ri else {
            return self.emit(SchedEvent::CommandErrorRecorded {
                run_id: None,
                node_id: None,
                code: p.code,
                message: p.message,
                attribution: Attribution::NoRun,
            });
        };
        let err = RunError {
            code: p.code.clone(),
            message: p.message.clone(),
            details,
        };
        let run = &mut self.runs[ri];
        run.error = Some(err.clone());
        let (ni, attribution) = match corr.and_then(|c| run.node_index(c)) {
            Some(i) => (Some(i), Attribution::Corr),
            None => match run.last_dispatched {
                Some(i) => (Some(i), Attribution::LastDispatched),
                None => (None, Attribution::RunOnly),
            },
        };
        match ni {
            Some(i) => {
                run.nodes[i].status = NodeStatus::Failed;
                run.nodes[i].error = Some(err);
            }
            None => run.forced_failed = true,
        }
        let run_id = run.run_id.clone();
        let node_id = ni.map(|i| run.nodes[i].spec.id.clone());
        self.mark_dirty(ri);
        self.emit(SchedEvent::CommandErrorRecorded {
            run_id: Some(run_id),
            node_id,
            code: p.code,
            message: p.message,
            attribution,
        });
    }

    /// Records stage/progress/message and merges `metadata.results` (or `{summary}`) into
    /// the node's partial result. Unknown runs and tasks are ignored.
    pub(crate) fn on_feedback(&mut self, _now: Instant, p: &mut FeedbackPayload) {
        // Borrowed from the decoded box (not moved onto the stack); what the node keeps and
        // the event does not (message, metadata) is taken out of it, not cloned.
        self.stats.feedback_received += 1;
        let Some(&ri) = self.run_index.get(&p.run_id) else {
            return;
        };
        let Some(ni) = self.runs[ri].node_index(&p.task_id) else {
            return;
        };
        let node = &mut self.runs[ri].nodes[ni];
        node.feedback_count += 1;
        if p.stage.is_some() {
            node.last_stage = p.stage.clone();
        }
        if p.progress.is_some() {
            node.last_progress = p.progress;
        }
        if p.message.is_some() {
            node.last_message = p.message.take();
        }
        if let Some(mut meta) = p.metadata.take() {
            // `results` wins when it is an object; `summary` counts only without `results`.
            match meta.remove("results") {
                Some(Value::Object(results)) => {
                    for (k, v) in results {
                        node.partial_result.insert(k, v);
                    }
                }
                None => {
                    if let Some(summary) = meta.remove("summary") {
                        node.partial_result.insert("summary".into(), summary);
                    }
                }
                Some(_) => {}
            }
        }
        let (run_id, node_id) = self.names(ri, ni);
        self.emit(SchedEvent::FeedbackRecorded {
            run_id,
            node_id,
            stage: p.stage.take(),
            progress: p.progress,
        });
    }

    /// Recomputes the status of every run touched by this input; the first time a run is
    /// terminal, `RunFinished` is emitted (later flips are recorded but not re-announced).
    pub(crate) fn refresh_dirty_runs(&mut self, now: Instant) {
        if self.dirty.is_empty() {
            return;
        }
        let mut dirty = std::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for &ri in &dirty {
            let Some(run) = self.runs.get_mut(ri) else {
                continue;
            };
            run.status = run.roll_up();
            if run.status.is_terminal() && run.finished_at.is_none() {
                run.finished_at = Some(now);
                let (run_id, status) = (run.run_id.clone(), run.status);
                self.emit(SchedEvent::RunFinished { run_id, status });
            }
        }
        // Nothing marks runs while they are refreshed: hand the emptied buffer back.
        dirty.clear();
        self.dirty = dirty;
    }
}
