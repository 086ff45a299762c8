//! Rule 1: strict inbound validation. Every malformed frame closes the socket with 1011
//! `internal error` and removes the session; unknown and scheduler-bound types are ignored.

use super::super::*;
use super::harness::*;
use crate::worker::io::Incoming;
use serde_json::{json, Value};

/// A mutation of a valid frame, and a fragment the rejection reason must contain.
struct Case {
    name: &'static str,
    base: Value,
    mutate: fn(&mut Value),
    reason: &'static str,
}

fn valid_result() -> Value {
    result("r-1", "run-x", "a", "SUCCEEDED")
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "extra envelope key",
            base: heartbeat("hb"),
            mutate: |v| v["bogus"] = json!(1),
            reason: "bogus",
        },
        Case {
            name: "extra sender key",
            base: heartbeat("hb"),
            mutate: |v| v["sender"]["extra"] = json!("x"),
            reason: "extra",
        },
        Case {
            name: "extra payload key",
            base: valid_result(),
            mutate: |v| v["payload"]["surprise"] = json!(true),
            reason: "surprise",
        },
        Case {
            name: "naive ts",
            base: heartbeat("hb"),
            mutate: |v| v["ts"] = json!("2025-11-03T13:20:00.000000"),
            reason: "`ts`",
        },
        Case {
            name: "negative seq",
            base: valid_result(),
            mutate: |v| v["seq"] = json!(-1),
            reason: "`seq`",
        },
        Case {
            name: "lower-case status",
            base: valid_result(),
            mutate: |v| v["payload"]["status"] = json!("succeeded"),
            reason: "status",
        },
        Case {
            name: "queues in register",
            base: register("reg", "w1", &[PKG]),
            mutate: |v| v["payload"]["queues"] = json!(["default"]),
            reason: "queues",
        },
        Case {
            name: "empty command.error message",
            base: command_error("e", "a", json!({"run_id": "run-x"})),
            mutate: |v| v["payload"]["message"] = json!(""),
            reason: "message",
        },
        Case {
            name: "progress out of range",
            base: feedback("f", "run-x", "a", json!({"progress": 0.5})),
            mutate: |v| v["payload"]["progress"] = json!(1.5),
            reason: "progress",
        },
        Case {
            name: "wrong type",
            base: heartbeat("hb"),
            mutate: |v| v["payload"]["healthy"] = json!("yes"),
            reason: "healthy",
        },
        Case {
            name: "ack payload not an object",
            base: ack("a1", "nothing"),
            mutate: |v| v["payload"] = json!([]),
            reason: "payload",
        },
    ]
}

#[test]
fn every_malformed_frame_closes_1011_and_removes_the_session() {
    for case in cases() {
        let mut h = H::default_cfg();
        h.worker(1, "w1", &[PKG]);
        // The unmutated frame is accepted: the mutation alone causes the rejection.
        let ok = h.frame(1, &case.base);
        assert!(
            closes(&ok).is_empty(),
            "{}: base frame was refused: {ok:?}",
            case.name
        );
        assert_eq!(h.s.sessions().len(), 1, "{}", case.name);

        let mut bad = case.base.clone();
        (case.mutate)(&mut bad);
        let out = h.frame(1, &bad);
        assert_eq!(
            closes(&out),
            vec![(ConnId(1), 1011, "internal error".to_string())],
            "{}",
            case.name
        );
        let reason = rejected(&out).unwrap_or_else(|| panic!("{}: no Rejected event", case.name));
        assert!(
            reason.contains(case.reason),
            "{}: reason {reason:?} lacks {:?}",
            case.name,
            case.reason
        );
        assert!(
            sends(&out).is_empty(),
            "{}: nothing is sent before the close: {out:?}",
            case.name
        );
        assert!(
            h.s.sessions().is_empty(),
            "{}: session must be removed",
            case.name
        );
        assert_eq!(h.s.stats().rejections, 1, "{}", case.name);

        // The connection is dead: later frames are not read.
        let after = h.frame(1, &heartbeat("late"));
        assert!(after.is_empty(), "{}: {after:?}", case.name);
        assert_eq!(h.s.stats().frames_ignored, 1);
    }
}

#[test]
fn binary_and_bad_json_close_1011() {
    for (name, input) in [
        ("binary", Incoming::Binary(12)),
        (
            "bad json",
            Incoming::Text("{\"type\": \"heartbeat\", ".into()),
        ),
        ("not an object", Incoming::Text("[1,2]".into())),
    ] {
        let mut h = H::default_cfg();
        h.worker(1, "w1", &[PKG]);
        let out = h.input(SchedInput::Frame(ConnId(1), input));
        assert_eq!(
            closes(&out),
            vec![(ConnId(1), 1011, "internal error".into())],
            "{name}"
        );
        assert!(rejected(&out).is_some(), "{name}");
        assert!(h.s.sessions().is_empty(), "{name}");
    }
}

#[test]
fn oversized_frame_is_closed_like_uvicorn_with_1009() {
    let mut h = H::new(SchedulerConfig {
        max_frame_bytes: 1000,
        ..SchedulerConfig::default()
    });
    h.worker(1, "w1", &[]);
    assert_eq!(h.s.sessions().len(), 1, "normal frames fit");
    let mut hb = heartbeat("hb");
    hb["payload"]["metrics"]["pad"] = json!("x".repeat(1000));
    let out = h.frame(1, &hb);
    assert_eq!(
        closes(&out),
        vec![(ConnId(1), 1009, "message too big".into())]
    );
    assert!(h.s.sessions().is_empty());
}

#[test]
fn unknown_and_scheduler_bound_types_are_ignored_without_ack() {
    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    let mut unknown = with_ack_request(heartbeat("u1"));
    unknown["type"] = json!("error");
    unknown["payload"] = json!({"anything": "goes"});
    // A pkg.install and a cmd.dispatch from a worker, even with payloads their models
    // would refuse: the scheduler has no handler, so it never validates them.
    let mut install = with_ack_request(heartbeat("u2"));
    install["type"] = json!("pkg.install");
    install["payload"] = json!({"bogus": 1});
    let mut dispatch = with_ack_request(heartbeat("u3"));
    dispatch["type"] = json!("cmd.dispatch");
    for f in [unknown, install, dispatch] {
        let out = h.frame(1, &f);
        assert!(closes(&out).is_empty(), "{out:?}");
        assert!(sends(&out).is_empty(), "never acked: {out:?}");
        assert!(
            matches!(events(&out).as_slice(), [SchedEvent::UnknownIgnored { .. }]),
            "{out:?}"
        );
    }
    assert_eq!(h.s.sessions().len(), 1);
    // Each is counted under its type; a type the dialect does not know under `unknown`.
    let counted: Vec<(&str, u64)> = h.s.stats().frames_received.iter().collect();
    assert_eq!(
        counted,
        [
            ("cmd.dispatch", 1),
            ("handshake", 1),
            ("pkg.install", 1),
            ("register", 1),
            ("unknown", 1)
        ]
    );
    // The envelope is still strict for an unknown type.
    let mut bad = heartbeat("u4");
    bad["type"] = json!("error");
    bad["extra"] = json!(1);
    assert_eq!(closes(&h.frame(1, &bad)).len(), 1);
}

#[test]
fn frames_on_unknown_connections_are_ignored() {
    let mut h = H::default_cfg();
    let out = h.frame(9, &handshake("hs", "w9", "default"));
    assert!(out.is_empty());
    assert!(h.s.sessions().is_empty());
    assert_eq!(h.s.stats().frames_ignored, 1);
}
