//! Starting a sandboxed process: scrubbed environment, own session and process group,
//! rlimits, optional fresh network namespace, privilege drop, feedback pipe on fd 3.

use super::child::SandboxedChild;
use super::config::{NetworkPolicy, SandboxConfig};
use super::error::SandboxError;
use super::report::{EffectiveUser, IsolationReport};
use super::sys;
use super::uid::{UidLease, UidPool};
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// The only PATH a child sees: the worker's own PATH may point at writable or private places.
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Variables passed through from the worker's environment when set.
const PASSTHROUGH_ENV: [&str; 3] = ["LANG", "LC_ALL", "TZ"];
/// The child's end of the feedback pipe.
pub const FEEDBACK_FD: RawFd = 3;

/// One process to start.
#[derive(Debug, Clone)]
pub struct SpawnRequest {
    /// Absolute path of the executable.
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Extra environment variables, on top of PATH, HOME (= cwd), LANG, LC_ALL, TZ.
    pub env: Vec<(String, String)>,
    /// Working directory and HOME: the task's data dir. Handed to the sandbox user for the
    /// life of the process.
    pub cwd: PathBuf,
    /// Open a pipe on the child's fd 3 for JSON-lines feedback.
    pub feedback_pipe: bool,
}

/// Spawns processes under one fixed policy; create one per worker and share it.
pub struct Sandbox {
    config: SandboxConfig,
    report: IsolationReport,
    pool: Option<Arc<UidPool>>,
}

impl Sandbox {
    /// Probes what the machine allows (once) and applies process-wide settings (subreaper).
    pub fn new(config: SandboxConfig) -> Sandbox {
        let report = IsolationReport::probe(&config);
        let pool = match report.user {
            EffectiveUser::Pool { first, count } => Some(UidPool::new(first, count)),
            _ => None,
        };
        tracing::info!(isolation = %report, "sandbox ready");
        Sandbox {
            config,
            report,
            pool,
        }
    }

