//! Runner behaviour end to end with in-process handlers: one terminal outcome per task,
//! result shaping, timeouts, cancellation, panics, the builtin package.

use super::*;
use astra_core::v1::payloads::{FeedbackChannel, TaskStatus};
use astra_core::work::task::codes;
use astra_core::work::{Completion, Failure, Feedback, HandlerKey, TaskKey, TaskOutcome, TaskSpec};
use astra_core::worker::Input;
use serde_json::{json, Map, Value};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn spec(run: &str, task: &str, pkg: &str, ver: &str, node_type: &str, params: Value) -> TaskSpec {
    TaskSpec {
        key: TaskKey {
            run_id: run.into(),
            task_id: task.into(),
        },
        node_id: format!("node-{task}"),
        node_type: node_type.into(),
        package_name: pkg.into(),
        package_version: ver.into(),
        parameters: obj(params),
        timeout: None,
        concurrency_key: None,
        metadata: obj(json!({"concurrency_key": null, "constraints": {}})),
        tenant: "ignored".into(),
        seq: Some(1),
        dispatch_id: "d1".into(),
    }
}

fn builtin(task: &str, node_type: &str, params: Value) -> TaskSpec {
    spec(
        "run-1",
        task,
        BUILTIN_PACKAGE,
        BUILTIN_VERSION,
        node_type,
        params,
    )
}

struct Harness {
    runner: Runner,
    _tmp: tempfile::TempDir,
}

fn harness() -> Harness {
    let tmp = tempfile::tempdir().unwrap();
    let runner = Runner::new(RunnerConfig {
        data_dir: tmp.path().join("data"),
        default_timeout: Duration::from_secs(30),
        worker_id: "w-test".into(),
        tenant: "tenant-a".into(),
    });
    register_builtins(runner.registry());
    Harness { runner, _tmp: tmp }
}

fn channel_sink() -> (Sink, Receiver<Input>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let sink: Sink = Arc::new(move |i| {
        let _ = tx.lock().unwrap().send(i);
    });
    (sink, rx)
}

/// Everything the sink got for one task, up to and including its outcome.
fn collect(rx: &Receiver<Input>) -> (Vec<Feedback>, TaskOutcome) {
    let deadline = Instant::now() + WAIT;
    let mut feedback = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx
            .recv_timeout(left)
            .expect("no terminal outcome within 10 s")
        {
            Input::TaskFeedback { feedback: f, .. } => feedback.push(f),
            Input::TaskFinished { outcome, .. } => return (feedback, outcome),
            other => panic!("unexpected input {other:?}"),
        }
    }
}

fn run(h: &Harness, spec: TaskSpec) -> (Vec<Feedback>, TaskOutcome, Receiver<Input>) {
    let (sink, rx) = channel_sink();
    h.runner.start(spec, sink);
    let (fb, outcome) = collect(&rx);
    (fb, outcome, rx)
}

fn completed(o: TaskOutcome) -> Completion {
    match o {
        TaskOutcome::Completed(c) => c,
        TaskOutcome::Failed(f) => panic!("expected a completion, got {f:?}"),
    }
}

fn failed(o: TaskOutcome) -> Failure {
    match o {
        TaskOutcome::Failed(f) => f,
        TaskOutcome::Completed(c) => panic!("expected a failure, got {c:?}"),
    }
}

/// Nothing more arrives for this task after its outcome.
fn assert_quiet(rx: &Receiver<Input>) {
    assert!(
        rx.recv_timeout(Duration::from_millis(50)).is_err(),
        "input after the terminal outcome"
    );
}

fn register(h: &Harness, node_type: &str, handler: impl Handler + 'static) {
    h.runner.registry().register(
        HandlerKey::new("test.pkg", "1.0.0", node_type),
        Arc::new(handler),
    );
}

fn custom(task: &str, node_type: &str) -> TaskSpec {
    spec("run-1", task, "test.pkg", "1.0.0", node_type, json!({}))
}

#[test]
fn echo_returns_parameters_and_context_metadata() {
    let h = harness();
    let params = json!({"a": 1, "nested": {"b": [1, 2]}, "status": "not-a-status-inside-outputs"});
    let (fb, outcome, rx) = run(&h, builtin("t1", "echo", params.clone()));
    assert!(fb.is_empty());
    let c = completed(outcome);
    assert_eq!(c.status, TaskStatus::Succeeded);
    assert_eq!(Value::Object(c.result), params);
    assert_eq!(
        Value::Object(c.metadata),
        json!({"concurrency_key": null, "constraints": {}})
    );
    assert_eq!(c.error, None);
    assert_quiet(&rx);
    assert_eq!(h.runner.running(), 0);
}

