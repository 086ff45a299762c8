//! Hand-rolled checkers for the string patterns of the manifest schema (spec §7.1).
//!
//! Each checker mirrors one regex of `docs/schema/manifest.json@c4bf80a` exactly (anchored at
//! both ends, no trailing-newline leniency). Package names and versions also become directory
//! names, so [`check_package_name`] and [`check_version`] are the gate every hostile string
//! from `pkg.install` / `pkg.uninstall` passes before it touches a path.

/// Longest package name or version we accept. Not in the schema: it keeps directory names far
/// below the usual 255-byte file-name limit, so a long name fails here with a clear message
/// rather than deep inside a rename.
pub const MAX_PATH_NAME_LEN: usize = 128;

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `^[a-z0-9]+([._-][a-z0-9]+)*$`, e.g. `example.pkg`.
pub fn check_package_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_PATH_NAME_LEN {
        return Err(format!("is longer than {MAX_PATH_NAME_LEN} characters"));
    }
    let mut prev_sep = true; // the start behaves like "just after a separator"
    for c in s.chars() {
        if is_lower_alnum(c) {
            prev_sep = false;
        } else if matches!(c, '.' | '_' | '-') {
            if prev_sep {
                return Err(name_hint(s));
            }
            prev_sep = true;
        } else {
            return Err(name_hint(s));
        }
    }
    if prev_sep {
        return Err(name_hint(s));
    }
    Ok(())
}

fn name_hint(s: &str) -> String {
    format!(
        "{s:?} is not a package name: use lowercase letters and digits, separated by single \
         '.', '_' or '-' (pattern ^[a-z0-9]+([._-][a-z0-9]+)*$, e.g. \"example.pkg\")"
    )
}

/// One or more ASCII digits, returning the rest of the string.
fn digits(s: &str) -> Option<&str> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    (end > 0).then(|| &s[end..])
}

/// `N.N.N`, returning what follows.
fn triple(s: &str) -> Option<&str> {
    let rest = digits(s)?.strip_prefix('.')?;
    let rest = digits(rest)?.strip_prefix('.')?;
    digits(rest)
}

/// `^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?$`
pub fn check_version(s: &str) -> Result<(), String> {
    let hint = || {
        format!(
            "{s:?} is not a version: expected MAJOR.MINOR.PATCH with an optional -pre or +build \
             suffix of letters, digits, '.' and '-' (e.g. \"1.0.0\", \"2.1.0-rc.1\")"
        )
    };
    if s.len() > MAX_PATH_NAME_LEN {
        return Err(format!("is longer than {MAX_PATH_NAME_LEN} characters"));
    }
    let rest = triple(s).ok_or_else(hint)?;
    if rest.is_empty() {
        return Ok(());
    }
    let suffix = rest.strip_prefix(['-', '+']).ok_or_else(hint)?;
    let ok = !suffix.is_empty()
        && suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(hint())
    }
}

/// `^[0-9]+\.[0-9]+\.[0-9]+$`
pub fn check_schema_version(s: &str) -> Result<(), String> {
    match triple(s) {
        Some("") => Ok(()),
        _ => Err(format!(
            "{s:?} must look like \"1.0.0\" (three dot-separated numbers)"
        )),
    }
}

/// `[A-Za-z_][A-Za-z0-9_.]*`: a dotted Python path (the regex allows empty segments).
fn is_dotted_path(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if is_ident_start(c) => chars.all(|c| is_ident_char(c) || c == '.'),
        _ => false,
    }
}

/// `^[A-Za-z_][A-Za-z0-9_.]*(?::[A-Za-z_][A-Za-z0-9_.]*)?$`
pub fn check_entrypoint(s: &str) -> Result<(), String> {
    let ok = match s.split_once(':') {
        None => is_dotted_path(s),
        Some((module, attr)) => is_dotted_path(module) && is_dotted_path(attr),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not an entrypoint: expected a Python module path such as \
             \"adapters.echo\", optionally followed by \":Attr\" (e.g. \"adapters.echo:Echo\")"
        ))
    }
}

/// `^[A-Za-z0-9_.-]+$` (node `type` and node `adapter`).
pub fn check_token(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} may contain only letters, digits, '_', '.' and '-' (and not be empty)"
        ))
    }
}

/// `^[A-Za-z_][A-Za-z0-9_]*$` (node `handler`: a Python identifier).
pub fn check_handler(s: &str) -> Result<(), String> {
    let mut chars = s.chars();
    let ok = matches!(chars.next(), Some(c) if is_ident_start(c)) && chars.all(is_ident_char);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a handler name: use a Python identifier (letters, digits, '_', not \
             starting with a digit)"
        ))
    }
}

/// `^[A-Fa-f0-9]{64}$`
pub fn check_sha256(s: &str) -> Result<(), String> {
    if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a SHA-256 digest: expected exactly 64 hexadecimal characters"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        for ok in ["example.pkg", "a", "a-b_c.d", "x9", "0"] {
            assert!(check_package_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "..", "a..b", ".a", "a.", "A", "a/b", "a b", "a\n", "../x", "a\\b", "é",
        ] {
            assert!(check_package_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_package_name(&"a".repeat(MAX_PATH_NAME_LEN + 1)).is_err());
    }

    #[test]
    fn versions() {
        for ok in [
            "1.0.0",
            "10.20.30",
            "1.0.0-rc.1",
            "1.0.0+build-7",
            "1.0.0-..",
        ] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "1", "1.0", "1.0.0.0", "v1.0.0", "1.0.0-", "1.0.0/x", "1.0.0\n", "..", "1.0.0_a",
            "1..0",
        ] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn schema_versions() {
        assert!(check_schema_version("1.0.0").is_ok());
        assert!(check_schema_version("1.0.0-a").is_err());
        assert!(check_schema_version("1.0").is_err());
    }

    #[test]
    fn entrypoints() {
        for ok in ["adapters.echo", "a:B", "a.b:C.d", "_x", "a..b"] {
            assert!(check_entrypoint(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "a:", ":a", "a:b:c", "a-b", "a:1b", "a/b"] {
            assert!(check_entrypoint(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_handlers_hashes() {
        assert!(check_token("example.pkg.echo").is_ok());
        assert!(check_token("").is_err());
        assert!(check_token("a b").is_err());
        assert!(check_handler("feedback_showcase").is_ok());
        assert!(check_handler("9x").is_err());
        assert!(check_handler("a.b").is_err());
        assert!(check_sha256(&"aB".repeat(32)).is_ok());
        assert!(check_sha256(&"g".repeat(64)).is_err());
        assert!(check_sha256(&"a".repeat(63)).is_err());
    }
}
