//! Start-up: turn loaded settings into a ready core machine plus its host agent. Opens the
//! durable outbox (and feeds its entries back to the machine), builds the runner with the
//! bundled `astra.builtin` package, scans installed packages, and reports the inventory.

use super::HostAgent;
use crate::config::WorkerSettings;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, OutboxError};
use crate::runner::{register_builtins_with, Runner, RunnerConfig, Sink};
use astra_core::time::{Instant, WallClock};
use astra_core::work::Inventory;
use astra_core::worker::{Input, PackageOp, Worker};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Package operations as the host carries them out (download, verify, unpack, register
/// handlers with the runner). Blocking; called from a dedicated thread.
pub trait PackageManager: Send + Sync {
    /// Returns the package name and version acted on, whether it was an install, and the
    /// outcome (`Err` names the cause).
    fn apply(&self, op: &PackageOp) -> (String, String, bool, Result<(), String>);
    /// Everything runnable now: builtin plus installed packages and their handlers.
    fn inventory(&self) -> Inventory;
}

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(
        "cannot create {what} directory {path}: {source} (check `{field}` and its permissions)"
    )]
    Dir {
        what: &'static str,
        field: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the durable outbox: {0}")]
    Outbox(#[from] OutboxError),
    #[error("{0}")]
    Packages(String),
}

pub struct Booted {
    pub worker: Worker,
    pub agent: HostAgent,
    /// Unacknowledged frames found on disk and handed back to the machine.
    pub restored: usize,
}

/// Builds the machine and the agent. `packages` builds the package manager for the runner
/// (the store-backed one in production; tests may pass their own).
pub fn boot(
    settings: &WorkerSettings,
    hostname: &str,
    wall: WallClock,
    seed: u64,
    now: Instant,
    sink: Sink,
    packages: impl FnOnce(&WorkerSettings, &Runner) -> Result<Arc<dyn PackageManager>, String>,
) -> Result<Booted, BootError> {
    for (what, field, path) in [
        ("data", "data_dir", &settings.data_dir),
        ("packages", "packages_dir", &settings.packages_dir),
    ] {
        std::fs::create_dir_all(path).map_err(|source| BootError::Dir {
            what,
            field,
            path: path.clone(),
            source,
        })?;
    }
    let (outbox, entries) =
        Outbox::open_with(&settings.data_dir.join("outbox"), settings.outbox_sync)?;
    let runner = Runner::new(RunnerConfig {
        data_dir: settings.data_dir.join("tasks"),
        default_timeout: Duration::from_secs(settings.task_timeout_seconds.max(1)),
        worker_id: settings.worker_id.clone(),
        tenant: settings.tenant.clone(),
    });
    register_builtins_with(
        runner.registry(),
        &crate::ai::AiSettings::from_config(settings),
    );
    let packages = packages(settings, &runner).map_err(BootError::Packages)?;
    let inventory = packages.inventory();

    let mut cfg = settings.to_worker_config(hostname, wall, seed);
    cfg.log_level = super::logging::core_log_level();
    let mut worker = Worker::new(cfg);
    let restored = entries.len();
    if restored > 0 {
        tracing::info!(
            count = restored,
            "found unacknowledged frames in the outbox; they will be re-sent after registration"
        );
    }
    worker.handle(now, Input::Restore(entries));
    worker.handle(now, Input::SetInventory(inventory));
    let agent = HostAgent {
        runner,
        outbox,
        packages,
        metrics: Arc::new(Metrics::new()),
        sink,
        node_types: BTreeMap::new(),
        state: worker.state(),
        fatal: None,
    };
    Ok(Booted {
        worker,
        agent,
        restored,
    })
}
