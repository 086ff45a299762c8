//! A task as the worker runs it, independent of the wire: its spec, the progress it streams
//! and its terminal outcome.

use crate::v1::payloads::{Artifact, FeedbackChunk, ResultError, TaskStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Identity of a task across re-dispatches: the scheduler re-sends the same (run, task) with a
/// new envelope id after an ack timeout.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TaskKey {
    pub run_id: String,
    pub task_id: String,
}

impl std::fmt::Display for TaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.run_id, self.task_id)
    }
}

/// Everything a runner needs to execute one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    pub key: TaskKey,
    pub node_id: String,
    pub node_type: String,
    pub package_name: String,
    pub package_version: String,
    pub parameters: Map<String, Value>,
    /// From `constraints.timeout_ms`; the host applies its configured default when absent.
    pub timeout: Option<Duration>,
    pub concurrency_key: Option<String>,
    /// Context metadata (`concurrency_key`, `constraints`, and `resource_refs`/`affinity` when
    /// present); merged under the handler's metadata in the result.
    pub metadata: Map<String, Value>,
    /// The worker's configured tenant, as the Python runner passes it.
    pub tenant: String,
    pub seq: Option<u64>,
    pub dispatch_id: String,
}

/// One progress report from a running task, sent to the scheduler as `feedback`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<FeedbackChunk>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// A handler ran and returned: becomes a `result` frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub status: TaskStatus,
    pub result: Map<String, Value>,
    /// Handler metadata, merged over the context metadata.
    pub metadata: Map<String, Value>,
    pub artifacts: Vec<Artifact>,
    pub error: Option<ResultError>,
    pub duration_ms: u64,
}

/// The task could not produce a result: becomes a `command.error` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TaskOutcome {
    Completed(Completion),
    Failed(Failure),
}

impl TaskOutcome {
    pub fn failed(code: impl Into<String>, message: impl Into<String>, duration_ms: u64) -> Self {
        TaskOutcome::Failed(Failure {
            code: code.into(),
            message: message.into(),
            duration_ms,
        })
    }
    pub fn succeeded(result: Map<String, Value>, duration_ms: u64) -> Self {
        TaskOutcome::Completed(Completion {
            status: TaskStatus::Succeeded,
            result,
            metadata: Map::new(),
            artifacts: Vec::new(),
            error: None,
            duration_ms,
        })
    }
    pub fn duration_ms(&self) -> u64 {
        match self {
            TaskOutcome::Completed(c) => c.duration_ms,
            TaskOutcome::Failed(f) => f.duration_ms,
        }
    }
}

/// Error codes the worker emits in `command.error` (spec §6.5 plus the documented additions).
pub mod codes {
    pub const RUNNER_FAILURE: &str = "E.RUNNER.FAILURE";
    pub const RUNNER_TIMEOUT: &str = "E.RUNNER.TIMEOUT";
    pub const RUNNER_CANCELLED: &str = "E.RUNNER.CANCELLED";
    pub const CONCURRENCY_VIOLATION: &str = "E.CMD.CONCURRENCY_VIOLATION";
    pub const CMD_INVALID: &str = "E.CMD.INVALID";
    pub const RESOURCE_MISSING: &str = "E.RESOURCE.MISSING";
    pub const WORKER_DRAINING: &str = "E.WORKER.DRAINING";
}
