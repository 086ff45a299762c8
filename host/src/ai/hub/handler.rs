//! The `model_download` executor (splai-worker.md §6.2), pulling from the configured hub
//! into the model cache in the hub layout instead of running `hf`/`git` subprocesses.
//!
//! Inputs: `model` (required, `org/name`), `source` (`huggingface`, the default, only),
//! `only_if_missing` (default true: an installed model is not fetched again and no request
//! is made), `revision` (default `main`), `files` (JSON array of file names; default every
//! file of the revision), `file` (one file). Outputs: `model`, `source`, `only_if_missing`,
//! `revision`, `commit`, `files`, `model_path` (the snapshot directory), `model_installed_now`,
//! `downloaded_bytes`, `result: "ok"`. Progress goes out as `feedback` frames (stage
//! `download`, fraction done, bytes in `metrics`).

use super::client::HubClient;
use super::error::HubError;
use super::pull::{installed, pull, Progress, PullRequest};
use crate::ai::artifact;
use crate::ai::cache::DEFAULT_REVISION;
use crate::ai::params::{self, ParamError};
use crate::ai::settings::AiSettings;
use crate::runner::{ExecutionContext, Handler, HandlerError, HandlerOutput};
use astra_core::secret::Secret;
use astra_core::work::task::codes;
use astra_core::work::Feedback;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Least time between two progress frames (the last one of each file always goes out).
const FEEDBACK_EVERY: Duration = Duration::from_millis(250);

pub struct ModelDownload {
    artifact_root: PathBuf,
    cache_dir: PathBuf,
    endpoint: String,
    token: Option<Secret>,
}

impl ModelDownload {
    pub fn new(settings: &AiSettings) -> Self {
        ModelDownload {
            artifact_root: settings.artifact_root.clone(),
            cache_dir: settings.model_cache_dir.clone(),
            endpoint: settings.hub_endpoint.clone(),
            token: settings.hub_token.clone(),
        }
    }
}

/// The request a task's parameters describe; errors name the parameter.
pub fn request(p: &Map<String, Value>) -> Result<(PullRequest, String, bool), ParamError> {
    let model = params::string(p, "model")?.ok_or_else(|| {
        ParamError::new(
            "model",
            "model_download requires input.model (e.g. \"sentence-transformers/all-MiniLM-L6-v2\")",
        )
    })?;
    crate::ai::cache::check_repo(&model).map_err(|e| ParamError::new("model", e.to_string()))?;
    let source = params::string(p, "source")?.unwrap_or_else(|| "huggingface".to_string());
    if !source.eq_ignore_ascii_case("huggingface") {
        return Err(ParamError::new(
            "source",
            format!("unsupported model source {source:?}; only \"huggingface\" (the configured hf_endpoint)"),
        ));
    }
    let only_if_missing = params::boolean(p, "only_if_missing", true)?;
    let revision = params::string(p, "revision")?.unwrap_or_else(|| DEFAULT_REVISION.to_string());
    crate::ai::cache::check_revision(&revision)
        .map_err(|e| ParamError::new("revision", e.to_string()))?;
    let mut files = params::string_list(p, "files")?.unwrap_or_default();
    if let Some(f) = params::string(p, "file")? {
        files.push(f);
    }
    for f in &files {
        crate::ai::cache::check_file(f).map_err(|e| ParamError::new("files", e.to_string()))?;
    }
    Ok((
        PullRequest::new(&model, &revision, files),
        source,
        only_if_missing,
    ))
}

fn to_handler_error(e: HubError) -> HandlerError {
    match e {
        HubError::Cancelled => HandlerError::with_code(codes::RUNNER_CANCELLED, e.to_string()),
        HubError::Name(n) => HandlerError::new(format!("parameter `model`: {n}")),
        HubError::Status { status: 404, .. } => {
            HandlerError::with_code(codes::RESOURCE_MISSING, format!("parameter `model`: {e}"))
        }
        other => HandlerError::new(other.to_string()),
    }
}

/// A `feedback` frame for `p`.
pub fn progress_feedback(p: &Progress) -> Feedback {
    let fraction = if p.total_size == 0 {
        1.0
    } else {
        p.total_done as f64 / p.total_size as f64
    };
    Feedback {
        stage: Some("download".into()),
        progress: Some(fraction.clamp(0.0, 1.0)),
        message: Some(format!(
            "file {}/{} {}: {} of {} bytes",
            p.file_index, p.file_count, p.file, p.file_done, p.file_size
        )),
        metrics: BTreeMap::from([
            ("bytes_done".to_string(), p.total_done as f64),
            ("bytes_total".to_string(), p.total_size as f64),
        ]),
        ..Feedback::default()
    }
}

impl Handler for ModelDownload {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        let (req, source, only_if_missing) = request(&ctx.params)?;
        let present = if only_if_missing {
            installed(&self.cache_dir, &req).map_err(to_handler_error)?
        } else {
            None
        };
        let pulled = match present {
            Some(p) => p,
            None => {
                let client = HubClient::new(&self.endpoint, self.token.clone());
                let mut last = Instant::now() - FEEDBACK_EVERY;
                let mut on_progress = |p: &Progress| {
                    if ctx.cancel.is_cancelled() {
                        return false;
                    }
                    if p.file_done == p.file_size || last.elapsed() >= FEEDBACK_EVERY {
                        last = Instant::now();
                        ctx.feedback.send(progress_feedback(p));
                    }
                    true
                };
                let pulled = pull(&client, &self.cache_dir, &req, &mut on_progress)
                    .map_err(to_handler_error)?;
                tracing::info!(model = %req.repo, revision = %req.revision, commit = %pulled.commit,
                    files = pulled.files.len(), bytes = pulled.downloaded_bytes, "model downloaded");
                pulled
            }
        };
        let mut fields = Map::new();
        fields.insert("model".into(), json!(req.repo));
        fields.insert("source".into(), json!(source));
        fields.insert("only_if_missing".into(), json!(only_if_missing));
        fields.insert("revision".into(), json!(req.revision));
        fields.insert("commit".into(), json!(pulled.commit));
        fields.insert("files".into(), json!(pulled.files));
        fields.insert(
            "model_path".into(),
            json!(pulled.snapshot.to_string_lossy()),
        );
        fields.insert("model_installed_now".into(), json!(pulled.installed_now));
        fields.insert("downloaded_bytes".into(), json!(pulled.downloaded_bytes));
        fields.insert("result".into(), json!("ok"));
        artifact::finish(&self.artifact_root, ctx, fields)
            .map_err(|e| HandlerError::new(e.to_string()))
    }
}
