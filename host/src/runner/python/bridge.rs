//! One running bridge process: submits tasks to it, routes its replies to the waiting
//! tasks, and turns its death (crash, garbage on the protocol fd, deliberate kill) into a
//! clear error for every task still in flight.

use super::config::PythonConfig;
use super::error::PythonError;
use super::protocol::{self, Reply, PROTOCOL};
use super::spawner::Spawner;
use crate::runner::handler::HandlerOutput;
use crate::sandbox::{SandboxedChild, SpawnRequest};
use astra_core::work::Feedback;
use serde_json::Value;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ChildStdin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What a waiting task hears from its bridge.
#[derive(Debug)]
pub(crate) enum TaskEvent {
    Feedback(Feedback),
    Result(HandlerOutput),
    Error(String),
    Cancelled,
    Uninterruptible,
    /// The bridge is gone; the text says why.
    Died(String),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section below leaves its data consistent; poison carries no meaning.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The last bytes of the bridge's stderr (handler prints, tracebacks), for error messages.
struct Tail {
    bytes: Vec<u8>,
    cap: usize,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.bytes.extend_from_slice(data);
        if self.bytes.len() > self.cap {
            let excess = self.bytes.len() - self.cap;
            self.bytes.drain(..excess);
        }
    }

    fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        let text = text.trim();
        if text.is_empty() {
            "(no stderr output)".to_string()
        } else {
            text.to_string()
        }
    }
}

#[derive(Default)]
struct Tasks {
    waiting: HashMap<u64, Sender<TaskEvent>>,
    /// Set once, first reason wins; no task is accepted afterwards.
    dead: Option<String>,
}

/// What the reader thread and the owners share.
struct Shared {
    label: String,
    pid: i32,
    tasks: Mutex<Tasks>,
    child: Mutex<Option<SandboxedChild>>,
    stdin: Mutex<Option<ChildStdin>>,
    stderr: Mutex<Tail>,
}

impl Shared {
    /// Marks the bridge dead, kills it (SIGKILL to its group, reaped, uid released) and
    /// fails every task still waiting with `reason`. Idempotent.
    fn die(&self, reason: String) {
        let waiting = {
            let mut tasks = lock(&self.tasks);
            if tasks.dead.is_none() {
                tasks.dead = Some(reason.clone());
            }
            std::mem::take(&mut tasks.waiting)
        };
        // Kill before touching stdin: a writer blocked on a full pipe holds the stdin lock
        // and is only released by the reader's death (EPIPE).
        let child = lock(&self.child).take();
        if child.is_some() {
            tracing::info!(bridge = %self.label, pid = self.pid, %reason, "stopping the Python bridge");
        }
        drop(child);
        drop(lock(&self.stdin).take());
        let reason = lock(&self.tasks).dead.clone().unwrap_or(reason);
        for (_, tx) in waiting {
            let _ = tx.send(TaskEvent::Died(reason.clone()));
        }
    }

    fn route(&self, reply: Reply) {
        let (id, event, terminal) = match reply {
            Reply::Feedback {
                id,
                feedback: Ok(fb),
            } => (id, TaskEvent::Feedback(fb), false),
            Reply::Feedback {
                id,
                feedback: Err(e),
            } => {
                tracing::warn!(bridge = %self.label, task = id, error = %e, "dropping a feedback frame the scheduler would reject");
                return;
            }
            Reply::Result { id, output } => (id, TaskEvent::Result(output), true),
            Reply::Error {
                id,
                message,
                traceback,
            } => {
                if !traceback.is_empty() {
                    tracing::debug!(bridge = %self.label, task = id, %traceback, "Python handler raised");
                }
                (id, TaskEvent::Error(message), true)
            }
            Reply::Cancelled { id } => (id, TaskEvent::Cancelled, true),
            Reply::Uninterruptible { id } => (id, TaskEvent::Uninterruptible, false),
            Reply::Ready { .. } | Reply::Fatal(_) => {
                tracing::warn!(bridge = %self.label, "ignoring a second ready/fatal line from the bridge");
                return;
            }
        };
        let mut tasks = lock(&self.tasks);
        let sender = if terminal {
            tasks.waiting.remove(&id)
        } else {
            tasks.waiting.get(&id).cloned()
        };
        drop(tasks);
        match sender {
            // A send error means the task stopped waiting (timed out); the reply is moot.
            Some(tx) => {
                let _ = tx.send(event);
            }
            None => {
                tracing::debug!(bridge = %self.label, task = id, "reply for a task nobody waits for")
            }
        }
    }
}

