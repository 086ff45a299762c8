//! The in-memory view of the durable outbox: terminal and package-event frames persisted
//! before sending and forgotten only when acked. The host mirrors it on disk.

use super::io::{Action, OutFrame, OutboxEntry};
use super::reliability::Class;
use super::Worker;
use crate::id_map::IdMap;
use crate::v1::types::FrameType;
use crate::work::TaskKey;
use std::collections::VecDeque;
use std::sync::Arc;

/// What the model keeps of an entry: what a replay sends (the task is only on disk).
#[derive(Debug)]
pub(super) struct Stored {
    pub id: String,
    pub kind: FrameType,
    /// Shared with the finished-task cache's copy of a terminal frame (one text, not two).
    pub frame: Arc<str>,
}

/// Entries in write order. Each gets the next write number; slot `n - first` of `slots`
/// holds entry `n` (`None` once removed), so insert, lookup and remove are index steps, not
/// tree searches; leading holes are popped, and the holes behind a long-lived first entry are
/// squeezed out once they outnumber the live entries.
#[derive(Debug, Default)]
pub(super) struct OutboxModel {
    slots: VecDeque<Option<Stored>>,
    /// The write number of `slots[0]`.
    first: u64,
    live: usize,
    /// Envelope id → write number; only looked up, never iterated.
    by_id: IdMap<u64>,
}

impl OutboxModel {
    pub fn insert(&mut self, entry: Stored) {
        if let Some(old) = self.by_id.remove(&entry.id) {
            self.take(old);
        }
        let n = self.first + self.slots.len() as u64;
        self.by_id.insert(entry.id.clone(), n);
        self.slots.push_back(Some(entry));
        self.live += 1;
    }

    /// Removes the entry with this envelope id and returns its id (the caller's `Forget`).
    pub fn remove(&mut self, id: &str) -> Option<String> {
        let n = self.by_id.remove(id)?;
        self.take(n).map(|e| e.id)
    }

    fn take(&mut self, n: u64) -> Option<Stored> {
        let i = usize::try_from(n.checked_sub(self.first)?).ok()?;
        let e = self.slots.get_mut(i)?.take()?;
        self.live -= 1;
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.first += 1;
        }
        if self.slots.len() > 64 && self.slots.len() > 4 * self.live {
            self.compact();
        }
        Some(e)
    }

    /// Drops the holes and renumbers the live entries (write order kept).
    fn compact(&mut self) {
        let live: VecDeque<Option<Stored>> = self.slots.drain(..).filter(Option::is_some).collect();
        self.slots = live;
        for (i, e) in self.slots.iter().flatten().enumerate() {
            if let Some(n) = self.by_id.get_mut(&e.id) {
                *n = self.first + i as u64;
            }
        }
    }

    /// The text of the entry with this envelope id.
    pub fn text(&self, id: &str) -> Option<&str> {
        let n = *self.by_id.get(id)?;
        let i = usize::try_from(n.checked_sub(self.first)?).ok()?;
        self.slots.get(i)?.as_ref().map(|e| &*e.frame)
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// In write order.
    pub fn iter(&self) -> impl Iterator<Item = &Stored> {
        self.slots.iter().flatten()
    }
}

impl Worker {
    /// Persists a frame that must reach the scheduler, then sends it if registered; otherwise
    /// it goes out on the next registration.
    pub(super) fn emit_durable(&mut self, frame: OutFrame, task: Option<TaskKey>) {
        let text: Arc<str> = Arc::from(frame.text());
        self.emit_durable_shared(frame, task, text);
    }

    /// [`Self::emit_durable`] with the frame's text already shared (`text` is `frame`'s):
    /// the finished-task cache keeps the same text, so it is copied once for both.
    pub(super) fn emit_durable_shared(
        &mut self,
        frame: OutFrame,
        task: Option<TaskKey>,
        text: Arc<str>,
    ) {
        debug_assert_eq!(&*text, frame.text());
        self.push(Action::Persist(OutboxEntry {
            id: frame.id.clone(),
            kind: frame.kind,
            task,
            frame: frame.text().to_string(),
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
        if let Some(id) = self.outbox.remove(id) {
            self.push(Action::Forget { id });
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
            }
            let text: Arc<str> = Arc::from(e.frame);
            if let Some(task) = e.task {
                self.finished
                    .remember(task, e.kind, text.clone(), e.id.clone());
            }
            self.outbox.insert(Stored {
                id: e.id,
                kind: e.kind,
                frame: text,
            });
        }
        if self.is_registered() {
            self.replay_outbox();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(id: &str) -> Stored {
        Stored {
            id: id.into(),
            kind: FrameType::Result,
            frame: format!("text of {id}").into(),
        }
    }

    fn ids(m: &OutboxModel) -> Vec<&str> {
        m.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn keeps_write_order_through_removes_reinserts_and_compaction() {
        let mut m = OutboxModel::default();
        // A first entry that stays while many later ones come and go: the holes behind it
        // are squeezed out and lookups still find every live entry.
        m.insert(stored("keep"));
        for i in 0..500 {
            m.insert(stored(&format!("e{i}")));
            if i % 10 != 0 {
                assert_eq!(
                    m.remove(&format!("e{i}")).as_deref(),
                    Some(format!("e{i}").as_str())
                );
            }
        }
        assert!(
            m.slots.len() <= (4 * m.live).max(64) + 1,
            "holes squeezed out"
        );
        let live: Vec<String> = std::iter::once("keep".to_string())
            .chain((0..500).filter(|i| i % 10 == 0).map(|i| format!("e{i}")))
            .collect();
        assert_eq!(ids(&m), live);
        assert_eq!(m.len(), live.len());
        for id in &live {
            assert_eq!(m.text(id), Some(format!("text of {id}").as_str()));
        }
        assert_eq!(m.remove("e1"), None, "already removed");
        assert_eq!(m.text("e1"), None);
        // Re-inserting an id moves it to the end (newest), as the tree-backed model did.
        m.insert(stored("keep"));
        assert_eq!(ids(&m).last(), Some(&"keep"));
        assert_eq!(ids(&m).first(), Some(&"e0"));
        assert_eq!(m.len(), live.len());
        for id in &live {
            assert_eq!(m.remove(id).as_deref(), Some(id.as_str()));
        }
        assert!(m.is_empty());
        assert_eq!(m.slots.len(), 0, "no holes left once empty");
    }
}
