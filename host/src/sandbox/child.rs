//! A running sandboxed process: waiting with a deadline or a stop request, SIGTERM → grace
//! → SIGKILL escalation on the whole process group, and cleanup that leaves no process,
//! orphan or zombie of the task behind.

use super::spawn::{hand_over_workdir, restore_workdir};
use super::sys::{self, ExitStatus};
use super::uid::UidLease;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often `supervise` checks its stop condition.
const POLL: Duration = Duration::from_millis(10);
/// Upper bound for the leader to die after SIGKILL and for sweeping its group / uid.
const KILL_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// The deadline passed.
    Deadline,
    /// The caller's stop condition became true (cancellation).
    Requested,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervised {
    pub status: ExitStatus,
    /// Set when the sandbox stopped the process rather than it exiting on its own.
    pub stopped: Option<StopCause>,
}

pub struct SandboxedChild {
    pid: i32,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
    /// Read end of the fd-3 feedback pipe, when requested.
    pub feedback: Option<File>,
    exit_rx: Receiver<std::io::Result<ExitStatus>>,
    status: Option<ExitStatus>,
    lease: Option<UidLease>,
    workdir: Option<PathBuf>,
    uid: Option<u32>,
    kill_grace: Duration,
    cleaned: bool,
}

impl SandboxedChild {
    pub(crate) fn new(
        mut child: Child,
        feedback: Option<File>,
        lease: Option<UidLease>,
        workdir: Option<PathBuf>,
        uid: Option<u32>,
        kill_grace: Duration,
    ) -> Self {
        // Pids fit in i32 on Linux (pid_max <= 2^22).
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        let (tx, exit_rx) = mpsc::channel();
        // A dedicated waiter so the status is collected the moment the leader exits; we
        // wait on the raw pid ourselves (std's Child is never waited on), which keeps the
        // leader's status from being stolen by the group reaping in `cleanup`.
        let waiter = std::thread::Builder::new()
            .name("astra-sandbox-wait".into())
            .spawn(move || {
                let _ = tx.send(sys::wait_pid(pid));
            });
        if let Err(e) = waiter {
            tracing::error!(pid, error = %e, "could not start the waiter thread; the task will be killed");
        }
        SandboxedChild {
            pid,
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            feedback,
            exit_rx,
            status: None,
            lease,
            workdir,
            uid,
            kill_grace,
            cleaned: false,
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The task's process group (the leader called setsid).
    pub fn pgid(&self) -> i32 {
        self.pid
    }

    /// The dedicated uid the task runs as, if any.
    pub fn uid(&self) -> Option<u32> {
        self.uid
    }

    /// Lends `dir` to the child's dedicated user the way the working directory is lent
    /// (owner, 0700, the two parents traversable), for a long-lived child that serves
    /// several tasks, each with its own data dir (the Python bridge). A no-op when the child
    /// runs as the worker's own user. Undo with [`SandboxedChild::reclaim_dir`].
    pub fn lend_dir(&self, dir: &Path) -> std::io::Result<()> {
        match self.uid {
            Some(uid) => hand_over_workdir(dir, uid, None),
            None => Ok(()),
        }
    }

    /// Takes a directory lent with [`SandboxedChild::lend_dir`] back (files inside keep
    /// their owner but are no longer reachable by it).
    pub fn reclaim_dir(&self, dir: &Path) {
        if self.uid.is_some() {
            restore_workdir(dir);
        }
    }

    fn record(&mut self, r: std::io::Result<ExitStatus>) -> ExitStatus {
        let status = r.unwrap_or_else(|e| {
            tracing::error!(pid = self.pid, error = %e, "lost the exit status of a sandboxed process");
            ExitStatus::Signaled(libc::SIGKILL)
        });
        self.status = Some(status);
        status
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.status {
            return Some(s);
        }
        match self.exit_rx.recv_timeout(timeout) {
            Ok(r) => Some(self.record(r)),
            Err(RecvTimeoutError::Timeout) => None,
            // No waiter thread: treat as gone, cleanup still kills the group.
            Err(RecvTimeoutError::Disconnected) => {
                Some(self.record(Err(std::io::Error::other("waiter thread missing"))))
            }
        }
    }

    /// Waits for the process to exit, stopping it (SIGTERM → grace → SIGKILL) once
    /// `deadline` passes or `should_stop` returns true. Always cleans up the whole task.
    pub fn supervise(
        &mut self,
        deadline: Option<Instant>,
        should_stop: impl Fn() -> bool,
    ) -> Supervised {
        loop {
            let wait = deadline.map_or(POLL, |d| {
                d.saturating_duration_since(Instant::now()).min(POLL)
            });
            if let Some(status) = self.wait_exit(wait) {
                self.cleanup();
                return Supervised {
                    status,
                    stopped: None,
                };
            }
            let cause = if should_stop() {
                Some(StopCause::Requested)
            } else if deadline.is_some_and(|d| Instant::now() >= d) {
                Some(StopCause::Deadline)
            } else {
                None
            };
            if let Some(cause) = cause {
                let status = self.terminate();
                return Supervised {
                    status,
                    stopped: Some(cause),
                };
            }
        }
    }

    /// SIGTERM to the group, up to `kill_grace` for it to exit, then SIGKILL; cleans up.
    pub fn terminate(&mut self) -> ExitStatus {
        if self.status.is_none() {
            if let Err(e) = sys::kill_group(self.pgid(), libc::SIGTERM) {
                tracing::warn!(pgid = self.pgid(), error = %e, "SIGTERM to task process group failed");
            }
            if self.wait_exit(self.kill_grace).is_none() {
                self.kill_now();
            }
        }
        self.cleanup();
        self.status.unwrap_or(ExitStatus::Signaled(libc::SIGKILL))
    }

    fn kill_now(&mut self) {
        if let Err(e) = sys::kill_group(self.pgid(), libc::SIGKILL) {
            tracing::warn!(pgid = self.pgid(), error = %e, "SIGKILL to task process group failed");
        }
        if self.wait_exit(KILL_WAIT).is_none() {
            tracing::error!(
                pid = self.pid,
                "sandboxed process survived SIGKILL for 5 s (uninterruptible sleep?)"
            );
        }
    }

    /// Kills whatever is left of the task (background jobs, escaped daemons), reaps it, and
    /// takes back the working directory and uid. Idempotent.
    fn cleanup(&mut self) {
        if self.cleaned {
            return;
        }
        self.cleaned = true;
        let pgid = self.pgid();
        let end = Instant::now() + KILL_WAIT;
        // A task's processes never outlive it.
        let _ = sys::kill_group(pgid, libc::SIGKILL);
        if let Some(uid) = self.uid {
            // SAFETY (of the reasoning): the uid is dedicated to this task, so everything it
            // owns belongs to the task, including processes that left the process group.
            // SAFETY: getpid has no preconditions.
            let me = unsafe { libc::getpid() };
            loop {
                if let Err(e) = sys::kill_all_of_uid(uid) {
                    tracing::warn!(uid, error = %e, "sweeping the task uid failed");
                }
                let left = sys::processes_of_uid(uid);
                for &(pid, ppid) in &left {
                    if ppid == me {
                        sys::reap_pid_nonblocking(pid);
                    }
                }
                if left.is_empty() || Instant::now() >= end {
                    if !left.is_empty() {
                        tracing::error!(
                            uid,
                            remaining = left.len(),
                            "task processes still present after cleanup"
                        );
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        // Reap group members re-parented to us (we are a subreaper) that are now dead.
        while sys::reap_group_nonblocking(pgid) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some(dir) = self.workdir.take() {
            restore_workdir(&dir);
        }
        // Only now may another task get this uid.
        self.lease = None;
    }
}

impl Drop for SandboxedChild {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill_now();
        }
        self.cleanup();
    }
}
