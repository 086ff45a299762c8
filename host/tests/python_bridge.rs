//! The `python` runtime end to end: AstraFlow-style packages (`tests/fixtures/packages`) run
//! through `StorePackages` + `Runner` in warm, sandboxed Python bridges.
//!
//! Needs `python3` (3.8+) runnable by the sandbox user. Every wait is bounded, so a broken
//! bridge fails a test instead of hanging it.

use astra_core::v1::payloads::{FeedbackChannel, PackageStatus, TaskStatus};
use astra_core::work::task::codes;
use astra_core::work::{Completion, Failure, Feedback, TaskKey, TaskOutcome, TaskSpec};
use astra_core::worker::Input;
use astra_host::agent::packages::StorePackages;
use astra_host::agent::PackageManager;
use astra_host::runner::python::{PythonConfig, PythonRuntime};
use astra_host::runner::{datadir, Runner, RunnerConfig, Sink};
use astra_host::sandbox::{NetworkPolicy, Sandbox, SandboxConfig, SandboxLimits, UserPolicy};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Upper bound for any single wait in these tests.
const WAIT: Duration = Duration::from_secs(60);

fn sandbox() -> Arc<Sandbox> {
    static SB: OnceLock<Arc<Sandbox>> = OnceLock::new();
    SB.get_or_init(|| {
        Arc::new(Sandbox::new(SandboxConfig {
            limits: SandboxLimits {
                cpu_seconds: Some(300),
                address_space_bytes: Some(4 << 30),
                open_files: Some(256),
                processes: Some(128),
                file_size_bytes: Some(64 << 20),
            },
            network: NetworkPolicy::Isolated,
            require_network_isolation: false,
            user: UserPolicy::Auto,
            kill_grace: Duration::from_millis(300),
            subreaper: true,
        }))
    })
    .clone()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/packages")
}

/// Copies a directory tree; directories 0755, files 0644 (readable by the sandbox user).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "__pycache__" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

struct World {
    runner: Runner,
    store: StorePackages,
    runtime: PythonRuntime,
    data_dir: PathBuf,
    _tmp: tempfile::TempDir,
}

fn config(tmp: &Path) -> PythonConfig {
    let cache = tmp.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    PythonConfig {
        cache_root: cache,
        cancel_wait: Duration::from_millis(800),
        ..PythonConfig::default()
    }
}

fn world_with(config_for: impl FnOnce(&Path) -> PythonConfig, extra: impl FnOnce(&Path)) -> World {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let packages = tmp.path().join("packages");
    copy_tree(
        &fixtures().join("example_pkg/1.0.0"),
        &packages.join("example.pkg/1.0.0"),
    );
    copy_tree(
        &fixtures().join("bridge_probe/0.1.0"),
        &packages.join("bridge.probe/0.1.0"),
    );
    extra(&packages);
    let data_dir = tmp.path().join("data");
    let runner = Runner::new(RunnerConfig {
        data_dir: data_dir.clone(),
        default_timeout: Duration::from_secs(30),
        worker_id: "w-test".into(),
        tenant: "tenant-a".into(),
    });
    let runtime = PythonRuntime::new(config_for(tmp.path()), sandbox()).unwrap();
    let store = StorePackages::open(
        &packages,
        runner.clone(),
        sandbox(),
        Some(runtime.factory()),
    )
    .unwrap();
    World {
        runner,
        store,
        runtime,
        data_dir,
        _tmp: tmp,
    }
}

fn world() -> World {
    world_with(config, |_| {})
}

