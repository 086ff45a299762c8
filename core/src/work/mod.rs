//! Dialect-independent work model: what a task is, what it produces, what packages the worker
//! holds, and the local admission rules (single-flight concurrency keys, `max_parallel`,
//! per-node limits). A second wire dialect reuses all of this unchanged.

pub mod admission;
pub mod inventory;
pub mod task;

pub use admission::{Admission, AdmissionLimits, Verdict};
pub use inventory::{HandlerKey, Inventory};
pub use task::{Completion, Failure, Feedback, TaskKey, TaskOutcome, TaskSpec};
