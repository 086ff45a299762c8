//! Finding and parsing the YAML/JSON config file (spec §8.1 file search).

use super::context::{LoadContext, CONFIG_FILE_VAR};
use super::error::ConfigError;
use super::paths::{absolutize, expand_tilde};
use figment::providers::{Format as _, Json, Yaml};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Yaml,
    Json,
}

/// Only these suffixes are parsed (case-insensitively); others are skipped as if absent.
fn format_of(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "yaml" | "yml" => Some(Format::Yaml),
        "json" => Some(Format::Json),
        _ => None,
    }
}

/// The config file to read, if any: the explicit one (which must exist and have a supported
/// suffix) or else the first existing candidate with a supported suffix.
pub(crate) fn locate(ctx: &LoadContext) -> Result<Option<PathBuf>, ConfigError> {
    let explicit = match &ctx.config_file {
        Some(p) => Some((
            p.to_string_lossy().into_owned(),
            "the --config option".to_string(),
        )),
        None => env_lookup(ctx, CONFIG_FILE_VAR)
            .filter(|(_, v)| !v.is_empty())
            .map(|(name, v)| (v.to_string(), name.to_string())),
    };
    if let Some((raw, named_by)) = explicit {
        // An unset HOME leaves `~` in place; the missing-file error then shows it literally.
        let expanded = expand_tilde(&raw, &ctx.env).unwrap_or_else(|| PathBuf::from(&raw));
        let path = absolutize(&expanded, &ctx.cwd);
        if !path.exists() {
            return Err(ConfigError::FileMissing { path, named_by });
        }
        if format_of(&path).is_none() {
            return Err(ConfigError::FileUnsupported { path, named_by });
        }
        return Ok(Some(path));
    }
    Ok(ctx
        .file_candidates
        .iter()
        .map(|c| absolutize(c, &ctx.cwd))
        .find(|p| p.exists() && format_of(p).is_some()))
}

/// Looks a variable up by exact name first, then case-insensitively (in sorted order, so the
/// choice is deterministic). Returns the name as spelled and the value.
pub(crate) fn env_lookup<'a>(ctx: &'a LoadContext, name: &str) -> Option<(&'a str, &'a str)> {
    if let Some((k, v)) = ctx.env.get_key_value(name) {
        return Some((k, v));
    }
    ctx.env
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// Reads and parses the file into its top-level mapping.
pub(crate) fn read(path: &Path) -> Result<Map<String, Value>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::FileUnreadable {
        path: path.to_path_buf(),
        cause,
    })?;
    let (format, parsed) = match format_of(path) {
        // Empty YAML (or only comments) is `{}`, as with PyYAML's safe_load → None → {}.
        Some(Format::Yaml) if is_blank_yaml(&text) => return Ok(Map::new()),
        Some(Format::Yaml) => (
            "YAML",
            Yaml::from_str::<Value>(&text).map_err(|e| e.to_string()),
        ),
        Some(Format::Json) => (
            "JSON",
            Json::from_str::<Value>(&text).map_err(|e| e.to_string()),
        ),
        // `locate` never returns such a path; treat it like an empty file rather than panic.
        None => return Ok(Map::new()),
    };
    let value = parsed.map_err(|detail| ConfigError::FileParse {
        path: path.to_path_buf(),
        format,
        detail,
    })?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null if format == "YAML" => Ok(Map::new()),
        other => Err(ConfigError::FileNotMapping {
            path: path.to_path_buf(),
            found: kind_of(&other),
        }),
    }
}

fn is_blank_yaml(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#') || l == "---" || l == "...")
}

pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
