//! Settings of the `python` runtime: which interpreter, where the bridge files live, and
//! the time and size limits of the bridge protocol.

use std::path::PathBuf;
use std::time::Duration;

/// Environment variable naming the interpreter (a path, or a name searched on PATH).
/// Read by [`PythonConfig::from_env`]; a `WorkerSettings` field belongs to the config owner.
pub const PYTHON_ENV: &str = "ASTRA_PYTHON";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonConfig {
    /// The interpreter: an absolute path, or a bare name (default `python3`) looked up on
    /// the worker's PATH and then on the sandbox's PATH. The first candidate that runs in
    /// the sandbox as Python 3.8+ is used (a pyenv shim under an unreadable `/root` is
    /// skipped in favour of `/usr/bin/python3`, for example).
    pub python: PathBuf,
    /// Parent of the private directory holding the bridge script, the import shims and the
    /// bridges' home directories. Must be searchable by the sandbox users.
    pub cache_root: PathBuf,
    /// How long a new bridge may take to import its startup modules and say `ready`.
    pub startup_timeout: Duration,
    /// After a timeout or cancel, how long an async handler gets to unwind before its
    /// bridge is killed and restarted.
    pub cancel_wait: Duration,
    /// Largest protocol line in either direction (results, feedback frames).
    pub max_message_bytes: usize,
    /// Tail of the bridge's stderr kept for error messages.
    pub stderr_tail_bytes: usize,
}

impl Default for PythonConfig {
    fn default() -> Self {
        PythonConfig {
            python: PathBuf::from("python3"),
            cache_root: std::env::temp_dir(),
            startup_timeout: Duration::from_secs(30),
            cancel_wait: Duration::from_secs(2),
            max_message_bytes: 16 << 20,
            stderr_tail_bytes: 8 << 10,
        }
    }
}

impl PythonConfig {
    /// The defaults, with the interpreter taken from `ASTRA_PYTHON` when set.
    pub fn from_env() -> Self {
        let mut config = PythonConfig::default();
        if let Some(python) = std::env::var_os(PYTHON_ENV).filter(|v| !v.is_empty()) {
            config.python = PathBuf::from(python);
        }
        config
    }
}