/// A handle on one bridge process. Dropping the last handle kills the process.
pub(crate) struct Bridge {
    shared: Arc<Shared>,
    next_id: AtomicU64,
    home: PathBuf,
    python: String,
}

/// A task sent to the bridge; its events arrive on `events`.
pub(crate) struct Submitted {
    pub(crate) id: u64,
    pub(crate) events: Receiver<TaskEvent>,
}

/// Everything needed to start one bridge.
pub(crate) struct Launch<'a> {
    pub(crate) spawner: &'a Spawner,
    pub(crate) python: &'a Path,
    pub(crate) script: &'a Path,
    pub(crate) shims: &'a Path,
    pub(crate) package_dir: &'a Path,
    pub(crate) home: PathBuf,
    pub(crate) label: String,
    pub(crate) config: &'a PythonConfig,
}

impl Bridge {
    /// Starts the process and waits for its `ready` line.
    pub(crate) fn start(launch: Launch<'_>) -> Result<Bridge, PythonError> {
        let Launch {
            spawner,
            python,
            script,
            shims,
            package_dir,
            home,
            label,
            config,
        } = launch;
        let fail = |reason: String| PythonError::Start {
            package: label.clone(),
            reason,
        };
        let req = SpawnRequest {
            program: python.to_path_buf(),
            args: vec![
                "-I".into(),
                "-B".into(),
                script.into(),
                "--package-dir".into(),
                package_dir.into(),
                "--shims".into(),
                shims.into(),
                "--max-message".into(),
                config.max_message_bytes.to_string().into(),
            ],
            env: vec![("PYTHONUNBUFFERED".into(), "1".into())],
            cwd: home.clone(),
            feedback_pipe: true,
        };
        let mut child = match spawner.spawn(req)? {
            Ok(child) => child,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&home);
                return Err(fail(e.to_string()));
            }
        };
        let pid = child.pid();
        let (stdout, stderr, replies) = (
            child.stdout.take(),
            child.stderr.take(),
            child.feedback.take(),
        );
        let shared = Arc::new(Shared {
            label: label.clone(),
            pid,
            tasks: Mutex::new(Tasks::default()),
            stdin: Mutex::new(child.stdin.take()),
            child: Mutex::new(Some(child)),
            stderr: Mutex::new(Tail {
                bytes: Vec::new(),
                cap: config.stderr_tail_bytes,
            }),
        });
        let abort = |reason: String| {
            shared.die(reason.clone());
            let _ = std::fs::remove_dir_all(&home);
            fail(reason)
        };

        let (drained_tx, drained_rx) = mpsc::channel::<()>();
        for (name, pipe) in [
            (
                "stdout",
                stdout.map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
            (
                "stderr",
                stderr.map(|p| Box::new(p) as Box<dyn Read + Send>),
            ),
        ] {
            let Some(pipe) = pipe else { continue };
            let shared = shared.clone();
            let done = drained_tx.clone();
            let spawned = std::thread::Builder::new()
                .name("astra-py-log".into())
                .spawn(move || {
                    drain_log(&shared, name, pipe);
                    let _ = done.send(());
                });
            if let Err(e) = spawned {
                return Err(abort(format!("cannot start a log reader thread: {e}")));
            }
        }
        drop(drained_tx);

        let Some(replies) = replies else {
            return Err(abort("the sandbox opened no protocol pipe".into()));
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader_shared = shared.clone();
        let max = config.max_message_bytes;
        let spawned = std::thread::Builder::new()
            .name("astra-py-reader".into())
            .spawn(move || read_replies(&reader_shared, replies, max, ready_tx, drained_rx));
        if let Err(e) = spawned {
            return Err(abort(format!(
                "cannot start the protocol reader thread: {e}"
            )));
        }

        match ready_rx.recv_timeout(config.startup_timeout) {
            Ok(Ok(python)) => {
                tracing::info!(bridge = %label, pid, %python, "Python bridge ready");
                Ok(Bridge {
                    shared,
                    next_id: AtomicU64::new(1),
                    home,
                    python,
                })
            }
            Ok(Err(reason)) => Err(abort(reason)),
            Err(_) => {
                let tail = lock(&shared.stderr).text();
                Err(abort(format!(
                    "it did not report ready within {} ms; stderr: {tail}",
                    config.startup_timeout.as_millis()
                )))
            }
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.shared.pid
    }

    pub(crate) fn python_version(&self) -> &str {
        &self.python
    }

    /// Why the bridge is unusable, once it is.
    pub(crate) fn dead(&self) -> Option<String> {
        lock(&self.shared.tasks).dead.clone()
    }

    /// Gives a task's data dir to the bridge's uid for the task's duration.
    pub(crate) fn lend_dir(&self, dir: &Path) -> std::io::Result<()> {
        match lock(&self.shared.child).as_ref() {
            Some(child) => child.lend_dir(dir),
            None => Ok(()),
        }
    }

    pub(crate) fn reclaim_dir(&self, dir: &Path) {
        if let Some(child) = lock(&self.shared.child).as_ref() {
            child.reclaim_dir(dir);
        }
    }

    /// Sends a task; `Err` carries why the bridge cannot take it.
    pub(crate) fn submit(&self, entrypoint: &str, context: &Value) -> Result<Submitted, String> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let (tx, events) = mpsc::channel();
        {
            let mut tasks = lock(&self.shared.tasks);
            if let Some(reason) = &tasks.dead {
                return Err(reason.clone());
            }
            tasks.waiting.insert(id, tx);
        }
        let line = protocol::task_request(id, entrypoint, context);
        if line.len() > MAX_REQUEST_BYTES {
            self.forget(id);
            return Err(format!(
                "the task context is {} bytes as JSON, over the limit of {MAX_REQUEST_BYTES} bytes",
                line.len()
            ));
        }
        if let Err(e) = self.write(&line) {
            // The reader usually sees the death first and says more; this covers a bridge
            // that is alive but no longer reads its requests.
            self.shared.die(format!(
                "cannot send a task to the Python bridge for {} (pid {}): {e}",
                self.shared.label, self.shared.pid
            ));
        }
        Ok(Submitted { id, events })
    }

    fn write(&self, line: &[u8]) -> std::io::Result<()> {
        let mut stdin = lock(&self.shared.stdin);
        match stdin.as_mut() {
            Some(w) => w.write_all(line).and_then(|()| w.flush()),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the bridge's stdin is closed",
            )),
        }
    }

    /// Asks the bridge to cancel task `id` (best effort: a dead bridge needs no cancel).
    pub(crate) fn cancel(&self, id: u64) {
        if let Err(e) = self.write(&protocol::cancel_request(id)) {
            tracing::debug!(bridge = %self.shared.label, task = id, error = %e, "could not send a cancel");
        }
    }

    /// Stops waiting for task `id` (its late replies are dropped).
    pub(crate) fn forget(&self, id: u64) {
        lock(&self.shared.tasks).waiting.remove(&id);
    }

    /// Kills the process now; other tasks in it fail with `reason`.
    pub(crate) fn kill(&self, reason: String) {
        self.shared.die(reason);
    }
}

