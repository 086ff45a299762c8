//! Out-of-process handlers: an executable from a package directory, run in the sandbox.
//!
//! Protocol with the child: the execution context arrives as one JSON object on stdin
//! (`ExecutionContext::to_json`); the child writes its result dict as one JSON object on
//! stdout, and may write feedback as JSON lines (each a `Feedback` object) on fd 3.

use super::context::ExecutionContext;
use super::handler::{Handler, HandlerError, HandlerOutput};
use crate::sandbox::{ExitStatus, Sandbox, SpawnRequest, StopCause};
use astra_core::work::task::codes;
use astra_core::work::Feedback;
use serde_json::Value;
use std::ffi::OsString;
use std::io::{BufRead, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much of a child's output is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    /// Largest accepted result on stdout; more fails the task.
    pub max_result_bytes: usize,
    /// Tail of stderr kept for error messages.
    pub stderr_tail_bytes: usize,
    /// Longest single feedback line; longer lines are dropped.
    pub max_feedback_line_bytes: usize,
    /// Total feedback accepted per task; the rest is read and dropped.
    pub max_feedback_bytes: usize,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            max_result_bytes: 16 << 20,
            stderr_tail_bytes: 4096,
            max_feedback_line_bytes: 1 << 20,
            max_feedback_bytes: 16 << 20,
        }
    }
}

/// After the leader exits and its group is killed, pipes close at once; this only bounds
/// the wait for readers when something outside the sandbox's reach still holds a pipe.
const READER_WAIT: Duration = Duration::from_secs(2);

/// Runs `program args...` in the sandbox for each task.
pub struct ProcessHandler {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    sandbox: Arc<Sandbox>,
    limits: OutputLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum ProcessHandlerError {
    #[error(
        "handler program {0} must be an absolute path (resolve it against the package directory)"
    )]
    RelativeProgram(PathBuf),
}

impl ProcessHandler {
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
        sandbox: Arc<Sandbox>,
    ) -> Result<Self, ProcessHandlerError> {
        let program = program.into();
        if !program.is_absolute() {
            return Err(ProcessHandlerError::RelativeProgram(program));
        }
        Ok(ProcessHandler {
            program,
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            sandbox,
            limits: OutputLimits::default(),
        })
    }

    /// Environment variables passed to the child in addition to the sandbox's allowlist.
    pub fn with_env(mut self, env: impl IntoIterator<Item = (String, String)>) -> Self {
        self.env.extend(env);
        self
    }

    pub fn with_limits(mut self, limits: OutputLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// Bytes read from a pipe, within a cap.
struct Captured {
    bytes: Vec<u8>,
    overflowed: bool,
}

/// Reads everything; keeps the first `cap` bytes (or the last, for `tail`).
fn capture(mut r: impl Read, cap: usize, tail: bool) -> Captured {
    let mut bytes = Vec::new();
    let mut overflowed = false;
    let mut buf = [0u8; 8192];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        bytes.extend_from_slice(&buf[..n]);
        if bytes.len() > cap {
            overflowed = true;
            if tail {
                let excess = bytes.len() - cap;
                bytes.drain(..excess);
            } else {
                bytes.truncate(cap);
            }
        }
    }
    Captured { bytes, overflowed }
}

