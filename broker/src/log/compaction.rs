//! Log compaction (`cleanup.policy=compact` or `compact,delete`): keep the newest record
//! per key.
//!
//! A run looks at every segment except the active one (which is never touched) and those
//! not wholly below the high watermark. The first
//! pass decodes their records and maps each key to the offset of its newest record; the
//! second rewrites each segment that has something to remove: a record survives if it has
//! no key, or it is its key's newest record and not a tombstone (null value) older than
//! `delete.retention.ms` (by its timestamp, against the caller's clock). Batches that keep
//! all their records are copied byte for byte; batches that lose some are decoded and
//! re-encoded with kafka-protocol (same compression, producer, offsets and timestamps of
//! what remains); batches that lose all go. Offsets never change, so a compacted log has
//! gaps, as in Kafka. Records in the active segment do not supersede older ones until the
//! segment is rolled, also as in Kafka.
//!
//! Crash safety: the cleaned segment is written next to the old one as `*.cleaned` files,
//! fsynced, and renamed over the old files (`.log` first), then the directory is fsynced.
//! A crash before the rename leaves `*.cleaned` files that the next open removes; one
//! between the renames leaves index files that disagree with the log, which the next open
//! rebuilds. Readers that found the old segment keep reading its (now unlinked) file.

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::batch::BatchHeader;
use super::index::{self, IndexBuilder};
use super::partition::{PartitionLog, SegmentView, lock};
use super::segment::{self, BatchReader, SegmentFile};
use super::{CleanupPolicy, LogError};

/// What the last compaction run left, so that a run with nothing to do is skipped.
#[derive(Debug, Default)]
pub(super) struct CleanerState {
    /// Base offset of the first segment the last run left alone (the active one, or the
    /// first not wholly committed): everything below was cleaned.
    cleaned_below: Option<i64>,
    /// `delete.retention.ms` of the last run.
    delete_retention_ms: i64,
    /// When the first tombstone kept by the last run becomes removable.
    next_tombstone_expiry: Option<i64>,
}

/// What a compaction run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Segments rewritten.
    pub segments_cleaned: usize,
    /// Records removed (superseded values and expired tombstones).
    pub records_removed: u64,
    /// Bytes of the rewritten segments before and after.
    pub bytes_before: u64,
    /// See `bytes_before`.
    pub bytes_after: u64,
}

impl PartitionLog {
    /// Compacts every segment but the active one when the cleanup policy includes
    /// `compact`; `now_ms` decides which tombstones are past `delete.retention.ms`.
    pub fn compact(&self, now_ms: i64) -> Result<CompactionReport, LogError> {
        let mut state = lock(&self.cleaner);
        let config = self.config();
        let mut report = CompactionReport::default();
        if config.cleanup_policy == CleanupPolicy::Delete {
            return Ok(report);
        }
        // Kafka cleans nothing beyond the high watermark: an uncommitted record may yet be
        // truncated, so it must not supersede a committed one.
        let (segments, active_base): (Vec<(Arc<SegmentFile>, u64)>, i64) = {
            let v = self.view();
            let n = v
                .segments
                .len()
                .saturating_sub(1)
                .min(super::retention::below_high_watermark(&v));
            let segments = v
                .segments
                .values()
                .take(n)
                .map(|s| (Arc::clone(&s.file), s.size))
                .collect();
            (segments, v.segments.keys().nth(n).copied().unwrap_or(0))
        };
        // Nothing new below the active segment and no tombstone due: a run would change
        // nothing, and the broker calls this periodically on every partition.
        let unchanged = state.cleaned_below == Some(active_base)
            && state.delete_retention_ms == config.delete_retention_ms
            && state.next_tombstone_expiry.is_none_or(|t| now_ms < t);
        if unchanged {
            return Ok(report);
        }
        let mut newest: HashMap<Bytes, i64> = HashMap::new();
        for (seg, size) in &segments {
            for_each_record(seg, *size, |r| {
                if let Some(k) = &r.key {
                    newest.insert(Bytes::copy_from_slice(k), r.offset);
                }
            })?;
        }
        let next_expiry = Cell::new(None::<i64>);
        let keep = |r: &Record| match &r.key {
            None => true,
            Some(k) => {
                if newest.get(k) != Some(&r.offset) {
                    return false;
                }
                if r.value.is_some() {
                    return true;
                }
                let expiry = r
                    .timestamp
                    .saturating_add(config.delete_retention_ms)
                    .saturating_add(1);
                let kept = now_ms < expiry;
                if kept {
                    next_expiry.set(Some(next_expiry.get().map_or(expiry, |t| t.min(expiry))));
                }
                kept
            }
        };
        for (seg, size) in segments {
            let Some(cleaned) =
                clean_segment(&self.dir, &seg, size, config.index_interval_bytes, &keep)?
            else {
                continue;
            };
            report.segments_cleaned += 1;
            report.records_removed += cleaned.records_removed;
            report.bytes_before += size;
            report.bytes_after += cleaned.view.size;
            // Readers that found the old segment keep reading it once renamed over.
            seg.retire()?;
            swap_in(&self.dir, seg.base_offset)?;
            self.view_mut()
                .segments
                .insert(seg.base_offset, cleaned.view);
            tracing::info!(segment = %seg.path.display(), removed = cleaned.records_removed,
                "compacted");
        }
        state.cleaned_below = Some(active_base);
        state.delete_retention_ms = config.delete_retention_ms;
        state.next_tombstone_expiry = next_expiry.get();
        Ok(report)
    }
}