    /// What is really active, for the startup log.
    pub fn isolation_report(&self) -> &IsolationReport {
        &self.report
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    pub fn spawn(&self, req: &SpawnRequest) -> Result<SandboxedChild, SandboxError> {
        if !req.program.is_absolute() {
            return Err(SandboxError::RelativeProgram(req.program.clone()));
        }
        let isolate_net = match self.config.network {
            NetworkPolicy::Allowed => false,
            NetworkPolicy::Isolated if self.report.network_isolated => true,
            NetworkPolicy::Isolated if self.config.require_network_isolation => {
                return Err(SandboxError::NetworkIsolationUnavailable(
                    self.report.network_detail.clone(),
                ))
            }
            NetworkPolicy::Isolated => false,
        };

        let lease: Option<UidLease> = match &self.pool {
            Some(pool) => Some(pool.lease()?),
            None => None,
        };
        let ids = match (&lease, &self.report.user) {
            (Some(l), _) => Some((l.uid, l.uid)),
            (None, EffectiveUser::Fixed { uid, gid }) => Some((*uid, *gid)),
            _ => None,
        };
        if let Some((uid, gid)) = ids {
            hand_over_workdir(&req.cwd, uid, Some(gid)).map_err(|source| {
                SandboxError::Workdir {
                    path: req.cwd.clone(),
                    source,
                }
            })?;
        }

        let feedback = if req.feedback_pipe {
            Some(cloexec_pipe().map_err(SandboxError::Pipe)?)
        } else {
            None
        };

        let mut cmd = Command::new(&req.program);
        cmd.args(&req.args)
            .env_clear()
            .env("PATH", SAFE_PATH)
            .env("HOME", &req.cwd)
            .current_dir(&req.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in PASSTHROUGH_ENV {
            if let Some(v) = std::env::var_os(name) {
                cmd.env(name, v);
            }
        }
        for (k, v) in &req.env {
            cmd.env(k, v);
        }

        let limits = rlimits(&self.config.limits);
        let feedback_write: Option<RawFd> = feedback.as_ref().map(|(_, w)| w.as_raw_fd());
        // SAFETY: the closure runs in the forked child before exec. It only makes
        // async-signal-safe syscalls on values computed before the fork (no allocation, no
        // locks) and reports failures as io::Error, which std turns into a spawn error.
        unsafe {
            cmd.pre_exec(move || child_setup(isolate_net, &limits, feedback_write, ids));
        }

        let spawned = cmd.spawn();
        // The parent must not keep the write end, or the reader would never see EOF.
        let feedback_read = feedback.map(|(r, _w)| File::from(r));
        let child = spawned.map_err(|source| {
            if let Some((_, _)) = ids {
                restore_workdir(&req.cwd);
            }
            SandboxError::Spawn {
                program: req.program.clone(),
                source,
            }
        })?;
        Ok(SandboxedChild::new(
            child,
            feedback_read,
            lease,
            ids.map(|_| req.cwd.clone()),
            ids.map(|(uid, _)| uid),
            self.config.kill_grace,
        ))
    }
}

/// (resource, soft, hard) triples, clamped to the worker's own hard limits so an
/// unprivileged worker does not fail with EPERM trying to raise them.
fn rlimits(l: &super::config::SandboxLimits) -> Vec<(libc::__rlimit_resource_t, u64, u64)> {
    let mut out = vec![(libc::RLIMIT_CORE, 0, 0)];
    // CPU: SIGXCPU at the soft limit, SIGKILL one second later at the hard limit.
    if let Some(v) = l.cpu_seconds {
        out.push((libc::RLIMIT_CPU, v, v.saturating_add(1)));
    }
    for (res, v) in [
        (libc::RLIMIT_AS, l.address_space_bytes),
        (libc::RLIMIT_NOFILE, l.open_files),
        (libc::RLIMIT_NPROC, l.processes),
        (libc::RLIMIT_FSIZE, l.file_size_bytes),
    ] {
        if let Some(v) = v {
            out.push((res, v, v));
        }
    }
    out.into_iter()
        .map(|(res, soft, hard)| {
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: valid out-pointer to a local.
            let ok = unsafe { libc::getrlimit(res, &mut cur) } == 0;
            let max = if ok { cur.rlim_max } else { u64::MAX };
            (res, soft.min(max), hard.min(max))
        })
        .collect()
}

/// Runs in the child between fork and exec; see the SAFETY note at the call site.
fn child_setup(
    isolate_net: bool,
    limits: &[(libc::__rlimit_resource_t, u64, u64)],
    feedback_write: Option<RawFd>,
    ids: Option<(u32, u32)>,
) -> io::Result<()> {
    fn check(r: libc::c_int) -> io::Result<()> {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
    unsafe {
        // Own session and process group: the whole task can be signalled as -pgid.
        check(libc::setsid())?;
        if isolate_net {
            check(libc::unshare(libc::CLONE_NEWNET))?;
        }
        for &(res, soft, hard) in limits {
            check(libc::setrlimit(
                res,
                &libc::rlimit {
                    rlim_cur: soft,
                    rlim_max: hard,
                },
            ))?;
        }
        let first_unmanaged = match feedback_write {
            Some(fd) => {
                if fd == FEEDBACK_FD {
                    // dup2 onto itself keeps CLOEXEC; clear it explicitly.
                    check(libc::fcntl(fd, libc::F_SETFD, 0))?;
                } else {
                    check(libc::dup2(fd, FEEDBACK_FD))?;
                }
                FEEDBACK_FD + 1
            }
            None => FEEDBACK_FD,
        };
        // Nothing else of the worker's leaks into the task (sockets, files, other tasks'
        // pipes). CLOEXEC rather than close keeps std's exec-error pipe working. Failure
        // (kernels < 5.11) is tolerated: Rust opens its fds CLOEXEC anyway.
        libc::syscall(
            libc::SYS_close_range,
            first_unmanaged as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if let Some((uid, gid)) = ids {
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setresgid(gid, gid, gid))?;
            check(libc::setresuid(uid, uid, uid))?;
        }
        // No setuid binary can hand root back to the task.
        check(libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0,
            0,
            0,
        ))?;
        // If the worker dies, its tasks die too (set after the uid change, which clears it).
        check(libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ))?;
    }
    Ok(())
}

fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: valid out-array of two fds; on success both are fresh and owned by us.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both fds are open and not owned elsewhere.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Gives the task directory to the sandbox user (0700) and lets it traverse (not list) the
/// two directories above it (`<data_dir>/<run>`, `<data_dir>`), so `$HOME` resolves.
/// `gid: None` keeps the directory's group (the owner alone has access at 0700).
pub(crate) fn hand_over_workdir(dir: &Path, uid: u32, gid: Option<u32>) -> io::Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), gid)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for ancestor in dir.ancestors().skip(1).take(2) {
        let mode = std::fs::metadata(ancestor)?.permissions().mode();
        if mode & 0o001 == 0 {
            std::fs::set_permissions(
                ancestor,
                std::fs::Permissions::from_mode((mode & 0o7777) | 0o001),
            )?;
        }
    }
    Ok(())
}

/// Takes the task directory back from the sandbox user, so a later task that reuses the uid
/// cannot enter it. Files inside keep their owner but are no longer reachable by it.
pub(crate) fn restore_workdir(dir: &Path) {
    let (uid, gid) = sys::effective_ids();
    if let Err(e) = std::os::unix::fs::lchown(dir, Some(uid), Some(gid)) {
        tracing::warn!(dir = %dir.display(), error = %e, "could not take the task directory back from the sandbox user");
    }
}
