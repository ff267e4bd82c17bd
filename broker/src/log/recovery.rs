//! Opening a log: finding its segments, recovering from a crash, rebuilding state.
//!
//! At open every segment's batch headers are walked (headers only for the older,
//! fsynced segments; header and CRC32C of every batch for the last two segments, which
//! may hold writes that never reached the disk whole: the last takes the appends, the one
//! before may still have been in its background fsync after a roll). The log is truncated after the last whole
//! valid batch and a warning names the file, the position and the bytes cut. Checking the
//! whole last segment rather than only its tail after the last index entry costs one read
//! of it, and means a bit flipped anywhere in it is found before a reader could be handed
//! the damaged batch. The walk yields each segment's index entries by the same rules the
//! appender uses, so an `.index`/`.timeindex` file that disagrees (damaged, stale, or
//! behind because entries are written lazily) is rewritten; and it replays idempotent
//! producers' batches into the producer state. Files that are not ours are left alone with
//! a warning; leftovers of an interrupted compaction or checkpoint write are removed.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::Instant;

use tokio::sync::watch;

use super::batch::{self, BatchHeader};
use super::index::{self, IndexBuilder};
use super::leader_epoch::LeaderEpochCache;
use super::partition::{FlushState, PartitionLog, SegmentView, View, Writer};
use super::producer::ProducerTable;
use super::segment::{self, SegmentFile};
use super::snapshot::{self, SegmentMeta, Snapshot};
use super::{FdCache, LogConfig, LogDir, LogError};

/// Name of the file holding the log start offset set by DeleteRecords.
pub(crate) const LOG_START_FILE: &str = "log-start-offset";

/// Bytes read at a time while checking the last segment's batches.
const VERIFY_CHUNK: usize = 1024 * 1024;

/// Where an opened log belongs: its data directory, and whether it may use its reserve.
struct Placement {
    log_dir: Arc<LogDir>,
    may_use_reserve: bool,
}

pub(super) fn open(
    dir: &Path,
    config: LogConfig,
    log_dir: Arc<LogDir>,
    may_use_reserve: bool,
) -> Result<PartitionLog, LogError> {
    let placement = Placement {
        log_dir,
        may_use_reserve,
    };
    std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
    let mut log_bases = Vec::new();
    let mut index_bases = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            tracing::warn!(file = %path.display(), "ignoring a foreign file in a log directory");
            continue;
        };
        match segment::parse_file_name(name) {
            Some((base, segment::LOG_SUFFIX)) if path.is_file() => log_bases.push(base),
            Some((base, segment::INDEX_SUFFIX | segment::TIME_INDEX_SUFFIX)) => {
                index_bases.push((base, path))
            }
            Some((_, suffix)) if suffix.ends_with(segment::CLEANED_SUFFIX) => {
                tracing::info!(file = %path.display(), "removing what an interrupted compaction left");
                segment::remove_file(&path)?;
            }
            _ if name == LOG_START_FILE
                || name == snapshot::CLEAN_SHUTDOWN_FILE
                || name == super::leader_epoch::CHECKPOINT_FILE => {}
            _ if name == format!("{LOG_START_FILE}.tmp") => segment::remove_file(&path)?,
            _ => {
                tracing::warn!(file = %path.display(), "ignoring a foreign file in a log directory")
            }
        }
    }
    log_bases.sort_unstable();
    for (base, path) in index_bases {
        if log_bases.binary_search(&base).is_err() {
            tracing::warn!(file = %path.display(), "removing an index file without its segment");
            segment::remove_file(&path)?;
        }
    }

    let snapshot = snapshot::take(dir)?;
    // Segments the snapshot lists but the directory lacks were removed behind our back
    // (a damaged tail cut by recovery is not that: Kafka reuses those offsets too).
    let recorded_end = snapshot
        .as_ref()
        .filter(|s| {
            s.offline
                || s.segments
                    .iter()
                    .any(|m| log_bases.binary_search(&m.base).is_err())
        })
        .and_then(Snapshot::log_end_offset);
    let trusted = match snapshot {
        Some(s) if matches_directory(dir, &s, &log_bases) => Some(s),
        Some(_) => {
            tracing::warn!(dir = %dir.display(), "segments changed since the clean shutdown; recovering");
            None
        }
        None => None,
    };
    open_segments(dir, config, log_bases, trusted, recorded_end, placement)
}

