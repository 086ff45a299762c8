//! Unit tests of the worker machine, driven by hand-made scheduler frames. Every frame the
//! worker emits is checked against the strict codec (what the scheduler would accept).

use super::*;
use crate::secret::Secret;
use crate::v1::codec::{decode, Body, DEFAULT_MAX_FRAME_BYTES};
use crate::v1::payloads::{PackageEntry, PackageStatus, TaskStatus};
use crate::work::{HandlerKey, TaskKey, TaskOutcome};
use serde_json::{json, Value};
use std::time::Duration;

const TS: &str = "2025-11-03T13:21:00.100000+00:00";

struct H {
    w: Worker,
    now: Instant,
    log: Vec<Action>,
}

fn inventory() -> Inventory {
    let mut inv = Inventory::default();
    inv.packages.insert(PackageEntry {
        name: "p".into(),
        version: "1".into(),
        status: PackageStatus::Installed,
    });
    for t in ["echo", "sleep"] {
        inv.handlers.insert(HandlerKey::new("p", "1", t));
    }
    inv
}

fn cfg() -> WorkerConfig {
    WorkerConfig {
        worker_id: "w1".into(),
        auth_token: Some(Secret::new("s3cret-token")),
        max_parallel: 4,
        seed: 7,
        ..WorkerConfig::default()
    }
}

impl H {
    fn new(cfg: WorkerConfig) -> H {
        let mut h = H {
            w: Worker::new(cfg),
            now: Instant::ZERO,
            log: Vec::new(),
        };
        h.input(Input::SetInventory(inventory()));
        h
    }

    /// Applies an input and returns the actions, validating every outbound frame.
    fn input(&mut self, i: Input) -> Vec<Action> {
        let what = format!("{i:?}");
        self.w.handle(self.now, i);
        // The kept earliest resend deadline is the one a scan of every tracked frame finds.
        assert_eq!(
            self.w.rel.next_deadline(),
            self.w.rel.next_deadline_by_scan(),
            "after {what}"
        );
        let mut out = Vec::new();
        while let Some(a) = self.w.poll_action() {
            if let Action::Send(f) = &a {
                let d = decode(f.text(), DEFAULT_MAX_FRAME_BYTES)
                    .unwrap_or_else(|e| panic!("worker sent an invalid frame: {e}\n{}", f.text()));
                assert_eq!(d.env.sender.id, "w1");
                assert!(
                    d.body.frame_type().is_some_and(|t| t.worker_sends()),
                    "worker sent {:?}",
                    d.body
                );
                assert!(
                    !f.log_text().contains("s3cret-token"),
                    "token leaked into the log text"
                );
            }
            out.push(a.clone());
            self.log.push(a);
        }
        out
    }

    /// Advances virtual time, firing every timer on the way.
    fn advance(&mut self, d: Duration) -> Vec<Action> {
        let target = self.now + d;
        let mut out = Vec::new();
        while let Some(t) = self.w.poll_timeout() {
            if t > target {
                break;
            }
            self.now = t.max(self.now);
            out.extend(self.input(Input::Tick));
        }
        self.now = target;
        out
    }

    fn frame(&mut self, text: String) -> Vec<Action> {
        self.input(Input::Frame(Incoming::Text(text)))
    }

    fn ack(&mut self, for_id: &str) -> Vec<Action> {
        self.frame(sched_ack(for_id))
    }

    fn up(&mut self) {
        self.input(Input::Start);
        let a = self.input(Input::Connected);
        let hs = sent(&a, "handshake").remove(0);
        let a = self.ack(&id_of(&hs));
        let reg = sent(&a, "register").remove(0);
        let a = self.ack(&id_of(&reg));
        assert_eq!(sent(&a, "heartbeat").len(), 1);
        assert!(self.w.is_registered());
    }
}

