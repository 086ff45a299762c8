//! SPLAI-style task executors for the `astra.builtin` package (splai-worker.md §6):
//! `aggregation`, `tool_execution` and `model_download` (always built) and, with feature
//! `ai`, local CPU `embedding` (candle BERT), `retrieval` (exact vector index) and
//! `llm_inference` (candle quantized llama-family GGUF models).
//!
//! Every executor writes `<artifact_root>/<run_id>/<task_id>/output.json` and reports it as
//! an `artifact://` URI (see [`artifact`]); bad parameters fail with a message that names
//! the field. Knobs come from the worker's configuration ([`settings`]).

pub mod aggregation;
pub mod artifact;
pub mod cache;
pub mod hub;
pub mod params;
pub mod retrieval;
pub mod settings;
pub mod tool;

#[cfg(feature = "ai")]
pub mod embed;
#[cfg(feature = "ai")]
pub mod llm;

#[cfg(test)]
pub(crate) mod testutil;

pub use settings::AiSettings;

use crate::runner::Handler;
use crate::sandbox::Sandbox;
use std::sync::Arc;

/// The executors as `(node type, handler)` pairs for `astra.builtin`. Models load lazily on
/// first use; `sandbox` is shared when given, else made on the first `tool_execution`.
pub fn builtin_handlers(
    settings: &AiSettings,
    sandbox: Option<Arc<Sandbox>>,
) -> Vec<(String, Arc<dyn Handler>)> {
    #[allow(unused_mut)] // only extended with feature `ai`
    let mut out: Vec<(String, Arc<dyn Handler>)> = vec![
        (
            "aggregation".to_string(),
            Arc::new(aggregation::Aggregation::new(settings)),
        ),
        (
            "tool_execution".to_string(),
            Arc::new(tool::ToolExecution::new(settings, sandbox)),
        ),
        (
            "model_download".to_string(),
            Arc::new(hub::ModelDownload::new(settings)),
        ),
    ];
    #[cfg(feature = "ai")]
    {
        let models = Arc::new(embed::ModelCache::new(settings));
        out.push((
            "embedding".to_string(),
            Arc::new(embed::EmbeddingHandler::new(settings, models.clone())),
        ));
        out.push((
            "retrieval".to_string(),
            Arc::new(retrieval::Retrieval::new(settings, models)),
        ));
        let llms = Arc::new(llm::LlmCache::new(settings));
        out.push((
            "llm_inference".to_string(),
            Arc::new(llm::LlmHandler::new(settings, llms)),
        ));
    }
    out
}

/// [`builtin_handlers`] with settings from the environment alone (see
/// [`AiSettings::from_env`]). A malformed variable is logged and these executors are left
/// out (their node types then stay unadvertised).
pub fn builtin_handlers_from_env() -> Vec<(String, Arc<dyn Handler>)> {
    match AiSettings::from_env() {
        Ok(settings) => builtin_handlers(&settings, None),
        Err(e) => {
            tracing::error!(error = %e, "AI/tool executors disabled: fix the variable and restart");
            Vec::new()
        }
    }
}
