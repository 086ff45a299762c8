//! The event queue: a min-heap ordered by (virtual time, insertion sequence), so two events
//! at the same instant run in the order they were scheduled and every run replays exactly.

use astra_core::Instant;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// What the heap orders: small and `Copy`, so sifting moves 24 bytes instead of a whole
/// event (up to ~100 bytes); the event waits in `EventQueue::slots` meanwhile. `(at, seq)`
/// is unique per entry, so the pop order is exactly the same as a heap of whole events.
#[derive(Clone, Copy)]
struct Entry {
    at: Instant,
    seq: u64,
    slot: u32,
}

impl Entry {
    /// `(at, seq)` as one number, ordered as the pair is: one comparison per sift step
    /// instead of two with a branch between them.
    #[inline]
    fn key(&self) -> u128 {
        (u128::from(self.at.0) << 64) | u128::from(self.seq)
    }
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.key() == o.key()
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> Ordering {
        o.key().cmp(&self.key())
    }
}

pub struct EventQueue<E> {
    heap: BinaryHeap<Entry>,
    /// Events by slot; `None` for a free slot (listed in `free`).
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }
}

impl<E> EventQueue<E> {
    pub fn push(&mut self, at: Instant, ev: E) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(ev);
                slot
            }
            None => {
                self.slots.push(Some(ev));
                // More than 4 billion events pending at once would exhaust memory first.
                (self.slots.len() - 1) as u32
            }
        };
        self.heap.push(Entry { at, seq, slot });
    }
    pub fn pop(&mut self) -> Option<(Instant, E)> {
        loop {
            let e = self.heap.pop()?;
            // Every heap entry's slot holds its event until this pop takes it.
            if let Some(ev) = self.slots.get_mut(e.slot as usize).and_then(Option::take) {
                self.free.push(e.slot);
                return Some((e.at, ev));
            }
        }
    }
    pub fn peek_time(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }
    pub fn len(&self) -> usize {
        self.heap.len()
    }
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_time_then_insertion() {
        let mut q = EventQueue::default();
        q.push(Instant(5), "b");
        q.push(Instant(1), "a");
        q.push(Instant(5), "c");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).map(|(_, e)| e).collect();
        assert_eq!(order, vec!["a", "b", "c"]);
    }

    /// Interleaved pushes and pops (slots reused) give the order of a plain sort by
    /// (time, insertion), which is what the old heap of whole events gave.
    #[test]
    fn reused_slots_keep_the_time_then_insertion_order() {
        let mut rng = astra_core::rng::Rng::new(9);
        let mut q = EventQueue::default();
        let mut model: Vec<(u64, u64)> = Vec::new();
        let mut n = 0u64;
        for _ in 0..5_000 {
            if rng.below(3) < 2 {
                let at = rng.below(50);
                q.push(Instant(at), n);
                model.push((at, n));
                n += 1;
            } else {
                model.sort_unstable();
                let want = (!model.is_empty()).then(|| model.remove(0));
                let got = q.pop().map(|(at, ev)| (at.0, ev));
                assert_eq!(got, want);
            }
            assert_eq!(q.len(), model.len());
        }
    }
}
