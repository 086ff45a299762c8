//! The `astra-sim` binary: one verbose seed (`--seed N`) or a parallel sweep (`--seeds K`).

use astra_sim::cli::{self, USAGE};
use astra_sim::runner::{self, Sweep};
use astra_sim::{run_seed, SimOptions};
use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

mod fast_alloc;
mod small_blocks;

/// Every frame the simulator encodes and decodes allocates; mimalloc serves that churn far
/// more cheaply than glibc's malloc (BENCHMARKS.md §4); its v2 allocator (the `v2` feature in
/// Cargo.toml) took fewer CPU seconds than v3 here, and its plain entry points cost fewer
/// instructions than the aligned ones the `mimalloc` crate uses (see `fast_alloc`). Small
/// blocks, most of the churn, come from per-thread size-class lists in front of it
/// (`small_blocks`). The binary only: the library and its tests keep the system allocator.
#[global_allocator]
static GLOBAL: small_blocks::SmallBlocks = small_blocks::SmallBlocks;

fn options(a: &cli::Args, seed: u64) -> SimOptions {
    SimOptions {
        max_workers: a.workers,
        faults: a.faults,
        trace_len: a.trace_len,
        debug: a.debug,
        ..SimOptions::new(seed).minutes(a.minutes)
    }
}

/// A log hash as 16 hex digits (`--seed` always keeps it).
fn hex(h: Option<u64>) -> String {
    h.map_or_else(|| "off".to_string(), |h| format!("{h:016x}"))
}

/// Writes the report to stdout. A reader that went away (`astra-sim --seed 3 | head -1`)
/// is not an error: the run's verdict is still the exit code. `println!` would panic there.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("astra-sim: cannot write the report to stdout: {e}");
        }
    }
}

fn one(a: &cli::Args, seed: u64) -> ExitCode {
    let mut out = String::new();
    let opts = options(a, seed);
    let t = std::time::Instant::now();
    let o = run_seed(opts.clone());
    let wall = t.elapsed().as_secs_f64();
    let _ = writeln!(
        out,
        "seed={} events={} simulated={:.1}s wall={:.3}s events/s={:.0} hash={}",
        o.seed,
        o.events,
        o.sim_time.as_secs_f64(),
        wall,
        o.events as f64 / wall.max(1e-9),
        hex(o.log_hash)
    );
    let _ = writeln!(out, "{:?}", o.stats);
    let mut ok = o.passed();
    if a.check_determinism {
        let again = run_seed(opts);
        let same = again.log_hash == o.log_hash && again.events == o.events;
        let _ = writeln!(
            out,
            "determinism: {} (hash {} vs {})",
            if same { "OK" } else { "MISMATCH" },
            hex(o.log_hash),
            hex(again.log_hash)
        );
        ok &= same;
    }
    match o.failure_report() {
        Some(r) => out.push_str(&r),
        None => {
            let _ = writeln!(out, "seed={} passed; replay: {}", o.seed, o.replay);
        }
    }
    emit(&out);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn sweep(a: &cli::Args, seeds: u64) -> ExitCode {
    let s = Sweep {
        opts: options(a, 0),
        first_seed: a.first_seed,
        seeds,
        jobs: a.jobs,
        check_determinism: a.check_determinism,
        // A progress line redrawn with `\r` only where someone watches: a log file or a
        // pipe gets the summary alone (and a profile-training run's counts stay the same).
        progress: std::io::stderr().is_terminal(),
    };
    let sum = runner::run(&s);
    let mut out = String::new();
    for f in sum.failures.iter().take(3) {
        if let Some(r) = f.failure_report() {
            let _ = writeln!(out, "{r}");
        }
    }
    if sum.failures.len() > 3 {
        let rest: Vec<String> = sum.failures[3..]
            .iter()
            .map(|o| o.seed.to_string())
            .collect();
        let _ = writeln!(out, "further failing seeds: {}", rest.join(" "));
    }
    out.push_str(&sum.table());
    let _ = writeln!(out,
        "command: astra-sim --seeds {seeds} --first-seed {} --workers {} --faults {} --minutes {} --jobs {}{}",
        a.first_seed,
        a.workers,
        a.faults,
        a.minutes,
        a.jobs,
        if a.check_determinism { " --check-determinism" } else { "" }
    );
    emit(&out);
    if sum.failures.is_empty() && sum.nondeterministic.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    astra_sim::panic_report::install_hook();
    let a = match cli::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("astra-sim: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if a.help {
        emit(USAGE);
        return ExitCode::SUCCESS;
    }
    match (a.seed, a.seeds) {
        (Some(seed), _) => one(&a, seed),
        (None, Some(k)) => sweep(&a, k),
        (None, None) => one(&a, 0),
    }
}
