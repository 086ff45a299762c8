//! `astra-worker-smol`: the worker for constrained hosts (smol). Same commands, flags and
//! configuration as `astra-worker`.

use astra_host::app::{self, cli::Cli};
use astra_io_smol::SmolRuntime;
use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One executor on the main thread: the control loop is a single task and the real work
    // (tasks, package operations, file I/O) runs on host threads and the blocking pool.
    let ex = Arc::new(smol::Executor::new());
    let rt = SmolRuntime::new(ex.clone());
    // Boxed: the application future is large, and smol's `block_on`/`run` keep their future
    // on the stack (moved once per layer), which cost the smol build ~500 kB more resident
    // main-thread stack than tokio (whose `block_on` boxes large futures itself).
    smol::block_on(ex.run(Box::pin(app::main(rt, cli))))
}
