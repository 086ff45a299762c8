//! Thin, documented wrappers around the libc calls the sandbox needs: signalling and
//! reaping process groups, sweeping a uid, finding a uid's processes, probing namespaces.

use std::io;

/// How a process ended, from `waitpid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

impl ExitStatus {
    pub(crate) fn from_raw(status: libc::c_int) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signaled(libc::WTERMSIG(status))
        } else {
            ExitStatus::Exited(libc::WEXITSTATUS(status))
        }
    }

    pub fn success(&self) -> bool {
        *self == ExitStatus::Exited(0)
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Exited(code) => write!(f, "exited with status {code}"),
            ExitStatus::Signaled(sig) => {
                write!(f, "was killed by signal {sig} ({})", signal_meaning(*sig))
            }
        }
    }
}

/// What a terminating signal usually means for a sandboxed task.
pub fn signal_meaning(sig: i32) -> &'static str {
    match sig {
        libc::SIGXCPU => "SIGXCPU: CPU time limit exceeded",
        libc::SIGXFSZ => "SIGXFSZ: file size limit exceeded",
        libc::SIGKILL => {
            "SIGKILL: killed by the sandbox, the CPU hard limit or the kernel OOM killer"
        }
        libc::SIGTERM => "SIGTERM: terminated",
        libc::SIGSEGV => {
            "SIGSEGV: invalid memory access, possibly a failed allocation under the memory limit"
        }
        libc::SIGABRT => "SIGABRT: aborted, often an allocation failure under the memory limit",
        libc::SIGBUS => "SIGBUS: bus error",
        libc::SIGPIPE => "SIGPIPE: wrote to a closed pipe",
        _ => "terminated by a signal",
    }
}

/// Blocking `waitpid` on one pid, retrying EINTR.
pub(crate) fn wait_pid(pid: libc::pid_t) -> io::Result<ExitStatus> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: plain syscall with a valid out-pointer to a local.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(ExitStatus::from_raw(status));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// Reaps every already-dead child in process group `pgid` without blocking. Returns
/// `true` while live children of ours remain in the group.
pub(crate) fn reap_group_nonblocking(pgid: libc::pid_t) -> bool {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: plain syscall with a valid out-pointer; -pgid selects only children in
        // that group, which the sandbox owns (the leader was already reaped by its waiter).
        let r = unsafe { libc::waitpid(-pgid, &mut status, libc::WNOHANG) };
        match r {
            0 => return true,
            r if r > 0 => continue,
            _ => return false, // ECHILD: nothing of ours left in the group
        }
    }
}

/// Reaps one specific child if it is dead, without blocking.
pub(crate) fn reap_pid_nonblocking(pid: libc::pid_t) {
    let mut status: libc::c_int = 0;
    // SAFETY: plain syscall with a valid out-pointer; only called for pids whose parent is us.
    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
}

/// `kill(-pgid, sig)`; `Ok(false)` when the group no longer exists.
pub(crate) fn kill_group(pgid: libc::pid_t, sig: libc::c_int) -> io::Result<bool> {
    // SAFETY: plain syscall; pgid > 1 is checked so this can never signal every process.
    if pgid <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal process group <= 1",
        ));
    }
    let r = unsafe { libc::kill(-pgid, sig) };
    if r == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Whether any process (including a zombie) is still in group `pgid`.
pub fn group_exists(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks existence and permission.
    pgid > 1 && unsafe { libc::kill(-pgid, 0) } == 0
}

/// Sends SIGKILL to every process owned by `uid` (root only): a forked helper drops to that
/// uid and calls `kill(-1, SIGKILL)`, which reaches exactly the processes that uid may
/// signal, i.e. its own, however they were forked, re-grouped or daemonised.
pub(crate) fn kill_all_of_uid(uid: u32) -> io::Result<()> {
    if uid == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to sweep uid 0",
        ));
    }
    // SAFETY: after fork in a multi-threaded process the child may only make
    // async-signal-safe calls: it uses raw syscalls and `_exit` exclusively, touches no
    // locks or allocator, and never returns into Rust code.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            if libc::syscall(libc::SYS_setresgid, uid, uid, uid) != 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0
            {
                libc::_exit(1);
            }
            libc::syscall(libc::SYS_kill, -1, libc::SIGKILL);
            libc::_exit(0);
        }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    match wait_pid(pid)? {
        ExitStatus::Exited(0) => Ok(()),
        other => Err(io::Error::other(format!("uid sweep helper {other}"))),
    }
}

/// Every uid that owns at least one process (real uid), from /proc.
pub(crate) fn uids_with_processes() -> std::collections::BTreeSet<u32> {
    let mut out = std::collections::BTreeSet::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_none_or(|n| !n.bytes().all(|b| b.is_ascii_digit()))
        {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        if let Some(uid) = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|v| v.parse().ok())
        {
            out.insert(uid);
        }
    }
    out
}

/// Processes owned by (real) `uid`, as (pid, parent pid), from /proc. Includes zombies.
pub(crate) fn processes_of_uid(uid: u32) -> Vec<(i32, i32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // The process may vanish between listing and reading; skip it then.
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse::<i64>().ok())
        };
        if field("Uid:") == Some(i64::from(uid)) {
            let ppid = field("PPid:")
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(0);
            out.push((pid, ppid));
        }
    }
    out
}

/// Makes this process a child subreaper: orphaned descendants are re-parented to it, so
/// the sandbox can reap them instead of leaving zombies to an init that may not reap.
pub(crate) fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: plain prctl with integer arguments.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Forks a child that tries `unshare(CLONE_NEWNET)` and reports the result.
pub(crate) fn probe_unshare_net() -> io::Result<()> {
    // SAFETY: the child only makes raw syscalls and `_exit`s (see `kill_all_of_uid`).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        unsafe {
            let r = libc::syscall(libc::SYS_unshare, libc::CLONE_NEWNET);
            let code = if r == 0 { 0 } else { *libc::__errno_location() };
            libc::_exit(code.clamp(0, 255));
        }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    match wait_pid(pid)? {
        ExitStatus::Exited(0) => Ok(()),
        ExitStatus::Exited(errno) => Err(io::Error::from_raw_os_error(errno)),
        other => Err(io::Error::other(format!("probe process {other}"))),
    }
}

pub(crate) fn effective_ids() -> (u32, u32) {
    // SAFETY: getters without preconditions.
    unsafe { (libc::geteuid(), libc::getegid()) }
}
