//! Rules 4 and 5: routing, the dispatch frame, seq assignment, the ack waiter and re-dispatch,
//! the unavailable give-up timing, and the modelled ack race.

use super::super::*;
use super::harness::*;
use crate::time::Instant;
use crate::v1::codec::{decode, Body, DEFAULT_MAX_FRAME_BYTES};
use serde_json::json;
use std::time::Duration;

#[test]
fn dispatch_frame_has_the_c4bf80a_shape_and_decodes_strictly() {
    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    let out = h.submit(RunSpec::new("run-1", vec![node("n1")]));
    let d = sent_of_type(&out, "cmd.dispatch");
    assert_eq!(d.len(), 1);
    let (conn, v) = &d[0];
    assert_eq!(*conn, ConnId(1));
    assert_eq!(v["corr"], "n1");
    assert_eq!(v["seq"], 1);
    assert_eq!(v["tenant"], "default");
    assert_eq!(v["ack"], json!({"request": true}));
    assert_eq!(
        v["sender"],
        json!({"role": "scheduler", "id": "scheduler-control"})
    );
    assert_eq!(
        v["payload"],
        json!({"run_id": "run-1", "task_id": "n1", "node_id": "n1", "node_type": "example.pkg.echo",
               "package_name": "example.pkg", "package_version": "1.0.0", "parameters": {"message": "n1"},
               "constraints": {}, "concurrency_key": "run-1:n1"})
    );
    let keys: std::collections::BTreeSet<&str> =
        v.as_object().unwrap().keys().map(String::as_str).collect();
    let expected = [
        "ack", "corr", "id", "payload", "sender", "seq", "tenant", "ts", "type",
    ];
    assert_eq!(keys, expected.into_iter().collect());
    let f = decode(&v.to_string(), DEFAULT_MAX_FRAME_BYTES).expect("valid for a strict worker");
    assert!(matches!(f.body, Body::Dispatch(_)));
    let node = h.s.run("run-1").unwrap().node("n1").unwrap();
    assert_eq!(
        (node.status, node.pending_ack, node.worker_id.as_deref()),
        (NodeStatus::Running, true, Some("w1"))
    );
}

#[test]
fn routing_takes_the_first_exact_package_match_in_registration_order() {
    let mut h = H::default_cfg();
    h.connect(1);
    h.frame(1, &handshake("h1", "w1", "default"));
    // w1's entry is `failed`: the status is ignored.
    let mut reg = register("r1", "w1", &[]);
    reg["payload"]["packages"] =
        json!([{"name": "example.pkg", "version": "1.0.0", "status": "failed"}]);
    h.frame(1, &reg);
    h.worker(2, "w2", &[PKG, (PKG.0, "2.0.0")]);
    h.connect(3);
    h.frame(3, &handshake("h3", "w3", "acme"));
    h.frame(3, &register("r3", "w3", &[(PKG.0, "3.0.0")]));
    let spec = RunSpec::new(
        "r",
        vec![
            node("v1"),
            NodeSpec::new("v2", "t", PKG.0, "2.0.0"),
            NodeSpec::new("prefix", "t", PKG.0, "1.0"),
            NodeSpec::new("other-tenant", "t", PKG.0, "3.0.0"),
        ],
    );
    let out = h.submit(spec);
    let got: Vec<(String, ConnId)> = dispatches(&out)
        .into_iter()
        .map(|(_, n, _, c)| (n, c))
        .collect();
    assert_eq!(
        got,
        vec![("v1".into(), ConnId(1)), ("v2".into(), ConnId(2))]
    );
    let pending: Vec<String> = events(&out)
        .into_iter()
        .filter_map(|e| match e {
            SchedEvent::DispatchPending { node_id, .. } => Some(node_id),
            _ => None,
        })
        .collect();
    assert_eq!(pending, vec!["prefix", "other-tenant"]);
}

#[test]
fn seq_is_per_run_in_readiness_order() {
    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    let out = h.submit(RunSpec::new(
        "r",
        vec![node("c").after("a").after("b"), node("a"), node("b")],
    ));
    let got: Vec<(String, u64)> = dispatches(&out)
        .into_iter()
        .map(|(_, n, s, _)| (n, s))
        .collect();
    assert_eq!(got, vec![("a".into(), 1), ("b".into(), 2)]);
    h.frame(1, &result("x1", "r", "a", "SUCCEEDED"));
    let out = h.frame(1, &result("x2", "r", "b", "SUCCEEDED"));
    assert_eq!(
        dispatches(&out)
            .into_iter()
            .map(|(_, n, s, _)| (n, s))
            .collect::<Vec<_>>(),
        vec![("c".into(), 3)]
    );
    let out = h.submit(RunSpec::new("r2", vec![node("a")]));
    assert_eq!(dispatches(&out)[0].2, 1, "each run counts from 1");
}

