//! Bugs the simulator found, pinned: each with the seed that first showed it and a direct
//! machine-level reproduction that does not depend on the simulator's random path.

use astra_core::scheduler::{ack_frame, dispatch_frame, DispatchFields};
use astra_core::v1::codec::{decode, DEFAULT_MAX_FRAME_BYTES};
use astra_core::worker::{Action, Incoming, Input, Worker, WorkerConfig};
use astra_core::Instant;
use astra_sim::{run_seed, SimOptions};
use serde_json::{Map, Value};

const TS: &str = "2025-11-03T13:20:00.000000+00:00";

fn sends(w: &mut Worker) -> Vec<Value> {
    std::iter::from_fn(|| w.poll_action())
        .filter_map(|a| match a {
            Action::Send(f) => serde_json::from_str(f.text()).ok(),
            _ => None,
        })
        .collect()
}

fn ack_of(v: &Value) -> Input {
    let env = decode(&v.to_string(), DEFAULT_MAX_FRAME_BYTES).unwrap().env;
    Input::Frame(Incoming::Text(ack_frame("a-1".into(), TS.into(), &env)))
}

/// A worker that completed handshake and register.
fn registered() -> Worker {
    let mut w = Worker::new(WorkerConfig::default());
    let now = Instant::from_millis(1);
    w.handle(now, Input::Start);
    w.handle(now, Input::Connected);
    let hs = sends(&mut w).remove(0);
    w.handle(now, ack_of(&hs));
    let reg = sends(&mut w).remove(0);
    w.handle(now, ack_of(&reg));
    assert!(w.is_registered());
    sends(&mut w);
    w
}

/// Found by `astra-sim --seed 2 --workers 3 --faults all --minutes 10` (and ~15 % of seeds):
/// a dispatch truncated before its `run_id` was acked and answered with a `command.error`
/// carrying no `details.run_id`. The scheduler then attributes the error by `corr` to whatever
/// run last dispatched a node with that id (spec §3.7) — failing an unrelated run — while the
/// real node, acked, stays `running` forever ("no liveness"). Without a recoverable run the
/// worker must not ack: the ack timeout makes the scheduler re-dispatch an intact copy.
#[test]
fn truncated_dispatch_without_run_id_is_not_acked_or_misattributed() {
    let mut w = registered();
    let params = Map::new();
    let text = dispatch_frame(
        "d-1".into(),
        TS.into(),
        &DispatchFields {
            run_id: "run-13",
            tenant: "default",
            node_id: "n1",
            node_type: "echo",
            package_name: "sim.builtin",
            package_version: "1.0.0",
            parameters: &params,
            seq: 2,
        },
    );
    let cut = text.find("\"run_id\"").unwrap() + 4;
    w.handle(
        Instant::from_millis(2),
        Input::Frame(Incoming::Text(text[..cut].to_string())),
    );
    let out = sends(&mut w);
    for f in &out {
        if f["type"] == "command.error" {
            assert!(
                f["payload"]["context"]["details"]["run_id"].is_string(),
                "command.error without a run: the scheduler misattributes it: {f}"
            );
        }
        assert_ne!(
            f["ack"]["for"], "d-1",
            "acked a dispatch it cannot answer: {f}"
        );
    }
}

/// The same bug end to end, with the seed that found it.
#[test]
fn seed_2_settles() {
    let o = run_seed(SimOptions::new(2));
    assert!(o.passed(), "{}", o.failure_report().unwrap_or_default());
}

fn dispatch_text(id: &str, run: &str, node: &str) -> String {
    let params = Map::new();
    dispatch_frame(
        id.into(),
        TS.into(),
        &DispatchFields {
            run_id: run,
            tenant: "default",
            node_id: node,
            node_type: "echo",
            package_name: "sim.builtin",
            package_version: "1.0.0",
            parameters: &params,
            seq: 2,
        },
    )
}

