//! The `python` runtime: AstraFlow adapters (spec §7.2-§7.3) run unmodified in a Python
//! bridge process shipped inside the worker (`host/python/astra_bridge.py` plus import
//! shims for `worker.agent.runner` and `shared.models.ws.feedback`).
//!
//! - One warm bridge per installed package version, started on first use from a dedicated
//!   spawner thread (the sandbox's PDEATHSIG is per thread), inside the sandbox (own uid
//!   when the worker is root, no network). Its package directory is first on `sys.path`;
//!   one process per version keeps two packages' `adapters` modules apart.
//! - Tasks of the same package run concurrently in it: coroutine handlers on its asyncio
//!   loop, everything else on a thread of its own.
//! - Protocol: JSON lines, requests on the bridge's stdin, replies on fd 3; handler
//!   prints go to stderr, which the worker logs at DEBUG.
//! - A bridge that exits, crashes or writes garbage fails its in-flight tasks with the
//!   reason (and its stderr tail) and is restarted for the next task.
//! - Timeout/cancel: async handlers are cancelled (`CancelledError`); a synchronous handler
//!   cannot be interrupted, so the bridge is killed and restarted, and the **other tasks
//!   running in that bridge fail** with a "bridge was restarted" error.

mod bridge;
mod config;
mod error;
mod files;
mod handler;
mod interpreter;
mod protocol;
mod runtime;
mod spawner;

pub use config::{PythonConfig, PYTHON_ENV};
pub use error::PythonError;
pub use handler::PythonHandler;
pub use interpreter::Interpreter;
pub use runtime::{BridgeInfo, HandlerFactory, PythonRuntime};