/// Loads the segments (from the snapshot where trusted) and builds the handle. The log
/// end offset never goes below `recorded_end`, the one the last snapshot recorded: if
/// segments went missing since, a new segment starts there, so that offsets already handed
/// out (and perhaps committed by consumers) are never given to other records.
fn open_segments(
    dir: &Path,
    config: LogConfig,
    mut log_bases: Vec<i64>,
    trusted: Option<Snapshot>,
    recorded_end: Option<i64>,
    placement: Placement,
) -> Result<PartitionLog, LogError> {
    let checkpoint = read_log_start(dir)?;
    let mut producers = trusted
        .as_ref()
        .map_or_else(ProducerTable::default, Snapshot::producers);
    let mut segments = BTreeMap::new();
    let created = log_bases.is_empty();
    if created {
        log_bases.push(checkpoint.unwrap_or(0).max(0));
    }
    let mut next_expected = i64::MIN;
    let last_base = log_bases.last().copied().unwrap_or(0);
    for (i, &base) in log_bases.iter().enumerate() {
        // The last segment is always re-read and checked: it holds the newest writes.
        let restored = trusted
            .as_ref()
            .filter(|_| base != last_base)
            .and_then(|s| s.segments.get(i))
            .map(|meta| restore_segment(placement.log_dir.fds(), dir, meta, &config))
            .transpose()?
            .flatten();
        if let Some(seg) = restored {
            if let Some(last) = seg.last_offset {
                next_expected = last + 1;
            }
            segments.insert(base, seg);
            continue;
        }
        // Producers come from the snapshot when there is one; a segment whose indexes
        // failed their check is re-read for its indexes only.
        let mut scratch = ProducerTable::default();
        let table = if trusted.is_some() {
            &mut scratch
        } else {
            &mut producers
        };
        // The segment before the last may have been rolled shortly before a crash, its
        // fsync still running in the background: it gets the CRC32C check too.
        let verify = i + 2 >= log_bases.len();
        let is_last = base == last_base;
        let fds = placement.log_dir.fds();
        let seg = load_segment(
            fds,
            dir,
            base,
            is_last,
            verify,
            next_expected,
            &config,
            table,
        )?;
        let recorded = trusted.as_ref().and_then(|s| s.segments.get(i));
        if recorded.is_some_and(|meta| meta.size != seg.size) {
            // Damaged since the clean shutdown: the snapshot's producer state may refer to
            // what was cut, so recover everything from the log itself.
            tracing::warn!(dir = %dir.display(), "segment damaged since the clean shutdown; recovering");
            drop(segments);
            return open_segments(dir, config, log_bases, None, recorded_end, placement);
        }
        if let Some(last) = seg.last_offset {
            next_expected = last + 1;
        }
        segments.insert(base, seg);
    }
    let found_end = segments
        .values()
        .next_back()
        .map_or(0, |s| s.last_offset.map_or(s.file.base_offset, |l| l + 1));
    if let Some(recorded) = recorded_end.filter(|&r| r > found_end) {
        tracing::error!(
            dir = %dir.display(),
            recorded_log_end_offset = recorded,
            found_log_end_offset = found_end,
            "segments of this log are missing: the last snapshot recorded a larger log end \
             offset than the segments left hold; the log goes on from the recorded offset so \
             that no offset is handed out twice (the missing records are lost)"
        );
        // An empty segment left where the lost ones started would hold the log end back.
        let empty_last = segments
            .last_key_value()
            .filter(|(_, s)| s.size == 0)
            .map(|(&b, _)| b);
        if let Some(b) = empty_last {
            segments.remove(&b);
            for suffix in [
                segment::LOG_SUFFIX,
                segment::INDEX_SUFFIX,
                segment::TIME_INDEX_SUFFIX,
            ] {
                segment::remove_file(&segment::file_path(dir, b, suffix))?;
            }
        }
        let seg = super::partition::create_segment(
            placement.log_dir.fds(),
            dir,
            recorded,
            config.index_interval_bytes,
        )?;
        segments.insert(recorded, seg);
        segment::sync_dir(dir)?;
    } else if created {
        segment::sync_dir(dir)?;
    }

    let log_end = segments
        .values()
        .next_back()
        .map_or(0, |s| s.last_offset.map_or(s.file.base_offset, |l| l + 1));
    let first_base = segments.keys().next().copied().unwrap_or(0);
    let log_start = checkpoint
        .unwrap_or(first_base)
        .max(first_base)
        .min(log_end);

    let Some(active) = segments.values().next_back() else {
        unreachable!("a log always has an active segment");
    };
    let active_file = Arc::clone(&active.file);
    // What a crashed process wrote may still sit only in the page cache. After a clean
    // shutdown the snapshot (written after the close's fsync) vouches for it.
    if trusted.is_none() {
        active_file
            .sync_data()
            .map_err(|e| LogError::io(&active_file.path, e))?;
    }
    let active_size = active.size;
    let rolling_timestamp = rolling_timestamp(active)?;
    let offsets_written = active.index.offsets.len();
    let times_written = active.index.times.len();
    let writer = Writer {
        config,
        active: active_file,
        offsets_written,
        times_written,
        size: active_size,
        next_offset: log_end,
        rolling_timestamp,
        producers,
        unflushed_records: 0,
        closed: false,
        scratch: Vec::new(),
    };
    let (hw, _) = watch::channel(log_end);
    let (leo, _) = watch::channel(log_end);
    let epochs = recover_epochs(dir, log_start, log_end)?;
    Ok(PartitionLog {
        dir: dir.to_path_buf(),
        writer: Mutex::new(writer),
        view: RwLock::new(View {
            segments,
            log_start,
            log_end,
            // Kafka would read the replication-offset-checkpoint here; a partition with
            // one replica has committed everything it recovered.
            high_watermark: log_end,
        }),
        flush: Mutex::new(FlushState {
            flushed: log_end,
            leader: false,
            last_flush: Instant::now(),
            rolled: Vec::new(),
        }),
        flushed_cv: Condvar::new(),
        cleaner: Mutex::new(Default::default()),
        epochs: Mutex::new(epochs),
        hw,
        leo,
        offline: OnceLock::new(),
        deleted: AtomicBool::new(false),
        log_dir: placement.log_dir,
        may_use_reserve: placement.may_use_reserve,
    })
}

