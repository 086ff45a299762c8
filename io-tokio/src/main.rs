//! `astra-worker`: the production binary (tokio).

use astra_host::app::{self, cli::Cli};
use astra_io_tokio::TokioRuntime;
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread: the control loop is a single task driving the socket, so with worker
    // threads every socket event cost a hop (a worker polls epoll, then wakes the main
    // thread parked in `block_on`), and the idle process carried two more stacks and malloc
    // arenas. Task handlers, package operations and file work run on their own threads.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(app::main(TokioRuntime, cli))
}
