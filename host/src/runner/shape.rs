//! Turns a handler's dict into a terminal outcome, exactly as the Python runner does
//! (spec §6.3) plus R5 (never an empty message) and R7 (`error` inside FAILED results).

use astra_core::v1::payloads::{Artifact, ResultError, TaskStatus};
use astra_core::work::task::codes;
use astra_core::work::{Completion, TaskOutcome};
use serde_json::{Map, Value};

/// Keys of the handler dict that are not outputs when `outputs` is absent.
const RESERVED_KEYS: [&str; 3] = ["status", "metadata", "artifacts"];

/// The scheduler closes the socket on an empty message (spec R5), so every message the
/// runner emits goes through this.
pub fn non_empty_message(message: &str, placeholder: &str) -> String {
    if message.trim().is_empty() {
        placeholder.to_string()
    } else {
        message.to_string()
    }
}

/// Shapes a handler's return value. `context_metadata` is the spec's metadata, which the
/// handler's `metadata` updates key by key.
pub fn shape_result(
    ret: Map<String, Value>,
    context_metadata: &Map<String, Value>,
    duration_ms: u64,
) -> TaskOutcome {
    // Python: str(ret.get("status", "succeeded")).upper(); a JSON null is read as absent.
    let status = match ret.get("status") {
        None | Some(Value::Null) => TaskStatus::Succeeded,
        Some(Value::String(s)) => match TaskStatus::parse_lenient(s) {
            Some(status) => status,
            None => return bad_status(&Value::String(s.clone()), duration_ms),
        },
        Some(other) => return bad_status(other, duration_ms),
    };

    let result = match ret.get("outputs") {
        Some(Value::Object(outputs)) => outputs.clone(),
        _ => ret
            .iter()
            .filter(|(k, _)| !RESERVED_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };

    let mut metadata = context_metadata.clone();
    match ret.get("metadata") {
        Some(Value::Object(extra)) => metadata.extend(extra.clone()),
        None | Some(Value::Null) => {}
        Some(other) => tracing::warn!(value = %other, "handler metadata is not an object; ignored"),
    }

    let artifacts = match ret.get("artifacts") {
        Some(Value::Array(items)) => valid_artifacts(items),
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            tracing::warn!(value = %other, "handler artifacts is not a list; ignored");
            Vec::new()
        }
    };

    let error = (status == TaskStatus::Failed).then(|| failed_error(ret.get("error")));

    TaskOutcome::Completed(Completion {
        status,
        result,
        metadata,
        artifacts,
        error,
        duration_ms,
    })
}

fn bad_status(value: &Value, duration_ms: u64) -> TaskOutcome {
    TaskOutcome::failed(
        codes::RUNNER_FAILURE,
        format!("handler returned invalid status {value}; expected one of succeeded, failed, skipped, cancelled"),
        duration_ms,
    )
}

/// Each entry is checked on its own so one bad artifact does not lose the others.
fn valid_artifacts(items: &[Value]) -> Vec<Artifact> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let parsed = serde_json::from_value::<Artifact>(item.clone())
            .map_err(|e| e.to_string())
            .and_then(|a| {
                a.validate_at(&format!("artifacts.{i}"))
                    .map_err(|v| format!("{} {}", v.field, v.reason))?;
                Ok(a)
            });
        match parsed {
            Ok(a) => out.push(a),
            Err(reason) => {
                tracing::warn!(index = i, %reason, "dropping invalid artifact returned by handler")
            }
        }
    }
    out
}

