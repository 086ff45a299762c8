//! The entry points: `load_with` (hermetic) and `load` (the real process), and their result.

use super::build;
use super::context::LoadContext;
use super::error::ConfigError;
use super::layers::Layers;
use super::settings::WorkerSettings;
use super::source::Source;
use serde_json::Value;
use std::collections::BTreeMap;

/// A validated configuration plus where each value came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub settings: WorkerSettings,
    /// The source of every field in [`super::FIELDS`].
    pub sources: BTreeMap<&'static str, Source>,
    /// Things the operator should see but that do not stop the worker: ignored unknown keys,
    /// a URL path that was filled in, and the like. Never contain secret values.
    pub warnings: Vec<String>,
}

impl LoadedConfig {
    /// Where `field` came from (`None` for names that are not fields, and for `config_path`).
    pub fn source_of(&self, field: &str) -> Option<&Source> {
        self.sources.get(field)
    }
}

/// Loads and validates the configuration from exactly what `ctx` holds.
///
/// Priority, highest first: `ctx.overrides`, the config file, the environment, `.env` in
/// `ctx.cwd`, defaults.
pub fn load_with(ctx: &LoadContext) -> Result<LoadedConfig, ConfigError> {
    let layers = Layers::collect(ctx)?;
    let built = build::build(&layers, ctx)?;
    let mut warnings = layers.warnings.clone();
    warnings.extend(built.notes);
    Ok(LoadedConfig {
        settings: built.settings,
        sources: built.sources,
        warnings,
    })
}

/// Loads from the real process environment, working directory and standard file locations,
/// with `overrides` (field name → value, from command-line flags) on top.
pub fn load(overrides: BTreeMap<String, Value>) -> Result<LoadedConfig, ConfigError> {
    load_with(&LoadContext::from_process(overrides)?)
}
