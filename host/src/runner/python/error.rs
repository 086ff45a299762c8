//! Errors of the `python` runtime, each saying what to change.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PythonError {
    #[error("no usable Python interpreter for Python adapters: {0}; install python3 (3.8 or newer) where the sandbox user can run it, or name one in ASTRA_PYTHON")]
    NoInterpreter(String),
    #[error("cannot prepare the Python bridge files in {path}: {source}; the cache directory (default: the system temp dir) must be writable by the worker and searchable by the sandbox users")]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the Python bridge for {package}: {reason}")]
    Start { package: String, reason: String },
    #[error("the Python bridge spawner thread has stopped; restart the worker")]
    SpawnerGone,
    #[error("cannot start the Python bridge spawner thread: {0}")]
    SpawnerThread(std::io::Error),
}
