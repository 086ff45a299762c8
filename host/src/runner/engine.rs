//! The runner: starts each task's handler on its own thread, enforces the timeout and
//! cancellation, and reports exactly one terminal outcome per started task.
//!
//! Each task uses two threads (a supervisor that waits for the deadline, and the handler,
//! which can be abandoned there); both come from a [`ThreadPool`] so a busy worker reuses
//! them instead of creating two threads per task.

use super::cancel::CancelToken;
use super::context::{ExecutionContext, FeedbackHandle, Reporter, Sink};
use super::datadir;
use super::handler::{HandlerError, HandlerOutput};
use super::pool::{ThreadPool, KEEP_ALIVE};
use super::registry::HandlerRegistry;
use super::shape::{non_empty_message, shape_result};
use astra_core::work::task::codes;
use astra_core::work::{HandlerKey, TaskKey, TaskOutcome, TaskSpec};
use std::any::Any;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Used when a deadline would overflow `Instant` (absurd timeouts): about 30 years.
const FAR_FUTURE: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Root of the per-task data directories.
    pub data_dir: PathBuf,
    /// Applied when a dispatch carries no `constraints.timeout_ms`.
    pub default_timeout: Duration,
    pub worker_id: String,
    /// Passed to handlers as `ctx.tenant`.
    pub tenant: String,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            data_dir: PathBuf::from("data"),
            default_timeout: Duration::from_secs(3600),
            worker_id: "astra-worker".to_string(),
            tenant: "default".to_string(),
        }
    }
}

enum Event {
    Done(
        std::thread::Result<Result<HandlerOutput, HandlerError>>,
        Duration,
    ),
    Cancel(String),
}

struct TaskControl {
    key: TaskKey,
    events: Sender<Event>,
}

struct Inner {
    config: RunnerConfig,
    registry: Arc<HandlerRegistry>,
    tasks: Mutex<HashMap<u64, TaskControl>>,
    next_id: AtomicU64,
    abandoned: Arc<AtomicUsize>,
    threads: ThreadPool,
}

impl Inner {
    fn tasks(&self) -> MutexGuard<'_, HashMap<u64, TaskControl>> {
        // Entries are inserted and removed whole; a poisoned map is still consistent.
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Cheap to clone; clones share the registry and the running tasks.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

// States of a handler thread, so exactly one side accounts for an abandoned thread.
const RUNNING: u8 = 0;
const RETURNED: u8 = 1;
const ABANDONED: u8 = 2;

impl Runner {
    pub fn new(config: RunnerConfig) -> Self {
        Self::with_registry(config, Arc::new(HandlerRegistry::new()))
    }

    pub fn with_registry(config: RunnerConfig, registry: Arc<HandlerRegistry>) -> Self {
        Runner {
            inner: Arc::new(Inner {
                config,
                registry,
                tasks: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                abandoned: Arc::new(AtomicUsize::new(0)),
                threads: ThreadPool::new("astra-task", KEEP_ALIVE),
            }),
        }
    }

    pub fn config(&self) -> &RunnerConfig {
        &self.inner.config
    }

    /// The live registry: packages may be registered and unregistered while tasks run.
    pub fn registry(&self) -> &Arc<HandlerRegistry> {
        &self.inner.registry
    }

    /// Tasks started whose terminal outcome has not been sent yet.
    pub fn running(&self) -> usize {
        self.inner.tasks().len()
    }

    /// Handler threads still running after their task was reported as timed out or
    /// cancelled (handlers that ignore cancellation). Worth a health warning if it grows.
    pub fn abandoned(&self) -> usize {
        self.inner.abandoned.load(Ordering::SeqCst)
    }

