//! Loopback benchmark of the foundation figures, all in one run so ratios are comparable:
//! core events/s (machine only), start→registered and idle RSS of the real worker process,
//! worker-side dispatch→result latency and throughput for the no-op `echo` builtin over a
//! loopback WebSocket, beside a raw tokio-tungstenite echo round trip (the floor).
//!
//! Usage: bench-loopback --worker target/x86_64-unknown-linux-gnu/release/astra-worker [--tasks 2000] [--concurrency 32]

use astra_core::time::{Instant as CoreInstant, WallClock};
use astra_core::work::{HandlerKey, Inventory, TaskOutcome};
use astra_core::worker::{Action, Incoming, Input, Worker, WorkerConfig};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

struct Args {
    worker: PathBuf,
    tasks: usize,
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args {
        worker: PathBuf::from("target/x86_64-unknown-linux-gnu/release/astra-worker"),
        tasks: 2000,
        concurrency: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--worker" => a.worker = v.into(),
            "--tasks" => a.tasks = v.parse().unwrap_or(a.tasks),
            "--concurrency" => a.concurrency = v.parse().unwrap_or(a.concurrency),
            _ => {
                eprintln!("usage: bench-loopback --worker PATH [--tasks N] [--concurrency N]");
                std::process::exit(2);
            }
        }
    }
    a
}

const TS: &str = "2025-11-03T13:21:00.100000+00:00";

/// A scheduler ack, built without a JSON value so the benchmark's own cost stays small.
/// `for_id` is always one of the worker's UUIDs (no escaping needed).
fn ack(for_id: &str) -> String {
    format!(
        r#"{{"type":"ack","id":"a-{for_id}","ts":"{TS}","tenant":"default","sender":{{"role":"scheduler","id":"scheduler-control"}},"ack":{{"for":"{for_id}"}},"payload":{{"ok":true,"for":"{for_id}"}}}}"#
    )
}