fn spec(
    task: &str,
    pkg: &str,
    version: &str,
    node_type: &str,
    params: Value,
    timeout: Option<Duration>,
) -> TaskSpec {
    let Value::Object(parameters) = params else {
        panic!("params must be an object")
    };
    let Value::Object(metadata) =
        json!({"concurrency_key": format!("run-1:{task}"), "constraints": {}})
    else {
        unreachable!()
    };
    TaskSpec {
        key: TaskKey {
            run_id: "run-1".into(),
            task_id: task.into(),
        },
        node_id: format!("node-{task}"),
        node_type: node_type.into(),
        package_name: pkg.into(),
        package_version: version.into(),
        parameters,
        timeout,
        concurrency_key: Some(format!("run-1:{task}")),
        metadata,
        tenant: "ignored".into(),
        seq: Some(1),
        dispatch_id: format!("d-{task}"),
    }
}

fn sink() -> (Sink, Receiver<Input>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    (
        Arc::new(move |i| {
            let _ = tx.lock().unwrap().send(i);
        }),
        rx,
    )
}

/// Starts one task; its inputs arrive on the returned receiver.
fn start(w: &World, spec: TaskSpec) -> Receiver<Input> {
    let (sink, rx) = sink();
    w.runner.start(spec, sink);
    rx
}

/// Feedback (in order) and the single outcome; checks nothing follows the outcome.
fn finish(rx: &Receiver<Input>) -> (Vec<Feedback>, TaskOutcome) {
    let mut feedback = Vec::new();
    loop {
        match rx
            .recv_timeout(WAIT)
            .expect("the task did not finish in time")
        {
            Input::TaskFeedback { feedback: fb, .. } => feedback.push(fb),
            Input::TaskFinished { outcome, .. } => {
                assert!(
                    rx.recv_timeout(Duration::from_millis(50)).is_err(),
                    "nothing may follow TaskFinished"
                );
                return (feedback, outcome);
            }
            other => panic!("unexpected input {other:?}"),
        }
    }
}

fn run(w: &World, spec: TaskSpec) -> (Vec<Feedback>, TaskOutcome) {
    finish(&start(w, spec))
}

fn probe(w: &World, task: &str, handler: &str, params: Value) -> TaskOutcome {
    run(
        w,
        spec(
            task,
            "bridge.probe",
            "0.1.0",
            &format!("bridge.probe.{handler}"),
            params,
            None,
        ),
    )
    .1
}

fn example(w: &World, task: &str, handler: &str, params: Value) -> (Vec<Feedback>, Completion) {
    let (fb, outcome) = run(
        w,
        spec(
            task,
            "example.pkg",
            "1.0.0",
            &format!("example.pkg.{handler}"),
            params,
            None,
        ),
    );
    (fb, completed(outcome))
}

fn completed(o: TaskOutcome) -> Completion {
    match o {
        TaskOutcome::Completed(c) => c,
        TaskOutcome::Failed(f) => panic!("expected a result, got {f:?}"),
    }
}

fn failed(o: TaskOutcome) -> Failure {
    match o {
        TaskOutcome::Failed(f) => f,
        TaskOutcome::Completed(c) => panic!("expected a failure, got {c:?}"),
    }
}

fn result(c: &Completion) -> Value {
    Value::Object(c.result.clone())
}

fn pid_of(w: &World, package: &str, version: &str) -> i32 {
    let bridges = w.runtime.bridges();
    let found: Vec<_> = bridges
        .iter()
        .filter(|b| b.package == package && b.version == version)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one live bridge for {package} {version}: {bridges:?}"
    );
    found[0].pid
}

fn task_dir(w: &World, task: &str) -> PathBuf {
    datadir::task_dir(&w.data_dir, "run-1", task)
}

