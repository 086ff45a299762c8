//! Decoding each frame once (the checker's strict decode handed to the scheduler through
//! `Scheduler::handle_decoded`, one decode of a dispatch for the checker and
//! `Worker::handle_decoded`) changes nothing: with every fault on, the runs equal those in
//! which each machine decodes the bytes itself, action-log hash (every action of every
//! machine, with its time) included.

mod common;

use astra_sim::run_seed;

#[test]
fn shared_decodes_give_the_same_runs_as_the_byte_path() {
    let mut violations = 0;
    for seed in 0..40 {
        let fast = common::short(seed, 3.0);
        let bytes = astra_sim::SimOptions {
            decode_once: false,
            ..fast.clone()
        };
        let (a, b) = (run_seed(fast), run_seed(bytes));
        assert_eq!(a.log_hash, b.log_hash, "seed {seed}");
        assert_eq!(a.events, b.events, "seed {seed}");
        assert_eq!(a.stats, b.stats, "seed {seed}");
        assert_eq!(a.violation, b.violation, "seed {seed}");
        violations += a.violation.is_some() as u32;
    }
    assert_eq!(violations, 0);
}

/// The same with sabotage, so the failing paths (violations, traces) agree too.
#[test]
fn shared_decodes_agree_on_failing_runs() {
    for seed in 0..6 {
        let mut fast = common::short(seed, 1.0);
        fast.sabotage = astra_sim::Sabotage::StaleInventory;
        let bytes = astra_sim::SimOptions {
            decode_once: false,
            ..fast.clone()
        };
        let (a, b) = (run_seed(fast), run_seed(bytes));
        assert!(
            a.violation.is_some(),
            "seed {seed}: the sabotage must be caught"
        );
        assert_eq!(a.log_hash, b.log_hash, "seed {seed}");
        assert_eq!(a.violation, b.violation, "seed {seed}");
        assert_eq!(a.trace, b.trace, "seed {seed}");
    }
}
