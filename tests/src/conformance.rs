//! The conformance suite: every behaviour a driver must show over a real socket, written
//! once. Each function is one scenario; `tests/conformance_*.rs` call them per driver.

use crate::procs::{free_port, RefSched, WorkerOpts, WorkerProc};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

pub const BUILTIN: &str = "astra.builtin";
pub const BUILTIN_VERSION: &str = "0.1.0";
const T: Duration = Duration::from_secs(20);

/// The binaries under test: `worker` runs `run`, `sched` runs `ref-scheduler`.
pub struct Drivers {
    pub worker: PathBuf,
    pub sched: PathBuf,
}

fn node(id: &str, node_type: &str, params: Value, deps: &[&str]) -> Value {
    json!({"id": id, "node_type": node_type, "package_name": BUILTIN, "package_version": BUILTIN_VERSION, "parameters": params, "depends_on": deps})
}

fn run(run_id: &str, nodes: Vec<Value>) -> Value {
    json!({"run_id": run_id, "nodes": nodes})
}

fn ts() -> &'static str {
    "2025-11-03T13:21:00.100000+00:00"
}

/// A dispatch frame as the scheduler would send it, for injection.
fn dispatch(
    id: &str,
    run_id: &str,
    task: &str,
    node_type: &str,
    key: &str,
    params: Value,
) -> Value {
    json!({"type":"cmd.dispatch","id":id,"ts":ts(),"corr":task,"seq":1,"tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"ack":{"request":true},
           "payload":{"run_id":run_id,"task_id":task,"node_id":task,"node_type":node_type,"package_name":BUILTIN,"package_version":BUILTIN_VERSION,"parameters":params,"constraints":{},"concurrency_key":key}})
}

struct Env {
    dir: tempfile::TempDir,
    sched: RefSched,
}

fn env(d: &Drivers, sched_flags: &[&str]) -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let sched = RefSched::start(&d.sched, "127.0.0.1:0", sched_flags);
    Env { dir, sched }
}

