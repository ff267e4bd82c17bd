//! The clean-shutdown snapshot: what a cleanly closed log knows, so the next open need
//! not re-read its segments.
//!
//! [`PartitionLog::close`] (and dropping the last handle) fsyncs everything, writes the
//! index files out, and then writes `clean-shutdown` (JSON, atomically): each segment's
//! size, largest timestamp and last offset, and the idempotent producers' state. The next
//! open reads and at once deletes the file, so that a crash afterwards is recovered the
//! full way. It trusts the snapshot only if every segment is still there with exactly the
//! size recorded and its index files pass a consistency check; any doubt falls back to
//! recovery from the log itself (see `recovery`).

use std::collections::VecDeque;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::LogError;
use super::index::{IndexBuilder, OFFSET_ENTRY_SIZE, OffsetEntry, TIME_ENTRY_SIZE, TimeEntry};
use super::producer::{ProducerBatch, ProducerEntry, ProducerTable};
use super::segment;

/// Name of the snapshot file in a partition's directory.
pub(crate) const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
const VERSION: u32 = 1;

/// One segment as recorded at shutdown.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub(crate) base: i64,
    pub(crate) size: u64,
    pub(crate) max_timestamp: i64,
    pub(crate) offset_of_max_timestamp: i64,
    pub(crate) last_offset: Option<i64>,
}

/// One producer: id, epoch, recent batches (first seq, last seq, base, last offset).
type ProducerRow = (i64, i16, Vec<(i32, i32, i64, i64)>);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    version: u32,
    pub(crate) segments: Vec<SegmentMeta>,
    producers: Vec<ProducerRow>,
    /// Written when the log went offline (a file vanished under it): its log end offset
    /// holds whatever the directory looks like at the next open.
    #[serde(default)]
    pub(crate) offline: bool,
}

impl Snapshot {
    pub(crate) fn new(segments: Vec<SegmentMeta>, producers: &ProducerTable) -> Self {
        let producers = producers
            .iter()
            .map(|(&pid, e)| {
                let batches = e
                    .batches
                    .iter()
                    .map(|b| (b.first_seq, b.last_seq, b.base_offset, b.last_offset))
                    .collect();
                (pid, e.epoch, batches)
            })
            .collect();
        Snapshot {
            version: VERSION,
            segments,
            producers,
            offline: false,
        }
    }

    /// The log end offset when the snapshot was written.
    pub(crate) fn log_end_offset(&self) -> Option<i64> {
        self.segments
            .iter()
            .map(|m| m.last_offset.map_or(m.base, |l| l + 1))
            .max()
    }

    pub(crate) fn producers(&self) -> ProducerTable {
        let mut table = ProducerTable::default();
        for (pid, epoch, batches) in &self.producers {
            let batches: VecDeque<ProducerBatch> = batches
                .iter()
                .map(
                    |&(first_seq, last_seq, base_offset, last_offset)| ProducerBatch {
                        first_seq,
                        last_seq,
                        base_offset,
                        last_offset,
                    },
                )
                .collect();
            table.insert(
                *pid,
                ProducerEntry {
                    epoch: *epoch,
                    batches,
                },
            );
        }
        table
    }
}

/// Writes the snapshot (temp file, fsync, rename, fsync of the directory).
pub(crate) fn write(dir: &Path, snapshot: &Snapshot) -> Result<(), LogError> {
    let path = dir.join(CLEAN_SHUTDOWN_FILE);
    let json = serde_json::to_vec(snapshot).map_err(|e| LogError::io(&path, e.into()))?;
    segment::write_atomically(&path, &json)?;
    segment::sync_dir(dir)
}

/// Reads and removes the snapshot; `None` when there is none or it is unreadable.
pub(crate) fn take(dir: &Path) -> Result<Option<Snapshot>, LogError> {
    let path = dir.join(CLEAN_SHUTDOWN_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io(&path, e)),
    };
    segment::remove_file(&path)?;
    segment::sync_dir(dir)?;
    match serde_json::from_slice::<Snapshot>(&bytes) {
        Ok(s) if s.version == VERSION => Ok(Some(s)),
        Ok(_) | Err(_) => {
            tracing::warn!(file = %path.display(), "ignoring an unreadable clean-shutdown snapshot");
            Ok(None)
        }
    }
}

/// Loads a segment's index files and checks them against its recorded metadata; `None`
/// when they are missing or inconsistent (the caller then rebuilds from the log).
pub(crate) fn load_index(dir: &Path, meta: &SegmentMeta, interval: u64) -> Option<IndexBuilder> {
    let offsets = std::fs::read(segment::file_path(dir, meta.base, segment::INDEX_SUFFIX)).ok()?;
    let times = std::fs::read(segment::file_path(
        dir,
        meta.base,
        segment::TIME_INDEX_SUFFIX,
    ))
    .ok()?;
    if offsets.len() % OFFSET_ENTRY_SIZE != 0 || times.len() % TIME_ENTRY_SIZE != 0 {
        return None;
    }
    let span = meta.last_offset.map_or(0, |l| l - meta.base);
    let offsets: Vec<OffsetEntry> = offsets
        .chunks_exact(OFFSET_ENTRY_SIZE)
        .map(|c| OffsetEntry {
            rel_offset: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
            position: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let times: Vec<TimeEntry> = times
        .chunks_exact(TIME_ENTRY_SIZE)
        .map(|c| TimeEntry {
            timestamp: i64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
            rel_offset: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
        })
        .collect();
    let offsets_ok = offsets
        .windows(2)
        .all(|w| w[0].rel_offset < w[1].rel_offset && w[0].position < w[1].position)
        && offsets
            .iter()
            .all(|e| u64::from(e.position) < meta.size && i64::from(e.rel_offset) <= span);
    let times_ok = times
        .windows(2)
        .all(|w| w[0].timestamp < w[1].timestamp && w[0].rel_offset <= w[1].rel_offset)
        && times
            .iter()
            .all(|e| e.timestamp <= meta.max_timestamp && i64::from(e.rel_offset) <= span);
    if !offsets_ok || !times_ok {
        return None;
    }
    Some(IndexBuilder::restore(
        meta.base,
        interval,
        offsets,
        times,
        meta.size,
        meta.max_timestamp,
        meta.offset_of_max_timestamp,
    ))
}
