//! What the scheduler remembers and exposes for inspection: sessions, runs with their nodes,
//! package events and counters, plus the run status roll-up.

use super::io::ConnId;
use super::spec::NodeSpec;
use crate::frame_counts::FrameCounts;
use crate::time::Instant;
use crate::v1::payloads::{Capabilities, PackageEntry, PkgEventStatus, ResultPayload, TaskStatus};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// Waiting for dependencies (the real scheduler shows `queued` with pending dependencies).
    Pending,
    /// Ready and waiting for a dispatch attempt.
    Queued,
    /// A dispatch was sent.
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl NodeStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            NodeStatus::Succeeded | NodeStatus::Failed | NodeStatus::Cancelled
        )
    }
    /// The scheduler's mapping of a result status (spec §3.5): SKIPPED counts as succeeded.
    pub fn from_result(s: TaskStatus) -> Self {
        match s {
            TaskStatus::Succeeded | TaskStatus::Skipped => NodeStatus::Succeeded,
            TaskStatus::Failed => NodeStatus::Failed,
            TaskStatus::Cancelled => NodeStatus::Cancelled,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::Failed)
    }
}

/// A node or run error `{code, message, details}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunError {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeState {
    pub spec: NodeSpec,
    pub status: NodeStatus,
    /// Assigned when the node becomes ready; every re-dispatch reuses it.
    pub seq: Option<u64>,
    /// Consecutive dispatch failures since the last successful send (the real `attempts`).
    pub failures: u32,
    /// Dispatch frames sent for this node.
    pub dispatch_count: u32,
    pub dispatch_id: Option<String>,
    pub worker_id: Option<String>,
    pub conn: Option<ConnId>,
    pub pending_ack: bool,
    pub results_received: u32,
    pub last_result: Option<Box<ResultPayload>>,
    pub error: Option<RunError>,
    pub feedback_count: u32,
    pub last_stage: Option<String>,
    pub last_progress: Option<f64>,
    pub last_message: Option<String>,
    /// `metadata.results` of feedback frames merged shallowly, key by key.
    pub partial_result: Map<String, Value>,
    /// Unreleased dependency edges (only meaningful with `fan_in_counter_bug`).
    pub pending_edges: u32,
    #[serde(skip)]
    pub(crate) timer: Option<(Instant, u64)>,
}

impl NodeState {
    pub(crate) fn new(spec: NodeSpec) -> Self {
        let pending_edges = u32::try_from(spec.depends_on.len()).unwrap_or(u32::MAX);
        NodeState {
            spec,
            status: NodeStatus::Pending,
            seq: None,
            failures: 0,
            dispatch_count: 0,
            dispatch_id: None,
            worker_id: None,
            conn: None,
            pending_ack: false,
            results_received: 0,
            last_result: None,
            error: None,
            feedback_count: 0,
            last_stage: None,
            last_progress: None,
            last_message: None,
            partial_result: Map::new(),
            pending_edges,
            timer: None,
        }
    }
    pub fn id(&self) -> &str {
        &self.spec.id
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunState {
    pub run_id: String,
    pub tenant: String,
    pub status: RunStatus,
    pub error: Option<RunError>,
    /// In submission order.
    pub nodes: Vec<NodeState>,
    pub next_seq: u64,
    /// Index into `nodes` of the most recently dispatched node.
    pub last_dispatched: Option<usize>,
    /// Results whose task id named no node, counted per task id (the real scheduler creates
    /// a phantom node; here they are kept out of the roll-up).
    pub phantom_results: BTreeMap<String, u32>,
    /// A `command.error` failed the run without finding any node to fail.
    pub forced_failed: bool,
    pub submitted_at: Instant,
    /// When the run first became terminal (`RunFinished`).
    pub finished_at: Option<Instant>,
}

impl RunState {
    pub fn node(&self, id: &str) -> Option<&NodeState> {
        self.nodes.iter().find(|n| n.spec.id == id)
    }
    pub(crate) fn node_index(&self, id: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.spec.id == id)
    }

    /// The roll-up from node statuses: any failed node fails the run (even while others
    /// still run, as in the real scheduler); all terminal otherwise succeeds; anything sent
    /// makes it running.
    pub(crate) fn roll_up(&self) -> RunStatus {
        if self.forced_failed || self.nodes.iter().any(|n| n.status == NodeStatus::Failed) {
            RunStatus::Failed
        } else if self.nodes.iter().all(|n| n.status.is_terminal()) {
            RunStatus::Succeeded
        } else if self
            .nodes
            .iter()
            .any(|n| n.dispatch_count > 0 || n.status.is_terminal())
        {
            RunStatus::Running
        } else {
            RunStatus::Queued
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionInfo {
    pub worker_id: String,
    pub conn: ConnId,
    /// The handshake envelope's tenant.
    pub tenant: String,
    pub version: String,
    pub hostname: String,
    /// Empty until `register`; reset by every handshake.
    pub packages: Vec<PackageEntry>,
    pub capabilities: Option<Capabilities>,
    pub registered: bool,
    pub opened_at: Instant,
    pub last_heartbeat: Option<Instant>,
}

impl SessionInfo {
    /// Exact string equality on name and version; `status` is ignored (spec §3.2).
    pub fn has_package(&self, name: &str, version: &str) -> bool {
        self.packages
            .iter()
            .any(|p| p.name == name && p.version == version)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PkgEventRecord {
    pub at: Instant,
    pub conn: ConnId,
    pub worker_id: Option<String>,
    pub name: String,
    pub version: String,
    pub status: PkgEventStatus,
    pub details: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SchedStats {
    /// Valid frames by type; types the scheduler does not know are counted as `unknown`.
    pub frames_received: FrameCounts,
    /// Frames on a connection that was unknown or already being closed.
    pub frames_ignored: u64,
    pub acks_sent: u64,
    pub dispatches_sent: u64,
    pub dispatch_acks: u64,
    pub acks_unknown: u64,
    pub acks_race_dropped: u64,
    pub ack_timeouts: u64,
    pub dispatch_unavailable: u64,
    pub rejections: u64,
    /// Rejection reasons (decode error texts) with their counts.
    pub rejection_reasons: BTreeMap<String, u64>,
    pub results_received: u64,
    pub duplicate_results: u64,
    pub phantom_results: u64,
    pub results_unknown_run: u64,
    pub command_errors: u64,
    pub feedback_received: u64,
    pub sessions_superseded: u64,
    pub injected: u64,
}