/// Forwards fd-3 JSON lines as feedback, within the size limits.
fn forward_feedback(
    r: impl Read,
    ctx_feedback: super::context::FeedbackHandle,
    limits: OutputLimits,
) {
    let mut reader = std::io::BufReader::new(r);
    let mut total = 0usize;
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bounded read of one line: take() stops at the cap, the rest of an over-long
        // line is skipped below.
        let n = match (&mut reader)
            .take(limits.max_feedback_line_bytes as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        total = total.saturating_add(n);
        if line.len() > limits.max_feedback_line_bytes && !line.ends_with(b"\n") {
            tracing::warn!(
                limit = limits.max_feedback_line_bytes,
                "dropping an over-long feedback line"
            );
            let mut sink = Vec::new();
            loop {
                sink.clear();
                match (&mut reader).take(64 * 1024).read_until(b'\n', &mut sink) {
                    Ok(0) | Err(_) => return,
                    Ok(m) => {
                        total = total.saturating_add(m);
                        if sink.ends_with(b"\n") {
                            break;
                        }
                    }
                }
            }
            continue;
        }
        if total > limits.max_feedback_bytes {
            continue; // keep draining so the child never blocks on a full pipe
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Feedback>(text.trim()) {
            Ok(fb) => {
                ctx_feedback.send(fb);
            }
            Err(e) => {
                tracing::warn!(error = %e, "dropping a feedback line that is not a Feedback JSON object")
            }
        }
    }
}

fn stderr_excerpt(c: &Captured) -> String {
    let text = String::from_utf8_lossy(&c.bytes);
    let text = text.trim();
    if text.is_empty() {
        "(no stderr output)".to_string()
    } else if c.overflowed {
        format!("...{text}")
    } else {
        text.to_string()
    }
}

fn join<T>(rx: &mpsc::Receiver<T>, until: Instant) -> Option<T> {
    rx.recv_timeout(until.saturating_duration_since(Instant::now()))
        .ok()
}

fn spawn_reader<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("astra-proc-io".into())
        .spawn(move || {
            let _ = tx.send(f());
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start a pipe reader thread");
    }
    rx
}

impl Handler for ProcessHandler {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        let req = SpawnRequest {
            program: self.program.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
            cwd: ctx.data_dir.clone(),
            feedback_pipe: true,
        };
        let mut child = self
            .sandbox
            .spawn(&req)
            .map_err(|e| HandlerError::new(e.to_string()))?;

        let input = ctx.to_json().to_string();
        let stdin = child.stdin.take();
        // The child may never read stdin; a writer thread keeps that from blocking us, and
        // a write error (child exited, EPIPE) just ends it.
        let _stdin_done = spawn_reader(move || {
            if let Some(mut w) = stdin {
                let _ = w.write_all(input.as_bytes());
            }
        });
        let limits = self.limits;
        let stdout = child.stdout.take();
        let out_rx =
            spawn_reader(move || stdout.map(|r| capture(r, limits.max_result_bytes, false)));
        let stderr = child.stderr.take();
        let err_rx =
            spawn_reader(move || stderr.map(|r| capture(r, limits.stderr_tail_bytes, true)));
        let feedback = child.feedback.take();
        let fb_handle = ctx.feedback.clone();
        let fb_rx = spawn_reader(move || {
            if let Some(r) = feedback {
                forward_feedback(r, fb_handle, limits)
            }
        });

        let outcome = child.supervise(Some(ctx.deadline), || ctx.cancel.is_cancelled());
        let until = Instant::now() + READER_WAIT;
        let stdout = join(&out_rx, until).flatten();
        let stderr = join(&err_rx, until).flatten().unwrap_or(Captured {
            bytes: Vec::new(),
            overflowed: false,
        });
        // Feedback is fully forwarded before the result, so it precedes the terminal frame.
        let _ = join(&fb_rx, until);
        drop(child);

        match outcome.stopped {
            Some(StopCause::Deadline) => {
                return Err(HandlerError::with_code(
                    codes::RUNNER_TIMEOUT,
                    "handler process stopped at the task deadline",
                ))
            }
            Some(StopCause::Requested) => {
                return Err(HandlerError::with_code(
                    codes::RUNNER_CANCELLED,
                    "handler process stopped on cancellation",
                ))
            }
            None => {}
        }
        if outcome.status != ExitStatus::Exited(0) {
            return Err(HandlerError::new(format!(
                "handler process {} {}; stderr: {}",
                self.program.display(),
                outcome.status,
                stderr_excerpt(&stderr)
            )));
        }
        let Some(stdout) = stdout else {
            return Err(HandlerError::new(
                "the handler process's stdout could not be read",
            ));
        };
        if stdout.overflowed {
            return Err(HandlerError::new(format!(
                "handler process wrote more than {} bytes on stdout; results must be smaller (use artifacts for bulk data)",
                self.limits.max_result_bytes
            )));
        }
        match serde_json::from_slice::<Value>(&stdout.bytes) {
            Ok(Value::Object(dict)) => Ok(dict),
            Ok(other) => Err(HandlerError::new(format!(
                "handler process must write a JSON object on stdout, got {}",
                match other {
                    Value::Null => "null",
                    Value::Bool(_) => "a boolean",
                    Value::Number(_) => "a number",
                    Value::String(_) => "a string",
                    Value::Array(_) => "an array",
                    Value::Object(_) => "an object",
                }
            ))),
            Err(e) => Err(HandlerError::new(format!(
                "handler process wrote invalid JSON on stdout ({e}); {} bytes received; stderr: {}",
                stdout.bytes.len(),
                stderr_excerpt(&stderr)
            ))),
        }
    }

    fn cancel_grace(&self) -> Duration {
        // SIGTERM grace, then up to a few seconds for SIGKILL, sweeping and reaping.
        self.sandbox.config().kill_grace + Duration::from_secs(3)
    }
}
