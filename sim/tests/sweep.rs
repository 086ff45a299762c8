//! A fixed, small sweep that runs in the normal `cargo test`: every invariant must hold for
//! 50 seeds × 3 simulated minutes with all faults, and the sweep must actually exercise the
//! machines (so a simulator that silently does nothing fails here).

mod common;

use astra_sim::runner::{self, Sweep};

#[test]
fn fifty_seeds_all_faults_hold_every_invariant() {
    let sweep = Sweep {
        opts: common::short(0, 3.0),
        first_seed: 1_000,
        seeds: 50,
        jobs: 2,
        check_determinism: false,
        progress: false,
    };
    let s = runner::run(&sweep);
    let reports: Vec<String> = s
        .failures
        .iter()
        .filter_map(|o| o.failure_report())
        .collect();
    assert!(reports.is_empty(), "{}", reports.join("\n"));
    assert_eq!(s.seeds, 50);
    // Properties of a sweep that really ran, not exact counts.
    assert!(s.stats.runs_finished > 50, "{}", s.table());
    assert!(s.stats.tasks_started > 100, "{}", s.table());
    assert!(
        s.stats.frames_dropped > 0 && s.stats.frames_duplicated > 0,
        "{}",
        s.table()
    );
    assert!(s.stats.crashes > 0 && s.stats.resets > 0, "{}", s.table());
    assert!(
        s.stats.frames_corrupted > 0 && s.stats.pkg_ops > 0,
        "{}",
        s.table()
    );
}

#[test]
fn no_faults_means_no_fault_counters() {
    let sweep = Sweep {
        opts: astra_sim::SimOptions {
            faults: astra_sim::FaultSet::none(),
            ..common::short(0, 2.0)
        },
        first_seed: 7,
        seeds: 8,
        jobs: 2,
        check_determinism: false,
        progress: false,
    };
    let s = runner::run(&sweep);
    assert!(s.failures.is_empty(), "{}", s.table());
    let st = &s.stats;
    assert_eq!(
        (
            st.frames_dropped,
            st.frames_duplicated,
            st.crashes,
            st.resets,
            st.partitions,
            st.sched_restarts
        ),
        (0, 0, 0, 0, 0, 0)
    );
    assert!(st.runs_finished >= 8, "{}", s.table());
}

/// A sweep runs without the failure trace and replays a failing seed to get it: the report
/// is the same as the seed's own run with the trace on.
#[test]
fn a_failing_seed_in_a_sweep_gets_the_trace_of_its_replay() {
    let opts = astra_sim::SimOptions {
        sabotage: astra_sim::Sabotage::HangingExecutor,
        liveness_bound: std::time::Duration::from_secs(60),
        ..common::short(0, 1.0)
    };
    let sweep = Sweep {
        opts: opts.clone(),
        first_seed: 9,
        seeds: 2,
        jobs: 1,
        check_determinism: false,
        progress: false,
    };
    let s = runner::run(&sweep);
    assert!(!s.failures.is_empty(), "{}", s.table());
    assert!(s.nondeterministic.is_empty(), "{:?}", s.nondeterministic);
    for f in &s.failures {
        let own = astra_sim::run_seed(astra_sim::SimOptions {
            seed: f.seed,
            ..opts.clone()
        });
        assert_eq!(f.violation, own.violation, "seed {}", f.seed);
        assert!(!f.trace.is_empty(), "seed {}: no trace", f.seed);
        assert_eq!(f.trace, own.trace, "seed {}", f.seed);
    }
}
