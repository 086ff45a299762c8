//! insta snapshots of action logs: the worker machine through handshake/register/heartbeat,
//! a dispatch and its result, duplicates, reconnect with outbox replay, and drain; and the
//! reference scheduler's frames for one run driven against the real worker. Times are
//! offsets from the start; ids and `ts` are deterministic for the fixed seed and WallClock.
//! Review changes with `cargo insta review` (or `INSTA_UPDATE=always` and a diff).

use astra_core::scheduler::{
    ConnId, NodeSpec, RunSpec, SchedAction, SchedInput, Scheduler, SchedulerConfig,
};
use astra_core::secret::Secret;
use astra_core::time::{Instant, WallClock};
use astra_core::v1::payloads::{PackageEntry, PackageStatus};
use astra_core::work::{HandlerKey, Inventory, TaskKey, TaskOutcome};
use astra_core::worker::{Action, Command, Incoming, Input, Level, Worker, WorkerConfig};
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Duration;

const TS: &str = "2025-11-03T13:21:00.100000+00:00";
/// 2025-11-03T13:20:00Z
const EPOCH: u64 = 1_762_176_000_000_000;

#[derive(Serialize)]
struct Step {
    /// Milliseconds since the start.
    t_ms: f64,
    input: String,
    actions: Vec<Value>,
}

struct Log {
    w: Worker,
    now: Instant,
    steps: Vec<Step>,
}

fn inventory() -> Inventory {
    let mut inv = Inventory::default();
    inv.packages.insert(PackageEntry {
        name: "p".into(),
        version: "1".into(),
        status: PackageStatus::Installed,
    });
    inv.handlers.insert(HandlerKey::new("p", "1", "echo"));
    inv
}

fn cfg() -> WorkerConfig {
    WorkerConfig {
        worker_id: "w1".into(),
        auth_token: Some(Secret::new("s3cret-token")),
        max_parallel: 2,
        seed: 7,
        wall: WallClock::new(EPOCH),
        ..WorkerConfig::default()
    }
}

/// An action as data: frames as their (redacted) JSON, everything else as serde shows it.
fn action_value(a: &Action) -> Value {
    match a {
        Action::Send(f) => json!({"Send": serde_json::from_str::<Value>(f.log_text()).unwrap()}),
        Action::Persist(e) => {
            let mut v = serde_json::to_value(e).unwrap();
            v["frame"] = serde_json::from_str(&e.frame).unwrap();
            json!({ "Persist": v })
        }
        other => serde_json::to_value(other).unwrap(),
    }
}

impl Log {
    fn new() -> Log {
        let mut l = Log {
            w: Worker::new(cfg()),
            now: Instant::ZERO,
            steps: Vec::new(),
        };
        l.input("SetInventory", Input::SetInventory(inventory()));
        l
    }

    fn input(&mut self, label: &str, i: Input) -> Vec<Action> {
        self.w.handle(self.now, i);
        let actions: Vec<Action> = std::iter::from_fn(|| self.w.poll_action()).collect();
        let text =
            serde_json::to_string(&actions.iter().map(action_value).collect::<Vec<_>>()).unwrap();
        assert!(
            !text.contains("s3cret-token"),
            "token leaked into the action log"
        );
        self.steps.push(Step {
            t_ms: self.now.as_micros() as f64 / 1000.0,
            input: label.to_string(),
            // Debug logs are not behaviour: left out so logging changes do not churn.
            actions: actions
                .iter()
                .filter(|a| !matches!(a, Action::Log(l) if l.level == Level::Debug))
                .map(action_value)
                .collect(),
        });
        actions
    }

    fn frame(&mut self, label: &str, text: String) -> Vec<Action> {
        self.input(label, Input::Frame(Incoming::Text(text)))
    }

