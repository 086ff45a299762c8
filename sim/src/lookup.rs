//! Hash maps for the simulator's bookkeeping that is only ever looked up, or iterated only
//! into a list that is sorted before it reaches an output (the trace, the log hash, a
//! violation's text).
//!
//! Task keys and frame ids are strings: a `BTreeMap` lookup compares the key with several
//! stored keys per node (a `memcmp` call each), and those calls were ~8 % of the simulator's
//! time. One hash of the key and one comparison cost less. The hasher has a fixed seed, so
//! a run does the same work every time; the maps' iteration order is never used, so a
//! platform whose hash values differ still replays every seed bit for bit.

use foldhash::fast::FixedState;

pub type LookupMap<K, V> = std::collections::HashMap<K, V, FixedState>;
pub type LookupSet<K> = std::collections::HashSet<K, FixedState>;

/// Room for the tasks of one worker process (a seed runs a few dozen per worker), so the
/// checker's maps rarely rehash while they grow (rehashing was ~1 % of a run).
pub const TASKS_PER_PROCESS: usize = 32;

pub fn map_with_room<K, V>(n: usize) -> LookupMap<K, V> {
    LookupMap::with_capacity_and_hasher(n, FixedState::default())
}
