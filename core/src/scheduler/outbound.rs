//! The two frames the c4bf80a scheduler ever sends: its ack (spec §2.1) and `cmd.dispatch`
//! (spec §3.4), built exactly as the real one builds them.

use crate::v1::envelope::{Envelope, Role, Sender};
use crate::v1::json_out::JsonOut;
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
///
/// Written by hand, byte for byte what `encode(&Envelope { .., payload: payload_map(..) })`
/// gives (envelope fields in declaration order, payload keys in serde_json `Map` order,
/// which is sorted); the test below compares the two.
pub fn ack_frame(id: String, ts: String, acked: &Envelope) -> String {
    let mut buf = String::with_capacity(220 + acked.id.len() * 2);
    let mut o = JsonOut::new(&mut buf);
    head(&mut o, FrameType::Ack, &id, &ts, acked.corr.as_deref());
    o.raw(",\"tenant\":").str(&acked.tenant);
    o.raw(SENDER).raw(",\"ack\":{\"for\":");
    // The acked id twice: escaped once, its JSON text then copied.
    let at = o.written();
    o.str(&acked.id);
    let end = o.written();
    o.raw("},\"payload\":{\"for\":").repeat(at..end);
    o.raw(",\"ok\":true}}");
    buf
}

/// `{"type":…,"id":…,"ts":…[,"corr":…]`: the start every scheduler frame shares. The
/// scheduler machine passes a generated UUID and an RFC 3339 stamp, but these writers are
/// public (tests build scheduler frames with them), so `id` and `ts` are escaped like any
/// string: the scan of 36 + 32 plain bytes is a few word steps.
fn head(o: &mut JsonOut<'_>, kind: FrameType, id: &str, ts: &str, corr: Option<&str>) {
    o.raw("{\"type\":\"")
        .raw(kind.as_str())
        .raw("\",\"id\":")
        .str(id);
    o.raw(",\"ts\":").str(ts);
    if let Some(c) = corr {
        o.raw(",\"corr\":").str(c);
    }
}

/// `scheduler_sender()` as JSON, after a comma.
const SENDER: &str = ",\"sender\":{\"role\":\"scheduler\",\"id\":\"scheduler-control\"}";

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
/// always `{}`, `concurrency_key` always `"<run_id>:<node_id>"`. Written by hand like
/// [`ack_frame`], with the payload keys in sorted (`Map`) order.
pub fn dispatch_frame(id: String, ts: String, f: &DispatchFields<'_>) -> String {
    let mut buf = String::with_capacity(512);
    let mut o = JsonOut::new(&mut buf);
    head(&mut o, FrameType::Dispatch, &id, &ts, Some(f.node_id));
    o.raw(",\"seq\":").u64(f.seq);
    o.raw(",\"tenant\":").str(f.tenant);
    o.raw(SENDER).raw(",\"ack\":{\"request\":true}");
    o.raw(",\"payload\":{\"concurrency_key\":")
        .str_joined(&[f.run_id, ":", f.node_id]);
    o.raw(",\"constraints\":{},\"node_id\":").str(f.node_id);
    o.raw(",\"node_type\":").str(f.node_type);
    o.raw(",\"package_name\":").str(f.package_name);
    o.raw(",\"package_version\":").str(f.package_version);
    o.raw(",\"parameters\":").map(f.parameters);
    o.raw(",\"run_id\":").str(f.run_id);
    o.raw(",\"task_id\":").str(f.node_id);
    o.raw("}}");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::codec::{encode, payload_map};
    use crate::v1::envelope::AckField;
    use crate::v1::payloads::{AckPayload, Constraints, DispatchPayload};

    /// The serde construction these frames were built with before (kept as the oracle).
    fn serde_ack(id: String, ts: String, acked: &Envelope) -> String {
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

    fn serde_dispatch(id: String, ts: String, f: &DispatchFields<'_>) -> String {
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

    /// What the scheduler machine passes as `id` and `ts` (a generated UUID and a stamp)
    /// for even `i`; strings that need escaping for odd `i` (the writers are public).
    fn id_ts(i: usize) -> (String, String) {
        if i % 2 == 1 {
            let w = WEIRD[i % WEIRD.len()];
            return (format!("i{w}"), format!("t{w}"));
        }
        let mut r = crate::rng::Rng::new(i as u64);
        (
            r.uuid_v4(),
            crate::time::format_rfc3339_micros(r.below(253_402_300_800_000_000)),
        )
    }

    const WEIRD: [&str; 5] = ["plain", "q\"uo\\te", "ctl\u{1}\n\t", "é☃😀", ""];

    #[test]
    fn hand_written_frames_equal_the_serde_ones() {
        let params: Map<String, Value> =
            serde_json::from_str(r#"{"z":[1,2.5,{"k":null}],"a":"x\ny","m":-3,"t":true}"#)
                .unwrap_or_default();
        for (i, w) in WEIRD.iter().enumerate() {
            for corr in [None, Some(w.to_string())] {
                let acked = Envelope {
                    kind: "result".into(),
                    id: format!("id-{w}"),
                    ts: "2025-11-03T13:20:00Z".into(),
                    corr,
                    seq: Some(3),
                    tenant: w.to_string(),
                    sender: scheduler_sender(),
                    ack: None,
                    flags: None,
                    payload: Map::new(),
                };
                let (id, ts) = id_ts(i);
                assert_eq!(
                    ack_frame(id.clone(), ts.clone(), &acked),
                    serde_ack(id, ts, &acked)
                );
            }
            let empty = Map::new();
            let f = DispatchFields {
                run_id: w,
                tenant: WEIRD[(i + 1) % 5],
                node_id: WEIRD[(i + 2) % 5],
                node_type: WEIRD[(i + 3) % 5],
                package_name: WEIRD[(i + 4) % 5],
                package_version: w,
                parameters: if i % 2 == 0 { &params } else { &empty },
                seq: i as u64 * 1_000_000_007,
            };
            let (id, ts) = id_ts(i + 101);
            assert_eq!(
                dispatch_frame(id.clone(), ts.clone(), &f),
                serde_dispatch(id, ts, &f)
            );
        }
    }
}