/// True when every segment the snapshot lists is there, and no other, at its recorded size.
fn matches_directory(dir: &Path, snapshot: &Snapshot, log_bases: &[i64]) -> bool {
    snapshot.segments.len() == log_bases.len()
        && snapshot
            .segments
            .iter()
            .zip(log_bases)
            .all(|(meta, &base)| {
                meta.base == base
                    && std::fs::metadata(segment::file_path(dir, base, segment::LOG_SUFFIX))
                        .is_ok_and(|m| m.len() == meta.size)
            })
}

/// A segment as the clean-shutdown snapshot and its index files describe it; `None` when
/// the index files fail their check.
fn restore_segment(
    fds: &Arc<FdCache>,
    dir: &Path,
    meta: &SegmentMeta,
    config: &LogConfig,
) -> Result<Option<SegmentView>, LogError> {
    let Some(index) = snapshot::load_index(dir, meta, config.index_interval_bytes) else {
        tracing::warn!(segment = meta.base, dir = %dir.display(), "index files fail their check; rebuilding");
        return Ok(None);
    };
    let path = segment::file_path(dir, meta.base, segment::LOG_SUFFIX);
    Ok(Some(SegmentView {
        file: Arc::new(SegmentFile::at_path(fds, meta.base, path)?),
        size: meta.size,
        index,
        last_offset: meta.last_offset,
    }))
}

