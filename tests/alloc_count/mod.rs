//! An allocator that counts the blocks made (or reallocated to), all of
//! them and those of [`LARGE`] bytes or more, and the bytes held, for the
//! test binaries that check a path makes no block, no large buffer, or
//! holds no more than it should. Declare it (`mod alloc_count;`) in a binary that holds one
//! test, so no other test thread allocates meanwhile, and install
//! [`Counting`] as its `#[global_allocator]`. Not in `common`, which every
//! test binary includes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Allocations (and reallocations to) this size or more are counted.
pub const LARGE: usize = 1024;

static LARGE_ALLOCS: AtomicUsize = AtomicUsize::new(0);
static ALL_ALLOCS: AtomicUsize = AtomicUsize::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

/// How many large blocks were made so far.
#[allow(dead_code)] // Not every binary that includes this module counts these.
pub fn large_allocs() -> usize {
    LARGE_ALLOCS.load(Ordering::Relaxed)
}

/// How many blocks of any size were made so far.
#[allow(dead_code)] // Not every binary that includes this module counts these.
pub fn all_allocs() -> usize {
    ALL_ALLOCS.load(Ordering::Relaxed)
}

/// Bytes in blocks made and not yet freed, as asked for (not the
/// allocator's rounding).
#[allow(dead_code)] // Not every binary that includes this module counts these.
pub fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Passes every call to the system allocator, counting large blocks.
pub struct Counting;

fn count(size: usize) {
    LIVE_BYTES.fetch_add(size, Ordering::Relaxed);
    ALL_ALLOCS.fetch_add(1, Ordering::Relaxed);
    if size >= LARGE {
        LARGE_ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call goes to the system allocator unchanged; the counter
// is an atomic and allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: as allocated above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as allocated above, with the caller's new size.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if moved.is_null() {
            // The old block is still held.
            LIVE_BYTES.fetch_sub(new_size, Ordering::Relaxed);
        } else {
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        moved
    }
}
