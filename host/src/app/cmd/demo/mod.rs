//! `astra-worker demo`: the whole product on one machine with no setup. A strict reference
//! scheduler (reproducing the real one's ack-registration race) serves on 127.0.0.1; a worker
//! connects over a real WebSocket; sample runs of builtin tasks execute; a summary follows.

mod plan;

use crate::app::cli::DemoArgs;
use crate::app::clock::Clock;
use crate::app::driver::{self, DriverOptions, Link};
use crate::app::refsched::RefScheduler;
use crate::app::rt::{spawn_joined, timeout, timeout_at};
use crate::app::runtime::Runtime;
use crate::config::WorkerSettings;
use astra_core::scheduler::{AckRace, RunStatus, SchedEvent, SchedulerConfig};
use astra_core::worker::{Command, Input};
use plan::runs;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub async fn demo<R: Runtime>(rt: &R, args: DemoArgs) -> ExitCode {
    crate::app::logging::init(
        if args.verbose {
            crate::config::LogLevel::Info
        } else {
            crate::config::LogLevel::Warning
        },
        crate::config::LogFormat::Text,
    );
    match run_demo(rt, &args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run_demo<R: Runtime>(rt: &R, args: &DemoArgs) -> Result<bool, String> {
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
        rt,
        "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
        sched_cfg,
    )
    .await
    .map_err(|e| format!("cannot start the reference scheduler: {e}"))?;
    let events = sched.subscribe();
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
    let (booted, rx, control) = super::run::start(rt, &settings, clock).await?;
    let opts = DriverOptions {
        link: Link::WebSocket {
            url: settings.scheduler_ws_url.clone(),
            max_frame_bytes: settings.max_frame_bytes,
        },
        signals: false,
        connect_timeout: Duration::from_secs(5),
    };
    let metrics = booted.agent.metrics().clone();
    let worker_rt = rt.clone();
    let worker = spawn_joined(rt, async move {
        driver::run(&worker_rt, booted.worker, booted.agent, rx, clock, opts).await
    });

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match timeout_at(rt, deadline, events.recv()).await {
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
        let ev = match timeout_at(rt, deadline, events.recv()).await {
            Ok(Ok(ev)) => ev,
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
    let _ = control.try_send(Input::Command(Command::Drain));
    let stopped = timeout(rt, Duration::from_secs(15), worker.join()).await;
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
        Ok(Some(Ok(()))) => println!("worker drained and closed cleanly"),
        Ok(Some(Err(e))) => {
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
