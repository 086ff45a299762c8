//! Property tests of the worker machine under arbitrary input sequences, checked after every
//! step against the reference model in `common/worker_ops.rs` (strict frames, single start,
//! concurrency keys, max_parallel, one terminal frame per finished task, persist before send,
//! silence after Stopped, no token in any action).

mod common;

use common::worker_ops::{
    decode_input, encode_input, run, run_with, seed_scenarios, Op, Setup, TASKS,
};
use proptest::prelude::*;

fn setup() -> impl Strategy<Value = Setup> {
    (any::<u8>(), 1u8..=3, any::<bool>(), 0u8..=2).prop_map(
        |(seed, max_parallel, sleep_limit, restored)| Setup {
            seed,
            max_parallel,
            sleep_limit,
            restored,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    let task = 0..TASKS;
    prop_oneof![
        6 => Just(Op::ConnectResult { ok: true }),
        1 => Just(Op::ConnectResult { ok: false }),
        2 => Just(Op::Disconnect),
        8 => (0u8..3).prop_map(|back| Op::AckRecent { back }),
        10 => (task.clone(), 0u8..4, 0u8..3, any::<bool>(), prop::bool::weighted(0.05)).prop_map(
            |(task, key, node, same_id, with_resource)| Op::Dispatch { task, key, node, same_id, with_resource }
        ),
        2 => (0u8..10, task.clone()).prop_map(|(variant, task)| Op::Malformed { variant, task }),
        1 => (task.clone(), any::<u16>(), any::<u8>()).prop_map(|(task, pos, byte)| Op::Mutated { task, pos, byte }),
        1 => "\\PC{0,40}".prop_map(Op::Raw),
        8 => (task.clone(), 0u8..5).prop_map(|(task, outcome)| Op::Finish { task, outcome }),
        2 => (task.clone(), any::<u8>()).prop_map(|(task, progress)| Op::Feedback { task, progress }),
        6 => prop_oneof![4 => 0u16..1500, 1 => 1500u16..=u16::MAX].prop_map(|ms| Op::Tick { ms }),
        1 => Just(Op::Drain),
        1 => prop::bool::weighted(0.3).prop_map(|b| if b { Op::Shutdown } else { Op::Tick { ms: 10 } }),
        1 => task.clone().prop_map(|task| Op::Restore { task }),
        1 => (0u8..3).prop_map(|variant| Op::SetInventory { variant }),
        1 => (0u8..3).prop_map(|name| Op::PkgInstall { name }),
        1 => (any::<u8>(), any::<bool>()).prop_map(|(idx, ok)| Op::PkgDone { idx, ok }),
    ]
}

/// 192 cases by default; `PROPTEST_CASES=n` runs more (e.g. a long soak).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(192)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 4096, ..ProptestConfig::default() })]

    /// Every invariant holds after every step of any honest-driver input sequence.
    #[test]
    fn invariants_hold_for_any_input_sequence(setup in setup(), ops in prop::collection::vec(op(), 0..80)) {
        run(&setup, &ops);
    }

    /// `Worker::handle_decoded` with `decode(text, max_frame_bytes)` is the byte path: the
    /// same action log, time for time, for any input sequence (malformed, mutated and raw
    /// frames included).
    #[test]
    fn decoded_frames_give_the_same_actions_as_bytes(setup in setup(), ops in prop::collection::vec(op(), 0..80)) {
        let bytes = run_with(&setup, &ops, false);
        let decoded = run_with(&setup, &ops, true);
        prop_assert_eq!(bytes.log, decoded.log);
    }

    /// The fuzz byte format round-trips, so seeds and regressions written with `encode_input`
    /// mean what they say when the fuzz target and the corpus replay read them.
    #[test]
    fn fuzz_byte_format_round_trips(setup in setup(), ops in prop::collection::vec(op(), 0..40)) {
        let bytes = encode_input(&setup, &ops);
        let (s2, ops2) = decode_input(&bytes, usize::MAX);
        prop_assert_eq!(s2, setup);
        prop_assert_eq!(ops2, ops);
    }

    /// Arbitrary bytes, read the way the fuzz target reads them, never break an invariant.
    #[test]
    fn arbitrary_bytes_keep_the_invariants(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        common::worker_ops::run_bytes(&bytes);
    }
}

/// The generated sequences must reach the interesting states, or the properties above would
/// hold vacuously: the seed scenarios start tasks, persist terminal frames and see them acked.
#[test]
fn seed_scenarios_exercise_the_machine() {
    let mut started = 0;
    let mut persisted = 0;
    let mut forgotten = 0;
    let mut stopped = 0;
    for (name, setup, ops) in seed_scenarios() {
        let h = run(&setup, &ops);
        started += h.started();
        persisted += h.persisted();
        forgotten += h.forgotten();
        stopped += usize::from(h.is_stopped());
        if name == "dispatch_finish_ack" {
            assert_eq!(h.started(), 1, "{name}");
            assert_eq!(h.forgotten(), 1, "{name}: result acked and forgotten");
        }
    }
    assert!(started >= 6, "started {started}");
    assert!(persisted >= 8, "persisted {persisted}");
    assert!(forgotten >= 3, "forgotten {forgotten}");
    assert!(stopped >= 2, "drain and shutdown scenarios stop: {stopped}");
}

/// The checker itself can fail: a model that is told a task runs when it does not would be
/// caught by the `running` cross-check. Here we feed the machine a completion for a task that
/// the harness never saw start and confirm nothing terminal comes out (the check that would
/// fire if the machine answered it).
#[test]
fn completions_of_unknown_tasks_produce_nothing() {
    let setup = Setup {
        seed: 1,
        max_parallel: 1,
        sleep_limit: false,
        restored: 0,
    };
    let h = run(
        &setup,
        &[
            Op::ConnectResult { ok: true },
            Op::AckRecent { back: 0 },
            Op::AckRecent { back: 0 },
            Op::Finish {
                task: 3,
                outcome: 0,
            },
            Op::Finish {
                task: 3,
                outcome: 2,
            },
        ],
    );
    assert_eq!(h.persisted(), 0);
}

/// Regression (found by `invariants_hold_for_any_input_sequence`): during a drain, a
/// re-dispatch of a task that is still running was answered with `E.WORKER.DRAINING`, a
/// second terminal frame for a task whose real result was still to come.
#[test]
fn redispatch_of_a_running_task_during_drain_is_not_failed() {
    let setup = Setup {
        seed: 0,
        max_parallel: 1,
        sleep_limit: false,
        restored: 0,
    };
    let d = Op::Dispatch {
        task: 4,
        key: 0,
        node: 0,
        same_id: false,
        with_resource: false,
    };
    let h = run(
        &setup,
        &[
            Op::ConnectResult { ok: true },
            Op::AckRecent { back: 0 },
            Op::AckRecent { back: 0 },
            d.clone(),
            Op::Drain,
            d,
            Op::Finish {
                task: 4,
                outcome: 0,
            },
        ],
    );
    assert_eq!(h.started(), 1);
    assert_eq!(h.persisted(), 1, "exactly the task's own result");
}

/// Regression (found by the same property): `Stopped` was followed by `State(Closed)` in the
/// same step, so a driver that exits on `Stopped` never saw the final state.
#[test]
fn stopped_is_the_last_action() {
    let setup = Setup {
        seed: 3,
        max_parallel: 1,
        sleep_limit: false,
        restored: 0,
    };
    // Drain with nothing in flight stops at once; the harness fails on any later action.
    let h = run(&setup, &[Op::ConnectResult { ok: true }, Op::Drain]);
    assert!(h.is_stopped());
    assert!(h.last_was_stopped, "Stopped is not the last action");
}