/// A registered worker that ran node `n1` of `run` (dispatch `d-1`, echo) to success at
/// 3 ms, with the `result` frame it sent for it.
fn finished_echo(run: &str) -> (Worker, Value) {
    let mut w = registered();
    let mut inv = astra_core::work::Inventory::default();
    inv.handlers.insert(astra_core::work::HandlerKey::new(
        "sim.builtin",
        "1.0.0",
        "echo",
    ));
    w.handle(Instant::from_millis(2), Input::SetInventory(inv));
    sends(&mut w);
    let t = Instant::from_millis(3);
    w.handle(
        t,
        Input::Frame(Incoming::Text(dispatch_text("d-1", run, "n1"))),
    );
    sends(&mut w);
    let key = astra_core::work::TaskKey {
        run_id: run.into(),
        task_id: "n1".into(),
    };
    let outcome = astra_core::work::TaskOutcome::succeeded(Map::new(), 1);
    w.handle(t, Input::TaskFinished { task: key, outcome });
    let result = sends(&mut w)
        .into_iter()
        .find(|f| f["type"] == "result")
        .unwrap();
    (w, result)
}

/// Found by `astra-sim --seed 12 --workers 3 --faults all --minutes 10`: the scheduler's ack
/// timeout re-queued a node that had already finished (spec §5.5) and its re-dispatch arrived
/// garbled. The worker acked it ("a garbled copy of a task we already have") but sent nothing,
/// so the node, now acked and `running`, never finished. An intact duplicate gets the cached
/// terminal frame again; a garbled one must too.
#[test]
fn garbled_redispatch_of_a_finished_task_gets_its_result_again() {
    let (mut w, result) = finished_echo("run-8");
    let t = Instant::from_millis(3);
    w.handle(t, ack_of(&result));
    sends(&mut w);
    let garbled =
        dispatch_text("d-2", "run-8", "n1").replacen("\"node_type\":", "\"node_tipe\":", 1);
    w.handle(
        Instant::from_millis(4),
        Input::Frame(Incoming::Text(garbled)),
    );
    let out = sends(&mut w);
    assert!(
        out.iter()
            .any(|f| f["type"] == "result" && f["payload"]["task_id"] == "n1"),
        "the re-dispatched node never hears of its result again: {out:?}"
    );
}

#[test]
fn seed_12_settles() {
    let o = run_seed(SimOptions::new(12));
    assert!(o.passed(), "{}", o.failure_report().unwrap_or_default());
}

/// Found by `astra-sim --seed 8026 --workers 3 --faults all --minutes 10`: the scheduler
/// re-dispatched a finished node while its result was still unacked in the worker's outbox.
/// The worker acked and sent nothing (the copy was "already pending"); that copy had reached
/// the scheduler before the re-dispatch, its late ack cleared it, and the node, `running`
/// again, never heard of its result. The re-dispatch must get its own copy, settled only by
/// its own ack.
#[test]
fn redispatch_of_an_unacked_finished_task_gets_a_copy_the_old_ack_does_not_settle() {
    let (mut w, first) = finished_echo("run-30");
    // Re-dispatch before the first copy is acked.
    w.handle(
        Instant::from_millis(4),
        Input::Frame(Incoming::Text(dispatch_text("d-2", "run-30", "n1"))),
    );
    let again: Vec<Value> = sends(&mut w)
        .into_iter()
        .filter(|f| f["type"] == "result")
        .collect();
    assert_eq!(again.len(), 1, "the re-dispatch got no result: {again:?}");
    assert_ne!(again[0]["id"], first["id"]);
    // The first copy's delayed ack arrives.
    w.handle(Instant::from_millis(5), ack_of(&first));
    sends(&mut w);
    assert_eq!(
        w.outbox_len(),
        1,
        "the answer to the re-dispatch was settled by an old ack"
    );
}

#[test]
fn seed_8026_settles() {
    let o = run_seed(SimOptions::new(8026));
    assert!(o.passed(), "{}", o.failure_report().unwrap_or_default());
}
