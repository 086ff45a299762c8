//! `astra-worker run`: the production worker.

use crate::agent::{boot, Booted};
use crate::app::cli::RunArgs;
use crate::app::clock::Clock;
use crate::app::driver::{self, DriverOptions, Link};
use crate::app::rt::unblock;
use crate::app::runtime::Runtime;
use crate::app::settings::{load_settings, runtime_seed};
use crate::config::{hostname, Transport, WorkerSettings};
use crate::runner::Sink;
use astra_core::worker::Input;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

pub async fn run<R: Runtime>(rt: &R, args: RunArgs) -> ExitCode {
    let loaded = match load_settings(&args.overrides) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    crate::app::logging::init(loaded.settings.log_level, loaded.settings.log_format);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    match serve(rt, &loaded.settings, true).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Boots the host and runs the worker until it stops.
pub async fn serve<R: Runtime>(
    rt: &R,
    settings: &WorkerSettings,
    signals: bool,
) -> Result<(), String> {
    let clock = Clock::new();
    let (booted, rx, _tx) = start(rt, settings, clock).await?;
    if let Some(addr) = settings.metrics_listen {
        let bound = crate::app::http::serve(rt, addr, booted.agent.metrics().clone())
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
    driver::run(rt, worker, agent, rx, clock, opts)
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

/// Builds the machine and agent (file system work: on the blocking pool), and the channel
/// the runner reports on. The returned sender lets the caller inject commands (e.g.
/// `Input::Command(Drain)`).
pub async fn start<R: Runtime>(
    rt: &R,
    settings: &WorkerSettings,
    clock: Clock,
) -> Result<
    (
        Booted,
        async_channel::Receiver<Input>,
        async_channel::Sender<Input>,
    ),
    String,
> {
    let (tx, rx) = async_channel::unbounded();
    let sink_tx = tx.clone();
    // Unbounded: `try_send` only fails once the loop is gone, and then nobody listens.
    let sink: Sink = Arc::new(move |i| {
        let _ = sink_tx.try_send(i);
    });
    let settings = settings.clone();
    let booted = unblock(rt, move || {
        boot(
            &settings,
            &hostname(),
            clock.wall,
            runtime_seed(),
            clock.now(),
            sink,
            crate::agent::packages_for,
        )
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    Ok((booted, rx, tx))
}
