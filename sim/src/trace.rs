//! The failure trace: a ring of the last N events, one line each (VOPR style), kept as small
//! `Copy` records and formatted only when a run fails.

use crate::event::Rec;
use astra_core::Instant;
use std::collections::VecDeque;

pub struct Trace {
    cap: usize,
    ring: VecDeque<(u64, Instant, Rec)>,
    count: u64,
}

impl Trace {
    pub fn new(cap: usize) -> Self {
        Trace {
            cap,
            ring: VecDeque::with_capacity(cap.min(4096)),
            count: 0,
        }
    }

    pub fn push(&mut self, at: Instant, r: Rec) {
        self.count += 1;
        if self.cap == 0 {
            return;
        }
        if self.ring.len() == self.cap {
            self.ring.pop_front();
        }
        self.ring.push_back((self.count, at, r));
    }

    pub fn lines(&self) -> Vec<String> {
        self.ring
            .iter()
            .map(|(n, at, r)| format!("{n:>8} {at:>14?}  {r}"))
            .collect()
    }
}
