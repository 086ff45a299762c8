//! Rule 2: which frames are acked, and the ack envelope compared key for key with acks the
//! real scheduler sent (copied from astraflow-frames-c4bf80a.jsonl).

use super::super::*;
use super::harness::*;
use crate::v1::codec::{decode, Body, DEFAULT_MAX_FRAME_BYTES};
use serde_json::{json, Value};

/// conn1-startup: the Python worker's handshake and the real scheduler's ack of it.
const REAL_HANDSHAKE: &str = r#"{"type": "handshake", "id": "handshake-0", "ts": "2026-11-22T05:50:01.597225+00:00", "tenant": "default", "sender": {"role": "worker", "id": "worker-py-1"}, "ack": {"request": true}, "payload": {"protocol": 1, "auth": {"mode": "token", "token": "dev-token"}, "worker": {"id": "worker-py-1", "version": "0.1.0", "hostname": "vm"}}}"#;
const REAL_HANDSHAKE_ACK: &str = r#"{"type": "ack", "id": "ca5eee50-80ec-492b-8017-ab1da752fdd3", "ts": "2026-11-22T05:50:01.606224+00:00", "tenant": "default", "sender": {"role": "scheduler", "id": "scheduler-control"}, "ack": {"for": "handshake-0"}, "payload": {"ok": true, "for": "handshake-0"}}"#;
/// run-echo1: a result whose `corr` is the dispatch id (Python worker), and its real ack.
const REAL_RESULT: &str = r#"{"type": "result", "id": "result-4", "ts": "2026-11-22T05:50:17.594423+00:00", "corr": "e11b60f6-0209-404b-8f34-d1b56f9b0881", "seq": 1, "tenant": "default", "sender": {"role": "worker", "id": "worker-py-1"}, "ack": {"request": true}, "payload": {"run_id": "ad785bd6-ffef-490b-b9d3-4e75b2938b93", "task_id": "node-echo-1", "status": "SUCCEEDED", "result": {"echo": "hello from loopback"}, "duration_ms": 0, "metadata": {"concurrency_key": "ad785bd6-ffef-490b-b9d3-4e75b2938b93:node-echo-1", "constraints": {}}}}"#;
const REAL_RESULT_ACK: &str = r#"{"type": "ack", "id": "1e3e9750-886d-4bf7-a530-7b4a331742d3", "ts": "2026-11-22T05:50:17.598110+00:00", "corr": "e11b60f6-0209-404b-8f34-d1b56f9b0881", "tenant": "default", "sender": {"role": "scheduler", "id": "scheduler-control"}, "ack": {"for": "result-4"}, "payload": {"ok": true, "for": "result-4"}}"#;

/// Same keys at every level, same values except the fresh `id` and `ts`.
fn assert_same_shape(ours: &Value, real: &Value, path: &str) {
    match (ours, real) {
        (Value::Object(a), Value::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            let (mut ka, mut kb) = (ka, kb);
            ka.sort();
            kb.sort();
            assert_eq!(ka, kb, "keys differ at {path}");
            for (k, v) in a {
                let p = format!("{path}.{k}");
                if path.is_empty() && (k == "id" || k == "ts") {
                    continue;
                }
                assert_same_shape(v, &b[k], &p);
            }
        }
        _ => assert_eq!(ours, real, "value differs at {path}"),
    }
}

fn our_ack_of(h: &mut H, conn: u64, frame: &str) -> Value {
    let out = h.text(conn, frame);
    let acks = sent_of_type(&out, "ack");
    assert_eq!(acks.len(), 1, "{out:?}");
    acks[0].1.clone()
}

