//! The JSON-lines protocol between the worker and a bridge (see `host/python/astra_bridge.py`
//! for the full description): requests on the bridge's stdin, replies on its fd 3.

use super::super::handler::HandlerOutput;
use astra_core::work::Feedback;
use serde_json::{json, Map, Value};

/// Protocol version the bridge announces in `ready`; a mismatch means a stale script.
pub(crate) const PROTOCOL: u64 = 1;

/// One line from the bridge.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    Ready {
        python: String,
        protocol: u64,
    },
    Fatal(String),
    /// A frame the bridge validated; `Err` if it still does not fit the wire model.
    Feedback {
        id: u64,
        feedback: Result<Feedback, String>,
    },
    Result {
        id: u64,
        output: HandlerOutput,
    },
    Error {
        id: u64,
        message: String,
        traceback: String,
    },
    Cancelled {
        id: u64,
    },
    /// The task is in synchronous code and cannot be cancelled.
    Uninterruptible {
        id: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProtocolError {
    #[error("a reply line is not JSON ({0})")]
    Json(String),
    #[error("unexpected reply {0}")]
    Shape(String),
}

fn shape(what: &str) -> ProtocolError {
    ProtocolError::Shape(what.to_string())
}

pub(crate) fn parse_reply(line: &[u8]) -> Result<Reply, ProtocolError> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| ProtocolError::Json(e.to_string()))?;
    let Value::Object(mut obj) = value else {
        return Err(shape("that is not a JSON object"));
    };
    if let Some(ready) = obj.remove("ready") {
        let python = ready
            .get("python")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        let protocol = ready.get("protocol").and_then(Value::as_u64).unwrap_or(0);
        return Ok(Reply::Ready { python, protocol });
    }
    if let Some(fatal) = obj.remove("fatal") {
        return Ok(Reply::Fatal(match fatal {
            Value::String(s) => s,
            other => other.to_string(),
        }));
    }
    let id = obj
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| shape("without a numeric `id`"))?;
    if let Some(fb) = obj.remove("feedback") {
        let feedback = serde_json::from_value::<Feedback>(fb).map_err(|e| e.to_string());
        return Ok(Reply::Feedback { id, feedback });
    }
    if let Some(result) = obj.remove("result") {
        return match result {
            Value::Object(output) => Ok(Reply::Result { id, output }),
            _ => Err(shape("`result` that is not an object")),
        };
    }
    if let Some(error) = obj.remove("error") {
        let text = |k: &str| {
            error
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let message = match text("message") {
            m if m.trim().is_empty() => match text("type") {
                t if t.trim().is_empty() => {
                    "handler raised an exception without a message".to_string()
                }
                t => t,
            },
            m => m,
        };
        return Ok(Reply::Error {
            id,
            message,
            traceback: text("traceback"),
        });
    }
    if obj.get("cancelled") == Some(&Value::Bool(true)) {
        return Ok(Reply::Cancelled { id });
    }
    if obj.get("uninterruptible") == Some(&Value::Bool(true)) {
        return Ok(Reply::Uninterruptible { id });
    }
    Err(shape(
        "with none of feedback, result, error, cancelled, uninterruptible",
    ))
}

fn line(value: Value) -> Vec<u8> {
    let mut bytes = value.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

pub(crate) fn task_request(id: u64, entrypoint: &str, context: &Value) -> Vec<u8> {
    line(json!({"id": id, "entrypoint": entrypoint, "context": context}))
}

pub(crate) fn cancel_request(id: u64) -> Vec<u8> {
    let mut m = Map::new();
    m.insert("cancel".into(), json!(id));
    line(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use astra_core::v1::payloads::FeedbackChannel;

    #[test]
    fn parses_every_reply_kind() {
        assert_eq!(
            parse_reply(br#"{"ready":{"pid":1,"python":"3.11.7","protocol":1}}"#),
            Ok(Reply::Ready {
                python: "3.11.7".into(),
                protocol: 1
            })
        );
        assert_eq!(
            parse_reply(br#"{"fatal":"no"}"#),
            Ok(Reply::Fatal("no".into()))
        );
        match parse_reply(
            br#"{"id":4,"feedback":{"stage":"s","chunks":[{"channel":"llm","text":"t"}]}}"#,
        ) {
            Ok(Reply::Feedback {
                id: 4,
                feedback: Ok(fb),
            }) => {
                assert_eq!(fb.stage.as_deref(), Some("s"));
                assert_eq!(fb.chunks[0].channel, FeedbackChannel::Llm);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_reply(br#"{"id":4,"feedback":{"chunks":[{"channel":"video"}]}}"#),
            Ok(Reply::Feedback {
                id: 4,
                feedback: Err(_)
            })
        ));
        match parse_reply(br#"{"id":5,"result":{"a":1}}"#) {
            Ok(Reply::Result { id: 5, output }) => assert_eq!(output["a"], json!(1)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_reply(br#"{"id":6,"error":{"type":"KeyError","message":"","traceback":"tb"}}"#),
            Ok(Reply::Error {
                id: 6,
                message: "KeyError".into(),
                traceback: "tb".into()
            })
        );
        assert_eq!(
            parse_reply(br#"{"id":7,"cancelled":true}"#),
            Ok(Reply::Cancelled { id: 7 })
        );
        assert_eq!(
            parse_reply(br#"{"id":8,"uninterruptible":true}"#),
            Ok(Reply::Uninterruptible { id: 8 })
        );
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in [
            &b"hello"[..],
            b"[1]",
            br#"{"id":"x","result":{}}"#,
            br#"{"id":1,"result":[1]}"#,
            br#"{"id":1}"#,
        ] {
            assert!(
                parse_reply(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn requests_are_single_lines() {
        let req = task_request(3, "adapters.echo:echo", &json!({"params": {"m": "a\nb"}}));
        assert_eq!(req.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(req.ends_with(b"\n"));
        assert_eq!(cancel_request(3), b"{\"cancel\":3}\n".to_vec());
    }
}
