//! The sparse offset index (`.index`) and time index (`.timeindex`) of one segment.
//!
//! Both are Kafka's formats: `.index` holds 8-byte entries (relative offset u32, file
//! position u32), `.timeindex` 12-byte entries (timestamp i64, relative offset u32), all
//! big-endian, offsets relative to the segment's base offset. An entry is added every
//! `index.interval.bytes` of log, at a batch boundary. A time index entry
//! `(T, O)` says the batch at offset `O` was the first in the segment to reach the running
//! maximum timestamp `T`, so every batch before `O` has a smaller maximum timestamp; that
//! is what makes a lookup by timestamp safe to start at `O`.
//!
//! The entries are kept in memory (they are sparse: 8 bytes per 4 KiB of log by default)
//! and written to the files in the background of appends; the files are a cache that
//! recovery checks against the log and rewrites when they disagree, so they never need
//! an fsync of their own to be correct.

/// One `.index` entry: a batch starting at `position` has base offset `base + rel_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) rel_offset: u32,
    pub(crate) position: u32,
}

/// One `.timeindex` entry: see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub(crate) timestamp: i64,
    pub(crate) rel_offset: u32,
}

/// Size of a `.index` entry in bytes.
pub(crate) const OFFSET_ENTRY_SIZE: usize = 8;
/// Size of a `.timeindex` entry in bytes.
pub(crate) const TIME_ENTRY_SIZE: usize = 12;

impl OffsetEntry {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.rel_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
}

impl TimeEntry {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.rel_offset.to_be_bytes());
    }
}

/// Encodes a whole `.index` file.
pub(crate) fn encode_offsets(entries: &[OffsetEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * OFFSET_ENTRY_SIZE);
    entries.iter().for_each(|e| e.encode(&mut out));
    out
}

/// Encodes a whole `.timeindex` file.
pub(crate) fn encode_times(entries: &[TimeEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * TIME_ENTRY_SIZE);
    entries.iter().for_each(|e| e.encode(&mut out));
    out
}

/// Builds a segment's index entries as batches are appended (or re-read at recovery);
/// the same rules in both cases, so a rebuilt index equals the one written by appends.
#[derive(Debug, Clone)]
pub(crate) struct IndexBuilder {
    base_offset: i64,
    interval: u64,
    bytes_since_entry: u64,
    /// Largest batch max timestamp so far, `i64::MIN` when the segment is empty.
    pub(crate) max_timestamp: i64,
    /// Base offset of the first batch that reached `max_timestamp`.
    pub(crate) offset_of_max_timestamp: i64,
    last_time_entry: i64,
    pub(crate) offsets: Vec<OffsetEntry>,
    pub(crate) times: Vec<TimeEntry>,
}

impl IndexBuilder {
    pub(crate) fn new(base_offset: i64, interval: u64) -> Self {
        IndexBuilder {
            base_offset,
            interval,
            bytes_since_entry: 0,
            max_timestamp: i64::MIN,
            offset_of_max_timestamp: base_offset,
            last_time_entry: i64::MIN,
            offsets: Vec::new(),
            times: Vec::new(),
        }
    }

    /// Continues a segment's indexes from entries read back from its files.
    pub(crate) fn restore(
        base_offset: i64,
        interval: u64,
        offsets: Vec<OffsetEntry>,
        times: Vec<TimeEntry>,
        size: u64,
        max_timestamp: i64,
        offset_of_max_timestamp: i64,
    ) -> Self {
        // An entry is made at a batch's start and the count restarts with that batch.
        let bytes_since_entry = size - offsets.last().map_or(0, |e| u64::from(e.position));
        IndexBuilder {
            base_offset,
            interval,
            bytes_since_entry,
            max_timestamp,
            offset_of_max_timestamp,
            last_time_entry: times.last().map_or(i64::MIN, |e| e.timestamp),
            offsets,
            times,
        }
    }

