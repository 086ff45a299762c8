//! Per-task overhead of a no-op handler in each runtime, through the real `Runner`:
//! builtin (a Rust closure), process (a sandboxed `/bin/sh` per task), and Python (a warm
//! sandboxed bridge, sync and async handlers). Prints figures; asserts nothing about time.
//!
//! Run: `cargo bench -p astra-host --bench runtimes` (needs python3; as root the sandbox
//! also drops to a per-task uid, which is part of what is measured).

use astra_core::work::{HandlerKey, TaskKey, TaskOutcome, TaskSpec};
use astra_core::worker::Input;
use astra_host::agent::packages::StorePackages;
use astra_host::runner::python::{PythonConfig, PythonRuntime};
use astra_host::runner::{
    ExecutionContext, Handler, HandlerError, HandlerOutput, ProcessHandler, Runner, RunnerConfig,
    Sink,
};
use astra_host::sandbox::{Sandbox, SandboxConfig};
use serde_json::Map;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

fn spec(n: usize, pkg: &str, version: &str, node_type: &str) -> TaskSpec {
    TaskSpec {
        key: TaskKey {
            run_id: "bench".into(),
            task_id: format!("t{n}"),
        },
        node_id: "n".into(),
        node_type: node_type.into(),
        package_name: pkg.into(),
        package_version: version.into(),
        parameters: Map::new(),
        timeout: Some(Duration::from_secs(60)),
        concurrency_key: None,
        metadata: Map::new(),
        tenant: "t".into(),
        seq: None,
        dispatch_id: format!("d{n}"),
    }
}

/// Runs `n` tasks one after another; returns each task's wall time (start → TaskFinished).
fn measure(runner: &Runner, n: usize, pkg: &str, version: &str, node_type: &str) -> Vec<Duration> {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let sink: Sink = Arc::new(move |i| {
        let _ = tx.lock().unwrap().send(i);
    });
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t0 = Instant::now();
        runner.start(spec(i, pkg, version, node_type), sink.clone());
        loop {
            match rx
                .recv_timeout(Duration::from_secs(60))
                .expect("task did not finish")
            {
                Input::TaskFinished { outcome, .. } => {
                    assert!(
                        matches!(outcome, TaskOutcome::Completed(_)),
                        "{node_type}: {outcome:?}"
                    );
                    break;
                }
                _ => continue,
            }
        }
        times.push(t0.elapsed());
    }
    times
}

fn report(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let n = times.len();
    let total: Duration = times.iter().sum();
    let pct = |p: f64| times[((n as f64 * p) as usize).min(n - 1)];
    println!(
        "{name:<28} n={n:<5} mean={:>9.1?} p50={:>9.1?} p99={:>9.1?} max={:>9.1?}  ({:.0} tasks/s sequential)",
        total / n as u32,
        pct(0.50),
        pct(0.99),
        times[n - 1],
        n as f64 / total.as_secs_f64()
    );
}

struct Noop;
impl Handler for Noop {
    fn run(&self, _: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        Ok(Map::new())
    }
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sandbox = Arc::new(Sandbox::new(SandboxConfig {
        kill_grace: Duration::from_millis(300),
        ..SandboxConfig::default()
    }));
    let runner = Runner::new(RunnerConfig {
        data_dir: tmp.path().join("data"),
        default_timeout: Duration::from_secs(60),
        worker_id: "bench".into(),
        tenant: "t".into(),
    });
    println!("sandbox: {}", sandbox.isolation_report());

    runner.registry().register(
        HandlerKey::new("bench", "1.0.0", "builtin.noop"),
        Arc::new(Noop),
    );
    let process = ProcessHandler::new("/bin/sh", ["-c", "echo '{}'"], sandbox.clone()).unwrap();
    runner.registry().register(
        HandlerKey::new("bench", "1.0.0", "process.noop"),
        Arc::new(process),
    );

    let packages = tmp.path().join("packages");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/packages");
    copy_tree(
        &fixtures.join("bridge_probe/0.1.0"),
        &packages.join("bridge.probe/0.1.0"),
    );
    let cache = tmp.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let runtime = PythonRuntime::new(
        PythonConfig {
            cache_root: cache,
            ..PythonConfig::default()
        },
        sandbox.clone(),
    )
    .unwrap();
    match runtime.interpreter() {
        Ok(i) => println!("python: {} ({})", i.path.display(), i.version),
        Err(e) => {
            println!("python unavailable, skipping the Python figures: {e}");
        }
    }
    let _store =
        StorePackages::open(&packages, runner.clone(), sandbox, Some(runtime.factory())).unwrap();

    report(
        "builtin no-op",
        measure(&runner, 2000, "bench", "1.0.0", "builtin.noop"),
    );
    report(
        "process no-op (/bin/sh)",
        measure(&runner, 200, "bench", "1.0.0", "process.noop"),
    );
    if runtime.interpreter().is_ok() {
        report(
            "python cold (bridge start)",
            measure(&runner, 1, "bridge.probe", "0.1.0", "bridge.probe.anoop"),
        );
        report(
            "python warm, async def",
            measure(&runner, 1000, "bridge.probe", "0.1.0", "bridge.probe.anoop"),
        );
        report(
            "python warm, def (thread)",
            measure(&runner, 1000, "bridge.probe", "0.1.0", "bridge.probe.noop"),
        );
        println!("bridges: {:?}", runtime.bridges());
    }
}