fn sched_ack(for_id: &str) -> String {
    json!({"type":"ack","id":format!("sa-{for_id}"),"ts":TS,"tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"ack":{"for":for_id},"payload":{"ok":true,"for":for_id}}).to_string()
}

fn dispatch(id: &str, task: &str, node_type: &str, key: &str) -> String {
    json!({"type":"cmd.dispatch","id":id,"ts":TS,"corr":task,"seq":3,"tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"ack":{"request":true},
           "payload":{"run_id":"r1","task_id":task,"node_id":task,"node_type":node_type,"package_name":"p","package_version":"1","parameters":{"x":1},"constraints":{},"concurrency_key":key}}).to_string()
}

fn sent(actions: &[Action], kind: &str) -> Vec<Value> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(f) if f.kind.as_str() == kind => {
                Some(serde_json::from_str(f.text()).unwrap())
            }
            _ => None,
        })
        .collect()
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn started(actions: &[Action]) -> Vec<TaskKey> {
    actions
        .iter()
        .filter_map(|a| {
            if let Action::StartTask(s) = a {
                Some(s.key.clone())
            } else {
                None
            }
        })
        .collect()
}

fn key(task: &str) -> TaskKey {
    TaskKey {
        run_id: "r1".into(),
        task_id: task.into(),
    }
}

#[test]
fn handshake_waits_for_ack_before_register_then_heartbeats_on_cadence() {
    let mut h = H::new(cfg());
    assert_eq!(h.input(Input::Start).first(), Some(&Action::Connect));
    let a = h.input(Input::Connected);
    let hs = sent(&a, "handshake");
    assert_eq!(hs.len(), 1);
    assert_eq!(
        hs[0]["payload"]["auth"]["token"], "s3cret-token",
        "the wire carries the token"
    );
    assert!(
        sent(&a, "register").is_empty(),
        "register must wait for the handshake ack"
    );
    let a = h.ack(&id_of(&hs[0]));
    let reg = sent(&a, "register");
    assert_eq!(
        reg[0]["payload"]["packages"],
        json!([{"name":"p","version":"1","status":"installed"}])
    );
    assert_eq!(
        reg[0]["payload"]["capabilities"]["concurrency"]["max_parallel"],
        4
    );
    let a = h.ack(&id_of(&reg[0]));
    assert_eq!(sent(&a, "heartbeat").len(), 1);
    assert_eq!(h.w.state(), SessionState::Heartbeating);
    // next heartbeats: interval + U(0, jitter) apart
    let mut last = h.now;
    for _ in 0..5 {
        let a = h.advance(Duration::from_secs(36));
        let n = sent(&a, "heartbeat").len();
        assert_eq!(
            n, 1,
            "exactly one heartbeat per 36 s window at 30 s + U(0,5)"
        );
        let _ = last;
        last = h.now;
    }
}

#[test]
fn unacked_handshake_is_retried_then_the_session_is_dropped_and_retried_with_backoff() {
    let mut h = H::new(cfg());
    h.input(Input::Start);
    let a = h.input(Input::Connected);
    let id = id_of(&sent(&a, "handshake")[0]);
    let a = h.advance(Duration::from_secs(30));
    let resends: Vec<_> = sent(&a, "handshake");
    assert_eq!(resends.len(), 6, "six resends by default");
    assert!(
        resends.iter().all(|f| id_of(f) == id),
        "resends are byte-identical copies"
    );
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Close { code: 1001, .. })));
    assert!(
        a.iter().any(|x| matches!(x, Action::Connect)),
        "reconnects after backoff"
    );
}

