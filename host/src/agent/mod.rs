//! The host half of the control loop, shared by every driver: carries out the core's actions
//! that touch this machine (durable outbox, runner, package operations, logs, metrics) and
//! hands back only what needs the socket ([`Effect`]). A driver is then just: socket, timers,
//! signals, and this.

mod boot;
mod logging;
pub mod packages;

pub use boot::{boot, BootError, Booted, PackageManager};

use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::runner::{Runner, Sink};
use astra_core::work::TaskKey;
use astra_core::worker::{Action, Input, OutFrame, PackageOpDone, SessionState, Stats};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the driver must do on the socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Connect,
    Send(OutFrame),
    Close {
        code: u16,
        reason: String,
    },
    /// The machine stopped; exit the loop.
    Stopped,
}

pub struct HostAgent {
    runner: Runner,
    outbox: Outbox,
    packages: Arc<dyn PackageManager>,
    metrics: Arc<Metrics>,
    sink: Sink,
    node_types: BTreeMap<TaskKey, String>,
    state: SessionState,
    /// Set when the durable outbox could not be written: the machine must not send frames
    /// it could lose, so the driver stops (the operator sees the error).
    fatal: Option<String>,
}

impl HostAgent {
    /// Executes one action. Persist happens synchronously, before the following `Send`.
    pub fn apply(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Connect => return Some(Effect::Connect),
            Action::Send(f) => {
                logging::trace_out(&f);
                return Some(Effect::Send(f));
            }
            Action::Close { code, reason } => return Some(Effect::Close { code, reason }),
            Action::Stopped => return Some(Effect::Stopped),
            Action::StartTask(spec) => {
                tracing::debug!(run_id = %spec.key.run_id, task_id = %spec.key.task_id, node_type = %spec.node_type, "starting task");
                self.node_types
                    .insert(spec.key.clone(), spec.node_type.clone());
                self.runner.start(*spec, self.sink.clone());
            }
            Action::CancelTask { task, reason } => {
                tracing::info!(run_id = %task.run_id, task_id = %task.task_id, %reason, "cancelling task");
                self.runner.cancel(&task, &reason);
            }
            Action::Package { op_id, op } => {
                let packages = self.packages.clone();
                let sink = self.sink.clone();
                // Installs download and unpack: never on the control loop.
                let spawned = std::thread::Builder::new().name(format!("pkg-op-{op_id}")).spawn(move || {
                    let (name, version, install, outcome) = packages.apply(&op);
                    if let Err(e) = &outcome {
                        tracing::warn!(op_id, %name, %version, error = %e, "package operation failed");
                    } else {
                        tracing::info!(op_id, %name, %version, install, "package operation done");
                    }
                    let inventory = packages.inventory();
                    sink(Input::PackageOpFinished(PackageOpDone { op_id, name, version, install, outcome, inventory }));
                });
                if let Err(e) = spawned {
                    tracing::error!(op_id, error = %e, "could not start a package operation thread");
                }
            }
            Action::Persist(entry) => {
                if let Err(e) = self.outbox.persist(&entry) {
                    tracing::error!(id = %entry.id, error = %e, "cannot write the durable outbox; stopping to avoid losing results");
                    self.fatal = Some(format!("durable outbox write failed: {e}"));
                }
            }
            Action::Forget { id } => {
                if let Err(e) = self.outbox.forget(&id) {
                    tracing::warn!(%id, error = %e, "could not delete an acknowledged outbox entry; it will be re-sent once");
                }
            }
            Action::State(s) => {
                self.state = s;
                tracing::info!(state = ?s, "session state");
            }
            Action::Log(ev) => logging::forward(&ev),
        }
        None
    }

    /// Sees every host input before the machine does (metrics).
    pub fn observe(&mut self, input: &Input) {
        if let Input::TaskFinished { task, outcome } = input {
            if let Some(nt) = self.node_types.remove(task) {
                self.metrics.observe_task(&nt, outcome.duration_ms());
            }
        }
    }

    /// Logs an inbound text frame at DEBUG (frames may be large: truncated).
    pub fn trace_in(&self, text: &str) {
        logging::trace_in(text);
    }

    pub fn publish(&self, stats: &Stats) {
        self.metrics.update(stats, self.state);
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// A fatal host error the driver must stop on.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }
}

/// The package manager a worker runs with: the bundled `astra.builtin` package plus the
/// package store under `packages_dir`.
pub fn packages_for(
    settings: &crate::config::WorkerSettings,
    runner: &Runner,
) -> Result<Arc<dyn PackageManager>, String> {
    let sandbox = Arc::new(crate::sandbox::Sandbox::new(
        crate::sandbox::SandboxConfig::default(),
    ));
    tracing::info!(isolation = %sandbox.isolation_report(), "task sandbox");
    let python = packages::python_factory(settings, &sandbox);
    let store =
        packages::StorePackages::open(&settings.packages_dir, runner.clone(), sandbox, python)?;
    Ok(Arc::new(store))
}
