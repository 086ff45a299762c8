//! Path helpers: `~` expansion and making paths absolute against the loader's cwd.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Expands a leading `~` or `~/` with `HOME` from `env`. `~user` forms are left as they are
/// (rarely used for service configs, and resolving them needs the passwd database).
/// Returns `None` when the path needs `HOME` and it is unset or empty.
pub(crate) fn expand_tilde(raw: &str, env: &BTreeMap<String, String>) -> Option<PathBuf> {
    let rest = if raw == "~" {
        ""
    } else if let Some(rest) = raw.strip_prefix("~/") {
        rest
    } else {
        return Some(PathBuf::from(raw));
    };
    let home = env.get("HOME").filter(|h| !h.is_empty())?;
    Some(Path::new(home).join(rest))
}

/// Joins a relative path to `cwd` and removes `.` and `..` lexically. Symlinks are not
/// resolved because the directory need not exist yet.
pub(crate) fn absolutize(path: &Path, cwd: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    let mut out = PathBuf::new();
    for comp in joined.components() {
        match comp {
            Component::CurDir => {}
            // `pop` at the root is a no-op, matching how `/..` resolves.
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(h: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("HOME".to_string(), h.to_string())])
    }

    #[test]
    fn tilde_forms() {
        let env = home("/home/ann");
        assert_eq!(expand_tilde("~", &env), Some(PathBuf::from("/home/ann")));
        assert_eq!(
            expand_tilde("~/x/y", &env),
            Some(PathBuf::from("/home/ann/x/y"))
        );
        assert_eq!(expand_tilde("~bob/x", &env), Some(PathBuf::from("~bob/x")));
        assert_eq!(expand_tilde("a/~/b", &env), Some(PathBuf::from("a/~/b")));
        assert_eq!(expand_tilde("~/x", &BTreeMap::new()), None);
    }

    #[test]
    fn absolutize_is_lexical() {
        let cwd = Path::new("/srv/w");
        assert_eq!(
            absolutize(Path::new("./var/data"), cwd),
            PathBuf::from("/srv/w/var/data")
        );
        assert_eq!(absolutize(Path::new("../p"), cwd), PathBuf::from("/srv/p"));
        assert_eq!(
            absolutize(Path::new("/abs/./q/.."), cwd),
            PathBuf::from("/abs")
        );
        assert_eq!(absolutize(Path::new("/../.."), cwd), PathBuf::from("/"));
    }
}
