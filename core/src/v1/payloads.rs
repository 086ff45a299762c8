//! Typed payloads of every v1 message (spec §3), each as strict as the scheduler's pydantic
//! model: unknown keys rejected, required keys required, enums in the exact case, plus the
//! value constraints serde cannot express (checked by [`Validate`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A value constraint violated inside a payload: the dotted field path and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub reason: String,
}

/// Constraints beyond types: non-empty strings, ranges, timestamps.
pub trait Validate {
    fn validate(&self) -> Result<(), Violation>;
}

fn bad(field: impl Into<String>, reason: impl Into<String>) -> Violation {
    Violation {
        field: field.into(),
        reason: reason.into(),
    }
}

fn non_empty(field: &str, v: &str) -> Result<(), Violation> {
    if v.is_empty() {
        Err(bad(field, "must be a non-empty string"))
    } else {
        Ok(())
    }
}

/// [`non_empty`] whose field name is built only when the check fails (most frames pass,
/// and formatting an indexed name for every list item showed in the simulator's profile).
fn non_empty_at(v: &str, field: impl FnOnce() -> String) -> Result<(), Violation> {
    if v.is_empty() {
        Err(bad(field(), "must be a non-empty string"))
    } else {
        Ok(())
    }
}

fn non_empty_opt(field: &str, v: &Option<String>) -> Result<(), Violation> {
    v.as_deref().map_or(Ok(()), |s| non_empty(field, s))
}

