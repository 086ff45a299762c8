//! Shared helpers for the simulator's integration tests.

use astra_sim::{FaultSet, SimOptions};

/// A short all-faults scenario: `minutes` of chaos, then the liveness phase.
pub fn short(seed: u64, minutes: f64) -> SimOptions {
    SimOptions {
        faults: FaultSet::all(),
        ..SimOptions::new(seed).minutes(minutes)
    }
}