#[test]
fn context_carries_the_dispatch_and_a_created_data_dir() {
    let h = harness();
    let data_root = h.runner.config().data_dir.clone();
    register(
        &h,
        "inspect",
        move |ctx: &ExecutionContext| -> Result<HandlerOutput, HandlerError> {
            assert!(
                ctx.data_dir.is_dir(),
                "data dir must exist before the handler runs"
            );
            Ok(obj(json!({
                "run_id": ctx.run_id, "task_id": ctx.task_id, "node_id": ctx.node_id,
                "node_type": ctx.node_type, "package": ctx.package_name, "version": ctx.package_version,
                "tenant": ctx.tenant, "worker_id": ctx.worker_id, "params": ctx.params,
                "data_dir": ctx.data_dir.to_string_lossy(), "meta": ctx.metadata,
                "remaining_ok": ctx.remaining() > Duration::ZERO && ctx.remaining() <= Duration::from_secs(30),
            })))
        },
    );
    let mut s = spec(
        "../../escape",
        "/etc/passwd",
        "test.pkg",
        "1.0.0",
        "inspect",
        json!({"p": true}),
    );
    s.metadata = obj(json!({"constraints": {"timeout_ms": 5}}));
    let (_, outcome, _) = run(&h, s);
    let r = completed(outcome).result;
    assert_eq!(r["run_id"], "../../escape");
    assert_eq!(r["task_id"], "/etc/passwd");
    assert_eq!(r["node_id"], "node-/etc/passwd");
    assert_eq!(r["node_type"], "inspect");
    assert_eq!(
        (r["package"].as_str(), r["version"].as_str()),
        (Some("test.pkg"), Some("1.0.0"))
    );
    assert_eq!(
        r["tenant"], "tenant-a",
        "the worker's tenant, not the spec's"
    );
    assert_eq!(r["worker_id"], "w-test");
    assert_eq!(r["params"], json!({"p": true}));
    assert_eq!(r["meta"], json!({"constraints": {"timeout_ms": 5}}));
    assert_eq!(r["remaining_ok"], true);
    let dir = std::path::PathBuf::from(r["data_dir"].as_str().unwrap());
    assert!(dir.starts_with(&data_root), "{dir:?} escaped {data_root:?}");
    assert_eq!(
        dir.strip_prefix(&data_root).unwrap().components().count(),
        2
    );
    assert!(dir.is_dir());
}

#[test]
fn unknown_handler_fails_with_the_python_message() {
    let h = harness();
    let (_, outcome, rx) = run(
        &h,
        spec(
            "r",
            "t",
            "example.pkg",
            "1.0.0",
            "example.pkg.nope",
            json!({}),
        ),
    );
    let f = failed(outcome);
    assert_eq!(f.code, codes::RUNNER_FAILURE);
    assert_eq!(
        f.message,
        "Handler not registered: ('example.pkg', '1.0.0', 'example.pkg.nope')"
    );
    assert_quiet(&rx);
}

#[test]
fn handler_error_and_empty_messages() {
    let h = harness();
    let (_, outcome, _) = run(&h, builtin("t", "fail", json!({"message": "disk full"})));
    let f = failed(outcome);
    assert_eq!(
        (f.code.as_str(), f.message.as_str()),
        (codes::RUNNER_FAILURE, "disk full")
    );

    register(
        &h,
        "empty",
        |_: &ExecutionContext| -> Result<HandlerOutput, HandlerError> {
            Err(HandlerError::with_code("", "  "))
        },
    );
    let f = failed(run(&h, custom("t2", "empty")).1);
    assert_eq!(f.code, codes::RUNNER_FAILURE);
    assert!(!f.message.trim().is_empty());

    register(
        &h,
        "coded",
        |_: &ExecutionContext| -> Result<HandlerOutput, HandlerError> {
            Err(HandlerError::with_code("E.CUSTOM", "why"))
        },
    );
    let f = failed(run(&h, custom("t3", "coded")).1);
    assert_eq!((f.code.as_str(), f.message.as_str()), ("E.CUSTOM", "why"));
}

