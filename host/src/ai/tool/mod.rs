//! `tool_execution` (splai-worker.md §6.3) through the process sandbox.
//!
//! Inputs: `op` (default `noop`, echoed as `tool`); `command` (split into argv without a
//! shell, see [`argv`]) or else `script` (run as `sh -c <script>`, so `sh` must be
//! allowlisted); optional `timeout_sec` (capped by the configured tool timeout and the task
//! deadline). No command → a successful no-op, as in SPLAI.
//!
//! Better than SPLAI: the program must be on the configured allowlist; it runs in the
//! sandbox (own process group, scrubbed environment with no worker secrets, rlimits, network
//! namespace and per-task uid where available) with the task data dir as cwd and HOME;
//! stdout and stderr are capped; the whole process group is killed at the timeout; a failed
//! command keeps its (capped) output in a FAILED result.

pub mod argv;

use super::artifact;
use super::params::{self, ParamError};
use super::settings::AiSettings;
use crate::runner::{ExecutionContext, Handler, HandlerError, HandlerOutput};
use crate::sandbox::{Sandbox, SandboxConfig, SpawnRequest, StopCause, SAFE_PATH};
use astra_core::work::task::codes;
use serde_json::{json, Map, Value};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// After the process group is gone, pipes close at once; this bounds a pathological wait.
const READER_WAIT: Duration = Duration::from_secs(2);
pub const TOOL_EXIT_CODE: &str = "E.TOOL.EXIT";

pub struct ToolExecution {
    allowlist: Vec<String>,
    timeout: Duration,
    output_cap: usize,
    artifact_root: PathBuf,
    /// Shared sandbox when the caller has one; otherwise made (and probed) on first use.
    sandbox: OnceLock<Arc<Sandbox>>,
}

impl ToolExecution {
    pub fn new(settings: &AiSettings, sandbox: Option<Arc<Sandbox>>) -> Self {
        let cell = OnceLock::new();
        if let Some(s) = sandbox {
            let _ = cell.set(s);
        }
        ToolExecution {
            allowlist: settings.tool_allowlist.clone(),
            timeout: settings.tool_timeout,
            output_cap: settings.tool_output_cap,
            artifact_root: settings.artifact_root.clone(),
            sandbox: cell,
        }
    }

    fn sandbox(&self) -> &Arc<Sandbox> {
        self.sandbox
            .get_or_init(|| Arc::new(Sandbox::new(SandboxConfig::default())))
    }

    /// The absolute program for `name` if the allowlist permits it.
    pub fn resolve(&self, field: &str, name: &str) -> Result<PathBuf, ParamError> {
        let allowed = |n: &str| self.allowlist.iter().any(|a| a == n);
        let not_allowed = || {
            ParamError::new(
                field,
                format!(
                    "program {name:?} is not in the tool allowlist ({}); an operator can add it to ASTRA_WORKER_TOOL_ALLOWLIST",
                    if self.allowlist.is_empty() { "empty".to_string() } else { self.allowlist.join(",") }
                ),
            )
        };
        if name.starts_with('/') {
            return if allowed(name) && is_executable(Path::new(name)) {
                Ok(PathBuf::from(name))
            } else if allowed(name) {
                Err(ParamError::new(
                    field,
                    format!("program {name:?} is allowlisted but not an executable file"),
                ))
            } else {
                Err(not_allowed())
            };
        }
        if name.contains('/') {
            return Err(ParamError::new(
                field,
                format!("program {name:?} must be a bare name or an absolute path"),
            ));
        }
        if !allowed(name) {
            return Err(not_allowed());
        }
        SAFE_PATH
            .split(':')
            .map(|d| Path::new(d).join(name))
            .find(|p| is_executable(p))
            .ok_or_else(|| {
                ParamError::new(
                    field,
                    format!("program {name:?} is allowlisted but not found in {SAFE_PATH}"),
                )
            })
    }

