//! `pkg.install` and `pkg.uninstall` (spec §3.9, §7.5) done safely: fetch, verify, unpack and
//! validate everything in a private staging directory inside `packages_dir`, and only then
//! move the package into `<name>/<version>/` with a rename. Any failure drops the staging
//! directory and leaves the store exactly as it was.

use super::archive::{self, ArchiveError, ExtractLimits};
use super::manifest::{Manifest, ManifestError};
use super::names;
use super::source::{self, FetchError, FetchLimits, Source};
use super::store::{
    load_package, read_manifest_bytes, InstalledPackage, PackageStore, STAGING_PREFIX,
};
use super::swap::{place_dir, Placed};
use astra_core::v1::payloads::PackageStatus;
use astra_core::worker::io::PackageOp;
use std::fs;
use std::path::{Path, PathBuf};

/// All limits of one install.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstallLimits {
    pub fetch: FetchLimits,
    pub extract: ExtractLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("invalid package {field} {value:?} in the package command: {reason}")]
    InvalidRequest {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(
        "sha256 mismatch: the package command expected {expected} but the archive hashes to \
         {actual}; the download is corrupt or the checksum is stale"
    )]
    ChecksumMismatch { expected: String, actual: String },
    #[error("cannot unpack the package archive: {0}")]
    Archive(#[from] ArchiveError),
    #[error(
        "the archive has no manifest.json, neither at its root nor inside a single top-level \
         directory; put manifest.json at the top of the package"
    )]
    NoManifest,
    #[error("the archive's {0}")]
    Manifest(#[from] ManifestError),
    #[error("the unpacked package is not usable: {0}")]
    Broken(String),
    #[error("the archive contains package {field} {found:?}, but the install command asked for {expected:?}")]
    Mismatch {
        field: &'static str,
        expected: String,
        found: String,
    },
    #[error(
        "{dir} holds package {name:?} in the flat layout (<name>/manifest.json) of the Python \
         worker; uninstall it first, then install versions into <name>/<version>/"
    )]
    LegacyConflict { name: String, dir: PathBuf },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("package {name} {version} is not installed")]
    NotInstalled { name: String, version: String },
    #[error("package {name} has several versions installed ({versions:?}); say which version to uninstall")]
    AmbiguousVersion { name: String, versions: Vec<String> },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
    let path = path.to_path_buf();
    move |source| InstallError::Io {
        action,
        path,
        source,
    }
}

fn check_request(
    field: &'static str,
    value: &str,
    ok: fn(&str) -> Result<(), String>,
) -> Result<(), InstallError> {
    ok(value).map_err(|reason| InstallError::InvalidRequest {
        field,
        value: value.to_string(),
        reason,
    })
}

/// A private directory in `packages_dir` (same filesystem, so renames are atomic), deleted
/// with everything in it when dropped.
fn staging(store: &PackageStore) -> Result<tempfile::TempDir, InstallError> {
    tempfile::Builder::new()
        .prefix(STAGING_PREFIX)
        .tempdir_in(store.root())
        .map_err(io_err("create a staging directory in", store.root()))
}

/// Installs the package archive at `source` (an `http(s)://` or `file://` URL, or a path).
///
/// - `expected`: the `(name, version)` of the install command; the manifest must match.
/// - `sha256`: when given, the archive's SHA-256 (hex, any case) must equal it.
///
/// The package lands in `<packages_dir>/<name>/<version>/`, replacing that version if it is
/// installed (other versions are untouched). Copies of the same name and version in a legacy
/// layout are removed afterwards, so one (name, version) has one directory. On any error the
/// store is left exactly as before.
pub fn install(
    store: &PackageStore,
    source: &str,
    expected: Option<(&str, &str)>,
    sha256: Option<&str>,
    limits: &InstallLimits,
) -> Result<InstalledPackage, InstallError> {
    if let Some((name, version)) = expected {
        check_request("name", name, names::check_package_name)?;
        check_request("version", version, names::check_version)?;
    }
    if let Some(sha) = sha256 {
        check_request("sha256", sha, names::check_sha256)?;
    }
    let source = Source::parse(source)?;

    let _guard = store.lock();
    let stage = staging(store)?;
    let archive_path = stage.path().join("archive");
    let fetched = source::fetch(&source, &archive_path, &limits.fetch)?;
    if let Some(want) = sha256 {
        if !want.eq_ignore_ascii_case(&fetched.sha256) {
            return Err(InstallError::ChecksumMismatch {
                expected: want.to_ascii_lowercase(),
                actual: fetched.sha256,
            });
        }
    }

    let tree = stage.path().join("tree");
    fs::create_dir(&tree).map_err(io_err("create", &tree))?;
    let extracted = archive::extract(&archive_path, &tree, &limits.extract)?;
    let root = archive::find_package_root(&tree).ok_or(InstallError::NoManifest)?;
    let bytes = read_manifest_bytes(&root).map_err(InstallError::Broken)?;
    let manifest = Manifest::parse(&bytes)?;
    if let Some((name, version)) = expected {
        for (field, want, got) in [
            ("name", name, &manifest.name),
            ("version", version, &manifest.version),
        ] {
            if want != got {
                return Err(InstallError::Mismatch {
                    field,
                    expected: want.to_string(),
                    found: got.clone(),
                });
            }
        }
    }
    // Full check (handlers, process commands) before anything moves.
    let probe = load_package(&root, (&manifest.name, &manifest.version));
    if let Some(err) = probe.error {
        return Err(InstallError::Broken(err));
    }

    let (name, version) = (manifest.name.as_str(), manifest.version.as_str());
    let name_dir = store.root().join(name);
    if name_dir.join("manifest.json").exists() {
        return Err(InstallError::LegacyConflict {
            name: name.to_string(),
            dir: name_dir,
        });
    }
    let target = store.version_dir(name, version);
    let stale_copies: Vec<PathBuf> = store
        .list()
        .into_iter()
        .filter(|p| p.name == name && p.version == version && p.dir != target)
        .map(|p| p.dir)
        .collect();

    let created_name_dir = !name_dir.exists();
    if created_name_dir {
        fs::create_dir(&name_dir).map_err(io_err("create", &name_dir))?;
    }
    let aside = stage.path().join("previous");
    let placed = match place_dir(&root, &target, &aside) {
        Ok(p) => p,
        Err(e) => {
            if created_name_dir {
                let _ = fs::remove_dir(&name_dir);
            }
            return Err(io_err("move the package into", &target)(e));
        }
    };
    for (i, dir) in stale_copies.iter().enumerate() {
        let trash = stage.path().join(format!("stale-{i}"));
        match fs::rename(dir, &trash) {
            Ok(()) => {
                remove_if_empty(store, dir.parent());
                tracing::info!(dir = %dir.display(), "removed an older copy of the same package version");
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove an older copy of the same package version")
            }
        }
    }
    tracing::info!(
        package = name,
        version,
        format = %extracted.format,
        files = extracted.entries,
        bytes = extracted.bytes,
        sha256 = %fetched.sha256,
        replaced = placed == Placed::Replaced,
        "package installed"
    );
    let installed = load_package(&target, (name, version));
    drop(stage);
    Ok(installed)
}

