//! Many seeds on all cores: std threads pull seed numbers from a shared counter, each seed
//! runs single-threaded and deterministically; results are merged in seed order.

use crate::invariants::Invariant;
use crate::options::SimOptions;
use crate::outcome::{Outcome, SimStats};
use crate::world::run_seed;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Sweep {
    /// Template; `seed` is replaced per run.
    pub opts: SimOptions,
    pub first_seed: u64,
    pub seeds: u64,
    pub jobs: usize,
    pub check_determinism: bool,
    pub progress: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub seeds: u64,
    pub events: u64,
    pub sim_time: Duration,
    pub wall: Duration,
    pub jobs: usize,
    pub stats: SimStats,
    pub violations: BTreeMap<&'static str, u64>,
    /// Failing outcomes in seed order.
    pub failures: Vec<Outcome>,
    /// Seeds whose two runs hashed differently.
    pub nondeterministic: Vec<u64>,
}

impl Summary {
    fn absorb(&mut self, o: Outcome) {
        self.seeds += 1;
        self.events += o.events;
        self.sim_time += o.sim_time;
        self.stats.add(&o.stats);
        if let Some(v) = &o.violation {
            *self.violations.entry(v.invariant.name()).or_default() += 1;
            self.failures.push(o);
        }
    }

    pub fn liveness_failures(&self) -> u64 {
        self.violations
            .get(Invariant::Liveness.name())
            .copied()
            .unwrap_or(0)
    }

    pub fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    pub fn events_per_sec_per_core(&self) -> f64 {
        self.events_per_sec() / self.jobs.max(1) as f64
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let row = |s: &mut String, k: &str, v: String| s.push_str(&format!("  {k:<28} {v}\n"));
        s.push_str("astra-sim summary\n");
        row(&mut s, "seeds", self.seeds.to_string());
        row(&mut s, "jobs (threads)", self.jobs.to_string());
        row(
            &mut s,
            "wall time",
            format!("{:.2} s", self.wall.as_secs_f64()),
        );
        row(
            &mut s,
            "simulated time",
            format!("{:.1} h", self.sim_time.as_secs_f64() / 3600.0),
        );
        row(&mut s, "events (drove a machine)", self.events.to_string());
        row(
            &mut s,
            "queue pops / machine inputs",
            format!("{} / {}", self.stats.queue_pops, self.stats.machine_inputs),
        );
        row(&mut s, "events/s", format!("{:.0}", self.events_per_sec()));
        row(
            &mut s,
            "events/s per core",
            format!("{:.0}", self.events_per_sec_per_core()),
        );
        let st = &self.stats;
        row(&mut s, "workers (total)", st.workers.to_string());
        row(
            &mut s,
            "runs submitted / finished",
            format!("{} / {}", st.runs_submitted, st.runs_finished),
        );
        row(
            &mut s,
            "runs stranded by crash",
            st.runs_stranded_by_crash.to_string(),
        );
        row(&mut s, "tasks started", st.tasks_started.to_string());
        row(
            &mut s,
            "frames to sched / worker",
            format!("{} / {}", st.frames_to_sched, st.frames_to_worker),
        );
        row(
            &mut s,
            "frames dropped / dup / bad",
            format!(
                "{} / {} / {}",
                st.frames_dropped, st.frames_duplicated, st.frames_corrupted
            ),
        );
        row(
            &mut s,
            "resets / partitions",
            format!("{} / {}", st.resets, st.partitions),
        );
        row(
            &mut s,
            "crashes / sched restarts",
            format!("{} / {}", st.crashes, st.sched_restarts),
        );
        row(&mut s, "package ops", st.pkg_ops.to_string());
        row(&mut s, "timer spins", st.timer_spins.to_string());
        s.push_str("violations by invariant\n");
        for inv in Invariant::ALL {
            let n = self.violations.get(inv.name()).copied().unwrap_or(0);
            row(&mut s, inv.name(), n.to_string());
        }
        row(
            &mut s,
            "liveness failures",
            self.liveness_failures().to_string(),
        );
        row(
            &mut s,
            "nondeterministic seeds",
            self.nondeterministic.len().to_string(),
        );
        s
    }
}

/// Gives a failed run its trace by replaying the seed with the trace on: a sweep keeps no
/// trace (the ring of recent events cost ~1 % of every run, and almost every run passes), and
/// a replay is bit-identical. `false` if the replay did not fail the same way, which only a
/// nondeterministic seed does; `o` then keeps its own verdict, with a note for a trace.
fn with_trace(o: &mut Outcome, traced: SimOptions) -> bool {
    let again = run_seed(traced);
    if again.violation == o.violation && again.events == o.events {
        o.trace = again.trace;
        true
    } else {
        o.trace = vec![format!(
            "(no trace: the replay of seed {} with a trace did not fail the same way, so the seed is nondeterministic)",
            o.seed
        )];
        false
    }
}

pub fn run(sweep: &Sweep) -> Summary {
    let start = std::time::Instant::now();
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let merged = Mutex::new(Vec::<(Summary, Vec<u64>)>::new());
    let jobs = sweep.jobs.max(1);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let mut local = Summary::default();
                let mut nondet = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= sweep.seeds {
                        break;
                    }
                    let opts = SimOptions {
                        seed: sweep.first_seed + i,
                        hash_log: sweep.check_determinism,
                        trace_len: 0,
                        ..sweep.opts.clone()
                    };
                    let mut o = run_seed(opts.clone());
                    if sweep.check_determinism && run_seed(opts.clone()).log_hash != o.log_hash {
                        nondet.push(o.seed);
                    }
                    if o.violation.is_some() && sweep.opts.trace_len > 0 {
                        let traced = SimOptions {
                            trace_len: sweep.opts.trace_len,
                            ..opts
                        };
                        if !with_trace(&mut o, traced) {
                            nondet.push(o.seed);
                        }
                    }
                    local.absorb(o);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                if let Ok(mut m) = merged.lock() {
                    m.push((local, nondet));
                }
            });
        }
        if sweep.progress {
            loop {
                let d = done.load(Ordering::Relaxed);
                eprint!(
                    "\r{d}/{} seeds  {:.1} s",
                    sweep.seeds,
                    start.elapsed().as_secs_f64()
                );
                if d >= sweep.seeds {
                    eprintln!();
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    });
    let mut total = Summary {
        jobs,
        ..Summary::default()
    };
    for (s, nd) in merged.into_inner().unwrap_or_default() {
        total.seeds += s.seeds;
        total.events += s.events;
        total.sim_time += s.sim_time;
        total.stats.add(&s.stats);
        for (k, v) in s.violations {
            *total.violations.entry(k).or_default() += v;
        }
        total.failures.extend(s.failures);
        total.nondeterministic.extend(nd);
    }
    total.failures.sort_by_key(|o| o.seed);
    total.nondeterministic.sort_unstable();
    total.wall = start.elapsed();
    total
}
