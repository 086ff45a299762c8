//! The `Handler` extension point: what a node type's implementation looks like to the runner.

use super::context::ExecutionContext;
use astra_core::work::task::codes;
use serde_json::{Map, Value};
use std::time::Duration;

/// A handler's "dict": the same shape a Python handler returns (spec §6.3): optional
/// `status`, `outputs` (or the outputs as top-level keys), `metadata`, `artifacts`, `error`.
pub type HandlerOutput = Map<String, Value>;

/// Why a handler could not produce a result. Becomes a `command.error` with `code`
/// (`E.RUNNER.FAILURE` unless the handler chose another) and `message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    pub code: String,
    pub message: String,
}

impl HandlerError {
    /// A failure with the generic runner code, as the Python worker reports any exception.
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError {
            code: codes::RUNNER_FAILURE.to_string(),
            message: message.into(),
        }
    }

    pub fn with_code(code: impl Into<String>, message: impl Into<String>) -> Self {
        HandlerError {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<String> for HandlerError {
    fn from(message: String) -> Self {
        HandlerError::new(message)
    }
}

impl From<&str> for HandlerError {
    fn from(message: &str) -> Self {
        HandlerError::new(message)
    }
}

/// Runs one node type. Implementations must be thread-safe: the runner calls `run` from a
/// dedicated thread per task, possibly for many tasks at once.
pub trait Handler: Send + Sync {
    /// Runs the task to completion. Long-running handlers should poll
    /// `ctx.cancel.is_cancelled()` (or sleep with `ctx.cancel.wait`) and return early once
    /// cancelled; the runner reports the timeout or cancellation itself and discards
    /// whatever `run` returns afterwards.
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError>;

    /// How long the runner waits, after a timeout or cancel, for `run` to return before it
    /// reports the terminal outcome anyway. Rust handlers default to zero (report at once);
    /// handlers that own external resources (child processes) return the time their
    /// cleanup needs, so the outcome is only reported once that cleanup has happened.
    fn cancel_grace(&self) -> Duration {
        Duration::ZERO
    }

    /// Whether `run` reads or writes `ctx.data_dir`. When `false` the runner does not create
    /// the directory (`ctx.data_dir` is still its path): a handler that never touches the
    /// disk saves a `mkdir` per task on the dispatch→result path, which on a busy disk
    /// waits behind journal commits. Defaults to `true`; runtimes that hand the directory
    /// to code they do not control (processes, Python) keep it.
    fn uses_data_dir(&self) -> bool {
        true
    }

    /// Whether `run` is instant: no blocking, no I/O, no waiting, only small bounded CPU
    /// work (shaping its parameters, say). The runner then calls it on the thread that
    /// starts the task (the worker's control loop) instead of a pool thread, which saves
    /// the two thread wake-ups a pooled task costs. Such a run cannot be timed out or
    /// cancelled while it runs, and it holds up the control loop for as long as it takes,
    /// so never claim this for a handler that can take long. Defaults to `false`.
    fn inline(&self) -> bool {
        false
    }
}

/// Closures are handlers too, which keeps small handlers and tests short.
impl<F> Handler for F
where
    F: Fn(&ExecutionContext) -> Result<HandlerOutput, HandlerError> + Send + Sync,
{
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        self(ctx)
    }
}
