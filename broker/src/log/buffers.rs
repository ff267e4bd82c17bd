//! Buffers for fetched batches and for produce requests' frames and batches, kept and
//! reused instead of allocated anew each time.
//!
//! A consumer's Fetch asks for up to `max.partition.fetch.bytes` (1 MiB by default) per
//! partition, and the stored batches go out in exactly the buffer they were read into. A
//! fresh 1 MiB allocation each time cost the broker a third of its CPU in a consumer
//! benchmark (page faults, zeroing fresh pages and unmapping them again after the response
//! was written); a pooled buffer is zeroed once and goes back to the pool when the last
//! `Bytes` of the response that carried it is dropped.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

/// Size of every pooled buffer: Kafka clients' default `max.partition.fetch.bytes`.
pub(crate) const POOLED_SIZE: usize = 1 << 20;
/// Reads smaller than this use a plain allocation, which the allocator serves cheaply.
pub(crate) const MIN_POOLED: usize = 64 << 10;
/// Buffers kept for reuse at most (so at most 32 MiB idle).
const KEEP: usize = 32;

/// Whether a buffer of `len` bytes comes from the pool: smaller ones are cheap to allocate,
/// larger ones do not fit a pooled buffer.
pub(crate) fn pooled(len: usize) -> bool {
    (MIN_POOLED..=POOLED_SIZE).contains(&len)
}

/// Idle buffers of [`POOLED_SIZE`] bytes, all initialized.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    idle: Mutex<Vec<Vec<u8>>>,
}

/// The pool partition logs read into and the Kafka connections receive requests into.
pub(crate) static POOL: BufferPool = BufferPool::new();

impl BufferPool {
    /// An empty pool.
    pub(crate) const fn new() -> BufferPool {
        BufferPool {
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A zero-initialized or reused buffer of at least `len` bytes, exposing `len` of them.
    pub(crate) fn take(&'static self, len: usize) -> ReadBuf {
        if !pooled(len) {
            return ReadBuf {
                buf: vec![0; len],
                len,
                pool: None,
            };
        }
        let reused = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        ReadBuf {
            buf: reused.unwrap_or_else(|| vec![0; POOLED_SIZE]),
            len,
            pool: Some(self),
        }
    }

    /// A writable copy of `bytes`: in a reused buffer when large, else a plain allocation
    /// (not zeroed first).
    pub(crate) fn copy_of(&'static self, bytes: &[u8]) -> ReadBuf {
        if !pooled(bytes.len()) {
            return ReadBuf {
                buf: bytes.to_vec(),
                len: bytes.len(),
                pool: None,
            };
        }
        let mut buf = self.take(bytes.len());
        buf.as_mut_slice().copy_from_slice(bytes);
        buf
    }

    fn give_back(&self, buf: Vec<u8>) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < KEEP {
            idle.push(buf);
        }
    }

    /// Buffers waiting for reuse.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A buffer to read into; returns to its pool when the `Bytes` made from it are dropped.
#[derive(Debug)]
pub(crate) struct ReadBuf {
    buf: Vec<u8>,
    len: usize,
    pool: Option<&'static BufferPool>,
}

impl ReadBuf {
    /// The bytes to read into.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[..self.len]
    }

    /// Keeps the first `len` bytes and hands them out without copying, unless they are so
    /// few that copying them frees the large buffer at once.
    pub(crate) fn freeze(mut self, len: usize) -> Bytes {
        self.len = len.min(self.len);
        if self.len == 0 {
            return Bytes::new();
        }
        if self.pool.is_some() && self.len < MIN_POOLED {
            return Bytes::copy_from_slice(&self.buf[..self.len]);
        }
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for ReadBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for ReadBuf {
    fn drop(&mut self) {
        if let Some(pool) = self.pool {
            pool.give_back(std::mem::take(&mut self.buf));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> &'static BufferPool {
        Box::leak(Box::new(BufferPool::new()))
    }

    #[test]
    fn large_read_buffers_come_back_when_the_bytes_are_dropped() {
        let pool = pool();
        let mut buf = pool.take(POOLED_SIZE);
        buf.as_mut_slice()[..3].copy_from_slice(b"abc");
        let bytes = buf.freeze(200_000);
        let clone = bytes.slice(0..3);
        drop(bytes);
        assert_eq!(pool.idle(), 0, "a slice still refers to the buffer");
        assert_eq!(&clone[..], b"abc");
        drop(clone);
        assert_eq!(pool.idle(), 1);
        let again = pool.take(MIN_POOLED);
        assert_eq!(pool.idle(), 0, "the idle buffer is reused");
        assert_eq!(again.as_ref().len(), MIN_POOLED);
    }

    #[test]
    fn small_and_oversized_reads_are_not_pooled_and_short_results_are_copied_out() {
        let pool = pool();
        drop(pool.take(100).freeze(100));
        drop(pool.take(POOLED_SIZE + 1).freeze(POOLED_SIZE + 1));
        assert_eq!(pool.idle(), 0);
        let mut buf = pool.take(POOLED_SIZE);
        buf.as_mut_slice()[..2].copy_from_slice(b"hi");
        let bytes = buf.freeze(2);
        assert_eq!(
            pool.idle(),
            1,
            "two bytes were copied and the buffer given back"
        );
        assert_eq!(&bytes[..], b"hi");
        assert!(pool.take(POOLED_SIZE).freeze(0).is_empty());
    }

    #[test]
    fn copies_hold_the_bytes_and_only_large_ones_use_the_pool() {
        let pool = pool();
        let small = pool.copy_of(b"abc");
        assert_eq!(small.as_ref(), b"abc");
        drop(small.freeze(3));
        assert_eq!(pool.idle(), 0);
        let big = vec![7u8; MIN_POOLED + 1];
        let copy = pool.copy_of(&big);
        assert_eq!(copy.as_ref(), &big[..]);
        drop(copy);
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_buffers() {
        let pool = pool();
        let held: Vec<_> = (0..KEEP + 5).map(|_| pool.take(POOLED_SIZE)).collect();
        drop(held);
        assert_eq!(pool.idle(), KEEP);
    }
}
