//! `astra-worker`: the production binary.

use astra_io_tokio::cli::{Cli, Cmd, ConfigCmd};
use astra_io_tokio::cmd;
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
    rt.block_on(async move {
        match cli.command {
            Cmd::Run(a) => cmd::run::run(a).await,
            Cmd::Demo(a) => cmd::demo::demo(a).await,
            Cmd::Config(ConfigCmd::Show { overrides, json }) => cmd::config::show(&overrides, json),
            Cmd::Verify(a) => cmd::verify::verify(a).await,
            Cmd::RefScheduler(a) => cmd::refsched::serve(a).await,
        }
    })
}
