//! `ConfigError`: every way loading the configuration can fail, each naming what to fix.

use super::source::Source;
use std::path::PathBuf;

/// A configuration that cannot be used. Messages never contain the auth token.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A field's value is unusable. `value` is already rendered (and `***` for secrets).
    #[error("{field}: {value} from {origin} is not valid: expected {expected}")]
    Invalid {
        field: &'static str,
        value: String,
        origin: Source,
        expected: String,
    },

    #[error(
        "config file {path} (named by {named_by}) does not exist; fix the path or unset {named_by}"
    )]
    FileMissing { path: PathBuf, named_by: String },

    #[error(
        "config file {path} (named by {named_by}) has an unsupported suffix: expected .yaml, .yml or .json"
    )]
    FileUnsupported { path: PathBuf, named_by: String },

    #[error("config file {path} cannot be read: {cause}")]
    FileUnreadable {
        path: PathBuf,
        cause: std::io::Error,
    },

    /// `detail` comes from the YAML/JSON parser and includes the line and column.
    #[error("config file {path} is not valid {format}: {detail}")]
    FileParse {
        path: PathBuf,
        format: &'static str,
        detail: String,
    },

    #[error("config file {path} must contain a mapping of field names to values at the top level, found {found}")]
    FileNotMapping { path: PathBuf, found: &'static str },

    #[error("{path} cannot be read: {detail}")]
    DotEnv { path: PathBuf, detail: String },

    /// A programming error in the caller: an override for a field that does not exist.
    #[error("override `{key}` is not a configuration field (see `astra-worker config show` for the list)")]
    UnknownOverride { key: String },

    #[error("cannot determine the current directory: {0}")]
    Cwd(std::io::Error),

    /// figment reported something unexpected while merging the sources.
    #[error("merging configuration sources failed: {0}")]
    Merge(String),
}
