//! Local admission control: single-flight `concurrency_key`s, `max_parallel` and per-node-type
//! limits. Excess work waits in a FIFO queue (it was already acked, so the scheduler's 5 s
//! deadline is met); a different task holding the same key is a violation.

use super::task::{TaskKey, TaskSpec};
use crate::id_map::{FixedMap, IdMap};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionLimits {
    pub max_parallel: u32,
    /// node_type → maximum running at once.
    pub per_node: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Already admitted (queued or running): a duplicate of the same task.
    Duplicate,
    /// Another task holds this concurrency key.
    Violation { key: String, holder: TaskKey },
    /// Admitted and may start now.
    Start,
    /// Admitted and must wait for capacity.
    Queue,
}

#[derive(Debug, Clone)]
struct Held {
    /// The node type when it has a per-node limit (only those are counted).
    limited_type: Option<String>,
    concurrency_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Admission {
    limits: AdmissionLimits,
    /// Looked up by key; [`Admission::running_keys`] sorts the keys, so this map's order
    /// reaches no output.
    running: FixedMap<TaskKey, Held>,
    queued: VecDeque<TaskSpec>,
    /// Only looked up and counted, never iterated (see `id_map`).
    keys: IdMap<TaskKey>,
    /// Running tasks per node type that has a per-node limit (no other type is ever looked
    /// up); only looked up, never iterated.
    per_node_running: IdMap<u32>,
}

impl Admission {
    pub fn new(limits: AdmissionLimits) -> Self {
        Admission {
            limits,
            running: FixedMap::default(),
            queued: VecDeque::new(),
            keys: IdMap::default(),
            per_node_running: IdMap::default(),
        }
    }

    pub fn limits(&self) -> &AdmissionLimits {
        &self.limits
    }

    pub fn contains(&self, key: &TaskKey) -> bool {
        self.running.contains_key(key) || self.queued.iter().any(|s| &s.key == key)
    }

    pub fn is_running(&self, key: &TaskKey) -> bool {
        self.running.contains_key(key)
    }

    pub fn running_count(&self) -> usize {
        self.running.len()
    }

    pub fn queued_count(&self) -> usize {
        self.queued.len()
    }

    /// Tasks admitted and not finished (running + queued).
    pub fn in_flight(&self) -> usize {
        self.running.len() + self.queued.len()
    }

    /// The running tasks' keys in `TaskKey` order (what a `BTreeMap` of them iterated in).
    pub fn running_keys(&self) -> Vec<&TaskKey> {
        let mut keys: Vec<&TaskKey> = self.running.keys().collect();
        keys.sort_unstable();
        keys
    }

    /// Concurrency keys currently held (running or queued), as the Python guard counts them.
    pub fn held_keys(&self) -> usize {
        self.keys.len()
    }

    fn fits(&self, node_type: &str) -> bool {
        if self.running.len() >= self.limits.max_parallel.max(1) as usize {
            return false;
        }
        match self.limits.per_node.get(node_type) {
            Some(limit) => self.per_node_running.get(node_type).copied().unwrap_or(0) < *limit,
            None => true,
        }
    }

    /// Capacity is free and no earlier task of the same type waits (FIFO per node type; when
    /// `max_parallel` is exhausted nothing fits anyway).
    fn can_start_now(&self, node_type: &str) -> bool {
        self.fits(node_type) && !self.queued.iter().any(|q| q.node_type == node_type)
    }

    /// Decides what to do with a dispatched task without changing any state.
    pub fn check(&self, spec: &TaskSpec) -> Verdict {
        if self.contains(&spec.key) {
            return Verdict::Duplicate;
        }
        if let Some(k) = &spec.concurrency_key {
            if let Some(holder) = self.keys.get(k) {
                if holder != &spec.key {
                    return Verdict::Violation {
                        key: k.clone(),
                        holder: holder.clone(),
                    };
                }
            }
        }
        if self.can_start_now(&spec.node_type) {
            Verdict::Start
        } else {
            Verdict::Queue
        }
    }

    /// Admits a task. Returns it back if it may start now; otherwise it is queued. Callers
    /// must have checked that the verdict is `Start` or `Queue`.
    pub fn admit(&mut self, spec: TaskSpec) -> Option<TaskSpec> {
        if let Some(k) = &spec.concurrency_key {
            self.keys.insert(k.clone(), spec.key.clone());
        }
        if self.can_start_now(&spec.node_type) {
            self.mark_running(&spec);
            Some(spec)
        } else {
            self.queued.push_back(spec);
            None
        }
    }