#[test]
fn panics_are_contained() {
    let h = harness();
    let (_, outcome, rx) = run(
        &h,
        builtin("t", "fail", json!({"mode": "panic", "message": "kaboom"})),
    );
    let f = failed(outcome);
    assert_eq!(f.code, codes::RUNNER_FAILURE);
    assert_eq!(f.message, "handler panicked: kaboom");
    assert_quiet(&rx);
    // The runner still works afterwards.
    assert!(matches!(
        run(&h, builtin("t2", "echo", json!({}))).1,
        TaskOutcome::Completed(_)
    ));
}

#[test]
fn fail_with_status_gives_a_failed_result_with_error() {
    let h = harness();
    let c = completed(
        run(
            &h,
            builtin(
                "t",
                "fail",
                json!({"mode": "status", "message": "bad input"}),
            ),
        )
        .1,
    );
    assert_eq!(c.status, TaskStatus::Failed);
    let e = c.error.unwrap();
    assert_eq!(
        (e.code.as_str(), e.message.as_str()),
        ("E.BUILTIN.FAIL", "bad input")
    );
}

#[test]
fn sleep_sleeps_and_reports_it() {
    let h = harness();
    let t0 = Instant::now();
    let c = completed(run(&h, builtin("t", "sleep", json!({"ms": 40}))).1);
    assert!(t0.elapsed() >= Duration::from_millis(40));
    let slept = c.result["slept_ms"].as_u64().unwrap();
    assert!(slept >= 40, "{slept}");
    assert!(c.duration_ms >= 40);

    let c = completed(run(&h, builtin("t2", "sleep", json!({"seconds": 0.03}))).1);
    assert!(c.result["slept_ms"].as_u64().unwrap() >= 30);

    let f = failed(run(&h, builtin("t3", "sleep", json!({"ms": -1}))).1);
    assert!(f.message.contains("`ms`"), "{}", f.message);
    let f = failed(run(&h, builtin("t4", "sleep", json!({"seconds": 1e300}))).1);
    assert!(f.message.contains("`seconds`"), "{}", f.message);
}

#[test]
fn timeout_reports_at_the_deadline() {
    let h = harness();
    let mut s = builtin("t", "sleep", json!({"ms": 10_000}));
    s.timeout = Some(Duration::from_millis(60));
    let t0 = Instant::now();
    let (_, outcome, rx) = run(&h, s);
    let f = failed(outcome);
    assert_eq!(f.code, codes::RUNNER_TIMEOUT);
    assert_eq!(f.message, "task exceeded its timeout of 60 ms");
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(f.duration_ms >= 60);
    assert_quiet(&rx);
}

#[test]
fn default_timeout_applies_without_a_spec_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let runner = Runner::new(RunnerConfig {
        data_dir: tmp.path().to_path_buf(),
        default_timeout: Duration::from_millis(50),
        ..RunnerConfig::default()
    });
    register_builtins(runner.registry());
    let (sink, rx) = channel_sink();
    runner.start(builtin("t", "sleep", json!({"ms": 10_000})), sink);
    let f = failed(collect(&rx).1);
    assert_eq!(f.message, "task exceeded its timeout of 50 ms");
}

#[test]
fn cancel_reports_cancelled_and_the_handler_sees_it() {
    let h = harness();
    let seen = Arc::new(Mutex::new(None));
    let seen2 = seen.clone();
    let (started_tx, started_rx) = mpsc::channel();
    let started_tx = Mutex::new(started_tx);
    register(
        &h,
        "waits",
        move |ctx: &ExecutionContext| -> Result<HandlerOutput, HandlerError> {
            let _ = started_tx.lock().unwrap().send(());
            let cancelled = ctx.cancel.wait(WAIT);
            *seen2.lock().unwrap() = Some((cancelled, ctx.cancel.reason()));
            Ok(HandlerOutput::new())
        },
    );
    let (sink, rx) = channel_sink();
    let key = TaskKey {
        run_id: "run-1".into(),
        task_id: "c1".into(),
    };
    h.runner.start(custom("c1", "waits"), sink);
    started_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(h.runner.running(), 1);
    assert_eq!(
        h.runner.cancel(
            &TaskKey {
                run_id: "run-1".into(),
                task_id: "other".into()
            },
            "x"
        ),
        0
    );
    assert_eq!(h.runner.cancel(&key, "operator asked"), 1);
    let f = failed(collect(&rx).1);
    assert_eq!(f.code, codes::RUNNER_CANCELLED);
    assert_eq!(f.message, "task cancelled: operator asked");
    assert_quiet(&rx);
    assert_eq!(h.runner.running(), 0);
    // The handler observed the cancellation promptly (it may finish just after the outcome).
    let deadline = Instant::now() + WAIT;
    while seen.lock().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        *seen.lock().unwrap(),
        Some((true, Some("operator asked".to_string())))
    );
}

