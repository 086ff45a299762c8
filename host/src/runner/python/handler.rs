//! `PythonHandler`: runs one node of a Python adapter in its package's warm bridge.

use super::bridge::{Bridge, TaskEvent};
use super::runtime::PackageBridge;
use crate::runner::context::ExecutionContext;
use crate::runner::handler::{Handler, HandlerError, HandlerOutput};
use astra_core::work::task::codes;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a waiting task checks for cancellation and its deadline.
const POLL: Duration = Duration::from_millis(10);
/// Time to SIGKILL, reap and sweep a bridge after giving up on a cancel.
const KILL_TIME: Duration = Duration::from_secs(3);

pub struct PythonHandler {
    package: Arc<PackageBridge>,
    /// `module:attr`.
    entrypoint: String,
    cancel_wait: Duration,
}

impl PythonHandler {
    pub(crate) fn new(
        package: Arc<PackageBridge>,
        entrypoint: String,
        cancel_wait: Duration,
    ) -> Self {
        PythonHandler {
            package,
            entrypoint,
            cancel_wait,
        }
    }

    pub fn entrypoint(&self) -> &str {
        &self.entrypoint
    }
}

/// Takes the task's data dir back and stops listening for the task, however `run` ends.
struct TaskGuard<'a> {
    bridge: &'a Bridge,
    ctx: &'a ExecutionContext,
    id: Option<u64>,
}

impl Drop for TaskGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.bridge.forget(id);
        }
        self.bridge.reclaim_dir(&self.ctx.data_dir);
    }
}

fn stopped(ctx: &ExecutionContext) -> HandlerError {
    // The runner reports the timeout or cancel itself and discards this; it only matters
    // when the handler is run outside a runner.
    match ctx.cancel.reason().as_deref() {
        Some("timeout") => HandlerError::with_code(
            codes::RUNNER_TIMEOUT,
            "Python handler stopped at the task deadline",
        ),
        _ => HandlerError::with_code(codes::RUNNER_CANCELLED, "Python handler cancelled"),
    }
}

impl PythonHandler {
    /// After a timeout or cancel: ask the bridge to cancel, and kill it if the handler
    /// cannot stop (synchronous code) or does not stop within `cancel_wait`.
    fn cancel(
        &self,
        bridge: &Bridge,
        id: u64,
        events: &std::sync::mpsc::Receiver<TaskEvent>,
        ctx: &ExecutionContext,
    ) -> HandlerError {
        bridge.cancel(id);
        let until = Instant::now() + self.cancel_wait;
        let why = loop {
            match events.recv_timeout(until.saturating_duration_since(Instant::now())) {
                // Late progress of a task being stopped is not worth sending.
                Ok(TaskEvent::Feedback(_)) => continue,
                Ok(
                    TaskEvent::Cancelled
                    | TaskEvent::Result(_)
                    | TaskEvent::Error(_)
                    | TaskEvent::Died(_),
                ) => return stopped(ctx),
                Ok(TaskEvent::Uninterruptible) => {
                    break "it is running synchronous code, which Python cannot interrupt"
                }
                Err(RecvTimeoutError::Timeout) => {
                    break "it did not stop within the cancel grace period"
                }
                Err(RecvTimeoutError::Disconnected) => return stopped(ctx),
            }
        };
        bridge.kill(format!(
            "the Python bridge for {} (pid {}) was restarted because task {} of run {} could not be cancelled ({why}); tasks running in it were lost",
            self.package.label,
            bridge.pid(),
            ctx.task_id,
            ctx.run_id
        ));
        stopped(ctx)
    }
}

impl Handler for PythonHandler {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        let bridge = self
            .package
            .get()
            .map_err(|e| HandlerError::new(e.to_string()))?;
        let mut guard = TaskGuard {
            bridge: &bridge,
            ctx,
            id: None,
        };
        bridge.lend_dir(&ctx.data_dir).map_err(|e| {
            HandlerError::new(format!(
                "cannot give the task data directory {} to the Python bridge's user: {e}",
                ctx.data_dir.display()
            ))
        })?;
        let task = bridge
            .submit(&self.entrypoint, &ctx.to_json())
            .map_err(HandlerError::new)?;
        guard.id = Some(task.id);
        loop {
            if ctx.cancel.is_cancelled() || Instant::now() >= ctx.deadline {
                return Err(self.cancel(&bridge, task.id, &task.events, ctx));
            }
            match task.events.recv_timeout(POLL) {
                Ok(TaskEvent::Feedback(fb)) => {
                    ctx.feedback.send(fb);
                }
                Ok(TaskEvent::Result(output)) => return Ok(output),
                Ok(TaskEvent::Error(message)) => return Err(HandlerError::new(message)),
                Ok(TaskEvent::Died(reason)) => return Err(HandlerError::new(reason)),
                Ok(TaskEvent::Cancelled) => {
                    return Err(HandlerError::new(
                        "the Python handler was cancelled inside the bridge",
                    ))
                }
                // Only sent in answer to a cancel request; harmless otherwise.
                Ok(TaskEvent::Uninterruptible) => {}
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(HandlerError::new(format!(
                        "the Python bridge for {} dropped the task without a reply",
                        self.package.label
                    )))
                }
            }
        }
    }

    fn cancel_grace(&self) -> Duration {
        self.cancel_wait + KILL_TIME
    }
}