fn aware_ts_opt(field: &str, v: &Option<String>) -> Result<(), Violation> {
    match v {
        Some(s) => crate::time::validate_rfc3339_aware(s).map_err(|r| bad(field, r)),
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// handshake

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Token,
    Mtls,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub mode: AuthMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerInfo {
    pub id: String,
    pub version: String,
    pub hostname: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandshakePayload {
    pub protocol: u32,
    pub auth: Auth,
    pub worker: WorkerInfo,
}

impl Validate for HandshakePayload {
    fn validate(&self) -> Result<(), Violation> {
        if self.protocol < 1 {
            return Err(bad("protocol", "must be an integer >= 1"));
        }
        non_empty("worker.id", &self.worker.id)?;
        non_empty("worker.version", &self.worker.version)?;
        non_empty("worker.hostname", &self.worker.hostname)
    }
}

// ---------------------------------------------------------------------------------------
// register

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    pub max_parallel: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_node_limits: Option<BTreeMap<String, u32>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capabilities {
    pub concurrency: Concurrency,
    pub runtimes: Vec<String>,
    pub features: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageStatus {
    Installed,
    Missing,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageEntry {
    pub name: String,
    pub version: String,
    pub status: PackageStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterPayload {
    pub capabilities: Capabilities,
    pub packages: Vec<PackageEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
}

impl Validate for RegisterPayload {
    fn validate(&self) -> Result<(), Violation> {
        let c = &self.capabilities;
        if c.concurrency.max_parallel < 1 {
            return Err(bad("capabilities.concurrency.max_parallel", "must be >= 1"));
        }
        if let Some(limits) = &c.concurrency.per_node_limits {
            for (k, v) in limits {
                if *v < 1 {
                    return Err(bad(
                        format!("capabilities.concurrency.per_node_limits.{k}"),
                        "must be >= 1",
                    ));
                }
            }
        }
        if c.runtimes.is_empty() {
            return Err(bad("capabilities.runtimes", "needs at least one item"));
        }
        for (i, r) in c.runtimes.iter().enumerate() {
            non_empty_at(r, || format!("capabilities.runtimes.{i}"))?;
        }
        for (i, r) in c.features.iter().enumerate() {
            non_empty_at(r, || format!("capabilities.features.{i}"))?;
        }
        for (i, p) in self.packages.iter().enumerate() {
            non_empty_at(&p.name, || format!("packages.{i}.name"))?;
            non_empty_at(&p.version, || format!("packages.{i}.version"))?;
        }
        for (i, ch) in self.channels.iter().flatten().enumerate() {
            non_empty_at(ch, || format!("channels.{i}"))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// heartbeat

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatPackages {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<bool>,
}

/// `metrics` is the one open object of the protocol: extra keys are allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatPayload {
    pub healthy: bool,
    pub metrics: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<HeartbeatPackages>,
}

impl Validate for HeartbeatPayload {
    fn validate(&self) -> Result<(), Violation> {
        match self.metrics.get("inflight") {
            Some(Value::Number(n)) if n.as_u64().is_some() => {}
            Some(_) => return Err(bad("metrics.inflight", "must be an integer >= 0")),
            None => return Err(bad("metrics.inflight", "is required")),
        }
        for key in ["cpu_pct", "mem_pct", "disk_pct"] {
            if let Some(v) = self.metrics.get(key) {
                if !v.as_f64().is_some_and(|x| x >= 0.0) {
                    return Err(bad(format!("metrics.{key}"), "must be a number >= 0"));
                }
            }
        }
        if let Some(v) = self.metrics.get("latency_ms") {
            if v.as_u64().is_none() {
                return Err(bad("metrics.latency_ms", "must be an integer >= 0"));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// ack

/// The ack payload. The scheduler ignores it beyond requiring an object, so inbound acks are
/// read leniently (any object); outbound acks always carry `{ok: true, for}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_id: Option<String>,
}

// ---------------------------------------------------------------------------------------
// cmd.dispatch

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    pub resource_id: String,
    pub worker_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AffinityMode {
    Sticky,
    Preferred,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Affinity {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<AffinityMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchPayload {
    pub run_id: String,
    pub task_id: String,
    pub node_id: String,
    pub node_type: String,
    pub package_name: String,
    pub package_version: String,
    pub parameters: Map<String, Value>,
    pub constraints: Constraints,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_refs: Option<Vec<ResourceRef>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
}

impl Validate for DispatchPayload {
    fn validate(&self) -> Result<(), Violation> {
        non_empty("run_id", &self.run_id)?;
        non_empty("task_id", &self.task_id)?;
        non_empty("node_id", &self.node_id)?;
        non_empty("node_type", &self.node_type)?;
        non_empty("package_name", &self.package_name)?;
        non_empty("package_version", &self.package_version)?;
        if self.constraints.timeout_ms == Some(0) {
            return Err(bad("constraints.timeout_ms", "must be >= 1"));
        }
        non_empty_opt("concurrency_key", &self.concurrency_key)?;
        for (i, r) in self.resource_refs.iter().flatten().enumerate() {
            non_empty_at(&r.resource_id, || format!("resource_refs.{i}.resource_id"))?;
            non_empty_at(&r.worker_id, || format!("resource_refs.{i}.worker_id"))?;
            non_empty_at(&r.kind, || format!("resource_refs.{i}.type"))?;
            non_empty_opt(&format!("resource_refs.{i}.scope"), &r.scope)?;
            aware_ts_opt(&format!("resource_refs.{i}.expires_at"), &r.expires_at)?;
        }
        if let Some(a) = &self.affinity {
            non_empty("affinity.key", &a.key)?;
            aware_ts_opt("affinity.expires_at", &a.expires_at)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// result

/// Terminal status of a task, upper case on the wire (lower case closes the socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TaskStatus {
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl TaskStatus {
    /// Parses a handler's status case-insensitively, as the Python runner does.
    pub fn parse_lenient(s: &str) -> Option<TaskStatus> {
        match s.to_ascii_lowercase().as_str() {
            "succeeded" => Some(TaskStatus::Succeeded),
            "failed" => Some(TaskStatus::Failed),
            "skipped" => Some(TaskStatus::Skipped),
            "cancelled" | "canceled" => Some(TaskStatus::Cancelled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub resource_id: String,
    pub worker_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl Artifact {
    pub fn validate_at(&self, prefix: &str) -> Result<(), Violation> {
        non_empty_at(&self.resource_id, || format!("{prefix}.resource_id"))?;
        non_empty_at(&self.worker_id, || format!("{prefix}.worker_id"))?;
        non_empty_at(&self.kind, || format!("{prefix}.type"))?;
        aware_ts_opt(&format!("{prefix}.expires_at"), &self.expires_at)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultPayload {
    pub run_id: String,
    pub task_id: String,
    pub status: TaskStatus,
    pub result: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Vec<Artifact>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ResultError>,
}

impl Validate for ResultPayload {
    fn validate(&self) -> Result<(), Violation> {
        non_empty("run_id", &self.run_id)?;
        non_empty("task_id", &self.task_id)?;
        for (i, a) in self.artifacts.iter().flatten().enumerate() {
            a.validate_at(&format!("artifacts.{i}"))?;
        }
        if let Some(e) = &self.error {
            non_empty("error.code", &e.code)?;
            non_empty("error.message", &e.message)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// feedback

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackChannel {
    Stdout,
    Stderr,
    Log,
    Llm,
    Metric,
    Custom,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackChunk {
    pub channel: FeedbackChannel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_base64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackPayload {
    pub run_id: String,
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Vec<FeedbackChunk>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<BTreeMap<String, f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// Metadata keys the scheduler uses internally in the same namespace (spec §3.6).
pub const RESERVED_FEEDBACK_METADATA_KEYS: [&str; 3] = ["feedback", "resultSequence", "metrics"];

impl Validate for FeedbackPayload {
    fn validate(&self) -> Result<(), Violation> {
        non_empty("run_id", &self.run_id)?;
        non_empty("task_id", &self.task_id)?;
        non_empty_opt("stage", &self.stage)?;
        if let Some(p) = self.progress {
            if !(0.0..=1.0).contains(&p) {
                return Err(bad("progress", "must be between 0 and 1"));
            }
        }
        for (k, v) in self.metrics.iter().flatten() {
            if !v.is_finite() {
                return Err(bad(format!("metrics.{k}"), "must be a finite number"));
            }
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// command.error

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorContext {
    #[serde(rename = "where", default, skip_serializing_if = "Option::is_none")]
    pub where_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorPayload {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ErrorContext>,
}

impl Validate for ErrorPayload {
    fn validate(&self) -> Result<(), Violation> {
        non_empty("code", &self.code)?;
        non_empty("message", &self.message)
    }
}

// ---------------------------------------------------------------------------------------
// packages

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PkgEventStatus {
    Installed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkgEventPayload {
    pub name: String,
    pub version: String,
    pub status: PkgEventStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Map<String, Value>>,
}

impl Validate for PkgEventPayload {
    fn validate(&self) -> Result<(), Violation> {
        non_empty("name", &self.name)?;
        non_empty("version", &self.version)
    }
}

/// `pkg.install`. The model names the package `name`; the Python worker also accepts
/// `package`, so both are read and exactly one must be present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkgInstallPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl PkgInstallPayload {
    pub fn package_name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.package.as_deref())
            .unwrap_or("")
    }
}

impl Validate for PkgInstallPayload {
    fn validate(&self) -> Result<(), Violation> {
        if self.name.is_none() && self.package.is_none() {
            return Err(bad("name", "is required"));
        }
        non_empty("name", self.package_name())?;
        non_empty("version", &self.version)?;
        non_empty_opt("url", &self.url)?;
        if let Some(h) = &self.sha256 {
            if h.len() != 64 || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad("sha256", "must be 64 hexadecimal characters"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkgUninstallPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl PkgUninstallPayload {
    pub fn package_name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.package.as_deref())
            .unwrap_or("")
    }
}

impl Validate for PkgUninstallPayload {
    fn validate(&self) -> Result<(), Violation> {
        if self.name.is_none() && self.package.is_none() {
            return Err(bad("name", "is required"));
        }
        non_empty("name", self.package_name())?;
        non_empty_opt("version", &self.version)
    }
}