#[test]
fn dispatch_is_acked_twice_runs_once_and_its_result_is_durable() {
    let mut h = H::new(cfg());
    h.up();
    let a = h.frame(dispatch("d1", "n1", "echo", "r1:n1"));
    let acks = sent(&a, "ack");
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["ack"]["for"], "d1");
    assert_eq!(acks[0]["corr"], "n1");
    assert_eq!(acks[0]["seq"], 3);
    assert_eq!(started(&a), vec![key("n1")]);
    let a = h.advance(Duration::from_millis(250));
    let second = sent(&a, "ack");
    assert_eq!(second.len(), 1, "a second ack ~200 ms later (spec R1)");
    assert_eq!(second[0]["ack"]["for"], "d1");
    assert_ne!(id_of(&second[0]), id_of(&acks[0]));

    let a = h.input(Input::TaskFinished {
        task: key("n1"),
        outcome: TaskOutcome::succeeded(json!({"y":2}).as_object().unwrap().clone(), 5),
    });
    let persist = a
        .iter()
        .position(|x| matches!(x, Action::Persist(_)))
        .expect("persisted");
    let send = a
        .iter()
        .position(|x| matches!(x, Action::Send(f) if f.kind.as_str() == "result"))
        .expect("sent");
    assert!(persist < send, "persist before send");
    let r = &sent(&a, "result")[0];
    assert_eq!(r["corr"], "n1", "corr is the task id (R2)");
    assert_eq!(r["seq"], 3);
    assert_eq!(r["ack"]["request"], true);
    assert_eq!(r["payload"]["status"], "SUCCEEDED");
    assert_eq!(r["payload"]["metadata"]["concurrency_key"], "r1:n1");
    assert_eq!(h.w.outbox_len(), 1);
    let a = h.ack(&id_of(r));
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Forget { id } if *id == id_of(r))));
    assert_eq!(h.w.outbox_len(), 0);
}

#[test]
fn duplicates_are_not_rerun_and_finished_ones_get_the_cached_result() {
    let mut h = H::new(cfg());
    h.up();
    h.frame(dispatch("d1", "n1", "echo", "r1:n1"));
    let a = h.frame(dispatch("d2", "n1", "echo", "r1:n1"));
    assert!(
        started(&a).is_empty(),
        "running duplicate not started again"
    );
    assert_eq!(sent(&a, "ack")[0]["ack"]["for"], "d2");
    assert!(
        sent(&a, "command.error").is_empty(),
        "attach policy sends no error"
    );
    let a = h.input(Input::TaskFinished {
        task: key("n1"),
        outcome: TaskOutcome::succeeded(Default::default(), 1),
    });
    let first = sent(&a, "result").remove(0);
    h.ack(&id_of(&first));
    let a = h.frame(dispatch("d3", "n1", "echo", "r1:n1"));
    assert!(started(&a).is_empty());
    let again = sent(&a, "result");
    assert_eq!(
        again.len(),
        1,
        "finished duplicate answered with the cached result"
    );
    assert_ne!(id_of(&again[0]), id_of(&first), "under a new envelope id");
    assert_eq!(again[0]["payload"], first["payload"]);
}

#[test]
fn another_task_with_a_held_concurrency_key_is_a_violation_without_running() {
    let mut h = H::new(cfg());
    h.up();
    h.frame(dispatch("d1", "n1", "echo", "shared"));
    let a = h.frame(dispatch("d2", "n2", "echo", "shared"));
    assert!(started(&a).is_empty());
    let e = &sent(&a, "command.error")[0];
    assert_eq!(e["payload"]["code"], "E.CMD.CONCURRENCY_VIOLATION");
    assert_eq!(
        e["payload"]["message"],
        "Concurrency key shared already running"
    );
    assert_eq!(e["corr"], "n2");
    assert_eq!(e["payload"]["context"]["details"]["run_id"], "r1");
}

#[test]
fn unknown_handler_and_invalid_payload_each_get_one_clear_error() {
    let mut h = H::new(cfg());
    h.up();
    let a = h.frame(dispatch("d1", "n1", "nope", "r1:n1"));
    let e = &sent(&a, "command.error")[0];
    assert_eq!(e["payload"]["code"], "E.RUNNER.FAILURE");
    assert_eq!(
        e["payload"]["message"],
        "Handler not registered: ('p', '1', 'nope')"
    );
    let bad = dispatch("d2", "n2", "echo", "r1:n2")
        .replace("\"constraints\":{}", "\"constraints\":{},\"extra\":true");
    let a = h.frame(bad);
    assert_eq!(
        sent(&a, "ack")[0]["ack"]["for"],
        "d2",
        "acked although invalid"
    );
    let e = &sent(&a, "command.error")[0];
    assert_eq!(e["payload"]["code"], "E.CMD.INVALID");
    assert!(
        e["payload"]["message"].as_str().unwrap().contains("extra"),
        "{e}"
    );
    assert_eq!(e["corr"], "n2");
    assert!(started(&a).is_empty());
    // garbage and binary frames: no panic, session kept
    h.frame("{not json".into());
    h.input(Input::Frame(Incoming::Binary(10)));
    assert!(h.w.is_registered());
}

