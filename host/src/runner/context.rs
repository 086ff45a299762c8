//! What a handler sees of its task (`ExecutionContext`, spec §6.2) and how it reports
//! progress (`FeedbackHandle`, the Python `FeedbackPublisher`).

use super::cancel::CancelToken;
use astra_core::v1::payloads::{FeedbackChannel, FeedbackChunk};
use astra_core::work::{Feedback, TaskKey, TaskOutcome};
use astra_core::worker::Input;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the runner reports to: the driver turns these into core machine inputs.
pub type Sink = Arc<dyn Fn(Input) + Send + Sync>;

/// Everything a handler may use while it runs. Fields are public so library users and tests
/// can build one directly.
#[derive(Clone)]
pub struct ExecutionContext {
    pub run_id: String,
    pub task_id: String,
    pub node_id: String,
    pub node_type: String,
    pub package_name: String,
    pub package_version: String,
    /// The dispatch `parameters`.
    pub params: Map<String, Value>,
    /// The worker's configured tenant (not the envelope's), as in the Python worker.
    pub tenant: String,
    /// The worker's id, e.g. for the `worker_id` of artifacts the handler produces.
    pub worker_id: String,
    /// `<data_dir>/<run_id>/<task_id>` with both ids sanitised; exists before `run` is called
    /// unless the handler's `Handler::uses_data_dir` says it never uses it.
    pub data_dir: PathBuf,
    /// The spec's context metadata (`concurrency_key`, `constraints`, ...).
    pub metadata: Map<String, Value>,
    pub cancel: CancelToken,
    /// When the runner stops waiting and reports `E.RUNNER.TIMEOUT`.
    pub deadline: Instant,
    pub feedback: FeedbackHandle,
}

impl ExecutionContext {
    pub fn key(&self) -> TaskKey {
        TaskKey {
            run_id: self.run_id.clone(),
            task_id: self.task_id.clone(),
        }
    }

    /// Time left before the deadline (zero once it passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The JSON form handed to out-of-process handlers on stdin: every field except the
    /// in-process handles, plus `timeout_ms_remaining`.
    pub fn to_json(&self) -> Value {
        json!({
            "run_id": self.run_id,
            "task_id": self.task_id,
            "node_id": self.node_id,
            "node_type": self.node_type,
            "package_name": self.package_name,
            "package_version": self.package_version,
            "params": self.params,
            "tenant": self.tenant,
            "worker_id": self.worker_id,
            "data_dir": self.data_dir.to_string_lossy(),
            "metadata": self.metadata,
            "timeout_ms_remaining": u64::try_from(self.remaining().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

/// The per-task gate that keeps the runner's promise: feedback only before the single
/// terminal outcome, never after it.
pub(crate) struct Reporter {
    task: TaskKey,
    sink: Option<Sink>,
    finished: Mutex<bool>,
}

impl Reporter {
    pub(crate) fn new(task: TaskKey, sink: Option<Sink>) -> Arc<Self> {
        Arc::new(Reporter {
            task,
            sink,
            finished: Mutex::new(false),
        })
    }

    fn feedback(&self, feedback: Feedback) -> bool {
        // Holding the lock while calling the sink orders this frame before a concurrent
        // `finish`, so feedback can never overtake the terminal outcome.
        let finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        if *finished {
            return false;
        }
        if let Some(sink) = &self.sink {
            sink(Input::TaskFeedback {
                task: self.task.clone(),
                feedback,
            });
        }
        true
    }

    /// Sends the terminal outcome; returns `false` (and sends nothing) if one was sent already.
    pub(crate) fn finish(&self, outcome: TaskOutcome) -> bool {
        let mut finished = self.finished.lock().unwrap_or_else(|e| e.into_inner());
        if *finished {
            return false;
        }
        *finished = true;
        if let Some(sink) = &self.sink {
            sink(Input::TaskFinished {
                task: self.task.clone(),
                outcome,
            });
        }
        true
    }
}

/// Sends `feedback` frames for one task. Cheap to clone; safe from any thread.
#[derive(Clone)]
pub struct FeedbackHandle {
    reporter: Arc<Reporter>,
}

impl FeedbackHandle {
    /// A handle that forwards to `sink` as `Input::TaskFeedback` for `task`.
    pub fn new(task: TaskKey, sink: Sink) -> Self {
        FeedbackHandle {
            reporter: Reporter::new(task, Some(sink)),
        }
    }

    /// A handle that drops everything (for running a handler outside a runner).
    pub fn discard(task: TaskKey) -> Self {
        FeedbackHandle {
            reporter: Reporter::new(task, None),
        }
    }

    pub(crate) fn from_reporter(reporter: Arc<Reporter>) -> Self {
        FeedbackHandle { reporter }
    }

    /// Sends one feedback frame. Returns `false` when the task already finished (the frame
    /// is dropped: nothing may follow the terminal outcome).
    pub fn send(&self, feedback: Feedback) -> bool {
        self.reporter.feedback(feedback)
    }

    /// Sends a single text chunk on `channel` (the Python default is `FeedbackChannel::Log`).
    pub fn emit_text(&self, text: impl Into<String>, channel: FeedbackChannel) -> bool {
        let chunk = FeedbackChunk {
            channel,
            index: None,
            mime_type: None,
            text: Some(text.into()),
            data_base64: None,
            metadata: None,
        };
        self.send(Feedback {
            chunks: vec![chunk],
            ..Feedback::default()
        })
    }

    /// `emit_text` on the default `log` channel.
    pub fn log(&self, text: impl Into<String>) -> bool {
        self.emit_text(text, FeedbackChannel::Log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use astra_core::work::TaskOutcome;

    fn key() -> TaskKey {
        TaskKey {
            run_id: "r".into(),
            task_id: "t".into(),
        }
    }

    #[test]
    fn feedback_is_dropped_after_finish_and_finish_happens_once() {
        let seen: Arc<Mutex<Vec<Input>>> = Arc::default();
        let s = seen.clone();
        let sink: Sink = Arc::new(move |i| s.lock().unwrap().push(i));
        let reporter = Reporter::new(key(), Some(sink));
        let fb = FeedbackHandle::from_reporter(reporter.clone());
        assert!(fb.log("hello"));
        assert!(reporter.finish(TaskOutcome::succeeded(Map::new(), 1)));
        assert!(!fb.log("late"));
        assert!(!reporter.finish(TaskOutcome::succeeded(Map::new(), 2)));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        match &seen[0] {
            Input::TaskFeedback { feedback, .. } => {
                assert_eq!(feedback.chunks[0].channel, FeedbackChannel::Log);
                assert_eq!(feedback.chunks[0].text.as_deref(), Some("hello"));
            }
            other => panic!("expected feedback, got {other:?}"),
        }
        assert!(matches!(seen[1], Input::TaskFinished { .. }));
    }
}
