//! Builds the v1 envelopes the worker sends. The only place that knows the worker-side
//! envelope conventions: UUIDv4 ids, RFC 3339 `ts`, `sender {role: worker}`, tenant from
//! config, `corr` = task id on task frames (spec R2), and token redaction for logs.

use super::io::OutFrame;
use super::Worker;
use crate::v1::envelope::{AckField, Role, Sender};
use crate::v1::payloads::*;
use crate::v1::types::FrameType;
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Envelope fields that vary per frame.
pub(crate) struct Head {
    pub kind: FrameType,
    pub corr: Option<String>,
    pub seq: Option<u64>,
    pub ack_request: bool,
    pub ack_for: Option<String>,
}

impl Head {
    pub fn new(kind: FrameType) -> Self {
        Head {
            kind,
            corr: None,
            seq: None,
            ack_request: false,
            ack_for: None,
        }
    }
    pub fn corr(mut self, corr: Option<String>) -> Self {
        self.corr = corr;
        self
    }
    pub fn seq(mut self, seq: Option<u64>) -> Self {
        self.seq = seq;
        self
    }
    pub fn request_ack(mut self) -> Self {
        self.ack_request = true;
        self
    }
}

impl Worker {
    /// Serialises the envelope straight from borrowed parts: the same field order and
    /// shape as `Envelope`, without building an intermediate JSON map.
    pub(crate) fn build_frame<T: Serialize>(&mut self, head: Head, payload: &T) -> OutFrame {
        let ack = if head.ack_request || head.ack_for.is_some() {
            Some(AckField {
                for_id: head.ack_for,
                request: head.ack_request.then_some(true),
            })
        } else {
            None
        };
        let id = self.rng.uuid_v4();
        let ts = self.cfg.wall.rfc3339(self.now);
        let env = OutEnvelope {
            kind: head.kind.as_str(),
            id: &id,
            ts: &ts,
            corr: head.corr.as_deref(),
            seq: head.seq,
            tenant: &self.cfg.tenant,
            sender: Sender {
                role: Role::Worker,
                id: self.cfg.worker_id.clone(),
            },
            ack: ack.as_ref(),
            payload,
        };
        // Plain structs of strings, numbers and JSON values always serialise.
        let text = serde_json::to_string(&env).unwrap_or_default();
        OutFrame::new(head.kind, id, head.corr, head.seq, text)
    }

