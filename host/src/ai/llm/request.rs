//! The `llm_inference` task parameters, validated; every error names its field.
//!
//! | field | type | default | notes |
//! |---|---|---|---|
//! | `prompt`, then `text`, then `op` | string | — | the user message (or the raw prompt with `chat=false`) |
//! | `messages_json` (or `messages`) | JSON array of `{role, content}` | — | a whole conversation; wins over `prompt` |
//! | `system` | string | the template's | system message put first (chat only) |
//! | `chat` | bool | true | false: the prompt is tokenized as given (control tokens parsed) |
//! | `backend` | string | `local` | only `local` (this worker's candle runtime) |
//! | `model` | string | [`super::DEFAULT_LLM_MODEL`] | model id in the model cache |
//! | `model_file` | string | the only `*.gguf` in the model dir | file name inside the model dir |
//! | `max_tokens` (or `max_new_tokens`, `n_predict`) | int 1..=4096 | 256 | tokens to generate at most |
//! | `temperature` | number 0..=5 | 0 | 0 is greedy decoding |
//! | `top_p` | number in (0, 1] | 1 | nucleus sampling |
//! | `top_k` | int ≥ 0 | 0 (off) | |
//! | `seed` | int ≥ 0 | drawn from the clock, reported in `seed` | sampling is reproducible with it |
//! | `stop` (or `stop_json`) | string or JSON array of strings | none | generation ends before the first one |

use super::chat::Message;
use super::sampler::Sampling;
use crate::ai::params::{self, type_name, ParamError};
use serde_json::{Map, Value};

pub const DEFAULT_MAX_TOKENS: usize = 256;
pub const MAX_TOKENS_LIMIT: usize = 4096;
pub const MAX_STOPS: usize = 8;
pub const MAX_STOP_LEN: usize = 256;
pub const MAX_TEMPERATURE: f64 = 5.0;
pub const MAX_MESSAGES: usize = 512;

/// What to feed the model.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptInput {
    /// Rendered with the model's chat template.
    Chat(Vec<Message>),
    /// Tokenized as given.
    Raw(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    pub model: String,
    pub model_file: Option<String>,
    pub input: PromptInput,
    pub max_tokens: usize,
    pub sampling: Sampling,
    /// Whether `seed` came from the task (else it was drawn).
    pub seed_given: bool,
    pub stop: Vec<String>,
}

/// A number (JSON number or numeric string) within `[min, max]`; `None` when absent.
fn number(
    p: &Map<String, Value>,
    key: &str,
    min: f64,
    max: f64,
) -> Result<Option<f64>, ParamError> {
    let v = match p.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(other) => {
            return Err(ParamError::new(
                key,
                format!("must be a number, got {}", type_name(other)),
            ))
        }
    };
    match v {
        Some(x) if x.is_finite() && x >= min && x <= max => Ok(Some(x)),
        _ => Err(ParamError::new(
            key,
            format!("must be a number between {min} and {max}, got {}", p[key]),
        )),
    }
}

/// A non-negative integer (JSON number or numeric string) up to `max`.
fn uint(p: &Map<String, Value>, key: &str, max: u64) -> Result<Option<u64>, ParamError> {
    let bad = || {
        ParamError::new(
            key,
            format!("must be an integer between 0 and {max}, got {}", p[key]),
        )
    };
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().filter(|&n| n <= max).map(Some).ok_or_else(bad),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n <= max)
            .map(Some)
            .ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

