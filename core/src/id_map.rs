//! Maps keyed by an id string (or a key made of id strings, such as a `TaskKey`) whose order
//! never reaches an output (run ids, dispatch ids, the worker's per-task tables): a hash map
//! with a fixed hasher. A `BTreeMap<String, _>` compared the key against
//! several stored ids per lookup (ids share prefixes such as `run-`, so each comparison was a
//! `memcmp` call); here one hash of the key and usually one comparison suffice. The hasher is
//! fixed, not seeded, so the machine stays deterministic; since nothing iterates these maps,
//! their order reaches no output.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub(crate) type IdMap<V> = HashMap<String, V, BuildHasherDefault<IdHasher>>;

/// The same map for any hashable key (a `TaskKey` hashes its two strings).
pub(crate) type FixedMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A multiply-rotate hash over 8-byte words (the FxHash step), enough to spread short ids
/// over the buckets; not meant to resist chosen keys.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl IdHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes([
                w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7],
            ]));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn is_a_map_and_its_hash_is_fixed() {
        let mut m: IdMap<usize> = IdMap::default();
        for i in 0..500 {
            assert_eq!(m.insert(format!("run-{i}"), i), None);
        }
        assert_eq!(m.insert("run-7".into(), 70), Some(7));
        assert_eq!(m.get("run-7"), Some(&70));
        assert_eq!(m.get("run-499"), Some(&499));
        assert_eq!(m.get("run-500"), None);
        assert_eq!(m.remove_entry("run-3"), Some(("run-3".to_string(), 3)));
        assert_eq!(m.get("run-3"), None);
        // Same key, same hash, in every process: no random seed.
        let h = BuildHasherDefault::<IdHasher>::default();
        assert_eq!(h.hash_one("run-1"), h.hash_one("run-1"));
        assert_ne!(h.hash_one("run-1"), h.hash_one("run-2"));
        assert_ne!(h.hash_one("abcdefgh"), h.hash_one("abcdefgh\0"));
    }
}
