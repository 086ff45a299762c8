//! Rendering the effective configuration for `astra-worker config show` (text and JSON).

use super::load::LoadedConfig;
use super::settings::FIELDS;
use serde_json::{json, Map, Value};

/// Gap between the value and its `# source` comment.
const MIN_GAP: usize = 4;

/// The settings as JSON values. `auth_token` is already `***` here because `Secret`
/// serialises that way; a serialisation failure (which would be a bug) yields `{}`.
fn values(cfg: &LoadedConfig) -> Map<String, Value> {
    match serde_json::to_value(&cfg.settings) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn render_value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(unset)".to_string(),
        Some(other) => other.to_string(),
    }
}

/// One `field = value    # source` line per field in a fixed order, then `config_path`, then
/// any warnings as `# warning:` lines. `auth_token` shows `***` when set.
pub fn render_show(cfg: &LoadedConfig) -> String {
    let values = values(cfg);
    let mut rows: Vec<(String, String)> = FIELDS
        .iter()
        .map(|f| {
            let origin = cfg
                .sources
                .get(f)
                .map(ToString::to_string)
                .unwrap_or_else(|| "?".into());
            (format!("{f} = {}", render_value(values.get(*f))), origin)
        })
        .collect();
    rows.push((
        format!("config_path = {}", render_value(values.get("config_path"))),
        "file search".to_string(),
    ));
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        + MIN_GAP;
    let mut out = String::new();
    for (left, origin) in rows {
        let pad = width - left.chars().count();
        out.push_str(&format!("{left}{}# {origin}\n", " ".repeat(pad)));
    }
    for w in &cfg.warnings {
        out.push_str(&format!("# warning: {w}\n"));
    }
    out
}

/// `{"fields": {name: {"value": v, "source": "..."}}, "config_path": p|null, "warnings": [...]}`
/// with fields in a stable (alphabetical) order and `auth_token` as `"***"` or null.
pub fn render_show_json(cfg: &LoadedConfig) -> Value {
    let values = values(cfg);
    let fields: Map<String, Value> = FIELDS
        .iter()
        .map(|f| {
            let source = cfg.sources.get(f).map(ToString::to_string);
            (f.to_string(), json!({ "value": values.get(*f).cloned().unwrap_or(Value::Null), "source": source }))
        })
        .collect();
    json!({
        "fields": fields,
        "config_path": values.get("config_path").cloned().unwrap_or(Value::Null),
        "warnings": cfg.warnings,
    })
}
