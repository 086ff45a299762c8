//! Conformance against real traffic: every frame the c4bf80a scheduler and its Python worker
//! exchanged on loopback (fixture copied from the reference recording) must pass our strict
//! codec, and the decoded shapes must carry what our worker relies on.

use astra_core::v1::codec::{decode, Body, DEFAULT_MAX_FRAME_BYTES};
use serde_json::Value;

fn frames() -> Vec<(String, String, Value)> {
    include_str!("fixtures/astraflow-frames-c4bf80a.jsonl")
        .lines()
        .skip(1)
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("fixture line is JSON");
            (
                v["dir"].as_str().unwrap().to_string(),
                v["phase"].as_str().unwrap().to_string(),
                v["frame"].clone(),
            )
        })
        .collect()
}

#[test]
fn every_recorded_frame_decodes_strictly() {
    let all = frames();
    assert!(all.len() > 2000, "fixture truncated: {}", all.len());
    for (dir, phase, f) in &all {
        let text = f.to_string();
        let d = decode(&text, DEFAULT_MAX_FRAME_BYTES)
            .unwrap_or_else(|e| panic!("{dir} {phase}: {e}\n{text}"));
        assert!(
            !matches!(d.body, Body::Unknown(_)),
            "{dir} {phase}: unknown type {}",
            d.env.kind
        );
    }
}

#[test]
fn recorded_dispatches_have_the_documented_shape() {
    let mut n = 0;
    for (_, _, f) in frames()
        .into_iter()
        .filter(|(d, _, f)| d == "scheduler->worker" && f["type"] == "cmd.dispatch")
    {
        let d = decode(&f.to_string(), DEFAULT_MAX_FRAME_BYTES).unwrap();
        let Body::Dispatch(p) = d.body else { panic!() };
        assert!(
            d.env.ack_requested(),
            "every dispatch requests an ack (spec §0.7)"
        );
        assert_eq!(
            d.env.corr.as_deref(),
            Some(p.task_id.as_str()),
            "corr = task id"
        );
        assert_eq!(
            p.concurrency_key.as_deref(),
            Some(format!("{}:{}", p.run_id, p.node_id).as_str())
        );
        assert!(d.env.seq.unwrap_or(0) >= 1);
        n += 1;
    }
    assert!(n >= 400, "{n}");
}

#[test]
fn recorded_scheduler_acks_reference_the_acked_id() {
    for (_, _, f) in frames()
        .into_iter()
        .filter(|(d, _, f)| d == "scheduler->worker" && f["type"] == "ack")
    {
        assert_eq!(f["ack"]["for"], f["payload"]["for"]);
        assert_eq!(f["payload"]["ok"], true);
        assert!(f.get("seq").is_none());
    }
}
