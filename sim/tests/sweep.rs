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
