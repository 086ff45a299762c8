//! `Source`: where a configuration value came from, for provenance and error messages.

use std::fmt;
use std::path::PathBuf;

/// Which source supplied a field's value. `Display` gives the form used in `config show` and
/// in errors: `default`, `.env (path)`, `env ASTRA_WORKER_X`, `file (path)`, `cli --flag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    /// The `.env` file in the working directory.
    DotEnv {
        path: PathBuf,
    },
    /// A real environment variable, named as it was spelled (names are case-insensitive).
    Env {
        var: String,
    },
    File {
        path: PathBuf,
    },
    /// An explicit override, normally a command-line flag such as `--worker-id`.
    Cli {
        flag: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::DotEnv { path } => write!(f, ".env ({})", path.display()),
            Source::Env { var } => write!(f, "env {var}"),
            Source::File { path } => write!(f, "file ({})", path.display()),
            Source::Cli { flag } => write!(f, "cli {flag}"),
        }
    }
}
