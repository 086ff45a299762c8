//! What a manifest offers the runner: one [`HandlerSpec`] per node, with its registry key, its
//! runtime (`adapters[].metadata.runtime`) and its resolved entrypoint (spec §7.2).

use super::manifest::{Adapter, Manifest, ManifestError};
use super::relpath::{self, PathLimits};
use astra_core::work::inventory::HandlerKey;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// How the worker runs an adapter's handlers, from `adapters[].metadata`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "runtime", rename_all = "lowercase")]
pub enum Runtime {
    /// `metadata.runtime` absent or `"python"`: import the entrypoint in a Python interpreter
    /// with the package directory on `sys.path`. The default, because every AstraFlow package
    /// written for the Python worker is Python.
    Python,
    /// `metadata.runtime = "process"`: run `metadata.command` (a path relative to the package
    /// directory, already checked not to escape it) with optional `metadata.args`.
    Process { command: String, args: Vec<String> },
    /// `metadata.runtime = "builtin"`: a handler compiled into the worker, named by the
    /// entrypoint.
    Builtin,
}

impl Runtime {
    pub fn name(&self) -> &'static str {
        match self {
            Runtime::Python => "python",
            Runtime::Process { .. } => "process",
            Runtime::Builtin => "builtin",
        }
    }
}

/// A resolved `module:attr` entrypoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entrypoint {
    pub module: String,
    pub attr: String,
}

impl fmt::Display for Entrypoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.module, self.attr)
    }
}

/// Spec §7.2: an adapter entrypoint without `:` gives `module:handler`; `module:Base` gives
/// `module:Base` when the last dotted segment of `Base` is the handler, else
/// `module:Base.handler`.
pub fn resolve_entrypoint(adapter_entrypoint: &str, handler: &str) -> Entrypoint {
    match adapter_entrypoint.split_once(':') {
        None => Entrypoint {
            module: adapter_entrypoint.to_string(),
            attr: handler.to_string(),
        },
        Some((module, base)) => {
            let last = base.rsplit('.').next().unwrap_or(base);
            let attr = if last == handler {
                base.to_string()
            } else {
                format!("{base}.{handler}")
            };
            Entrypoint {
                module: module.to_string(),
                attr,
            }
        }
    }
}

/// Everything the runner needs to execute one node type of an installed package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandlerSpec {
    /// `(manifest.name, manifest.version, node.type)`, the dispatch routing key.
    pub key: HandlerKey,
    /// The adapter's `name`.
    pub adapter: String,
    pub runtime: Runtime,
    pub entrypoint: Entrypoint,
    /// The node's static `config` (`{}` when absent).
    pub config: Map<String, Value>,
    /// The adapter's `metadata` (`{}` when absent); the Python worker passes it on.
    pub adapter_metadata: Map<String, Value>,
}

impl Manifest {
    /// One spec per node, in manifest order. Fails only for a manifest that did not come from
    /// [`Manifest::parse`] (which already ran these checks).
    pub fn handlers(&self) -> Result<Vec<HandlerSpec>, ManifestError> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let (ai, adapter) = self
                    .adapters
                    .iter()
                    .enumerate()
                    .find(|(_, a)| a.name == node.adapter)
                    .ok_or_else(|| {
                        ManifestError::invalid(
                            format!("nodes[{i}].adapter"),
                            format!("names adapter {:?}, which is not declared", node.adapter),
                        )
                    })?;
                Ok(HandlerSpec {
                    key: HandlerKey::new(&self.name, &self.version, &node.node_type),
                    adapter: adapter.name.clone(),
                    runtime: adapter_runtime(adapter, ai)?,
                    entrypoint: resolve_entrypoint(&adapter.entrypoint, &node.handler),
                    config: node.config.clone(),
                    adapter_metadata: adapter.metadata.clone().unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// Reads the runtime of `adapters[index]` from its `metadata`.
pub(crate) fn adapter_runtime(a: &Adapter, index: usize) -> Result<Runtime, ManifestError> {
    let at = |field: &str| format!("adapters[{index}].metadata.{field}");
    let Some(meta) = &a.metadata else {
        return Ok(Runtime::Python);
    };
    let kind = match meta.get("runtime") {
        None | Some(Value::Null) => return Ok(Runtime::Python),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(ManifestError::invalid(
                at("runtime"),
                "must be a string: \"python\", \"process\" or \"builtin\"",
            ))
        }
    };
    match kind {
        "python" => Ok(Runtime::Python),
        "builtin" => Ok(Runtime::Builtin),
        "process" => {
            let command = match meta.get("command") {
                Some(Value::String(s)) => s,
                _ => {
                    return Err(ManifestError::invalid(
                        at("command"),
                        "runtime \"process\" needs `command`: a path to the executable, \
                         relative to the package directory (e.g. \"bin/handler\")",
                    ))
                }
            };
            match relpath::normalize(command, PathLimits::default()) {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(ManifestError::invalid(
                        at("command"),
                        "names the package directory itself, not an executable",
                    ))
                }
                Err(why) => {
                    return Err(ManifestError::invalid(
                        at("command"),
                        format!("{command:?} {why}; it must stay inside the package directory"),
                    ))
                }
            }
            let args = match meta.get("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(k, v)| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            ManifestError::invalid(at(&format!("args[{k}]")), "must be a string")
                        })
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => {
                    return Err(ManifestError::invalid(
                        at("args"),
                        "must be an array of strings",
                    ))
                }
            };
            Ok(Runtime::Process {
                command: command.clone(),
                args,
            })
        }
        other => Err(ManifestError::invalid(
            at("runtime"),
            format!("unknown runtime {other:?}; use \"python\", \"process\" or \"builtin\""),
        )),
    }
}
