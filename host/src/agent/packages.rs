//! The production package manager: the package store under `packages_dir` wired to the
//! runner. At start every installed package's handlers are registered; `pkg.install` /
//! `pkg.uninstall` (and the operator CLI) change the store and the registry together, so
//! the inventory reported to the scheduler is always what can actually run.

use super::PackageManager;
use crate::packages::{
    run_op, HandlerSpec, InstallLimits, InstalledPackage, PackageStore, Runtime,
};
use crate::runner::{Handler, ProcessHandler, Runner, BUILTIN_PACKAGE, BUILTIN_VERSION};
use crate::sandbox::Sandbox;
use astra_core::v1::PackageStatus;
use astra_core::work::{HandlerKey, Inventory};
use astra_core::worker::PackageOp;
use std::sync::{Arc, Mutex};

/// Builds the handler of a Python adapter (the Python bridge provides it).
pub type PythonFactory =
    Arc<dyn Fn(&InstalledPackage, &HandlerSpec) -> Result<Arc<dyn Handler>, String> + Send + Sync>;

pub struct StorePackages {
    store: PackageStore,
    runner: Runner,
    sandbox: Arc<Sandbox>,
    python: Option<PythonFactory>,
    limits: InstallLimits,
    /// One operation at a time: installs of the same name must not interleave.
    op_lock: Mutex<()>,
}

impl StorePackages {
    pub fn open(
        packages_dir: &std::path::Path,
        runner: Runner,
        sandbox: Arc<Sandbox>,
        python: Option<PythonFactory>,
    ) -> Result<StorePackages, String> {
        let store = PackageStore::open(packages_dir)
            .map_err(|e| format!("packages_dir {}: {e}", packages_dir.display()))?;
        let me = StorePackages {
            store,
            runner,
            sandbox,
            python,
            limits: InstallLimits::default(),
            op_lock: Mutex::new(()),
        };
        for pkg in me.store.list() {
            me.register(&pkg);
        }
        Ok(me)
    }

    pub fn store(&self) -> &PackageStore {
        &self.store
    }

    /// Registers one package version's handlers, replacing what was there. A package whose
    /// handlers cannot all be built is marked failed (and so not reported as runnable).
    fn register(&self, pkg: &InstalledPackage) {
        let registry = self.runner.registry();
        if pkg.status != PackageStatus::Installed {
            tracing::warn!(name = %pkg.name, version = %pkg.version, error = pkg.error.as_deref().unwrap_or("unknown"), "package is broken and will not be offered to the scheduler");
            registry.mark_failed(&pkg.name, &pkg.version);
            return;
        }
        let mut handlers: Vec<(String, Arc<dyn Handler>)> = Vec::new();
        for spec in &pkg.handlers {
            match self.handler_for(pkg, spec) {
                Ok(h) => handlers.push((spec.key.node_type.clone(), h)),
                Err(e) => {
                    tracing::warn!(name = %pkg.name, version = %pkg.version, node_type = %spec.key.node_type, error = %e, "cannot load a handler; the package is marked failed");
                    registry.mark_failed(&pkg.name, &pkg.version);
                    return;
                }
            }
        }
        tracing::info!(name = %pkg.name, version = %pkg.version, handlers = handlers.len(), "package loaded");
        registry.register_package(&pkg.name, &pkg.version, handlers);
    }

    fn handler_for(
        &self,
        pkg: &InstalledPackage,
        spec: &HandlerSpec,
    ) -> Result<Arc<dyn Handler>, String> {
        match &spec.runtime {
            Runtime::Process { args, .. } => {
                let program = pkg
                    .command_path(&spec.runtime)
                    .ok_or("process adapter without a command")?;
                let h = ProcessHandler::new(program, args.clone(), self.sandbox.clone())
                    .map_err(|e| e.to_string())?;
                Ok(Arc::new(h))
            }
            Runtime::Builtin => {
                // A manifest may expose a handler compiled into the worker under its own
                // package name: the entrypoint's attribute names the builtin node type.
                let name = spec.entrypoint.attr.rsplit('.').next().unwrap_or_default();
                self.runner
                    .registry()
                    .resolve(&HandlerKey::new(BUILTIN_PACKAGE, BUILTIN_VERSION, name))
                    .ok_or_else(|| format!("no builtin handler named `{name}` in {BUILTIN_PACKAGE} {BUILTIN_VERSION}"))
            }
            Runtime::Python => match &self.python {
                Some(f) => f(pkg, spec),
                None => Err("the Python runtime is not available in this build".into()),
            },
        }
    }
}

impl PackageManager for StorePackages {
    fn apply(&self, op: &PackageOp) -> (String, String, bool, Result<(), String>) {
        let _guard = self.op_lock.lock().unwrap_or_else(|p| p.into_inner());
        let out = run_op(&self.store, op, &self.limits);
        if out.outcome.is_ok() {
            if out.install {
                match self.store.find(&out.name, &out.version) {
                    Some(pkg) => self.register(&pkg),
                    None => {
                        return (
                            out.name,
                            out.version,
                            out.install,
                            Err("installed package vanished from the store".into()),
                        )
                    }
                }
            } else {
                self.runner
                    .registry()
                    .unregister_package(&out.name, &out.version);
            }
        }
        (out.name, out.version, out.install, out.outcome)
    }

    fn inventory(&self) -> Inventory {
        self.runner.registry().inventory()
    }
}

/// The Python runtime for AstraFlow adapters: one warm sandboxed bridge per package version
/// (see `runner::python`). The interpreter is `python3` from PATH unless `ASTRA_PYTHON`
/// names another. When no usable interpreter exists, the factory still exists and fails
/// every Python handler with the reason, so those packages are marked failed, never run.
pub fn python_factory(
    _settings: &crate::config::WorkerSettings,
    sandbox: &Arc<Sandbox>,
) -> Option<PythonFactory> {
    use crate::runner::python::{PythonConfig, PythonRuntime};
    // Created on the first package that has a Python adapter: probing interpreters inside
    // the sandbox costs tens of milliseconds and a process, which a worker without Python
    // packages should not pay at start-up.
    let sandbox = sandbox.clone();
    let runtime: Arc<std::sync::OnceLock<Result<PythonFactory, String>>> =
        Arc::new(std::sync::OnceLock::new());
    Some(Arc::new(
        move |pkg: &InstalledPackage, spec: &HandlerSpec| {
            let made = runtime.get_or_init(|| match PythonRuntime::new(PythonConfig::from_env(), sandbox.clone()) {
            Ok(rt) => Ok(rt.factory()),
            Err(e) => {
                tracing::warn!(error = %e, "the Python runtime is unavailable; packages with Python adapters will be marked failed");
                Err(e.to_string())
            }
        });
            match made {
                Ok(factory) => factory(pkg, spec),
                Err(reason) => Err(reason.clone()),
            }
        },
    ))
}