    /// Starts `spec` on its own thread and returns at once. `sink` receives zero or more
    /// `TaskFeedback` and then exactly one `TaskFinished` for this task, whatever happens.
    pub fn start(&self, spec: TaskSpec, sink: Sink) {
        let id = self.inner.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        self.inner.tasks().insert(
            id,
            TaskControl {
                key: spec.key.clone(),
                events: tx.clone(),
            },
        );
        let reporter = Reporter::new(spec.key.clone(), Some(sink));
        let inner = self.inner.clone();
        let rep = reporter.clone();
        let spawned = self
            .inner
            .threads
            .spawn(move || supervise(&inner, id, spec, tx, rx, rep));
        if let Err(e) = spawned {
            // Last resort, on the caller's thread: the promise of one outcome still holds.
            self.inner.tasks().remove(&id);
            reporter.finish(TaskOutcome::failed(
                codes::RUNNER_FAILURE,
                format!("could not start a thread for the task: {e}"),
                0,
            ));
        }
    }

    /// Cancels every running task with this key (normally one). Returns how many were
    /// signalled. Each still reports its one outcome, `E.RUNNER.CANCELLED`.
    pub fn cancel(&self, task: &TaskKey, reason: &str) -> usize {
        let tasks = self.inner.tasks();
        let mut n = 0;
        for control in tasks.values().filter(|c| &c.key == task) {
            // A send error means the task is finishing right now; nothing left to cancel.
            if control
                .events
                .send(Event::Cancel(reason.to_string()))
                .is_ok()
            {
                n += 1;
            }
        }
        n
    }

