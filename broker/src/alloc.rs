//! [`GuardedAllocator`]: the process's allocator, made safe against one hostile number.
//!
//! The `kafka-protocol` decoders size a `Vec` from the element count a request announces
//! before reading any element, so ten bytes announcing 2^31 topics ask for a 150 GB
//! allocation; the system allocator refuses and Rust aborts the whole process. This
//! allocator serves requests above [`HUGE`] with an `mmap` that reserves address space
//! only (`MAP_NORESERVE`): the decoder then fails on the request's missing bytes having
//! touched a few pages, the mapping is returned, and the broker answers the next client.
//! Everything else goes to the system allocator unchanged.

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations at least this large are served lazily by `mmap`.
pub const HUGE: usize = 1 << 30;

/// The system allocator, with huge allocations reserved lazily instead of refused.
#[derive(Debug, Default)]
pub struct GuardedAllocator;

#[cfg(test)]
thread_local! {
    static HUGE_ON_THIS_THREAD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many huge allocations this thread has made: tests of hostile input check that
/// decoding it reserved nothing it only announced.
#[cfg(test)]
pub(crate) fn huge_allocations_on_this_thread() -> usize {
    HUGE_ON_THIS_THREAD.with(|n| n.get())
}

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= 4096
}

// SAFETY: small allocations are the system allocator's; huge ones are page-aligned private
// anonymous mappings of exactly `layout.size()` bytes, unmapped with the same size.
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !is_huge(&layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.alloc(layout) };
        }
        #[cfg(test)]
        HUGE_ON_THIS_THREAD.with(|n| n.set(n.get() + 1));
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            ptr.cast()
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            // SAFETY: `ptr` came from `alloc` above with this same size.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // SAFETY: anonymous mappings are zero-filled.
            unsafe { self.alloc(layout) }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = match Layout::from_size_align(new_size, layout.align()) {
            Ok(l) => l,
            Err(_) => return std::ptr::null_mut(),
        };
        if !is_huge(&layout) && !is_huge(&new_layout) {
            // SAFETY: both sides are the system allocator's.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: a new block from `alloc`, the old contents copied, the old block freed by
        // the side that allocated it.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}
