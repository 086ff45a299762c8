//! Leases of dedicated uids, one per running task. Leases are unique across every pool in
//! this process, and a uid that still owns processes (another worker on the same machine,
//! or a task not yet swept) is skipped.

use super::error::SandboxError;
use super::sys;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

/// Uids leased by any pool of this process: two sandboxes must never share a uid, or one
/// task's cleanup sweep would kill the other's processes.
static IN_USE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

fn in_use() -> MutexGuard<'static, BTreeSet<u32>> {
    // Only whole inserts/removes happen under the lock; poison is harmless.
    IN_USE.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug)]
pub(crate) struct UidPool {
    first: u32,
    count: u32,
    /// Where the next search starts: uids are handed out round-robin so a just-released uid
    /// is not reused until the pool wraps (files or stray state of the previous task stay
    /// apart). Per pool, so pools (and tests) do not move each other's position.
    cursor: std::sync::atomic::AtomicU32,
}

/// Returns its uid when dropped (after the task's processes are gone).
#[derive(Debug)]
pub(crate) struct UidLease {
    pub(crate) uid: u32,
}

impl UidPool {
    pub(crate) fn new(first: u32, count: u32) -> Arc<Self> {
        Arc::new(UidPool {
            first,
            count,
            cursor: std::sync::atomic::AtomicU32::new(0),
        })
    }

    pub(crate) fn lease(self: &Arc<Self>) -> Result<UidLease, SandboxError> {
        let busy = sys::uids_with_processes();
        let mut in_use = in_use();
        let start = self.cursor.load(std::sync::atomic::Ordering::Relaxed);
        let free = (0..self.count)
            .map(|i| start.wrapping_add(i) % self.count.max(1))
            .filter_map(|i| self.first.checked_add(i))
            .find(|uid| !in_use.contains(uid) && !busy.contains(uid));
        if let Some(uid) = free {
            let next = (uid - self.first).wrapping_add(1);
            self.cursor
                .store(next, std::sync::atomic::Ordering::Relaxed);
        }
        match free {
            Some(uid) => {
                in_use.insert(uid);
                Ok(UidLease { uid })
            }
            None => Err(SandboxError::UidPoolExhausted {
                first: self.first,
                count: self.count,
            }),
        }
    }
}

impl Drop for UidLease {
    fn drop(&mut self) {
        in_use().remove(&self.uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_distinct_across_pools_and_returned() {
        // A range no other test uses.
        let pool = UidPool::new(1_800_000_000, 2);
        let other = UidPool::new(1_800_000_000, 2);
        let a = pool.lease().unwrap();
        let b = other.lease().unwrap();
        assert_ne!(a.uid, b.uid);
        assert!(matches!(
            pool.lease(),
            Err(SandboxError::UidPoolExhausted {
                first: 1_800_000_000,
                count: 2
            })
        ));
        let freed = a.uid;
        drop(a);
        assert_eq!(pool.lease().unwrap().uid, freed);
    }

    #[test]
    fn leases_rotate_through_the_pool() {
        let pool = UidPool::new(1_700_000_000, 3);
        let a = pool.lease().unwrap().uid;
        let b = pool.lease().unwrap().uid;
        assert_ne!(a, b, "a released uid is not handed out again at once");
    }
}
