//! One end-to-end session driven by hand as a fake worker would: handshake → register →
//! submit → dispatch → double ack → feedback → result → RunFinished, through a two-node chain.

use super::super::*;
use super::harness::*;
use crate::time::Instant;
use crate::v1::codec::{decode, Body, DEFAULT_MAX_FRAME_BYTES};
use serde_json::json;
use std::time::Duration;

#[test]
fn a_fake_worker_completes_a_chain() {
    let mut h = H::new(SchedulerConfig {
        seed: 42,
        ack_race: Some(AckRace {
            window: Duration::from_millis(50),
            probability: 1.0,
        }),
        ..SchedulerConfig::default()
    });
    assert!(
        h.connect(1).is_empty(),
        "the scheduler says nothing on accept"
    );
    let out = h.frame(1, &handshake("hs", "rust-w1", "default"));
    assert_eq!(acks_for(&out), vec!["hs"]);
    assert!(matches!(
        events(&out).as_slice(),
        [SchedEvent::SessionOpened { .. }]
    ));
    let out = h.frame(1, &register("rg", "rust-w1", &[PKG]));
    assert_eq!(acks_for(&out), vec!["rg"]);

    let mut all = Vec::new();
    let out = h.submit(RunSpec::new(
        "run",
        vec![node("n1"), node("n2").after("n1")],
    ));
    all.extend(out.clone());
    let mut pending = sent_of_type(&out, "cmd.dispatch");
    let mut seen = Vec::new();
    while let Some((conn, d)) = pending.pop() {
        assert_eq!(conn, ConnId(1));
        // The worker decodes the dispatch with the strict codec, as the real worker would.
        let f = decode(&d.to_string(), DEFAULT_MAX_FRAME_BYTES).expect("strictly valid dispatch");
        let Body::Dispatch(p) = f.body else {
            panic!("not a dispatch: {d}")
        };
        seen.push((p.node_id.clone(), f.env.seq));
        // Immediate ack (lost to the race), then a second one 200 ms later (spec R1).
        h.advance(Duration::from_millis(1));
        all.extend(h.frame(1, &ack(&format!("a1-{}", p.node_id), &f.env.id)));
        h.advance(Duration::from_millis(200));
        all.extend(h.frame(1, &ack(&format!("a2-{}", p.node_id), &f.env.id)));
        all.extend(h.frame(
            1,
            &feedback(
                "fb",
                &p.run_id,
                &p.task_id,
                json!({"stage": "running", "progress": 1.0}),
            ),
        ));
        h.advance(Duration::from_millis(100));
        let out = h.frame(
            1,
            &result(
                &format!("res-{}", p.node_id),
                &p.run_id,
                &p.task_id,
                "SUCCEEDED",
            ),
        );
        assert_eq!(acks_for(&out), vec![format!("res-{}", p.node_id)]);
        pending.extend(sent_of_type(&out, "cmd.dispatch"));
        all.extend(out);
    }
    assert_eq!(
        seen,
        vec![("n1".to_string(), Some(1)), ("n2".to_string(), Some(2))]
    );
    let ev = events(&all);
    assert_eq!(
        ev.last(),
        Some(&SchedEvent::RunFinished {
            run_id: "run".into(),
            status: RunStatus::Succeeded
        })
    );
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(
                e,
                SchedEvent::AckIgnored {
                    why: AckIgnored::Race,
                    ..
                }
            ))
            .count(),
        2
    );
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, SchedEvent::DispatchAcked { .. }))
            .count(),
        2
    );

    // Nothing more happens: no waiter left, no re-dispatch later.
    assert_eq!(h.s.poll_timeout(), None);
    assert!(h.run_until(Instant::from_millis(60_000)).is_empty());
    let run = h.s.run("run").unwrap();
    assert!(run
        .nodes
        .iter()
        .all(|n| n.dispatch_count == 1 && n.results_received == 1 && n.feedback_count == 1));
    let st = h.s.stats();
    assert_eq!(
        (
            st.dispatches_sent,
            st.dispatch_acks,
            st.acks_race_dropped,
            st.ack_timeouts
        ),
        (2, 2, 2, 0)
    );
    assert_eq!(st.frames_received.get("ack"), Some(4));
    assert_eq!(h.s.sessions()[0].worker_id, "rust-w1");
}

#[test]
fn same_seed_same_transcript() {
    let transcript = |seed: u64| {
        let mut h = H::new(SchedulerConfig {
            seed,
            ..SchedulerConfig::default()
        });
        let mut out = h.worker(1, "w1", &[PKG]);
        out.extend(h.submit(RunSpec::new("r", vec![node("a"), node("b")])));
        out.extend(h.run_until(Instant::from_millis(20_000)));
        out
    };
    assert_eq!(transcript(5), transcript(5));
    assert_ne!(transcript(5), transcript(6), "ids come from the seed");
}
