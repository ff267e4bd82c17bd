//! Truncation: a follower cutting its log back to where it agrees with the leader (after
//! a leader change, KIP-101/279), or dropping it whole to start at the leader's log start
//! offset (Kafka's `truncateTo` and `truncateFullyAndStartAt`).
//!
//! Crash safety: segments wholly past the cut are removed newest first (each `.log` file
//! before its indexes), then the segment holding the cut is shortened and fsynced, then its
//! indexes are rewritten, then the leader-epoch cache is cut. A crash at any step leaves a
//! log whose segments are a prefix of the old one, which recovery opens as it opens any
//! other (re-reading the last segment, rebuilding its indexes, cutting the epoch cache to
//! the log end it finds). Producer state is rebuilt from the batch headers that remain, so
//! idempotent producers' deduplication follows the truncated log.

use std::sync::Arc;

use super::index::{self, IndexBuilder};
use super::partition::{FlushState, PartitionLog, Writer, lock};
use super::producer::ProducerTable;
use super::segment::{self, HeaderScanner, SegmentFile};
use super::{LogError, recovery};

impl PartitionLog {
    /// Removes every record at or after `offset` (a whole batch when `offset` falls inside
    /// it); returns the new log end offset. The high watermark is clamped to it. An
    /// offset at or beyond the log end changes nothing; one below the log start offset
    /// empties the log and starts it at `offset`.
    pub fn truncate_to(&self, offset: i64) -> Result<i64, LogError> {
        let _cleaner = lock(&self.cleaner);
        let mut w = lock(&self.writer);
        self.check_writable(&w)?;
        let (log_start, log_end, first_base) = {
            let v = self.view();
            let first = v.segments.keys().next().copied().unwrap_or(v.log_start);
            (v.log_start, v.log_end, first)
        };
        if offset >= log_end {
            return Ok(log_end);
        }
        let offset = offset.max(0);
        if offset < log_start || offset <= first_base {
            drop(w);
            return self.truncate_fully_locked(offset.max(0));
        }
        let removed = self.remove_segments(|b| b >= offset)?;
        // The segment holding the cut becomes the active one.
        let (file, size) = {
            let v = self.view();
            let Some((_, s)) = v.segments.range(..offset).next_back() else {
                unreachable!("offset > the first segment's base");
            };
            (Arc::clone(&s.file), s.size)
        };
        let config = w.config.clone();
        let mut builder = IndexBuilder::new(file.base_offset, config.index_interval_bytes);
        let mut cut = size;
        let mut last_offset = None;
        let mut new_end = file.base_offset;
        let mut first_timestamp = None;
        {
            let mut scanner = HeaderScanner::new(&file, 0, size);
            while let Some(b) = scanner.next_header()? {
                if b.header.last_offset() >= offset {
                    cut = b.position;
                    break;
                }
                builder.on_batch(
                    b.position,
                    b.header.base_offset,
                    b.header.max_timestamp,
                    b.header.total_size() as u64,
                );
                first_timestamp.get_or_insert(b.header.max_timestamp);
                last_offset = Some(b.header.last_offset());
                new_end = b.header.last_offset() + 1;
            }
        }
        file.set_len(cut)
            .and_then(|_| file.sync_data())
            .map_err(|e| LogError::io(&file.path, e))?;
        for (suffix, bytes) in [
            (
                segment::INDEX_SUFFIX,
                index::encode_offsets(&builder.offsets),
            ),
            (
                segment::TIME_INDEX_SUFFIX,
                index::encode_times(&builder.times),
            ),
        ] {
            let path = segment::file_path(&self.dir, file.base_offset, suffix);
            let f = segment::open_rw(&path)?;
            f.set_len(0)
                .and_then(|_| std::os::unix::fs::FileExt::write_all_at(&f, &bytes, 0))
                .map_err(|e| LogError::io(&path, e))?;
        }
        segment::sync_dir(&self.dir)?;
        let producers = self.rebuild_producers(&file, cut)?;
        w.offsets_written = builder.offsets.len();
        w.times_written = builder.times.len();
        {
            let mut v = self.view_mut();
            if let Some(s) = v.segments.get_mut(&file.base_offset) {
                s.size = cut;
                s.index = builder;
                s.last_offset = last_offset;
            }
            v.log_end = new_end;
            v.high_watermark = v.high_watermark.min(new_end);
        }
        w.active = Arc::clone(&file);
        w.size = cut;
        w.next_offset = new_end;
        w.rolling_timestamp = first_timestamp;
        w.producers = producers;
        w.unflushed_records = 0;
        {
            let mut fs = lock(&self.flush);
            forget_removed(&mut fs, &removed);
            fs.flushed = fs.flushed.min(new_end);
        }
        lock(&self.epochs).truncate_from_end(new_end)?;
        drop(w);
        self.announce_high_watermark();
        tracing::info!(dir = %self.dir.display(), offset, log_end_offset = new_end,
            segments_removed = removed.len(), "truncated the log");
        Ok(new_end)
    }