#[test]
fn max_parallel_queues_after_acking_and_starts_in_order() {
    let mut h = H::new(WorkerConfig {
        max_parallel: 1,
        ..cfg()
    });
    h.up();
    let a1 = h.frame(dispatch("d1", "n1", "echo", "r1:n1"));
    let a2 = h.frame(dispatch("d2", "n2", "echo", "r1:n2"));
    assert_eq!(started(&a1), vec![key("n1")]);
    assert!(started(&a2).is_empty());
    assert_eq!(sent(&a2, "ack").len(), 1, "queued work is acked at once");
    let a = h.input(Input::TaskFinished {
        task: key("n1"),
        outcome: TaskOutcome::succeeded(Default::default(), 1),
    });
    assert_eq!(started(&a), vec![key("n2")]);
}

#[test]
fn reconnect_replays_the_outbox_and_repeats_handshake_register_after_a_second() {
    let mut h = H::new(cfg());
    h.up();
    h.frame(dispatch("d1", "n1", "echo", "r1:n1"));
    let a = h.input(Input::TaskFinished {
        task: key("n1"),
        outcome: TaskOutcome::succeeded(Default::default(), 1),
    });
    let result_id = id_of(&sent(&a, "result")[0]);
    h.input(Input::Disconnected {
        reason: "reset".into(),
    });
    assert_eq!(h.w.state(), SessionState::Backoff);
    let a = h.advance(Duration::from_millis(600));
    assert!(a.iter().any(|x| matches!(x, Action::Connect)));
    let a = h.input(Input::Connected);
    let hs = id_of(&sent(&a, "handshake")[0]);
    let a = h.ack(&hs);
    let reg = id_of(&sent(&a, "register")[0]);
    let a = h.ack(&reg);
    let replay = sent(&a, "result");
    assert_eq!(replay.len(), 1);
    assert_eq!(id_of(&replay[0]), result_id, "same frame re-sent");
    let a = h.advance(Duration::from_millis(1100));
    let hs2 = sent(&a, "handshake");
    assert_eq!(
        hs2.len(),
        1,
        "repeat handshake ~1 s after re-registering (spec §4.5)"
    );
    let a = h.ack(&id_of(&hs2[0]));
    assert_eq!(sent(&a, "register").len(), 1);
    assert_eq!(h.w.stats().reconnects, 1);
}

/// Seed 8026: the scheduler re-dispatched a finished task while its result was still unacked
/// in the outbox; the worker acked and sent nothing, then the late ack of the earlier copy
/// cleared the outbox and the node stayed `running`. The re-dispatch must get its own copy
/// at once, retried until *its* ack, and the old copy's ack must not settle it.
#[test]
fn redispatch_while_result_is_unacked_gets_a_fresh_copy_that_the_old_ack_does_not_settle() {
    let mut h = H::new(cfg());
    h.up();
    h.frame(dispatch("d1", "n1", "echo", "r1:n1"));
    let a = h.input(Input::TaskFinished {
        task: key("n1"),
        outcome: TaskOutcome::succeeded(json!({"y":2}).as_object().unwrap().clone(), 5),
    });
    let first = sent(&a, "result").remove(0);
    let old = id_of(&first);

    let a = h.frame(dispatch("d2", "n1", "echo", "r1:n1"));
    assert!(started(&a).is_empty(), "a finished task is not run again");
    let again = sent(&a, "result");
    assert_eq!(again.len(), 1, "the re-dispatch is answered at once: {a:?}");
    let new = id_of(&again[0]);
    assert_ne!(new, old, "under a fresh envelope id, so its ack is its own");
    assert_eq!(again[0]["payload"], first["payload"]);
    assert_eq!(again[0]["seq"], first["seq"]);
    assert_eq!(again[0]["corr"], "n1");
    let persist_new = a
        .iter()
        .position(|x| matches!(x, Action::Persist(e) if e.id == new))
        .expect("the fresh copy is persisted");
    let forget_old = a
        .iter()
        .position(|x| matches!(x, Action::Forget { id } if *id == old))
        .expect("the superseded copy is forgotten");
    assert!(
        persist_new < forget_old,
        "persist the new copy before forgetting the old: a crash in between must not lose it"
    );
    assert_eq!(h.w.outbox_len(), 1, "one live outbox entry for the task");

    // The earlier copy's delayed ack arrives: it settles nothing.
    let a = h.ack(&old);
    assert!(
        !a.iter().any(|x| matches!(x, Action::Forget { .. })),
        "the old copy's ack must not cancel the answer to the re-dispatch: {a:?}"
    );
    assert_eq!(h.w.outbox_len(), 1);
    let a = h.advance(Duration::from_secs(1));
    let resent = sent(&a, "result");
    assert!(
        !resent.is_empty() && resent.iter().all(|r| id_of(r) == new),
        "the fresh copy is retried until its own ack, the old one never again: {resent:?}"
    );

    let a = h.ack(&new);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Forget { id } if *id == new)));
    assert_eq!(h.w.outbox_len(), 0);
    let a = h.advance(Duration::from_secs(30));
    assert!(
        sent(&a, "result").is_empty(),
        "settled: nothing more to send"
    );
}