/// Max timestamp of the active segment's first batch (for `segment.ms`).
fn rolling_timestamp(seg: &SegmentView) -> Result<Option<i64>, LogError> {
    let mut scanner = segment::HeaderScanner::new(&seg.file, 0, seg.size);
    Ok(scanner.next_header()?.map(|b| b.header.max_timestamp))
}

/// Opens one segment, truncating a damaged tail, and rebuilds its indexes if needed.
#[allow(clippy::too_many_arguments)]
fn load_segment(
    fds: &Arc<FdCache>,
    dir: &Path,
    base: i64,
    is_last: bool,
    verify: bool,
    mut next_expected: i64,
    config: &LogConfig,
    producers: &mut ProducerTable,
) -> Result<SegmentView, LogError> {
    let path = segment::file_path(dir, base, segment::LOG_SUFFIX);
    let file = segment::open_rw(&path)?;
    let file_len = file.metadata().map_err(|e| LogError::io(&path, e))?.len();
    let seg = SegmentFile::new(fds, base, path, file)?;
    let mut builder = IndexBuilder::new(base, config.index_interval_bytes);
    let mut last_offset = None;
    // The active segment is never compacted, so its offsets run without gaps from its
    // base; that catches a damaged `baseOffset`, which the CRC32C does not cover.
    if is_last {
        next_expected = base;
    }
    let mut on_batch = |pos: u64, h: &BatchHeader| -> bool {
        let in_order = if is_last {
            h.base_offset == next_expected
        } else {
            h.base_offset >= base && h.base_offset >= next_expected
        };
        if !in_order {
            return false;
        }
        builder.on_batch(pos, h.base_offset, h.max_timestamp, h.total_size() as u64);
        if h.has_sequence() {
            producers.apply(h, h.base_offset);
        }
        last_offset = Some(h.last_offset());
        next_expected = h.last_offset() + 1;
        true
    };
    let (valid_end, reason) = if verify {
        verify_batches(&seg, file_len, &mut on_batch)?
    } else {
        scan_headers(&seg, file_len, &mut on_batch)?
    };
    if valid_end < file_len {
        tracing::warn!(
            file = %seg.path.display(),
            position = valid_end,
            bytes = file_len - valid_end,
            reason,
            "truncating the log after its last whole valid batch"
        );
        seg.set_len(valid_end)
            .and_then(|_| seg.sync_all())
            .map_err(|e| LogError::io(&seg.path, e))?;
    }
    if !is_last {
        builder.on_roll();
    }
    check_index_file(
        dir,
        base,
        segment::INDEX_SUFFIX,
        &index::encode_offsets(&builder.offsets),
        is_last,
    )?;
    check_index_file(
        dir,
        base,
        segment::TIME_INDEX_SUFFIX,
        &index::encode_times(&builder.times),
        is_last,
    )?;
    Ok(SegmentView {
        file: Arc::new(seg),
        size: valid_end,
        index: builder,
        last_offset,
    })
}

type OnBatch<'a> = dyn FnMut(u64, &BatchHeader) -> bool + 'a;

/// Walks headers only; returns where the whole, plausible batches end.
fn scan_headers(
    seg: &SegmentFile,
    len: u64,
    on_batch: &mut OnBatch<'_>,
) -> Result<(u64, &'static str), LogError> {
    let mut scanner = segment::HeaderScanner::new(seg, 0, len);
    while let Some(b) = scanner.next_header()? {
        if !on_batch(b.position, &b.header) {
            return Ok((b.position, "offsets out of sequence"));
        }
    }
    Ok((scanner.position(), "torn or damaged batch"))
}

