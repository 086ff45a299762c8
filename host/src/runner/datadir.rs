//! Per-task data directories `<data_dir>/<run_id>/<task_id>`. The ids come off the wire, so
//! each becomes one safe path component that can never climb out of `data_dir`.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Longest sanitised prefix kept before the disambiguating hash.
const MAX_COMPONENT: usize = 64;

/// Maps an arbitrary id to a single path component made only of `[A-Za-z0-9_-]`, inner dots
/// and `~`, never `.`/`..`/empty. Ids that needed changing get `~` and a hash of the original
/// appended, so distinct ids (`a/b` vs `a_b`) never share a directory.
pub fn sanitize_component(id: &str) -> String {
    let mut out: String = id
        .chars()
        .take(MAX_COMPONENT)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // A leading dot would make `.`, `..` or a hidden directory.
    if out.starts_with('.') {
        out.replace_range(0..1, "_");
    }
    if out != id || out.is_empty() {
        let digest = hex::encode(Sha256::digest(id.as_bytes()));
        // `~` never survives sanitising, so a changed id can never equal an unchanged one.
        out.push('~');
        out.push_str(&digest[..16]);
    }
    out
}

/// The directory for a task (not created).
pub fn task_dir(data_dir: &Path, run_id: &str, task_id: &str) -> PathBuf {
    data_dir
        .join(sanitize_component(run_id))
        .join(sanitize_component(task_id))
}

/// Creates the task's directory (and parents).
pub fn create_task_dir(data_dir: &Path, run_id: &str, task_id: &str) -> std::io::Result<PathBuf> {
    let dir = task_dir(data_dir, run_id, task_id);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Component;

    #[test]
    fn plain_ids_are_kept() {
        assert_eq!(sanitize_component("run-1_a.b"), "run-1_a.b");
    }

    #[test]
    fn hostile_ids_are_neutralised() {
        for id in ["..", ".", "", "../../etc", "/abs", "a/b", "a\0b", ".hidden"] {
            let c = sanitize_component(id);
            assert!(
                !c.is_empty() && !c.starts_with('.') && !c.contains('/') && !c.contains('\0'),
                "{id:?} -> {c:?}"
            );
        }
        assert_ne!(sanitize_component("a/b"), sanitize_component("a_b"));
        assert_ne!(sanitize_component("a/b"), sanitize_component("a\\b"));
    }

    proptest! {
        #[test]
        fn task_dir_never_escapes(run in ".*", task in ".*") {
            let base = Path::new("/data");
            let dir = task_dir(base, &run, &task);
            let rest = dir.strip_prefix(base).unwrap();
            let comps: Vec<_> = rest.components().collect();
            prop_assert_eq!(comps.len(), 2);
            for c in comps {
                prop_assert!(matches!(c, Component::Normal(_)));
            }
        }

        #[test]
        fn distinct_ids_get_distinct_components(a in ".{0,80}", b in ".{0,80}") {
            prop_assume!(a != b);
            prop_assert_ne!(sanitize_component(&a), sanitize_component(&b));
        }
    }

    #[test]
    fn create_makes_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = create_task_dir(tmp.path(), "../r", "t").unwrap();
        assert!(dir.is_dir());
        assert!(dir.starts_with(tmp.path()));
    }
}