#[test]
fn every_example_handler_runs_with_shaped_results() {
    let w = world();
    let inventory = w.store.inventory();
    for (name, version) in [("example.pkg", "1.0.0"), ("bridge.probe", "0.1.0")] {
        let entry = inventory
            .packages
            .iter()
            .find(|p| p.name == name && p.version == version)
            .unwrap();
        assert_eq!(entry.status, PackageStatus::Installed, "{name} {version}");
    }

    let (_, c) = example(
        &w,
        "echo",
        "echo",
        json!({"message": "hello from loopback"}),
    );
    assert_eq!(c.status, TaskStatus::Succeeded);
    assert_eq!(result(&c), json!({"echo": "hello from loopback"}));
    assert_eq!(
        Value::Object(c.metadata.clone()),
        json!({"concurrency_key": "run-1:echo", "constraints": {}})
    );

    let config = "{\n  \"recipient\": \"demo@example.com\",\n  \"channel\": \"email\",\n  \"message\": \"Hello from AstraFlow!\"\n}";
    let (_, c) = example(&w, "config", "load_config", json!({"config": config}));
    assert_eq!(
        result(&c)["config"]["recipient"],
        json!({"email": "demo@example.com"})
    );
    assert_eq!(result(&c)["keyCount"], json!(7));

    let (_, c) = example(
        &w,
        "transform",
        "transform_text",
        json!({"text": "Hello from AstraFlow!", "mode": "uppercase"}),
    );
    assert_eq!(result(&c)["output"], json!("HELLO FROM ASTRAFLOW!"));
    assert_eq!(result(&c)["modeApplied"], json!("uppercase"));

    let (_, c) = example(&w, "delay", "delay", json!({"durationSeconds": 0.2}));
    let slept = result(&c)["durationSeconds"].as_f64().unwrap();
    assert!(slept >= 0.2, "{slept}");
    assert!(c.duration_ms >= 200, "{}", c.duration_ms);

    let (_, c) = example(
        &w,
        "notify",
        "send_notification",
        json!({"recipient": "demo@example.com", "channel": "email", "message": "Hi"}),
    );
    let summary = result(&c)["summary"].as_str().unwrap().to_string();
    assert!(
        summary.contains("demo@example.com") && summary.contains("via email"),
        "{summary}"
    );

    let (_, c) = example(
        &w,
        "audit",
        "audit_log",
        json!({"level": "info", "message": "done"}),
    );
    assert_eq!(result(&c)["entry"]["package"], json!("example.pkg@1.0.0"));
    assert_eq!(result(&c)["entry"]["runId"], json!("run-1"));
    assert_eq!(result(&c)["entry"]["level"], json!("INFO"));
    // The handler wrote into its data dir as the bridge's user.
    assert!(task_dir(&w, "audit").join("audit.log").is_file());

    let prompt = "Hello AstraFlow";
    let (feedback, c) = example(
        &w,
        "fb",
        "feedback_demo",
        json!({"prompt": prompt, "tokenDelayMs": 1}),
    );
    assert_eq!(
        result(&c),
        json!({"summary": prompt, "tokenCount": prompt.len()})
    );
    check_feedback_showcase(&feedback, prompt);

    // The context handed to handlers.
    let c = completed(probe(&w, "who", "whoami", json!({})));
    let who = result(&c);
    assert_eq!(who["data_dir_writable"], json!(true));
    assert_eq!(who["trace"], Value::Null);
    assert_eq!(who["leased"], json!({}));
    assert_eq!(who["tenant"], json!("tenant-a"));
    assert_eq!(who["is_path"], json!("PosixPath"));
    assert!(
        who["path0"]
            .as_str()
            .unwrap()
            .ends_with("bridge.probe/0.1.0"),
        "{who}"
    );
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert_ne!(
            who["uid"],
            json!(0),
            "a root worker must run bridges as an unprivileged uid"
        );
    }
}

