//! The binary's global allocator: mimalloc (v2), called through its plain entry points.
//!
//! The `mimalloc` crate's `MiMalloc` passes every request to `mi_malloc_aligned` /
//! `mi_realloc_aligned`, whose checks cost about 40 instructions a call on this workload
//! (callgrind, BENCHMARKS.md §4), at ~25 allocations per simulated event. mimalloc aligns
//! every block naturally up to 16 bytes (`mi_malloc_is_naturally_aligned` in its
//! `alloc-aligned.c`: an alignment no larger than the size and than `MI_MAX_ALIGN_SIZE`), so
//! such requests go to `mi_malloc` / `mi_realloc`; anything else keeps the aligned calls.
//! Frees are `mi_free` either way.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use libmimalloc_sys as ffi;

/// `MI_MAX_ALIGN_SIZE` on the 64-bit targets this runs on.
const NATURAL_ALIGN: usize = 16;

pub struct FastMiMalloc;

#[inline]
fn natural(align: usize, size: usize) -> bool {
    align <= NATURAL_ALIGN && align <= size
}

// SAFETY: every pointer handed out comes from mimalloc and is freed by `mi_free`, which
// accepts blocks from both the plain and the aligned entry points; the plain entry points
// are used only where mimalloc guarantees the requested alignment (see the module comment).
unsafe impl GlobalAlloc for FastMiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if natural(layout.align(), layout.size()) {
            ffi::mi_malloc(layout.size()) as *mut u8
        } else {
            ffi::mi_malloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if natural(layout.align(), layout.size()) {
            ffi::mi_zalloc(layout.size()) as *mut u8
        } else {
            ffi::mi_zalloc_aligned(layout.size(), layout.align()) as *mut u8
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        ffi::mi_free(ptr as *mut c_void);
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if natural(layout.align(), new_size) {
            ffi::mi_realloc(ptr as *mut c_void, new_size) as *mut u8
        } else {
            ffi::mi_realloc_aligned(ptr as *mut c_void, new_size, layout.align()) as *mut u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size class and alignment up to 64 comes back aligned and usable.
    #[test]
    fn blocks_are_aligned() {
        let a = FastMiMalloc;
        for size in 1..=300usize {
            for align in [1usize, 2, 4, 8, 16, 32, 64] {
                let layout = Layout::from_size_align(size, align).unwrap();
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    p.write_bytes(0xAB, size);
                    let q = a.realloc(p, layout, size * 3);
                    assert_eq!(q as usize % align, 0, "realloc size {size} align {align}");
                    assert_eq!(*q.add(size - 1), 0xAB);
                    a.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