    pub(crate) fn handshake_frame(&mut self) -> OutFrame {
        let token = self
            .cfg
            .auth_token
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|t| t.expose().to_string());
        let (token, fingerprint) = match self.cfg.auth_mode {
            AuthMode::Token => (token, None),
            AuthMode::Mtls => (None, self.cfg.auth_fingerprint.clone()),
        };
        let has_token = token.is_some();
        let payload = HandshakePayload {
            protocol: self.cfg.protocol_version.max(1),
            auth: Auth {
                mode: self.cfg.auth_mode,
                token,
                fingerprint,
            },
            worker: WorkerInfo {
                id: self.cfg.worker_id.clone(),
                version: self.cfg.worker_version.clone(),
                hostname: self.cfg.hostname.clone(),
            },
        };
        let frame = self.build_frame(Head::new(FrameType::Handshake).request_ack(), &payload);
        if has_token {
            // Same envelope, token masked: what logs and action snapshots show.
            let mut redacted: Value = serde_json::from_str(frame.text()).unwrap_or(Value::Null);
            if let Some(t) = redacted.pointer_mut("/payload/auth/token") {
                *t = Value::String("***".into());
            }
            let r = redacted.to_string();
            frame.with_redacted(r)
        } else {
            frame
        }
    }

    pub(crate) fn register_frame(&mut self, empty_inventory: bool) -> OutFrame {
        let packages = if empty_inventory {
            Vec::new()
        } else {
            self.inventory.register_entries()
        };
        let runtimes = if self.cfg.runtimes.is_empty() {
            vec!["builtin".to_string()]
        } else {
            self.cfg.runtimes.clone()
        };
        let per_node =
            (!self.cfg.per_node_limits.is_empty()).then(|| self.cfg.per_node_limits.clone());
        let payload = RegisterPayload {
            capabilities: Capabilities {
                concurrency: Concurrency {
                    max_parallel: self.cfg.max_parallel.max(1),
                    per_node_limits: per_node,
                },
                runtimes,
                features: self
                    .cfg
                    .features
                    .iter()
                    .filter(|f| !f.is_empty())
                    .cloned()
                    .collect(),
            },
            packages,
            channels: None,
        };
        self.build_frame(Head::new(FrameType::Register).request_ack(), &payload)
    }

    pub(crate) fn heartbeat_frame(&mut self) -> (OutFrame, bool) {
        let healthy = self.health.healthy && self.draining.is_none();
        let mut metrics = Map::new();
        metrics.insert("inflight".into(), json!(self.admission.running_count()));
        metrics.insert("queued".into(), json!(self.admission.queued_count()));
        metrics.insert("outbox".into(), json!(self.outbox.len()));
        metrics.insert("resource_handles".into(), json!(0));
        metrics.insert("resource_bytes".into(), json!(0));
        for (k, v) in [
            ("cpu_pct", self.health.cpu_pct),
            ("mem_pct", self.health.mem_pct),
            ("disk_pct", self.health.disk_pct),
        ] {
            if let Some(v) = v.filter(|v| v.is_finite() && *v >= 0.0) {
                metrics.insert(k.into(), json!(v));
            }
        }
        let payload = HeartbeatPayload {
            healthy,
            metrics,
            packages: None,
        };
        (
            self.build_frame(Head::new(FrameType::Heartbeat), &payload),
            healthy,
        )
    }

    /// An ack for an inbound frame: `ack.for` = its id, corr and seq copied (spec §2.1).
    pub(crate) fn ack_frame(
        &mut self,
        for_id: &str,
        corr: Option<String>,
        seq: Option<u64>,
    ) -> OutFrame {
        let payload = AckPayload {
            ok: Some(true),
            for_id: Some(for_id.to_string()),
        };
        let mut head = Head::new(FrameType::Ack).corr(corr).seq(seq);
        head.ack_for = Some(for_id.to_string());
        self.build_frame(head, &payload)
    }
}

#[derive(Serialize)]
struct OutEnvelope<'a, P: Serialize> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    ts: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    corr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    tenant: &'a str,
    sender: Sender,
    #[serde(skip_serializing_if = "Option::is_none")]
    ack: Option<&'a AckField>,
    payload: &'a P,
}

/// `command.error` payload with the context the scheduler needs to find the run (spec §3.7).
pub(crate) fn error_payload(
    code: &str,
    message: &str,
    where_: &str,
    details: Map<String, Value>,
) -> ErrorPayload {
    ErrorPayload {
        code: if code.is_empty() {
            "E.RUNNER.FAILURE".into()
        } else {
            code.to_string()
        },
        message: non_empty_message(message),
        remediation: None,
        context: Some(ErrorContext {
            where_: Some(where_.to_string()),
            details: Some(details),
        }),
    }
}

/// The scheduler closes the socket on an empty error message (spec §3.7): never send one.
pub(crate) fn non_empty_message(message: &str) -> String {
    let m = message.trim();
    if m.is_empty() {
        "task failed without an error message".to_string()
    } else if m.len() > 4096 {
        let mut cut = 4096;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &m[..cut])
    } else {
        m.to_string()
    }
}

pub(crate) fn task_details(
    run_id: Option<&str>,
    task_id: Option<&str>,
    node_id: Option<&str>,
) -> Map<String, Value> {
    let mut d = Map::new();
    for (k, v) in [
        ("run_id", run_id),
        ("task_id", task_id),
        ("node_id", node_id),
    ] {
        if let Some(v) = v {
            d.insert(k.into(), Value::String(v.to_string()));
        }
    }
    d
}