/// A crash between persisting a re-send and forgetting the copy it superseded leaves both on
/// disk; the restart keeps only the newer, so the task still has one live outbox entry.
#[test]
fn restore_keeps_only_the_newest_terminal_copy_of_a_task() {
    let mut h = H::new(cfg());
    let frame = |id: &str| {
        json!({"type":"result","id":id,"ts":TS,"corr":"n9","seq":1,"tenant":"default","sender":{"role":"worker","id":"w1"},"ack":{"request":true},
               "payload":{"run_id":"r1","task_id":"n9","status":"SUCCEEDED","result":{}}}).to_string()
    };
    let entry = |id: &str| OutboxEntry {
        id: id.into(),
        kind: crate::v1::FrameType::Result,
        task: Some(key("n9")),
        frame: frame(id),
    };
    let a = h.input(Input::Restore(vec![entry("old-1"), entry("new-2")]));
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Forget { id } if id == "old-1")));
    assert_eq!(h.w.outbox_len(), 1);
    h.input(Input::Start);
    let a = h.input(Input::Connected);
    let a = h.ack(&id_of(&sent(&a, "handshake")[0]));
    let a = h.ack(&id_of(&sent(&a, "register")[0]));
    let replayed: Vec<String> = sent(&a, "result").iter().map(id_of).collect();
    assert_eq!(replayed, vec!["new-2".to_string()]);
}

#[test]
fn restored_outbox_is_sent_after_registration_and_answers_redispatch() {
    let mut h = H::new(cfg());
    let frame = json!({"type":"result","id":"old-1","ts":TS,"corr":"n9","seq":1,"tenant":"default","sender":{"role":"worker","id":"w1"},"ack":{"request":true},
                       "payload":{"run_id":"r1","task_id":"n9","status":"SUCCEEDED","result":{}}}).to_string();
    h.input(Input::Restore(vec![OutboxEntry {
        id: "old-1".into(),
        kind: crate::v1::FrameType::Result,
        task: Some(key("n9")),
        frame,
    }]));
    h.input(Input::Start);
    let a = h.input(Input::Connected);
    let a = h.ack(&id_of(&sent(&a, "handshake")[0]));
    let a = h.ack(&id_of(&sent(&a, "register")[0]));
    assert_eq!(id_of(&sent(&a, "result")[0]), "old-1");
    let a = h.frame(dispatch("d9", "n9", "echo", "r1:n9"));
    assert!(
        started(&a).is_empty(),
        "a task whose result is in the outbox is not re-run"
    );
    // Answered with a fresh copy that supersedes the restored one.
    let again = sent(&a, "result").remove(0);
    assert_ne!(id_of(&again), "old-1");
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Forget { id } if id == "old-1")));
    let a = h.ack(&id_of(&again));
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Forget { id } if *id == id_of(&again))));
    assert_eq!(h.w.outbox_len(), 0);
}

