//! The `astra.builtin` package: small handlers for demos, smoke tests and the simulator
//! (`echo`, `sleep`, `fail`, `stream`), plus the SPLAI-style executors of [`crate::ai`].

use super::context::ExecutionContext;
use super::handler::{Handler, HandlerError, HandlerOutput};
use super::registry::HandlerRegistry;
use astra_core::v1::payloads::{FeedbackChannel, FeedbackChunk};
use astra_core::work::Feedback;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

pub const BUILTIN_PACKAGE: &str = "astra.builtin";
pub const BUILTIN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Upper bounds that keep a hostile dispatch from parking a thread for days or flooding
/// the scheduler with feedback.
const MAX_SLEEP: Duration = Duration::from_secs(24 * 3600);
const MAX_STREAM_COUNT: u64 = 10_000;
const MAX_STREAM_INTERVAL_MS: u64 = 60_000;
const DEFAULT_STREAM_TEXT: &str = "the quick brown fox jumps over the lazy dog";

/// Registers (or re-registers) every builtin handler under `astra.builtin` / this crate's
/// version, with the AI/tool executors configured from the environment alone (for tests
/// and tools without a loaded configuration; the worker uses [`register_builtins_with`]).
pub fn register_builtins(registry: &HandlerRegistry) {
    register_executors(registry, crate::ai::builtin_handlers_from_env());
}

/// Like [`register_builtins`], with the executors configured from the loaded configuration.
pub fn register_builtins_with(registry: &HandlerRegistry, ai: &crate::ai::AiSettings) {
    register_executors(registry, crate::ai::builtin_handlers(ai, None));
}

fn register_executors(registry: &HandlerRegistry, executors: Vec<(String, Arc<dyn Handler>)>) {
    let handlers: [(&str, Arc<dyn Handler>); 4] = [
        ("echo", Arc::new(Echo)),
        ("sleep", Arc::new(Sleep)),
        ("fail", Arc::new(Fail)),
        ("stream", Arc::new(Stream)),
    ];
    // Plus the SPLAI-style executors (aggregation, tool_execution, model_download; embedding
    // and retrieval with feature `ai`).
    registry.register_package(
        BUILTIN_PACKAGE,
        BUILTIN_VERSION,
        handlers
            .into_iter()
            .map(|(n, h)| (n.to_string(), h))
            .chain(executors),
    );
}

fn outputs(map: Map<String, Value>) -> HandlerOutput {
    let mut out = HandlerOutput::new();
    out.insert("outputs".to_string(), Value::Object(map));
    out
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A non-negative integer parameter, or its default when absent.
fn u64_param(
    ctx: &ExecutionContext,
    name: &str,
    default: u64,
    max: u64,
) -> Result<u64, HandlerError> {
    match ctx.params.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if n <= max => Ok(n),
            _ => Err(HandlerError::new(format!(
                "parameter `{name}` must be an integer between 0 and {max}, got {v}"
            ))),
        },
    }
}

/// `outputs` = the parameters, unchanged.
pub struct Echo;

impl Handler for Echo {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        Ok(outputs(ctx.params.clone()))
    }

    fn uses_data_dir(&self) -> bool {
        false
    }

    /// A copy of the parameters.
    fn inline(&self) -> bool {
        true
    }
}

/// Sleeps `ms` milliseconds or `seconds` seconds (default 0), returning early on cancel.
pub struct Sleep;

impl Sleep {
    fn duration(params: &Map<String, Value>) -> Result<Duration, HandlerError> {
        let d = match (params.get("ms"), params.get("seconds")) {
            (Some(ms), _) if !ms.is_null() => ms
                .as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0 && *x <= MAX_SLEEP.as_secs_f64() * 1000.0)
                .map(|x| Duration::from_secs_f64(x / 1000.0))
                .ok_or_else(|| HandlerError::new(format!("parameter `ms` must be a number of milliseconds between 0 and 24 h, got {ms}")))?,
            (_, Some(s)) if !s.is_null() => s
                .as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0 && *x <= MAX_SLEEP.as_secs_f64())
                .map(Duration::from_secs_f64)
                .ok_or_else(|| HandlerError::new(format!("parameter `seconds` must be a number of seconds between 0 and 24 h, got {s}")))?,
            _ => Duration::ZERO,
        };
        Ok(d)
    }
}

