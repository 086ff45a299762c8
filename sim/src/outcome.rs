//! What one seed produced: counters, the action-log hash, and on failure the violation with
//! its trace and the command that replays it.

use crate::invariants::Violation;
use std::time::Duration;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    pub workers: u64,
    pub frames_to_sched: u64,
    pub frames_to_worker: u64,
    pub frames_dropped: u64,
    pub frames_duplicated: u64,
    pub frames_corrupted: u64,
    pub runs_submitted: u64,
    pub runs_finished: u64,
    /// Runs left running because a crash killed an acked task (no lease in the protocol).
    pub runs_stranded_by_crash: u64,
    pub tasks_started: u64,
    pub resets: u64,
    pub partitions: u64,
    pub crashes: u64,
    pub sched_restarts: u64,
    pub pkg_ops: u64,
    /// A machine asked for a timer at or before the instant it was just ticked.
    pub timer_spins: u64,
    /// Every event taken off the queue, including those that found nothing to do.
    pub queue_pops: u64,
    /// `handle` calls on the machines (one event may feed several, e.g. a boot).
    pub machine_inputs: u64,
}

impl SimStats {
    pub fn add(&mut self, o: &SimStats) {
        self.workers += o.workers;
        self.frames_to_sched += o.frames_to_sched;
        self.frames_to_worker += o.frames_to_worker;
        self.frames_dropped += o.frames_dropped;
        self.frames_duplicated += o.frames_duplicated;
        self.frames_corrupted += o.frames_corrupted;
        self.runs_submitted += o.runs_submitted;
        self.runs_finished += o.runs_finished;
        self.runs_stranded_by_crash += o.runs_stranded_by_crash;
        self.tasks_started += o.tasks_started;
        self.resets += o.resets;
        self.partitions += o.partitions;
        self.crashes += o.crashes;
        self.sched_restarts += o.sched_restarts;
        self.pkg_ops += o.pkg_ops;
        self.timer_spins += o.timer_spins;
        self.queue_pops += o.queue_pops;
        self.machine_inputs += o.machine_inputs;
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub seed: u64,
    /// Queue pops that fed at least one machine input (see `SimStats::queue_pops`).
    pub events: u64,
    pub sim_time: Duration,
    /// `LogHash` over every action of every machine with its time; `None` when the run was
    /// asked not to keep it (`SimOptions::hash_log`).
    pub log_hash: Option<u64>,
    pub stats: SimStats,
    pub violation: Option<Violation>,
    /// The last events before the violation (empty on success).
    pub trace: Vec<String>,
    pub replay: String,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.violation.is_none()
    }

    /// The VOPR-style failure report: seed, invariant, trace, replay command.
    pub fn failure_report(&self) -> Option<String> {
        let v = self.violation.as_ref()?;
        let mut s = format!("FAILED seed={} {}\n", self.seed, v);
        s.push_str(&format!("last {} events:\n", self.trace.len()));
        for l in &self.trace {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str(&format!(
            "seed={} invariant=`{}`\nreproduce with: {}\n",
            self.seed,
            v.invariant.name(),
            self.replay
        ));
        Some(s)
    }
}
