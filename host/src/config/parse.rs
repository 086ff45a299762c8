//! Converting one raw source value into a typed field, with errors that say what is accepted.
//!
//! Environment and `.env` values are always strings, files give typed YAML/JSON values, so
//! every converter accepts both forms (e.g. `30` and `"30"`; a list or its JSON text).

use super::error::ConfigError;
use super::paths::{absolutize, expand_tilde};
use super::settings::SECRET_FIELDS;
use super::source::Source;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Long offending values are cut so one bad setting cannot flood the terminal.
const MAX_SHOWN_CHARS: usize = 200;

/// A field's winning value and its source.
#[derive(Clone, Copy)]
pub(crate) struct Raw<'a> {
    pub field: &'static str,
    pub value: &'a Value,
    pub origin: &'a Source,
}

impl Raw<'_> {
    pub(crate) fn invalid(&self, expected: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            field: self.field,
            value: render_offending(self.field, self.value),
            origin: self.origin.clone(),
            expected: expected.into(),
        }
    }
}

/// How a bad value is quoted in an error: JSON-style, truncated, and `***` for secrets.
pub(crate) fn render_offending(field: &str, value: &Value) -> String {
    if SECRET_FIELDS.contains(&field) {
        return "***".to_string();
    }
    let shown = match value {
        Value::String(s) => serde_json::to_string(s).unwrap_or_else(|_| s.clone()),
        other => other.to_string(),
    };
    if shown.chars().count() > MAX_SHOWN_CHARS {
        let cut: String = shown.chars().take(MAX_SHOWN_CHARS).collect();
        format!("{cut}… ({} characters)", shown.chars().count())
    } else {
        shown
    }
}

/// A whole number in `min..=max`. `expected` describes the usual range ("a whole number of
/// seconds greater than 0"); the upper bound is mentioned only when it was exceeded.
pub(crate) fn uint(raw: Raw<'_>, min: u64, max: u64, expected: &str) -> Result<u64, ConfigError> {
    let n = match raw.value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        Some(n) if n > max => Err(raw.invalid(format!("{expected}, at most {max}"))),
        _ => Err(raw.invalid(expected)),
    }
}

fn clean_text(s: &str) -> Option<&str> {
    let t = s.trim();
    (!t.is_empty() && !t.chars().any(char::is_control)).then_some(t)
}

/// A non-empty string without control characters, trimmed.
pub(crate) fn text(raw: Raw<'_>) -> Result<String, ConfigError> {
    match raw.value {
        Value::String(s) => clean_text(s).map(str::to_string),
        _ => None,
    }
    .ok_or_else(|| raw.invalid("a non-empty string without control characters"))
}

/// Like [`text`], but null or an empty string means "not set".
pub(crate) fn opt_text(raw: Raw<'_>) -> Result<Option<String>, ConfigError> {
    match raw.value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => clean_text(s)
            .map(|t| Some(t.to_string()))
            .ok_or_else(|| raw.invalid("a string without control characters, or empty to unset")),
        _ => Err(raw.invalid("a string without control characters, or empty to unset")),
    }
}

/// One of `options`, matched case-insensitively with `-` and `_` treated alike.
pub(crate) fn choice<T: Copy>(raw: Raw<'_>, options: &[(&str, T)]) -> Result<T, ConfigError> {
    let found = match raw.value {
        Value::String(s) => {
            let norm = s.trim().to_ascii_lowercase().replace('-', "_");
            options
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(&norm))
                .map(|(_, v)| *v)
        }
        _ => None,
    };
    found.ok_or_else(|| {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        raw.invalid(format!("one of {}", names.join(", ")))
    })
}

/// The value itself if structured, or the JSON it contains if it is a string (env form).
fn structured(raw: Raw<'_>) -> Option<Value> {
    match raw.value {
        Value::String(s) => serde_json::from_str(s.trim()).ok(),
        other => Some(other.clone()),
    }
}

/// A list of non-empty strings: a YAML/JSON list, or JSON text such as `["python"]`.
pub(crate) fn string_list(raw: Raw<'_>) -> Result<Vec<String>, ConfigError> {
    const EXPECTED: &str =
        r#"a list of non-empty strings (in the environment as JSON, e.g. ["python","process"])"#;
    let Some(Value::Array(items)) = structured(raw) else {
        return Err(raw.invalid(EXPECTED));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => clean_text(s).map(str::to_string),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| raw.invalid(EXPECTED))
}

/// A mapping of node name → limit > 0; null, an empty string or `{}` mean no limits.
pub(crate) fn limits(raw: Raw<'_>) -> Result<Option<BTreeMap<String, u32>>, ConfigError> {
    const EXPECTED: &str = r#"a mapping of node names to whole numbers greater than 0 (in the environment as JSON, e.g. {"resize":2})"#;
    if matches!(raw.value, Value::Null) {
        return Ok(None);
    }
    if matches!(raw.value, Value::String(s) if s.trim().is_empty()) {
        return Ok(None);
    }
    let Some(Value::Object(map)) = structured(raw) else {
        return Err(raw.invalid(EXPECTED));
    };
    let mut out = BTreeMap::new();
    for (node, limit) in &map {
        let n = match limit {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match (clean_text(node), n.and_then(|n| u32::try_from(n).ok())) {
            (Some(node), Some(n)) if n > 0 => {
                out.insert(node.to_string(), n);
            }
            _ => {
                let entry = format!("{} (entry {:?} = {})", EXPECTED, node, limit);
                return Err(raw.invalid(entry));
            }
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

/// An IP socket address; null, empty or `off` disable the listener.
pub(crate) fn socket_opt(raw: Raw<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    const EXPECTED: &str =
        "an IP address and port such as 127.0.0.1:9100 or [::1]:9100, or empty/off to disable";
    match raw.value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() || s.trim().eq_ignore_ascii_case("off") => Ok(None),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| raw.invalid(EXPECTED)),
        _ => Err(raw.invalid(EXPECTED)),
    }
}

/// A directory path: `~` expanded with `HOME`, then made absolute against `cwd`.
pub(crate) fn dir_path(
    raw: Raw<'_>,
    env: &BTreeMap<String, String>,
    cwd: &Path,
) -> Result<PathBuf, ConfigError> {
    let s = match raw.value {
        Value::String(s) => clean_text(s),
        _ => None,
    }
    .ok_or_else(|| {
        raw.invalid(
            "a directory path (absolute, relative to the working directory, or starting with ~/)",
        )
    })?;
    let expanded = expand_tilde(s, env).ok_or_else(|| {
        raw.invalid("a path not starting with ~ (HOME is not set, so ~ cannot be expanded)")
    })?;
    Ok(absolutize(&expanded, cwd))
}

/// Like [`string_list`], but a string that is not a JSON list is read as comma-separated
/// names (`echo, cat`), the form `SPLAI_TOOL_ALLOWLIST` uses. Empty entries are dropped.
pub(crate) fn name_list(raw: Raw<'_>) -> Result<Vec<String>, ConfigError> {
    if let Value::String(s) = raw.value {
        if !s.trim_start().starts_with('[') {
            let names: Vec<String> = s
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect();
            if names.iter().any(|n| n.chars().any(char::is_control)) {
                return Err(raw.invalid("comma-separated program names without control characters"));
            }
            return Ok(names);
        }
    }
    string_list(raw)
}

/// Like [`dir_path`], but null or an empty string means "not set".
pub(crate) fn opt_dir_path(
    raw: Raw<'_>,
    env: &BTreeMap<String, String>,
    cwd: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    match raw.value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        _ => dir_path(raw, env, cwd).map(Some),
    }
}
