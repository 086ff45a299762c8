//! The runner: starts each task's handler on its own thread, enforces the timeout and
//! cancellation, and reports exactly one terminal outcome per started task.
//!
//! A handler that declares itself instant (`Handler::inline`) runs on the caller's thread
//! instead, with no supervisor: nothing could interrupt it anyway, and it saves the two
//! thread wake-ups below.
//!
//! Each other task uses two threads (a supervisor that waits for the deadline, and the handler,
//! which can be abandoned there); both come from a [`ThreadPool`] so a busy worker reuses
//! them instead of creating two threads per task. A handler that returns in time reports
//! its outcome itself (one thread hop less on the dispatch→result path); a claim word
//! decides between it and the supervisor's timeout or cancel, so there is exactly one.

use super::cancel::CancelToken;
use super::context::{ExecutionContext, FeedbackHandle, Reporter, Sink};
use super::datadir;
use super::handler::{Handler, HandlerError, HandlerOutput};
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
    /// The handler returned after the supervisor had claimed the outcome.
    Done,
    /// The handler returned in time and reported its outcome itself.
    Reported,
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

// Who reports a task's outcome: the first to move the claim off OPEN.
const OPEN: u8 = 0;
const BY_HANDLER: u8 = 1;
const BY_SUPERVISOR: u8 = 2;

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

    /// Starts `spec` and returns at once. `sink` receives zero or more `TaskFeedback` and
    /// then exactly one `TaskFinished` for this task, whatever happens.
    pub fn start(&self, spec: TaskSpec, sink: Sink) {
        let started = Instant::now();
        let id = self.inner.next_id.fetch_add(1, Ordering::SeqCst);
        let reporter = Reporter::new(spec.key.clone(), Some(sink));
        let key = HandlerKey::new(&spec.package_name, &spec.package_version, &spec.node_type);
        let Some(handler) = self.inner.registry.resolve(&key) else {
            reporter.finish(TaskOutcome::failed(
                codes::RUNNER_FAILURE,
                format!("Handler not registered: {key}"),
                0,
            ));
            return;
        };
        let timeout = spec.timeout.unwrap_or(self.inner.config.default_timeout);
        let deadline = started
            .checked_add(timeout)
            .unwrap_or_else(|| started + FAR_FUTURE);
        if handler.inline() {
            run_inline(&self.inner, &reporter, handler, spec, deadline);
            return;
        }
        let task = Arc::new(TaskRun {
            id,
            claim: AtomicU8::new(OPEN),
            state: AtomicU8::new(RUNNING),
            cancel: CancelToken::new(),
            reporter,
            started,
            timeout,
            deadline,
            grace: handler.cancel_grace(),
        });
        let (tx, rx) = mpsc::channel();
        self.inner.tasks().insert(
            id,
            TaskControl {
                key: spec.key.clone(),
                events: tx.clone(),
            },
        );
        // The handler's job first: it is on the dispatch→result path; the supervisor only
        // waits for the deadline or a cancel beside it.
        let (inner, run) = (self.inner.clone(), task.clone());
        let spawned = self
            .inner
            .threads
            .spawn(move || run_handler(&inner, &run, handler, spec, tx));
        if let Err(e) = spawned {
            // Last resort, on the caller's thread: the promise of one outcome still holds.
            task.report(
                &self.inner,
                BY_SUPERVISOR,
                TaskOutcome::failed(
                    codes::RUNNER_FAILURE,
                    format!("could not start the handler thread: {e}"),
                    0,
                ),
            );
            return;
        }
        let (inner, run) = (self.inner.clone(), task.clone());
        let spawned = self
            .inner
            .threads
            .spawn(move || supervise(&inner, &run, rx));
        if let Err(e) = spawned {
            // Without a supervisor nothing would enforce the deadline: stop the handler now.
            if task.claim(BY_SUPERVISOR) {
                task.cancel.cancel("runner failure".to_string());
                task.abandon(&self.inner);
                task.finish(
                    &self.inner,
                    TaskOutcome::failed(
                        codes::RUNNER_FAILURE,
                        format!("could not start the supervisor thread for the task: {e}"),
                        ms(started.elapsed()),
                    ),
                );
            }
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

/// One started task, shared by its handler job and its supervisor.
struct TaskRun {
    id: u64,
    /// Who reports the outcome: `OPEN` until the first of them claims it.
    claim: AtomicU8,
    /// The handler thread: `RUNNING`, `RETURNED` or `ABANDONED` (see [`TaskRun::abandon`]).
    state: AtomicU8,
    cancel: CancelToken,
    reporter: Arc<Reporter>,
    started: Instant,
    timeout: Duration,
    deadline: Instant,
    grace: Duration,
}

impl TaskRun {
    /// True for the one caller that gets to report the outcome.
    fn claim(&self, who: u8) -> bool {
        self.claim
            .compare_exchange(OPEN, who, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Reports `outcome`; only after a successful [`TaskRun::claim`].
    fn finish(&self, inner: &Inner, outcome: TaskOutcome) {
        inner.tasks().remove(&self.id);
        self.reporter.finish(outcome);
    }

    /// Claims and, if that succeeds, reports.
    fn report(&self, inner: &Inner, who: u8, outcome: TaskOutcome) {
        if self.claim(who) {
            self.finish(inner, outcome);
        }
    }

    /// The supervisor stops waiting for a handler that has not returned: count it until it
    /// does. Count first, then publish ABANDONED: if the thread returned in between, undo.
    fn abandon(&self, inner: &Inner) {
        inner.abandoned.fetch_add(1, Ordering::SeqCst);
        if self.state.swap(ABANDONED, Ordering::SeqCst) == RETURNED {
            inner.abandoned.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The handler thread is done with the task.
    fn returned(&self, inner: &Inner) {
        if self.state.swap(RETURNED, Ordering::SeqCst) == ABANDONED {
            inner.abandoned.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// The task's data directory: created when the handler uses it, else only its path. `Err`
/// is the failure message for the task.
fn prepare_data_dir(
    inner: &Inner,
    handler: &dyn Handler,
    key: &TaskKey,
) -> Result<PathBuf, String> {
    let root = &inner.config.data_dir;
    if !handler.uses_data_dir() {
        return Ok(datadir::task_dir(root, &key.run_id, &key.task_id));
    }
    datadir::create_task_dir(root, &key.run_id, &key.task_id).map_err(|e| {
        format!(
            "cannot create the task data directory under {}: {e}; check that the worker's data_dir is writable",
            root.display()
        )
    })
}

fn context(
    inner: &Inner,
    spec: TaskSpec,
    data_dir: PathBuf,
    cancel: CancelToken,
    deadline: Instant,
    reporter: &Arc<Reporter>,
) -> ExecutionContext {
    ExecutionContext {
        run_id: spec.key.run_id,
        task_id: spec.key.task_id,
        node_id: spec.node_id,
        node_type: spec.node_type,
        package_name: spec.package_name,
        package_version: spec.package_version,
        params: spec.parameters,
        tenant: inner.config.tenant.clone(),
        worker_id: inner.config.worker_id.clone(),
        data_dir,
        metadata: spec.metadata,
        cancel,
        deadline,
        feedback: FeedbackHandle::from_reporter(reporter.clone()),
    }
}

/// An instant handler (`Handler::inline`), on the caller's thread: the data directory if it
/// needs one, the handler, the outcome. Nothing else can report for this task, so there is
/// no claim to take and nothing to register for cancellation.
fn run_inline(
    inner: &Inner,
    reporter: &Arc<Reporter>,
    handler: Arc<dyn Handler>,
    spec: TaskSpec,
    deadline: Instant,
) {
    let data_dir = match prepare_data_dir(inner, handler.as_ref(), &spec.key) {
        Ok(dir) => dir,
        Err(message) => {
            reporter.finish(TaskOutcome::failed(codes::RUNNER_FAILURE, message, 0));
            return;
        }
    };
    let ctx = context(
        inner,
        spec,
        data_dir,
        CancelToken::new(),
        deadline,
        reporter,
    );
    let t0 = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| handler.run(&ctx)));
    reporter.finish(outcome_of(result, &ctx.metadata, t0.elapsed()));
}

/// The handler's job: the task's data directory, the handler itself, and (when it returns
/// before the supervisor stopped it) the outcome.
fn run_handler(
    inner: &Inner,
    task: &TaskRun,
    handler: Arc<dyn Handler>,
    spec: TaskSpec,
    tx: Sender<Event>,
) {
    let data_dir = match prepare_data_dir(inner, handler.as_ref(), &spec.key) {
        Ok(dir) => Some(dir),
        Err(message) => {
            let outcome = TaskOutcome::failed(codes::RUNNER_FAILURE, message, 0);
            task.report(inner, BY_HANDLER, outcome);
            None
        }
    };
    // Stopped already (a cancel or an absurdly short timeout while the directory was made):
    // the supervisor reports; running the handler now would only waste its thread.
    let claimed = match data_dir {
        Some(data_dir) if task.claim.load(Ordering::SeqCst) == OPEN => {
            let ctx = context(
                inner,
                spec,
                data_dir,
                task.cancel.clone(),
                task.deadline,
                &task.reporter,
            );
            let t0 = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| handler.run(&ctx)));
            let elapsed = t0.elapsed();
            let claimed = task.claim(BY_HANDLER);
            if claimed {
                task.finish(inner, outcome_of(result, &ctx.metadata, elapsed));
            }
            claimed
        }
        _ => task.claim.load(Ordering::SeqCst) == BY_HANDLER,
    };
    // Fails only when the supervisor stopped listening: nothing is waiting any more.
    let _ = tx.send(if claimed {
        Event::Reported
    } else {
        Event::Done
    });
    task.returned(inner);
}

/// The supervisor's job: waits for the handler, the deadline or a cancel; on the latter two
/// it claims the outcome, cancels the handler, gives it its grace time and reports.
fn supervise(inner: &Inner, task: &TaskRun, rx: Receiver<Event>) {
    let wait = task.deadline.saturating_duration_since(Instant::now());
    let stop = match rx.recv_timeout(wait) {
        // Only the handler can claim before this point, so `Done` cannot come first;
        // either way it has returned and reported.
        Ok(Event::Reported | Event::Done) => return,
        Ok(Event::Cancel(reason)) => Stop::Cancelled(reason),
        Err(RecvTimeoutError::Timeout) => Stop::Timeout,
        // Unreachable while `TaskControl` holds a sender; treat as a runner fault.
        Err(RecvTimeoutError::Disconnected) => Stop::Vanished,
    };
    if !task.claim(BY_SUPERVISOR) {
        // The handler returned at this very moment and reported its own outcome.
        return;
    }
    if matches!(stop, Stop::Vanished) {
        task.finish(
            inner,
            TaskOutcome::failed(
                codes::RUNNER_FAILURE,
                "the handler thread vanished without a result",
                ms(task.started.elapsed()),
            ),
        );
        return;
    }
    task.cancel.cancel(match &stop {
        Stop::Timeout | Stop::Vanished => "timeout".to_string(),
        Stop::Cancelled(reason) => non_empty_message(reason, "cancelled"),
    });
    // Give the handler its declared cleanup time; its result is discarded either way.
    let grace_end = Instant::now() + task.grace;
    let mut returned = false;
    while !returned {
        match rx.recv_timeout(grace_end.saturating_duration_since(Instant::now())) {
            Ok(Event::Done | Event::Reported) => returned = true,
            Ok(Event::Cancel(_)) => {}
            Err(_) => break,
        }
    }
    if !returned {
        task.abandon(inner);
    }
    // Measured from the task start, the same clock the deadline uses.
    let duration_ms = ms(task.started.elapsed());
    let outcome = match stop {
        Stop::Timeout | Stop::Vanished => TaskOutcome::failed(
            codes::RUNNER_TIMEOUT,
            format!("task exceeded its timeout of {} ms", ms(task.timeout)),
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
    };
    task.finish(inner, outcome);
}

enum Stop {
    Timeout,
    Cancelled(String),
    /// The event channel closed (cannot happen while the task is registered).
    Vanished,
}
