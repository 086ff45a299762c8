//! The package `manifest.json` model (spec §7.1) and its validation.
//!
//! Parsing is two passes: serde (with `deny_unknown_fields` wherever the schema says
//! `additionalProperties: false`) reports type errors and unknown keys with their field path;
//! then [`validate`] checks the string patterns and the cross-references serde cannot express.
//! Every error names the field path (`nodes[2].adapter`) so a package author can fix it.

use super::handlers::{adapter_runtime, Runtime};
use super::names;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Largest `manifest.json` we read. The example package's manifest is ~40 KiB; anything near
/// a megabyte is not a manifest but an attack or a mistake.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// Why a manifest was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "manifest.json is {size} bytes, over the {limit}-byte limit; a manifest only describes \
         the package, so move large data into separate package files"
    )]
    TooLarge { size: u64, limit: u64 },
    #[error("manifest.json is not valid JSON (line {line}, column {column}): {reason}")]
    Syntax {
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("manifest.json field `{path}`: {reason}")]
    Invalid { path: String, reason: String },
}

impl ManifestError {
    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ManifestError::Invalid {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The field path of an `Invalid` error (for tests and structured logs).
    pub fn path(&self) -> Option<&str> {
        match self {
            ManifestError::Invalid { path, .. } => Some(path),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: String,
    pub name: String,
    pub version: String,
    pub description: String,
    pub adapters: Vec<Adapter>,
    pub python: PythonConfig,
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub resources: Vec<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adapter {
    pub name: String,
    pub entrypoint: String,
    pub capabilities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency: Option<String>,
    /// Open object. `metadata.runtime` / `command` / `args` select how the worker runs the
    /// adapter's handlers (see [`Runtime`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonConfig {
    pub requires: String,
    #[serde(default)]
    pub dependencies: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Draft,
    Published,
    Deprecated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// The dispatch `node_type`.
    #[serde(rename = "type")]
    pub node_type: String,
    pub status: NodeStatus,
    pub category: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    pub adapter: String,
    pub handler: String,
    #[serde(default)]
    pub config: Map<String, Value>,
    /// A JSON Schema: an object (usually with `parameters` and `results`) or a boolean.
    pub schema: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ui: Option<NodeUi>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeUi {
    #[serde(default)]
    pub input_ports: Vec<Port>,
    #[serde(default)]
    pub widgets: Vec<Widget>,
    #[serde(default)]
    pub output_ports: Vec<Port>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub key: String,
    pub label: String,
    pub binding: Binding,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Widget {
    pub key: String,
    pub label: String,
    pub component: String,
    pub binding: Binding,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindingMode {
    Read,
    #[default]
    Write,
    TwoWay,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    pub path: String,
    #[serde(default)]
    pub mode: BindingMode,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub path: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    #[serde(default)]
    pub install: Vec<String>,
    #[serde(default)]
    pub uninstall: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Signature {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

impl Manifest {
    /// Parses and validates `manifest.json` bytes. Deeply nested input is stopped by
    /// serde_json's recursion limit (128 levels) before it can exhaust the stack.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let size = bytes.len() as u64;
        if size > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                size,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        // Editors on Windows like to add a BOM; it carries no meaning, so tolerate it.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let manifest: Manifest =
            serde_path_to_error::deserialize(&mut de).map_err(|e| from_serde(&e))?;
        de.end().map_err(|e| syntax(&e))?;
        validate(&manifest)?;
        Ok(manifest)
    }

    /// Looks up an adapter by name.
    pub fn adapter(&self, name: &str) -> Option<&Adapter> {
        self.adapters.iter().find(|a| a.name == name)
    }
}

fn syntax(e: &serde_json::Error) -> ManifestError {
    ManifestError::Syntax {
        line: e.line(),
        column: e.column(),
        reason: e.to_string(),
    }
}

fn from_serde(e: &serde_path_to_error::Error<serde_json::Error>) -> ManifestError {
    let inner = e.inner();
    if !inner.is_data() {
        return syntax(inner);
    }
    let path = e.path().to_string();
    let path = if path == "." {
        "(top level)".to_string()
    } else {
        path
    };
    ManifestError::invalid(path, inner.to_string())
}

fn check(path: impl FnOnce() -> String, r: Result<(), String>) -> Result<(), ManifestError> {
    r.map_err(|reason| ManifestError::invalid(path(), reason))
}

/// The checks serde cannot express: patterns, minimum lengths, references, uniqueness.
fn validate(m: &Manifest) -> Result<(), ManifestError> {
    check(
        || "schemaVersion".into(),
        names::check_schema_version(&m.schema_version),
    )?;
    check(|| "name".into(), names::check_package_name(&m.name))?;
    check(|| "version".into(), names::check_version(&m.version))?;

    if m.adapters.is_empty() {
        return Err(ManifestError::invalid(
            "adapters",
            "must list at least one adapter",
        ));
    }
    let mut adapter_index: HashMap<&str, usize> = HashMap::new();
    for (i, a) in m.adapters.iter().enumerate() {
        if let Some(first) = adapter_index.insert(a.name.as_str(), i) {
            return Err(ManifestError::invalid(
                format!("adapters[{i}].name"),
                format!(
                    "adapter name {:?} is already used by adapters[{first}]; names must be unique",
                    a.name
                ),
            ));
        }
        check(
            || format!("adapters[{i}].entrypoint"),
            names::check_entrypoint(&a.entrypoint),
        )?;
        if a.capabilities.is_empty() {
            return Err(ManifestError::invalid(
                format!("adapters[{i}].capabilities"),
                "must list at least one capability",
            ));
        }
        adapter_runtime(a, i)?;
    }

    if m.nodes.is_empty() {
        return Err(ManifestError::invalid(
            "nodes",
            "must list at least one node",
        ));
    }
    let mut types: HashMap<&str, usize> = HashMap::new();
    for (i, n) in m.nodes.iter().enumerate() {
        check(
            || format!("nodes[{i}].type"),
            names::check_token(&n.node_type),
        )?;
        if let Some(first) = types.insert(n.node_type.as_str(), i) {
            return Err(ManifestError::invalid(
                format!("nodes[{i}].type"),
                format!(
                    "node type {:?} is already defined by nodes[{first}]; node types must be unique",
                    n.node_type
                ),
            ));
        }
        check(
            || format!("nodes[{i}].adapter"),
            names::check_token(&n.adapter),
        )?;
        if !adapter_index.contains_key(n.adapter.as_str()) {
            let declared: Vec<&str> = m.adapters.iter().map(|a| a.name.as_str()).collect();
            return Err(ManifestError::invalid(
                format!("nodes[{i}].adapter"),
                format!(
                    "names adapter {:?}, which is not declared; declared adapters: {declared:?}",
                    n.adapter
                ),
            ));
        }
        check(
            || format!("nodes[{i}].handler"),
            names::check_handler(&n.handler),
        )?;
        if !(n.schema.is_object() || n.schema.is_boolean()) {
            return Err(ManifestError::invalid(
                format!("nodes[{i}].schema"),
                "must be a JSON Schema object (with `parameters` and `results`) or a boolean",
            ));
        }
    }

    for (i, r) in m.resources.iter().enumerate() {
        if let Some(sha) = &r.sha256 {
            check(
                || format!("resources[{i}].sha256"),
                names::check_sha256(sha),
            )?;
        }
    }
    if let Some(Signature {
        sha256: Some(sha), ..
    }) = &m.signature
    {
        check(|| "signature.sha256".into(), names::check_sha256(sha))?;
    }
    Ok(())
}

/// Peeks at `name` and `version` of a manifest that failed validation, so discovery can still
/// report the broken package under its own identity. Returns only values that pass the name
/// and version patterns, because they end up in `register` frames and paths.
pub(crate) fn loose_identity(bytes: &[u8]) -> (Option<String>, Option<String>) {
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return (None, None);
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(bytes) else {
        return (None, None);
    };
    let get = |key: &str, ok: fn(&str) -> Result<(), String>| {
        map.get(key)
            .and_then(Value::as_str)
            .filter(|s| ok(s).is_ok())
            .map(str::to_string)
    };
    (
        get("name", names::check_package_name),
        get("version", names::check_version),
    )
}

/// Runtime helper for callers that hold a parsed manifest: the runtime of every adapter, in
/// order. Fails only for a manifest that was built or mutated without [`Manifest::parse`].
pub fn adapter_runtimes(m: &Manifest) -> Result<Vec<Runtime>, ManifestError> {
    m.adapters
        .iter()
        .enumerate()
        .map(|(i, a)| adapter_runtime(a, i))
        .collect()
}
