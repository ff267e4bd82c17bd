//! Deleting old data: retention by time and size, and DeleteRecords.
//!
//! Retention works on whole segments from the oldest on, as in Kafka: a segment goes once
//! its newest timestamp is older than `retention.ms`, while the log without it is still at
//! least `retention.bytes`, or once it lies wholly below the log start offset. When the
//! active segment itself must go it is rolled first, so the log always keeps an (empty)
//! active segment and its log end offset. DeleteRecords moves the log start offset, which
//! is persisted in a small checkpoint file, since the first segment's name no longer says
//! it.

use super::partition::{PartitionLog, Writer, lock};
use super::recovery;
use super::segment::{self, SegmentFile};
use super::{CleanupPolicy, LogError};
use std::sync::Arc;

/// What a retention run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Segments deleted.
    pub segments_deleted: usize,
    /// Bytes of `.log` files deleted.
    pub bytes_deleted: u64,
    /// Log start offset after the run.
    pub log_start_offset: i64,
}

impl PartitionLog {
    /// Applies `retention.ms` (measured against `now_ms`) and `retention.bytes` when the
    /// cleanup policy includes `delete`, and drops segments wholly below the log start
    /// offset under any policy.
    pub fn apply_retention(&self, now_ms: i64) -> Result<RetentionReport, LogError> {
        let _cleaner = lock(&self.cleaner);
        let mut w = lock(&self.writer);
        let config = w.config.clone();
        let deletes = config.cleanup_policy != CleanupPolicy::Compact;
        let n = {
            let v = self.view();
            let segs: Vec<_> = v.segments.values().collect();
            let nonempty = |i: usize| segs[i].size > 0;
            let mut by_time = 0;
            if deletes && config.retention_ms >= 0 {
                while by_time < segs.len()
                    && (!nonempty(by_time) && by_time + 1 < segs.len()
                        || nonempty(by_time)
                            && now_ms.saturating_sub(segs[by_time].index.max_timestamp)
                                > config.retention_ms)
                {
                    by_time += 1;
                }
            }
            let mut by_size = 0;
            if deletes && config.retention_bytes >= 0 {
                let total: u64 = segs.iter().map(|s| s.size).sum();
                let mut excess = total as i64 - config.retention_bytes;
                while by_size < segs.len()
                    && nonempty(by_size)
                    && excess >= segs[by_size].size as i64
                {
                    excess -= segs[by_size].size as i64;
                    by_size += 1;
                }
            }
            // Kafka deletes only what is committed: an uncommitted record may yet be
            // truncated, and its segment is still the replicas' to agree on.
            by_time
                .max(by_size)
                .max(below_log_start(&v))
                .min(below_high_watermark(&v))
        };
        self.delete_oldest(&mut w, n)
    }

    /// Moves the log start offset to `offset` (DeleteRecords) and deletes the segments
    /// wholly below it; returns the new log start offset. An offset at or below the
    /// current log start offset changes nothing; one beyond the high watermark is refused.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let _cleaner = lock(&self.cleaner);
        let mut w = lock(&self.writer);
        {
            let v = self.view();
            if offset > v.high_watermark || offset < 0 {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset: v.log_start,
                    log_end_offset: v.log_end,
                });
            }
            if offset <= v.log_start {
                return Ok(v.log_start);
            }
        }
        recovery::write_log_start(&self.dir, offset)?;
        self.view_mut().log_start = offset;
        let n = below_log_start(&self.view());
        Ok(self.delete_oldest(&mut w, n)?.log_start_offset)
    }

    /// Deletes the `n` oldest segments, rolling first if that includes the active one.
    fn delete_oldest(&self, w: &mut Writer, n: usize) -> Result<RetentionReport, LogError> {
        let report = self.delete_oldest_segments(w, n)?;
        super::partition::lock(&self.epochs).truncate_from_start(report.log_start_offset)?;
        Ok(report)
    }

    fn delete_oldest_segments(
        &self,
        w: &mut Writer,
        n: usize,
    ) -> Result<RetentionReport, LogError> {
        if n == 0 {
            return Ok(RetentionReport {
                log_start_offset: self.log_start_offset(),
                ..Default::default()
            });
        }
        if n >= self.segment_count() && w.size > 0 {
            self.roll(w)?;
        }
        let removed: Vec<(Arc<SegmentFile>, u64)> = {
            let mut v = self.view_mut();
            let active = w.active.base_offset;
            let bases: Vec<i64> = v
                .segments
                .keys()
                .copied()
                .filter(|&b| b != active)
                .take(n)
                .collect();
            let removed = bases
                .iter()
                .filter_map(|b| v.segments.remove(b))
                .map(|s| (s.file, s.size))
                .collect();
            let first = v.segments.keys().next().copied().unwrap_or(v.log_end);
            v.log_start = v.log_start.max(first);
            removed
        };
        let mut report = RetentionReport {
            segments_deleted: removed.len(),
            log_start_offset: self.log_start_offset(),
            ..Default::default()
        };
        for (file, size) in removed {
            report.bytes_deleted += size;
            // Readers that found the segment keep reading it once deleted.
            file.retire()?;
            // The .log goes first: indexes without it are removed at the next open.
            for suffix in [
                segment::LOG_SUFFIX,
                segment::INDEX_SUFFIX,
                segment::TIME_INDEX_SUFFIX,
            ] {
                segment::remove_file(&segment::file_path(&self.dir, file.base_offset, suffix))?;
            }
            tracing::info!(segment = %file.path.display(), "deleted by retention");
        }
        segment::sync_dir(&self.dir)?;
        Ok(report)
    }
}

/// How many of the oldest segments lie wholly below the high watermark (the active one
/// too when everything is committed).
pub(super) fn below_high_watermark(v: &super::partition::View) -> usize {
    let bases: Vec<i64> = v.segments.keys().copied().collect();
    let rolled = bases
        .windows(2)
        .take_while(|pair| pair[1] <= v.high_watermark)
        .count();
    if rolled + 1 == bases.len() && v.high_watermark == v.log_end {
        bases.len()
    } else {
        rolled
    }
}

/// How many of the oldest segments lie wholly below the log start offset.
fn below_log_start(v: &super::partition::View) -> usize {
    let bases: Vec<i64> = v.segments.keys().copied().collect();
    bases
        .windows(2)
        .take_while(|pair| pair[1] <= v.log_start)
        .count()
}
