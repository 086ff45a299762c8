//! The v1 envelope (spec §2). `extra='forbid'` at every level: unknown keys are rejected.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Scheduler,
    Worker,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sender {
    pub role: Role,
    pub id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckField {
    #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
    pub for_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<bool>,
}

/// One frame. `payload` stays a JSON object here; the codec types it by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub ts: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub tenant: String,
    pub sender: Sender,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<AckField>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    pub payload: Map<String, Value>,
}

impl Envelope {
    pub fn ack_requested(&self) -> bool {
        self.ack.as_ref().and_then(|a| a.request).unwrap_or(false)
    }
    pub fn ack_for(&self) -> Option<&str> {
        self.ack.as_ref().and_then(|a| a.for_id.as_deref())
    }
}