    fn rel(&self, offset: i64) -> u32 {
        u32::try_from(offset - self.base_offset).unwrap_or(u32::MAX)
    }

    /// Records a batch at `position`; returns true when it added index entries.
    pub(crate) fn on_batch(
        &mut self,
        position: u64,
        base_offset: i64,
        max_timestamp: i64,
        size: u64,
    ) -> bool {
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.offset_of_max_timestamp = base_offset;
        }
        let mut added = false;
        if self.bytes_since_entry > self.interval {
            self.offsets.push(OffsetEntry {
                rel_offset: self.rel(base_offset),
                position: u32::try_from(position).unwrap_or(u32::MAX),
            });
            self.push_time_entry();
            self.bytes_since_entry = 0;
            added = true;
        }
        self.bytes_since_entry += size;
        added
    }

    /// Adds the final time index entry of a segment that stops being active, so that its
    /// time index knows the segment's largest timestamp (as Kafka does on roll).
    pub(crate) fn on_roll(&mut self) -> bool {
        self.push_time_entry()
    }

    fn push_time_entry(&mut self) -> bool {
        if self.max_timestamp > self.last_time_entry {
            self.times.push(TimeEntry {
                timestamp: self.max_timestamp,
                rel_offset: self.rel(self.offset_of_max_timestamp),
            });
            self.last_time_entry = self.max_timestamp;
            return true;
        }
        false
    }
}

/// Position to start scanning from for `offset`: that of the last entry at or below it.
pub(crate) fn lookup_offset(entries: &[OffsetEntry], base_offset: i64, offset: i64) -> u64 {
    let rel = offset - base_offset;
    let n = entries.partition_point(|e| i64::from(e.rel_offset) <= rel);
    if n == 0 {
        0
    } else {
        u64::from(entries[n - 1].position)
    }
}

/// Offset to start scanning from for the first batch with max timestamp >= `timestamp`.
pub(crate) fn lookup_time(entries: &[TimeEntry], base_offset: i64, timestamp: i64) -> i64 {
    let n = entries.partition_point(|e| e.timestamp < timestamp);
    if n == 0 {
        base_offset
    } else {
        base_offset + i64::from(entries[n - 1].rel_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_appear_every_interval_at_batch_boundaries() {
        let mut b = IndexBuilder::new(100, 1000);
        let mut pos = 0;
        for i in 0..10 {
            b.on_batch(pos, 100 + i * 3, 10 * i, 400);
            pos += 400;
        }
        // Entries at the batches that start after more than 1000 bytes since the last one.
        let positions: Vec<u32> = b.offsets.iter().map(|e| e.position).collect();
        assert_eq!(positions, vec![1200, 2400, 3600]);
        assert_eq!(b.offsets[0].rel_offset, 9);
        assert_eq!(lookup_offset(&b.offsets, 100, 100), 0);
        assert_eq!(lookup_offset(&b.offsets, 100, 110), 1200);
        assert_eq!(lookup_offset(&b.offsets, 100, 1000), 3600);
    }

    #[test]
    fn time_index_keeps_the_first_batch_reaching_each_maximum() {
        let mut b = IndexBuilder::new(0, 0);
        b.on_batch(0, 0, 50, 10);
        b.on_batch(10, 1, 70, 10); // entry (70, 1)
        b.on_batch(20, 2, 60, 10); // max stays 70: no new time entry
        b.on_batch(30, 3, 90, 10); // entry (90, 3)
        assert_eq!(
            b.times,
            vec![
                TimeEntry {
                    timestamp: 70,
                    rel_offset: 1
                },
                TimeEntry {
                    timestamp: 90,
                    rel_offset: 3
                }
            ]
        );
        assert_eq!(lookup_time(&b.times, 0, 60), 0);
        assert_eq!(lookup_time(&b.times, 0, 71), 1);
        assert_eq!(lookup_time(&b.times, 0, 95), 3);
        assert!(!b.on_roll());
    }
}
