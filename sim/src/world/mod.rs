//! The simulated world: one scheduler machine, N worker machines, the network, executors,
//! disks and the fault injector, driven by one event queue and one PRNG. No wall clock, no
//! threads; every choice comes from `rng`, so a seed replays bit for bit.

mod chaos;
mod liveness;
mod net;
mod sched;
mod workers;

use crate::event::{Ev, Rec};
use crate::hash::OptHash;
use crate::invariants::Checker;
use crate::lookup::{LookupMap, LookupSet};
use crate::options::SimOptions;
use crate::outcome::{Outcome, SimStats};
use crate::queue::EventQueue;
use crate::store::{DurableOutbox, PackageStore};
use crate::swarm::Swarm;
use crate::trace::Trace;
use astra_core::rng::Rng;
use astra_core::scheduler::{ConnId, Scheduler};
use astra_core::work::{Feedback, TaskKey, TaskOutcome};
use astra_core::worker::{PackageOp, Worker, WorkerConfig};
use astra_core::Instant;
use std::collections::BTreeMap;
use std::time::Duration;

/// A task the simulated executor is running.
struct Running {
    exec: u64,
    outcome: TaskOutcome,
    feedback: Vec<Feedback>,
}

/// One worker host: its machine (None while crashed), driver state, disks and executors.
struct Slot {
    cfg: WorkerConfig,
    machine: Option<Worker>,
    inc: u32,
    conn: Option<ConnId>,
    connecting: Option<ConnId>,
    timer_at: Option<Instant>,
    timer_token: u64,
    outbox: DurableOutbox,
    packages: PackageStore,
    running: LookupMap<TaskKey, Running>,
    pkg_ops: BTreeMap<u64, PackageOp>,
    partitioned: bool,
    partition_epoch: u64,
    skew: f64,
}

/// One simulated socket as both drivers see it.
struct ConnInfo {
    w: usize,
    inc: u32,
    sched_gen: u32,
    worker_open: bool,
    sched_open: bool,
    last_to_sched: Instant,
    last_to_worker: Instant,
}

pub struct Sim {
    opts: SimOptions,
    swarm: Swarm,
    rng: Rng,
    now: Instant,
    q: EventQueue<Ev>,
    slots: Vec<Slot>,
    conns: BTreeMap<ConnId, ConnInfo>,
    next_conn: u64,
    sched: Option<Scheduler>,
    sched_gen: u32,
    sched_timer_at: Option<Instant>,
    sched_token: u64,
    /// (run, node) the current scheduler recorded a result or error for.
    recorded: LookupSet<TaskKey>,
    /// Tasks whose acked execution died with a crashed worker.
    crash_lost: LookupSet<TaskKey>,
    checker: Checker,
    trace: Trace,
    hash: OptHash,
    stats: SimStats,
    /// Queue pops that fed at least one machine input (what `events` reports).
    events: u64,
    /// Machine inputs so far (`handle` calls on a worker or the scheduler).
    inputs: u64,
    chaos: bool,
    /// Per fault stream (see `chaos.rs`), the simulated second it fires next.
    fault_next: Vec<u64>,
    liveness_deadline: Option<Instant>,
    need_canary: bool,
    next_exec: u64,
    next_run: u64,
    next_pkg: u64,
    done: bool,
}

