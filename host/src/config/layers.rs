//! The five configuration sources as figment providers, merged in priority order.
//!
//! figment does the layering and tells which source won each field (`find_metadata`). The
//! value itself is then taken from that source's own map rather than from figment's merge,
//! because figment unions nested dictionaries across sources whereas the Python worker
//! replaces a field as a whole (a file's `concurrency_per_node_limits` must not be mixed
//! with the environment's).

use super::context::{LoadContext, CONFIG_FILE_VAR, ENV_PREFIX};
use super::error::ConfigError;
use super::files;
use super::settings::{WorkerSettings, ENV_ALIASES, FIELDS};
use super::source::Source;
use figment::value::{Dict, Map as FigMap};
use figment::{Figment, Metadata, Profile, Provider};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One source's values, keyed by field name.
struct Layer {
    /// Unique per layer; it is how figment's metadata is mapped back to the layer.
    label: String,
    source: Source,
    values: BTreeMap<String, Value>,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.label.clone())
    }

    fn data(&self) -> Result<FigMap<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (k, v) in &self.values {
            dict.insert(k.clone(), figment::value::Value::serialize(v)?);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// All sources, merged.
pub(crate) struct Layers {
    figment: Figment,
    layers: Vec<Layer>,
    by_label: HashMap<String, usize>,
    pub(crate) config_path: Option<PathBuf>,
    pub(crate) warnings: Vec<String>,
}

impl Layers {
    pub(crate) fn collect(ctx: &LoadContext) -> Result<Layers, ConfigError> {
        let mut warnings = Vec::new();
        // Lowest priority first: each later layer overrides the earlier ones.
        let mut layers = vec![defaults_layer()?];
        layers.extend(dotenv_layer(ctx, &mut warnings)?);
        // Aliases sit just below the prefixed variables, so `ASTRA_WORKER_X` wins over them.
        layers.extend(alias_layers(ctx));
        layers.extend(env_layers(ctx, &mut warnings));
        let config_path = files::locate(ctx)?;
        if let Some(path) = &config_path {
            let map = files::read(path)?;
            let mut values = BTreeMap::new();
            for (key, value) in map {
                if is_field(&key) {
                    values.insert(key, value);
                } else {
                    warnings.push(unknown_key_warning(
                        &key,
                        &Source::File { path: path.clone() },
                    ));
                }
            }
            let source = Source::File { path: path.clone() };
            layers.push(Layer {
                label: source.to_string(),
                source,
                values,
            });
        }
        for (key, value) in &ctx.overrides {
            if !is_field(key) {
                return Err(ConfigError::UnknownOverride { key: key.clone() });
            }
            let source = Source::Cli {
                flag: ctx.flag_for(key),
            };
            // The field is part of the label so two overrides shown with the same flag
            // text still map back to their own layer.
            let label = format!("{source} [{key}]");
            layers.push(Layer {
                label,
                source,
                values: BTreeMap::from([(key.clone(), value.clone())]),
            });
        }

        let mut figment = Figment::new();
        let mut by_label = HashMap::new();
        for (i, layer) in layers.iter().enumerate() {
            figment = figment.merge(layer);
            by_label.insert(layer.label.clone(), i);
        }
        Ok(Layers {
            figment,
            layers,
            by_label,
            config_path,
            warnings,
        })
    }

    /// The winning value of `field` and where it came from.
    pub(crate) fn resolve(&self, field: &'static str) -> Result<(&Value, &Source), ConfigError> {
        let layer = self
            .figment
            .find_metadata(field)
            .and_then(|m| self.by_label.get(m.name.as_ref()))
            .and_then(|&i| self.layers.get(i))
            .ok_or_else(|| ConfigError::Merge(format!("no source supplied `{field}`")))?;
        let value = layer
            .values
            .get(field)
            .ok_or_else(|| ConfigError::Merge(format!("source {} lost `{field}`", layer.source)))?;
        Ok((value, &layer.source))
    }
}

fn is_field(key: &str) -> bool {
    FIELDS.contains(&key)
}

fn unknown_key_warning(key: &str, source: &Source) -> String {
    if key == "config_path" {
        format!("config_path from {source} is ignored: it is set to the config file actually read")
    } else {
        format!("unknown setting `{key}` from {source} is ignored")
    }
}

fn defaults_layer() -> Result<Layer, ConfigError> {
    let all = serde_json::to_value(WorkerSettings::default())
        .map_err(|e| ConfigError::Merge(format!("serialising defaults: {e}")))?;
    let mut values: BTreeMap<String, Value> = FIELDS
        .iter()
        .map(|f| (f.to_string(), all.get(*f).cloned().unwrap_or(Value::Null)))
        .collect();
    // Unset means `<artifact_root>/models`, computed after `artifact_root` is known.
    values.insert("model_cache_dir".to_string(), Value::Null);
    Ok(Layer {
        label: Source::Default.to_string(),
        source: Source::Default,
        values,
    })
}

/// The field named by a variable with our prefix (any case), e.g. `astra_worker_Tenant` →
/// `tenant`. `None` for other variables.
fn field_of_var(var: &str) -> Option<String> {
    let prefix = var.get(..ENV_PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(ENV_PREFIX) {
        return None;
    }
    Some(var[ENV_PREFIX.len()..].to_ascii_lowercase())
}

/// One layer per variable so that provenance can name the exact variable.
fn env_layers(ctx: &LoadContext, warnings: &mut Vec<String>) -> Vec<Layer> {
    // field → (var, value); an upper-case spelling beats other spellings of the same name.
    let mut chosen: BTreeMap<String, (&str, &str)> = BTreeMap::new();
    for (var, value) in &ctx.env {
        let Some(field) = field_of_var(var) else {
            continue;
        };
        if var.eq_ignore_ascii_case(CONFIG_FILE_VAR) {
            continue;
        }
        if !is_field(&field) {
            warnings.push(unknown_key_warning(
                &field,
                &Source::Env { var: var.clone() },
            ));
            continue;
        }
        match chosen.get(&field) {
            Some((prev, _)) => {
                let (keep, drop) = if *prev == prev.to_ascii_uppercase() {
                    (*prev, var.as_str())
                } else {
                    (var.as_str(), *prev)
                };
                warnings.push(format!(
                    "{drop} is ignored: {keep} sets the same field `{field}`"
                ));
                if keep == var.as_str() {
                    chosen.insert(field, (var, value));
                }
            }
            None => {
                chosen.insert(field, (var, value));
            }
        }
    }
    chosen
        .into_iter()
        .map(|(field, (var, value))| {
            let source = Source::Env {
                var: var.to_string(),
            };
            Layer {
                label: source.to_string(),
                source,
                values: BTreeMap::from([(field, Value::String(value.to_string()))]),
            }
        })
        .collect()
}

/// One layer per documented alias that is set and non-empty (e.g. `HF_TOKEN`).
fn alias_layers(ctx: &LoadContext) -> Vec<Layer> {
    ENV_ALIASES
        .iter()
        .filter_map(|(var, field)| {
            let value = ctx.env.get(*var).filter(|v| !v.trim().is_empty())?;
            let source = Source::Env {
                var: var.to_string(),
            };
            Some(Layer {
                label: source.to_string(),
                source,
                values: BTreeMap::from([(field.to_string(), Value::String(value.clone()))]),
            })
        })
        .collect()
}

/// `.env` in the cwd, parsed without touching the process environment.
fn dotenv_layer(
    ctx: &LoadContext,
    warnings: &mut Vec<String>,
) -> Result<Option<Layer>, ConfigError> {
    let path = ctx.cwd.join(".env");
    if !path.exists() {
        return Ok(None);
    }
    let source = Source::DotEnv { path: path.clone() };
    let iter = dotenvy::from_path_iter(&path).map_err(|e| dotenv_error(&path, e))?;
    let mut values = BTreeMap::new();
    for item in iter {
        let (var, value) = item.map_err(|e| dotenv_error(&path, e))?;
        let Some(field) = field_of_var(&var) else {
            continue;
        };
        if var.eq_ignore_ascii_case(CONFIG_FILE_VAR) {
            warnings.push(format!(
                "{var} in {source} is ignored: the config file can only be named in the real environment"
            ));
        } else if is_field(&field) {
            // Later lines win, as when a shell sources the file.
            values.insert(field, Value::String(value));
        } else {
            warnings.push(unknown_key_warning(&field, &source));
        }
    }
    Ok(Some(Layer {
        label: source.to_string(),
        source,
        values,
    }))
}

/// dotenvy's parse error carries the offending line, which may hold the auth token; report
/// only its line number.
fn dotenv_error(path: &Path, e: dotenvy::Error) -> ConfigError {
    let detail = match e {
        dotenvy::Error::LineParse(line, _) => {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let first = line.lines().next().unwrap_or_default();
            match text.lines().position(|l| l == first) {
                Some(n) => format!("line {} is not `NAME=value` syntax", n + 1),
                None => "a line is not `NAME=value` syntax".to_string(),
            }
        }
        dotenvy::Error::Io(io) => io.to_string(),
        dotenvy::Error::EnvVar(v) => v.to_string(),
        other => other.to_string(),
    };
    ConfigError::DotEnv {
        path: path.to_path_buf(),
        detail,
    }
}