/// Calls `f` for every record of a segment's batches (control batches skipped).
fn for_each_record(
    seg: &SegmentFile,
    size: u64,
    mut f: impl FnMut(&Record),
) -> Result<(), LogError> {
    let mut reader = BatchReader::new(seg, 0, size);
    while let Some((pos, h, bytes)) = reader.next_batch()? {
        if h.is_control() {
            continue;
        }
        for r in decode(seg, pos, bytes)? {
            f(&r);
        }
    }
    Ok(())
}

fn decode(seg: &SegmentFile, pos: u64, mut bytes: Bytes) -> Result<Vec<Record>, LogError> {
    RecordBatchDecoder::decode(&mut bytes)
        .map(|set| set.records)
        .map_err(|e| LogError::CorruptSegment {
            path: seg.path.clone(),
            position: pos,
            reason: e.to_string(),
        })
}

struct Cleaned {
    view: SegmentView,
    records_removed: u64,
}

fn cleaned_path(dir: &Path, base: i64, suffix: &str) -> PathBuf {
    let mut p = segment::file_path(dir, base, suffix).into_os_string();
    p.push(".");
    p.push(segment::CLEANED_SUFFIX);
    PathBuf::from(p)
}

/// Writes the cleaned copy of one segment as `*.cleaned` files; `None` when nothing in it
/// needs removing.
fn clean_segment(
    dir: &Path,
    seg: &SegmentFile,
    size: u64,
    index_interval: u64,
    keep: &impl Fn(&Record) -> bool,
) -> Result<Option<Cleaned>, LogError> {
    let base = seg.base_offset;
    let log_path = cleaned_path(dir, base, segment::LOG_SUFFIX);
    // Created at the first batch that changes: until then the copy would equal the input.
    let mut out: Option<File> = None;
    let mut builder = IndexBuilder::new(base, index_interval);
    let mut out_pos = 0u64;
    let mut written = 0u64;
    let mut removed = 0u64;
    let mut last_offset = None;
    let mut reader = BatchReader::new(seg, 0, size);
    let mut pending = Vec::new();
    while let Some((pos, h, bytes)) = reader.next_batch()? {
        let mut changed = false;
        let bytes = if h.is_control() {
            bytes
        } else {
            let records = decode(seg, pos, bytes.clone())?;
            let kept: Vec<Record> = records.iter().filter(|r| keep(r)).cloned().collect();
            removed += (records.len() - kept.len()) as u64;
            changed = kept.len() != records.len();
            if !changed {
                bytes
            } else if kept.is_empty() {
                if out.is_none() {
                    out = Some(start_output(seg, &log_path, pos)?);
                    written = pos;
                }
                continue;
            } else {
                reencode(seg, pos, &h, kept)?
            }
        };
        if changed && out.is_none() {
            out = Some(start_output(seg, &log_path, pos)?);
            written = pos;
        }
        for (p, nh) in super::batch::headers(&bytes) {
            let at = out_pos + p as u64;
            builder.on_batch(at, nh.base_offset, nh.max_timestamp, nh.total_size() as u64);
            last_offset = Some(nh.last_offset());
        }
        out_pos += bytes.len() as u64;
        let Some(out) = &out else {
            continue;
        };
        pending.extend_from_slice(&bytes);
        if pending.len() >= 1 << 20 {
            write_at(out, &log_path, &pending, written)?;
            written += pending.len() as u64;
            pending.clear();
        }
    }
    let Some(out) = out else {
        return Ok(None);
    };
    write_at(&out, &log_path, &pending, written)?;
    builder.on_roll();
    out.sync_all().map_err(|e| LogError::io(&log_path, e))?;
    for (suffix, data) in [
        (
            segment::INDEX_SUFFIX,
            index::encode_offsets(&builder.offsets),
        ),
        (
            segment::TIME_INDEX_SUFFIX,
            index::encode_times(&builder.times),
        ),
    ] {
        let p = cleaned_path(dir, base, suffix);
        let f = File::create(&p).map_err(|e| LogError::io(&p, e))?;
        f.write_all_at(&data, 0)
            .and_then(|_| f.sync_all())
            .map_err(|e| LogError::io(&p, e))?;
    }
    Ok(Some(Cleaned {
        view: SegmentView {
            file: Arc::new(SegmentFile::new(
                seg.fds(),
                base,
                segment::file_path(dir, base, segment::LOG_SUFFIX),
                out,
            )?),
            size: out_pos,
            index: builder,
            last_offset,
        },
        records_removed: removed,
    }))
}

