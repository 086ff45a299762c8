//! Frames counted by type (the worker's `Stats::frames_sent` / `frames_received`, the
//! scheduler's `SchedStats::frames_received`): the protocol's types in an array indexed by [`FrameType`], any other type string in an
//! ordered map. Counting every frame through a `BTreeMap<String, u64>` (a string search
//! and compare per frame) showed in the simulator's profile. It reads as that map did:
//! `(name, count)` in name order, and `Debug` / `Serialize` print exactly what the map
//! printed.

use crate::v1::types::FrameType;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::collections::BTreeMap;

/// Counts of frames by type name.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FrameCounts {
    /// By `FrameType as usize`; `None` for a type never counted (absent from the old map).
    known: [Option<u64>; FrameType::ALL.len()],
    /// Type strings that name no [`FrameType`].
    other: BTreeMap<String, u64>,
}

/// The known types in the byte order of their names (the order a map of names has);
/// `known_names_are_in_name_order` checks it is sorted and complete.
const BY_NAME: [FrameType; FrameType::ALL.len()] = [
    FrameType::Ack,
    FrameType::Dispatch,
    FrameType::CommandError,
    FrameType::Feedback,
    FrameType::Handshake,
    FrameType::Heartbeat,
    FrameType::PkgEvent,
    FrameType::PkgInstall,
    FrameType::PkgUninstall,
    FrameType::Register,
    FrameType::Result,
];

impl FrameCounts {
    /// One more frame of type `kind`.
    #[inline]
    pub fn bump(&mut self, kind: FrameType) {
        *self.known[kind as usize].get_or_insert(0) += 1;
    }

    /// One more frame whose type is the string `name` (known or not).
    pub fn bump_name(&mut self, name: &str) {
        match FrameType::parse(name) {
            Some(kind) => self.bump(kind),
            None => match self.other.get_mut(name) {
                Some(n) => *n += 1,
                None => {
                    self.other.insert(name.to_string(), 1);
                }
            },
        }
    }

    /// The count of `name`, `None` if never counted (as the map's `get`).
    pub fn get(&self, name: &str) -> Option<u64> {
        match FrameType::parse(name) {
            Some(kind) => self.known[kind as usize],
            None => self.other.get(name).copied(),
        }
    }

    /// Sets the count of `name`, returning the previous one (as the map's `insert`).
    pub fn insert(&mut self, name: String, count: u64) -> Option<u64> {
        match FrameType::parse(&name) {
            Some(kind) => self.known[kind as usize].replace(count),
            None => self.other.insert(name, count),
        }
    }

    /// `(name, count)` of every type counted, in name order (the map's iteration order).
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            known: &self.known,
            next_known: 0,
            other: self.other.iter().peekable(),
        }
    }

    /// How many type names have a count (as the map's `len`).
    pub fn len(&self) -> usize {
        self.known.iter().filter(|c| c.is_some()).count() + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.iter().all(Option::is_none) && self.other.is_empty()
    }
}

/// [`FrameCounts::iter`]: the known types (in name order) merged with the other names.
pub struct Iter<'a> {
    known: &'a [Option<u64>; FrameType::ALL.len()],
    /// Index into [`BY_NAME`].
    next_known: usize,
    other: std::iter::Peekable<std::collections::btree_map::Iter<'a, String, u64>>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, u64);

    fn next(&mut self) -> Option<Self::Item> {
        // The next known type that was counted.
        let known = loop {
            match BY_NAME.get(self.next_known) {
                None => break None,
                Some(&kind) => match self.known[kind as usize] {
                    Some(n) => break Some((kind.as_str(), n)),
                    None => self.next_known += 1,
                },
            }
        };
        match (known, self.other.peek()) {
            (Some(k), Some((name, _))) if name.as_str() < k.0 => {
                self.other.next().map(|(name, n)| (name.as_str(), *n))
            }
            (Some(k), _) => {
                self.next_known += 1;
                Some(k)
            }
            (None, _) => self.other.next().map(|(name, n)| (name.as_str(), *n)),
        }
    }
}

impl<'a> IntoIterator for &'a FrameCounts {
    type Item = (&'a str, u64);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// As `BTreeMap<String, u64>` prints: `{"ack": 3, "result": 1}`.
impl std::fmt::Debug for FrameCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// As `BTreeMap<String, u64>` serialises: a map in name order.
impl Serialize for FrameCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.iter().count()))?;
        for (name, n) in self {
            m.serialize_entry(name, &n)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sequence of names counted both ways: the map it replaced is the oracle for
    /// iteration order, `get`, `Debug` and the serialised form.
    #[test]
    fn reads_as_the_map_it_replaced() {
        let mut names: Vec<String> = FrameType::ALL
            .iter()
            .map(|t| t.as_str().to_string())
            .collect();
        // Unknown names before, between and after the known ones, and near misses.
        for n in [
            "",
            "a",
            "ack ",
            "acj",
            "b",
            "cmd",
            "cmd.dispatch2",
            "command",
            "z",
            "Ack",
            "pkg.",
            "pkg.zzz",
            "result.",
            "resulu",
            "é",
        ] {
            names.push(n.to_string());
        }
        let mut r = crate::rng::Rng::new(4);
        for round in 0..200 {
            let mut counts = FrameCounts::default();
            let mut map: BTreeMap<String, u64> = BTreeMap::new();
            for _ in 0..r.below(40) {
                let name = &names[r.below(names.len() as u64) as usize];
                if r.chance(0.5) {
                    if let Some(t) = FrameType::parse(name) {
                        counts.bump(t);
                    } else {
                        counts.bump_name(name);
                    }
                } else {
                    counts.bump_name(name);
                }
                *map.entry(name.clone()).or_insert(0) += 1;
            }
            if round % 7 == 0 {
                let name = &names[r.below(names.len() as u64) as usize];
                assert_eq!(
                    counts.insert(name.clone(), round),
                    map.insert(name.clone(), round)
                );
            }
            let got: Vec<(&str, u64)> = counts.iter().collect();
            let want: Vec<(&str, u64)> = map.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            assert_eq!(got, want);
            for name in &names {
                assert_eq!(counts.get(name), map.get(name).copied(), "{name:?}");
            }
            assert_eq!(format!("{counts:?}"), format!("{map:?}"));
            assert_eq!(
                serde_json::to_string(&counts).unwrap(),
                serde_json::to_string(&map).unwrap()
            );
            assert_eq!(counts.is_empty(), map.is_empty());
            assert_eq!(counts.len(), map.len());
        }
    }

    #[test]
    fn known_names_are_in_name_order() {
        for w in BY_NAME.windows(2) {
            assert!(w[0].as_str() < w[1].as_str(), "{w:?}");
        }
        for t in FrameType::ALL {
            assert!(BY_NAME.contains(&t), "{t:?}");
        }
    }
}