/// Largest request line (the task context is mostly the dispatch parameters, which the
/// scheduler's frame limit already bounds).
const MAX_REQUEST_BYTES: usize = 64 << 20;

impl Drop for Bridge {
    fn drop(&mut self) {
        self.shared.die(format!(
            "the Python bridge for {} was retired",
            self.shared.label
        ));
        if let Err(e) = std::fs::remove_dir_all(&self.home) {
            tracing::debug!(home = %self.home.display(), error = %e, "could not remove a bridge home");
        }
    }
}

/// Logs the bridge's stdout/stderr (handler prints, tracebacks) line by line and keeps a tail.
fn drain_log(shared: &Shared, stream: &str, pipe: Box<dyn Read + Send>) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(16 * 1024).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                lock(&shared.stderr).push(&line);
                let text = String::from_utf8_lossy(&line);
                tracing::debug!(bridge = %shared.label, pid = shared.pid, stream, "{}", text.trim_end());
            }
        }
    }
}

/// Reads one reply line of at most `max` bytes. `Ok(None)` at end of file.
fn read_line(
    reader: &mut impl BufRead,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<Option<()>, String> {
    buf.clear();
    let n = reader
        .take(max as u64 + 1)
        .read_until(b'\n', buf)
        .map_err(|e| format!("reading its protocol pipe failed: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > max {
        return Err(format!("it wrote a protocol line longer than {max} bytes"));
    }
    Ok(Some(()))
}

/// The reader thread: the `ready` handshake, then routing until the pipe closes.
fn read_replies(
    shared: &Arc<Shared>,
    pipe: File,
    max: usize,
    ready: Sender<Result<String, String>>,
    drained: Receiver<()>,
) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    let mut ready = Some(ready);
    let failure = loop {
        match read_line(&mut reader, max, &mut buf) {
            Ok(Some(())) => {}
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let reply = match protocol::parse_reply(&buf) {
            Ok(r) => r,
            Err(e) => {
                let text = String::from_utf8_lossy(&buf);
                let excerpt: String = text.chars().take(200).collect();
                break Some(format!(
                    "it broke the protocol: {e}; the line starts with {excerpt:?}"
                ));
            }
        };
        match (ready.take(), reply) {
            (Some(tx), Reply::Ready { python, protocol }) if protocol == PROTOCOL => {
                let _ = tx.send(Ok(python));
            }
            (Some(_), Reply::Ready { protocol, .. }) => {
                break Some(format!(
                    "it speaks protocol {protocol}, expected {PROTOCOL} (a stale bridge script?)"
                ));
            }
            (Some(_), Reply::Fatal(reason)) => break Some(reason),
            (Some(_), other) => break Some(format!("it sent {other:?} before ready")),
            (None, reply) => shared.route(reply),
        }
    };

    // The process is dead or misbehaving. Collect its exit status when it exited by itself,
    // so the message says what happened (e.g. killed by SIGXCPU, a handler called os._exit).
    let child = lock(&shared.child).take();
    let Some(mut child) = child else {
        // Someone killed it on purpose (`die`), which already told the tasks why.
        if let Some(tx) = ready {
            let _ = tx.send(Err("it was stopped while starting".into()));
        }
        return;
    };
    let status = match failure {
        // Misbehaving: no grace, dropping the child SIGKILLs its group.
        Some(_) => None,
        // It closed the pipe, normally by exiting: wait briefly for the status.
        None => Some(
            child
                .supervise(Some(Instant::now() + Duration::from_secs(1)), || false)
                .status,
        ),
    };
    drop(child);
    // Give the log readers a moment to collect the last words (a traceback).
    let end = Instant::now() + Duration::from_millis(500);
    while drained
        .recv_timeout(end.saturating_duration_since(Instant::now()))
        .is_ok()
    {}
    let tail = lock(&shared.stderr).text();
    let what = match (failure, status) {
        (Some(e), _) => format!("{e}; the bridge was killed"),
        (None, Some(status)) => format!("the bridge process {status}"),
        (None, None) => "its protocol pipe closed".to_string(),
    };
    let reason = format!(
        "the Python bridge for {} (pid {}) stopped: {what}; stderr: {tail}",
        shared.label, shared.pid
    );
    if let Some(tx) = ready {
        let _ = tx.send(Err(reason.clone()));
    }
    shared.die(reason);
}
