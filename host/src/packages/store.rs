//! The package store under `packages_dir`: discovery of installed packages in every layout of
//! spec §7.4 and the inventory the worker reports in `register`.
//!
//! Layout written by this worker: `<packages_dir>/<name>/<version>/manifest.json`, so versions
//! coexist. Discovery also accepts the Python worker's layouts: for each subdirectory `D`,
//! `D/manifest.json` makes `D` a package; otherwise every `D/X/manifest.json` does (any names).
//! Entries whose name starts with `.` are skipped: they are our staging directories (and
//! things like `.git`), never packages.

use super::handlers::{HandlerSpec, Runtime};
use super::manifest::{loose_identity, Manifest, MAX_MANIFEST_BYTES};
use astra_core::v1::payloads::{PackageEntry, PackageStatus};
use astra_core::work::inventory::{HandlerKey, Inventory};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Prefix of the per-operation staging directories inside `packages_dir`.
pub(crate) const STAGING_PREFIX: &str = ".astra-staging-";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use packages directory {path}: {source}; check `packages_dir` in the worker config and the directory's permissions")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One package found on disk. A package whose manifest cannot be read or validated is still
/// listed, with `status: Failed` and the reason in `error`, so operators see it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstalledPackage {
    /// From the manifest; for a broken manifest, the best guess (its `name` if readable,
    /// else the directory name).
    pub name: String,
    pub version: String,
    /// The directory holding `manifest.json` (the Python import root).
    pub dir: PathBuf,
    pub status: PackageStatus,
    /// `Some` exactly when `status` is `Installed`.
    pub manifest: Option<Manifest>,
    /// The node handlers; empty unless `Installed`.
    pub handlers: Vec<HandlerSpec>,
    /// Why the package is `Failed`.
    pub error: Option<String>,
}

impl InstalledPackage {
    pub fn entry(&self) -> PackageEntry {
        PackageEntry {
            name: self.name.clone(),
            version: self.version.clone(),
            status: self.status,
        }
    }

    /// The executable of a `process` runtime, resolved against the package directory.
    pub fn command_path(&self, runtime: &Runtime) -> Option<PathBuf> {
        match runtime {
            Runtime::Process { command, .. } => Some(self.dir.join(command)),
            _ => None,
        }
    }
}

/// Reads `dir/manifest.json` with a size cap.
pub(crate) fn read_manifest_bytes(dir: &Path) -> Result<Vec<u8>, String> {
    let path = dir.join("manifest.json");
    let file = fs::File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(bytes)
}

/// Loads the package in `dir`; `fallback` is the identity to report if the manifest does not
/// say. Never fails: problems become `status: Failed`.
pub(crate) fn load_package(dir: &Path, fallback: (&str, &str)) -> InstalledPackage {
    let failed = |name: String, version: String, error: String| InstalledPackage {
        name,
        version,
        dir: dir.to_path_buf(),
        status: PackageStatus::Failed,
        manifest: None,
        handlers: Vec::new(),
        error: Some(error),
    };
    let manifest_path = dir.join("manifest.json");
    let bytes = match read_manifest_bytes(dir) {
        Ok(b) => b,
        Err(e) => return failed(fallback.0.into(), fallback.1.into(), e),
    };
    let manifest = match Manifest::parse(&bytes) {
        Ok(m) => m,
        Err(e) => {
            let (name, version) = loose_identity(&bytes);
            return failed(
                name.unwrap_or_else(|| fallback.0.into()),
                version.unwrap_or_else(|| fallback.1.into()),
                format!("{}: {e}", manifest_path.display()),
            );
        }
    };
    let (name, version) = (manifest.name.clone(), manifest.version.clone());
    let handlers = match manifest.handlers() {
        Ok(h) => h,
        Err(e) => return failed(name, version, format!("{}: {e}", manifest_path.display())),
    };
    if let Err(e) = check_commands(dir, &handlers) {
        return failed(name, version, e);
    }
    InstalledPackage {
        name,
        version,
        dir: dir.to_path_buf(),
        status: PackageStatus::Installed,
        manifest: Some(manifest),
        handlers,
        error: None,
    }
}

/// Every `process` command must be a file that, after resolving links, is inside `dir`.
/// (Installed archives never contain links, but operators may drop packages in by hand.)
fn check_commands(dir: &Path, handlers: &[HandlerSpec]) -> Result<(), String> {
    let root =
        fs::canonicalize(dir).map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    for h in handlers {
        let Runtime::Process { command, .. } = &h.runtime else {
            continue;
        };
        let path = dir.join(command);
        let real = fs::canonicalize(&path).map_err(|e| {
            format!(
                "adapter {:?}: process command {} is missing ({e}); ship it in the package",
                h.adapter,
                path.display()
            )
        })?;
        if !real.starts_with(&root) || !real.is_file() {
            return Err(format!(
                "adapter {:?}: process command {} must be a file inside the package directory",
                h.adapter,
                path.display()
            ));
        }
    }
    Ok(())
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_string_lossy().starts_with('.')
}