fn worker(
    d: &Drivers,
    e: &Env,
    id: &str,
    max_parallel: u32,
    extra_env: Vec<(&'static str, String)>,
) -> WorkerProc {
    WorkerProc::start(
        &d.worker,
        &WorkerOpts {
            worker_id: id,
            url: &e.sched.url,
            dir: e.dir.path(),
            max_parallel,
            metrics_port: Some(free_port()),
            env: extra_env,
        },
    )
}

fn registered(e: &mut Env, id: &str) -> Value {
    let id = id.to_string();
    e.sched
        .wait("Registered", T, move |b| b["worker_id"] == id.as_str())
}

fn run_finished(e: &mut Env, run_id: &str) -> String {
    let r = run_id.to_string();
    let b = e
        .sched
        .wait("RunFinished", T, move |b| b["run_id"] == r.as_str());
    b["status"].as_str().unwrap_or_default().to_string()
}

fn wait_metric(w: &WorkerProc, name: &str, pred: impl Fn(f64) -> bool) -> f64 {
    let deadline = std::time::Instant::now() + T;
    loop {
        if let Some(v) = w.metric(name) {
            if pred(v) {
                return v;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metric {name} never satisfied the condition; log:\n{}",
            w.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// handshake → register (with the builtin package) → heartbeats on cadence; /healthz says so.
pub fn session(d: &Drivers) {
    let mut e = env(d, &[]);
    let w = worker(d, &e, "w-session", 2, vec![]);
    let reg = registered(&mut e, "w-session");
    let pkgs = reg["packages"].as_array().expect("packages");
    assert!(
        pkgs.iter()
            .any(|p| p["name"] == BUILTIN && p["status"] == "installed"),
        "{reg}"
    );
    // heartbeat every 1 s (jitter 0): at least 3 within ~3.5 s after the first
    wait_metric(&w, "astra_worker_heartbeat_sent_total", |v| v >= 3.0);
    let health = w.http_get("/healthz").unwrap_or_default();
    assert!(
        health.starts_with("HTTP/1.1 200") && health.contains("\"registered\":true"),
        "{health}"
    );
    assert_eq!(
        e.sched.count("Rejected", |_| true),
        0,
        "the strict scheduler rejected a frame"
    );
}

/// dispatch → ack (twice) → result, for a small DAG; corr and exactly one result per node.
pub fn dispatch_result(d: &Drivers) {
    let mut e = env(d, &[]);
    let w = worker(d, &e, "w-dispatch", 4, vec![]);
    registered(&mut e, "w-dispatch");
    e.sched.submit(run(
        "r-dag",
        vec![
            node("a", "echo", json!({"message": "hi"}), &[]),
            node("b", "stream", json!({"count": 3, "interval_ms": 5}), &["a"]),
            node("c", "sleep", json!({"ms": 50}), &["a"]),
            node("d", "echo", json!({}), &["b", "c"]),
        ],
    ));
    assert_eq!(run_finished(&mut e, "r-dag"), "succeeded");
    e.sched.settle(Duration::from_millis(300));
    for n in ["a", "b", "c", "d"] {
        assert_eq!(
            e.sched.count("ResultRecorded", |b| b["run_id"] == "r-dag"
                && b["node_id"] == n),
            1,
            "exactly one result for {n}"
        );
    }
    assert!(
        e.sched.count("FeedbackRecorded", |b| b["node_id"] == "b") >= 3,
        "stream feedback arrives"
    );
    assert_eq!(e.sched.count("AckTimeout", |_| true), 0);
    assert_eq!(w.metric("astra_worker_tasks_started_total"), Some(4.0));
    assert_eq!(e.sched.count("Rejected", |_| true), 0);
}

/// The scheduler drops every early ack (its registration race) and re-dispatches on timeout:
/// the worker never runs a task twice and answers a re-dispatch of a finished task with its
/// cached result.
pub fn duplicate_dispatch(d: &Drivers) {
    let mut e = env(d, &["--ack-race-ms", "60000", "--ack-timeout", "0.3"]);
    let w = worker(
        d,
        &e,
        "w-dup",
        2,
        vec![("ASTRA_WORKER_EXTRA_ACK_DELAY_MS", "0".into())],
    );
    registered(&mut e, "w-dup");
    e.sched.submit(run(
        "r-dup",
        vec![node("slow", "sleep", json!({"ms": 2500}), &[])],
    ));
    e.sched.wait("AckTimeout", T, |b| b["run_id"] == "r-dup");
    e.sched.wait("Dispatched", T, |b| {
        b["run_id"] == "r-dup" && b["attempt"].as_u64().unwrap_or(0) >= 2
    });
    e.sched
        .wait("ResultRecorded", T, |b| b["run_id"] == "r-dup");
    // A re-dispatch after completion is answered from the cache.
    e.sched.wait("ResultRecorded", T, |b| {
        b["run_id"] == "r-dup" && b["duplicate"] == true
    });
    assert_eq!(
        w.metric("astra_worker_tasks_started_total"),
        Some(1.0),
        "the task ran once; log:\n{}",
        w.log_tail()
    );
    assert!(
        w.metric("astra_worker_duplicate_dispatches_total")
            .unwrap_or(0.0)
            >= 2.0
    );
}

/// Two different tasks with one concurrency key: the second is refused without running.
pub fn concurrency_violation(d: &Drivers) {
    let mut e = env(d, &[]);
    let w = worker(d, &e, "w-ck", 4, vec![]);
    registered(&mut e, "w-ck");
    e.sched.inject(
        "w-ck",
        dispatch(
            "d-1",
            "r-ck",
            "t1",
            "sleep",
            "shared-key",
            json!({"ms": 1500}),
        ),
    );
    wait_metric(&w, "astra_worker_tasks_started_total", |v| v >= 1.0);
    e.sched.inject(
        "w-ck",
        dispatch("d-2", "r-ck", "t2", "echo", "shared-key", json!({})),
    );
    let err = e.sched.wait("CommandErrorRecorded", T, |b| {
        b["code"] == "E.CMD.CONCURRENCY_VIOLATION"
    });
    assert!(
        err["message"].as_str().unwrap_or("").contains("shared-key"),
        "{err}"
    );
    e.sched.settle(Duration::from_millis(200));
    assert_eq!(w.metric("astra_worker_tasks_started_total"), Some(1.0));
    assert_eq!(
        w.metric("astra_worker_concurrency_violations_total"),
        Some(1.0)
    );
}

/// The scheduler drops the socket: the worker reconnects, registers again (twice, for the
/// superseded-session workaround) and keeps serving.
pub fn reconnect(d: &Drivers) {
    let mut e = env(d, &[]);
    let w = worker(d, &e, "w-rc", 2, vec![]);
    registered(&mut e, "w-rc");
    e.sched.drop_connections();
    wait_metric(&w, "astra_worker_reconnects_total", |v| v >= 1.0);
    let before = e.sched.count("Registered", |b| b["worker_id"] == "w-rc");
    let deadline = std::time::Instant::now() + T;
    while e.sched.count("Registered", |b| b["worker_id"] == "w-rc") < before + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no repeat register after reconnect; log:\n{}",
            w.log_tail()
        );
        e.sched.settle(Duration::from_millis(100));
    }
    e.sched
        .submit(run("r-after", vec![node("x", "echo", json!({}), &[])]));
    assert_eq!(run_finished(&mut e, "r-after"), "succeeded");
}

/// A result persisted but never acked survives kill -9: the restarted worker re-sends it.
pub fn outbox_replay_after_kill(d: &Drivers) {
    let mut e = env(d, &[]);
    let port = e.sched.port();
    let mut w = worker(
        d,
        &e,
        "w-kill",
        2,
        vec![
            ("ASTRA_WORKER_RECONNECT_MIN_MS", "2000".into()),
            ("ASTRA_WORKER_RECONNECT_MAX_MS", "2000".into()),
        ],
    );
    registered(&mut e, "w-kill");
    e.sched.submit(run(
        "r-kill",
        vec![node("slow", "sleep", json!({"ms": 1200}), &[])],
    ));
    e.sched.wait("Dispatched", T, |b| b["run_id"] == "r-kill");
    // The scheduler dies while the task runs: the result can only go to the outbox.
    e.sched.kill();
    let outbox = e.dir.path().join("data").join("outbox");
    let deadline = std::time::Instant::now() + T;
    // Format-agnostic: some file of the outbox holds the result frame (its run id).
    let persisted = || {
        std::fs::read_dir(&outbox).is_ok_and(|d| {
            d.filter_map(Result::ok).any(|f| {
                std::fs::read(f.path())
                    .is_ok_and(|b| b.windows(b"r-kill".len()).any(|w| w == b"r-kill"))
            })
        })
    };
    while !persisted() {
        assert!(
            std::time::Instant::now() < deadline,
            "result never persisted; log:\n{}",
            w.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    w.sigkill();
    // A new scheduler on the same port (state lost, like the real one), then a new worker
    // process on the same data dir.
    e.sched = RefSched::start(&d.sched, &format!("127.0.0.1:{port}"), &[]);
    let w2 = worker(d, &e, "w-kill", 2, vec![]);
    registered(&mut e, "w-kill");
    let ignored = e
        .sched
        .wait("ResultIgnored", T, |b| b["run_id"] == "r-kill");
    assert_eq!(ignored["task_id"], "slow");
    wait_metric(&w2, "astra_worker_outbox_depth", |v| v == 0.0);
}

/// Garbage, a frame with an unknown key and an invalid dispatch: the worker answers what it
/// can, keeps the connection, and keeps serving.
pub fn malformed_frames(d: &Drivers) {
    let mut e = env(d, &[]);
    let w = worker(d, &e, "w-bad", 2, vec![]);
    registered(&mut e, "w-bad");
    e.sched.inject("w-bad", json!("this is not an envelope"));
    let mut bad = dispatch("d-bad", "r-bad", "t-bad", "echo", "k-bad", json!({}));
    bad["payload"]["surprise"] = json!(true);
    e.sched.inject("w-bad", bad);
    let err = e
        .sched
        .wait("CommandErrorRecorded", T, |b| b["code"] == "E.CMD.INVALID");
    assert!(
        err["message"].as_str().unwrap_or("").contains("surprise"),
        "{err}"
    );
    assert!(
        w.metric("astra_worker_frames_rejected_total")
            .unwrap_or(0.0)
            >= 2.0
    );
    e.sched
        .submit(run("r-ok", vec![node("x", "echo", json!({}), &[])]));
    assert_eq!(run_finished(&mut e, "r-ok"), "succeeded");
    assert_eq!(
        w.metric("astra_worker_reconnects_total"),
        Some(0.0),
        "the connection was kept"
    );
}

/// SIGTERM drains: re-register with no packages, finish the running task, flush, exit 0.
pub fn drain_on_sigterm(d: &Drivers) {
    let mut e = env(d, &[]);
    let mut w = worker(d, &e, "w-drain", 2, vec![]);
    registered(&mut e, "w-drain");
    e.sched.submit(run(
        "r-drain",
        vec![node("slow", "sleep", json!({"ms": 800}), &[])],
    ));
    e.sched.wait("Dispatched", T, |b| b["run_id"] == "r-drain");
    w.sigterm();
    e.sched.wait("Registered", T, |b| {
        b["worker_id"] == "w-drain" && b["packages"].as_array().is_some_and(|p| p.is_empty())
    });
    let code = w.wait_exit(T);
    assert_eq!(code, Some(0), "log:\n{}", w.log_tail());
    assert_eq!(
        run_finished(&mut e, "r-drain"),
        "succeeded",
        "the in-flight task finished and its result was flushed"
    );
}

/// `verify` passes against the reference scheduler and fails clearly against nothing.
pub fn verify_command(d: &Drivers) {
    let e = env(d, &[]);
    let out = std::process::Command::new(&d.worker)
        .args(["verify", "--url", &e.sched.url, "--timeout", "10"])
        .output()
        .expect("run verify");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("heartbeat sent"), "{stdout}");
    let dead = format!("ws://127.0.0.1:{}/ws/worker", free_port());
    let out = std::process::Command::new(&d.worker)
        .args(["verify", "--url", &dead, "--timeout", "3"])
        .output()
        .expect("run verify");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAILED"));
}

/// `config show`: every value with its source, the token never printed.
pub fn config_show_redacts(d: &Drivers) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("w.yaml"),
        "worker_id: from-file\nauth_token: file-secret-123\n",
    )
    .expect("write");
    let out = std::process::Command::new(&d.worker)
        .args(["config", "show", "--tenant", "t-cli"])
        .env("ASTRA_WORKER_CONFIG_FILE", dir.path().join("w.yaml"))
        .env("ASTRA_WORKER_WORKER_ID", "from-env")
        .env("ASTRA_WORKER_HEARTBEAT_INTERVAL_SECONDS", "7")
        .current_dir(dir.path())
        .output()
        .expect("config show");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!s.contains("file-secret-123"), "token printed:\n{s}");
    let line = |f: &str| {
        s.lines()
            .find(|l| l.trim_start().starts_with(&format!("{f} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("worker_id").contains("from-file"),
        "file beats env: {}",
        line("worker_id")
    );
    assert!(
        line("tenant").contains("t-cli") && line("tenant").contains("--tenant"),
        "{}",
        line("tenant")
    );
    assert!(
        line("heartbeat_interval_seconds").contains('7')
            && line("heartbeat_interval_seconds")
                .contains("ASTRA_WORKER_HEARTBEAT_INTERVAL_SECONDS")
    );
    assert!(line("auth_token").contains("***"));
    let bad = std::process::Command::new(&d.worker)
        .args(["config", "show"])
        .env("ASTRA_WORKER_HEARTBEAT_INTERVAL_SECONDS", "soon")
        .current_dir(dir.path())
        .output()
        .expect("config show");
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("heartbeat_interval_seconds")
            && err.contains("ASTRA_WORKER_HEARTBEAT_INTERVAL_SECONDS"),
        "{err}"
    );
}

fn sha256_of(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// tar.gz of `dir`'s contents (manifest at the archive root), readable by the sandbox uid.
fn tar_gz(dir: &std::path::Path, out: &std::path::Path) {
    let st = std::process::Command::new("tar")
        .arg("-czf")
        .arg(out)
        .arg("-C")
        .arg(dir)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
}

/// A `process`-runtime package: a shell handler reading the context on stdin, writing
/// feedback on fd 3 and the result on stdout.
fn process_package(root: &std::path::Path) -> std::path::PathBuf {
    let dir = root.join("shell-pkg");
    std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&json!({
            "schemaVersion": "1.0.0", "name": "shell.pkg", "version": "2.0.0", "description": "shell handler",
            "adapters": [{"name": "sh", "entrypoint": "bin.handler", "capabilities": ["run"], "metadata": {"runtime": "process", "command": "bin/handler.sh"}}],
            "python": {"requires": ">=3.8"},
            "nodes": [{"type": "shell.pkg.greet", "status": "published", "category": "Test", "label": "Greet", "adapter": "sh", "handler": "greet", "schema": {}}]
        }))
        .expect("json"),
    )
    .expect("manifest");
    let script = "#!/bin/sh\ncat >/dev/null\necho '{\"stage\":\"working\",\"progress\":0.5,\"message\":\"halfway\"}' >&3\necho '{\"greeting\":\"hello from a sandboxed process\"}'\n";
    std::fs::write(dir.join("bin/handler.sh"), script).expect("script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("bin/handler.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    dir
}

/// Serves one file over HTTP on 127.0.0.1 for up to `n` requests, then stops.
fn serve_file(path: std::path::PathBuf, n: usize, trickle: Option<Duration>) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for _ in 0..n {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = std::fs::read(&path).unwrap_or_default();
            let _ = write!(s, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            match trickle {
                // A slow mirror: the body in ~30 writes, `pause` apart.
                Some(pause) => {
                    for chunk in body.chunks(body.len().div_ceil(30).max(1)) {
                        let _ = s.write_all(chunk);
                        std::thread::sleep(pause);
                    }
                }
                None => {
                    let _ = s.write_all(&body);
                }
            }
        }
    });
    format!("http://{addr}/shell-pkg.cwx")
}

fn pkg_install(name: &str, version: &str, url: &str, sha: &str) -> Value {
    json!({"type":"pkg.install","id":format!("pi-{name}-{}", url.len()),"ts":ts(),"tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"ack":{"request":true},
           "payload":{"name":name,"version":version,"url":url,"sha256":sha}})
}

/// pkg.install over the wire (file:// with the Python example package, http:// with a
/// process package), sha256 mismatch and a hostile archive refused, re-register after each
/// change, runs on both runtimes with feedback before the result, then pkg.uninstall.
pub fn packages_over_the_wire(d: &Drivers, example_pkg: &std::path::Path) {
    let mut e = env(d, &[]);
    let _w = worker(d, &e, "w-pkg", 4, vec![]);
    registered(&mut e, "w-pkg");
    let root = e.dir.path().join("archives");
    std::fs::create_dir_all(&root).expect("mkdir");
    // Sandboxed tasks run as another uid: archives and their dir must be readable.
    use std::os::unix::fs::PermissionsExt;
    for p in [e.dir.path(), root.as_path()] {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
    }

    // 1. sha256 mismatch: nothing installed.
    let py_tgz = root.join("example.tgz");
    tar_gz(example_pkg, &py_tgz);
    let good_sha = sha256_of(&py_tgz);
    e.sched.inject(
        "w-pkg",
        pkg_install(
            "example.pkg",
            "1.0.0",
            &format!("file://{}", py_tgz.display()),
            &"0".repeat(64),
        ),
    );
    e.sched.wait("PkgEvent", T, |b| {
        b["name"] == "example.pkg" && b["status"] == "failed"
    });

    // 2. A hostile archive (a member escaping with ../) is refused and writes nothing outside.
    let evil = root.join("evil.tgz");
    let py = "import tarfile,io,sys\nt=tarfile.open(sys.argv[1],'w:gz')\nfor n,b in [('manifest.json',b'{}'),('../escaped.txt',b'x')]:\n i=tarfile.TarInfo(n); i.size=len(b); t.addfile(i,io.BytesIO(b))\nt.close()\n";
    let st = std::process::Command::new("python3")
        .args(["-c", py])
        .arg(&evil)
        .status()
        .expect("python3");
    assert!(st.success());
    e.sched.inject(
        "w-pkg",
        pkg_install(
            "evil.pkg",
            "1.0.0",
            &format!("file://{}", evil.display()),
            &sha256_of(&evil),
        ),
    );
    e.sched.wait("PkgEvent", T, |b| {
        b["name"] == "evil.pkg" && b["status"] == "failed"
    });
    assert!(
        !e.dir.path().join("packages").join("escaped.txt").exists()
            && !e.dir.path().join("escaped.txt").exists()
    );

    // 3. file:// install of the Python example package: installed, then re-registered.
    e.sched.inject(
        "w-pkg",
        pkg_install(
            "example.pkg",
            "1.0.0",
            &format!("file://{}", py_tgz.display()),
            &good_sha,
        ),
    );
    e.sched.wait("PkgEvent", T, |b| {
        b["name"] == "example.pkg" && b["status"] == "installed"
    });
    e.sched.wait("Registered", T, |b| {
        b["packages"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["name"] == "example.pkg"))
    });

    // 4. http:// install of a process package (the URL has a misleading extension).
    let shell_tgz = root.join("shell.tgz");
    tar_gz(&process_package(&root), &shell_tgz);
    let url = serve_file(shell_tgz.clone(), 2, None);
    e.sched.inject(
        "w-pkg",
        pkg_install("shell.pkg", "2.0.0", &url, &sha256_of(&shell_tgz)),
    );
    e.sched.wait("PkgEvent", T, |b| {
        b["name"] == "shell.pkg" && b["status"] == "installed"
    });
    e.sched.wait("Registered", T, |b| {
        b["packages"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["name"] == "shell.pkg"))
    });

    // 5. Runs on the Python and process runtimes; feedback arrives before the result.
    let pnode = |id: &str, t: &str, params: Value| json!({"id": id, "node_type": t, "package_name": "example.pkg", "package_version": "1.0.0", "parameters": params});
    e.sched.submit(json!({"run_id": "r-py", "nodes": [pnode("echo", "example.pkg.echo", json!({"message": "hi"})), pnode("fb", "example.pkg.feedback_demo", json!({}))]}));
    e.sched.submit(json!({"run_id": "r-sh", "nodes": [{"id": "greet", "node_type": "shell.pkg.greet", "package_name": "shell.pkg", "package_version": "2.0.0"}]}));
    assert_eq!(run_finished(&mut e, "r-py"), "succeeded");
    assert_eq!(run_finished(&mut e, "r-sh"), "succeeded");
    for (run, node) in [("r-py", "fb"), ("r-sh", "greet")] {
        let pos = |kind: &str| {
            e.sched.seen.iter().position(|ev| {
                ev.get(kind)
                    .is_some_and(|b| b["run_id"] == run && b["node_id"] == node)
            })
        };
        let first_fb =
            pos("FeedbackRecorded").unwrap_or_else(|| panic!("no feedback from {run}/{node}"));
        let result = pos("ResultRecorded").expect("result");
        assert!(
            first_fb < result,
            "feedback of {run}/{node} must precede its result"
        );
    }

    // 6. Uninstall: terminal pkg.event, then a register without the package.
    e.sched.inject("w-pkg", json!({"type":"pkg.uninstall","id":"pu-1","ts":ts(),"tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"ack":{"request":true},"payload":{"name":"shell.pkg","version":"2.0.0"}}));
    e.sched.wait("Registered", T, |b| {
        b["packages"].as_array().is_some_and(|p| {
            !p.iter().any(|x| x["name"] == "shell.pkg")
                && p.iter().any(|x| x["name"] == "example.pkg")
        })
    });
    assert_eq!(e.sched.count("Rejected", |_| true), 0);
}

/// Builds each hostile archive of the installer's rules with Python's tarfile/zipfile
/// (files named `<case>.<ext>` in `dir`).
fn hostile_archives(dir: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
    let py = r#"
import io, sys, tarfile, zipfile, os
d = sys.argv[1]
M = b'{"schemaVersion":"1.0.0","name":"evil.pkg","version":"1.0.0","description":"x","adapters":[{"name":"a","entrypoint":"m","capabilities":["c"]}],"python":{"requires":">=3"},"nodes":[{"type":"t","status":"published","category":"c","label":"l","adapter":"a","handler":"h","schema":{}}]}'
def tar(name, members):
    with tarfile.open(os.path.join(d, name + ".tgz"), "w:gz") as t:
        for m in members:
            info, data = m
            t.addfile(info, io.BytesIO(data) if data is not None else None)
def f(n, b):
    i = tarfile.TarInfo(n); i.size = len(b); return (i, b)
def link(n, target, kind):
    i = tarfile.TarInfo(n); i.type = kind; i.linkname = target; return (i, None)
def dev(n):
    i = tarfile.TarInfo(n); i.type = tarfile.CHRTYPE; i.devmajor = 1; i.devminor = 3; return (i, None)
tar("traversal", [f("manifest.json", M), f("../escaped.txt", b"x")])
tar("absolute", [f("manifest.json", M), f("/tmp/astra-absolute-escape.txt", b"x")])
tar("symlink", [f("manifest.json", M), link("adapters", "/tmp", tarfile.SYMTYPE), f("adapters/escaped.txt", b"x")])
tar("hardlink", [f("manifest.json", M), link("passwd", "/etc/passwd", tarfile.LNKTYPE)])
tar("device", [f("manifest.json", M), dev("null")])
tar("duplicate", [f("manifest.json", M), f("manifest.json", M)])
tar("no-manifest", [f("README", b"nothing here")])
tar("bad-manifest", [f("manifest.json", b'{"name": 1}')])
with zipfile.ZipFile(os.path.join(d, "bomb.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("manifest.json", M)
    z.writestr("big.bin", b"\0" * (300 * 1024 * 1024))
"#;
    let st = std::process::Command::new("python3")
        .args(["-c", py])
        .arg(dir)
        .status()
        .expect("python3");
    assert!(st.success(), "could not build the hostile archives");
    [
        "traversal.tgz",
        "absolute.tgz",
        "symlink.tgz",
        "hardlink.tgz",
        "device.tgz",
        "duplicate.tgz",
        "no-manifest.tgz",
        "bad-manifest.tgz",
        "bomb.zip",
    ]
    .iter()
    .map(|n| (n.to_string(), dir.join(n)))
    .collect()
}

/// Every hostile archive is refused over the wire with `pkg.event failed`, nothing lands
/// outside the staging area, and the previous install stays runnable.
pub fn hostile_archives_over_the_wire(d: &Drivers, example_pkg: &std::path::Path) {
    let mut e = env(d, &[]);
    let _w = worker(d, &e, "w-hostile", 2, vec![]);
    registered(&mut e, "w-hostile");
    let root = e.dir.path().join("archives");
    std::fs::create_dir_all(&root).expect("mkdir");
    use std::os::unix::fs::PermissionsExt;
    for p in [e.dir.path(), root.as_path()] {
        let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
    }
    let good = root.join("example.tgz");
    tar_gz(example_pkg, &good);
    e.sched.inject(
        "w-hostile",
        pkg_install(
            "example.pkg",
            "1.0.0",
            &format!("file://{}", good.display()),
            &sha256_of(&good),
        ),
    );
    e.sched.wait("PkgEvent", T, |b| {
        b["name"] == "example.pkg" && b["status"] == "installed"
    });
    let _ = std::fs::remove_file("/tmp/astra-absolute-escape.txt");
    for (i, (case, path)) in hostile_archives(&root).into_iter().enumerate() {
        let mut frame = pkg_install(
            "evil.pkg",
            "1.0.0",
            &format!("file://{}", path.display()),
            &sha256_of(&path),
        );
        frame["id"] = json!(format!("hostile-{i}"));
        e.sched.inject("w-hostile", frame);
        let n = i + 1;
        let deadline = std::time::Instant::now() + T;
        while e.sched.count("PkgEvent", |b| b["name"] == "evil.pkg") < n {
            assert!(
                std::time::Instant::now() < deadline,
                "no pkg.event for hostile case {case}"
            );
            e.sched.settle(Duration::from_millis(50));
        }
        assert_eq!(
            e.sched.count("PkgEvent", |b| b["name"] == "evil.pkg"
                && b["status"] == "installed"),
            0,
            "hostile case {case} was installed"
        );
    }
    assert!(!std::path::Path::new("/tmp/astra-absolute-escape.txt").exists());
    assert!(
        !e.dir.path().join("escaped.txt").exists()
            && !e.dir.path().join("packages/escaped.txt").exists()
    );
    assert!(
        !e.dir.path().join("packages/evil.pkg").exists(),
        "nothing of evil.pkg stays in the store"
    );
    e.sched.submit(json!({"run_id": "r-still", "nodes": [{"id": "e", "node_type": "example.pkg.echo", "package_name": "example.pkg", "package_version": "1.0.0", "parameters": {"message": "ok"}}]}));
    assert_eq!(run_finished(&mut e, "r-still"), "succeeded");
}

/// A slow download does not stall the control loop: a run submitted meanwhile completes
/// before the install does.
pub fn install_does_not_block_the_loop(d: &Drivers) {
    let mut e = env(d, &[]);
    let _w = worker(d, &e, "w-slow", 2, vec![]);
    registered(&mut e, "w-slow");
    let root = e.dir.path().join("archives");
    std::fs::create_dir_all(&root).expect("mkdir");
    let tgz = root.join("shell.tgz");
    tar_gz(&process_package(&root), &tgz);
    // Trickle the body over ~3 s.
    let url = serve_file(tgz.clone(), 1, Some(Duration::from_millis(100)));
    e.sched.inject(
        "w-slow",
        pkg_install("shell.pkg", "2.0.0", &url, &sha256_of(&tgz)),
    );
    e.sched.submit(run(
        "r-during",
        vec![node("x", "sleep", json!({"ms": 100}), &[])],
    ));
    assert_eq!(run_finished(&mut e, "r-during"), "succeeded");
    assert_eq!(
        e.sched.count("PkgEvent", |_| true),
        0,
        "the run finished while the download was still going"
    );
    e.sched.wait("PkgEvent", T, |b| {
        b["name"] == "shell.pkg" && b["status"] == "installed"
    });
}
