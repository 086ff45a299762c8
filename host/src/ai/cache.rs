//! The model cache: validated names and where a model's files are.
//!
//! Two layouts are resolved, the hub's first:
//! - the standard hub cache layout (what `huggingface_hub` and `model_download` write, so
//!   other tools reuse it): `<cache>/models--<org>--<name>/refs/<revision>` holds a commit,
//!   `snapshots/<commit>/<file>` is a relative symlink to `../../blobs/<etag>`;
//! - the flat layout `<cache>/<org>/<name>/<file>` (files placed by hand or by SPLAI's
//!   `--local-dir` downloads).
//!
//! Every repo id, revision and file name is validated here so nothing built from task input
//! can leave the cache: no `..`, no absolute paths, no backslashes, no NUL or control
//! characters, no empty segments.

use std::path::{Path, PathBuf};

/// Revision used when a task names none.
pub const DEFAULT_REVISION: &str = "main";
/// Longest repo id segment the hub accepts.
const MAX_SEGMENT: usize = 96;
const MAX_FILE_PATH: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("model id {0:?} is invalid: use <org>/<name> or <name> (letters, digits, `-`, `_`, `.`; no `..`, `--` or leading `.`)")]
    Repo(String),
    #[error("revision {0:?} is invalid: use a branch, tag or commit (letters, digits, `-`, `_`, `.`, `/`; no `..` or empty segments)")]
    Revision(String),
    #[error("file name {0:?} is invalid: use a relative path inside the repository (no `..`, `.`, leading `/`, `\\`, or control characters)")]
    File(String),
}

fn segment_ok(s: &str, extra: &[char]) -> bool {
    (1..=MAX_SEGMENT).contains(&s.len())
        && !s.starts_with('.')
        && s != ".."
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') || extra.contains(&c)
        })
}

/// Checks an `org/name` (or `name`) repo id.
pub fn check_repo(repo: &str) -> Result<(), NameError> {
    let segs: Vec<&str> = repo.split('/').collect();
    let ok = (1..=2).contains(&segs.len())
        && segs
            .iter()
            .all(|s| segment_ok(s, &[]) && !s.contains("--") && !s.contains(".."));
    ok.then_some(())
        .ok_or_else(|| NameError::Repo(repo.to_string()))
}

/// Checks a branch, tag or commit name (may contain `/`, e.g. `refs/pr/1`).
pub fn check_revision(rev: &str) -> Result<(), NameError> {
    let ok = rev.len() <= 256
        && rev
            .split('/')
            .all(|s| segment_ok(s, &[]) && !s.contains(".."));
    ok.then_some(())
        .ok_or_else(|| NameError::Revision(rev.to_string()))
}

/// Checks a file path inside a repository (`config.json`, `1_Pooling/config.json`).
pub fn check_file(file: &str) -> Result<(), NameError> {
    let ok = file.len() <= MAX_FILE_PATH
        && file.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && !s.chars().any(|c| c == '\\' || c.is_control())
        });
    ok.then_some(())
        .ok_or_else(|| NameError::File(file.to_string()))
}

/// A full 40-digit commit hash (as `x-repo-commit` and `snapshots/` use).
pub fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `<cache>/models--<org>--<name>` for a valid repo id.
pub fn hub_repo_dir(cache: &Path, repo: &str) -> Result<PathBuf, NameError> {
    check_repo(repo)?;
    Ok(cache.join(format!("models--{}", repo.replace('/', "--"))))
}

/// `<cache>/<org>/<name>` for a valid repo id.
pub fn flat_dir(cache: &Path, repo: &str) -> Result<PathBuf, NameError> {
    check_repo(repo)?;
    Ok(repo.split('/').fold(cache.to_path_buf(), |p, s| p.join(s)))
}

/// The commit `revision` points at in the hub layout: the revision itself when it is a
/// commit with a snapshot, else the content of `refs/<revision>` if that is a commit.
pub fn hub_commit(cache: &Path, repo: &str, revision: &str) -> Result<Option<String>, NameError> {
    let dir = hub_repo_dir(cache, repo)?;
    check_revision(revision)?;
    if is_commit(revision) {
        return Ok(dir
            .join("snapshots")
            .join(revision)
            .is_dir()
            .then(|| revision.to_ascii_lowercase()));
    }
    let Ok(text) = std::fs::read_to_string(dir.join("refs").join(revision)) else {
        return Ok(None);
    };
    let commit = text.trim();
    Ok(is_commit(commit).then(|| commit.to_string()))
}

/// Where `repo` at `revision` lives: the hub snapshot directory if the hub layout has it,
/// else the flat directory (which may not exist: callers report the missing file).
pub fn resolve(cache: &Path, repo: &str, revision: &str) -> Result<PathBuf, NameError> {
    if let Some(commit) = hub_commit(cache, repo, revision)? {
        let snap = hub_repo_dir(cache, repo)?.join("snapshots").join(commit);
        if snap.is_dir() {
            return Ok(snap);
        }
    }
    flat_dir(cache, repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn names_that_could_escape_are_refused() {
        for bad in [
            "../x",
            "a/../../b",
            "/abs",
            "a/b/c",
            "",
            "a//b",
            ".hidden/x",
            "a/..",
            "a--b/c",
            "a\\b",
            "a\0b",
            "a b",
            "o/n\n",
        ] {
            assert!(check_repo(bad).is_err(), "repo {bad:?}");
        }
        for good in ["org/name-1.5", "name", "Org_x/n.a.m.e"] {
            check_repo(good).unwrap();
        }
        for bad in ["..", "a/../b", "/main", "main/", "a\\b", "m\0", ""] {
            assert!(check_revision(bad).is_err(), "rev {bad:?}");
        }
        for good in ["main", "v1.0", "refs/pr/1", C1] {
            check_revision(good).unwrap();
        }
        for bad in [
            "../x",
            "a/../b",
            "/etc/passwd",
            "a\\..\\b",
            "a\0",
            "",
            "a//b",
            "./a",
            "a/.",
            "x\n",
        ] {
            assert!(check_file(bad).is_err(), "file {bad:?}");
        }
        for good in ["config.json", "1_Pooling/config.json", ".gitattributes"] {
            check_file(good).unwrap();
        }
    }

    #[test]
    fn hub_layout_wins_over_flat_and_flat_is_the_fallback() {
        let tmp = tempfile::tempdir().unwrap();
        let c = tmp.path();
        assert_eq!(resolve(c, "o/n", "main").unwrap(), c.join("o/n"));
        let repo = c.join("models--o--n");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), format!("{C1}\n")).unwrap();
        // A ref without its snapshot is not an installation.
        assert_eq!(resolve(c, "o/n", "main").unwrap(), c.join("o/n"));
        std::fs::create_dir_all(repo.join("snapshots").join(C1)).unwrap();
        assert_eq!(
            resolve(c, "o/n", "main").unwrap(),
            repo.join("snapshots").join(C1)
        );
        assert_eq!(
            resolve(c, "o/n", C1).unwrap(),
            repo.join("snapshots").join(C1)
        );
        // A ref holding garbage is ignored rather than joined into a path.
        std::fs::write(repo.join("refs/main"), "../../../etc").unwrap();
        assert_eq!(resolve(c, "o/n", "main").unwrap(), c.join("o/n"));
    }
}
