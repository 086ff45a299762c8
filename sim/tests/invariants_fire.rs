//! Every invariant can fire: hand-injected violations fed to the checker, and deliberately
//! broken simulated components run through the whole simulator.

mod common;

use astra_core::scheduler::SchedulerConfig;
use astra_core::v1::types::FrameType;
use astra_core::work::{Inventory, TaskKey, TaskSpec};
use astra_core::worker::OutboxEntry;
use astra_core::Instant;
use astra_sim::invariants::Cause;
use astra_sim::store::PackageStore;
use astra_sim::{run_seed, Checker, FaultSet, Invariant, Sabotage, SimOptions};
use serde_json::Map;
use std::time::Duration;

fn key(t: &str) -> TaskKey {
    TaskKey {
        run_id: "r".into(),
        task_id: t.into(),
    }
}

fn spec(t: &str, ck: Option<&str>) -> TaskSpec {
    TaskSpec {
        key: key(t),
        node_id: t.into(),
        node_type: "echo".into(),
        package_name: "p".into(),
        package_version: "1".into(),
        parameters: Map::new(),
        timeout: None,
        concurrency_key: ck.map(str::to_string),
        metadata: Map::new(),
        tenant: "default".into(),
        seq: Some(1),
        dispatch_id: format!("d-{t}"),
    }
}

fn checker(max_parallel: u32) -> Checker {
    let mut c = Checker::new(1, &SchedulerConfig::default());
    c.new_incarnation(0, max_parallel, Duration::from_secs(10));
    c
}

fn fired(c: &Checker) -> Vec<Invariant> {
    c.violations().iter().map(|v| v.invariant).collect()
}

const T: Instant = Instant(1_000);

fn frame(kind: &str, id: &str, extra: &str, payload: &str) -> String {
    format!(
        r#"{{"type":"{kind}","id":"{id}","ts":"2025-11-03T13:20:00.000000+00:00",{extra}"tenant":"default","sender":{{"role":"worker","id":"w0"}},"payload":{payload}}}"#
    )
}