    /// Removes every record and starts the log empty at `offset` (a follower whose fetch
    /// offset fell below the leader's log start offset); returns `offset`.
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<i64, LogError> {
        let _cleaner = lock(&self.cleaner);
        self.check_writable(&lock(&self.writer))?;
        self.truncate_fully_locked(offset.max(0))
    }

    /// [`PartitionLog::truncate_fully_and_start_at`] with the cleaner lock held.
    fn truncate_fully_locked(&self, offset: i64) -> Result<i64, LogError> {
        let mut w = lock(&self.writer);
        let config = w.config.clone();
        // Segments past `offset` go newest first, then the one at `offset` is created (or
        // emptied), then the older ones go: a crash leaves a prefix of the old log, or
        // older segments and the new empty one, never records after a hole.
        let newer = self.remove_segments(|b| b > offset)?;
        let seg = super::partition::create_segment(
            self.log_dir.fds(),
            &self.dir,
            offset,
            config.index_interval_bytes,
        )?;
        let active = Arc::clone(&seg.file);
        self.view_mut().segments.insert(offset, seg);
        segment::sync_dir(&self.dir)?;
        let older = self.remove_segments(|b| b < offset)?;
        let removed: Vec<Arc<SegmentFile>> = newer.into_iter().chain(older).collect();
        segment::sync_dir(&self.dir)?;
        recovery::write_log_start(&self.dir, offset)?;
        {
            let mut v = self.view_mut();
            v.log_start = offset;
            v.log_end = offset;
            v.high_watermark = offset;
        }
        w.active = active;
        w.size = 0;
        w.next_offset = offset;
        w.offsets_written = 0;
        w.times_written = 0;
        w.rolling_timestamp = None;
        w.producers = ProducerTable::default();
        w.unflushed_records = 0;
        {
            let mut fs = lock(&self.flush);
            forget_removed(&mut fs, &removed);
            fs.flushed = offset;
        }
        lock(&self.epochs).clear()?;
        drop(w);
        self.announce_high_watermark();
        tracing::info!(dir = %self.dir.display(), offset, "emptied the log to start at the leader's log start offset");
        Ok(offset)
    }

    /// Removes the segments whose base offset `which` selects, newest first (so that a
    /// crash leaves a prefix of the log), each `.log` before its indexes.
    fn remove_segments(
        &self,
        which: impl Fn(i64) -> bool,
    ) -> Result<Vec<Arc<SegmentFile>>, LogError> {
        let removed: Vec<Arc<SegmentFile>> = {
            let mut v = self.view_mut();
            let bases: Vec<i64> = v
                .segments
                .keys()
                .rev()
                .copied()
                .filter(|&b| which(b))
                .collect();
            bases
                .iter()
                .filter_map(|b| v.segments.remove(b))
                .map(|s| s.file)
                .collect()
        };
        for file in &removed {
            // Readers that found the segment keep reading it once deleted.
            file.retire()?;
            for suffix in [
                segment::LOG_SUFFIX,
                segment::INDEX_SUFFIX,
                segment::TIME_INDEX_SUFFIX,
            ] {
                segment::remove_file(&segment::file_path(&self.dir, file.base_offset, suffix))?;
            }
        }
        Ok(removed)
    }

    fn check_writable(&self, w: &Writer) -> Result<(), LogError> {
        if w.closed {
            return Err(LogError::Closed {
                dir: self.dir.clone(),
            });
        }
        self.check_online()
    }

    /// Replays the idempotent producers' batches of every segment (the last one up to
    /// `active_end`) into a fresh table.
    fn rebuild_producers(
        &self,
        active: &SegmentFile,
        active_end: u64,
    ) -> Result<ProducerTable, LogError> {
        let files: Vec<(Arc<SegmentFile>, u64)> = self
            .view()
            .segments
            .values()
            .map(|s| {
                let end = if s.file.base_offset == active.base_offset {
                    active_end
                } else {
                    s.size
                };
                (Arc::clone(&s.file), end)
            })
            .collect();
        let mut producers = ProducerTable::default();
        for (file, end) in files {
            let mut scanner = HeaderScanner::new(&file, 0, end);
            while let Some(b) = scanner.next_header()? {
                if b.header.has_sequence() {
                    producers.apply(&b.header, b.header.base_offset);
                }
            }
        }
        Ok(producers)
    }

    /// Tells high watermark and log end subscribers their current values, even when they
    /// went down.
    fn announce_high_watermark(&self) {
        let (hw, leo) = {
            let v = self.view();
            (v.high_watermark, v.log_end)
        };
        self.hw.send_replace(hw);
        self.leo.send_replace(leo);
    }
}

/// Drops removed segments from the list of rolled segments awaiting their fsync.
fn forget_removed(fs: &mut FlushState, removed: &[Arc<SegmentFile>]) {
    fs.rolled
        .retain(|(f, _)| !removed.iter().any(|r| Arc::ptr_eq(r, f)));
}