fn us(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

impl Sim {
    pub fn new(opts: SimOptions) -> Self {
        let mut rng = Rng::new(opts.seed);
        let swarm = Swarm::draw(&mut rng, opts.max_workers, opts.faults);
        let checker = Checker::new(swarm.workers, &swarm.sched_cfg);
        let slots = swarm
            .worker_cfgs
            .iter()
            .zip(&swarm.skewed)
            .map(|(cfg, skewed)| Slot {
                cfg: cfg.clone(),
                machine: None,
                inc: 0,
                conn: None,
                connecting: None,
                timer_at: None,
                timer_token: 0,
                outbox: DurableOutbox::default(),
                packages: PackageStore::default(),
                running: LookupMap::default(),
                pkg_ops: BTreeMap::new(),
                partitioned: false,
                partition_epoch: 0,
                skew: if *skewed { swarm.faults.skew } else { 0.0 },
            })
            .collect();
        let sched = Scheduler::new(swarm.sched_cfg.clone());
        let trace = Trace::new(opts.trace_len);
        let hash = OptHash::new(opts.hash_log);
        let stats = SimStats {
            workers: swarm.workers as u64,
            ..SimStats::default()
        };
        Sim {
            opts,
            swarm,
            rng,
            now: Instant::ZERO,
            q: EventQueue::default(),
            slots,
            conns: BTreeMap::new(),
            next_conn: 1,
            sched: Some(sched),
            sched_gen: 0,
            sched_timer_at: None,
            sched_token: 0,
            recorded: LookupSet::default(),
            crash_lost: LookupSet::default(),
            checker,
            trace,
            hash,
            stats,
            events: 0,
            inputs: 0,
            chaos: true,
            fault_next: Vec::new(),
            liveness_deadline: None,
            need_canary: false,
            next_exec: 0,
            next_run: 0,
            next_pkg: 0,
            done: false,
        }
    }

    /// Runs the seed to completion or to its first violation.
    pub fn run(mut self) -> Outcome {
        for w in 0..self.slots.len() {
            self.boot(w);
        }
        let first = self.draw_submit_gap();
        self.q.push(Instant::ZERO + first, Ev::Submit);
        self.start_fault_clock();
        self.q.push(Instant::ZERO + self.opts.chaos, Ev::EndChaos);
        while let Some((at, ev)) = self.q.pop() {
            self.now = at;
            self.stats.queue_pops += 1;
            self.trace.push(at, Rec::Ev(ev.kind()));
            self.hash.u64(at.as_micros());
            let inputs = self.inputs;
            self.step(ev);
            if self.inputs != inputs {
                // Only pops that drove a machine count as events: a stale timer, a frame for
                // a closed socket or a fault that finds its worker already down does no
                // simulated work.
                self.events += 1;
            }
            self.check_after_event();
            if self.done || self.checker.first_violation().is_some() {
                break;
            }
        }
        self.finish()
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::WorkerTimer { p, token } => self.on_worker_timer(p, token),
            Ev::SchedTimer { token } => self.on_sched_timer(token),
            Ev::ToSched { conn, frame } => self.deliver_to_sched(conn, frame),
            Ev::ToWorker { conn, frame } => self.deliver_to_worker(conn, frame),
            Ev::ConnectDone { p, conn } => self.on_connect_done(p, conn),
            Ev::WorkerSeesClose { p, conn } => self.on_worker_sees_close(p, conn),
            Ev::SchedSeesClose { conn } => self.on_sched_sees_close(conn),
            Ev::TaskFeedback { p, key, exec, n } => self.on_task_feedback(p, *key, exec, n),
            Ev::TaskDone { p, key, exec } => self.on_task_done(p, *key, exec),
            Ev::PkgDone { p, op_id } => self.on_pkg_done(p, op_id),
            Ev::Submit => self.on_submit(),
            Ev::Chaos => self.on_chaos(),
            Ev::HealPartition { w, epoch } => self.heal_partition(w, epoch),
            Ev::WorkerRestart { w } => self.on_worker_restart(w),
            Ev::WorkerCrash { w } => self.crash(w),
            Ev::SchedulerUp => self.on_scheduler_up(),
            Ev::EndChaos => self.on_end_chaos(),
            Ev::LivenessCheck => self.on_liveness_check(),
        }
    }

    fn check_after_event(&mut self) {
        for w in 0..self.slots.len() {
            let registered = self.slots[w]
                .machine
                .as_ref()
                .is_some_and(Worker::is_registered);
            self.checker.check_heartbeat(w, self.now, registered);
        }
    }

    fn finish(self) -> Outcome {
        let violation = self.checker.first_violation().cloned();
        let trace = if violation.is_some() {
            self.trace.lines()
        } else {
            Vec::new()
        };
        let mut stats = self.stats;
        stats.machine_inputs = self.inputs;
        Outcome {
            seed: self.opts.seed,
            events: self.events,
            sim_time: self.now - Instant::ZERO,
            log_hash: self.hash.value(),
            stats,
            violation,
            trace,
            replay: self.opts.replay_command(),
        }
    }

    fn note(&mut self, r: Rec) {
        self.trace.push(self.now, r);
    }

    /// Uniform in [lo, hi].
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = us(hi.saturating_sub(lo));
        lo + Duration::from_micros(self.rng.below(span + 1))
    }

    fn latency(&mut self) -> Duration {
        self.between(self.swarm.latency_min, self.swarm.latency_max)
    }

    /// [`Self::between`] in whole microseconds, for the per-frame network draws: the same
    /// draw and the same value for bounds that are whole microseconds (the swarm's are whole
    /// milliseconds), without `Duration`'s conversions on every frame.
    fn between_us(&mut self, lo: Duration, hi: Duration) -> u64 {
        let (lo, hi) = (us(lo), us(hi));
        lo + self.rng.below(hi.saturating_sub(lo) + 1)
    }
}

/// Runs one seed.
pub fn run_seed(opts: SimOptions) -> Outcome {
    let _running = crate::panic_report::Running::start(opts.seed, opts.replay_command());
    Sim::new(opts).run()
}
