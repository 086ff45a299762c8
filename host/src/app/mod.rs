//! The worker application, written once for every async runtime: the control loop, the
//! reference scheduler server, the metrics listener, the commands and their CLI, logging.
//! A driver crate supplies a [`runtime::Runtime`] (socket, timers, spawning, signals) and
//! calls [`main`]; everything else lives here.

pub mod cli;
pub mod clock;
pub mod cmd;
pub mod driver;
pub mod http;
pub mod logging;
pub mod refsched;
pub mod rt;
pub mod runtime;
pub mod settings;

use std::process::ExitCode;

/// Runs the parsed command line on `rt`. Drivers call this from their `main`.
pub async fn main<R: runtime::Runtime>(rt: R, cli: cli::Cli) -> ExitCode {
    cmd::dispatch(&rt, cli).await
}