fn check_feedback_showcase(feedback: &[Feedback], prompt: &str) {
    assert_eq!(
        feedback.first().unwrap().stage.as_deref(),
        Some("initialising")
    );
    let streamed: Vec<&Feedback> = feedback
        .iter()
        .filter(|f| f.chunks.iter().any(|c| c.channel == FeedbackChannel::Llm))
        .collect();
    assert_eq!(streamed.len(), prompt.len());
    let mut so_far = String::new();
    let mut last_progress = 0.0;
    for f in &streamed {
        so_far.push_str(f.chunks[0].text.as_deref().unwrap());
        assert_eq!(f.stage.as_deref(), Some("streaming"));
        let p = f.progress.unwrap();
        assert!(p > last_progress && p <= 1.0, "progress must grow: {p}");
        last_progress = p;
        assert_eq!(
            f.metadata.as_ref().unwrap()["results"]["summary"],
            json!(so_far)
        );
        assert!(f.metrics.contains_key("tokens_streamed"));
    }
    assert_eq!(so_far, prompt);
    let png = feedback
        .iter()
        .flat_map(|f| &f.chunks)
        .find(|c| c.data_base64.is_some())
        .expect("a preview chunk");
    assert_eq!(png.mime_type.as_deref(), Some("image/png"));
    let log = feedback
        .iter()
        .flat_map(|f| &f.chunks)
        .find(|c| c.channel == FeedbackChannel::Log)
        .expect("emit_text chunk");
    assert_eq!(
        log.text.as_deref(),
        Some(format!("Generated {} tokens", prompt.len()).as_str())
    );
    let last = feedback.last().unwrap();
    assert_eq!(
        (last.stage.as_deref(), last.progress),
        (Some("succeeded"), Some(1.0))
    );
}

#[test]
fn a_sleeping_sync_handler_does_not_block_an_async_one_in_the_same_bridge() {
    let w = world();
    example(&w, "warm", "echo", json!({"message": "warm"}));
    let pid = pid_of(&w, "example.pkg", "1.0.0");
    let (sink, rx) = sink();
    w.runner.start(
        spec(
            "slow",
            "example.pkg",
            "1.0.0",
            "example.pkg.delay",
            json!({"seconds": 3}),
            None,
        ),
        sink.clone(),
    );
    // Let the sleep begin inside the bridge before the async task arrives.
    std::thread::sleep(Duration::from_millis(300));
    w.runner.start(
        spec(
            "fast",
            "example.pkg",
            "1.0.0",
            "example.pkg.feedback_demo",
            json!({"prompt": "abcdef", "tokenDelayMs": 5}),
            None,
        ),
        sink,
    );
    let mut order = Vec::new();
    while order.len() < 2 {
        if let Input::TaskFinished { task, outcome } = rx.recv_timeout(WAIT).unwrap() {
            order.push((task.task_id, completed(outcome)));
        }
    }
    assert_eq!(
        order[0].0, "fast",
        "the async task must finish while the sync one sleeps"
    );
    assert_eq!(order[1].0, "slow");
    assert!(
        order[0].1.duration_ms < 2500,
        "async task took {} ms",
        order[0].1.duration_ms
    );
    assert_eq!(
        pid_of(&w, "example.pkg", "1.0.0"),
        pid,
        "both ran in the same warm bridge"
    );
}

#[test]
fn handler_failures_are_clear_runner_failures() {
    let w = world();
    let f = failed(probe(&w, "boom", "boom", json!({"why": "because"})));
    assert_eq!(
        (f.code.as_str(), f.message.as_str()),
        (codes::RUNNER_FAILURE, "kaboom: because")
    );
    let f = failed(probe(&w, "boom-empty", "boom_empty", json!({})));
    assert_eq!(
        (f.code.as_str(), f.message.as_str()),
        (codes::RUNNER_FAILURE, "KeyError")
    );
    let f = failed(probe(&w, "not-dict", "not_dict", json!({})));
    assert_eq!(f.code, codes::RUNNER_FAILURE);
    assert!(
        f.message.contains("must return a dict, got list"),
        "{}",
        f.message
    );
    let f = failed(probe(&w, "nan", "nan_result", json!({})));
    assert!(f.message.contains("not JSON compliant"), "{}", f.message);

    // The calling convention and entrypoint resolution (§7.2-§7.3).
    let c = completed(probe(&w, "greeter", "greeter", json!({"name": "bridge"})));
    assert_eq!(result(&c), json!({"greeting": "hello bridge"}));
    let c = completed(probe(&w, "shout", "shout", json!({"text": "dotted"})));
    assert_eq!(result(&c), json!({"shout": "DOTTED"}));
    let c = completed(probe(&w, "coro", "returns_coroutine", json!({})));
    assert_eq!(result(&c), json!({"awaited": true}));

    // Invalid feedback raises inside the handler instead of reaching the scheduler.
    let (feedback, outcome) = run(
        &w,
        spec(
            "badfb",
            "bridge.probe",
            "0.1.0",
            "bridge.probe.bad_feedback",
            json!({}),
            None,
        ),
    );
    let errors = result(&completed(outcome))["errors"].clone();
    assert!(
        errors[0].as_str().unwrap().contains("between 0 and 1"),
        "{errors}"
    );
    assert!(
        errors[1]
            .as_str()
            .unwrap()
            .contains("unknown channel 'video'"),
        "{errors}"
    );
    assert_eq!(feedback.len(), 2);
    assert_eq!(
        feedback[0].chunks[0].channel,
        FeedbackChannel::Log,
        "channel defaults to log"
    );
    assert_eq!(feedback[1].message.as_deref(), Some("nowait"));
}

