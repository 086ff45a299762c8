//! `ProcessHandler` through the runner: the stdin/stdout/fd-3 protocol, failures, and
//! hostile tasks (fork bomb, memory hog, CPU loop, timeout) ending cleanly while a
//! well-behaved task in the same runner still succeeds.

use super::*;
use crate::sandbox::{
    group_exists, NetworkPolicy, Sandbox, SandboxConfig, SandboxLimits, UserPolicy,
};
use astra_core::v1::payloads::TaskStatus;
use astra_core::work::task::codes;
use astra_core::work::{Feedback, HandlerKey, TaskKey, TaskOutcome, TaskSpec};
use astra_core::worker::Input;
use serde_json::{json, Map, Value};
use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

fn sandbox() -> Arc<Sandbox> {
    // One sandbox for all tests here, as in the worker.
    static SB: OnceLock<Arc<Sandbox>> = OnceLock::new();
    SB.get_or_init(|| {
        Arc::new(Sandbox::new(SandboxConfig {
            limits: SandboxLimits {
                cpu_seconds: Some(1),
                address_space_bytes: Some(256 << 20),
                open_files: Some(64),
                processes: Some(32),
                file_size_bytes: Some(1 << 20),
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

struct Harness {
    runner: Runner,
    _tmp: tempfile::TempDir,
}

fn harness() -> Harness {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let runner = Runner::new(RunnerConfig {
        data_dir: tmp.path().join("data"),
        default_timeout: Duration::from_secs(20),
        worker_id: "w".into(),
        tenant: "t".into(),
    });
    register_builtins(runner.registry());
    Harness { runner, _tmp: tmp }
}

fn add_script(h: &Harness, node_type: &str, script: &str) {
    let handler = ProcessHandler::new("/bin/sh", ["-c", script], sandbox())
        .unwrap()
        .with_env([("GREETING".to_string(), "hello".to_string())]);
    h.runner.registry().register(
        HandlerKey::new("proc.pkg", "1.0.0", node_type),
        Arc::new(handler),
    );
}

fn spec(
    task: &str,
    pkg: &str,
    node_type: &str,
    params: Value,
    timeout: Option<Duration>,
) -> TaskSpec {
    let version = if pkg == BUILTIN_PACKAGE {
        BUILTIN_VERSION
    } else {
        "1.0.0"
    };
    TaskSpec {
        key: TaskKey {
            run_id: "run".into(),
            task_id: task.into(),
        },
        node_id: format!("n-{task}"),
        node_type: node_type.into(),
        package_name: pkg.into(),
        package_version: version.into(),
        parameters: match params {
            Value::Object(m) => m,
            _ => Map::new(),
        },
        timeout,
        concurrency_key: None,
        metadata: Map::new(),
        tenant: "t".into(),
        seq: None,
        dispatch_id: "d".into(),
    }
}

fn start(h: &Harness, s: TaskSpec) -> Receiver<Input> {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    h.runner.start(
        s,
        Arc::new(move |i| {
            let _ = tx.lock().unwrap().send(i);
        }),
    );
    rx
}

fn collect(rx: &Receiver<Input>) -> (Vec<Feedback>, TaskOutcome) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut fb = Vec::new();
    loop {
        match rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("outcome within 15 s")
        {
            Input::TaskFeedback { feedback, .. } => fb.push(feedback),
            Input::TaskFinished { outcome, .. } => return (fb, outcome),
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn failure(o: TaskOutcome) -> astra_core::work::Failure {
    match o {
        TaskOutcome::Failed(f) => f,
        TaskOutcome::Completed(c) => panic!("expected failure, got {c:?}"),
    }
}

#[test]
fn the_child_gets_the_context_and_returns_a_dict_with_feedback() {
    let h = harness();
    add_script(
        &h,
        "ctx",
        r#"ctx=$(cat); echo '{"stage":"working","progress":0.5}' >&3; echo 'not json' >&3;
           printf '{"outputs":{"ctx":%s,"greeting":"%s","pwd":"%s"},"metadata":{"m":1}}' "$ctx" "$GREETING" "$(pwd)""#,
    );
    let (fb, outcome) = collect(&start(
        &h,
        spec("t1", "proc.pkg", "ctx", json!({"x": [1, 2]}), None),
    ));
    assert_eq!(fb.len(), 1, "only the valid feedback line is forwarded");
    assert_eq!(fb[0].stage.as_deref(), Some("working"));
    assert_eq!(fb[0].progress, Some(0.5));
    let c = match outcome {
        TaskOutcome::Completed(c) => c,
        TaskOutcome::Failed(f) => panic!("{f:?}"),
    };
    assert_eq!(c.status, TaskStatus::Succeeded);
    let ctx = &c.result["ctx"];
    assert_eq!(ctx["run_id"], "run");
    assert_eq!(ctx["task_id"], "t1");
    assert_eq!(ctx["node_id"], "n-t1");
    assert_eq!(ctx["node_type"], "ctx");
    assert_eq!(ctx["params"], json!({"x": [1, 2]}));
    assert_eq!(ctx["worker_id"], "w");
    assert!(ctx["timeout_ms_remaining"].as_u64().unwrap() <= 20_000);
    assert_eq!(c.result["greeting"], "hello");
    let dir = std::path::PathBuf::from(ctx["data_dir"].as_str().unwrap());
    assert_eq!(
        std::path::Path::new(c.result["pwd"].as_str().unwrap()),
        dir.canonicalize().unwrap()
    );
    assert_eq!(c.metadata.get("m"), Some(&json!(1)));
}

#[test]
fn nonzero_exit_reports_status_and_stderr_tail() {
    let h = harness();
    add_script(
        &h,
        "exit3",
        "echo 'first line' >&2; echo 'the real reason' >&2; exit 3",
    );
    let f = failure(collect(&start(&h, spec("t", "proc.pkg", "exit3", json!({}), None))).1);
    assert_eq!(f.code, codes::RUNNER_FAILURE);
    assert!(f.message.contains("exited with status 3"), "{}", f.message);
    assert!(f.message.contains("the real reason"), "{}", f.message);
}

#[test]
fn invalid_or_non_object_json_is_named() {
    let h = harness();
    add_script(&h, "garbage", "echo 'this is not json'");
    add_script(&h, "array", "echo '[1,2]'");
    add_script(&h, "silent", "true");
    let f = failure(
        collect(&start(
            &h,
            spec("t1", "proc.pkg", "garbage", json!({}), None),
        ))
        .1,
    );
    assert!(
        f.message.contains("invalid JSON on stdout"),
        "{}",
        f.message
    );
    let f = failure(collect(&start(&h, spec("t2", "proc.pkg", "array", json!({}), None))).1);
    assert!(f.message.contains("got an array"), "{}", f.message);
    let f = failure(
        collect(&start(
            &h,
            spec("t3", "proc.pkg", "silent", json!({}), None),
        ))
        .1,
    );
    assert!(
        f.message.contains("invalid JSON on stdout") && f.message.contains("0 bytes"),
        "{}",
        f.message
    );
}

#[test]
fn oversized_results_are_refused() {
    let h = harness();
    let handler = ProcessHandler::new(
        "/bin/sh",
        ["-c", "printf '{\"a\":\"%0100d\"}' 0"],
        sandbox(),
    )
    .unwrap()
    .with_limits(OutputLimits {
        max_result_bytes: 50,
        ..OutputLimits::default()
    });
    h.runner.registry().register(
        HandlerKey::new("proc.pkg", "1.0.0", "big"),
        Arc::new(handler),
    );
    let f = failure(collect(&start(&h, spec("t", "proc.pkg", "big", json!({}), None))).1);
    assert!(f.message.contains("more than 50 bytes"), "{}", f.message);
}

#[test]
fn relative_program_is_rejected_at_construction() {
    assert!(matches!(
        ProcessHandler::new("bin/handler", Vec::<String>::new(), sandbox()),
        Err(ProcessHandlerError::RelativeProgram(_))
    ));
}

#[test]
fn hostile_tasks_fail_cleanly_while_a_good_task_succeeds() {
    let h = harness();
    add_script(&h, "bomb", "bomb() { bomb & bomb; }; bomb");
    add_script(&h, "hog", "exec tail /dev/zero");
    add_script(&h, "spin", "while :; do :; done");
    add_script(&h, "good", "sleep 0.3; echo '{\"ok\":true}'");
    let t0 = Instant::now();
    let rxs: Vec<(&str, Receiver<Input>)> = ["bomb", "hog", "spin", "good"]
        .into_iter()
        .map(|n| {
            (
                n,
                start(
                    &h,
                    spec(n, "proc.pkg", n, json!({}), Some(Duration::from_secs(8))),
                ),
            )
        })
        .collect();
    for (name, rx) in rxs {
        let (_, outcome) = collect(&rx);
        match (name, outcome) {
            ("good", TaskOutcome::Completed(c)) => assert_eq!(c.result["ok"], true),
            ("bomb", TaskOutcome::Failed(f)) => {
                assert!(f.message.contains("fork"), "{}", f.message)
            }
            ("hog", TaskOutcome::Failed(f)) => {
                assert!(f.message.contains("memory exhausted"), "{}", f.message)
            }
            ("spin", TaskOutcome::Failed(f)) => {
                assert!(f.message.contains("CPU time limit"), "{}", f.message)
            }
            (name, other) => panic!("{name}: unexpected {other:?}"),
        }
    }
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(h.runner.running(), 0);
}

fn read_pgid(h: &Harness, task: &str) -> i32 {
    let dir = datadir::task_dir(&h.runner.config().data_dir, "run", task);
    std::fs::read_to_string(dir.join("pgid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_timed_out_process_task_is_reported_and_its_group_is_gone() {
    let h = harness();
    add_script(
        &h,
        "hang",
        "echo $$ > pgid; trap '' TERM; sleep 30 & sleep 30",
    );
    let t0 = Instant::now();
    let f = failure(
        collect(&start(
            &h,
            spec(
                "t",
                "proc.pkg",
                "hang",
                json!({}),
                Some(Duration::from_millis(300)),
            ),
        ))
        .1,
    );
    assert_eq!(f.code, codes::RUNNER_TIMEOUT);
    assert_eq!(f.message, "task exceeded its timeout of 300 ms");
    assert!(t0.elapsed() < Duration::from_secs(5));
    let pgid = read_pgid(&h, "t");
    // Checked right at the outcome: the runner waited for the kill and the reaping.
    assert!(
        !group_exists(pgid),
        "process group {pgid} still exists after the outcome"
    );
    assert_eq!(h.runner.abandoned(), 0);
}

#[test]
fn a_cancelled_process_task_is_reported_and_its_group_is_gone() {
    let h = harness();
    add_script(&h, "wait", "echo $$ > pgid; sleep 30");
    let rx = start(&h, spec("c", "proc.pkg", "wait", json!({}), None));
    let pgid_file = datadir::task_dir(&h.runner.config().data_dir, "run", "c").join("pgid");
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&pgid_file).map_or(true, |s| !s.ends_with('\n')) {
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        h.runner.cancel(
            &TaskKey {
                run_id: "run".into(),
                task_id: "c".into()
            },
            "user abort"
        ),
        1
    );
    let f = failure(collect(&rx).1);
    assert_eq!(f.code, codes::RUNNER_CANCELLED);
    assert_eq!(f.message, "task cancelled: user abort");
    assert!(!group_exists(read_pgid(&h, "c")));
}
