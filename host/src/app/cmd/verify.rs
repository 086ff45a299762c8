//! `astra-worker verify`: connect, handshake, register, one heartbeat; report each step with
//! its time. Uses the real machine and driver with the builtin package only.

use crate::app::cli::{Overrides, VerifyArgs};
use crate::app::clock::Clock;
use crate::app::rt::timeout;
use crate::app::runtime::{Message, Runtime, WebSocketConfig};
use crate::app::settings::{load_settings, runtime_seed};
use astra_core::worker::{Action, Incoming, Input, SessionState, Worker};
use futures_util::future::{select, Either};
use futures_util::{SinkExt, StreamExt};
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub async fn verify<R: Runtime>(rt: &R, args: VerifyArgs) -> ExitCode {
    let loaded = match load_settings(&Overrides {
        url: args.url.clone(),
        ..Default::default()
    }) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let s = loaded.settings;
    let worker_id = args
        .worker_id
        .clone()
        .unwrap_or_else(|| format!("{}-verify", s.worker_id));
    let clock = Clock::new();
    let mut cfg = s.to_worker_config(&crate::config::hostname(), clock.wall, runtime_seed());
    cfg.worker_id = worker_id.clone();
    cfg.rehandshake_delay = None;
    match check(
        rt,
        &s.scheduler_ws_url,
        cfg,
        clock,
        Duration::from_secs(args.timeout.max(1)),
    )
    .await
    {
        Ok(()) => {
            println!("OK: {} accepted worker {worker_id}", s.scheduler_ws_url);
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("FAILED: {e}");
            ExitCode::from(1)
        }
    }
}

async fn check<R: Runtime>(
    rt: &R,
    url: &str,
    cfg: astra_core::worker::WorkerConfig,
    clock: Clock,
    limit: Duration,
) -> Result<(), String> {
    let t0 = Instant::now();
    let step = |what: &str| println!("  {:>6} ms  {what}", t0.elapsed().as_millis());
    let mut ws = timeout(rt, limit, rt.connect_ws(url, WebSocketConfig::default()))
        .await
        .map_err(|_| format!("no answer from {url} within {} s", limit.as_secs()))?
        .map_err(|e| format!("cannot open the WebSocket {url}: {e} (is the path /ws/worker?)"))?;
    step("connected");
    let mut w = Worker::new(cfg);
    let mut inventory = astra_core::work::Inventory::default();
    inventory.packages.insert(astra_core::v1::PackageEntry {
        name: crate::runner::BUILTIN_PACKAGE.into(),
        version: crate::runner::BUILTIN_VERSION.into(),
        status: astra_core::v1::PackageStatus::Installed,
    });
    w.handle(clock.now(), Input::SetInventory(inventory));
    w.handle(clock.now(), Input::Start);
    w.handle(clock.now(), Input::Connected);
    let deadline = Instant::now() + limit;
    let mut last_state = SessionState::New;
    loop {
        while let Some(a) = w.poll_action() {
            match a {
                Action::Send(f) => ws
                    .send(Message::text(f.text().to_string()))
                    .await
                    .map_err(|e| format!("send failed: {e}"))?,
                Action::Close { reason, .. } => {
                    return Err(format!("gave up: {reason} (the scheduler never acked)"))
                }
                _ => {}
            }
        }
        if w.state() != last_state {
            last_state = w.state();
            match last_state {
                SessionState::Handshaking => step("handshake sent"),
                SessionState::Registering => step("handshake acked, register sent"),
                _ => {}
            }
        }
        if w.stats().heartbeats_sent >= 1 {
            step("register acked, heartbeat sent");
            let _ = ws.send(Message::Close(None)).await;
            return Ok(());
        }
        let next = w
            .poll_timeout()
            .map(|t| clock.to_std(t))
            .unwrap_or(deadline)
            .min(deadline);
        match select(ws.next(), rt.timer(next)).await {
            Either::Left((m, _)) => match m {
                Some(Ok(Message::Text(t))) => w.handle(clock.now(), Input::Frame(Incoming::Text(t.as_str().to_string()))),
                Some(Ok(Message::Close(c))) => return Err(format!("the scheduler closed the connection: {c:?} (a 1011 close means it rejected a frame)")),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("connection error: {e}")),
                None => return Err("the scheduler closed the connection".into()),
            },
            Either::Right(((), _)) => {
                if Instant::now() >= deadline {
                    return Err(format!("stuck in {last_state:?} after {} s", limit.as_secs()));
                }
                w.handle(clock.now(), Input::Tick);
            }
        }
    }
}
