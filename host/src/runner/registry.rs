//! The handler registry: (package, version, node type) → handler, changed at runtime as
//! packages are installed and uninstalled, and the inventory reported in `register`.

use super::handler::Handler;
use astra_core::v1::payloads::{PackageEntry, PackageStatus};
use astra_core::work::{HandlerKey, Inventory};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[derive(Clone)]
struct PackageSlot {
    status: PackageStatus,
    handlers: BTreeMap<String, Arc<dyn Handler>>,
}

/// Thread-safe; clone the `Arc` the runner hands out to share it.
#[derive(Default)]
pub struct HandlerRegistry {
    packages: RwLock<BTreeMap<(String, String), PackageSlot>>,
}

impl HandlerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    // Poisoning only means a panic happened while the lock was held; every write below
    // leaves the map consistent, so the data is still usable.
    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<(String, String), PackageSlot>> {
        self.packages.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<(String, String), PackageSlot>> {
        self.packages.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a whole package version as installed, replacing any earlier registration of
    /// that same version (other versions are untouched).
    pub fn register_package<I>(&self, name: &str, version: &str, handlers: I)
    where
        I: IntoIterator<Item = (String, Arc<dyn Handler>)>,
    {
        let slot = PackageSlot {
            status: PackageStatus::Installed,
            handlers: handlers.into_iter().collect(),
        };
        self.write()
            .insert((name.to_string(), version.to_string()), slot);
    }

    /// Adds (or replaces) one handler; its package version becomes installed.
    pub fn register(&self, key: HandlerKey, handler: Arc<dyn Handler>) {
        let mut packages = self.write();
        let slot = packages
            .entry((key.package, key.version))
            .or_insert_with(|| PackageSlot {
                status: PackageStatus::Installed,
                handlers: BTreeMap::new(),
            });
        slot.status = PackageStatus::Installed;
        slot.handlers.insert(key.node_type, handler);
    }

    /// Records a package version whose install or load failed: reported with status `failed`,
    /// provides no handlers. Replaces an earlier registration of that version.
    pub fn mark_failed(&self, name: &str, version: &str) {
        let slot = PackageSlot {
            status: PackageStatus::Failed,
            handlers: BTreeMap::new(),
        };
        self.write()
            .insert((name.to_string(), version.to_string()), slot);
    }

    /// Removes a package version and all its handlers. Returns whether it was present.
    /// Tasks already running keep their handler until they finish.
    pub fn unregister_package(&self, name: &str, version: &str) -> bool {
        self.write()
            .remove(&(name.to_string(), version.to_string()))
            .is_some()
    }

    /// Versions registered for `name` (for an uninstall without a version).
    pub fn versions(&self, name: &str) -> Vec<String> {
        self.read()
            .keys()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn resolve(&self, key: &HandlerKey) -> Option<Arc<dyn Handler>> {
        let packages = self.read();
        let slot = packages.get(&(key.package.clone(), key.version.clone()))?;
        slot.handlers.get(&key.node_type).cloned()
    }

    /// Packages with their status plus every handler key, as `register` reports them.
    pub fn inventory(&self) -> Inventory {
        let mut inventory = Inventory::default();
        for ((name, version), slot) in self.read().iter() {
            inventory.packages.insert(PackageEntry {
                name: name.clone(),
                version: version.clone(),
                status: slot.status,
            });
            for node_type in slot.handlers.keys() {
                inventory
                    .handlers
                    .insert(HandlerKey::new(name, version, node_type));
            }
        }
        inventory
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::context::ExecutionContext;
    use crate::runner::handler::{HandlerError, HandlerOutput};

    fn noop() -> Arc<dyn Handler> {
        Arc::new(
            |_: &ExecutionContext| -> Result<HandlerOutput, HandlerError> {
                Ok(HandlerOutput::new())
            },
        )
    }

    #[test]
    fn register_resolve_inventory_unregister() {
        let r = HandlerRegistry::new();
        r.register_package(
            "pkg",
            "1.0.0",
            [("a".to_string(), noop()), ("b".to_string(), noop())],
        );
        r.register(HandlerKey::new("pkg", "2.0.0", "a"), noop());
        r.mark_failed("broken", "0.1.0");

        assert!(r.resolve(&HandlerKey::new("pkg", "1.0.0", "b")).is_some());
        assert!(r.resolve(&HandlerKey::new("pkg", "1.0.0", "c")).is_none());
        assert!(r.resolve(&HandlerKey::new("pkg", "3.0.0", "a")).is_none());

        let inv = r.inventory();
        assert_eq!(inv.handlers.len(), 3);
        assert!(inv.has_handler(&HandlerKey::new("pkg", "2.0.0", "a")));
        let statuses: Vec<_> = inv
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str(), p.status))
            .collect();
        assert_eq!(
            statuses,
            vec![
                ("broken", "0.1.0", PackageStatus::Failed),
                ("pkg", "1.0.0", PackageStatus::Installed),
                ("pkg", "2.0.0", PackageStatus::Installed)
            ]
        );
        assert_eq!(
            r.versions("pkg"),
            vec!["1.0.0".to_string(), "2.0.0".to_string()]
        );

        assert!(r.unregister_package("pkg", "1.0.0"));
        assert!(!r.unregister_package("pkg", "1.0.0"));
        assert!(r.resolve(&HandlerKey::new("pkg", "1.0.0", "a")).is_none());
        assert!(r.resolve(&HandlerKey::new("pkg", "2.0.0", "a")).is_some());
        assert_eq!(r.inventory().handlers.len(), 1);
    }

    #[test]
    fn re_registering_a_version_replaces_its_handlers() {
        let r = HandlerRegistry::new();
        r.register_package("pkg", "1", [("old".to_string(), noop())]);
        r.register_package("pkg", "1", [("new".to_string(), noop())]);
        assert!(r.resolve(&HandlerKey::new("pkg", "1", "old")).is_none());
        assert!(r.resolve(&HandlerKey::new("pkg", "1", "new")).is_some());
    }
}
