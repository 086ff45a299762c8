//! The binary's global allocator: per-thread free lists of small blocks in front of
//! mimalloc (`fast_alloc`).
//!
//! A simulated event makes ~20 allocations, nearly all small and short-lived (strings of a
//! decoded frame, map nodes, action payloads), and mimalloc's `mi_malloc` + `mi_free` cost
//! about 50 instructions a pair here (8 % of the run, callgrind, BENCHMARKS.md §4). A block
//! of at most [`MAX_SMALL`] bytes with an alignment of at most 16 is instead popped from
//! (and pushed back onto) an intrusive free list of its 16-byte size class, kept per thread;
//! lists are refilled from 64 KiB chunks that mimalloc provides and that are never returned.
//! The simulator runs one seed per thread at a time and reuses the same blocks seed after
//! seed, so the memory held is the peak of live small blocks per class; it is freed at exit.
//!
//! Which side owns a block follows from its layout alone, and `GlobalAlloc` passes the same
//! layout to `dealloc` as to `alloc` (or the last `realloc`): a small, at most 16-aligned
//! layout always lives in a size class, anything else always in mimalloc. A block freed on
//! another thread than the one that allocated it joins that thread's list, which is sound:
//! all chunks stay allocated for the life of the process.

use crate::fast_alloc::FastMiMalloc;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::ptr;

/// The largest block served from a size class.
pub const MAX_SMALL: usize = 1024;
const GRAIN: usize = 16;
const CLASSES: usize = MAX_SMALL / GRAIN;
const CHUNK: usize = 64 * 1024;

pub struct SmallBlocks;

/// One thread's lists: the head of each class's free list (each free block's first word
/// points to the next) and the unused rest of its current chunk.
struct Lists {
    free: [Cell<*mut u8>; CLASSES],
    bump: Cell<*mut u8>,
    end: Cell<*mut u8>,
}

thread_local! {
    // `const` and without `Drop`: no lazy initialisation (which could allocate) and no
    // destructor, so it is usable at any point of a thread's life.
    static LISTS: Lists = const {
        Lists {
            free: [const { Cell::new(ptr::null_mut()) }; CLASSES],
            bump: Cell::new(ptr::null_mut()),
            end: Cell::new(ptr::null_mut()),
        }
    };
}

/// The size class of a small layout, if it is one.
#[inline]
fn class(layout: Layout) -> Option<usize> {
    (layout.size() <= MAX_SMALL && layout.align() <= GRAIN)
        .then(|| layout.size().max(1).div_ceil(GRAIN) - 1)
}

#[inline]
fn block_size(class: usize) -> usize {
    (class + 1) * GRAIN
}

impl SmallBlocks {
    /// A block of `class`, or null when mimalloc has no memory for a new chunk.
    #[inline]
    unsafe fn take(&self, class: usize) -> *mut u8 {
        let got = LISTS.try_with(|l| {
            let head = l.free[class].get();
            if !head.is_null() {
                // SAFETY: a free block's first word holds the next free block (or null).
                l.free[class].set(unsafe { head.cast::<*mut u8>().read() });
                return head;
            }
            unsafe { carve(l, block_size(class)) }
        });
        match got {
            Ok(p) => p,
            // Thread-local storage is never unavailable for a `const` key without a
            // destructor; if it were, a mimalloc block of the class's full size is just as
            // good a member of the class.
            Err(_) => unsafe { FastMiMalloc.alloc(block(class)) },
        }
    }

    #[inline]
    unsafe fn give(&self, p: *mut u8, class: usize) {
        let kept = LISTS.try_with(|l| {
            // SAFETY: the block is at least 16 bytes and 16-aligned, and no longer in use.
            unsafe { p.cast::<*mut u8>().write(l.free[class].get()) };
            l.free[class].set(p);
        });
        // See `take`: unreachable in practice; leaking one block is the safe answer.
        let _ = kept;
    }
}

/// The layout of a whole block of `class`.
#[inline]
fn block(class: usize) -> Layout {
    // A multiple of 16 no larger than `MAX_SMALL`, aligned to 16: always a valid layout.
    Layout::from_size_align(block_size(class), GRAIN).unwrap_or(Layout::new::<[u128; 1]>())
}

