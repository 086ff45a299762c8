//! Sandbox errors, each saying what to change.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("program path {0} must be absolute")]
    RelativeProgram(PathBuf),
    #[error("network isolation is required but unavailable: {0}; run the worker with CAP_SYS_ADMIN or set require_network_isolation = false")]
    NetworkIsolationUnavailable(String),
    #[error("all {count} sandbox uids starting at {first} are in use; raise the pool size or lower max_parallel")]
    UidPoolExhausted { first: u32, count: u32 },
    #[error("cannot prepare the task directory {path} for the sandbox user: {source}")]
    Workdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create a pipe for the task: {0}")]
    Pipe(std::io::Error),
    #[error("cannot start {program}: {source}; check that it exists and that every directory on its path is readable and executable by the sandbox user")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
}
