//! The scheduler machine's inputs and actions: the only way in and out of it. The driver owns
//! the sockets and names each with a [`ConnId`] of its choosing.

use super::spec::{RunSpec, SubmitError};
use super::state::{NodeStatus, RunStatus};
use crate::time::Instant;
use crate::v1::payloads::{PackageEntry, PkgEventStatus};
use crate::worker::io::Incoming;
use serde::Serialize;

/// A WebSocket connection as the driver names it. Never reused by a well-behaved driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ConnId(pub u64);

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SchedInput {
    /// A worker opened `/ws/worker`; the scheduler accepts at once and says nothing.
    Connected(ConnId),
    Frame(ConnId, Incoming),
    /// The socket is gone (closed by either side). Runs the session cleanup.
    Disconnected(ConnId),
    /// A deadline from `poll_timeout` passed. Early or spurious ticks are harmless.
    Tick,
    /// Start a run, as `POST /api/v1/runs` would.
    SubmitRun(RunSpec),
    /// Send this exact text on a connection (e.g. a `pkg.install` a harness wants to push;
    /// the scheduler itself never sends `pkg.*`).
    Inject(ConnId, String),
    /// As `Inject`, to the connection of the worker's current session.
    InjectToWorker {
        worker_id: String,
        text: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SchedAction {
    Send {
        conn: ConnId,
        text: String,
    },
    /// Close the socket with this code and reason; the driver reports `Disconnected` later.
    Close {
        conn: ConnId,
        code: u16,
        reason: String,
    },
    Event(SchedEvent),
}

/// How a `command.error` was attributed to a node (spec §3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Attribution {
    /// `corr` named a node of the run.
    Corr,
    /// `corr` named no node: the run's most recently dispatched node was failed (the real bug).
    LastDispatched,
    /// No node could be found; only the run was failed.
    RunOnly,
    /// No run could be found: nothing changed (the frame is still acked if requested).
    NoRun,
}

/// Why an inbound ack did not settle a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AckIgnored {
    /// No pending dispatch has that id (never sent, already acked, or timed out).
    Unknown,
    /// It hit the modelled registration race (spec §5.1) and was dropped.
    Race,
}

/// What happened, for tests, the simulator's invariants and the demo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SchedEvent {
    /// A handshake created or replaced the session of `worker_id` on `conn`.
    SessionOpened {
        conn: ConnId,
        worker_id: String,
        tenant: String,
    },
    Registered {
        conn: ConnId,
        worker_id: String,
        packages: Vec<PackageEntry>,
    },
    /// A register arrived on a handshaken connection whose session had already been removed
    /// (the superseded-session bug): acked, but nothing is stored.
    RegisterLost { conn: ConnId, worker_id: String },
    /// The session of `worker_id` (bound to `owner`) was removed by the cleanup of `by`.
    SessionRemoved {
        worker_id: String,
        owner: ConnId,
        by: ConnId,
    },
    Dispatched {
        run_id: String,
        node_id: String,
        dispatch_id: String,
        conn: ConnId,
        worker_id: String,
        /// 1 for the node's first dispatch, then counting every re-dispatch.
        attempt: u32,
        seq: u64,
    },
    DispatchAcked {
        run_id: String,
        node_id: String,
        dispatch_id: String,
    },
    AckIgnored {
        conn: ConnId,
        for_id: String,
        why: AckIgnored,
    },
    /// A dispatch attempt failed (`reason`: `worker unavailable` or `ack timeout`); another
    /// attempt follows at `retry_at`.
    DispatchPending {
        run_id: String,
        node_id: String,
        failures: u32,
        retry_at: Instant,
        reason: String,
    },
    AckTimeout {
        run_id: String,
        node_id: String,
        dispatch_id: String,
        seq: u64,
    },
    /// Attempts exhausted: node and run failed with `E.DISPATCH.UNAVAILABLE`.
    DispatchUnavailable {
        run_id: String,
        node_id: String,
        failures: u32,
        reason: String,
    },
    ResultRecorded {
        run_id: String,
        node_id: String,
        status: NodeStatus,
        /// The node had already received at least one result.
        duplicate: bool,
        /// The task id named no node of the run.
        phantom: bool,
    },
    /// A result for a run the scheduler does not know: ignored (still acked if requested).
    ResultIgnored { run_id: String, task_id: String },
    CommandErrorRecorded {
        run_id: Option<String>,
        node_id: Option<String>,
        code: String,
        message: String,
        attribution: Attribution,
    },
    FeedbackRecorded {
        run_id: String,
        node_id: String,
        stage: Option<String>,
        progress: Option<f64>,
    },
    PkgEvent {
        conn: ConnId,
        worker_id: Option<String>,
        name: String,
        version: String,
        status: PkgEventStatus,
    },
    /// `SubmitRun` was refused; nothing was created.
    RunRejected { run_id: String, error: SubmitError },
    /// The run became terminal for the first time.
    RunFinished { run_id: String, status: RunStatus },
    /// A frame made the scheduler close the socket; `reason` is the decode error's text.
    Rejected { conn: ConnId, reason: String },
    /// A valid frame of a type the scheduler does not handle: logged and ignored, never acked.
    UnknownIgnored { conn: ConnId, kind: String },
    /// An ack answered a frame sent with `Inject`/`InjectToWorker`.
    InjectedAcked { conn: ConnId, for_id: String },
    /// `InjectToWorker` named a worker without a session: nothing was sent.
    InjectUndeliverable { worker_id: String },
}
