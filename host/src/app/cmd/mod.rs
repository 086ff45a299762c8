//! The subcommands of both worker binaries, and the one place they are dispatched.
//!
//! Adding a subcommand: a variant (with its help text) in [`crate::app::cli::Cmd`], a file
//! here with an `async fn(rt: &R, args) -> ExitCode`, and an arm in [`dispatch`]. Both
//! binaries get it with no driver change.

pub mod config;
pub mod demo;
pub mod exec;
pub mod model;
pub mod package;
pub mod refsched;
pub mod run;
pub mod verify;

use crate::app::cli::{Cli, Cmd, ConfigCmd, ModelCmd};
use crate::app::runtime::Runtime;
use std::process::ExitCode;

/// Runs the command line on runtime `rt`.
pub async fn dispatch<R: Runtime>(rt: &R, cli: Cli) -> ExitCode {
    match cli.command {
        Cmd::Run(a) => run::run(rt, a).await,
        Cmd::Demo(a) => demo::demo(rt, a).await,
        Cmd::Config(ConfigCmd::Show { overrides, json }) => config::show(&overrides, json),
        Cmd::Verify(a) => verify::verify(rt, a).await,
        Cmd::RefScheduler(a) => refsched::serve(rt, a).await,
        Cmd::Package(c) => package::package(c),
        Cmd::Exec(a) => exec::exec(a),
        Cmd::Model(ModelCmd::Pull(a)) => model::pull(a),
    }
}