#[test]
fn drain_reregisters_empty_refuses_new_work_finishes_and_closes() {
    let mut h = H::new(cfg());
    h.up();
    h.frame(dispatch("d1", "n1", "sleep", "r1:n1"));
    let a = h.input(Input::Command(Command::Drain));
    assert_eq!(sent(&a, "register")[0]["payload"]["packages"], json!([]));
    assert_eq!(h.w.state(), SessionState::Draining);
    let a = h.frame(dispatch("d2", "n2", "echo", "r1:n2"));
    assert_eq!(
        sent(&a, "command.error")[0]["payload"]["code"],
        "E.WORKER.DRAINING"
    );
    let err_id = id_of(&sent(&a, "command.error")[0]);
    h.ack(&err_id);
    let a = h.input(Input::TaskFinished {
        task: key("n1"),
        outcome: TaskOutcome::succeeded(Default::default(), 1),
    });
    let r = id_of(&sent(&a, "result")[0]);
    assert!(
        !a.iter().any(|x| matches!(x, Action::Stopped)),
        "waits for the result ack"
    );
    let a = h.ack(&r);
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::Close { code: 1000, .. })));
    assert!(a.iter().any(|x| matches!(x, Action::Stopped)));
    assert_eq!(h.w.state(), SessionState::Closed);
}

#[test]
fn drain_grace_expiry_cancels_running_tasks_and_fails_queued_ones() {
    let mut h = H::new(WorkerConfig {
        max_parallel: 1,
        drain_grace: Duration::from_secs(2),
        ..cfg()
    });
    h.up();
    h.frame(dispatch("d1", "n1", "sleep", "r1:n1"));
    h.frame(dispatch("d2", "n2", "sleep", "r1:n2"));
    h.input(Input::Command(Command::Drain));
    let a = h.advance(Duration::from_secs(3));
    assert!(a
        .iter()
        .any(|x| matches!(x, Action::CancelTask { task, .. } if *task == key("n1"))));
    let mut errs = sent(&a, "command.error");
    errs.dedup_by_key(|e| id_of(e)); // unacked, so it is also resent within the window
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0]["payload"]["code"], "E.RUNNER.CANCELLED");
    assert_eq!(errs[0]["corr"], "n2");
}

#[test]
fn package_install_runs_on_the_host_and_reports_then_reregisters() {
    let mut h = H::new(cfg());
    h.up();
    let install = json!({"type":"pkg.install","id":"pi1","ts":TS,"tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"ack":{"request":true},
                         "payload":{"name":"q","version":"2.0.0","url":"file:///x.tgz"}}).to_string();
    let a = h.frame(install);
    assert_eq!(sent(&a, "ack")[0]["ack"]["for"], "pi1");
    let op_id = a
        .iter()
        .find_map(|x| {
            if let Action::Package { op_id, .. } = x {
                Some(*op_id)
            } else {
                None
            }
        })
        .expect("package op");
    let mut inv = inventory();
    inv.packages.insert(PackageEntry {
        name: "q".into(),
        version: "2.0.0".into(),
        status: PackageStatus::Installed,
    });
    let a = h.input(Input::PackageOpFinished(PackageOpDone {
        op_id,
        name: "q".into(),
        version: "2.0.0".into(),
        install: true,
        outcome: Ok(()),
        inventory: inv,
    }));
    let ev = &sent(&a, "pkg.event")[0];
    assert_eq!(ev["payload"]["status"], "installed");
    assert!(a.iter().any(|x| matches!(x, Action::Persist(_))));
    let reg = &sent(&a, "register")[0];
    assert_eq!(reg["payload"]["packages"].as_array().unwrap().len(), 2);
}

