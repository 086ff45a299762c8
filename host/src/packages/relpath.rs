//! Turns an untrusted relative path (an archive entry name, a manifest `metadata.command`)
//! into a normalised relative `PathBuf` that cannot leave the directory it is joined to.
//!
//! This is a purely lexical check. It is enough because the extractor never creates links, so
//! every directory under the extraction root is a real directory we made ourselves.

use std::path::PathBuf;

/// Limits on the shape of a path, so a hostile name cannot make us build absurd trees.
#[derive(Debug, Clone, Copy)]
pub struct PathLimits {
    /// Most components (directories + file name) a path may have.
    pub max_depth: usize,
    /// Longest path in bytes.
    pub max_len: usize,
}

impl Default for PathLimits {
    fn default() -> Self {
        PathLimits {
            max_depth: 32,
            max_len: 1024,
        }
    }
}

/// Outcome of normalising a path: `None` means the path names the root itself (`""`, `"."`,
/// `"./"`), which archives use for the top directory and which is skipped.
pub fn normalize(raw: &str, limits: PathLimits) -> Result<Option<PathBuf>, String> {
    if raw.len() > limits.max_len {
        return Err(format!("is longer than {} bytes", limits.max_len));
    }
    if raw.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    // Backslashes are separators on Windows; `a\..\..\x` would escape there. No portable
    // package needs one, so refuse rather than guess.
    if raw.contains('\\') {
        return Err("contains a backslash; use '/' as the path separator".into());
    }
    if raw.starts_with('/') {
        return Err("is an absolute path; entries must be relative to the package root".into());
    }
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for part in raw.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err("contains '..' (path traversal)".into()),
            _ => {}
        }
        // `C:`-style drive prefixes and NTFS alternate streams (`file:stream`) both use ':'.
        if part.contains(':') {
            return Err("contains ':' (a Windows drive prefix or stream name)".into());
        }
        if part.chars().any(|c| c.is_control()) {
            return Err("contains a control character".into());
        }
        depth += 1;
        if depth > limits.max_depth {
            return Err(format!("is nested deeper than {} levels", limits.max_depth));
        }
        out.push(part);
    }
    Ok((depth > 0).then_some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Result<Option<PathBuf>, String> {
        normalize(s, PathLimits::default())
    }

    #[test]
    fn accepts_and_normalises() {
        assert_eq!(norm("a/b.py").unwrap(), Some(PathBuf::from("a/b.py")));
        assert_eq!(norm("./a//b/").unwrap(), Some(PathBuf::from("a/b")));
        assert_eq!(norm("./").unwrap(), None);
        assert_eq!(norm("").unwrap(), None);
    }

    #[test]
    fn rejects_escapes() {
        for bad in [
            "../x",
            "a/../../x",
            "/etc/x",
            "C:/x",
            "c:x",
            "a\\..\\x",
            "\\\\srv\\x",
            "a\0b",
            "a/\n",
        ] {
            assert!(norm(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rejects_too_deep_or_long() {
        let deep = vec!["d"; 40].join("/");
        assert!(norm(&deep).is_err());
        assert!(norm(&"a".repeat(2000)).is_err());
    }
}