impl Handler for Sleep {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        let d = Self::duration(&ctx.params)?;
        let start = std::time::Instant::now();
        if ctx.cancel.wait(d) {
            return Err(HandlerError::new("sleep cancelled"));
        }
        let slept = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(outputs(object(json!({ "slept_ms": slept }))))
    }

    fn uses_data_dir(&self) -> bool {
        false
    }
}

/// Fails on purpose. `mode`: `error` (default; handler error → `command.error`), `status`
/// (returns status failed with an error object → FAILED result), `panic` (proves panics are
/// contained).
pub struct Fail;

impl Handler for Fail {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        let message = ctx
            .params
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("requested failure")
            .to_string();
        match ctx
            .params
            .get("mode")
            .and_then(Value::as_str)
            .unwrap_or("error")
        {
            "error" => Err(HandlerError::new(message)),
            "status" => Ok(object(json!({
                "status": "failed",
                "error": { "code": "E.BUILTIN.FAIL", "message": message },
            }))),
            // Deliberate: this mode exists to show that a panicking handler is contained.
            "panic" => panic!("{message}"),
            other => Err(HandlerError::new(format!(
                "unknown fail mode `{other}`; use error, status or panic"
            ))),
        }
    }

    fn uses_data_dir(&self) -> bool {
        false
    }

    /// Builds an error from its parameters (a panic is contained by the runner either way).
    fn inline(&self) -> bool {
        true
    }
}

/// Streams `count` tokens as LLM-style feedback frames, then a final `succeeded` frame.
pub struct Stream;

impl Handler for Stream {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        let count = u64_param(ctx, "count", 5, MAX_STREAM_COUNT)?;
        let interval =
            Duration::from_millis(u64_param(ctx, "interval_ms", 20, MAX_STREAM_INTERVAL_MS)?);
        let text = match ctx.params.get("text") {
            None | Some(Value::Null) => DEFAULT_STREAM_TEXT,
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(HandlerError::new(format!(
                    "parameter `text` must be a string, got {other}"
                )))
            }
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let words = if words.is_empty() {
            vec![DEFAULT_STREAM_TEXT]
        } else {
            words
        };

        let mut so_far: Vec<&str> = Vec::new();
        for i in 0..count {
            // Pace between frames (not before the first), returning early on cancel.
            if i > 0 && ctx.cancel.wait(interval) {
                return Err(HandlerError::new("stream cancelled"));
            }
            let token = words[(i as usize) % words.len()];
            so_far.push(token);
            let summary = so_far.join(" ");
            let mut metrics = std::collections::BTreeMap::new();
            metrics.insert("tokens_streamed".to_string(), (i + 1) as f64);
            ctx.feedback.send(Feedback {
                stage: Some("streaming".to_string()),
                progress: Some((i + 1) as f64 / count as f64),
                message: Some(format!("token {} of {count}", i + 1)),
                chunks: vec![FeedbackChunk {
                    channel: FeedbackChannel::Llm,
                    index: Some(i),
                    mime_type: None,
                    text: Some(token.to_string()),
                    data_base64: None,
                    metadata: None,
                }],
                metrics,
                metadata: Some(object(json!({ "results": { "summary": summary } }))),
            });
        }
        let text = so_far.join(" ");
        ctx.feedback.send(Feedback {
            stage: Some("succeeded".to_string()),
            progress: Some(1.0),
            message: Some("stream complete".to_string()),
            ..Feedback::default()
        });
        Ok(outputs(object(json!({ "text": text, "chunks": count }))))
    }

    fn uses_data_dir(&self) -> bool {
        false
    }
}
