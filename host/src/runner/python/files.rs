//! The bridge script and import shims, embedded in the binary and written at start-up to a
//! private, read-only (for the sandbox users) cache directory, plus the bridges' homes.

use super::error::PythonError;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// (path relative to the cache directory, content).
const FILES: &[(&str, &str)] = &[
    (
        "astra_bridge.py",
        include_str!("../../../python/astra_bridge.py"),
    ),
    (
        "shims/worker/__init__.py",
        include_str!("../../../python/shims/worker/__init__.py"),
    ),
    (
        "shims/worker/agent/__init__.py",
        include_str!("../../../python/shims/worker/agent/__init__.py"),
    ),
    (
        "shims/worker/agent/feedback.py",
        include_str!("../../../python/shims/worker/agent/feedback.py"),
    ),
    (
        "shims/worker/agent/runner/__init__.py",
        include_str!("../../../python/shims/worker/agent/runner/__init__.py"),
    ),
    (
        "shims/shared/__init__.py",
        include_str!("../../../python/shims/shared/__init__.py"),
    ),
    (
        "shims/shared/models/__init__.py",
        include_str!("../../../python/shims/shared/models/__init__.py"),
    ),
    (
        "shims/shared/models/ws/__init__.py",
        include_str!("../../../python/shims/shared/models/ws/__init__.py"),
    ),
    (
        "shims/shared/models/ws/feedback.py",
        include_str!("../../../python/shims/shared/models/ws/feedback.py"),
    ),
];

/// The written files; the directory is removed when this is dropped.
#[derive(Debug)]
pub(crate) struct BridgeFiles {
    dir: tempfile::TempDir,
    next_home: AtomicU64,
}

impl BridgeFiles {
    /// Writes everything under a fresh `<root>/astra-python-XXXX/`. Directories are 0755 and
    /// files 0644, owned by the worker: sandboxed handlers can import the shims but never
    /// change them for the next task.
    pub(crate) fn write(root: &Path) -> Result<BridgeFiles, PythonError> {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PythonError::Cache { path, source }
        };
        let dir = tempfile::Builder::new()
            .prefix("astra-python-")
            .tempdir_in(root)
            .map_err(err(root))?;
        let base = dir.path().to_path_buf();
        for (rel, content) in FILES {
            let path = base.join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(err(parent))?;
            }
            fs::write(&path, content).map_err(err(&path))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).map_err(err(&path))?;
        }
        for sub in ["", "shims", "homes"] {
            let path = base.join(sub);
            fs::create_dir_all(&path).map_err(err(&path))?;
        }
        // tempdir() creates 0700; every directory must be searchable by the sandbox users.
        let mut dirs = vec![base.clone()];
        while let Some(d) = dirs.pop() {
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).map_err(err(&d))?;
            for entry in fs::read_dir(&d).map_err(err(&d))? {
                let entry = entry.map_err(err(&d))?;
                if entry.file_type().map_err(err(&d))?.is_dir() {
                    dirs.push(entry.path());
                }
            }
        }
        Ok(BridgeFiles {
            dir,
            next_home: AtomicU64::new(0),
        })
    }

    pub(crate) fn script(&self) -> PathBuf {
        self.dir.path().join("astra_bridge.py")
    }

    pub(crate) fn shims(&self) -> PathBuf {
        self.dir.path().join("shims")
    }

    /// A new, empty home (working directory) for one bridge process; the sandbox hands it
    /// to the bridge's uid.
    pub(crate) fn new_home(&self, label: &str) -> Result<PathBuf, PythonError> {
        let n = self.next_home.fetch_add(1, Ordering::SeqCst);
        let name = format!("{}-{n}", crate::runner::datadir::sanitize_component(label));
        let path = self.dir.path().join("homes").join(name);
        fs::create_dir(&path).map_err(|source| PythonError::Cache {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn files_are_written_world_readable_and_removed_on_drop() {
        let root = tempfile::tempdir().unwrap();
        let files = BridgeFiles::write(root.path()).unwrap();
        let script = fs::read_to_string(files.script()).unwrap();
        assert!(script.contains("PROTOCOL_OUT_FD = 3"));
        let shim = files.shims().join("shared/models/ws/feedback.py");
        assert_eq!(fs::metadata(&shim).unwrap().mode() & 0o777, 0o644);
        assert_eq!(fs::metadata(files.shims()).unwrap().mode() & 0o777, 0o755);
        let home = files.new_home("example.pkg 1.0.0").unwrap();
        assert!(home.is_dir());
        assert_ne!(home, files.new_home("example.pkg 1.0.0").unwrap());
        let base = files.dir.path().to_path_buf();
        drop(files);
        assert!(!base.exists());
    }
}