fn messages(p: &Map<String, Value>) -> Result<Option<(String, Vec<Message>)>, ParamError> {
    let Some(key) = ["messages_json", "messages"]
        .into_iter()
        .find(|k| !matches!(p.get(*k), None | Some(Value::Null)))
    else {
        return Ok(None);
    };
    let Some(doc) = params::json_doc(p, key)? else {
        return Ok(None);
    };
    let Value::Array(items) = doc else {
        return Err(ParamError::new(
            key,
            format!(
                "must be a JSON array of {{\"role\", \"content\"}} objects, got {}",
                type_name(&doc)
            ),
        ));
    };
    if items.is_empty() {
        return Err(ParamError::new(key, "holds no message"));
    }
    if items.len() > MAX_MESSAGES {
        return Err(ParamError::new(
            key,
            format!("holds {} messages; at most {MAX_MESSAGES}", items.len()),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = |f: &str| match item.get(f) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(ParamError::new(
                key,
                format!(
                    "message {i}: `{f}` must be a string, got {}",
                    type_name(other)
                ),
            )),
            None => Err(ParamError::new(key, format!("message {i} has no `{f}`"))),
        };
        let role = field("role")?;
        if role.trim().is_empty() {
            return Err(ParamError::new(
                key,
                format!("message {i}: `role` is empty"),
            ));
        }
        out.push(Message::new(role.trim(), field("content")?));
    }
    Ok(Some((key.to_string(), out)))
}

fn stops(p: &Map<String, Value>) -> Result<Vec<String>, ParamError> {
    for key in ["stop", "stop_json"] {
        let list = match p.get(key) {
            None | Some(Value::Null) => continue,
            // A plain string is one stop string, unless it holds a JSON array.
            Some(Value::String(s)) if s.trim_start().starts_with('[') => params::json_doc(p, key)?,
            Some(Value::String(s)) if s.is_empty() => continue,
            Some(Value::String(s)) => Some(Value::Array(vec![Value::String(s.clone())])),
            Some(v @ Value::Array(_)) => Some(v.clone()),
            Some(other) => {
                return Err(ParamError::new(
                    key,
                    format!(
                        "must be a string or an array of strings, got {}",
                        type_name(other)
                    ),
                ))
            }
        };
        let Some(Value::Array(items)) = list else {
            return Err(ParamError::new(
                key,
                "must be a string or an array of strings",
            ));
        };
        if items.len() > MAX_STOPS {
            return Err(ParamError::new(
                key,
                format!("holds {} stop strings; at most {MAX_STOPS}", items.len()),
            ));
        }
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) if s.is_empty() => {
                    return Err(ParamError::new(key, format!("stop string {i} is empty")))
                }
                Value::String(s) if s.chars().count() > MAX_STOP_LEN => {
                    return Err(ParamError::new(
                        key,
                        format!("stop string {i} is longer than {MAX_STOP_LEN} characters"),
                    ))
                }
                Value::String(s) => out.push(s.clone()),
                other => {
                    return Err(ParamError::new(
                        key,
                        format!("item {i} must be a string, got {}", type_name(other)),
                    ))
                }
            }
        }
        return Ok(out);
    }
    Ok(Vec::new())
}

fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl LlmRequest {
    pub fn parse(p: &Map<String, Value>) -> Result<LlmRequest, ParamError> {
        if let Some((field, b)) = params::first_string(p, &["llm_backend", "backend"])? {
            if !b.eq_ignore_ascii_case("local") {
                return Err(ParamError::new(
                    field,
                    format!("unsupported llm backend {b:?}; this worker runs GGUF models locally only (`local`)"),
                ));
            }
        }
        let model =
            params::string(p, "model")?.unwrap_or_else(|| super::DEFAULT_LLM_MODEL.to_string());
        let model_file = params::string(p, "model_file")?;
        let chat = params::boolean(p, "chat", true)?;
        let system = params::string(p, "system")?;
        let prompt = params::first_string(p, &["prompt", "text", "op"])?;
        let input = match (chat, messages(p)?) {
            (false, Some((key, _))) => {
                return Err(ParamError::new(
                    key,
                    "cannot be used with chat=false; give the raw text in `prompt`",
                ))
            }
            (false, None) => {
                match prompt {
                    Some((_, text)) => PromptInput::Raw(text),
                    None => return Err(ParamError::new(
                        "prompt",
                        "llm_inference requires a non-empty prompt (set `prompt`, `text` or `op`)",
                    )),
                }
            }
            (true, Some((_, mut msgs))) => {
                if let Some(s) = system {
                    msgs.insert(0, Message::new("system", s));
                }
                PromptInput::Chat(msgs)
            }
            (true, None) => {
                let Some((_, text)) = prompt else {
                    return Err(ParamError::new(
                        "prompt",
                        "llm_inference requires a non-empty prompt (set `prompt`, `text`, `op` or `messages_json`)",
                    ));
                };
                let mut msgs = Vec::new();
                if let Some(s) = system {
                    msgs.push(Message::new("system", s));
                }
                msgs.push(Message::new("user", text));
                PromptInput::Chat(msgs)
            }
        };
        let max_tokens = match ["max_tokens", "max_new_tokens", "n_predict"]
            .into_iter()
            .find(|k| !matches!(p.get(*k), None | Some(Value::Null)))
        {
            Some(key) => params::positive_int(p, key, DEFAULT_MAX_TOKENS, MAX_TOKENS_LIMIT)?,
            None => DEFAULT_MAX_TOKENS,
        };
        let temperature = number(p, "temperature", 0.0, MAX_TEMPERATURE)?.unwrap_or(0.0);
        let top_p = match number(p, "top_p", 0.0, 1.0)? {
            Some(x) if x <= 0.0 => {
                return Err(ParamError::new(
                    "top_p",
                    "must be greater than 0 (use 1 to keep every token)",
                ))
            }
            Some(x) => x,
            None => 1.0,
        };
        let top_k = uint(p, "top_k", 1 << 20)?.unwrap_or(0) as usize;
        let seed = uint(p, "seed", u64::MAX)?;
        Ok(LlmRequest {
            model,
            model_file,
            input,
            max_tokens,
            sampling: Sampling {
                temperature: temperature as f32,
                top_p: top_p as f32,
                top_k,
                seed: seed.unwrap_or_else(clock_seed),
            },
            seed_given: seed.is_some(),
            stop: stops(p)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<LlmRequest, ParamError> {
        LlmRequest::parse(v.as_object().unwrap())
    }

    fn field_of(v: Value) -> (String, String) {
        let e = parse(v).unwrap_err();
        (e.field, e.problem)
    }

    #[test]
    fn defaults_make_a_greedy_chat_request() {
        let r = parse(json!({"prompt": " Hi "})).unwrap();
        assert_eq!(r.input, PromptInput::Chat(vec![Message::new("user", "Hi")]));
        assert_eq!(r.model, super::super::DEFAULT_LLM_MODEL);
        assert_eq!(r.max_tokens, DEFAULT_MAX_TOKENS);
        assert_eq!(r.sampling.temperature, 0.0);
        assert_eq!(r.sampling.top_p, 1.0);
        assert!(r.stop.is_empty());
        assert!(!r.seed_given);
    }

    #[test]
    fn every_field_is_read() {
        let r = parse(json!({
            "messages_json": "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]",
            "system": "sys", "prompt": "ignored", "backend": "LOCAL",
            "model": "org/m", "model_file": "m.gguf", "max_tokens": "12",
            "temperature": 0.7, "top_p": "0.9", "top_k": 40, "seed": "123",
            "stop": ["\n\n", "User:"],
        }))
        .unwrap();
        assert_eq!(
            r.input,
            PromptInput::Chat(vec![
                Message::new("system", "sys"),
                Message::new("user", "a"),
                Message::new("assistant", "b"),
            ])
        );
        assert_eq!(r.model, "org/m");
        assert_eq!(r.model_file.as_deref(), Some("m.gguf"));
        assert_eq!(r.max_tokens, 12);
        assert_eq!(
            r.sampling,
            Sampling {
                temperature: 0.7,
                top_p: 0.9,
                top_k: 40,
                seed: 123
            }
        );
        assert!(r.seed_given);
        assert_eq!(r.stop, vec!["\n\n", "User:"]);
        let r =
            parse(json!({"prompt": "x", "chat": "false", "stop": "END", "n_predict": 3})).unwrap();
        assert_eq!(r.input, PromptInput::Raw("x".into()));
        assert_eq!(r.stop, vec!["END"]);
        assert_eq!(r.max_tokens, 3);
        let r = parse(json!({"prompt": "x", "stop_json": "[\"a\"]"})).unwrap();
        assert_eq!(r.stop, vec!["a"]);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (json!({}), "prompt"),
            (json!({"prompt": "  "}), "prompt"),
            (json!({"prompt": "x", "backend": "ollama"}), "backend"),
            (json!({"prompt": "x", "model": ["a"]}), "model"),
            (json!({"prompt": "x", "max_tokens": 0}), "max_tokens"),
            (json!({"prompt": "x", "max_tokens": 100000}), "max_tokens"),
            (
                json!({"prompt": "x", "max_new_tokens": "many"}),
                "max_new_tokens",
            ),
            (json!({"prompt": "x", "temperature": -0.1}), "temperature"),
            (json!({"prompt": "x", "temperature": "hot"}), "temperature"),
            (json!({"prompt": "x", "temperature": 9}), "temperature"),
            (json!({"prompt": "x", "top_p": 0}), "top_p"),
            (json!({"prompt": "x", "top_p": 1.5}), "top_p"),
            (json!({"prompt": "x", "top_k": -1}), "top_k"),
            (json!({"prompt": "x", "seed": -5}), "seed"),
            (json!({"prompt": "x", "seed": 1.5}), "seed"),
            (json!({"prompt": "x", "stop": 5}), "stop"),
            (json!({"prompt": "x", "stop": [""]}), "stop"),
            (json!({"prompt": "x", "stop": ["a", 1]}), "stop"),
            (json!({"prompt": "x", "stop_json": "[1"}), "stop_json"),
            (json!({"prompt": "x", "stop": vec!["s"; 9]}), "stop"),
            (json!({"prompt": "x", "chat": "maybe"}), "chat"),
            (json!({"messages_json": "[]"}), "messages_json"),
            (json!({"messages_json": "{}"}), "messages_json"),
            (json!({"messages": [{"role": "user"}]}), "messages"),
            (
                json!({"messages": [{"role": " ", "content": "x"}]}),
                "messages",
            ),
            (
                json!({"messages": [{"role": "user", "content": 3}]}),
                "messages",
            ),
            (
                json!({"messages": [{"role": "user", "content": "x"}], "chat": false}),
                "messages",
            ),
            (json!({"chat": false}), "prompt"),
        ];
        for (params, field) in cases {
            let (got, problem) = field_of(params.clone());
            assert_eq!(got, field, "{params}: {problem}");
            assert!(!problem.is_empty());
        }
        let (_, problem) = field_of(json!({"prompt": "x", "temperature": 9}));
        assert!(problem.contains("between 0 and 5"), "{problem}");
    }
}
