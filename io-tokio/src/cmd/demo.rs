//! `astra-worker demo`: the whole product on one machine with no setup. A strict reference
//! scheduler (reproducing the real one's ack-registration race) serves on 127.0.0.1; a worker
//! connects over a real WebSocket; sample runs of builtin tasks execute; a summary follows.

use crate::cli::DemoArgs;
use crate::clock::Clock;
use crate::driver::{self, DriverOptions, Link};
use crate::refsched::RefScheduler;
use astra_core::scheduler::{AckRace, NodeSpec, RunSpec, RunStatus, SchedEvent, SchedulerConfig};
use astra_core::worker::{Command, Input};
use astra_host::config::WorkerSettings;
use astra_host::runner::{BUILTIN_PACKAGE, BUILTIN_VERSION};
use serde_json::json;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub async fn demo(args: DemoArgs) -> ExitCode {
    crate::logging::init(
        if args.verbose {
            astra_host::config::LogLevel::Info
        } else {
            astra_host::config::LogLevel::Warning
        },
        astra_host::config::LogFormat::Text,
    );
    match run_demo(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::from(1)
        }
    }
}

fn runs(n: u32) -> Vec<(RunSpec, RunStatus)> {
    let p = BUILTIN_PACKAGE;
    let v = BUILTIN_VERSION;
    let mut out = Vec::new();
    for i in 1..=n {
        let nodes = vec![
            NodeSpec::new("greet", "echo", p, v)
                .param("message", json!(format!("hello from run {i}"))),
            NodeSpec::new("stream", "stream", p, v)
                .after("greet")
                .param("count", json!(5))
                .param("interval_ms", json!(20))
                .param("text", json!("tokens flow as feedback frames")),
            NodeSpec::new("nap-a", "sleep", p, v)
                .after("greet")
                .param("ms", json!(150)),
            NodeSpec::new("nap-b", "sleep", p, v)
                .after("greet")
                .param("ms", json!(150)),
            NodeSpec::new("join", "echo", p, v)
                .after("stream")
                .after("nap-a")
                .after("nap-b")
                .param("done", json!(true)),
        ];
        out.push((
            RunSpec::new(&format!("demo-run-{i}"), nodes),
            RunStatus::Succeeded,
        ));
    }
    let failing = vec![NodeSpec::new("boom", "fail", p, v)
        .param("mode", json!("status"))
        .param("message", json!("this task fails on purpose"))];
    out.push((
        RunSpec::new("demo-expected-failure", failing),
        RunStatus::Failed,
    ));
    out
}