fn dispatch(i: usize) -> String {
    json!({"type":"cmd.dispatch","id":format!("d-{i}"),"ts":TS,"corr":format!("t{i}"),"seq":1,"tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"ack":{"request":true},
           "payload":{"run_id":"bench","task_id":format!("t{i}"),"node_id":format!("t{i}"),"node_type":"echo","package_name":"astra.builtin","package_version":"0.1.0","parameters":{"message":"x"},"constraints":{},"concurrency_key":format!("bench:t{i}")}}).to_string()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Core machine alone: dispatch in, ack + StartTask out, finish in, result out, ack in.
fn core_events_per_sec() -> (f64, u64) {
    let mut w = Worker::new(WorkerConfig {
        max_parallel: 1024,
        extra_ack_delays: vec![],
        wall: WallClock::new(1_700_000_000_000_000),
        ..WorkerConfig::default()
    });
    let mut inv = Inventory::default();
    inv.handlers
        .insert(HandlerKey::new("astra.builtin", "0.1.0", "echo"));
    let mut now = CoreInstant::ZERO;
    let mut events = 0u64;
    let drain = |w: &mut Worker| {
        let mut ids = Vec::new();
        while let Some(a) = w.poll_action() {
            if let Action::Send(f) = a {
                if f.kind == astra_core::v1::FrameType::Handshake
                    || f.kind == astra_core::v1::FrameType::Register
                    || f.kind == astra_core::v1::FrameType::Result
                {
                    ids.push(f.id.clone());
                }
            }
        }
        ids
    };
    w.handle(now, Input::SetInventory(inv));
    w.handle(now, Input::Start);
    w.handle(now, Input::Connected);
    let ids = drain(&mut w);
    w.handle(now, Input::Frame(Incoming::Text(ack(&ids[0]))));
    let ids = drain(&mut w);
    w.handle(now, Input::Frame(Incoming::Text(ack(&ids[0]))));
    drain(&mut w);
    let n = 50_000;
    let frames: Vec<String> = (0..n).map(dispatch).collect();
    let t0 = Instant::now();
    for (i, f) in frames.into_iter().enumerate() {
        now = CoreInstant::from_micros(i as u64 * 10);
        w.handle(now, Input::Frame(Incoming::Text(f)));
        drain(&mut w);
        let task = astra_core::work::TaskKey {
            run_id: "bench".into(),
            task_id: format!("t{i}"),
        };
        w.handle(
            now,
            Input::TaskFinished {
                task,
                outcome: TaskOutcome::succeeded(Default::default(), 0),
            },
        );
        let ids = drain(&mut w);
        for id in ids {
            w.handle(now, Input::Frame(Incoming::Text(ack(&id))));
            drain(&mut w);
            events += 1;
        }
        events += 2;
    }
    (events as f64 / t0.elapsed().as_secs_f64(), events)
}

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Where the resident memory of `pid` is, from /proc/PID/smaps: the worker binary's own
/// mappings (code, read-only data, relocated data), shared libraries, and anonymous memory
/// (heap, malloc arenas, thread stacks). In kB, in that order; `None` if unreadable.
fn rss_breakdown(pid: u32, exe: &std::path::Path) -> Option<Vec<(String, u64)>> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let exe_name = exe.file_name()?.to_str()?.to_string();
    let mut groups: std::collections::BTreeMap<String, u64> = Default::default();
    let mut current = String::new();
    for line in smaps.lines() {
        let mut parts = line.split_whitespace();
        let first = parts.next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            let perms = parts.next().unwrap_or_default();
            let path = parts.nth(3).unwrap_or("");
            let file = path.rsplit('/').next().unwrap_or(path);
            current = if file == exe_name {
                match perms {
                    p if p.contains('x') => "binary code (r-x)".into(),
                    p if p.contains('w') => "binary data (rw-)".into(),
                    _ => "binary rodata+relro (r--)".into(),
                }
            } else if path.starts_with('/') {
                "shared libraries".into()
            } else if path == "[stack]" {
                "main stack".into()
            } else if path == "[heap]" {
                "heap (brk)".into()
            } else {
                "anonymous (arenas, thread stacks)".into()
            };
        } else if first == "Rss:" {
            let kb: u64 = parts.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            *groups.entry(current.clone()).or_default() += kb;
        }
    }
    let anon = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Anonymous:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.count() as u64;
    let mut out: Vec<(String, u64)> = groups.into_iter().collect();
    out.push((
        "(of all the above: anonymous/dirty-private kB)".into(),
        anon.unwrap_or(0),
    ));
    out.push(("(threads)".into(), threads));
    Some(out)
}

