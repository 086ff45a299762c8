//! The `python` runtime: the interpreter found at start, the bridge files, the spawner
//! thread, and one warm bridge slot per installed package version.

use super::bridge::{Bridge, Launch};
use super::config::PythonConfig;
use super::error::PythonError;
use super::files::BridgeFiles;
use super::handler::PythonHandler;
use super::interpreter::{self, Interpreter};
use super::spawner::Spawner;
use crate::packages::{HandlerSpec, InstalledPackage, Runtime};
use crate::runner::handler::Handler;
use crate::sandbox::Sandbox;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections only insert/remove whole entries; poison carries no meaning.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds handlers for `StorePackages` (the same type as `agent::packages::PythonFactory`).
pub type HandlerFactory =
    Arc<dyn Fn(&InstalledPackage, &HandlerSpec) -> Result<Arc<dyn Handler>, String> + Send + Sync>;

/// Identifies one installed copy of a package version. A reinstall of the same version
/// writes a new directory (new manifest inode), so it gets a fresh bridge instead of one
/// with the old modules already imported.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PackageKey {
    name: String,
    version: String,
    dir: PathBuf,
    manifest: (u64, u64, i64, i64),
}

pub(crate) struct RuntimeInner {
    pub(crate) config: PythonConfig,
    interpreter: Result<Interpreter, String>,
    files: BridgeFiles,
    spawner: Spawner,
    packages: Mutex<HashMap<PackageKey, Weak<PackageBridge>>>,
}

/// The bridge of one package version, shared by all its handlers. When the package is
/// unregistered and its last running task ends, this is dropped and so is the process.
pub(crate) struct PackageBridge {
    runtime: Arc<RuntimeInner>,
    key: PackageKey,
    pub(crate) label: String,
    current: Mutex<Option<Arc<Bridge>>>,
}

impl PackageBridge {
    /// The live bridge, started (or restarted after a death) on demand. Concurrent callers
    /// wait for the same start.
    pub(crate) fn get(&self) -> Result<Arc<Bridge>, PythonError> {
        let mut current = lock(&self.current);
        if let Some(bridge) = current.as_ref() {
            match bridge.dead() {
                None => return Ok(bridge.clone()),
                Some(reason) => {
                    tracing::info!(bridge = %self.label, %reason, "restarting the Python bridge")
                }
            }
        }
        // The dead bridge goes first, so its uid and home are released before the new start.
        *current = None;
        let rt = &self.runtime;
        let interpreter = rt
            .interpreter
            .as_ref()
            .map_err(|e| PythonError::NoInterpreter(e.clone()))?;
        let bridge = Bridge::start(Launch {
            spawner: &rt.spawner,
            python: &interpreter.path,
            script: &rt.files.script(),
            shims: &rt.files.shims(),
            package_dir: &self.key.dir,
            home: rt.files.new_home(&self.label)?,
            label: self.label.clone(),
            config: &rt.config,
        })?;
        let bridge = Arc::new(bridge);
        *current = Some(bridge.clone());
        Ok(bridge)
    }

    fn live_pid(&self) -> Option<(i32, String)> {
        let current = lock(&self.current);
        let bridge = current.as_ref()?;
        bridge
            .dead()
            .is_none()
            .then(|| (bridge.pid(), bridge.python_version().to_string()))
    }
}

/// A running bridge, for diagnostics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeInfo {
    pub package: String,
    pub version: String,
    pub pid: i32,
    pub python: String,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct PythonRuntime {
    inner: Arc<RuntimeInner>,
}

impl PythonRuntime {
    /// Writes the bridge files, starts the spawner thread and probes the interpreter in
    /// the sandbox. A missing or unusable interpreter is not an error here: every Python
    /// handler then fails to load with the reason (the package is marked failed).
    pub fn new(config: PythonConfig, sandbox: Arc<Sandbox>) -> Result<PythonRuntime, PythonError> {
        let files = BridgeFiles::write(&config.cache_root)?;
        let probe_dir = files.new_home("probe")?;
        let interpreter =
            interpreter::locate(&sandbox, &config.python, &probe_dir).map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&probe_dir);
        match &interpreter {
            Ok(i) => {
                tracing::info!(python = %i.path.display(), version = %i.version, "Python runtime ready")
            }
            Err(e) => tracing::warn!(error = %e, "Python adapters cannot run on this worker"),
        }
        let spawner = Spawner::start(sandbox).map_err(PythonError::SpawnerThread)?;
        Ok(PythonRuntime {
            inner: Arc::new(RuntimeInner {
                config,
                interpreter,
                files,
                spawner,
                packages: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The interpreter in use, or why there is none.
    pub fn interpreter(&self) -> Result<&Interpreter, &str> {
        self.inner.interpreter.as_ref().map_err(String::as_str)
    }

    /// The handler of one node of a Python adapter. Fails when no interpreter is usable or
    /// the spec is not a Python one.
    pub fn handler(
        &self,
        pkg: &InstalledPackage,
        spec: &HandlerSpec,
    ) -> Result<PythonHandler, PythonError> {
        if spec.runtime != Runtime::Python {
            return Err(PythonError::Start {
                package: format!("{} {}", pkg.name, pkg.version),
                reason: format!(
                    "adapter {} uses the {} runtime, not python",
                    spec.adapter,
                    spec.runtime.name()
                ),
            });
        }
        if let Err(e) = &self.inner.interpreter {
            return Err(PythonError::NoInterpreter(e.clone()));
        }
        let package = self.package_bridge(pkg)?;
        Ok(PythonHandler::new(
            package,
            spec.entrypoint.to_string(),
            self.inner.config.cancel_wait,
        ))
    }

    /// `handler` in the shape `StorePackages` takes.
    pub fn factory(&self) -> HandlerFactory {
        let rt = self.clone();
        Arc::new(move |pkg, spec| {
            rt.handler(pkg, spec)
                .map(|h| Arc::new(h) as Arc<dyn Handler>)
                .map_err(|e| e.to_string())
        })
    }

    /// The bridges currently running.
    pub fn bridges(&self) -> Vec<BridgeInfo> {
        let packages = lock(&self.inner.packages);
        let mut out: Vec<BridgeInfo> = packages
            .iter()
            .filter_map(|(key, weak)| {
                let (pid, python) = weak.upgrade()?.live_pid()?;
                Some(BridgeInfo {
                    package: key.name.clone(),
                    version: key.version.clone(),
                    pid,
                    python,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.package, &a.version, a.pid).cmp(&(&b.package, &b.version, b.pid)));
        out
    }

    fn package_bridge(&self, pkg: &InstalledPackage) -> Result<Arc<PackageBridge>, PythonError> {
        let manifest = pkg.dir.join("manifest.json");
        let meta = std::fs::metadata(&manifest).map_err(|source| PythonError::Start {
            package: format!("{} {}", pkg.name, pkg.version),
            reason: format!("cannot read {}: {source}", manifest.display()),
        })?;
        let key = PackageKey {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            dir: pkg.dir.clone(),
            manifest: (meta.dev(), meta.ino(), meta.mtime(), meta.mtime_nsec()),
        };
        let mut packages = lock(&self.inner.packages);
        packages.retain(|_, weak| weak.strong_count() > 0);
        if let Some(existing) = packages.get(&key).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        let created = Arc::new(PackageBridge {
            runtime: self.inner.clone(),
            label: format!("{} {}", pkg.name, pkg.version),
            key: key.clone(),
            current: Mutex::new(None),
        });
        packages.insert(key, Arc::downgrade(&created));
        Ok(created)
    }
}
