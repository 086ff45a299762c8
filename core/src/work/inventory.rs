//! What the worker can run: installed packages (reported in `register`) and the handler keys
//! (package, version, node type) they provide.

use crate::v1::payloads::{PackageEntry, PackageStatus};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct HandlerKey {
    pub package: String,
    pub version: String,
    pub node_type: String,
}

impl HandlerKey {
    pub fn new(
        package: impl Into<String>,
        version: impl Into<String>,
        node_type: impl Into<String>,
    ) -> Self {
        HandlerKey {
            package: package.into(),
            version: version.into(),
            node_type: node_type.into(),
        }
    }
}

impl std::fmt::Display for HandlerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Same shape as the Python worker's KeyError message.
        write!(
            f,
            "('{}', '{}', '{}')",
            self.package, self.version, self.node_type
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Sorted by (name, version) so `register` frames are deterministic.
    pub packages: BTreeSet<PackageEntry>,
    pub handlers: BTreeSet<HandlerKey>,
}

impl Inventory {
    pub fn has_handler(&self, key: &HandlerKey) -> bool {
        self.handlers.contains(key)
    }

    /// Packages as `register` reports them: installed ones only. The scheduler routes by name
    /// and version and ignores `status` (spec §4.3), so a `failed` entry would attract work
    /// this worker cannot run; the host logs broken packages instead.
    pub fn register_entries(&self) -> Vec<PackageEntry> {
        self.installed().cloned().collect()
    }

    pub fn installed(&self) -> impl Iterator<Item = &PackageEntry> {
        self.packages
            .iter()
            .filter(|p| p.status == PackageStatus::Installed)
    }
}
