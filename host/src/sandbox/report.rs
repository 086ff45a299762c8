//! What isolation is really active on this machine, probed once at startup so the worker
//! can log it honestly.

use super::config::{NetworkPolicy, SandboxConfig, SandboxLimits, UserPolicy, DEFAULT_UID_POOL};
use super::sys;

/// Which user children run as, after resolving `UserPolicy::Auto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EffectiveUser {
    /// A dedicated uid per running task from `first..first + count`.
    Pool {
        first: u32,
        count: u32,
    },
    Fixed {
        uid: u32,
        gid: u32,
    },
    /// The worker's own user; `root` says whether RLIMIT_NPROC is therefore unenforced.
    Inherit {
        uid: u32,
        root: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolationReport {
    /// A fresh network namespace per task is active.
    pub network_isolated: bool,
    /// Why (or why not), in words.
    pub network_detail: String,
    pub user: EffectiveUser,
    pub limits: SandboxLimits,
    /// The worker is a child subreaper (orphans of tasks are reaped by it).
    pub subreaper: bool,
    pub subreaper_detail: String,
    /// Every task runs in its own session and process group, killed as a whole.
    pub process_group: bool,
}

impl IsolationReport {
    pub(crate) fn probe(config: &SandboxConfig) -> IsolationReport {
        let (euid, _) = sys::effective_ids();
        let root = euid == 0;

        let (network_isolated, network_detail) = match config.network {
            NetworkPolicy::Allowed => (false, "disabled by configuration: tasks share the worker's network".to_string()),
            NetworkPolicy::Isolated => match sys::probe_unshare_net() {
                Ok(()) => (true, "fresh empty network namespace per task (no interfaces up, no loopback)".to_string()),
                Err(e) => (
                    false,
                    format!("UNAVAILABLE: unshare(CLONE_NEWNET) failed ({e}); tasks can reach the network. Grant CAP_SYS_ADMIN or run as root to enable it"),
                ),
            },
        };

        let user = match (&config.user, root) {
            (UserPolicy::Auto, true) => EffectiveUser::Pool {
                first: DEFAULT_UID_POOL.0,
                count: DEFAULT_UID_POOL.1,
            },
            (UserPolicy::Pool { first, count }, true) => EffectiveUser::Pool {
                first: *first,
                count: *count,
            },
            (UserPolicy::Fixed { uid, gid }, true) => EffectiveUser::Fixed {
                uid: *uid,
                gid: *gid,
            },
            // Without root the worker cannot change user: children run as the worker.
            _ => EffectiveUser::Inherit { uid: euid, root },
        };

        let (subreaper, subreaper_detail) = if config.subreaper {
            match sys::set_child_subreaper() {
                Ok(()) => (
                    true,
                    "worker is a child subreaper: orphaned task processes are reaped".to_string(),
                ),
                Err(e) => (
                    false,
                    format!("could not become a child subreaper ({e}); orphans are left to init"),
                ),
            }
        } else {
            (
                false,
                "disabled by configuration; orphans are left to init".to_string(),
            )
        };

        IsolationReport {
            network_isolated,
            network_detail,
            user,
            limits: config.limits.clone(),
            subreaper,
            subreaper_detail,
            process_group: true,
        }
    }
}

fn limit(v: Option<u64>) -> String {
    v.map_or_else(|| "inherited".to_string(), |n| n.to_string())
}

impl std::fmt::Display for IsolationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "network: {}; ", self.network_detail)?;
        match &self.user {
            EffectiveUser::Pool { first, count } => {
                write!(f, "user: dedicated uid per task from {first} ({count} uids), process limit enforced; ")?
            }
            EffectiveUser::Fixed { uid, gid } => write!(f, "user: uid {uid} gid {gid} shared by all tasks; ")?,
            EffectiveUser::Inherit { uid, root: true } => {
                write!(f, "user: worker's own (uid {uid}, root): NO privilege drop, process limit NOT enforced; ")?
            }
            EffectiveUser::Inherit { uid, root: false } => write!(f, "user: worker's own (uid {uid}); ")?,
        }
        let l = &self.limits;
        write!(
            f,
            "rlimits: cpu {} s, address space {} B, open files {}, processes {}, file size {} B, core 0; process group + SIGTERM/SIGKILL escalation; {}; environment scrubbed",
            limit(l.cpu_seconds),
            limit(l.address_space_bytes),
            limit(l.open_files),
            limit(l.processes),
            limit(l.file_size_bytes),
            self.subreaper_detail
        )
    }
}
