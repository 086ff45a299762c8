//! The task runner: the handler registry, the execution context handed to handlers, result
//! shaping (spec §6.3), the builtin package and the out-of-process handler runtime.
//!
//! The driver passes the core's `Action::StartTask` / `Action::CancelTask` to [`Runner`];
//! the runner reports back through a [`Sink`] as `Input::TaskFeedback` (zero or more) and
//! exactly one `Input::TaskFinished` per started task.

pub mod builtin;
pub mod cancel;
pub mod context;
pub mod datadir;
pub mod engine;
pub mod handler;
pub mod pool;
pub mod process;
pub mod python;
pub mod registry;
pub mod shape;

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod process_tests;

pub use builtin::{register_builtins, register_builtins_with, BUILTIN_PACKAGE, BUILTIN_VERSION};
pub use cancel::CancelToken;
pub use context::{ExecutionContext, FeedbackHandle, Sink};
pub use engine::{Runner, RunnerConfig};
pub use handler::{Handler, HandlerError, HandlerOutput};
pub use process::{OutputLimits, ProcessHandler, ProcessHandlerError};
pub use python::{PythonConfig, PythonError, PythonHandler, PythonRuntime};
pub use registry::HandlerRegistry;
