//! [`ResponseBuf`]: the buffer a response is encoded into, which refers to stored record
//! batches instead of copying them.
//!
//! A Fetch response is mostly record batches read from the logs. The `kafka-protocol`
//! encoders write every field through `BufMut::put_slice`; this buffer recognises a slice
//! that lies inside one of the batches it was given and keeps a reference-counted view of
//! it (`Bytes::slice_ref`) as a chunk of its own, so the response goes to the socket as a
//! list of chunks with one vectored write and the batches are never copied.

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// Slices shorter than this are copied: a reference is not worth a chunk.
const MIN_SHARED: usize = 4096;

/// An encoding buffer made of chunks, some of them shared with stored batches.
#[derive(Debug, Default)]
pub(crate) struct ResponseBuf {
    done: Vec<Bytes>,
    done_len: usize,
    current: BytesMut,
    shared: Vec<Bytes>,
}

impl ResponseBuf {
    /// A buffer that refers to (rather than copies) any slice of `shared`.
    pub(crate) fn new(shared: Vec<Bytes>) -> ResponseBuf {
        ResponseBuf {
            current: BytesMut::with_capacity(256),
            shared,
            ..ResponseBuf::default()
        }
    }

    /// The encoded bytes, as chunks in order.
    pub(crate) fn into_chunks(mut self) -> Vec<Bytes> {
        self.seal();
        self.done
    }

    /// Bytes encoded so far.
    pub(crate) fn len(&self) -> usize {
        self.done_len + self.current.len()
    }

    fn seal(&mut self) {
        if !self.current.is_empty() {
            let chunk = self.current.split().freeze();
            self.done_len += chunk.len();
            self.done.push(chunk);
        }
    }

    fn find_shared(&self, src: &[u8]) -> Option<Bytes> {
        let (start, end) = (src.as_ptr() as usize, src.as_ptr() as usize + src.len());
        self.shared.iter().find_map(|b| {
            let (b_start, b_end) = (b.as_ptr() as usize, b.as_ptr() as usize + b.len());
            (start >= b_start && end <= b_end).then(|| b.slice_ref(src))
        })
    }
}

// SAFETY: every method forwards to the `BytesMut` being written, whose guarantees hold.
unsafe impl BufMut for ResponseBuf {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialised `cnt` bytes of `chunk_mut()`, which is `current`'s.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= MIN_SHARED
            && let Some(shared) = self.find_shared(src)
        {
            self.seal();
            self.done_len += shared.len();
            self.done.push(shared);
            return;
        }
        self.current.extend_from_slice(src);
    }
}

impl ByteBufMut for ResponseBuf {
    fn offset(&self) -> usize {
        self.len()
    }

    // Only record-batch and snappy encoders seek back; responses carry batches already
    // encoded, so these only ever address the unshared tail.
    fn seek(&mut self, offset: usize) {
        let local = offset.saturating_sub(self.done_len);
        self.current.resize(local, 0);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        let start = r.start.saturating_sub(self.done_len);
        let end = r.end.saturating_sub(self.done_len).min(self.current.len());
        &mut self.current[start.min(end)..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_of_shared_batches_become_chunks_and_the_rest_is_copied() {
        let stored = Bytes::from(vec![7u8; 10_000]);
        let mut buf = ResponseBuf::new(vec![stored.clone()]);
        buf.put_i32(1);
        buf.put_slice(&stored[..]);
        buf.put_slice(&[1, 2, 3]);
        assert_eq!(buf.len(), 4 + 10_000 + 3);
        let chunks = buf.into_chunks();
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].as_ptr(), stored.as_ptr(), "not copied");
        let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(&joined[..4], &[0, 0, 0, 1]);
        assert_eq!(&joined[10_004..], &[1, 2, 3]);

        let copy = vec![7u8; 10_000];
        let mut buf = ResponseBuf::new(vec![stored]);
        buf.put_slice(&copy);
        assert_eq!(buf.into_chunks().len(), 1, "an unknown slice is copied");
    }
}