/// `size` bytes from the current chunk, opening a new chunk when it is used up.
#[cold]
#[inline(never)]
unsafe fn carve(l: &Lists, size: usize) -> *mut u8 {
    let (bump, end) = (l.bump.get(), l.end.get());
    if (end as usize) - (bump as usize) < size {
        // The chunk's leftover (less than one block) is abandoned.
        let layout = Layout::from_size_align(CHUNK, GRAIN).unwrap_or(Layout::new::<u128>());
        let c = unsafe { FastMiMalloc.alloc(layout) };
        if c.is_null() {
            return c;
        }
        l.bump.set(unsafe { c.add(size) });
        l.end.set(unsafe { c.add(CHUNK) });
        return c;
    }
    l.bump.set(unsafe { bump.add(size) });
    bump
}

// SAFETY: small blocks are disjoint 16-aligned pieces of chunks that are never freed, each
// handed out once until it is given back; every other layout goes to mimalloc (through
// `FastMiMalloc`, whose own contract holds) and back to it, as `class` decides from the
// layout the caller passes, identical at allocation and deallocation.
unsafe impl GlobalAlloc for SmallBlocks {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match class(layout) {
            Some(c) => unsafe { self.take(c) },
            None => unsafe { FastMiMalloc.alloc(layout) },
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match class(layout) {
            Some(c) => {
                let p = unsafe { self.take(c) };
                if !p.is_null() {
                    unsafe { p.write_bytes(0, layout.size()) };
                }
                p
            }
            None => unsafe { FastMiMalloc.alloc_zeroed(layout) },
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match class(layout) {
            Some(c) => unsafe { self.give(ptr, c) },
            None => unsafe { FastMiMalloc.dealloc(ptr, layout) },
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `GlobalAlloc::realloc`'s contract makes this a valid layout.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new)) {
            (None, None) => unsafe { FastMiMalloc.realloc(ptr, layout, new_size) },
            (Some(a), Some(b)) if a == b => ptr,
            _ => {
                let q = unsafe { self.alloc(new) };
                if !q.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                q
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size up to past the small limit and every alignment up to 64: aligned, usable,
    /// contents kept across `realloc` in every direction (class to class, class to
    /// mimalloc and back), zeroed when asked, and freed blocks come back for reuse.
    #[test]
    fn blocks_are_aligned_kept_and_reused() {
        let a = SmallBlocks;
        for size in (1..=MAX_SMALL + 40).step_by(7) {
            for align in [1usize, 2, 4, 8, 16, 32, 64] {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    for i in 0..size {
                        *p.add(i) = i as u8;
                    }
                    let mut cur = (p, layout);
                    for new_size in [size * 3, size + 1, size.div_ceil(2).max(1), size] {
                        let q = a.realloc(cur.0, cur.1, new_size);
                        assert!(!q.is_null());
                        assert_eq!(q as usize % align, 0, "realloc {size}->{new_size}");
                        let kept = cur.1.size().min(new_size);
                        for i in 0..kept.min(size) {
                            assert_eq!(*q.add(i), i as u8, "{size}->{new_size} byte {i}");
                        }
                        cur = (q, Layout::from_size_align(new_size, align).unwrap());
                    }
                    a.dealloc(cur.0, cur.1);
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
        // The last block freed in a class is the next one handed out.
        let l = Layout::from_size_align(40, 8).unwrap();
        unsafe {
            let p = a.alloc(l);
            a.dealloc(p, l);
            assert_eq!(a.alloc(l), p);
            a.dealloc(p, l);
        }
    }

    /// Live blocks never overlap, across many classes and chunk refills.
    #[test]
    fn live_blocks_are_disjoint() {
        let a = SmallBlocks;
        let mut live = Vec::new();
        for i in 0..20_000usize {
            let size = 1 + (i * 37) % MAX_SMALL;
            let l = Layout::from_size_align(size, 8).unwrap();
            let p = unsafe { a.alloc(l) };
            unsafe { p.write_bytes((i % 251) as u8, size) };
            live.push((p, l, (i % 251) as u8));
            if i % 3 == 0 {
                let (p, l, _) = live.swap_remove(i % live.len());
                unsafe { a.dealloc(p, l) };
            }
        }
        for &(p, l, v) in &live {
            assert!((0..l.size()).all(|i| unsafe { *p.add(i) } == v));
        }
        let mut spans: Vec<(usize, usize)> = live
            .iter()
            .map(|&(p, l, _)| (p as usize, p as usize + l.size()))
            .collect();
        spans.sort();
        assert!(spans.windows(2).all(|w| w[0].1 <= w[1].0));
        for (p, l, _) in live {
            unsafe { a.dealloc(p, l) };
        }
    }
}