#[test]
fn ack_timeout_redispatches_with_same_seq_and_new_id() {
    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    let out = h.submit(RunSpec::new("r", vec![node("a")]));
    let (first_id, _, seq, _) = dispatches(&out)[0].clone();
    assert_eq!(h.s.poll_timeout(), Some(secs(5)));

    let early = h.run_until(Instant::from_millis(4_999));
    assert!(
        early.is_empty(),
        "nothing before the 5 s deadline: {early:?}"
    );
    let out = h.run_until(secs(5));
    assert!(events(&out).contains(&SchedEvent::AckTimeout {
        run_id: "r".into(),
        node_id: "a".into(),
        dispatch_id: first_id.clone(),
        seq
    }));
    assert!(
        dispatches(&out).is_empty(),
        "re-dispatch waits for the 1 s backoff"
    );
    assert_eq!(h.s.run("r").unwrap().nodes[0].status, NodeStatus::Queued);

    let out = h.run_until(secs(6));
    let d = dispatches(&out);
    assert_eq!(d.len(), 1);
    assert_ne!(d[0].0, first_id);
    assert_eq!(d[0].2, seq);

    // The first id is no longer awaited; the new one is.
    let out = h.frame(1, &ack("k1", &first_id));
    assert!(matches!(
        events(&out).as_slice(),
        [SchedEvent::AckIgnored {
            why: AckIgnored::Unknown,
            ..
        }]
    ));
    let out = h.frame(1, &ack("k2", &d[0].0));
    assert!(matches!(
        events(&out).as_slice(),
        [SchedEvent::DispatchAcked { .. }]
    ));
    assert_eq!(h.s.poll_timeout(), None);
    let n = &h.s.run("r").unwrap().nodes[0];
    assert_eq!(
        (n.status, n.pending_ack, n.dispatch_count),
        (NodeStatus::Running, false, 2)
    );
}

#[test]
fn a_worker_that_never_acks_is_redispatched_forever() {
    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    h.submit(RunSpec::new("r", vec![node("a")]));
    let out = h.run_until(secs(600));
    // A send every 6 s (5 s wait + 1 s backoff): 100 more in 600 s, and never a give-up.
    assert_eq!(dispatches(&out).len(), 100);
    assert!(!events(&out)
        .iter()
        .any(|e| matches!(e, SchedEvent::DispatchUnavailable { .. })));
    assert!(dispatches(&out).iter().all(|d| d.2 == 1));
    assert_eq!(h.s.stats().dispatches_sent, 101);
}

#[test]
fn no_worker_gives_up_after_1_2_4_8_16_seconds() {
    let mut h = H::default_cfg();
    let out0 = h.submit(RunSpec::new("r", vec![node("a")]));
    let mut all = out0.clone();
    let before = h.run_until(Instant::from_millis(30_999));
    assert!(!events(&before)
        .iter()
        .any(|e| matches!(e, SchedEvent::DispatchUnavailable { .. })));
    all.extend(before);
    all.extend(h.run_until(secs(31)));
    let retry_at: Vec<Instant> = events(&all)
        .into_iter()
        .filter_map(|e| match e {
            SchedEvent::DispatchPending { retry_at, .. } => Some(retry_at),
            _ => None,
        })
        .collect();
    assert_eq!(
        retry_at,
        vec![secs(1), secs(3), secs(7), secs(15), secs(31)]
    );
    let ev = events(&all);
    assert!(ev.contains(&SchedEvent::DispatchUnavailable {
        run_id: "r".into(),
        node_id: "a".into(),
        failures: 6,
        reason: "worker unavailable".into()
    }));
    assert_eq!(
        ev.last(),
        Some(&SchedEvent::RunFinished {
            run_id: "r".into(),
            status: RunStatus::Failed
        })
    );
    let run = h.s.run("r").unwrap();
    let err = run.error.as_ref().unwrap();
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        ("E.DISPATCH.UNAVAILABLE", "worker unavailable")
    );
    assert_eq!(run.nodes[0].status, NodeStatus::Failed);
    assert_eq!(run.finished_at, Some(secs(31)));
    assert_eq!(h.s.poll_timeout(), None);
}

#[test]
fn a_worker_registering_during_backoff_gets_the_node_at_the_next_retry() {
    let mut h = H::default_cfg();
    h.submit(RunSpec::new("r", vec![node("a")]));
    h.run_until(secs(2)); // failures at 0 s and 1 s; next try at 3 s
    let out = h.worker(1, "w1", &[PKG]);
    assert!(
        dispatches(&out).is_empty(),
        "no immediate dispatch on register"
    );
    assert!(dispatches(&h.run_until(Instant::from_millis(2_999))).is_empty());
    let out = h.run_until(secs(3));
    assert_eq!(dispatches(&out).len(), 1);
}

#[test]
fn an_undispatchable_run_does_not_block_other_runs() {
    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    h.submit(RunSpec::new(
        "stuck",
        vec![NodeSpec::new("x", "t", "missing.pkg", "1")],
    ));
    h.run_until(secs(2));
    let out = h.submit(RunSpec::new("fine", vec![node("a")]));
    assert_eq!(
        dispatches(&out).len(),
        1,
        "dispatched at once, no head-of-line wait"
    );
}