    /// Fires every timer up to `now + d`.
    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(t) = self.w.poll_timeout() {
            if t > target {
                break;
            }
            self.now = t.max(self.now);
            self.input("Tick", Input::Tick);
        }
        self.now = target;
    }

    fn ack(&mut self, for_id: &str) -> Vec<Action> {
        let label = format!("ack for {}", short(for_id));
        self.frame(&label, sched_ack(for_id))
    }

    fn up(&mut self) {
        self.input("Start", Input::Start);
        let a = self.input("Connected", Input::Connected);
        let hs = sent_id(&a, "handshake");
        let a = self.ack(&hs);
        let reg = sent_id(&a, "register");
        self.ack(&reg);
    }

    fn finish(&mut self, task: &str) -> Vec<Action> {
        self.input(
            &format!("TaskFinished {task}"),
            Input::TaskFinished {
                task: key(task),
                outcome: TaskOutcome::succeeded(
                    json!({"echo": "hi"}).as_object().unwrap().clone(),
                    12,
                ),
            },
        )
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

fn key(task: &str) -> TaskKey {
    TaskKey {
        run_id: "r1".into(),
        task_id: task.into(),
    }
}

fn sched_ack(for_id: &str) -> String {
    json!({"type":"ack","id":format!("sa-{}", short(for_id)),"ts":TS,"tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"ack":{"for":for_id},"payload":{"ok":true,"for":for_id}}).to_string()
}

fn dispatch(id: &str, task: &str) -> String {
    json!({"type":"cmd.dispatch","id":id,"ts":TS,"corr":task,"seq":1,"tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"ack":{"request":true},
           "payload":{"run_id":"r1","task_id":task,"node_id":task,"node_type":"echo","package_name":"p","package_version":"1","parameters":{"message":"hi"},"constraints":{},"concurrency_key":format!("r1:{task}")}}).to_string()
}

fn sent_id(actions: &[Action], kind: &str) -> String {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Send(f) if f.kind.as_str() == kind => Some(f.id.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {kind} sent in {actions:?}"))
}

#[test]
fn handshake_register_heartbeat() {
    let mut l = Log::new();
    l.up();
    l.advance(Duration::from_secs(70));
    insta::assert_yaml_snapshot!(l.steps);
}

#[test]
fn dispatch_ack_second_ack_result_ack() {
    let mut l = Log::new();
    l.up();
    l.steps.clear();
    l.frame("dispatch d1 (n1)", dispatch("d1", "n1"));
    l.advance(Duration::from_millis(300));
    let a = l.finish("n1");
    let r = sent_id(&a, "result");
    l.ack(&r);
    insta::assert_yaml_snapshot!(l.steps);
}

#[test]
fn duplicate_dispatch_running_and_finished() {
    let mut l = Log::new();
    l.up();
    l.steps.clear();
    l.frame("dispatch d1 (n1)", dispatch("d1", "n1"));
    l.frame("re-dispatch d2 (n1, running)", dispatch("d2", "n1"));
    let a = l.finish("n1");
    let r = sent_id(&a, "result");
    let a = l.frame(
        "re-dispatch d3 (n1, finished, result unacked)",
        dispatch("d3", "n1"),
    );
    // d3 gets its own copy; the first copy's late ack settles nothing, the copy's own does.
    let r3 = sent_id(&a, "result");
    l.ack(&r);
    l.ack(&r3);
    l.frame(
        "re-dispatch d4 (n1, finished, result acked)",
        dispatch("d4", "n1"),
    );
    insta::assert_yaml_snapshot!(l.steps);
}

#[test]
fn reconnect_replays_outbox_and_repeats_handshake() {
    let mut l = Log::new();
    l.up();
    l.frame("dispatch d1 (n1)", dispatch("d1", "n1"));
    l.finish("n1");
    l.steps.clear();
    l.input(
        "Disconnected",
        Input::Disconnected {
            reason: "reset".into(),
        },
    );
    l.advance(Duration::from_millis(600));
    let a = l.input("Connected", Input::Connected);
    let hs = sent_id(&a, "handshake");
    let a = l.ack(&hs);
    let reg = sent_id(&a, "register");
    let a = l.ack(&reg);
    let replayed = sent_id(&a, "result");
    l.ack(&replayed);
    l.advance(Duration::from_millis(1100));
    let hs2 = l
        .steps
        .iter()
        .rev()
        .flat_map(|s| s.actions.iter())
        .find_map(|a| {
            a.get("Send")
                .filter(|f| f["type"] == "handshake")
                .map(|f| f["id"].as_str().unwrap().to_string())
        })
        .expect("repeat handshake");
    let a = l.ack(&hs2);
    let reg2 = sent_id(&a, "register");
    l.ack(&reg2);
    insta::assert_yaml_snapshot!(l.steps);
}

#[test]
fn drain_finishes_in_flight_work_and_closes() {
    let mut l = Log::new();
    l.up();
    l.frame("dispatch d1 (n1)", dispatch("d1", "n1"));
    l.steps.clear();
    let a = l.input("Drain", Input::Command(Command::Drain));
    let reg = sent_id(&a, "register");
    l.ack(&reg);
    let a = l.frame("dispatch d2 (n2, refused)", dispatch("d2", "n2"));
    let err = sent_id(&a, "command.error");
    l.ack(&err);
    let a = l.finish("n1");
    let r = sent_id(&a, "result");
    l.ack(&r);
    insta::assert_yaml_snapshot!(l.steps);
}

// ------------------------------------------------------------------------------------------
// the reference scheduler against the real worker

#[derive(Serialize)]
struct SchedStep {
    t_ms: f64,
    actions: Vec<Value>,
}

fn sched_action_value(a: &SchedAction) -> Value {
    match a {
        SchedAction::Send { conn, text } => {
            json!({"Send": {"conn": conn.0, "frame": serde_json::from_str::<Value>(text).unwrap()}})
        }
        other => serde_json::to_value(other).unwrap(),
    }
}

#[test]
fn reference_scheduler_frames_for_one_run() {
    let mut s = Scheduler::new(SchedulerConfig {
        seed: 11,
        wall: WallClock::new(EPOCH),
        ..SchedulerConfig::default()
    });
    let mut w = Worker::new(WorkerConfig {
        auth_token: Some(Secret::new("dev-token")),
        ..cfg()
    });
    let mut inv = inventory();
    inv.packages.insert(PackageEntry {
        name: "example.pkg".into(),
        version: "1.0.0".into(),
        status: PackageStatus::Installed,
    });
    inv.handlers
        .insert(HandlerKey::new("example.pkg", "1.0.0", "example.pkg.echo"));
    let conn = ConnId(1);
    let mut now = Instant::ZERO;
    let mut log: Vec<SchedStep> = Vec::new();
    let mut to_sched: Vec<String> = Vec::new();
    let mut to_worker: Vec<String> = Vec::new();
    let mut running: Vec<TaskKey> = Vec::new();

    w.handle(now, Input::SetInventory(inv));
    w.handle(now, Input::Start);
    let mut submitted = false;
    let mut finished_run = false;
    for _round in 0..500 {
        let mut progress = false;
        // worker side
        while let Some(a) = w.poll_action() {
            match a {
                Action::Connect => {
                    s.handle(now, SchedInput::Connected(conn));
                    w.handle(now, Input::Connected);
                }
                Action::Send(f) => to_sched.push(f.text().to_string()),
                Action::StartTask(spec) => running.push(spec.key.clone()),
                _ => {}
            }
            progress = true;
        }
        // scheduler side
        for text in std::mem::take(&mut to_sched) {
            s.handle(now, SchedInput::Frame(conn, Incoming::Text(text)));
        }
        if !submitted && w.is_registered() {
            submitted = true;
            s.handle(
                now,
                SchedInput::SubmitRun(RunSpec::new(
                    "run-1",
                    vec![
                        NodeSpec::new("n1", "example.pkg.echo", "example.pkg", "1.0.0"),
                        NodeSpec::new("n2", "example.pkg.echo", "example.pkg", "1.0.0").after("n1"),
                    ],
                )),
            );
        }
        let actions: Vec<SchedAction> = std::iter::from_fn(|| s.poll_action()).collect();
        for a in &actions {
            match a {
                SchedAction::Send { text, .. } => to_worker.push(text.clone()),
                SchedAction::Event(e)
                    if serde_json::to_value(e)
                        .unwrap()
                        .get("RunFinished")
                        .is_some() =>
                {
                    finished_run = true;
                }
                _ => {}
            }
        }
        if !actions.is_empty() {
            progress = true;
            log.push(SchedStep {
                t_ms: now.as_micros() as f64 / 1000.0,
                actions: actions.iter().map(sched_action_value).collect(),
            });
        }
        for text in std::mem::take(&mut to_worker) {
            w.handle(now, Input::Frame(Incoming::Text(text)));
        }
        if finished_run {
            break;
        }
        if progress {
            continue;
        }
        // the host: each started task finishes 50 ms after both sides went quiet
        if let Some(task) = running.pop() {
            now = now + Duration::from_millis(50);
            w.handle(
                now,
                Input::TaskFinished {
                    task,
                    outcome: TaskOutcome::succeeded(
                        json!({"out": 1}).as_object().unwrap().clone(),
                        50,
                    ),
                },
            );
            continue;
        }
        // nothing to do right now: jump to the earliest deadline of either side
        let next = [w.poll_timeout(), s.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        match next {
            Some(t) => {
                now = t.max(now);
                w.handle(now, Input::Tick);
                s.handle(now, SchedInput::Tick);
            }
            None => break,
        }
    }
    assert!(finished_run, "the run did not finish");
    insta::assert_yaml_snapshot!(log);
}