/// Reads every batch and checks its CRC32C; returns where the valid batches end.
fn verify_batches(
    seg: &SegmentFile,
    len: u64,
    on_batch: &mut OnBatch<'_>,
) -> Result<(u64, &'static str), LogError> {
    let mut buf = Vec::new();
    let mut buf_pos = 0u64;
    let mut pos = 0u64;
    loop {
        if pos + BatchHeader::SIZE as u64 > len {
            return Ok((pos, "torn batch header"));
        }
        let mut rel = (pos - buf_pos) as usize;
        let header_in_buf = pos >= buf_pos && rel + BatchHeader::SIZE <= buf.len();
        let header = match header_in_buf
            .then(|| BatchHeader::parse(&buf[rel..]))
            .flatten()
        {
            Some(h) => h,
            None => {
                let n = (len - pos).min(VERIFY_CHUNK as u64) as usize;
                buf.resize(n, 0);
                seg.read_at(&mut buf, pos)?;
                buf_pos = pos;
                rel = 0;
                match BatchHeader::parse(&buf) {
                    Some(h) => h,
                    None => return Ok((pos, "torn batch header")),
                }
            }
        };
        if header.check_shape().is_err() {
            return Ok((pos, "damaged batch header"));
        }
        let size = header.total_size();
        if pos + size as u64 > len {
            return Ok((pos, "torn batch"));
        }
        if rel + size > buf.len() {
            let n = (len - pos).min(VERIFY_CHUNK.max(size) as u64) as usize;
            buf.resize(n, 0);
            seg.read_at(&mut buf, pos)?;
            buf_pos = pos;
            rel = 0;
        }
        if !batch::crc_matches(&buf[rel..rel + size], &header) {
            return Ok((pos, "CRC32C mismatch"));
        }
        if !on_batch(pos, &header) {
            return Ok((pos, "offsets out of sequence"));
        }
        pos += size as u64;
        if pos == len {
            return Ok((pos, ""));
        }
    }
}

/// Rewrites an index file whose content is not what the log says it should be.
fn check_index_file(
    dir: &Path,
    base: i64,
    suffix: &str,
    expected: &[u8],
    is_active: bool,
) -> Result<(), LogError> {
    let path = segment::file_path(dir, base, suffix);
    let actual = match std::fs::read(&path) {
        Ok(a) => a,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(LogError::io(&path, e)),
    };
    if actual == expected {
        return Ok(());
    }
    // The active segment's entries are written lazily, so a shorter file is normal.
    let lagging = is_active && expected.starts_with(&actual);
    if !lagging && !actual.is_empty() {
        tracing::warn!(file = %path.display(), "index disagrees with the log; rebuilding it");
    }
    let file = File::create(&path).map_err(|e| LogError::io(&path, e))?;
    // A clean-shutdown snapshot may later vouch for this file, so it must be on disk.
    file.write_all_at(expected, 0)
        .and_then(|_| file.sync_data())
        .map_err(|e| LogError::io(&path, e))
}

/// Reads the log start offset checkpoint, if there is one.
fn read_log_start(dir: &Path) -> Result<Option<i64>, LogError> {
    let path = dir.join(LOG_START_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => match s.trim().parse() {
            Ok(v) => Ok(Some(v)),
            Err(_) => {
                tracing::warn!(file = %path.display(), "ignoring an unreadable log start offset");
                Ok(None)
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LogError::io(&path, e)),
    }
}

/// Persists the log start offset (temp file, fsync, rename, fsync of the directory).
pub(super) fn write_log_start(dir: &Path, offset: i64) -> Result<(), LogError> {
    segment::write_atomically(&dir.join(LOG_START_FILE), format!("{offset}\n").as_bytes())?;
    segment::sync_dir(dir)
}

/// The log's leader-epoch cache, cut to what recovery kept: an epoch whose first records
/// were lost in a crash, or removed by retention, must not be answered.
fn recover_epochs(dir: &Path, log_start: i64, log_end: i64) -> Result<LeaderEpochCache, LogError> {
    let mut epochs = match LeaderEpochCache::load(dir) {
        Ok(epochs) => epochs,
        Err(e @ LogError::CorruptSegment { .. }) => {
            // Only OffsetForLeaderEpoch answers depend on it, and an empty cache answers
            // "unknown", which sends a follower back to the high watermark: safe.
            tracing::warn!(dir = %dir.display(), "ignoring a damaged leader-epoch cache: {e}");
            LeaderEpochCache::empty(dir)
        }
        Err(e) => return Err(e),
    };
    epochs.truncate_from_end(log_end)?;
    epochs.truncate_from_start(log_start)?;
    Ok(epochs)
}