/// Removes `dir` if it is an empty directory strictly inside the store root.
fn remove_if_empty(store: &PackageStore, dir: Option<&Path>) {
    if let Some(dir) = dir {
        if dir != store.root() && dir.starts_with(store.root()) {
            // remove_dir fails on non-empty directories, which is exactly the check we want.
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Removes one installed version of `name`. With `version: None` the package must have
/// exactly one version installed. Returns what was removed (every copy of that name and
/// version is removed, in any layout, healthy or broken).
pub fn uninstall(
    store: &PackageStore,
    name: &str,
    version: Option<&str>,
) -> Result<InstalledPackage, InstallError> {
    check_request("name", name, names::check_package_name)?;
    if let Some(v) = version {
        check_request("version", v, names::check_version)?;
    }
    let _guard = store.lock();
    let copies: Vec<InstalledPackage> = store
        .list()
        .into_iter()
        .filter(|p| p.name == name)
        .collect();
    let version = match version {
        Some(v) => v.to_string(),
        None => {
            let mut versions: Vec<String> = copies.iter().map(|p| p.version.clone()).collect();
            versions.sort();
            versions.dedup();
            match versions.as_slice() {
                [] => {
                    return Err(InstallError::NotInstalled {
                        name: name.into(),
                        version: "(any version)".into(),
                    })
                }
                [only] => only.clone(),
                _ => {
                    return Err(InstallError::AmbiguousVersion {
                        name: name.into(),
                        versions,
                    })
                }
            }
        }
    };
    let mut targets: Vec<InstalledPackage> = copies
        .into_iter()
        .filter(|p| p.version == version)
        .collect();
    if targets.is_empty() {
        return Err(InstallError::NotInstalled {
            name: name.into(),
            version,
        });
    }
    // Report the healthy copy if there is one.
    targets.sort_by_key(|p| p.status != PackageStatus::Installed);
    let stage = staging(store)?;
    for (i, p) in targets.iter().enumerate() {
        // A rename is atomic: the package is either fully there or fully gone from the store,
        // and the slow recursive delete happens in the staging directory.
        let trash = stage.path().join(format!("removed-{i}"));
        fs::rename(&p.dir, &trash).map_err(io_err("remove", &p.dir))?;
        remove_if_empty(store, p.dir.parent());
    }
    drop(stage);
    tracing::info!(package = name, version = %version, "package uninstalled");
    Ok(targets.swap_remove(0))
}

/// The result of one [`PackageOp`], ready for `PackageOpDone` (the caller adds the op id and
/// the inventory after the operation, e.g. [`PackageStore::inventory`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpOutcome {
    pub name: String,
    /// The version acted on; for an uninstall without a version, the one removed (or
    /// `"unknown"` if the uninstall failed before one was chosen).
    pub version: String,
    pub install: bool,
    /// `Err(cause)`: the user-facing reason, for `pkg.event failed` `details.error`.
    pub outcome: Result<(), String>,
}

/// Runs a package operation from the core machine.
pub fn run_op(store: &PackageStore, op: &PackageOp, limits: &InstallLimits) -> OpOutcome {
    match op {
        PackageOp::Install {
            name,
            version,
            url,
            sha256,
        } => {
            let outcome = match url {
                None => Err(FetchError::Missing.to_string()),
                Some(url) => install(store, url, Some((name, version)), sha256.as_deref(), limits)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            };
            OpOutcome {
                name: name.clone(),
                version: version.clone(),
                install: true,
                outcome,
            }
        }
        PackageOp::Uninstall { name, version } => {
            match uninstall(store, name, version.as_deref()) {
                Ok(removed) => OpOutcome {
                    name: name.clone(),
                    version: removed.version,
                    install: false,
                    outcome: Ok(()),
                },
                Err(e) => OpOutcome {
                    name: name.clone(),
                    version: version.clone().unwrap_or_else(|| "unknown".into()),
                    install: false,
                    outcome: Err(e.to_string()),
                },
            }
        }
    }
}
