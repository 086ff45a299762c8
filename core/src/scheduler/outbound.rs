//! The two frames the c4bf80a scheduler ever sends: its ack (spec §2.1) and `cmd.dispatch`
//! (spec §3.4), built exactly as the real one builds them.

use crate::v1::codec::{encode, payload_map};
use crate::v1::envelope::{AckField, Envelope, Role, Sender};
use crate::v1::payloads::{AckPayload, Constraints, DispatchPayload};
use crate::v1::types::FrameType;
use serde_json::{Map, Value};

/// The scheduler's sender, on every frame it sends.
pub fn scheduler_sender() -> Sender {
    Sender {
        role: Role::Scheduler,
        id: "scheduler-control".into(),
    }
}

/// The ack of `acked`: copies `corr` (omitted if absent) and `tenant`, never carries `seq`,
/// never requests an ack itself, and always says `ok: true`.
pub fn ack_frame(id: String, ts: String, acked: &Envelope) -> String {
    let payload = AckPayload {
        ok: Some(true),
        for_id: Some(acked.id.clone()),
    };
    encode(&Envelope {
        kind: FrameType::Ack.as_str().into(),
        id,
        ts,
        corr: acked.corr.clone(),
        seq: None,
        tenant: acked.tenant.clone(),
        sender: scheduler_sender(),
        ack: Some(AckField {
            for_id: Some(acked.id.clone()),
            request: None,
        }),
        flags: None,
        payload: payload_map(&payload),
    })
}

/// What one dispatch carries besides its envelope id and timestamp.
pub struct DispatchFields<'a> {
    pub run_id: &'a str,
    pub tenant: &'a str,
    pub node_id: &'a str,
    pub node_type: &'a str,
    pub package_name: &'a str,
    pub package_version: &'a str,
    pub parameters: &'a Map<String, Value>,
    pub seq: u64,
}

/// A `cmd.dispatch`: `corr` = task id = node id, `ack.request` always true, `constraints`
/// always `{}`, `concurrency_key` always `"<run_id>:<node_id>"`.
pub fn dispatch_frame(id: String, ts: String, f: &DispatchFields<'_>) -> String {
    let payload = DispatchPayload {
        run_id: f.run_id.into(),
        task_id: f.node_id.into(),
        node_id: f.node_id.into(),
        node_type: f.node_type.into(),
        package_name: f.package_name.into(),
        package_version: f.package_version.into(),
        parameters: f.parameters.clone(),
        constraints: Constraints::default(),
        priority: None,
        concurrency_key: Some(format!("{}:{}", f.run_id, f.node_id)),
        resource_refs: None,
        affinity: None,
    };
    encode(&Envelope {
        kind: FrameType::Dispatch.as_str().into(),
        id,
        ts,
        corr: Some(f.node_id.into()),
        seq: Some(f.seq),
        tenant: f.tenant.into(),
        sender: scheduler_sender(),
        ack: Some(AckField {
            for_id: None,
            request: Some(true),
        }),
        flags: None,
        payload: payload_map(&payload),
    })
}
