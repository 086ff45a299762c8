//! Puts a fully prepared package directory in place so that a failure at any point leaves
//! either the old version or the new one installed, never neither and never half of one.

use std::io;
use std::path::Path;

/// How `new` reached `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// `target` did not exist; `new` was renamed onto it.
    Fresh,
    /// `target` existed; the old tree now sits at `aside` and is the caller's to delete.
    Replaced,
}

/// Moves directory `new` to `target`. When `target` exists, its old contents end up at
/// `aside` (which must not exist and must be on the same filesystem, e.g. in the same temp
/// dir as `new`). On error both `target` and `new` are as they were.
pub(crate) fn place_dir(new: &Path, target: &Path, aside: &Path) -> io::Result<Placed> {
    if std::fs::symlink_metadata(target).is_err() {
        std::fs::rename(new, target)?;
        return Ok(Placed::Fresh);
    }
    #[cfg(target_os = "linux")]
    {
        match exchange(new, target) {
            Ok(()) => {
                std::fs::rename(new, aside)?;
                return Ok(Placed::Replaced);
            }
            // Old kernels (ENOSYS) and some filesystems (EINVAL) cannot exchange; fall back.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EINVAL)) => {}
            Err(e) => return Err(e),
        }
    }
    // Portable fallback: two renames with a rollback. Between them `target` is briefly absent
    // (a concurrent reader may see "not installed"), but a failure restores it.
    std::fs::rename(target, aside)?;
    if let Err(e) = std::fs::rename(new, target) {
        if let Err(undo) = std::fs::rename(aside, target) {
            tracing::error!(
                target = %target.display(),
                aside = %aside.display(),
                error = %undo,
                "could not restore the previous package after a failed replace; move it back by hand"
            );
        }
        return Err(e);
    }
    Ok(Placed::Replaced)
}

/// Atomically swaps two paths with `renameat2(RENAME_EXCHANGE)`.
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let a = CString::new(a.as_os_str().as_bytes())?;
    let b = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both pointers come from live CStrings (NUL-terminated, no interior NUL) that
    // outlive the call; AT_FDCWD makes relative paths resolve like std::fs::rename does. The
    // raw syscall is used because older glibc has no renameat2 wrapper.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn fresh_and_replace() {
        let t = tempfile::tempdir().unwrap();
        let new = t.path().join("new");
        let target = t.path().join("target");
        let aside = t.path().join("aside");
        fs::create_dir(&new).unwrap();
        fs::write(new.join("v"), "1").unwrap();
        assert_eq!(place_dir(&new, &target, &aside).unwrap(), Placed::Fresh);
        assert_eq!(fs::read_to_string(target.join("v")).unwrap(), "1");
        assert!(!new.exists());

        fs::create_dir(&new).unwrap();
        fs::write(new.join("v"), "2").unwrap();
        assert_eq!(place_dir(&new, &target, &aside).unwrap(), Placed::Replaced);
        assert_eq!(fs::read_to_string(target.join("v")).unwrap(), "2");
        assert_eq!(fs::read_to_string(aside.join("v")).unwrap(), "1");
        assert!(!new.exists());
    }

    #[test]
    fn failure_leaves_target() {
        let t = tempfile::tempdir().unwrap();
        let target = t.path().join("target");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("v"), "old").unwrap();
        // `new` does not exist, so the swap must fail and keep the old tree.
        let r = place_dir(&t.path().join("missing"), &target, &t.path().join("aside"));
        assert!(r.is_err());
        assert_eq!(fs::read_to_string(target.join("v")).unwrap(), "old");
    }
}
