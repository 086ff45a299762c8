//! Reference scheduler machine, as strict as the real AstraFlow scheduler at c4bf80a, for
//! integration tests, the deterministic simulator and the demo.
//!
//! Same contract as the worker machine: [`Scheduler::handle`] with the current time and one
//! [`SchedInput`], drain [`Scheduler::poll_action`] until `None`, then wake at
//! [`Scheduler::poll_timeout`] with [`SchedInput::Tick`]. The driver names each socket with a
//! [`ConnId`]. Bugs of the real scheduler are reproduced where the spec says the code does so
//! (superseded-session cleanup, ack race, attempts reset, `command.error` fallback, no
//! dedupe); the global head-of-line blocking of its dispatcher loop is not (timers are per
//! node).

mod config;
mod inject_id;
mod io;
mod machine;
mod outbound;
mod runs;
mod spec;
mod state;

pub use crate::frame_counts::FrameCounts;
pub use config::{AckRace, SchedulerConfig};
pub use io::{AckIgnored, Attribution, ConnId, SchedAction, SchedEvent, SchedInput};
pub use machine::Scheduler;
pub use outbound::{ack_frame, dispatch_frame, scheduler_sender, DispatchFields};
pub use runs::DISPATCH_UNAVAILABLE;
pub use spec::{validate as validate_run, NodeSpec, RunSpec, SubmitError};
pub use state::{
    NodeState, NodeStatus, PkgEventRecord, RunError, RunState, RunStatus, SchedStats, SessionInfo,
};

#[cfg(test)]
mod tests;