async fn run_demo(args: &DemoArgs) -> Result<bool, String> {
    let tmp = tempfile::Builder::new()
        .prefix("astra-demo-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    // The real scheduler drops acks that race its waiter registration (spec §5.1); the
    // reference one does the same here, so the worker's second ack has something to do.
    let sched_cfg = SchedulerConfig {
        ack_race: Some(AckRace {
            window: Duration::from_millis(50),
            probability: 0.5,
        }),
        ..SchedulerConfig::default()
    };
    let sched = RefScheduler::start(
        "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        sched_cfg,
    )
    .await
    .map_err(|e| format!("cannot start the reference scheduler: {e}"))?;
    let mut events = sched.subscribe();
    println!("reference scheduler listening on {}", sched.url());

    let settings = WorkerSettings {
        scheduler_ws_url: sched.url(),
        worker_id: "demo-worker".into(),
        packages_dir: tmp.path().join("packages"),
        data_dir: tmp.path().join("data"),
        concurrency_max_parallel: 4,
        heartbeat_interval_seconds: 2,
        heartbeat_jitter_seconds: 1,
        ..WorkerSettings::default()
    };
    let clock = Clock::new();
    let started = Instant::now();
    let (booted, rx, control) = super::run::start(&settings, clock)?;
    let opts = DriverOptions {
        link: Link::WebSocket {
            url: settings.scheduler_ws_url.clone(),
            max_frame_bytes: settings.max_frame_bytes,
        },
        signals: false,
        connect_timeout: Duration::from_secs(5),
    };
    let metrics = booted.agent.metrics().clone();
    let worker = tokio::spawn(driver::run(booted.worker, booted.agent, rx, clock, opts));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(SchedEvent::Registered {
                worker_id,
                packages,
                ..
            })) => {
                println!(
                    "worker {worker_id} registered after {} ms with {} package(s)",
                    started.elapsed().as_millis(),
                    packages.len()
                );
                break;
            }
            Ok(Ok(_)) => {}
            _ => return Err("the worker did not register within 30 s".into()),
        }
    }

    let plan = runs(args.runs.max(1));
    let expected: BTreeMap<String, RunStatus> =
        plan.iter().map(|(r, s)| (r.run_id.clone(), *s)).collect();
    for (run, _) in &plan {
        println!("submit {} ({} nodes)", run.run_id, run.nodes.len());
        sched.submit(run.clone());
    }
    let t0 = Instant::now();
    let mut finished: BTreeMap<String, RunStatus> = BTreeMap::new();
    let (mut dispatches, mut results, mut feedback, mut raced, mut timeouts) =
        (0u32, 0u32, 0u32, 0u32, 0u32);
    while finished.len() < expected.len() {
        let ev = match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(ev)) => ev,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            _ => break,
        };
        match &ev {
            SchedEvent::Dispatched {
                run_id,
                node_id,
                attempt,
                ..
            } => {
                dispatches += 1;
                if args.verbose || *attempt > 1 {
                    println!("  dispatch {run_id}/{node_id} (attempt {attempt})");
                }
            }
            SchedEvent::ResultRecorded {
                run_id,
                node_id,
                status,
                duplicate,
                ..
            } => {
                results += 1;
                println!(
                    "  result   {run_id}/{node_id}: {status:?}{}",
                    if *duplicate { " (duplicate)" } else { "" }
                );
            }
            SchedEvent::FeedbackRecorded { .. } => feedback += 1,
            SchedEvent::AckIgnored {
                why: astra_core::scheduler::AckIgnored::Race,
                ..
            } => raced += 1,
            SchedEvent::AckTimeout {
                run_id, node_id, ..
            } => {
                timeouts += 1;
                println!("  ack timeout {run_id}/{node_id}");
            }
            SchedEvent::RunFinished { run_id, status } => {
                println!(
                    "run {run_id} finished: {status:?} after {} ms",
                    t0.elapsed().as_millis()
                );
                finished.insert(run_id.clone(), *status);
            }
            _ => {}
        }
    }
    let elapsed = t0.elapsed();
    let _ = control.send(Input::Command(Command::Drain));
    let stopped = tokio::time::timeout(Duration::from_secs(15), worker).await;
    let rendered = metrics.render();

    println!();
    println!("summary");
    println!("  {:<24} {:>10} {:>10}", "run", "expected", "got");
    let mut ok = true;
    for (run, want) in &expected {
        let got = finished.get(run);
        let good = got == Some(want);
        ok &= good;
        println!(
            "  {:<24} {:>10} {:>10} {}",
            run,
            format!("{want:?}"),
            got.map(|s| format!("{s:?}")).unwrap_or("-".into()),
            if good { "ok" } else { "MISMATCH" }
        );
    }
    println!("  dispatches {dispatches}, results {results}, feedback frames {feedback}, acks lost to the scheduler race {raced} (settled by the second ack), ack timeouts {timeouts}");
    println!("  workload wall time {} ms", elapsed.as_millis());
    for line in rendered.lines().filter(|l| {
        l.starts_with("astra_worker_frames_sent_total{")
            || l.starts_with("astra_worker_heartbeat_sent_total ")
            || l.starts_with("astra_worker_ack_retries_total ")
    }) {
        println!("  {line}");
    }
    match stopped {
        Ok(Ok(Ok(()))) => println!("worker drained and closed cleanly"),
        Ok(Ok(Err(e))) => {
            ok = false;
            println!("worker stopped with an error: {e}");
        }
        _ => {
            ok = false;
            println!("worker did not stop within 15 s of the drain");
        }
    }
    println!("{}", if ok { "demo OK" } else { "demo FAILED" });
    Ok(ok)
}