fn race_cfg(probability: f64) -> SchedulerConfig {
    SchedulerConfig {
        ack_race: Some(AckRace {
            window: Duration::from_millis(100),
            probability,
        }),
        ..SchedulerConfig::default()
    }
}

#[test]
fn ack_race_drops_an_early_ack_but_not_a_late_one() {
    let mut h = H::new(race_cfg(1.0));
    h.worker(1, "w1", &[PKG]);
    let out = h.submit(RunSpec::new("r", vec![node("a")]));
    let id = dispatches(&out)[0].0.clone();
    h.advance(Duration::from_millis(10));
    let out = h.frame(1, &ack("k1", &id));
    assert!(matches!(
        events(&out).as_slice(),
        [SchedEvent::AckIgnored {
            why: AckIgnored::Race,
            ..
        }]
    ));
    assert_eq!(h.s.poll_timeout(), Some(secs(5)), "the waiter still runs");
    // The worker's second ack (spec R1) lands after the window and settles it.
    h.advance(Duration::from_millis(190));
    let out = h.frame(1, &ack("k2", &id));
    assert!(matches!(
        events(&out).as_slice(),
        [SchedEvent::DispatchAcked { .. }]
    ));
    assert_eq!(h.s.poll_timeout(), None);
    assert_eq!(h.s.stats().acks_race_dropped, 1);
}

#[test]
fn ack_race_with_a_single_early_ack_causes_a_redispatch() {
    for (p, expect_timeout) in [(1.0, true), (0.0, false)] {
        let mut h = H::new(race_cfg(p));
        h.worker(1, "w1", &[PKG]);
        let out = h.submit(RunSpec::new("r", vec![node("a")]));
        h.frame(1, &ack("k1", &dispatches(&out)[0].0));
        let later = h.run_until(secs(7));
        assert_eq!(
            dispatches(&later).len(),
            usize::from(expect_timeout),
            "p = {p}"
        );
    }
}

#[test]
fn zero_durations_fire_once_per_input() {
    // Zero ack timeout and retry delay: every firing sets the next deadline at `now`
    // itself, which must wait for the next input instead of firing in the same call.
    let mut h = H::new(SchedulerConfig {
        seed: 7,
        ack_timeout: Duration::ZERO,
        base_retry: Duration::ZERO,
        max_retry: Duration::ZERO,
        max_attempts: 100,
        ..SchedulerConfig::default()
    });
    h.worker(1, "w1", &[PKG]);
    let out = h.submit(RunSpec::new("r", vec![node("a"), node("b")]));
    assert_eq!(dispatches(&out).len(), 2);
    assert_eq!(
        h.s.poll_timeout(),
        Some(h.now),
        "both ack waiters are due at once"
    );
    for round in 1..=3u32 {
        let out = h.input(SchedInput::Tick);
        let timeouts = events(&out)
            .iter()
            .filter(|e| matches!(e, SchedEvent::AckTimeout { .. }))
            .count();
        // Tick k fires what tick k-1 set: the two ack waiters (retries set at `now`), or
        // the two retries (which dispatch and set ack waiters at `now`).
        assert_eq!(
            timeouts,
            if round % 2 == 1 { 2 } else { 0 },
            "round {round}"
        );
        let sent = dispatches(&out).len();
        assert_eq!(sent, if round % 2 == 0 { 2 } else { 0 }, "round {round}");
        assert_eq!(h.s.poll_timeout(), Some(h.now));
    }
    // Round 3 fired the ack waiters again: two retries are pending; one more tick dispatches.
    let out = h.input(SchedInput::Tick);
    assert_eq!(dispatches(&out).len(), 2);
}

#[test]
fn acked_waiters_leave_no_timer_behind() {
    let mut h = H::default_cfg();
    h.worker(1, "w1", &[PKG]);
    let out = h.submit(RunSpec::new("r", vec![node("a"), node("b"), node("c")]));
    let sent: Vec<String> = events(&out)
        .iter()
        .filter_map(|e| match e {
            SchedEvent::Dispatched { dispatch_id, .. } => Some(dispatch_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 3);
    h.advance(Duration::from_millis(10));
    // The earliest waiter is acked first, then the latest, then the middle one: whichever
    // was the earliest, the next deadline reported is a live one.
    for (i, k) in [0, 2, 1].into_iter().enumerate() {
        let before = h.s.poll_timeout();
        h.frame(1, &ack(&format!("k{i}"), &sent[k]));
        if i < 2 {
            assert!(h.s.poll_timeout().is_some() && h.s.poll_timeout() >= before);
        }
    }
    assert_eq!(h.s.poll_timeout(), None);
    assert!(
        h.s.timers.is_empty(),
        "cancelled entries are purged, not kept"
    );
    assert!(h.run_until(secs(60)).is_empty(), "nothing fires later");
}
