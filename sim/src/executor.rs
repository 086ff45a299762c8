//! Simulated executors: how long a task runs, the feedback it streams and how it ends —
//! all drawn from the simulation PRNG and the seed's executor faults.

use crate::swarm::FaultKnobs;
use astra_core::rng::Rng;
use astra_core::v1::payloads::{FeedbackChannel, FeedbackChunk, ResultError, TaskStatus};
use astra_core::work::task::codes;
use astra_core::work::{Completion, Feedback, TaskOutcome, TaskSpec};
use serde_json::{json, Map, Value};
use std::time::Duration;

pub struct ExecPlan {
    pub duration: Duration,
    /// Offsets from the start at which feedback is reported.
    pub feedback: Vec<(Duration, Feedback)>,
    pub outcome: TaskOutcome,
}

/// The most chunks a streaming task emits.
const MAX_CHUNKS: u64 = 8;

/// `chunk {i}` for each chunk index, so a feedback frame formats nothing.
const CHUNK_TEXTS: [&str; MAX_CHUNKS as usize] = [
    "chunk 0", "chunk 1", "chunk 2", "chunk 3", "chunk 4", "chunk 5", "chunk 6", "chunk 7",
];

fn chunk_text(i: u64) -> String {
    match CHUNK_TEXTS.get(i as usize) {
        Some(t) => (*t).to_string(),
        None => format!("chunk {i}"),
    }
}

fn param_u64(spec: &TaskSpec, k: &str) -> Option<u64> {
    spec.parameters.get(k).and_then(Value::as_u64)
}

pub fn plan(spec: &TaskSpec, rng: &mut Rng, f: &FaultKnobs) -> ExecPlan {
    let base_ms = match spec.node_type.as_str() {
        "sleep" => param_u64(spec, "ms").unwrap_or(100),
        "stream" => 200 + rng.below(2_000),
        _ => 1 + rng.below(50),
    };
    let duration = Duration::from_micros((base_ms as f64 * 1000.0 * f.slow_factor) as u64);
    let ms = duration.as_millis() as u64;
    let mut feedback = Vec::new();
    if spec.node_type == "stream" {
        let n = param_u64(spec, "chunks").unwrap_or(1).min(MAX_CHUNKS);
        for i in 0..n {
            let at = duration.mul_f64((i + 1) as f64 / (n + 1) as f64);
            feedback.push((
                at,
                Feedback {
                    stage: Some("streaming".into()),
                    progress: Some((i + 1) as f64 / (n + 1) as f64),
                    chunks: vec![FeedbackChunk {
                        channel: FeedbackChannel::Stdout,
                        index: Some(i),
                        mime_type: None,
                        text: Some(chunk_text(i)),
                        data_base64: None,
                        metadata: None,
                    }],
                    ..Feedback::default()
                },
            ));
        }
    }
    let outcome = if rng.chance(f.exec_failure) {
        TaskOutcome::failed(codes::RUNNER_FAILURE, "simulated executor failure", ms)
    } else if spec.node_type == "fail" {
        if rng.chance(0.5) {
            TaskOutcome::Completed(Completion {
                status: TaskStatus::Failed,
                result: Map::new(),
                metadata: Map::new(),
                artifacts: Vec::new(),
                error: Some(ResultError {
                    code: "E.SIM.FAIL".into(),
                    message: "the fail node failed".into(),
                    remediation: None,
                }),
                duration_ms: ms,
            })
        } else {
            TaskOutcome::failed(codes::RUNNER_FAILURE, "the fail node raised", ms)
        }
    } else {
        let mut r = Map::new();
        r.insert("node".into(), json!(spec.node_id));
        if let Some(m) = spec.parameters.get("message") {
            r.insert("echo".into(), m.clone());
        }
        TaskOutcome::succeeded(r, ms)
    };
    ExecPlan {
        duration,
        feedback,
        outcome,
    }
}

/// What a cancelled task reports.
pub fn cancelled(ms: u64) -> TaskOutcome {
    TaskOutcome::failed(codes::RUNNER_CANCELLED, "cancelled by the worker", ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_texts_are_what_format_writes() {
        for i in 0..MAX_CHUNKS + 3 {
            assert_eq!(chunk_text(i), format!("chunk {i}"));
        }
    }
}
