//! What the worker can run: installed packages (reported in `register`) and the handler keys
//! (package, version, node type) they provide.

use crate::v1::payloads::{PackageEntry, PackageStatus};
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::cmp::Ordering;
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

/// A handler key's three parts, borrowed, in `HandlerKey`'s field order: the handler set is
/// searched through this view ([`Inventory::has_handler_parts`]) without building an owned
/// key (three allocated strings on every dispatch). Compares exactly as the derived `Ord` of
/// `HandlerKey` does (field by field, each as bytes), which `Borrow` requires.
pub trait HandlerKeyParts {
    fn parts(&self) -> (&str, &str, &str);
}

impl HandlerKeyParts for HandlerKey {
    fn parts(&self) -> (&str, &str, &str) {
        (&self.package, &self.version, &self.node_type)
    }
}

impl HandlerKeyParts for (&str, &str, &str) {
    fn parts(&self) -> (&str, &str, &str) {
        *self
    }
}

impl<'a> Borrow<dyn HandlerKeyParts + 'a> for HandlerKey {
    fn borrow(&self) -> &(dyn HandlerKeyParts + 'a) {
        self
    }
}

impl PartialEq for dyn HandlerKeyParts + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn HandlerKeyParts + '_ {}

impl PartialOrd for dyn HandlerKeyParts + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for dyn HandlerKeyParts + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
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

    /// [`Inventory::has_handler`] of the key these parts make, without building it.
    pub fn has_handler_parts(&self, package: &str, version: &str, node_type: &str) -> bool {
        let parts = (package, version, node_type);
        self.handlers.contains(&parts as &dyn HandlerKeyParts)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_handler_parts_agrees_with_has_handler() {
        let mut inv = Inventory::default();
        for (p, v, n) in [
            ("a", "1", "x"),
            ("a", "1", "y"),
            ("a", "2", "x"),
            ("ab", "1", "x"),
        ] {
            inv.handlers.insert(HandlerKey::new(p, v, n));
        }
        for p in ["", "a", "ab", "b"] {
            for v in ["", "1", "2", "10"] {
                for n in ["", "x", "y", "z"] {
                    let owned = inv.has_handler(&HandlerKey::new(p, v, n));
                    assert_eq!(inv.has_handler_parts(p, v, n), owned, "{p} {v} {n}");
                }
            }
        }
        assert!(inv.has_handler_parts("a", "2", "x"));
        assert!(!inv.has_handler_parts("a", "2", "y"));
    }
}
