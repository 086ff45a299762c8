//! Executor outputs as artifacts: `<artifact_root>/<run_id>/<task_id>/output.json` with the
//! SPLAI envelope (`job_id`, `task_id`, `type`, `created_at`) merged with the executor's
//! fields, reported as `artifact://<run_id>/<task_id>/output.json`.
//!
//! Unlike SPLAI, the ids are sanitised into single path components (no traversal), the file
//! is written atomically (temp file + rename), and a large output is not copied whole into
//! the result: the result keeps the small fields, lists the dropped ones in
//! `omitted_fields`, and points at the artifact.

use crate::runner::datadir::sanitize_component;
use crate::runner::{ExecutionContext, HandlerOutput};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const OUTPUT_FILE: &str = "output.json";
pub const CONTENT_TYPE: &str = "application/json";
/// Outputs up to this size travel inline in the result as well (`inline: true`).
pub const INLINE_LIMIT: usize = 256 * 1024;
/// When the output is larger, top-level fields above this size are left to the artifact.
const FIELD_KEEP_LIMIT: usize = 4 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("cannot write the task output {path}: {source}; check that the artifact root is writable (ASTRA_WORKER_ARTIFACT_ROOT / SPLAI_ARTIFACT_ROOT)")]
pub struct ArtifactError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// A written output file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    pub uri: String,
    pub size_bytes: u64,
    pub sha256: String,
}

/// `<root>/<run>/<task>` with both ids sanitised (same mapping as the task data dirs).
pub fn task_artifact_dir(root: &Path, run_id: &str, task_id: &str) -> PathBuf {
    root.join(sanitize_component(run_id))
        .join(sanitize_component(task_id))
}

/// The URI of a task's output, as other tasks receive it in `dep:<id>:output_uri`.
pub fn output_uri(run_id: &str, task_id: &str) -> String {
    format!(
        "artifact://{}/{}/{OUTPUT_FILE}",
        sanitize_component(run_id),
        sanitize_component(task_id)
    )
}

fn created_at() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    astra_core::time::format_rfc3339_micros(secs.saturating_mul(1_000_000))
}

/// Writes envelope + `fields` as pretty JSON (2-space indent), atomically.
pub fn write_output(
    root: &Path,
    run_id: &str,
    task_id: &str,
    node_type: &str,
    fields: &Map<String, Value>,
) -> Result<Written, ArtifactError> {
    let dir = task_artifact_dir(root, run_id, task_id);
    let path = dir.join(OUTPUT_FILE);
    let err = |source| ArtifactError {
        path: path.clone(),
        source,
    };
    let mut doc = Map::new();
    doc.insert("job_id".into(), json!(run_id));
    doc.insert("task_id".into(), json!(task_id));
    doc.insert("type".into(), json!(node_type));
    doc.insert("created_at".into(), json!(created_at()));
    for (k, v) in fields {
        doc.insert(k.clone(), v.clone());
    }
    let bytes = serde_json::to_vec_pretty(&Value::Object(doc))
        .map_err(|e| err(std::io::Error::other(e)))?;
    std::fs::create_dir_all(&dir).map_err(err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(err)?;
    tmp.write_all(&bytes).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(err)?;
    }
    tmp.persist(&path).map_err(|e| err(e.error))?;
    Ok(Written {
        uri: output_uri(run_id, task_id),
        size_bytes: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(&bytes)),
        path,
    })
}

/// Writes the output artifact and shapes the handler dict: `outputs` (the fields plus
/// `output_uri`, trimmed when large) and one `artifacts` entry.
pub fn finish(
    root: &Path,
    ctx: &ExecutionContext,
    fields: Map<String, Value>,
) -> Result<HandlerOutput, ArtifactError> {
    let written = write_output(root, &ctx.run_id, &ctx.task_id, &ctx.node_type, &fields)?;
    let inline = written.size_bytes as usize <= INLINE_LIMIT;
    let mut outputs = if inline {
        fields
    } else {
        let mut kept = Map::new();
        let mut omitted = Vec::new();
        for (k, v) in fields {
            if serde_json::to_string(&v).map_or(usize::MAX, |s| s.len()) <= FIELD_KEEP_LIMIT {
                kept.insert(k, v);
            } else {
                omitted.push(Value::String(k));
            }
        }
        kept.insert("omitted_fields".into(), Value::Array(omitted));
        kept
    };
    outputs.insert("output_uri".into(), json!(written.uri));
    let artifact = json!({
        "resource_id": written.uri,
        "worker_id": ctx.worker_id,
        "type": CONTENT_TYPE,
        "size_bytes": written.size_bytes,
        "inline": inline,
        "metadata": { "sha256": written.sha256, "path": written.path.to_string_lossy() },
    });
    let mut out = HandlerOutput::new();
    out.insert("outputs".into(), Value::Object(outputs));
    out.insert("artifacts".into(), json!([artifact]));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_envelope_and_fields_under_sanitised_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let mut fields = Map::new();
        fields.insert("result".into(), json!("ok"));
        let w = write_output(tmp.path(), "../run", "t1", "aggregation", &fields).unwrap();
        assert!(w.path.starts_with(tmp.path()));
        assert!(!w.path.to_string_lossy().contains(".."));
        let doc: Value = serde_json::from_slice(&std::fs::read(&w.path).unwrap()).unwrap();
        assert_eq!(doc["job_id"], "../run");
        assert_eq!(doc["type"], "aggregation");
        assert_eq!(doc["result"], "ok");
        assert!(doc["created_at"].as_str().unwrap().ends_with("+00:00"));
        assert_eq!(w.size_bytes, std::fs::metadata(&w.path).unwrap().len());
        assert!(
            w.uri.starts_with("artifact://_.") && w.uri.ends_with("/t1/output.json"),
            "{}",
            w.uri
        );
    }
}