async fn raw_echo_floor(samples: usize) -> Vec<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        let _ = s.set_nodelay(true);
        let mut ws = tokio_tungstenite::accept_async(s).await.expect("ws");
        while let Some(Ok(m)) = ws.next().await {
            if m.is_text() && ws.send(m).await.is_err() {
                break;
            }
        }
    });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .expect("connect");
    let payload = dispatch(0);
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        ws.send(Message::text(payload.clone())).await.expect("send");
        let _ = ws.next().await;
        out.push(t.elapsed().as_secs_f64() * 1e6);
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let (eps, events) = core_events_per_sec();
    eprintln!("core: {eps:.0} events/s ({events} events)");

    let floor = raw_echo_floor(a.tasks.max(200)).await;

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}/ws/worker", listener.local_addr().expect("addr"));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("empty.yaml"), "{}\n").expect("config");
    let t_spawn = Instant::now();
    let mut child = Command::new(&a.worker)
        .args([
            "run",
            "--url",
            &url,
            "--worker-id",
            "bench",
            "--max-parallel",
            &a.concurrency.to_string(),
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--packages-dir")
        .arg(dir.path().join("packages"))
        .env("ASTRA_WORKER_CONFIG_FILE", dir.path().join("empty.yaml"))
        .env("ASTRA_WORKER_LOG_LEVEL", "WARNING")
        .env("ASTRA_WORKER_EXTRA_ACK_DELAY_MS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn worker");
    let (s, _) = listener.accept().await.expect("accept");
    let _ = s.set_nodelay(true);
    let mut ws = tokio_tungstenite::accept_async(s).await.expect("ws accept");
    let mut registered_at = None;
    while registered_at.is_none() {
        let Some(Ok(Message::Text(t))) = ws.next().await else {
            panic!("worker went away")
        };
        let v: Value = serde_json::from_str(t.as_str()).expect("json");
        match v["type"].as_str() {
            Some("handshake") | Some("register") => {
                ws.send(Message::text(ack(v["id"].as_str().unwrap_or_default())))
                    .await
                    .expect("send");
                if v["type"] == "register" {
                    registered_at = Some(t_spawn.elapsed());
                }
            }
            _ => {}
        }
    }
    let start_to_registered = registered_at.unwrap_or_default();
    // idle a little, draining heartbeats
    let idle_until = Instant::now() + Duration::from_secs(3);
    while let Ok(Some(Ok(_))) = tokio::time::timeout(
        idle_until.saturating_duration_since(Instant::now()),
        ws.next(),
    )
    .await
    {}
    let idle_rss = rss_kb(child.id()).unwrap_or(0);
    let breakdown = rss_breakdown(child.id(), &a.worker).unwrap_or_default();

    // sequential latency: one outstanding dispatch at a time
    let mut lat = Vec::new();
    let mut send_at = std::collections::HashMap::new();
    let mut i = 0usize;
    for phase in [1usize, a.concurrency] {
        let n = a.tasks;
        let first = i;
        let t0 = Instant::now();
        let mut done = 0usize;
        let mut inflight = 0usize;
        let mut phase_lat = Vec::with_capacity(n);
        while done < n {
            while inflight < phase && i < first + n {
                send_at.insert(format!("t{i}"), Instant::now());
                ws.send(Message::text(dispatch(i))).await.expect("send");
                i += 1;
                inflight += 1;
            }
            let Some(Ok(Message::Text(t))) = ws.next().await else {
                panic!("worker went away")
            };
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            if v["type"] == "result" || v["type"] == "command.error" {
                ws.send(Message::text(ack(v["id"].as_str().unwrap_or_default())))
                    .await
                    .expect("send");
                if let Some(t) = v["corr"].as_str().and_then(|c| send_at.remove(c)) {
                    phase_lat.push(t.elapsed().as_secs_f64() * 1e6);
                }
                assert_eq!(v["type"], "result", "{v}");
                done += 1;
                inflight -= 1;
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        if phase == 1 {
            lat = phase_lat;
            println!("sequential: {n} tasks in {secs:.2} s");
        } else {
            println!("pipelined (window {phase}): {n} tasks in {secs:.2} s = {:.0} tasks/s; p50 {:.0} us, p99 {:.0} us", n as f64 / secs, pct(&mut phase_lat, 0.5), pct(&mut phase_lat, 0.99));
        }
    }
    let _ = child.kill();
    let _ = child.wait();

    let mut floor = floor;
    let (f50, f99) = (pct(&mut floor, 0.5), pct(&mut floor, 0.99));
    let (l50, l99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    println!();
    println!("| figure | astra-worker | baseline | ratio | target |");
    println!("|---|---|---|---|---|");
    println!("| core events/s (machine only, {events} events) | {eps:.0} | - | - | - |");
    println!(
        "| dispatch→result p50 (us) | {l50:.0} | raw ws echo RTT p50 {f50:.0} | {:.2}x | <= 3x |",
        l50 / f50
    );
    println!(
        "| dispatch→result p99 (us) | {l99:.0} | raw ws echo RTT p99 {f99:.0} | {:.2}x | - |",
        l99 / f99
    );
    println!(
        "| start→registered (ms) | {:.1} | - | - | < 20 ms |",
        start_to_registered.as_secs_f64() * 1e3
    );
    println!(
        "| idle RSS (MB) | {:.2} | - | - | < 5 MB |",
        idle_rss as f64 / 1024.0
    );
    println!();
    println!("idle RSS breakdown (/proc/PID/smaps, kB):");
    for (what, kb) in breakdown {
        println!("  {kb:>7}  {what}");
    }
}