#[test]
fn a_handler_ignoring_cancellation_is_abandoned_and_its_late_output_discarded() {
    let h = harness();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    register(
        &h,
        "stubborn",
        move |ctx: &ExecutionContext| -> Result<HandlerOutput, HandlerError> {
            // Ignores ctx.cancel on purpose; only the test releases it.
            let _ = release_rx.lock().unwrap().recv_timeout(WAIT);
            ctx.feedback.log("too late");
            Ok(obj(json!({"late": true})))
        },
    );
    let mut s = custom("s1", "stubborn");
    s.timeout = Some(Duration::from_millis(40));
    let (sink, rx) = channel_sink();
    let t0 = Instant::now();
    h.runner.start(s, sink);
    let f = failed(collect(&rx).1);
    assert_eq!(f.code, codes::RUNNER_TIMEOUT);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "reported at the deadline, not when the handler returned"
    );
    assert_eq!(h.runner.abandoned(), 1);
    release_tx.send(()).unwrap();
    let deadline = Instant::now() + WAIT;
    while h.runner.abandoned() != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(h.runner.abandoned(), 0);
    assert_quiet(&rx);
}

#[test]
fn stream_sends_feedback_then_the_result() {
    let h = harness();
    let (fb, outcome, rx) = run(
        &h,
        builtin(
            "t",
            "stream",
            json!({"count": 3, "interval_ms": 1, "text": "alpha beta gamma delta"}),
        ),
    );
    assert_eq!(fb.len(), 4);
    for (i, f) in fb[..3].iter().enumerate() {
        assert_eq!(f.stage.as_deref(), Some("streaming"));
        assert_eq!(f.progress, Some((i + 1) as f64 / 3.0));
        assert_eq!(f.chunks.len(), 1);
        assert_eq!(f.chunks[0].channel, FeedbackChannel::Llm);
        assert_eq!(f.chunks[0].index, Some(i as u64));
        assert_eq!(f.metrics.get("tokens_streamed"), Some(&((i + 1) as f64)));
    }
    assert_eq!(fb[0].chunks[0].text.as_deref(), Some("alpha"));
    assert_eq!(fb[2].chunks[0].text.as_deref(), Some("gamma"));
    assert_eq!(
        Value::Object(fb[1].metadata.clone().unwrap()),
        json!({"results": {"summary": "alpha beta"}})
    );
    assert_eq!(fb[3].stage.as_deref(), Some("succeeded"));
    assert_eq!(fb[3].progress, Some(1.0));
    let c = completed(outcome);
    assert_eq!(
        Value::Object(c.result),
        json!({"text": "alpha beta gamma", "chunks": 3})
    );
    assert_quiet(&rx);
}

#[test]
fn stream_defaults_and_bad_parameters() {
    let h = harness();
    let (fb, outcome, _) = run(&h, builtin("t", "stream", json!({"interval_ms": 0})));
    assert_eq!(fb.len(), 6);
    assert_eq!(completed(outcome).result["chunks"], 5);
    let f = failed(run(&h, builtin("t2", "stream", json!({"count": "many"}))).1);
    assert!(f.message.contains("`count`"), "{}", f.message);
}

#[test]
fn packages_can_be_unregistered_at_runtime() {
    let h = harness();
    assert!(h
        .runner
        .registry()
        .inventory()
        .has_handler(&HandlerKey::new(BUILTIN_PACKAGE, BUILTIN_VERSION, "stream")));
    assert!(h
        .runner
        .registry()
        .unregister_package(BUILTIN_PACKAGE, BUILTIN_VERSION));
    let f = failed(run(&h, builtin("t", "echo", json!({}))).1);
    assert!(
        f.message
            .starts_with("Handler not registered: ('astra.builtin'"),
        "{}",
        f.message
    );
    assert!(h.runner.registry().inventory().handlers.is_empty());
}