    /// Cancels everything (shutdown).
    pub fn cancel_all(&self, reason: &str) -> usize {
        let tasks = self.inner.tasks();
        tasks
            .values()
            .filter(|c| c.events.send(Event::Cancel(reason.to_string())).is_ok())
            .count()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    };
    format!(
        "handler panicked: {}",
        non_empty_message(&text, "(empty panic message)")
    )
}

/// Turns whatever the handler thread produced into the task's outcome.
pub(crate) fn outcome_of(
    result: std::thread::Result<Result<HandlerOutput, HandlerError>>,
    context_metadata: &serde_json::Map<String, serde_json::Value>,
    elapsed: Duration,
) -> TaskOutcome {
    let duration_ms = ms(elapsed);
    match result {
        Ok(Ok(dict)) => shape_result(dict, context_metadata, duration_ms),
        Ok(Err(e)) => TaskOutcome::failed(
            non_empty_message(&e.code, codes::RUNNER_FAILURE),
            non_empty_message(&e.message, "handler failed without an error message"),
            duration_ms,
        ),
        Err(payload) => TaskOutcome::failed(
            codes::RUNNER_FAILURE,
            panic_message(payload.as_ref()),
            duration_ms,
        ),
    }
}

fn supervise(
    inner: &Inner,
    id: u64,
    spec: TaskSpec,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    reporter: Arc<Reporter>,
) {
    let outcome = run_to_outcome(inner, spec, tx, rx, &reporter);
    inner.tasks().remove(&id);
    reporter.finish(outcome);
}

fn run_to_outcome(
    inner: &Inner,
    spec: TaskSpec,
    tx: Sender<Event>,
    rx: Receiver<Event>,
    reporter: &Arc<Reporter>,
) -> TaskOutcome {
    let started = Instant::now();
    let timeout = spec.timeout.unwrap_or(inner.config.default_timeout);
    let deadline = started
        .checked_add(timeout)
        .unwrap_or_else(|| started + FAR_FUTURE);
    let key = HandlerKey::new(&spec.package_name, &spec.package_version, &spec.node_type);

    let Some(handler) = inner.registry.resolve(&key) else {
        return TaskOutcome::failed(
            codes::RUNNER_FAILURE,
            format!("Handler not registered: {key}"),
            0,
        );
    };
    let data_dir = match datadir::create_task_dir(&inner.config.data_dir, &spec.key.run_id, &spec.key.task_id) {
        Ok(dir) => dir,
        Err(e) => {
            return TaskOutcome::failed(
                codes::RUNNER_FAILURE,
                format!(
                    "cannot create the task data directory under {}: {e}; check that the worker's data_dir is writable",
                    inner.config.data_dir.display()
                ),
                0,
            )
        }
    };

    let cancel = CancelToken::new();
    let ctx = ExecutionContext {
        run_id: spec.key.run_id.clone(),
        task_id: spec.key.task_id.clone(),
        node_id: spec.node_id.clone(),
        node_type: spec.node_type.clone(),
        package_name: spec.package_name.clone(),
        package_version: spec.package_version.clone(),
        params: spec.parameters.clone(),
        tenant: inner.config.tenant.clone(),
        worker_id: inner.config.worker_id.clone(),
        data_dir,
        metadata: spec.metadata.clone(),
        cancel: cancel.clone(),
        deadline,
        feedback: FeedbackHandle::from_reporter(reporter.clone()),
    };

    let state = Arc::new(AtomicU8::new(RUNNING));
    let thread_state = state.clone();
    let thread_handler = handler.clone();
    let abandoned = inner.abandoned.clone();
    let spawned = inner.threads.spawn(move || {
        let t0 = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| thread_handler.run(&ctx)));
        let elapsed = t0.elapsed();
        // Fails only when the supervisor stopped listening: the late result is discarded.
        let _ = tx.send(Event::Done(result, elapsed));
        if thread_state.swap(RETURNED, Ordering::SeqCst) == ABANDONED {
            abandoned.fetch_sub(1, Ordering::SeqCst);
        }
    });
    if let Err(e) = spawned {
        return TaskOutcome::failed(
            codes::RUNNER_FAILURE,
            format!("could not start the handler thread: {e}"),
            0,
        );
    }

    let wait = deadline.saturating_duration_since(Instant::now());
    let stop = match rx.recv_timeout(wait) {
        Ok(Event::Done(result, elapsed)) => return outcome_of(result, &spec.metadata, elapsed),
        Ok(Event::Cancel(reason)) => Stop::Cancelled(reason),
        Err(RecvTimeoutError::Timeout) => Stop::Timeout,
        // Unreachable while `TaskControl` holds a sender; treat as a runner fault.
        Err(RecvTimeoutError::Disconnected) => {
            return TaskOutcome::failed(
                codes::RUNNER_FAILURE,
                "the handler thread vanished without a result",
                ms(started.elapsed()),
            )
        }
    };

    cancel.cancel(match &stop {
        Stop::Timeout => "timeout".to_string(),
        Stop::Cancelled(reason) => non_empty_message(reason, "cancelled"),
    });
    // Give the handler its declared cleanup time; its result is discarded either way.
    let grace_end = Instant::now() + handler.cancel_grace();
    let mut returned = false;
    while !returned {
        match rx.recv_timeout(grace_end.saturating_duration_since(Instant::now())) {
            Ok(Event::Done(..)) => returned = true,
            Ok(Event::Cancel(_)) => {}
            Err(_) => break,
        }
    }
    if !returned {
        // Count first, then publish ABANDONED: if the thread returned in between, undo.
        inner.abandoned.fetch_add(1, Ordering::SeqCst);
        if state.swap(ABANDONED, Ordering::SeqCst) == RETURNED {
            inner.abandoned.fetch_sub(1, Ordering::SeqCst);
        }
    }
    // Measured from the task start, the same clock the deadline uses.
    let duration_ms = ms(started.elapsed());
    match stop {
        Stop::Timeout => TaskOutcome::failed(
            codes::RUNNER_TIMEOUT,
            format!("task exceeded its timeout of {} ms", ms(timeout)),
            duration_ms,
        ),
        Stop::Cancelled(reason) => {
            let message = if reason.trim().is_empty() {
                "task cancelled".to_string()
            } else {
                format!("task cancelled: {reason}")
            };
            TaskOutcome::failed(codes::RUNNER_CANCELLED, message, duration_ms)
        }
    }
}

enum Stop {
    Timeout,
    Cancelled(String),
}