    fn mark_running(&mut self, spec: &TaskSpec) {
        let limited = self.limits.per_node.contains_key(&spec.node_type);
        if limited {
            match self.per_node_running.get_mut(&spec.node_type) {
                Some(n) => *n += 1,
                None => {
                    self.per_node_running.insert(spec.node_type.clone(), 1);
                }
            }
        }
        self.running.insert(
            spec.key.clone(),
            Held {
                limited_type: limited.then(|| spec.node_type.clone()),
                concurrency_key: spec.concurrency_key.clone(),
            },
        );
    }

    /// Releases a finished task and returns the queued tasks that may start now, in FIFO order
    /// (a task blocked only by its per-node limit does not hold back others).
    pub fn finish(&mut self, key: &TaskKey) -> Vec<TaskSpec> {
        let Some(held) = self.running.remove(key) else {
            return Vec::new();
        };
        if let Some(t) = &held.limited_type {
            if let Some(n) = self.per_node_running.get_mut(t) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_node_running.remove(t);
                }
            }
        }
        if let Some(k) = held.concurrency_key {
            // One lookup for the check and the removal.
            if let Entry::Occupied(e) = self.keys.entry(k) {
                if e.get() == key {
                    e.remove();
                }
            }
        }
        self.start_ready()
    }

    fn start_ready(&mut self) -> Vec<TaskSpec> {
        let mut started = Vec::new();
        let mut i = 0;
        while i < self.queued.len() {
            if self.running.len() >= self.limits.max_parallel.max(1) as usize {
                break;
            }
            if self.fits(&self.queued[i].node_type) {
                if let Some(spec) = self.queued.remove(i) {
                    self.mark_running(&spec);
                    started.push(spec);
                }
            } else {
                i += 1;
            }
        }
        started
    }

    /// Removes every queued task (shutdown): they never started, so they release their keys.
    pub fn take_queued(&mut self) -> Vec<TaskSpec> {
        let q: Vec<TaskSpec> = self.queued.drain(..).collect();
        for s in &q {
            if let Some(k) = &s.concurrency_key {
                if self.keys.get(k) == Some(&s.key) {
                    self.keys.remove(k);
                }
            }
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn spec(task: &str, node_type: &str, key: Option<&str>) -> TaskSpec {
        TaskSpec {
            key: TaskKey {
                run_id: "r".into(),
                task_id: task.into(),
            },
            node_id: task.into(),
            node_type: node_type.into(),
            package_name: "p".into(),
            package_version: "1".into(),
            parameters: Map::new(),
            timeout: None,
            concurrency_key: key.map(str::to_string),
            metadata: Map::new(),
            tenant: "default".into(),
            seq: Some(1),
            dispatch_id: format!("d-{task}"),
        }
    }

    fn limits(max: u32, per: &[(&str, u32)]) -> AdmissionLimits {
        AdmissionLimits {
            max_parallel: max,
            per_node: per.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn max_parallel_queues_and_releases_fifo() {
        let mut a = Admission::new(limits(2, &[]));
        for t in ["a", "b", "c", "d"] {
            let s = spec(t, "x", Some(t));
            assert!(matches!(a.check(&s), Verdict::Start | Verdict::Queue));
            a.admit(s);
        }
        assert_eq!(a.running_count(), 2);
        assert_eq!(a.queued_count(), 2);
        let started = a.finish(&TaskKey {
            run_id: "r".into(),
            task_id: "a".into(),
        });
        assert_eq!(
            started
                .iter()
                .map(|s| s.key.task_id.as_str())
                .collect::<Vec<_>>(),
            ["c"]
        );
    }

    #[test]
    fn concurrency_key_is_single_flight_and_duplicates_are_recognised() {
        let mut a = Admission::new(limits(4, &[]));
        a.admit(spec("a", "x", Some("k")));
        assert_eq!(a.check(&spec("a", "x", Some("k"))), Verdict::Duplicate);
        assert!(matches!(
            a.check(&spec("b", "x", Some("k"))),
            Verdict::Violation { .. }
        ));
        a.finish(&TaskKey {
            run_id: "r".into(),
            task_id: "a".into(),
        });
        assert_eq!(a.check(&spec("b", "x", Some("k"))), Verdict::Start);
    }

    #[test]
    fn per_node_limit_does_not_block_other_types() {
        let mut a = Admission::new(limits(3, &[("slow", 1)]));
        assert!(a.admit(spec("a", "slow", None)).is_some());
        assert!(a.admit(spec("b", "slow", None)).is_none());
        assert!(
            a.admit(spec("c", "fast", None)).is_some(),
            "a free slot is not held back by another type"
        );
        let started = a.finish(&TaskKey {
            run_id: "r".into(),
            task_id: "a".into(),
        });
        let ids: Vec<_> = started.iter().map(|s| s.key.task_id.clone()).collect();
        assert_eq!(ids, ["b"]);
    }
}