    /// argv and the field it came from, or `None` for the no-op.
    fn argv(&self, p: &Map<String, Value>) -> Result<Option<(String, Vec<String>)>, ParamError> {
        if let Some(cmd) = params::string(p, "command")? {
            let argv = argv::split(&cmd).map_err(|e| ParamError::new("command", e.to_string()))?;
            return Ok(Some(("command".into(), argv)));
        }
        if let Some(script) = params::string(p, "script")? {
            return Ok(Some((
                "script".into(),
                vec!["sh".into(), "-c".into(), script],
            )));
        }
        Ok(None)
    }
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Bytes read from a pipe, keeping the first `cap`.
struct Captured {
    text: String,
    truncated: bool,
}

fn capture(mut r: impl Read, cap: usize) -> Captured {
    let mut bytes = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let room = cap.saturating_sub(bytes.len());
                if n > room {
                    truncated = true;
                }
                bytes.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    Captured {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        truncated,
    }
}

fn reader(r: Option<impl Read + Send + 'static>, cap: usize) -> mpsc::Receiver<Captured> {
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("astra-tool-io".into())
        .spawn(move || {
            let c = r.map_or(
                Captured {
                    text: String::new(),
                    truncated: false,
                },
                |r| capture(r, cap),
            );
            let _ = tx.send(c);
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start a pipe reader thread");
    }
    rx
}

impl Handler for ToolExecution {
    fn run(&self, ctx: &ExecutionContext) -> Result<HandlerOutput, HandlerError> {
        let p = &ctx.params;
        let tool = params::string(p, "op")?.unwrap_or_else(|| "noop".to_string());
        let Some((field, argv)) = self.argv(p)? else {
            let fields = json!({ "tool": tool, "sandboxed": true, "result": "ok" });
            return artifact::finish(
                &self.artifact_root,
                ctx,
                fields.as_object().cloned().unwrap_or_default(),
            )
            .map_err(|e| HandlerError::new(e.to_string()));
        };
        let program = self.resolve(&field, &argv[0])?;
        let max_secs = self.timeout.as_secs().max(1) as usize;
        let timeout =
            Duration::from_secs(params::positive_int(p, "timeout_sec", max_secs, max_secs)? as u64);
        let deadline = (Instant::now() + timeout).min(ctx.deadline);

        let req = SpawnRequest {
            program: program.clone(),
            args: argv[1..].iter().map(Into::into).collect(),
            env: Vec::new(),
            cwd: ctx.data_dir.clone(),
            feedback_pipe: false,
        };
        let started = Instant::now();
        let mut child = self
            .sandbox()
            .spawn(&req)
            .map_err(|e| HandlerError::new(format!("cannot start the tool: {e}")))?;
        drop(child.stdin.take()); // no stdin: reads see EOF
        let out_rx = reader(child.stdout.take(), self.output_cap);
        let err_rx = reader(child.stderr.take(), self.output_cap);
        let outcome = child.supervise(Some(deadline), || ctx.cancel.is_cancelled());
        let until = Instant::now() + READER_WAIT;
        let wait = |rx: &mpsc::Receiver<Captured>| {
            rx.recv_timeout(until.saturating_duration_since(Instant::now()))
                .unwrap_or(Captured {
                    text: String::new(),
                    truncated: true,
                })
        };
        let (stdout, stderr) = (wait(&out_rx), wait(&err_rx));
        drop(child);
        let duration_ms = started.elapsed().as_millis() as u64;

        if outcome.stopped == Some(StopCause::Requested) {
            return Err(HandlerError::with_code(
                codes::RUNNER_CANCELLED,
                "sandbox command stopped on cancellation",
            ));
        }
        let mut fields = Map::new();
        fields.insert("tool".into(), json!(tool));
        fields.insert("sandboxed".into(), json!(true));
        fields.insert("program".into(), json!(program.to_string_lossy()));
        fields.insert("stdout".into(), json!(stdout.text));
        fields.insert("stderr".into(), json!(stderr.text));
        fields.insert("stdout_truncated".into(), json!(stdout.truncated));
        fields.insert("stderr_truncated".into(), json!(stderr.truncated));
        fields.insert("duration_ms".into(), json!(duration_ms));
        let failure = match (outcome.stopped, outcome.status) {
            (Some(_), _) => Some((
                codes::RUNNER_TIMEOUT,
                format!(
                    "sandbox command timed out after {} s",
                    deadline.saturating_duration_since(started).as_secs()
                ),
            )),
            (None, crate::sandbox::ExitStatus::Exited(0)) => None,
            (None, crate::sandbox::ExitStatus::Exited(n)) => Some((
                TOOL_EXIT_CODE,
                format!("sandbox command failed: exit status {n}"),
            )),
            (None, s) => Some((TOOL_EXIT_CODE, format!("sandbox command failed: {s}"))),
        };
        if let crate::sandbox::ExitStatus::Exited(n) = outcome.status {
            fields.insert("exit_code".into(), json!(n));
        }
        match failure {
            None => {
                fields.insert("result".into(), json!("ok"));
                artifact::finish(&self.artifact_root, ctx, fields)
                    .map_err(|e| HandlerError::new(e.to_string()))
            }
            Some((code, message)) => {
                let mut out = HandlerOutput::new();
                out.insert("status".into(), json!("failed"));
                out.insert("error".into(), json!({ "code": code, "message": message }));
                out.insert("outputs".into(), Value::Object(fields));
                Ok(out)
            }
        }
    }

    fn cancel_grace(&self) -> Duration {
        self.sandbox().config().kill_grace + Duration::from_secs(3)
    }
}

#[cfg(test)]
mod tests;
