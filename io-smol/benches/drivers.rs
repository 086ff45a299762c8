//! Side-by-side benchmark of the two worker binaries, in one run so the figures compare:
//! stripped release size, start→registered, idle RSS of a registered worker, and
//! dispatch→result latency (p50/p99) and throughput of the no-op `echo` builtin over
//! loopback WebSocket against the reference scheduler (one scheduler binary for both, so
//! only the worker differs). Latency is taken between the scheduler's `Dispatched` and
//! `ResultRecorded` events (it publishes an event only once the step's frames are written).
//!
//! Run it with `bench/drivers.sh`, or:
//!   cargo bench -p astra-io-smol --bench drivers -- --tokio target/x86_64-unknown-linux-gnu/release/astra-worker \
//!     --smol target/x86_64-unknown-linux-gnu/release/astra-worker-smol [--tasks 10000] [--latency-runs 300] [--idle-secs 3]
//!     [--data-root /dev/shm] [--rounds N]
//!
//! `--tokio`/`--smol` take `PATH` or `LABEL=PATH` (e.g. `--smol before=old/astra-worker-smol`)
//! and may repeat. `--rounds N` measures every binary N times, in the given order on odd
//! rounds and reversed on even ones (so a load change during the run hits both alike), and
//! prints each round's table and then each round's throughput of every binary relative to
//! the first one.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

struct Args {
    drivers: Vec<(String, PathBuf)>,
    sched: Option<PathBuf>,
    tasks: usize,
    latency_runs: usize,
    idle_secs: u64,
    max_parallel: u32,
    /// Where the workers' data dirs go; `/dev/shm` takes the outbox fsyncs out of the figures.
    data_root: Option<PathBuf>,
    rounds: usize,
}

/// `PATH` or `LABEL=PATH`, labelled `kind` or `kind LABEL`.
fn driver(kind: &str, v: String) -> (String, PathBuf) {
    match v.split_once('=') {
        Some((label, path)) => (format!("{kind} {label}"), path.into()),
        None => (kind.to_string(), v.into()),
    }
}

fn args() -> Args {
    let mut a = Args {
        drivers: Vec::new(),
        sched: None,
        // 2000 tasks took ~0.15 s, so one scheduling hiccup on a shared machine moved a
        // round's smol/tokio ratio by tens of percent; 10,000 take ~0.7 s.
        tasks: 10_000,
        latency_runs: 300,
        idle_secs: 3,
        max_parallel: 32,
        data_root: None,
        rounds: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        // `cargo bench` passes `--bench` to harness-less benches.
        if k == "--bench" {
            continue;
        }
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--tokio" => a.drivers.push(driver("tokio", v)),
            "--smol" => a.drivers.push(driver("smol", v)),
            "--rounds" => a.rounds = v.parse().unwrap_or(a.rounds).max(1),
            "--sched" => a.sched = Some(v.into()),
            "--tasks" => a.tasks = v.parse().unwrap_or(a.tasks),
            "--latency-runs" => a.latency_runs = v.parse().unwrap_or(a.latency_runs),
            "--idle-secs" => a.idle_secs = v.parse().unwrap_or(a.idle_secs),
            "--max-parallel" => a.max_parallel = v.parse().unwrap_or(a.max_parallel),
            "--data-root" => a.data_root = Some(v.into()),
            _ => {
                eprintln!("usage: drivers --tokio PATH --smol PATH [--sched PATH] [--tasks N] [--latency-runs N] [--idle-secs S] [--max-parallel N] [--data-root DIR] [--rounds N]");
                std::process::exit(2);
            }
        }
    }
    if a.drivers.is_empty() {
        eprintln!(
            "nothing to measure: pass --tokio PATH and/or --smol PATH (bench/drivers.sh does)"
        );
        std::process::exit(2);
    }
    a
}

/// `<bin> ref-scheduler`: events stamped on arrival by a reader thread.
struct Sched {
    child: Child,
    stdin: ChildStdin,
    events: Receiver<(Instant, Value)>,
    url: String,
}