fn result_entry(id: &str, t: &str, value: u32) -> OutboxEntry {
    let payload = format!(
        r#"{{"run_id":"r","task_id":"{t}","status":"SUCCEEDED","result":{{"v":{value}}}}}"#
    );
    OutboxEntry {
        id: id.into(),
        kind: FrameType::Result,
        task: Some(key(t)),
        frame: frame("result", id, r#""ack":{"request":true},"#, &payload),
    }
}

#[test]
fn single_execution_fires() {
    let mut c = checker(4);
    c.on_start(0, T, &spec("a", None));
    c.on_start(0, T, &spec("a", None));
    assert_eq!(fired(&c), vec![Invariant::SingleExecution]);
}

#[test]
fn concurrency_key_fires() {
    let mut c = checker(4);
    c.on_start(0, T, &spec("a", Some("k")));
    c.on_start(0, T, &spec("b", Some("k")));
    assert_eq!(fired(&c), vec![Invariant::ConcurrencyKey]);
    // Released keys may be reused.
    let mut c = checker(4);
    c.on_start(0, T, &spec("a", Some("k")));
    c.on_task_end(0, &key("a"));
    c.on_start(0, T, &spec("b", Some("k")));
    assert!(fired(&c).is_empty());
}

#[test]
fn max_parallel_fires() {
    let mut c = checker(1);
    c.on_start(0, T, &spec("a", None));
    c.on_start(0, T, &spec("b", None));
    assert_eq!(fired(&c), vec![Invariant::MaxParallel]);
}

#[test]
fn strict_frames_fires() {
    let mut c = checker(1);
    let inv = Inventory::default();
    let ok = frame(
        "heartbeat",
        "h1",
        "",
        r#"{"healthy":true,"metrics":{"inflight":0}}"#,
    );
    c.on_sent(0, T, &ok, &inv);
    assert!(fired(&c).is_empty(), "{:?}", c.violations());
    let bad = frame(
        "heartbeat",
        "h2",
        r#""bogus":1,"#,
        r#"{"healthy":true,"metrics":{"inflight":0}}"#,
    );
    c.on_sent(0, T, &bad, &inv);
    assert_eq!(fired(&c), vec![Invariant::StrictFrames]);
}

#[test]
fn heartbeat_cadence_fires() {
    let mut c = checker(1);
    let inv = Inventory::default();
    c.check_heartbeat(0, Instant::from_millis(0), true);
    c.on_sent(
        0,
        Instant::from_millis(5_000),
        &frame(
            "heartbeat",
            "h1",
            "",
            r#"{"healthy":true,"metrics":{"inflight":0}}"#,
        ),
        &inv,
    );
    c.check_heartbeat(0, Instant::from_millis(14_000), true);
    assert!(fired(&c).is_empty());
    c.check_heartbeat(0, Instant::from_millis(15_001), true);
    assert_eq!(fired(&c), vec![Invariant::HeartbeatCadence]);
    // Not registered: no expectation.
    let mut c = checker(1);
    c.check_heartbeat(0, Instant::from_millis(0), false);
    c.check_heartbeat(0, Instant::from_millis(100_000), false);
    assert!(fired(&c).is_empty());
}

#[test]
fn inventory_fires_in_the_checker_and_through_a_lying_host() {
    let mut c = checker(1);
    let store = PackageStore::default();
    let reg = frame(
        "register",
        "r1",
        r#""ack":{"request":true},"#,
        r#"{"capabilities":{"concurrency":{"max_parallel":1},"runtimes":["builtin"],"features":[]},"packages":[]}"#,
    );
    c.on_sent(0, T, &reg, store.inventory());
    assert_eq!(fired(&c), vec![Invariant::InventoryMatchesStore]);

    let o = run_seed(SimOptions {
        sabotage: Sabotage::StaleInventory,
        ..common::short(5, 1.0)
    });
    assert_eq!(
        o.violation.map(|v| v.invariant),
        Some(Invariant::InventoryMatchesStore)
    );
}

#[test]
fn one_terminal_fires_for_a_second_original_frame() {
    let mut c = checker(1);
    c.on_start(0, T, &spec("a", None));
    c.on_task_end(0, &key("a"));
    c.begin_input(0);
    c.on_persist(
        0,
        T,
        &result_entry("e1", "a", 1),
        Cause::Finished(&key("a")),
    );
    assert!(fired(&c).is_empty());
    // A cached copy (same frame, new id) is fine.
    let copy = result_entry("e2", "a", 1);
    c.begin_input(0);
    c.on_persist(0, T, &copy, Cause::Frame);
    assert!(fired(&c).is_empty(), "{:?}", c.violations());
    // A different terminal frame for the same single execution is not.
    c.begin_input(0);
    c.on_persist(
        0,
        T,
        &result_entry("e3", "a", 2),
        Cause::Finished(&key("a")),
    );
    assert_eq!(fired(&c), vec![Invariant::OneTerminalPerDispatch]);
}

#[test]
fn one_terminal_fires_for_an_acked_dispatch_never_answered() {
    let mut c = checker(1);
    c.on_dispatch_delivered(0, "d-1", key("a"));
    let ack = frame(
        "ack",
        "a1",
        r#""ack":{"for":"d-1"},"#,
        r#"{"ok":true,"for":"d-1"}"#,
    );
    c.on_sent(0, T, &ack, &Inventory::default());
    assert!(fired(&c).is_empty(), "{:?}", c.violations());
    assert_eq!(c.unanswered(0), vec![key("a")]);
    c.check_answered(0, T);
    assert_eq!(fired(&c), vec![Invariant::OneTerminalPerDispatch]);
}

#[test]
fn no_lost_result_fires_in_the_checker_and_through_a_lying_disk() {
    let mut c = checker(1);
    c.begin_input(0);
    c.on_start(0, T, &spec("a", None));
    c.on_persist(
        0,
        T,
        &result_entry("e1", "a", 1),
        Cause::Finished(&key("a")),
    );
    c.check_recorded(T, |_| true, &astra_sim::lookup::LookupSet::default());
    assert_eq!(fired(&c), vec![Invariant::NoLostResult]);

    // A disk that loses the outbox on a crash loses results somewhere in a few crashy seeds.
    let lost = (0..30).any(|seed| {
        let o = run_seed(SimOptions {
            sabotage: Sabotage::LosingDisk,
            faults: FaultSet::parse("crash,drop,partition").unwrap_or_default(),
            ..common::short(seed, 3.0)
        });
        o.violation
            .is_some_and(|v| matches!(v.invariant, Invariant::NoLostResult | Invariant::Liveness))
    });
    assert!(lost, "a lying disk went unnoticed in 30 seeds");
}

#[test]
fn liveness_fires_for_a_hanging_executor() {
    let o = run_seed(SimOptions {
        sabotage: Sabotage::HangingExecutor,
        liveness_bound: Duration::from_secs(60),
        ..common::short(9, 1.0)
    });
    let v = o.violation.expect("hung tasks cannot finish");
    assert_eq!(v.invariant, Invariant::Liveness, "{v}");
}
