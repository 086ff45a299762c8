//! Counts of received frames by type, as `SchedStats::frames_received` exposes them: one
//! slot per known [`FrameType`] (every frame bumps one, so no string key is compared or
//! allocated on the hot path) and an ordered map only for type strings the dialect does
//! not know. Reads, iteration, `Debug` and `Serialize` give exactly what the former
//! `BTreeMap<String, u64>` gave: the non-zero counts keyed by type name in string order.

use crate::v1::types::FrameType;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::collections::BTreeMap;

const KNOWN: usize = FrameType::ALL.len();

#[derive(Clone, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// Indexed by position in [`FrameType::ALL`]; zero means "never seen" (no entry).
    known: [u64; KNOWN],
    /// Only strings `FrameType::parse` rejects, so each name has exactly one home.
    other: BTreeMap<String, u64>,
}

/// `FrameType::ALL[slot(t)] == t`.
fn slot(t: FrameType) -> usize {
    t as usize
}

impl FrameCounts {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one frame of a known type.
    pub fn bump(&mut self, t: FrameType) {
        self.known[slot(t)] += 1;
    }

    /// Counts one frame of type `kind`, known or not; the key is allocated only the first
    /// time an unknown type is seen.
    pub fn bump_str(&mut self, kind: &str) {
        match FrameType::parse(kind) {
            Some(t) => self.bump(t),
            None => match self.other.get_mut(kind) {
                Some(n) => *n += 1,
                None => {
                    self.other.insert(kind.to_string(), 1);
                }
            },
        }
    }

    /// The count of `kind`, `None` if no such frame was received (as `BTreeMap::get`).
    pub fn get(&self, kind: &str) -> Option<&u64> {
        match FrameType::parse(kind) {
            Some(t) => Some(&self.known[slot(t)]).filter(|n| **n > 0),
            None => self.other.get(kind),
        }
    }

    /// Non-zero counts in the key order of a `BTreeMap<String, u64>`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        let mut all: Vec<(&str, u64)> = FrameType::ALL
            .iter()
            .zip(self.known)
            .filter(|(_, n)| *n > 0)
            .map(|(t, n)| (t.as_str(), n))
            .chain(self.other.iter().map(|(k, n)| (k.as_str(), *n)))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all.into_iter()
    }

    pub fn len(&self) -> usize {
        self.known.iter().filter(|n| **n > 0).count() + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for FrameCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for FrameCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, n) in self.iter() {
            m.serialize_entry(k, &n)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds the same names to the counter and to the map it replaced, and compares every
    /// way of reading them.
    #[test]
    fn reads_like_the_btreemap_it_replaced() {
        for (i, t) in FrameType::ALL.iter().enumerate() {
            assert_eq!(slot(*t), i, "FrameType::ALL is in declaration order");
        }
        let names = [
            "result",
            "ack",
            "zzz",
            "heartbeat",
            "ack",
            "unknown",
            "cmd.dispatch",
            "Ack",
            "",
            "pkg.uninstall",
            "ack",
            "unknown",
            "command.error",
            "a",
            "pkg.event",
            "heartbeat",
        ];
        let mut c = FrameCounts::new();
        let mut m: BTreeMap<String, u64> = BTreeMap::new();
        assert!(c.is_empty());
        for (i, n) in names.iter().enumerate() {
            match FrameType::parse(n) {
                Some(t) if i % 2 == 0 => c.bump(t),
                _ => c.bump_str(n),
            }
            *m.entry(n.to_string()).or_default() += 1;
            let got: Vec<(String, u64)> = c.iter().map(|(k, v)| (k.to_string(), v)).collect();
            let want: Vec<(String, u64)> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
            assert_eq!(got, want);
            assert_eq!(c.len(), m.len());
            assert_eq!(format!("{c:?}"), format!("{m:?}"));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                serde_json::to_string(&m).unwrap()
            );
        }
        for n in names.iter().chain(&["feedback", "handshake", "nope"]) {
            assert_eq!(c.get(n), m.get(*n), "{n}");
        }
        assert_eq!(c.get("ack"), Some(&3));
        assert_eq!(c.get("register"), None);
    }
}