#[test]
fn failed_results_carry_an_error_object_and_feedback_is_sanitised() {
    let mut h = H::new(cfg());
    h.up();
    h.frame(dispatch("d1", "n1", "echo", "r1:n1"));
    let mut fb = crate::work::Feedback {
        progress: Some(1.7),
        stage: Some("streaming".into()),
        ..Default::default()
    };
    fb.metadata = Some(
        json!({"feedback": 3, "results": {"summary": "a"}})
            .as_object()
            .unwrap()
            .clone(),
    );
    let a = h.input(Input::TaskFeedback {
        task: key("n1"),
        feedback: fb,
    });
    let f = &sent(&a, "feedback")[0];
    assert_eq!(f["payload"]["progress"], 1.0);
    assert!(
        f["payload"]["metadata"].get("feedback").is_none(),
        "reserved key removed"
    );
    assert!(f.get("seq").is_none() && f.get("ack").is_none());
    let outcome = TaskOutcome::Completed(crate::work::Completion {
        status: TaskStatus::Failed,
        result: Default::default(),
        metadata: Default::default(),
        artifacts: vec![],
        error: None,
        duration_ms: 2,
    });
    let a = h.input(Input::TaskFinished {
        task: key("n1"),
        outcome,
    });
    let r = &sent(&a, "result")[0];
    assert_eq!(r["payload"]["status"], "FAILED");
    assert_eq!(r["payload"]["error"]["code"], "E.RUNNER.FAILURE");
    // a second completion of the same task is ignored: exactly one terminal frame
    let a = h.input(Input::TaskFinished {
        task: key("n1"),
        outcome: TaskOutcome::succeeded(Default::default(), 1),
    });
    assert!(sent(&a, "result").is_empty());
}

#[test]
fn same_seed_same_actions() {
    let run = || {
        let mut h = H::new(cfg());
        h.up();
        h.frame(dispatch("d1", "n1", "echo", "r1:n1"));
        h.advance(Duration::from_secs(100));
        serde_json::to_string(&h.log).unwrap()
    };
    assert_eq!(run(), run());
}

#[test]
fn decoded_frames_of_every_kind_round_trip() {
    // Every body the worker can build decodes to the same type it was built as.
    let mut h = H::new(cfg());
    h.up();
    for a in h.log.clone() {
        if let Action::Send(f) = a {
            let d = decode(f.text(), DEFAULT_MAX_FRAME_BYTES).unwrap();
            assert_eq!(d.body.frame_type(), Some(f.kind));
            assert!(!matches!(d.body, Body::Unknown(_)));
        }
    }
}

fn logs(actions: &[Action]) -> Vec<&LogEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Log(l) => Some(l),
            _ => None,
        })
        .collect()
}

#[test]
fn log_level_drops_only_the_lines_below_it_and_nothing_else() {
    let run = |level: Level| {
        let mut h = H::new(WorkerConfig {
            log_level: level,
            ..cfg()
        });
        h.up();
        h.frame(dispatch("d1", "n1", "echo", "r1:n1"));
        h.advance(Duration::from_secs(100));
        h.log
    };
    let all = run(Level::Debug);
    let info = run(Level::Info);
    assert!(logs(&all).iter().any(|l| l.level == Level::Debug));
    assert!(logs(&info).iter().all(|l| l.level >= Level::Info));
    assert!(!logs(&info).is_empty());
    // Every other action is the same, in the same order.
    let kept: Vec<&Action> = all
        .iter()
        .filter(|a| !matches!(a, Action::Log(l) if l.level == Level::Debug))
        .collect();
    assert_eq!(kept, info.iter().collect::<Vec<_>>());
    assert!(logs(&run(Level::Error)).is_empty());
}

#[test]
fn log_fields_serialise_as_a_sorted_map_of_strings() {
    let ev = LogEvent {
        level: Level::Info,
        message: "m",
        fields: LogFields(vec![
            ("type", LogValue::Static("result")),
            ("for", LogValue::Owned("abc".into())),
            ("resends", LogValue::U64(2)),
        ]),
    };
    assert_eq!(
        serde_json::to_value(&ev).unwrap(),
        json!({"level": "Info", "message": "m",
               "fields": {"for": "abc", "resends": "2", "type": "result"}})
    );
    assert_eq!(
        ev.fields.get("resends").map(|v| v.to_string()),
        Some("2".into())
    );
}
