//! Per-worker simulated disks: the durable outbox (Persist/Forget, survives crashes) and the
//! package store whose inventory the worker reports.

use astra_core::v1::payloads::{PackageEntry, PackageStatus};
use astra_core::work::{HandlerKey, Inventory};
use astra_core::worker::OutboxEntry;
use std::collections::BTreeMap;

/// The package every worker has; the workload only uses it.
pub const BASE_PKG: &str = "sim.builtin";
pub const BASE_VERSION: &str = "1.0.0";
pub const NODE_TYPES: [&str; 4] = ["echo", "sleep", "fail", "stream"];

/// The outbox as the host keeps it on disk: written in order, deleted by id.
#[derive(Debug, Clone, Default)]
pub struct DurableOutbox {
    entries: BTreeMap<u64, OutboxEntry>,
    by_id: BTreeMap<String, u64>,
    next: u64,
}

impl DurableOutbox {
    pub fn persist(&mut self, e: OutboxEntry) {
        if let Some(old) = self.by_id.remove(&e.id) {
            self.entries.remove(&old);
        }
        self.next += 1;
        self.by_id.insert(e.id.clone(), self.next);
        self.entries.insert(self.next, e);
    }
    pub fn forget(&mut self, id: &str) {
        if let Some(n) = self.by_id.remove(id) {
            self.entries.remove(&n);
        }
    }
    /// What a restarted worker finds on disk, oldest first.
    pub fn load(&self) -> Vec<OutboxEntry> {
        self.entries.values().cloned().collect()
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn wipe(&mut self) {
        self.entries.clear();
        self.by_id.clear();
    }
}

/// Installed packages and the handlers they provide.
#[derive(Debug, Clone)]
pub struct PackageStore {
    inv: Inventory,
}

impl Default for PackageStore {
    fn default() -> Self {
        let mut s = PackageStore {
            inv: Inventory::default(),
        };
        s.install(BASE_PKG, BASE_VERSION);
        s
    }
}

impl PackageStore {
    pub fn inventory(&self) -> &Inventory {
        &self.inv
    }

    pub fn install(&mut self, name: &str, version: &str) {
        self.inv.packages.insert(PackageEntry {
            name: name.into(),
            version: version.into(),
            status: PackageStatus::Installed,
        });
        let types: &[&str] = if name == BASE_PKG {
            &NODE_TYPES
        } else {
            &["noop"]
        };
        for t in types {
            self.inv.handlers.insert(HandlerKey::new(name, version, *t));
        }
    }

    /// Removes `name` (one version, or every version). Returns the versions removed.
    pub fn uninstall(&mut self, name: &str, version: Option<&str>) -> Vec<String> {
        let gone: Vec<PackageEntry> = self
            .inv
            .packages
            .iter()
            .filter(|p| p.name == name && version.is_none_or(|v| p.version == v))
            .cloned()
            .collect();
        for p in &gone {
            self.inv.packages.remove(p);
            self.inv
                .handlers
                .retain(|h| !(h.package == p.name && h.version == p.version));
        }
        gone.into_iter().map(|p| p.version).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> OutboxEntry {
        OutboxEntry {
            id: id.into(),
            kind: astra_core::v1::types::FrameType::Result,
            task: None,
            frame: String::new(),
        }
    }

    #[test]
    fn outbox_keeps_write_order_and_forgets_by_id() {
        let mut o = DurableOutbox::default();
        o.persist(entry("a"));
        o.persist(entry("b"));
        o.persist(entry("a"));
        let ids: Vec<String> = o.load().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, vec!["b", "a"]);
        o.forget("b");
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn base_package_is_installed_and_uninstall_removes_handlers() {
        let mut s = PackageStore::default();
        s.install("extra", "1");
        assert!(s
            .inventory()
            .has_handler(&HandlerKey::new("extra", "1", "noop")));
        assert_eq!(s.uninstall("extra", None), vec!["1".to_string()]);
        assert!(!s
            .inventory()
            .has_handler(&HandlerKey::new("extra", "1", "noop")));
        assert!(s
            .inventory()
            .has_handler(&HandlerKey::new(BASE_PKG, BASE_VERSION, "echo")));
    }
}
