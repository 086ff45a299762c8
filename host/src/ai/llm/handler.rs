//! The `llm_inference` executor (splai-worker.md §6.1, done locally): parameters per
//! [`super::request`], text streamed to the scheduler as `feedback` frames while it is
//! generated (channel `llm`, one frame per piece of final text), and a result with the
//! text, token counts and timings, also written as the task's output artifact.
//!
//! Outputs: `backend` (`local`), `model`, `model_file`, `model_version`, `text`,
//! `finish_reason` (`stop`/`length`), `stopped_by` (`eos`/`stop_string`/`max_tokens`),
//! `prompt_tokens`, `completion_tokens`, `total_tokens`, `usage` (the same three, OpenAI
//! style), `completion_token_ids`, the decoding settings used (`max_tokens`, `temperature`,
//! `top_p`, `top_k`, `seed`, `stop`), `timings` (`load_ms`, `model_loaded_now`,
//! `prompt_ms`, `decode_ms`, `prompt_tokens_per_s`, `decode_tokens_per_s`) and
//! `duration_ms`.

use super::generate::{Event, FinishReason, GenerateParams, Generation};
use super::request::LlmRequest;
use super::{LlmCache, LlmError};
use crate::ai::artifact;
use crate::ai::settings::AiSettings;
use crate::runner::{ExecutionContext, Handler, HandlerError, HandlerOutput};
use astra_core::v1::payloads::{FeedbackChannel, FeedbackChunk};
use astra_core::work::task::codes;
use astra_core::work::Feedback;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub struct LlmHandler {
    artifact_root: PathBuf,
    models: Arc<LlmCache>,
}

impl LlmHandler {
    pub fn new(settings: &AiSettings, models: Arc<LlmCache>) -> Self {
        LlmHandler {
            artifact_root: settings.artifact_root.clone(),
            models,
        }
    }
}

/// Maps LLM failures to task errors; a bad or missing model names its parameter.
pub fn to_handler_error(e: LlmError) -> HandlerError {
    match e {
        LlmError::Cancelled => HandlerError::with_code(codes::RUNNER_CANCELLED, e.to_string()),
        LlmError::BadModelId(_) | LlmError::NotInstalled { .. } => {
            HandlerError::with_code(codes::RESOURCE_MISSING, format!("parameter `model`: {e}"))
        }
        LlmError::BadModelFile(_) | LlmError::Request { .. } => {
            HandlerError::with_code(codes::CMD_INVALID, e.to_string())
        }
        other => HandlerError::new(other.to_string()),
    }
}