#[test]
fn async_handlers_are_cancelled_cleanly_on_cancel_and_timeout() {
    let w = world();
    let rx = start(
        &w,
        spec(
            "cancel-me",
            "bridge.probe",
            "0.1.0",
            "bridge.probe.async_sleep",
            json!({"seconds": 30}),
            None,
        ),
    );
    match rx.recv_timeout(WAIT).unwrap() {
        Input::TaskFeedback { feedback, .. } => {
            assert_eq!(feedback.stage.as_deref(), Some("sleeping"))
        }
        other => panic!("expected the handler's first feedback, got {other:?}"),
    }
    let pid = pid_of(&w, "bridge.probe", "0.1.0");
    let t0 = Instant::now();
    assert_eq!(
        w.runner.cancel(
            &TaskKey {
                run_id: "run-1".into(),
                task_id: "cancel-me".into()
            },
            "operator"
        ),
        1
    );
    let (_, outcome) = finish(&rx);
    let f = failed(outcome);
    assert_eq!(f.code, codes::RUNNER_CANCELLED);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(
        task_dir(&w, "cancel-me")
            .join("cancelled-cleanly")
            .is_file(),
        "CancelledError reached the handler"
    );

    let t0 = Instant::now();
    let (_, outcome) = run(
        &w,
        spec(
            "time-me",
            "bridge.probe",
            "0.1.0",
            "bridge.probe.async_sleep",
            json!({"seconds": 30}),
            Some(Duration::from_millis(700)),
        ),
    );
    assert_eq!(failed(outcome).code, codes::RUNNER_TIMEOUT);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(task_dir(&w, "time-me").join("cancelled-cleanly").is_file());

    assert_eq!(
        pid_of(&w, "bridge.probe", "0.1.0"),
        pid,
        "a clean cancel keeps the bridge"
    );
    completed(probe(&w, "after", "noop", json!({})));
}