#[test]
fn acks_match_the_recorded_scheduler_acks_key_for_key() {
    let mut h = H::default_cfg();
    h.connect(1);
    let ours = our_ack_of(&mut h, 1, REAL_HANDSHAKE);
    assert_same_shape(
        &ours,
        &serde_json::from_str(REAL_HANDSHAKE_ACK).unwrap(),
        "",
    );
    assert!(ours.get("corr").is_none() && ours.get("seq").is_none());

    // A result for an unknown run is still acked, copying its corr but never its seq.
    let ours = our_ack_of(&mut h, 1, REAL_RESULT);
    assert_same_shape(&ours, &serde_json::from_str(REAL_RESULT_ACK).unwrap(), "");

    // Fresh uuid4 ids and aware timestamps; the ack is itself a valid frame.
    let id = ours["id"].as_str().unwrap();
    assert_eq!((id.len(), &id[14..15]), (36, "4"));
    let f = decode(&ours.to_string(), DEFAULT_MAX_FRAME_BYTES).expect("our ack decodes strictly");
    assert!(matches!(f.body, Body::Ack(_)));
    assert!(!f.env.ack_requested());
}

#[test]
fn ack_copies_the_acked_tenant_and_uses_the_time_given() {
    let mut h = H::new(SchedulerConfig {
        wall: crate::time::WallClock::new(1_762_175_750_000_000),
        ..Default::default()
    });
    h.connect(1);
    h.advance_to(crate::time::Instant::from_micros(123_456));
    let ours = our_ack_of(&mut h, 1, &handshake("hs", "w1", "acme").to_string());
    assert_eq!(ours["tenant"], "acme");
    assert_eq!(ours["ts"], "2025-11-03T13:15:50.123456+00:00");
}

#[test]
fn which_frames_are_acked() {
    let mut h = H::default_cfg();
    h.connect(1);
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("ack");
        v
    };
    // handshake and register: always, even without a request.
    assert_eq!(
        acks_for(&h.frame(1, &strip(handshake("hs", "w1", "default")))),
        vec!["hs"]
    );
    assert_eq!(
        acks_for(&h.frame(1, &strip(register("rg", "w1", &[PKG])))),
        vec!["rg"]
    );
    // The rest: only when requested.
    let others = [
        heartbeat("hb"),
        result("rs", "no-run", "a", "SUCCEEDED"),
        feedback("fb", "no-run", "a", json!({})),
        command_error("ce", "a", json!({"run_id": "no-run"})),
        json!({"type": "pkg.event", "id": "pe", "ts": TS, "tenant": "default",
               "sender": {"role": "worker", "id": "w1"},
               "payload": {"name": "p", "version": "1", "status": "installed"}}),
    ];
    for f in others {
        let id = f["id"].as_str().unwrap().to_string();
        assert!(
            acks_for(&h.frame(1, &strip(f.clone()))).is_empty(),
            "{id} acked without request"
        );
        assert_eq!(
            acks_for(&h.frame(1, &with_ack_request(f))),
            vec![id.clone()],
            "{id}"
        );
    }
    // Ack frames are never acked, even when they ask.
    assert!(acks_for(&h.frame(1, &with_ack_request(ack("a1", "x")))).is_empty());
    assert_eq!(h.s.stats().acks_sent, 2 + 5);
}

#[test]
fn result_is_acked_before_processing_and_error_after() {
    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    h.submit(RunSpec::new("r", vec![node("a")]));
    let out = h.frame(1, &result("rs", "r", "a", "SUCCEEDED"));
    let ack_pos = out
        .iter()
        .position(|a| matches!(a, SchedAction::Send { .. }))
        .unwrap();
    let rec_pos = out
        .iter()
        .position(|a| matches!(a, SchedAction::Event(SchedEvent::ResultRecorded { .. })))
        .unwrap();
    assert!(ack_pos < rec_pos, "{out:?}");

    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    h.submit(RunSpec::new("r", vec![node("a")]));
    let out = h.frame(1, &command_error("ce", "a", json!({"run_id": "r"})));
    let ack_pos = out
        .iter()
        .position(|a| matches!(a, SchedAction::Send { .. }))
        .unwrap();
    let rec_pos = out
        .iter()
        .position(|a| {
            matches!(
                a,
                SchedAction::Event(SchedEvent::CommandErrorRecorded { .. })
            )
        })
        .unwrap();
    assert!(rec_pos < ack_pos, "{out:?}");
}
