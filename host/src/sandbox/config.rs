//! What the sandbox enforces: resource limits, network policy, the user children run as,
//! and how hard it kills.

use std::time::Duration;

/// Per-process resource limits (setrlimit). `None` leaves the worker's own limit in place.
/// Core dumps are always disabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxLimits {
    /// RLIMIT_CPU: CPU seconds before SIGXCPU (then SIGKILL at the hard limit + 1 s).
    pub cpu_seconds: Option<u64>,
    /// RLIMIT_AS: bytes of virtual memory per process.
    pub address_space_bytes: Option<u64>,
    /// RLIMIT_NOFILE: open file descriptors per process.
    pub open_files: Option<u64>,
    /// RLIMIT_NPROC: processes of the task's user. Only enforced for non-root users, which
    /// is why a root worker drops children to a dedicated uid (see [`UserPolicy`]).
    pub processes: Option<u64>,
    /// RLIMIT_FSIZE: largest file a task may write, in bytes.
    pub file_size_bytes: Option<u64>,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            cpu_seconds: Some(3600),
            address_space_bytes: Some(4 << 30),
            open_files: Some(1024),
            processes: Some(256),
            file_size_bytes: Some(1 << 30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkPolicy {
    /// Each task gets a fresh, empty network namespace (no interfaces up, not even
    /// loopback) when the kernel allows it; see [`super::IsolationReport`] for whether it does.
    #[default]
    Isolated,
    /// Children share the worker's network.
    Allowed,
}

/// Which user children run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserPolicy {
    /// When the worker runs as root: a dedicated uid (= gid) per running task from
    /// `DEFAULT_UID_POOL`, so RLIMIT_NPROC applies per task and the task's processes can be
    /// swept by uid. Otherwise: the worker's own user.
    Auto,
    /// A dedicated uid (= gid) per running task from `first..first + count` (root only).
    /// The ids should belong to no real account.
    Pool { first: u32, count: u32 },
    /// Every task as this uid/gid (root only), e.g. 65534 nobody. Concurrent tasks then
    /// share one RLIMIT_NPROC budget.
    Fixed { uid: u32, gid: u32 },
    /// Keep the worker's user (no privilege drop; RLIMIT_NPROC is not enforced for root).
    Inherit,
}

/// Default per-task uid range for `UserPolicy::Auto`: far above normal, systemd-dynamic and
/// typical subuid ranges, below 2^31 for tools that treat uids as signed.
pub const DEFAULT_UID_POOL: (u32, u32) = (1_900_000_000, 4096);

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub limits: SandboxLimits,
    pub network: NetworkPolicy,
    /// Refuse to spawn rather than run without network isolation when it is requested but
    /// unavailable.
    pub require_network_isolation: bool,
    pub user: UserPolicy,
    /// Time between SIGTERM and SIGKILL when a task is timed out or cancelled.
    pub kill_grace: Duration,
    /// Make the worker a child subreaper (prctl) so orphaned grandchildren of a task are
    /// re-parented to the worker and reaped by the sandbox instead of lingering as zombies.
    pub subreaper: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            limits: SandboxLimits::default(),
            network: NetworkPolicy::Isolated,
            require_network_isolation: false,
            user: UserPolicy::Auto,
            kill_grace: Duration::from_secs(5),
            subreaper: true,
        }
    }
}
