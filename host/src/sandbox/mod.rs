//! The process sandbox for out-of-process handlers: own session and process group,
//! scrubbed environment, rlimits, a fresh network namespace when the kernel allows it, a
//! dedicated unprivileged uid per task when the worker is root, SIGTERM → SIGKILL
//! escalation and reaping so no process of a task outlives it.
//!
//! [`Sandbox::isolation_report`] says what is really active on this machine.

mod child;
mod config;
mod error;
mod report;
mod spawn;
mod sys;
mod uid;

#[cfg(test)]
mod tests;

pub use child::{SandboxedChild, StopCause, Supervised};
pub use config::{NetworkPolicy, SandboxConfig, SandboxLimits, UserPolicy, DEFAULT_UID_POOL};
pub use error::SandboxError;
pub use report::{EffectiveUser, IsolationReport};
pub use spawn::{Sandbox, SpawnRequest, FEEDBACK_FD, SAFE_PATH};
pub use sys::{group_exists, signal_meaning, ExitStatus};