#[test]
fn blocking_sync_handlers_get_the_bridge_killed_and_restarted() {
    let w = world();
    example(&w, "warm", "echo", json!({"message": "warm"}));
    let pid1 = pid_of(&w, "example.pkg", "1.0.0");

    // Timeout of a sync handler: a bystander streaming in the same bridge is lost with it.
    let slow_prompt = "x".repeat(60);
    let bystander = start(
        &w,
        spec(
            "bystander",
            "example.pkg",
            "1.0.0",
            "example.pkg.feedback_demo",
            json!({"prompt": slow_prompt, "tokenDelayMs": 500}),
            None,
        ),
    );
    assert!(matches!(
        bystander.recv_timeout(WAIT).unwrap(),
        Input::TaskFeedback { .. }
    ));
    let t0 = Instant::now();
    let (_, outcome) = run(
        &w,
        spec(
            "blocker",
            "example.pkg",
            "1.0.0",
            "example.pkg.delay",
            json!({"seconds": 60}),
            Some(Duration::from_millis(500)),
        ),
    );
    assert_eq!(failed(outcome).code, codes::RUNNER_TIMEOUT);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    let f = failed(finish(&bystander).1);
    assert_eq!(f.code, codes::RUNNER_FAILURE);
    assert!(
        f.message.contains("was restarted") && f.message.contains("task blocker"),
        "{}",
        f.message
    );
    let (_, c) = example(
        &w,
        "after-timeout",
        "echo",
        json!({"message": "still here"}),
    );
    assert_eq!(result(&c), json!({"echo": "still here"}));
    let pid2 = pid_of(&w, "example.pkg", "1.0.0");
    assert_ne!(pid2, pid1, "the bridge was restarted");

    // Cancel of a sync handler.
    let sleeper = start(
        &w,
        spec(
            "sleeper",
            "example.pkg",
            "1.0.0",
            "example.pkg.delay",
            json!({"seconds": 60}),
            None,
        ),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        w.runner.cancel(
            &TaskKey {
                run_id: "run-1".into(),
                task_id: "sleeper".into()
            },
            "operator"
        ),
        1
    );
    assert_eq!(failed(finish(&sleeper).1).code, codes::RUNNER_CANCELLED);
    example(&w, "after-cancel", "echo", json!({"message": "again"}));
    assert_ne!(pid_of(&w, "example.pkg", "1.0.0"), pid2);

    // An async handler that swallows CancelledError is given cancel_wait, then killed.
    completed(probe(&w, "warm-probe", "noop", json!({})));
    let probe_pid = pid_of(&w, "bridge.probe", "0.1.0");
    let (_, outcome) = run(
        &w,
        spec(
            "stubborn",
            "bridge.probe",
            "0.1.0",
            "bridge.probe.stubborn_sleep",
            json!({}),
            Some(Duration::from_millis(500)),
        ),
    );
    assert_eq!(failed(outcome).code, codes::RUNNER_TIMEOUT);
    completed(probe(&w, "after-stubborn", "noop", json!({})));
    assert_ne!(pid_of(&w, "bridge.probe", "0.1.0"), probe_pid);
}

#[test]
fn a_bridge_that_crashes_or_writes_garbage_fails_its_tasks_and_restarts() {
    let w = world();
    completed(probe(&w, "warm", "noop", json!({})));
    let pid = pid_of(&w, "bridge.probe", "0.1.0");
    let bystander = start(
        &w,
        spec(
            "bystander",
            "bridge.probe",
            "0.1.0",
            "bridge.probe.async_sleep",
            json!({"seconds": 30}),
            None,
        ),
    );
    assert!(matches!(
        bystander.recv_timeout(WAIT).unwrap(),
        Input::TaskFeedback { .. }
    ));

    let f = failed(probe(&w, "crash", "crash", json!({})));
    assert_eq!(f.code, codes::RUNNER_FAILURE);
    assert!(f.message.contains("exited with status 7"), "{}", f.message);
    assert!(
        f.message.contains("about to crash on purpose"),
        "stderr tail: {}",
        f.message
    );
    let f = failed(finish(&bystander).1);
    assert!(f.message.contains("exited with status 7"), "{}", f.message);

    completed(probe(&w, "after-crash", "noop", json!({})));
    let pid2 = pid_of(&w, "bridge.probe", "0.1.0");
    assert_ne!(pid2, pid);

    let f = failed(probe(&w, "garbage", "garbage", json!({})));
    assert!(
        f.message.contains("broke the protocol") && f.message.contains("this is not json"),
        "{}",
        f.message
    );
    completed(probe(&w, "after-garbage", "noop", json!({})));
    assert_ne!(pid_of(&w, "bridge.probe", "0.1.0"), pid2);
}

