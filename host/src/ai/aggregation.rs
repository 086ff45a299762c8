//! `aggregation` (splai-worker.md §6.6, HEAD): merges inline items and dependency outputs
//! into one structured report with conflicts, provenance and highlights.
//!
//! Sources, in order: `items_json` (each object is `inline-<n>`, 1-based), then every
//! `dep:<id>:output_uri` parameter sorted by id. Fixed against SPLAI: the artifact envelope
//! keys (`job_id`, `task_id`, `type`, `created_at`) and our `output_uri` / `omitted_fields`
//! are not merged (no spurious conflicts); dependency URIs are checked segment by segment
//! (no traversal); `sources` lists each source's id, URI and key count instead of copying
//! whole payloads into every stage.

use super::artifact::{self, OUTPUT_FILE};
use super::params::{self, ParamError};
use super::settings::AiSettings;
use crate::runner::{ExecutionContext, Handler, HandlerError, HandlerOutput};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_HIGHLIGHTS: usize = 12;
/// Largest dependency output read.
const MAX_DEP_BYTES: u64 = 64 << 20;
const ENVELOPE_KEYS: [&str; 6] = [
    "job_id",
    "task_id",
    "type",
    "created_at",
    "output_uri",
    "omitted_fields",
];

pub struct Aggregation {
    artifact_root: PathBuf,
}

impl Aggregation {
    pub fn new(settings: &AiSettings) -> Self {
        Aggregation {
            artifact_root: settings.artifact_root.clone(),
        }
    }
}

/// One input to the reduction.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub id: String,
    pub uri: Option<String>,
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reduced {
    pub merged: Map<String, Value>,
    pub conflicts: BTreeMap<String, Vec<Value>>,
    pub provenance: BTreeMap<String, Vec<String>>,
    pub highlights: Vec<String>,
}

/// The merge: first value wins, later different values are conflicts.
pub fn reduce(sources: &[Source]) -> Reduced {
    let mut r = Reduced::default();
    let mut highlights = BTreeSet::new();
    for src in sources {
        let from_dep = src.uri.is_some();
        let mut keys: Vec<&String> = src.fields.keys().collect();
        keys.sort();
        for key in keys {
            if key.starts_with("dep:")
                || key.starts_with('_')
                || (from_dep && ENVELOPE_KEYS.contains(&key.as_str()))
            {
                continue;
            }
            let value = &src.fields[key];
            r.provenance
                .entry(key.clone())
                .or_default()
                .push(src.id.clone());
            if let Value::String(s) = value {
                if !s.trim().is_empty() {
                    highlights.insert(s.trim().to_string());
                }
            }
            match r.merged.get(key) {
                None => {
                    r.merged.insert(key.clone(), value.clone());
                }
                Some(first) if first == value => {}
                Some(_) => {
                    let list = r.conflicts.entry(key.clone()).or_default();
                    if !list.contains(value) {
                        list.push(value.clone());
                    }
                }
            }
        }
    }
    r.highlights = highlights.into_iter().take(MAX_HIGHLIGHTS).collect();
    r
}

/// Why a dependency could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DepError {
    #[error("unsupported dependency artifact URI {0:?}: expected artifact://<run_id>/<task_id>/output.json on this worker")]
    Unsupported(String),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_DEP_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path} is not a JSON object: {problem}")]
    NotObject { path: PathBuf, problem: String },
}

/// A component written by `artifact::task_artifact_dir`: never empty, `.`-led or with `/`.
fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~'))
}

/// `artifact://<run>/<task>[/output.json]` → the local file.
pub fn resolve_uri(root: &Path, uri: &str) -> Result<PathBuf, DepError> {
    let unsupported = || DepError::Unsupported(uri.to_string());
    let rest = uri.strip_prefix("artifact://").ok_or_else(unsupported)?;
    let segs: Vec<&str> = rest.split('/').collect();
    match segs.as_slice() {
        [run, task] | [run, task, OUTPUT_FILE]
            if *run != "s3" && safe_segment(run) && safe_segment(task) =>
        {
            Ok(root.join(run).join(task).join(OUTPUT_FILE))
        }
        _ => Err(unsupported()),
    }
}