/// Creates the cleaned `.log` with a copy of the input's first `len` bytes (the batches
/// before the first change).
fn start_output(seg: &SegmentFile, path: &Path, len: u64) -> Result<File, LogError> {
    // Read back by fetches once swapped in, so opened for reading too.
    let out = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| LogError::io(path, e))?;
    let mut buf = vec![0u8; (1 << 20).min(len as usize)];
    let mut at = 0u64;
    while at < len {
        let n = buf.len().min((len - at) as usize);
        seg.read_at(&mut buf[..n], at)?;
        write_at(&out, path, &buf[..n], at)?;
        at += n as u64;
    }
    Ok(out)
}

fn write_at(f: &File, path: &Path, data: &[u8], pos: u64) -> Result<(), LogError> {
    f.write_all_at(data, pos).map_err(|e| LogError::io(path, e))
}

/// Encodes the surviving records of a batch as one batch with the same attributes.
fn reencode(
    seg: &SegmentFile,
    pos: u64,
    h: &BatchHeader,
    mut kept: Vec<Record>,
) -> Result<Bytes, LogError> {
    if h.producer_id < 0 {
        // Keep the batch's "no sequence" (-1): the encoder derives the base sequence from
        // the first record and groups records whose offset - sequence agree.
        let first = kept[0].offset;
        for r in &mut kept {
            r.sequence = (r.offset - first - 1) as i32;
        }
    }
    let compression = match h.compression() {
        1 => kafka_protocol::records::Compression::Gzip,
        2 => kafka_protocol::records::Compression::Snappy,
        3 => kafka_protocol::records::Compression::Lz4,
        4 => kafka_protocol::records::Compression::Zstd,
        _ => kafka_protocol::records::Compression::None,
    };
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut out, &kept, &options).map_err(|e| {
        LogError::CorruptSegment {
            path: seg.path.clone(),
            position: pos,
            reason: format!("re-encoding a compacted batch: {e}"),
        }
    })?;
    Ok(out.freeze())
}

/// Renames a segment's `*.cleaned` files over it and fsyncs the directory.
fn swap_in(dir: &Path, base: i64) -> Result<(), LogError> {
    for suffix in [
        segment::LOG_SUFFIX,
        segment::INDEX_SUFFIX,
        segment::TIME_INDEX_SUFFIX,
    ] {
        let to = segment::file_path(dir, base, suffix);
        std::fs::rename(cleaned_path(dir, base, suffix), &to).map_err(|e| LogError::io(&to, e))?;
    }
    segment::sync_dir(dir)
}