impl Sched {
    fn start(bin: &PathBuf) -> Sched {
        let mut child = Command::new(bin)
            .args(["ref-scheduler", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the reference scheduler");
        let stdin = child.stdin.take().expect("scheduler stdin");
        let stdout = child.stdout.take().expect("scheduler stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let at = Instant::now();
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send((at, v)).is_err() {
                        break;
                    }
                }
            }
        });
        let (_, first) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("scheduler address");
        let url = first["listening"]
            .as_str()
            .expect("listening url")
            .to_string();
        Sched {
            child,
            stdin,
            events: rx,
            url,
        }
    }

    fn submit(&mut self, run: Value) {
        writeln!(self.stdin, "{}", json!({ "submit": run })).expect("write control");
    }

    /// Next event of `kind` whose body satisfies `pred`, with its arrival time.
    fn wait(&self, kind: &str, pred: impl Fn(&Value) -> bool) -> (Instant, Value) {
        loop {
            let (at, ev) = self
                .events
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no {kind} event within 60 s"));
            if let Some(b) = ev.get(kind) {
                if pred(b) {
                    return (at, b.clone());
                }
            }
        }
    }
}

impl Drop for Sched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn echo_run(run_id: &str, nodes: usize) -> Value {
    let nodes: Vec<Value> = (0..nodes)
        .map(|i| json!({"id": format!("n{i}"), "node_type": "echo", "package_name": "astra.builtin", "package_version": "0.1.0", "parameters": {"message": "x"}}))
        .collect();
    json!({"run_id": run_id, "nodes": nodes})
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `comm cpu=MS wakeups=N` for every thread of `pid` (from /proc: schedstat, status).
fn thread_stats(pid: u32) -> String {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return "?".into();
    };
    let mut out = Vec::new();
    for t in dir.flatten() {
        let p = t.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let cpu_ns: u64 = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let vcs = std::fs::read_to_string(p.join("status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_default();
        out.push(format!(
            "{} cpu={}ms wakeups={vcs}",
            comm.trim(),
            cpu_ns / 1_000_000
        ));
    }
    out.sort();
    out.join(", ")
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

struct Figures {
    size_bytes: u64,
    registered_ms: f64,
    idle_rss_kib: u64,
    p50_ms: f64,
    p99_ms: f64,
    tasks_per_s: f64,
}

fn measure(name: &str, bin: &PathBuf, sched_bin: &PathBuf, a: &Args) -> Figures {
    let mut sched = Sched::start(sched_bin);
    let dir = match &a.data_root {
        Some(root) => tempfile::tempdir_in(root),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let worker_id = format!("bench-{name}");
    let t0 = Instant::now();
    let mut worker = Command::new(bin)
        .args([
            "run",
            "--url",
            &sched.url,
            "--worker-id",
            &worker_id,
            "--log-level",
            "warning",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--packages-dir")
        .arg(dir.path().join("packages"))
        .args(["--max-parallel", &a.max_parallel.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the worker");
    let (reg_at, _) = sched.wait("Registered", |b| b["worker_id"] == worker_id.as_str());
    let registered_ms = (reg_at - t0).as_secs_f64() * 1e3;
    std::thread::sleep(Duration::from_secs(a.idle_secs));
    let idle_rss_kib = rss_kib(worker.id());

    // Latency: one task at a time, so nothing queues.
    let mut lat = Vec::with_capacity(a.latency_runs);
    for i in 0..a.latency_runs {
        let run_id = format!("lat-{i}");
        sched.submit(echo_run(&run_id, 1));
        let (d_at, _) = sched.wait("Dispatched", |b| b["run_id"] == run_id.as_str());
        let (r_at, _) = sched.wait("ResultRecorded", |b| b["run_id"] == run_id.as_str());
        lat.push((r_at - d_at).as_secs_f64() * 1e3);
    }

    // Throughput: every task submitted at once (single-node runs, dispatched immediately;
    // the worker acks and queues beyond --max-parallel), until the last result.
    let start = Instant::now();
    for i in 0..a.tasks {
        sched.submit(echo_run(&format!("tp-{i}"), 1));
    }
    let mut done = 0;
    let mut last = start;
    while done < a.tasks {
        let (at, _) = sched.wait("ResultRecorded", |b| {
            b["run_id"].as_str().is_some_and(|r| r.starts_with("tp-")) && b["duplicate"] == false
        });
        done += 1;
        last = at;
    }
    let tasks_per_s = a.tasks as f64 / (last - start).as_secs_f64();
    // Which threads did the work (a socket event handled on another thread than the control
    // loop's costs a wake-up per hop): on-CPU time and voluntary context switches per thread.
    eprintln!(
        "{name}: {tasks_per_s:.0} tasks/s; threads since start: {}",
        thread_stats(worker.id())
    );

    let _ = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status();
    let _ = worker.wait();
    drop(sched);
    Figures {
        size_bytes: std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0),
        registered_ms,
        idle_rss_kib,
        p50_ms: pct(&mut lat, 0.50),
        p99_ms: pct(&mut lat, 0.99),
        tasks_per_s,
    }
}

fn main() {
    let a = args();
    let sched_bin = a.sched.clone().unwrap_or_else(|| a.drivers[0].1.clone());
    println!(
        "drivers benchmark: {} latency runs, {} throughput tasks, max_parallel {}, scheduler {}, data dirs in {}",
        a.latency_runs,
        a.tasks,
        a.max_parallel,
        sched_bin.display(),
        a.data_root
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| std::env::temp_dir().display().to_string())
    );
    let mut rounds: Vec<Vec<(String, Figures)>> = Vec::new();
    for round in 0..a.rounds {
        let mut order: Vec<usize> = (0..a.drivers.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut results: Vec<Option<(String, Figures)>> =
            (0..a.drivers.len()).map(|_| None).collect();
        for i in order {
            let (name, bin) = &a.drivers[i];
            results[i] = Some((name.clone(), measure(name, bin, &sched_bin, &a)));
        }
        let results: Vec<(String, Figures)> = results.into_iter().flatten().collect();
        if a.rounds > 1 {
            println!(
                "\nround {} of {} (load average {})",
                round + 1,
                a.rounds,
                loadavg()
            );
        }
        table(&results);
        rounds.push(results);
    }
    if a.rounds > 1 {
        println!("\nthroughput relative to {} in each round:", a.drivers[0].0);
        for (i, results) in rounds.iter().enumerate() {
            let base = results[0].1.tasks_per_s;
            let cells: Vec<String> = results
                .iter()
                .map(|(n, r)| format!("{n} {:.0}%", 100.0 * r.tasks_per_s / base))
                .collect();
            println!("  round {}: {}", i + 1, cells.join(", "));
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn table(results: &[(String, Figures)]) {
    print!("\n| figure |");
    for (n, _) in results {
        print!(" {n} |");
    }
    print!("\n|---|");
    for _ in results {
        print!("---:|");
    }
    println!();
    let row = |label: &str, f: &dyn Fn(&Figures) -> String| {
        print!("| {label} |");
        for (_, r) in results {
            print!(" {} |", f(r));
        }
        println!();
    };
    row("binary size (stripped release)", &|r| {
        format!("{:.2} MiB", r.size_bytes as f64 / 1048576.0)
    });
    row("start → registered", &|r| {
        format!("{:.1} ms", r.registered_ms)
    });
    row("idle RSS (registered)", &|r| {
        // kB as well: the two builds differ by tens of kB.
        format!(
            "{:.2} MiB ({} kB)",
            r.idle_rss_kib as f64 / 1024.0,
            r.idle_rss_kib
        )
    });
    row("dispatch → result p50", &|r| {
        format!("{:.3} ms", r.p50_ms)
    });
    row("dispatch → result p99", &|r| {
        format!("{:.3} ms", r.p99_ms)
    });
    row("throughput (echo)", &|r| {
        format!("{:.0} tasks/s", r.tasks_per_s)
    });
}