fn load_dep(root: &Path, uri: &str) -> Result<Map<String, Value>, DepError> {
    let path = resolve_uri(root, uri)?;
    let read = |source| DepError::Read {
        path: path.clone(),
        source,
    };
    let len = std::fs::metadata(&path).map_err(read)?.len();
    if len > MAX_DEP_BYTES {
        return Err(DepError::TooLarge { path });
    }
    let bytes = std::fs::read(&path).map_err(read)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(DepError::NotObject {
            path,
            problem: "top level is not an object".into(),
        }),
        Err(e) => Err(DepError::NotObject {
            path,
            problem: e.to_string(),
        }),
    }
}

/// Collects the sources from the parameters.
pub fn gather(
    root: &Path,
    p: &Map<String, Value>,
) -> Result<(Vec<Source>, Vec<String>), HandlerError> {
    let mut sources = Vec::new();
    if let Some(items) = params::json_doc(p, "items_json")? {
        let Value::Array(items) = items else {
            return Err(ParamError::new(
                "items_json",
                "invalid items_json: must be a JSON array of objects",
            )
            .into());
        };
        for (i, item) in items.into_iter().enumerate() {
            let Value::Object(fields) = item else {
                return Err(ParamError::new(
                    "items_json",
                    format!("invalid items_json: item {i} must be an object"),
                )
                .into());
            };
            sources.push(Source {
                id: format!("inline-{}", i + 1),
                uri: None,
                fields,
            });
        }
    }
    let strict = params::boolean(p, "strict_dependencies", true)?;
    let mut deps: Vec<(&str, &Value)> = p
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("dep:")
                .and_then(|r| r.strip_suffix(":output_uri"))
                .map(|id| (id, v))
        })
        .collect();
    deps.sort_by(|a, b| a.0.cmp(b.0));
    let mut skipped = Vec::new();
    for (id, v) in deps {
        let loaded = match v.as_str() {
            Some(uri) => load_dep(root, uri.trim()).map(|f| (uri.trim().to_string(), f)),
            None => Err(DepError::Unsupported(v.to_string())),
        };
        match loaded {
            Ok((uri, fields)) => sources.push(Source {
                id: id.to_string(),
                uri: Some(uri),
                fields,
            }),
            Err(e) if strict => {
                return Err(HandlerError::new(format!(
                    "load dependency {id}: {e} (set strict_dependencies=false to skip unreadable dependencies)"
                )))
            }
            Err(e) => {
                tracing::warn!(dependency = id, error = %e, "skipping unreadable dependency");
                skipped.push(id.to_string());
            }
        }
    }
    Ok((sources, skipped))
}

