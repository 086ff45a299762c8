//! `astra-worker run`: the production worker.

use crate::cli::RunArgs;
use crate::clock::Clock;
use crate::driver::{self, DriverOptions, Link};
use astra_core::worker::Input;
use astra_host::agent::{boot, Booted};
use astra_host::config::{hostname, Transport, WorkerSettings};
use astra_host::runner::Sink;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub async fn run(args: RunArgs) -> ExitCode {
    let loaded = match super::load_settings(&args.overrides) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    crate::logging::init(loaded.settings.log_level, loaded.settings.log_format);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    match serve(&loaded.settings, true).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Boots the host and runs the worker until it stops.
pub async fn serve(settings: &WorkerSettings, signals: bool) -> Result<(), String> {
    let clock = Clock::new();
    let (booted, rx, _tx) = start(settings, clock)?;
    if let Some(addr) = settings.metrics_listen {
        let bound = crate::http::serve(addr, booted.agent.metrics().clone())
            .await
            .map_err(|e| format!("metrics_listen {addr}: {e}"))?;
        tracing::info!(%bound, "serving /metrics and /healthz");
    }
    let link = link_for(settings);
    tracing::info!(worker_id = %settings.worker_id, url = %settings.scheduler_ws_url, transport = ?settings.transport, "starting");
    let Booted { worker, agent, .. } = booted;
    let opts = DriverOptions {
        link,
        signals,
        connect_timeout: Duration::from_secs(10),
    };
    driver::run(worker, agent, rx, clock, opts)
        .await
        .map_err(|e| e.to_string())
}

pub fn link_for(settings: &WorkerSettings) -> Link {
    match settings.transport {
        Transport::Dummy => Link::InProcess,
        _ => Link::WebSocket {
            url: settings.scheduler_ws_url.clone(),
            max_frame_bytes: settings.max_frame_bytes,
        },
    }
}

/// Builds the machine and agent, and the channel the runner reports on. The returned sender
/// lets the caller inject commands (e.g. `Input::Command(Drain)`).
pub fn start(
    settings: &WorkerSettings,
    clock: Clock,
) -> Result<
    (
        Booted,
        mpsc::UnboundedReceiver<Input>,
        mpsc::UnboundedSender<Input>,
    ),
    String,
> {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink_tx = tx.clone();
    let sink: Sink = Arc::new(move |i| {
        let _ = sink_tx.send(i);
    });
    let booted = boot(
        settings,
        &hostname(),
        clock.wall,
        super::runtime_seed(),
        clock.now(),
        sink,
        |s, runner| astra_host::agent::packages_for(s, runner),
    )
    .map_err(|e| e.to_string())?;
    Ok((booted, rx, tx))
}