/// The `error` of a FAILED result: from the handler's `error` (a message string or a
/// `{code, message, remediation}` object), else a generic one.
fn failed_error(error: Option<&Value>) -> ResultError {
    const GENERIC: &str = "handler reported status FAILED without an error message";
    let text = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
    };
    match error {
        Some(Value::String(message)) => ResultError {
            code: codes::RUNNER_FAILURE.to_string(),
            message: non_empty_message(message, GENERIC),
            remediation: None,
        },
        Some(Value::Object(obj)) => ResultError {
            code: text(obj.get("code")).unwrap_or_else(|| codes::RUNNER_FAILURE.to_string()),
            message: text(obj.get("message")).unwrap_or_else(|| GENERIC.to_string()),
            remediation: text(obj.get("remediation")),
        },
        _ => ResultError {
            code: codes::RUNNER_FAILURE.to_string(),
            message: GENERIC.to_string(),
            remediation: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn completed(o: TaskOutcome) -> Completion {
        match o {
            TaskOutcome::Completed(c) => c,
            TaskOutcome::Failed(f) => panic!("expected completion, got {f:?}"),
        }
    }

    #[test]
    fn default_status_and_top_level_outputs() {
        let ctx = obj(json!({"concurrency_key": "k", "constraints": {}}));
        let c = completed(shape_result(
            obj(json!({"a": 1, "error": "kept", "metadata": {"m": 2}, "artifacts": []})),
            &ctx,
            7,
        ));
        assert_eq!(c.status, TaskStatus::Succeeded);
        assert_eq!(Value::Object(c.result), json!({"a": 1, "error": "kept"}));
        assert_eq!(
            Value::Object(c.metadata),
            json!({"concurrency_key": "k", "constraints": {}, "m": 2})
        );
        assert!(c.artifacts.is_empty());
        assert_eq!(c.error, None);
        assert_eq!(c.duration_ms, 7);
    }

    #[test]
    fn outputs_object_wins_and_non_object_outputs_fall_back() {
        let c = completed(shape_result(
            obj(json!({"outputs": {"x": 1}, "y": 2})),
            &Map::new(),
            0,
        ));
        assert_eq!(Value::Object(c.result), json!({"x": 1}));
        let c = completed(shape_result(
            obj(json!({"outputs": [1], "y": 2})),
            &Map::new(),
            0,
        ));
        assert_eq!(Value::Object(c.result), json!({"outputs": [1], "y": 2}));
    }

    #[test]
    fn status_is_case_insensitive_and_handler_metadata_overrides_context() {
        let ctx = obj(json!({"concurrency_key": "k"}));
        let c = completed(shape_result(
            obj(json!({"status": "SkIpPeD", "metadata": {"concurrency_key": null}})),
            &ctx,
            0,
        ));
        assert_eq!(c.status, TaskStatus::Skipped);
        assert_eq!(Value::Object(c.metadata), json!({"concurrency_key": null}));
    }

    #[test]
    fn invalid_status_fails_naming_it() {
        for bad in [json!("done"), json!(3)] {
            match shape_result(obj(json!({"status": bad.clone()})), &Map::new(), 4) {
                TaskOutcome::Failed(f) => {
                    assert_eq!(f.code, codes::RUNNER_FAILURE);
                    assert!(f.message.contains(&bad.to_string()), "{}", f.message);
                    assert_eq!(f.duration_ms, 4);
                }
                other => panic!("expected failure, got {other:?}"),
            }
        }
    }

    #[test]
    fn invalid_artifacts_are_dropped_one_by_one() {
        let ret = obj(json!({"artifacts": [
            {"resource_id": "r1", "worker_id": "w", "type": "file"},
            {"resource_id": "", "worker_id": "w", "type": "file"},
            {"resource_id": "r3", "worker_id": "w", "type": "file", "unknown": 1},
            "nope",
            {"resource_id": "r5", "worker_id": "w", "type": "file", "expires_at": "not a time"},
            {"resource_id": "r6", "worker_id": "w", "type": "blob", "size_bytes": 3}
        ]}));
        let c = completed(shape_result(ret, &Map::new(), 0));
        let ids: Vec<_> = c.artifacts.iter().map(|a| a.resource_id.as_str()).collect();
        assert_eq!(ids, vec!["r1", "r6"]);
        assert!(!c.result.contains_key("artifacts"));
    }

    #[test]
    fn failed_results_carry_an_error() {
        let c = completed(shape_result(
            obj(json!({"status": "failed", "error": "boom"})),
            &Map::new(),
            0,
        ));
        assert_eq!(c.status, TaskStatus::Failed);
        let e = c.error.unwrap();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            (codes::RUNNER_FAILURE, "boom")
        );
        // `error` stays in result as well, as in Python.
        assert_eq!(c.result.get("error"), Some(&json!("boom")));

        let c = completed(shape_result(
            obj(
                json!({"status": "FAILED", "error": {"code": "E.X", "message": "m", "remediation": "r"}}),
            ),
            &Map::new(),
            0,
        ));
        assert_eq!(
            c.error.unwrap(),
            ResultError {
                code: "E.X".into(),
                message: "m".into(),
                remediation: Some("r".into())
            }
        );

        for err in [json!(null), json!(""), json!({"code": "", "message": " "})] {
            let c = completed(shape_result(
                obj(json!({"status": "failed", "error": err})),
                &Map::new(),
                0,
            ));
            let e = c.error.unwrap();
            assert_eq!(e.code, codes::RUNNER_FAILURE);
            assert!(!e.message.trim().is_empty());
        }
        let c = completed(shape_result(
            obj(json!({"status": "failed"})),
            &Map::new(),
            0,
        ));
        assert!(c.error.is_some());
    }

    #[test]
    fn non_failed_statuses_never_carry_an_error() {
        let c = completed(shape_result(
            obj(json!({"status": "succeeded", "error": "ignored"})),
            &Map::new(),
            0,
        ));
        assert_eq!(c.error, None);
    }
}
