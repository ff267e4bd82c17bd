//! [`FdCache`]: a budget of open segment files shared by every partition log of a data
//! directory, so that thousands of idle partitions do not each hold a descriptor.
//!
//! A [`SegmentFile`](super::segment::SegmentFile) keeps its open file in a [`Slot`] and
//! reopens it by path when the cache closed it. Opening a file past the budget first
//! closes the least recently used one that is neither *dirty* (written since its last
//! fsync: closing it would lose a writeback error the next fsync must report) nor
//! *pinned* (a segment that compaction replaced or retention deleted: its path no longer
//! leads to it, so it stays open for the readers still holding it until they let go).
//! The budget is therefore soft: it is exceeded only by dirty and pinned files and by
//! reads in progress on a file just closed (each read holds its own reference). A reopened
//! file must be the same inode as before, which also catches a segment replaced by hand.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

/// Descriptors the cache keeps at most when the process limit is unknown.
const DEFAULT_BUDGET: usize = 512;

/// The shared budget of open segment files (see the module doc).
#[derive(Debug)]
pub struct FdCache {
    budget: AtomicUsize,
    open: AtomicUsize,
    clock: AtomicU64,
    next_id: AtomicU64,
    slots: Mutex<HashMap<u64, Weak<Slot>>>,
}

/// One segment file's place in the cache.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    file: Mutex<Option<Arc<File>>>,
    last_use: AtomicU64,
    pub(crate) dirty: AtomicBool,
    pub(crate) pinned: AtomicBool,
}

impl Default for FdCache {
    fn default() -> Self {
        FdCache::new(default_budget())
    }
}

impl FdCache {
    /// A cache keeping at most `budget` segment files open (at least one).
    pub fn new(budget: usize) -> FdCache {
        FdCache {
            budget: AtomicUsize::new(budget.max(1)),
            open: AtomicUsize::new(0),
            clock: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Changes the budget; takes effect at the next open.
    pub fn set_budget(&self, budget: usize) {
        self.budget.store(budget.max(1), Ordering::Relaxed);
    }

    /// Segment files open now.
    pub fn open_files(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// A new slot, holding `file` if given.
    pub(crate) fn register(&self, file: Option<File>) -> (u64, Arc<Slot>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::default());
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::downgrade(&slot));
        if let Some(file) = file {
            self.fill(&slot, file);
        }
        (id, slot)
    }

    /// The slot's open file, if the cache has not closed it.
    pub(crate) fn get(&self, slot: &Slot) -> Option<Arc<File>> {
        let file = slot
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if file.is_some() {
            slot.last_use.store(
                self.clock.fetch_add(1, Ordering::Relaxed),
                Ordering::Relaxed,
            );
        }
        file
    }

    /// Puts a freshly opened file in the slot (closing others past the budget); returns
    /// the slot's file, which is another thread's if it got there first.
    pub(crate) fn fill(&self, slot: &Slot, file: File) -> Arc<File> {
        self.make_room();
        let mut held = slot.file.lock().unwrap_or_else(PoisonError::into_inner);
        slot.last_use.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
        if let Some(existing) = &*held {
            return Arc::clone(existing);
        }
        let file = Arc::new(file);
        *held = Some(Arc::clone(&file));
        self.open.fetch_add(1, Ordering::Relaxed);
        file
    }

    /// Forgets a slot whose segment file is dropped, closing its file.
    pub(crate) fn release(&self, id: u64, slot: &Slot) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        if slot
            .file
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .is_some()
        {
            self.open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Closes least recently used files until one more fits in the budget, skipping dirty,
    /// pinned and busy ones.
    fn make_room(&self) {
        let budget = self.budget.load(Ordering::Relaxed);
        if self.open.load(Ordering::Relaxed) < budget {
            return;
        }
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        while self.open.load(Ordering::Relaxed) >= budget {
            let mut oldest: Option<(u64, Arc<Slot>)> = None;
            for weak in slots.values() {
                let Some(slot) = weak.upgrade() else { continue };
                if slot.dirty.load(Ordering::Acquire) || slot.pinned.load(Ordering::Acquire) {
                    continue;
                }
                let open = slot.file.try_lock().is_ok_and(|f| f.is_some());
                let used = slot.last_use.load(Ordering::Relaxed);
                if open && oldest.as_ref().is_none_or(|(u, _)| used < *u) {
                    oldest = Some((used, slot));
                }
            }
            let Some((_, slot)) = oldest else {
                break;
            };
            let closed = match slot.file.try_lock() {
                Ok(mut f) if !slot.dirty.load(Ordering::Acquire) => f.take(),
                _ => None,
            };
            if closed.is_some() {
                self.open.fetch_sub(1, Ordering::Relaxed);
            }
            // A slot that became dirty or busy meanwhile is skipped at the next round
            // only if it is no longer the oldest; give up rather than spin on it.
            if closed.is_none() {
                break;
            }
        }
        slots.retain(|_, w| w.strong_count() > 0);
    }
}

/// Half the process's descriptor limit (the other half is for connections and the rest),
/// within sane bounds.
fn default_budget() -> usize {
    // SAFETY: getrlimit writes into the struct we own.
    let soft = unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return DEFAULT_BUDGET;
        }
        limit.rlim_cur
    };
    if soft == libc::RLIM_INFINITY {
        return 8192;
    }
    ((soft / 2) as usize).clamp(16, 8192)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_budget_the_least_recently_used_clean_file_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FdCache::new(2);
        let open = |n: &str| File::create(dir.path().join(n)).unwrap();
        let (_, a) = cache.register(Some(open("a")));
        let (_, b) = cache.register(Some(open("b")));
        a.dirty.store(true, Ordering::Release);
        assert!(cache.get(&b).is_some());
        let (_, c) = cache.register(Some(open("c")));
        assert_eq!(cache.open_files(), 2);
        assert!(cache.get(&a).is_some(), "dirty: kept");
        assert!(cache.get(&b).is_none(), "closed");
        assert!(cache.get(&c).is_some());
        // Everything dirty or pinned: the budget gives.
        c.pinned.store(true, Ordering::Release);
        let (_, d) = cache.register(Some(open("d")));
        assert_eq!(cache.open_files(), 3);
        assert!(cache.get(&d).is_some());
    }
}
