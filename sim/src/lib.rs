//! astra-sim: a deterministic discrete-event simulator of astra-worker. It drives real
//! `astra_core::worker::Worker` machines and the reference `Scheduler` over a simulated
//! network with executors, disks and faults, checks named invariants after every event, and
//! replays any seed bit for bit (TigerBeetle VOPR / FoundationDB style).

pub mod cli;
pub mod event;
pub mod executor;
pub mod faults;
pub mod frames;
pub mod hash;
pub mod invariants;
pub mod lookup;
pub mod options;
pub mod outcome;
pub mod panic_report;
pub mod queue;
pub mod runner;
pub mod store;
pub mod swarm;
pub mod trace;
pub mod workload;
mod world;

pub use faults::{Fault, FaultSet};
pub use invariants::{Checker, Invariant, Violation};
pub use options::{Sabotage, SimOptions};
pub use outcome::{Outcome, SimStats};
pub use world::{run_seed, Sim};