/// Visible subdirectories of `dir`, sorted by name (links to directories are followed: an
/// operator may link a development checkout into `packages_dir`).
fn subdirs(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if is_hidden(&name) {
            continue;
        }
        let path = entry.path();
        if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            out.push((name.to_string_lossy().into_owned(), path));
        }
    }
    out.sort();
    Ok(out)
}

/// The package store rooted at `packages_dir`.
#[derive(Debug)]
pub struct PackageStore {
    root: PathBuf,
    /// Serialises install and uninstall within this process. One worker process per
    /// `packages_dir` is assumed.
    ops: Mutex<()>,
}

impl PackageStore {
    /// Opens (creating if needed) the store and removes staging directories left behind by an
    /// install that was interrupted by a crash.
    pub fn open(packages_dir: impl AsRef<Path>) -> Result<PackageStore, StoreError> {
        let dir = packages_dir.as_ref();
        let err = |source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(err)?;
        let root = fs::canonicalize(dir).map_err(err)?;
        for entry in fs::read_dir(&root).map_err(err)?.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with(STAGING_PREFIX) {
                let path = entry.path();
                match fs::remove_dir_all(&path) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "removed stale package staging directory")
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot remove stale package staging directory")
                    }
                }
            }
        }
        Ok(PackageStore {
            root,
            ops: Mutex::new(()),
        })
    }

    /// The absolute packages directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<packages_dir>/<name>/<version>`, where this worker installs. Callers must have
    /// validated `name` and `version` with the manifest patterns.
    pub(crate) fn version_dir(&self, name: &str, version: &str) -> PathBuf {
        self.root.join(name).join(version)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        // A panic in another install cannot leave the guarded `()` inconsistent.
        self.ops
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every package on disk, in a stable order (by directory). Unreadable directories are
    /// logged and skipped; this never fails.
    pub fn list(&self) -> Vec<InstalledPackage> {
        let tops = match subdirs(&self.root) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(dir = %self.root.display(), error = %e, "cannot list the packages directory; reporting no packages");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (top_name, top) in tops {
            if top.join("manifest.json").exists() {
                out.push(load_package(&top, (&top_name, "unknown")));
                continue;
            }
            match subdirs(&top) {
                Ok(children) => {
                    for (child_name, child) in children {
                        if child.join("manifest.json").exists() {
                            out.push(load_package(&child, (&top_name, &child_name)));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(dir = %top.display(), error = %e, "cannot list package directory; skipping it")
                }
            }
        }
        for p in &out {
            if let Some(err) = &p.error {
                tracing::warn!(package = %p.name, version = %p.version, dir = %p.dir.display(), error = %err, "package is broken");
            }
        }
        out
    }

    /// The installed package `name`/`version` (an installed copy wins over a broken one).
    pub fn find(&self, name: &str, version: &str) -> Option<InstalledPackage> {
        let mut matches: Vec<_> = self
            .list()
            .into_iter()
            .filter(|p| p.name == name && p.version == version)
            .collect();
        matches.sort_by_key(|p| p.status);
        matches.into_iter().next()
    }

    /// `register.payload.packages`: one entry per (name, version), `installed` if any copy
    /// is healthy, else `failed`; sorted.
    pub fn inventory_entries(&self) -> Vec<PackageEntry> {
        entries_of(&self.list())
    }

    /// The packages and the handler keys of healthy packages.
    pub fn inventory(&self) -> Inventory {
        let list = self.list();
        Inventory {
            packages: entries_of(&list).into_iter().collect(),
            handlers: list
                .iter()
                .flat_map(|p| p.handlers.iter().map(|h| h.key.clone()))
                .collect(),
        }
    }

    /// Finds the handler for a dispatch: the package directory and the spec.
    pub fn resolve(&self, key: &HandlerKey) -> Option<(InstalledPackage, HandlerSpec)> {
        let pkg = self.find(&key.package, &key.version)?;
        let spec = pkg.handlers.iter().find(|h| &h.key == key)?.clone();
        Some((pkg, spec))
    }
}

fn entries_of(list: &[InstalledPackage]) -> Vec<PackageEntry> {
    let mut best: BTreeMap<(String, String), PackageStatus> = BTreeMap::new();
    for p in list {
        best.entry((p.name.clone(), p.version.clone()))
            .and_modify(|s| *s = (*s).min(p.status))
            .or_insert(p.status);
    }
    best.into_iter()
        .map(|((name, version), status)| PackageEntry {
            name,
            version,
            status,
        })
        .collect()
}
