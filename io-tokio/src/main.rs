//! `astra-worker`: the production binary (tokio).

use astra_host::app::{self, cli::Cli};
use astra_io_tokio::TokioRuntime;
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