fn required_fields(p: &Map<String, Value>) -> Result<Vec<String>, ParamError> {
    if let Some(list) = params::string_list(p, "required_fields_json")? {
        return Ok(list);
    }
    Ok(params::string(p, "required_fields")?
        .map(|csv| {
            csv.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default())
}

/// Everything but writing the artifact; returns the output fields.
pub fn aggregate(root: &Path, p: &Map<String, Value>) -> Result<Map<String, Value>, HandlerError> {
    let (sources, skipped) = gather(root, p)?;
    if sources.is_empty() {
        return Err(HandlerError::with_code(
            astra_core::work::task::codes::CMD_INVALID,
            "aggregation requires at least one source (dependency artifact or items_json)",
        ));
    }
    let required = required_fields(p)?;
    let r = reduce(&sources);
    let missing: Vec<&str> = required
        .iter()
        .filter(|k| !r.merged.contains_key(k.as_str()))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(HandlerError::new(format!(
            "aggregation missing required fields: {}",
            missing.join(",")
        )));
    }
    let mode = params::first_string(p, &["aggregation_mode", "mode"])?
        .map(|(_, v)| v)
        .unwrap_or_else(|| "structured_report".to_string());
    let summaries: Vec<Value> = sources
        .iter()
        .map(|s| json!({ "id": s.id, "uri": s.uri, "field_count": s.fields.len() }))
        .collect();
    let mut out = Map::new();
    out.insert("mode".into(), json!(mode));
    out.insert("source_count".into(), json!(sources.len()));
    out.insert("sources".into(), Value::Array(summaries));
    out.insert(
        "result".into(),
        json!({ "merged_fields": r.merged, "conflicts": r.conflicts, "highlights": r.highlights }),
    );
    out.insert("provenance".into(), json!(r.provenance));
    if !skipped.is_empty() {
        out.insert("skipped_dependencies".into(), json!(skipped));
    }
    Ok(out)
}

impl Handler for Aggregation {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        let fields = aggregate(&self.artifact_root, &ctx.params)?;
        artifact::finish(&self.artifact_root, ctx, fields)
            .map_err(|e| HandlerError::new(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn write_dep(root: &Path, run: &str, task: &str, fields: Value) -> String {
        artifact::write_output(
            root,
            run,
            task,
            "llm_inference",
            fields.as_object().unwrap(),
        )
        .unwrap()
        .uri
    }

    #[test]
    fn merges_inline_and_dependencies_without_envelope_noise() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write_dep(
            tmp.path(),
            "run",
            "a",
            json!({"answer": "42", "lang": "en"}),
        );
        let b = write_dep(
            tmp.path(),
            "run",
            "b",
            json!({"answer": "41", "score": 3, "_x": 1}),
        );
        let params = p(json!({
            "items_json": "[{\"lang\": \"en\", \"note\": \"inline\"}]",
            "dep:b:output_uri": b, "dep:a:output_uri": a,
            "required_fields": "answer, lang",
        }));
        let out = aggregate(tmp.path(), &params).unwrap();
        assert_eq!(out["source_count"], 3);
        let merged = &out["result"]["merged_fields"];
        assert_eq!(merged["answer"], "42"); // dep a sorts before b
        assert_eq!(merged["lang"], "en");
        assert!(merged.get("job_id").is_none() && merged.get("_x").is_none());
        assert_eq!(out["result"]["conflicts"], json!({"answer": ["41"]}));
        assert_eq!(out["provenance"]["lang"], json!(["inline-1", "a"]));
        assert_eq!(
            out["result"]["highlights"],
            json!(["41", "42", "en", "inline"])
        );
        assert_eq!(out["mode"], "structured_report");
    }

    #[test]
    fn errors_name_the_problem() {
        let tmp = tempfile::tempdir().unwrap();
        let e = aggregate(tmp.path(), &Map::new()).unwrap_err();
        assert_eq!(
            e.message,
            "aggregation requires at least one source (dependency artifact or items_json)"
        );
        let e = aggregate(tmp.path(), &p(json!({"items_json": "{"}))).unwrap_err();
        assert!(
            e.message
                .starts_with("parameter `items_json`: invalid JSON"),
            "{}",
            e.message
        );
        let e = aggregate(
            tmp.path(),
            &p(json!({"items_json": [{"a": 1}], "required_fields_json": ["a", "b", "c"]})),
        )
        .unwrap_err();
        assert_eq!(e.message, "aggregation missing required fields: b,c");
        let e = aggregate(
            tmp.path(),
            &p(json!({"dep:x:output_uri": "artifact://run/missing/output.json"})),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("load dependency x: cannot read"),
            "{}",
            e.message
        );
        let out = aggregate(tmp.path(), &p(json!({"items_json": [{"a": 1}], "strict_dependencies": "false", "dep:x:output_uri": "artifact://run/missing"}))).unwrap();
        assert_eq!(out["skipped_dependencies"], json!(["x"]));
    }

    #[test]
    fn hostile_uris_are_rejected() {
        let root = Path::new("/r");
        for uri in [
            "artifact://../etc/output.json",
            "artifact://run/../../x",
            "artifact://s3/bucket/run/task/output.json",
            "file:///etc/passwd",
            "artifact://run/task/other.json",
            "artifact://run/.hidden",
        ] {
            assert!(
                matches!(resolve_uri(root, uri), Err(DepError::Unsupported(_))),
                "{uri}"
            );
        }
        assert_eq!(
            resolve_uri(root, "artifact://r1/t~ab/output.json").unwrap(),
            PathBuf::from("/r/r1/t~ab/output.json")
        );
    }

    #[test]
    fn handler_writes_the_artifact() {
        let tmp = tempfile::tempdir().unwrap();
        let settings = AiSettings {
            artifact_root: tmp.path().to_path_buf(),
            ..AiSettings::default()
        };
        let ctx = super::super::testutil::ctx(
            "aggregation",
            json!({"items_json": [{"k": "v"}]}),
            tmp.path(),
        );
        let out = Aggregation::new(&settings).run(&ctx).unwrap();
        let uri = out["outputs"]["output_uri"].as_str().unwrap();
        assert_eq!(out["artifacts"][0]["resource_id"], uri);
        assert_eq!(out["artifacts"][0]["inline"], true);
        let path = resolve_uri(tmp.path(), uri).unwrap();
        let doc: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(doc["result"]["merged_fields"]["k"], "v");
        assert_eq!(doc["type"], "aggregation");
    }
}