fn per_s(tokens: usize, ms: f64) -> Value {
    if ms > 0.0 {
        json!(((tokens as f64) * 1000.0 / ms * 100.0).round() / 100.0)
    } else {
        Value::Null
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// One feedback frame for a generation event.
fn frame(event: Event, chunk_index: &mut u64, max_tokens: usize) -> Feedback {
    let mut metrics = BTreeMap::new();
    match event {
        Event::Prompt { tokens, ms } => {
            metrics.insert("prompt_tokens".to_string(), tokens as f64);
            metrics.insert("prompt_ms".to_string(), round2(ms));
            Feedback {
                stage: Some("prompt_processed".to_string()),
                progress: Some(0.0),
                metrics,
                ..Feedback::default()
            }
        }
        Event::Text { delta, tokens } => {
            metrics.insert("tokens_generated".to_string(), tokens as f64);
            let index = *chunk_index;
            *chunk_index += 1;
            Feedback {
                stage: Some("generating".to_string()),
                progress: Some((tokens as f64 / max_tokens.max(1) as f64).min(1.0)),
                chunks: vec![FeedbackChunk {
                    channel: FeedbackChannel::Llm,
                    index: Some(index),
                    mime_type: None,
                    text: Some(delta),
                    data_base64: None,
                    metadata: None,
                }],
                metrics,
                ..Feedback::default()
            }
        }
    }
}

fn fields(
    req: &LlmRequest,
    info: &super::ModelInfo,
    loaded_now: bool,
    g: &Generation,
    started: std::time::Instant,
) -> Map<String, Value> {
    let completion = g.token_ids.len();
    let mut f = Map::new();
    f.insert("backend".into(), json!("local"));
    f.insert("model".into(), json!(info.model));
    f.insert(
        "model_file".into(),
        json!(info.file.file_name().map(|n| n.to_string_lossy())),
    );
    f.insert("model_version".into(), json!(info.version));
    f.insert("text".into(), json!(g.text));
    f.insert("finish_reason".into(), json!(g.finish_reason.as_str()));
    f.insert(
        "stopped_by".into(),
        json!(match g.finish_reason {
            FinishReason::Eos => "eos",
            FinishReason::StopString => "stop_string",
            FinishReason::Length => "max_tokens",
        }),
    );
    f.insert("prompt_tokens".into(), json!(g.prompt_tokens));
    f.insert("completion_tokens".into(), json!(completion));
    f.insert("total_tokens".into(), json!(g.prompt_tokens + completion));
    f.insert(
        "usage".into(),
        json!({
            "prompt_tokens": g.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": g.prompt_tokens + completion,
        }),
    );
    f.insert("completion_token_ids".into(), json!(g.token_ids));
    f.insert("max_tokens".into(), json!(g.max_tokens));
    f.insert("temperature".into(), json!(req.sampling.temperature));
    f.insert("top_p".into(), json!(req.sampling.top_p));
    f.insert("top_k".into(), json!(req.sampling.top_k));
    f.insert("seed".into(), json!(req.sampling.seed));
    f.insert("stop".into(), json!(req.stop));
    f.insert(
        "timings".into(),
        json!({
            "load_ms": info.load_ms,
            "model_loaded_now": loaded_now,
            "prompt_ms": round2(g.prompt_ms),
            "decode_ms": round2(g.decode_ms),
            "prompt_tokens_per_s": per_s(g.prompt_tokens, g.prompt_ms),
            "decode_tokens_per_s": per_s(g.decode_steps, g.decode_ms),
        }),
    );
    f.insert(
        "duration_ms".into(),
        json!(started.elapsed().as_millis() as u64),
    );
    f
}

impl Handler for LlmHandler {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        let started = std::time::Instant::now();
        let req = LlmRequest::parse(&ctx.params)?;
        let (service, loaded_now) = self
            .models
            .get(&req.model, req.model_file.as_deref())
            .map_err(to_handler_error)?;
        let params = GenerateParams {
            max_tokens: req.max_tokens,
            sampling: req.sampling.clone(),
            stop: req.stop.clone(),
        };
        let mut chunk_index = 0u64;
        let max_tokens = req.max_tokens;
        let result = service.generate(req.input.clone(), params, &ctx.cancel, &mut |e| {
            ctx.feedback.send(frame(e, &mut chunk_index, max_tokens));
        });
        let g = match result {
            Ok(g) => g,
            Err(e @ LlmError::ThreadGone(_)) => {
                self.models.forget(&req.model, req.model_file.as_deref());
                return Err(to_handler_error(e));
            }
            Err(e) => return Err(to_handler_error(e)),
        };
        tracing::info!(
            run_id = %ctx.run_id,
            task_id = %ctx.task_id,
            model = %req.model,
            prompt_tokens = g.prompt_tokens,
            completion_tokens = g.token_ids.len(),
            finish = g.finish_reason.as_str(),
            prompt_ms = round2(g.prompt_ms),
            decode_ms = round2(g.decode_ms),
            "llm_inference done"
        );
        let fields = fields(&req, service.info(), loaded_now, &g, started);
        artifact::finish(&self.artifact_root, ctx, fields)
            .map_err(|e| HandlerError::new(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::generate::fake::Scripted;
    use super::super::{ModelInfo, Service};
    use super::*;
    use crate::ai::testutil;
    use crate::runner::FeedbackHandle;
    use astra_core::work::TaskKey;
    use astra_core::worker::Input;
    use std::sync::Mutex;
    use std::time::Duration;

    /// A handler whose model `org/fake` is a scripted backend, plus the frames it sends.
    fn setup(tmp: &std::path::Path, script: &str, delay: Duration) -> LlmHandler {
        let settings = AiSettings {
            artifact_root: tmp.join("artifacts"),
            model_cache_dir: tmp.join("models"),
            threads: 1,
            ..AiSettings::default()
        };
        let dir = tmp.join("models/org/fake");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fake.gguf");
        std::fs::write(&path, b"not used").unwrap();
        let script = script.to_string();
        let info = ModelInfo {
            model: "org/fake".into(),
            file: path.clone(),
            version: "sha256:000000000000".into(),
            context_length: 4096,
            vocab_size: 257,
            has_chat_template: false,
            load_ms: 0,
        };
        let service = Service::start(
            "org/fake",
            1,
            move || {
                let mut m = Scripted::new(&script);
                m.step_delay = delay;
                Ok(m)
            },
            move |_| info,
        )
        .unwrap();
        let cache = Arc::new(LlmCache::new(&settings));
        cache.insert(path, Arc::new(service));
        LlmHandler::new(&settings, cache)
    }

    type Seen = Arc<Mutex<Vec<Input>>>;

    fn recording_ctx(tmp: &std::path::Path, params: Value) -> (ExecutionContext, Seen) {
        let mut ctx = testutil::ctx("llm_inference", params, tmp);
        let seen: Seen = Arc::default();
        let s = seen.clone();
        ctx.feedback = FeedbackHandle::new(
            TaskKey {
                run_id: "run-1".into(),
                task_id: "task-1".into(),
            },
            Arc::new(move |i| s.lock().unwrap().push(i)),
        );
        (ctx, seen)
    }

    fn streamed_text(seen: &Seen) -> String {
        seen.lock()
            .unwrap()
            .iter()
            .filter_map(|i| match i {
                Input::TaskFeedback { feedback, .. } => Some(
                    feedback
                        .chunks
                        .iter()
                        .filter_map(|c| c.text.clone())
                        .collect::<String>(),
                ),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn text_is_streamed_before_the_result_and_the_result_has_counts_and_an_artifact() {
        let tmp = tempfile::tempdir().unwrap();
        let h = setup(tmp.path(), "Hello there. User: x", Duration::ZERO);
        let (ctx, seen) = recording_ctx(
            tmp.path(),
            json!({"model": "org/fake", "prompt": "hi", "stop": "User:", "seed": 9}),
        );
        let out = h.run(&ctx).unwrap();
        let o = &out["outputs"];
        assert_eq!(o["text"], "Hello there. ");
        assert_eq!(o["finish_reason"], "stop");
        assert_eq!(o["stopped_by"], "stop_string");
        assert_eq!(o["prompt_tokens"], 2);
        assert_eq!(o["completion_tokens"], "Hello there. User:".len());
        assert_eq!(o["usage"]["total_tokens"], 2 + "Hello there. User:".len());
        assert_eq!(o["seed"], 9);
        assert_eq!(o["model_file"], "fake.gguf");
        assert!(o["timings"]["prompt_ms"].is_number());
        // Every piece of the text went out as feedback, in order, before `run` returned.
        assert_eq!(streamed_text(&seen), "Hello there. ");
        let frames = seen.lock().unwrap().len();
        assert!(frames > 5, "{frames} frames");
        let art = &out["artifacts"][0];
        assert_eq!(art["resource_id"], "artifact://run-1/task-1/output.json");
        let doc: Value = serde_json::from_slice(
            &std::fs::read(art["metadata"]["path"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(doc["text"], "Hello there. ");
        assert_eq!(doc["type"], "llm_inference");
    }

    #[test]
    fn max_tokens_limits_the_output() {
        let tmp = tempfile::tempdir().unwrap();
        let h = setup(tmp.path(), "abcdefghij", Duration::ZERO);
        let (ctx, _) = recording_ctx(
            tmp.path(),
            json!({"model": "org/fake", "prompt": "p", "max_tokens": 4}),
        );
        let out = h.run(&ctx).unwrap();
        assert_eq!(out["outputs"]["text"], "abcd");
        assert_eq!(out["outputs"]["finish_reason"], "length");
        assert_eq!(out["outputs"]["completion_tokens"], 4);
    }

    #[test]
    fn cancellation_ends_the_task_between_tokens() {
        let tmp = tempfile::tempdir().unwrap();
        let h = Arc::new(setup(
            tmp.path(),
            &"x".repeat(1000),
            Duration::from_millis(5),
        ));
        let (ctx, seen) = recording_ctx(
            tmp.path(),
            json!({"model": "org/fake", "prompt": "p", "max_tokens": 1000}),
        );
        let cancel = ctx.cancel.clone();
        let t = std::thread::spawn(move || h.run(&ctx));
        // Wait until tokens flow, then cancel.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while streamed_text(&seen).len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        cancel.cancel("test");
        let err = t.join().unwrap().unwrap_err();
        assert_eq!(err.code, codes::RUNNER_CANCELLED);
        let n = streamed_text(&seen).len();
        assert!((3..1000).contains(&n), "{n} tokens streamed");
    }

    #[test]
    fn bad_inputs_fail_with_the_field_named() {
        let tmp = tempfile::tempdir().unwrap();
        let h = setup(tmp.path(), "a", Duration::ZERO);
        for (params, field, code) in [
            (json!({"model": "org/fake"}), "`prompt`", codes::CMD_INVALID),
            (
                json!({"model": "org/fake", "prompt": "x", "top_p": 2}),
                "`top_p`",
                codes::CMD_INVALID,
            ),
            (
                json!({"model": "org/absent", "prompt": "x"}),
                "`model`",
                codes::RESOURCE_MISSING,
            ),
            (
                json!({"model": "org/fake", "model_file": "../x.gguf", "prompt": "x"}),
                "`model_file`",
                codes::CMD_INVALID,
            ),
        ] {
            let (ctx, _) = recording_ctx(tmp.path(), params.clone());
            let e = h.run(&ctx).unwrap_err();
            assert!(e.message.contains(field), "{params}: {}", e.message);
            assert_eq!(e.code, code, "{params}");
        }
    }
}
