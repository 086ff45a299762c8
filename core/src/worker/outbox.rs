//! The in-memory view of the durable outbox: terminal and package-event frames persisted
//! before sending and forgotten only when acked. The host mirrors it on disk.

use super::io::{Action, OutFrame, OutboxEntry};
use super::reliability::Class;
use super::Worker;
use crate::id_map::IdMap;
use crate::v1::types::FrameType;
use crate::work::TaskKey;
use std::collections::BTreeMap;

/// What the model keeps of an entry: what a replay sends (the task is only on disk).
#[derive(Debug)]
pub(super) struct Stored {
    pub id: String,
    pub kind: FrameType,
    pub frame: String,
}

#[derive(Debug, Default)]
pub(super) struct OutboxModel {
    /// In write order.
    entries: BTreeMap<u64, Stored>,
    /// Envelope id → write number; only looked up, never iterated.
    by_id: IdMap<u64>,
    next: u64,
}

impl OutboxModel {
    pub fn insert(&mut self, entry: Stored) {
        if let Some(old) = self.by_id.remove(&entry.id) {
            self.entries.remove(&old);
        }
        self.next += 1;
        self.by_id.insert(entry.id.clone(), self.next);
        self.entries.insert(self.next, entry);
    }

    pub fn remove(&mut self, id: &str) -> bool {
        match self.by_id.remove(id) {
            Some(n) => self.entries.remove(&n).is_some(),
            None => false,
        }
    }

    /// The text of the entry with this envelope id.
    pub fn text(&self, id: &str) -> Option<&str> {
        let n = self.by_id.get(id)?;
        self.entries.get(n).map(|e| e.frame.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// In write order.
    pub fn iter(&self) -> impl Iterator<Item = &Stored> {
        self.entries.values()
    }
}

impl Worker {
    /// Persists a frame that must reach the scheduler, then sends it if registered; otherwise
    /// it goes out on the next registration.
    pub(super) fn emit_durable(&mut self, frame: OutFrame, task: Option<TaskKey>) {
        let text = frame.text().to_string();
        self.push(Action::Persist(OutboxEntry {
            id: frame.id.clone(),
            kind: frame.kind,
            task,
            frame: text.clone(),
        }));
        self.outbox.insert(Stored {
            id: frame.id.clone(),
            kind: frame.kind,
            frame: text,
        });
        if self.is_registered() {
            self.send_tracked(frame, Class::Outbox);
        }
    }

    /// Drops an outbox entry replaced by a newer copy of the same terminal frame: no longer
    /// retried, forgotten on disk, and its ack (if one still comes) settles nothing.
    pub(super) fn supersede_outbox_entry(&mut self, id: &str) {
        self.rel.forget(id);
        if self.outbox.remove(id) {
            self.push(Action::Forget { id: id.to_string() });
        }
    }

    pub(super) fn on_restore(&mut self, entries: Vec<OutboxEntry>) {
        for e in entries {
            if let Some(task) = &e.task {
                // A crash between persisting a re-send and forgetting the copy it superseded
                // leaves both on disk: keep the newer (later in write order) only.
                if let Some(older) = self.finished.outbox_id(task) {
                    if older != e.id {
                        self.supersede_outbox_entry(&older);
                    }
                }
                self.finished
                    .remember(task.clone(), e.kind, e.frame.clone(), e.id.clone());
            }
            self.outbox.insert(Stored {
                id: e.id,
                kind: e.kind,
                frame: e.frame,
            });
        }
        if self.is_registered() {
            self.replay_outbox();
        }
    }
}
