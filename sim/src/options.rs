//! What one simulation run is asked to do: the seed, the shape limits and the fault selection
//! from the command line, plus deliberate sabotage that tests use to prove the checks fire.

use crate::faults::FaultSet;
use std::time::Duration;

/// A deliberately broken simulated component (tests only; never on in a normal sweep).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sabotage {
    #[default]
    None,
    /// Executors never finish their tasks: runs cannot complete ("no liveness").
    HangingExecutor,
    /// The durable outbox loses everything on a crash (a disk that lies about fsync).
    LosingDisk,
    /// The host tells the worker about a package the store does not have.
    StaleInventory,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    pub seed: u64,
    /// Each seed draws its worker count from 1..=max_workers.
    pub max_workers: usize,
    pub faults: FaultSet,
    /// Length of the chaos phase (faults and workload), in virtual time.
    pub chaos: Duration,
    /// After the faults stop, every run must finish within this much virtual time.
    pub liveness_bound: Duration,
    /// Events kept for the failure trace. A sweep runs with none and replays a failing
    /// seed with this many (`runner::with_trace`).
    pub trace_len: usize,
    pub sabotage: Sabotage,
    /// Print every machine action and scheduler event to stderr (`--debug`).
    pub debug: bool,
    /// Decode each frame once and hand the typed frame to the machine (`handle_decoded`).
    /// Off (tests only), every machine decodes the bytes itself, as before: the runs must be
    /// identical, action log hash included.
    pub decode_once: bool,
    /// Keep the action-log hash (`Outcome::log_hash`). A sweep turns it off unless it checks
    /// determinism: nothing else reads it, and hashing every frame's text costs ~4 % of a run.
    pub hash_log: bool,
}

impl SimOptions {
    pub fn new(seed: u64) -> Self {
        SimOptions {
            seed,
            max_workers: 3,
            faults: FaultSet::all(),
            chaos: Duration::from_secs(600),
            liveness_bound: Duration::from_secs(300),
            trace_len: 200,
            sabotage: Sabotage::None,
            debug: false,
            decode_once: true,
            hash_log: true,
        }
    }

    pub fn minutes(mut self, m: f64) -> Self {
        self.chaos = Duration::from_secs_f64((m * 60.0).max(0.0));
        self
    }

    /// The command line that replays this run bit for bit.
    pub fn replay_command(&self) -> String {
        format!(
            "astra-sim --seed {} --workers {} --faults {} --minutes {}",
            self.seed,
            self.max_workers,
            self.faults,
            self.chaos.as_secs_f64() / 60.0
        )
    }
}
