//! The worker machine's inputs and actions: the only way in and out of the core.

use crate::time::Instant;
use crate::v1::types::FrameType;
use crate::work::{Feedback, Inventory, TaskKey, TaskOutcome, TaskSpec};
use serde::{Deserialize, Serialize};

/// A frame as it came off the socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Incoming {
    Text(String),
    /// Binary frames are not part of the protocol; only the length is kept for the log.
    Binary(usize),
}

/// Operator or driver commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Stop taking work, finish in-flight tasks within the grace period, flush the outbox,
    /// close with 1000 (SIGTERM / SIGINT).
    Drain,
    /// Stop now: cancel running tasks, close (second signal).
    Shutdown,
}

/// Host health sampled by the driver and reported in heartbeats.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostHealth {
    pub healthy: bool,
    pub cpu_pct: Option<f64>,
    pub mem_pct: Option<f64>,
    pub disk_pct: Option<f64>,
}

/// One durable outbox entry: a terminal or package-event frame that must reach the scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The frame's envelope id (what the scheduler's ack names).
    pub id: String,
    pub kind: FrameType,
    /// The task it settles, for result and command.error.
    pub task: Option<TaskKey>,
    /// The exact frame text.
    pub frame: String,
}

/// A package operation the host must carry out (spec §7; `pkg.install` / `pkg.uninstall`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PackageOp {
    Install {
        name: String,
        version: String,
        url: Option<String>,
        sha256: Option<String>,
    },
    Uninstall {
        name: String,
        version: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageOpDone {
    pub op_id: u64,
    pub name: String,
    /// The version acted on (for an uninstall without a version: the one removed).
    pub version: String,
    pub install: bool,
    /// `Err(cause)` leaves the previous install untouched and emits `pkg.event failed`.
    pub outcome: Result<(), String>,
    /// The inventory after the operation.
    pub inventory: Inventory,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Begin: the machine asks to connect. Give `Restore` and `SetInventory` before this.
    Start,
    Connected,
    Frame(Incoming),
    Disconnected {
        reason: String,
    },
    /// A deadline from `poll_timeout` passed. Early or spurious ticks are harmless.
    Tick,
    TaskFeedback {
        task: TaskKey,
        feedback: Feedback,
    },
    TaskFinished {
        task: TaskKey,
        outcome: TaskOutcome,
    },
    PackageOpFinished(PackageOpDone),
    /// Unacked outbox entries found on disk at start.
    Restore(Vec<OutboxEntry>),
    SetInventory(Inventory),
    Health(HostHealth),
    Command(Command),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SessionState {
    New,
    Connecting,
    Handshaking,
    Registering,
    Heartbeating,
    Backoff,
    Draining,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// A structured log line decided by the core; the driver forwards it to `tracing`.
///
/// Built on the machine's hot path (one per received ack at `Debug`), so it allocates at
/// most the field list and the values that are not known statically. Serialises as before
/// (`fields` a map sorted by key, every value a string), so action logs keep their form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEvent {
    pub level: Level,
    pub message: &'static str,
    pub fields: LogFields,
}

/// A log field's value: most are counters or names fixed at compile time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogValue {
    U64(u64),
    Static(&'static str),
    Owned(String),
}

impl std::fmt::Display for LogValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogValue::U64(n) => write!(f, "{n}"),
            LogValue::Static(s) => f.write_str(s),
            LogValue::Owned(s) => f.write_str(s),
        }
    }
}

impl From<u64> for LogValue {
    fn from(n: u64) -> Self {
        LogValue::U64(n)
    }
}

impl From<usize> for LogValue {
    fn from(n: usize) -> Self {
        LogValue::U64(n as u64)
    }
}

impl From<u32> for LogValue {
    fn from(n: u32) -> Self {
        LogValue::U64(u64::from(n))
    }
}

/// For `Duration::as_millis()`; a value past `u64::MAX` ms (584 million years) saturates.
impl From<u128> for LogValue {
    fn from(n: u128) -> Self {
        LogValue::U64(u64::try_from(n).unwrap_or(u64::MAX))
    }
}

impl From<&String> for LogValue {
    fn from(s: &String) -> Self {
        LogValue::Owned(s.clone())
    }
}

impl From<&str> for LogValue {
    fn from(s: &str) -> Self {
        LogValue::Owned(s.to_string())
    }
}

impl From<String> for LogValue {
    fn from(s: String) -> Self {
        LogValue::Owned(s)
    }
}

/// A log line's fields in the order the machine gave them (keys are unique per line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFields(pub Vec<(&'static str, LogValue)>);

impl LogFields {
    /// The fields sorted by key, as `tracing` output and the serialised form show them.
    pub fn sorted(&self) -> Vec<(&'static str, &LogValue)> {
        let mut v: Vec<_> = self.0.iter().map(|(k, v)| (*k, v)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// The value of `key`, if the line has it.
    pub fn get(&self, key: &str) -> Option<&LogValue> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl Serialize for LogFields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let sorted = self.sorted();
        let mut m = s.serialize_map(Some(sorted.len()))?;
        for (k, v) in sorted {
            m.serialize_entry(k, &v.to_string())?;
        }
        m.end()
    }
}

/// An outbound frame. `text` is what goes on the wire; `Debug`/`Serialize` show the redacted
/// form so action logs and traces never carry the auth token.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct OutFrame {
    pub kind: FrameType,
    pub id: String,
    pub corr: Option<String>,
    pub seq: Option<u64>,
    text: String,
    redacted: Option<String>,
}

impl OutFrame {
    pub fn new(
        kind: FrameType,
        id: String,
        corr: Option<String>,
        seq: Option<u64>,
        text: String,
    ) -> Self {
        OutFrame {
            kind,
            id,
            corr,
            seq,
            text,
            redacted: None,
        }
    }
    pub fn with_redacted(mut self, redacted: String) -> Self {
        self.redacted = Some(redacted);
        self
    }
    /// The exact text to send.
    pub fn text(&self) -> &str {
        &self.text
    }
    /// The text to send, without copying it.
    pub fn into_text(self) -> String {
        self.text
    }
    /// Safe to log: secrets replaced by `***`.
    pub fn log_text(&self) -> &str {
        self.redacted.as_deref().unwrap_or(&self.text)
    }
}

impl std::fmt::Debug for OutFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.log_text())
    }
}

impl Serialize for OutFrame {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.log_text())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Action {
    /// Open the WebSocket to the scheduler.
    Connect,
    Send(OutFrame),
    Close {
        code: u16,
        reason: String,
    },
    StartTask(Box<TaskSpec>),
    CancelTask {
        task: TaskKey,
        reason: String,
    },
    Package {
        op_id: u64,
        op: PackageOp,
    },
    /// Write this entry durably before executing the next action (it precedes its `Send`).
    Persist(OutboxEntry),
    /// The scheduler acked it: delete it.
    Forget {
        id: String,
    },
    State(SessionState),
    Log(LogEvent),
    /// The machine is closed; the driver may exit.
    Stopped,
}

/// Counters the drivers export as metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub frames_sent: super::FrameCounts,
    pub frames_received: super::FrameCounts,
    pub frames_rejected: u64,
    pub ack_retries: u64,
    pub frames_dropped_after_retries: u64,
    pub reconnects: u64,
    pub heartbeats_sent: u64,
    pub heartbeats_degraded: u64,
    pub tasks_started: u64,
    pub tasks_finished: u64,
    pub duplicates: u64,
    pub concurrency_violations: u64,
    pub outbox_depth: u64,
    pub inflight: u64,
    pub queued: u64,
}

/// The machine's clock contract, re-exported for drivers.
pub type Now = Instant;