#[test]
fn many_concurrent_tasks_each_finish_exactly_once() {
    let h = harness();
    let (sink, rx) = channel_sink();
    let n = 40;
    for i in 0..n {
        let node = ["echo", "fail", "sleep", "stream"][i % 4];
        let params = match node {
            "sleep" => json!({"ms": 5}),
            "stream" => json!({"count": 2, "interval_ms": 1}),
            _ => json!({}),
        };
        h.runner
            .start(builtin(&format!("t{i}"), node, params), sink.clone());
    }
    let mut finished = std::collections::BTreeMap::new();
    let deadline = Instant::now() + WAIT;
    while finished.len() < n {
        match rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("all tasks finish")
        {
            Input::TaskFinished { task, .. } => *finished.entry(task.task_id).or_insert(0) += 1,
            Input::TaskFeedback { task, .. } => assert!(
                !finished.contains_key(&task.task_id),
                "feedback after outcome"
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(finished.values().all(|&c| c == 1));
    assert_quiet(&rx);
    assert_eq!(h.runner.running(), 0);
}

/// A handler with declared traits, recording the thread it ran on and its data dir.
struct Declared {
    inline: bool,
    uses_dir: bool,
    seen: Arc<Mutex<Option<(std::thread::ThreadId, std::path::PathBuf, bool)>>>,
}

impl Handler for Declared {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        *self.seen.lock().unwrap() = Some((
            std::thread::current().id(),
            ctx.data_dir.clone(),
            ctx.data_dir.exists(),
        ));
        Ok(obj(json!({"ok": true})))
    }

    fn inline(&self) -> bool {
        self.inline
    }

    fn uses_data_dir(&self) -> bool {
        self.uses_dir
    }
}

fn declared(
    h: &Harness,
    node_type: &str,
    inline: bool,
    uses_dir: bool,
) -> Arc<Mutex<Option<(std::thread::ThreadId, std::path::PathBuf, bool)>>> {
    let seen = Arc::new(Mutex::new(None));
    register(
        h,
        node_type,
        Declared {
            inline,
            uses_dir,
            seen: seen.clone(),
        },
    );
    seen
}

#[test]
fn an_inline_handler_has_reported_when_start_returns() {
    let h = harness();
    let seen = declared(&h, "instant", true, true);
    let (sink, rx) = channel_sink();
    h.runner.start(custom("t-inline", "instant"), sink);
    // No waiting: the outcome is already there, produced on this very thread.
    match rx.try_recv() {
        Ok(Input::TaskFinished { outcome, .. }) => {
            assert_eq!(completed(outcome).result, obj(json!({"ok": true})))
        }
        other => panic!("expected the outcome at once, got {other:?}"),
    }
    let (thread, dir, existed) = seen.lock().unwrap().clone().unwrap();
    assert_eq!(thread, std::thread::current().id());
    assert!(
        existed,
        "an inline handler that uses its data dir gets it created"
    );
    assert!(dir.is_dir());
    assert_eq!(h.runner.running(), 0);
    assert_quiet(&rx);
}

#[test]
fn a_pooled_handler_runs_on_another_thread() {
    let h = harness();
    let seen = declared(&h, "pooled", false, true);
    let (_, outcome, _) = run(&h, custom("t-pooled", "pooled"));
    completed(outcome);
    let (thread, _, existed) = seen.lock().unwrap().clone().unwrap();
    assert_ne!(thread, std::thread::current().id());
    assert!(existed);
}

#[test]
fn no_directory_is_made_for_a_handler_that_never_uses_it() {
    for inline in [false, true] {
        let h = harness();
        let seen = declared(&h, "diskless", inline, false);
        let (_, outcome, _) = run(&h, custom("t-diskless", "diskless"));
        completed(outcome);
        let (_, dir, existed) = seen.lock().unwrap().clone().unwrap();
        assert!(!existed, "inline {inline}: {dir:?} was created");
        let root = &h.runner.config().data_dir;
        assert!(
            dir.starts_with(root),
            "still the task's path under {root:?}"
        );
        assert!(!root.exists(), "nothing at all was created under {root:?}");
    }
}

#[test]
fn builtin_echo_runs_inline_and_touches_no_disk() {
    let h = harness();
    let (sink, rx) = channel_sink();
    h.runner
        .start(builtin("t-echo", "echo", json!({"x": 1})), sink);
    assert!(matches!(rx.try_recv(), Ok(Input::TaskFinished { .. })));
    assert!(!h.runner.config().data_dir.exists());
}