#[test]
fn bridges_are_reused_and_package_versions_are_isolated() {
    let w = world_with(config, |packages| {
        let v2 = packages.join("example.pkg/2.0.0");
        copy_tree(&packages.join("example.pkg/1.0.0"), &v2);
        let manifest = std::fs::read_to_string(v2.join("manifest.json")).unwrap();
        std::fs::write(
            v2.join("manifest.json"),
            manifest.replacen("\"version\": \"1.0.0\"", "\"version\": \"2.0.0\"", 1),
        )
        .unwrap();
        std::fs::write(
            v2.join("adapters/echo.py"),
            "async def echo(context):\n    return {'echo': 'v2:' + context.params.get('message', '')}\n",
        )
        .unwrap();
    });
    let echo = |task: &str, version: &str| {
        let (_, outcome) = run(
            &w,
            spec(
                task,
                "example.pkg",
                version,
                "example.pkg.echo",
                json!({"message": "hi"}),
                None,
            ),
        );
        result(&completed(outcome))["echo"].clone()
    };
    assert_eq!(echo("a", "1.0.0"), json!("hi"));
    let v1 = pid_of(&w, "example.pkg", "1.0.0");
    assert_eq!(echo("b", "1.0.0"), json!("hi"));
    assert_eq!(
        pid_of(&w, "example.pkg", "1.0.0"),
        v1,
        "the warm bridge is reused"
    );
    assert_eq!(echo("c", "2.0.0"), json!("v2:hi"));
    let v2 = pid_of(&w, "example.pkg", "2.0.0");
    assert_ne!(v1, v2, "each version gets its own process");
    assert_eq!(
        echo("d", "1.0.0"),
        json!("hi"),
        "v1 still imports its own adapters.echo"
    );
}

#[test]
fn handlers_cannot_reach_a_loopback_listener() {
    let w = world();
    let report = sandbox().isolation_report().clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Control: the listener is reachable from outside the sandbox.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    let c = completed(probe(&w, "net", "connect", json!({"port": port})));
    if !report.network_isolated {
        eprintln!(
            "SKIP: network isolation unavailable here: {}",
            report.network_detail
        );
        return;
    }
    assert_eq!(result(&c)["connected"], json!(false), "{}", result(&c));
}

#[test]
fn print_in_a_handler_does_not_break_the_protocol() {
    let w = world();
    let c = completed(probe(&w, "noisy", "noisy", json!({})));
    assert_eq!(
        result(&c),
        json!({"printed": 2000}),
        "the forged stdout line must not be taken as a reply"
    );
    let pid = pid_of(&w, "bridge.probe", "0.1.0");
    completed(probe(&w, "after", "noop", json!({})));
    assert_eq!(pid_of(&w, "bridge.probe", "0.1.0"), pid);
}

#[test]
fn a_missing_python_marks_python_packages_failed() {
    for python in ["/nonexistent/bin/python3", "surely-no-such-python-3"] {
        let w = world_with(
            |tmp| PythonConfig {
                python: PathBuf::from(python),
                ..config(tmp)
            },
            |_| {},
        );
        let why = w.runtime.interpreter().unwrap_err().to_string();
        assert!(why.contains(python), "{why}");
        let inventory = w.store.inventory();
        for name in ["example.pkg", "bridge.probe"] {
            let entry = inventory.packages.iter().find(|p| p.name == name).unwrap();
            assert_eq!(entry.status, PackageStatus::Failed, "{name}");
        }
        let pkg = w
            .store
            .store()
            .list()
            .into_iter()
            .find(|p| p.name == "example.pkg")
            .unwrap();
        let err = match (w.runtime.factory())(&pkg, &pkg.handlers[0]) {
            Err(e) => e,
            Ok(_) => panic!("a handler without an interpreter"),
        };
        assert!(
            err.contains("no usable Python interpreter") && err.contains(python),
            "{err}"
        );
        let (_, outcome) = run(
            &w,
            spec(
                "x",
                "example.pkg",
                "1.0.0",
                "example.pkg.echo",
                json!({}),
                None,
            ),
        );
        assert_eq!(failed(outcome).code, codes::RUNNER_FAILURE);
    }
}
