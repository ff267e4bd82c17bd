//! [`PartitionLog`]: the handle through which everything reads and writes one partition.
//!
//! Every method is blocking file I/O and must be called from a blocking context
//! (`spawn_blocking` or a dedicated thread), never directly on an async worker. The handle
//! is `Send + Sync` and shared as `Arc<PartitionLog>`.
//!
//! Locking: appends are serialised by the writer mutex, which is held across the one
//! `pwrite` of the caller's bytes. What readers need (the segments, their visible sizes
//! and indexes, the offsets) lives in a separate `RwLock`ed view that the writer updates
//! only after its write completed, so a reader never sees half an append, takes the lock
//! only to find its file and position, and then `pread`s outside any lock. Fsync has its
//! own mutex and condition variable (group commit, see [`PartitionLog::flush_to`]).
//! Maintenance (retention, compaction, DeleteRecords) is serialised by a third mutex.
//! Lock order: cleaner, then writer, then view, then flush.
//!
//! Two offsets end the log: the *log end offset* (LEO), the offset the next appended record
//! gets, and the *high watermark* (HW), below which records are *committed* (held by every
//! in-sync replica) and visible to consumers. The log moves its LEO as it appends; the HW
//! only moves when its owner says so ([`PartitionLog::advance_high_watermark`]): the
//! replica layer, once the in-sync replicas have the records. Always log start offset <= HW
//! <= LEO. As Kafka does for a partition it leads alone, a log that is its partition's only
//! copy commits at once ([`PartitionLog::append`]). Kafka checkpoints the HW
//! (`replication-offset-checkpoint`); strand does not yet, and opens a log with HW = the
//! recovered LEO, which is right while a partition has one replica.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, RwLockReadGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::watch;

use super::batch::{self, BatchHeader};
use super::index::{self, IndexBuilder, OFFSET_ENTRY_SIZE, TIME_ENTRY_SIZE};
use super::leader_epoch::LeaderEpochCache;
use super::producer::{self, ProducerEntry, ProducerTable, SequenceCheck};
use super::segment::{self, HeaderScanner, SegmentFile};
use super::snapshot::{self, SegmentMeta, Snapshot};
use super::{FdCache, LogConfig, LogDir, LogError};

/// The outcome of an append: the offsets the log assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record appended.
    pub base_offset: i64,
    /// Offset given to the last record appended.
    pub last_offset: i64,
    /// Largest timestamp among the appended records.
    pub max_timestamp: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// True when the batch was a retry of an idempotent producer's batch already in the
    /// log: nothing was written and the offsets are the original ones.
    pub duplicate: bool,
}

/// How an append treats the batches' offsets.
#[derive(Debug, Clone, Copy)]
enum AppendMode {
    /// Assigns offsets from the log end offset (and stamps the leader epoch, if given).
    Assign { leader_epoch: Option<i32> },
    /// Keeps the leader's offsets and epochs (a follower's copy).
    Follower,
}

/// How far a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchIsolation {
    /// Up to the high watermark: what consumers see (committed records only).
    HighWatermark,
    /// Up to the log end offset: what a follower replicates.
    LogEnd,
}

/// Whole stored batches returned by a read.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Batches exactly as stored, starting with the one that contains the offset asked.
    pub records: Bytes,
    /// High watermark at the time of the read.
    pub high_watermark: i64,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
}

/// One partition's log: segments on disk and the state needed to append and read.
#[derive(Debug)]
pub struct PartitionLog {
    pub(super) dir: PathBuf,
    pub(super) writer: Mutex<Writer>,
    pub(super) view: RwLock<View>,
    pub(super) flush: Mutex<FlushState>,
    pub(super) flushed_cv: Condvar,
    pub(super) cleaner: Mutex<super::compaction::CleanerState>,
    /// Where each leader epoch began (`leader-epoch-checkpoint`); taken after every other
    /// lock, and never held while taking one.
    pub(super) epochs: Mutex<LeaderEpochCache>,
    /// Announces every move of the high watermark (Fetch requests that wait for data).
    pub(super) hw: watch::Sender<i64>,
    /// Announces every move of the log end offset (followers' fetches that wait for data).
    pub(super) leo: watch::Sender<i64>,
    /// Set once a file of the log is found deleted or replaced under it: the log is then
    /// offline (see [`PartitionLog::check_files`]).
    pub(super) offline: OnceLock<String>,
    /// Set by [`PartitionLog::delete`]: its files go on purpose, which is no failure.
    pub(super) deleted: AtomicBool,
    /// The data directory: free space, its reserve, failures reported to `/health`.
    pub(super) log_dir: Arc<LogDir>,
    /// Internal topics may write into the log dir's reserve.
    pub(super) may_use_reserve: bool,
}

/// What readers see: segments by base offset and the log's offsets.
#[derive(Debug)]
pub(super) struct View {
    pub(super) segments: BTreeMap<i64, SegmentView>,
    pub(super) log_start: i64,
    pub(super) log_end: i64,
    /// Offsets below this are committed; `log_start <= high_watermark <= log_end`.
    pub(super) high_watermark: i64,
}

/// One segment as readers see it.
#[derive(Debug)]
pub(super) struct SegmentView {
    pub(super) file: Arc<SegmentFile>,
    /// Bytes of whole batches; anything beyond is an append in progress.
    pub(super) size: u64,
    pub(super) index: IndexBuilder,
    /// Offset of the last record, `None` for an empty segment.
    pub(super) last_offset: Option<i64>,
}

/// State of the append path, behind the writer mutex.
#[derive(Debug)]
pub(super) struct Writer {
    pub(super) config: LogConfig,
    pub(super) active: Arc<SegmentFile>,
    /// Entries of the active segment's indexes already written to their files.
    pub(super) offsets_written: usize,
    pub(super) times_written: usize,
    pub(super) size: u64,
    pub(super) next_offset: i64,
    /// Max timestamp of the active segment's first batch, for `segment.ms`.
    pub(super) rolling_timestamp: Option<i64>,
    pub(super) producers: ProducerTable,
    pub(super) unflushed_records: i64,
    pub(super) closed: bool,
    pub(super) scratch: Vec<u8>,
}

/// Group commit state.
#[derive(Debug)]
pub(super) struct FlushState {
    /// Every offset below this is fsynced.
    pub(super) flushed: i64,
    /// A caller is running fsync; others wait on the condition variable.
    pub(super) leader: bool,
    pub(super) last_flush: Instant,
    /// Rolled segments whose fsync has not been seen to complete, each with the flag its
    /// background fsync sets when done (so that deleted segments' files are let go).
    pub(super) rolled: Vec<(Arc<SegmentFile>, Arc<AtomicBool>)>,
}

/// Index entries written to the files at a time, so appends rarely touch them.
const INDEX_WRITE_BATCH: usize = 512;

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PartitionLog {
    /// Opens (creating if missing) the log in `dir`, recovering its tail after a crash.
    pub fn open(dir: &Path, config: LogConfig) -> Result<PartitionLog, LogError> {
        let log_dir = Arc::new(LogDir::new(dir, 0));
        super::recovery::open(dir, config, log_dir, true)
    }

    /// Opens the log in `dir` inside the broker's data directory `log_dir`, whose free
    /// space and reserve its appends respect (`may_use_reserve` for internal topics) and
    /// to which it reports write failures.
    pub fn open_in(
        log_dir: &Arc<LogDir>,
        dir: &Path,
        config: LogConfig,
        may_use_reserve: bool,
    ) -> Result<PartitionLog, LogError> {
        super::recovery::open(dir, config, Arc::clone(log_dir), may_use_reserve)
    }

    pub(super) fn view(&self) -> RwLockReadGuard<'_, View> {
        self.view.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn view_mut(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.view.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The directory holding this log's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Validates and appends one or more concatenated RecordBatch v2, assigning offsets by
    /// rewriting each `baseOffset` in place; nothing is written if any batch is bad. The
    /// log is taken to be its partition's only copy: the high watermark moves to the new
    /// log end offset at once (the internal topics' writers and tools; replicated
    /// partitions append through the replica layer with [`PartitionLog::append_uncommitted`]).
    pub fn append(&self, batches: &mut [u8]) -> Result<AppendInfo, LogError> {
        let info = self.append_uncommitted(batches)?;
        if !info.duplicate {
            self.advance_high_watermark(info.last_offset + 1);
        }
        Ok(info)
    }

    /// Like [`PartitionLog::append`], but leaves the high watermark where it is: the
    /// records stay invisible to consumers until [`PartitionLog::advance_high_watermark`]
    /// passes them (once the in-sync replicas have them).
    pub fn append_uncommitted(&self, batches: &mut [u8]) -> Result<AppendInfo, LogError> {
        self.append_reported(batches, AppendMode::Assign { leader_epoch: None })
    }

    /// Appends as the partition's leader in `leader_epoch`: like
    /// [`PartitionLog::append_uncommitted`], after stamping the epoch into each batch's
    /// `partitionLeaderEpoch` (outside the CRC), so that followers and the leader-epoch
    /// cache know which leader wrote what.
    pub fn append_as_leader(
        &self,
        batches: &mut [u8],
        leader_epoch: i32,
    ) -> Result<AppendInfo, LogError> {
        self.append_reported(
            batches,
            AppendMode::Assign {
                leader_epoch: Some(leader_epoch),
            },
        )
    }

    /// Appends batches fetched from the partition's leader as they are: their offsets and
    /// leader epochs are the leader's (no offset is assigned, no sequence checked; the
    /// epochs feed the leader-epoch cache and idempotent producers' batches the producer
    /// state). The first batch may not start below the log end offset; one starting
    /// above it (the leader's log was compacted) starts a new segment there. Leaves the
    /// high watermark where it is.
    pub fn append_as_follower(&self, batches: &mut [u8]) -> Result<AppendInfo, LogError> {
        // Batches of a compacted log may leave offsets out between them: each run of
        // contiguous batches is appended on its own, a gap starting a new segment.
        let mut runs = Vec::new();
        let mut start = 0;
        let mut expected = None;
        for (pos, h) in batch::headers(batches) {
            if expected.is_some_and(|e| h.base_offset != e) {
                runs.push(start..pos);
                start = pos;
            }
            expected = Some(h.last_offset() + 1);
        }
        runs.push(start..batches.len());
        let mut info: Option<AppendInfo> = None;
        for run in runs {
            let done = self.append_reported(&mut batches[run], AppendMode::Follower)?;
            info = Some(match info {
                None => done,
                Some(first) => AppendInfo {
                    last_offset: done.last_offset,
                    max_timestamp: first.max_timestamp.max(done.max_timestamp),
                    log_start_offset: done.log_start_offset,
                    ..first
                },
            });
        }
        info.ok_or_else(|| LogError::CorruptBatch {
            position: 0,
            reason: "no record batch".into(),
        })
    }

    fn append_reported(
        &self,
        batches: &mut [u8],
        mode: AppendMode,
    ) -> Result<AppendInfo, LogError> {
        let len = batches.len() as u64;
        let result = self.append_unreported(batches, mode);
        match &result {
            Ok(info) if !info.duplicate => self.log_dir.appended(&self.dir, len),
            Err(e @ LogError::Io { .. }) => self.log_dir.write_failed(&self.dir, e),
            _ => {}
        }
        result
    }

    fn append_unreported(
        &self,
        batches: &mut [u8],
        mode: AppendMode,
    ) -> Result<AppendInfo, LogError> {
        let count = batch::validate(batches)?;
        let mut w = lock(&self.writer);
        if w.closed {
            return Err(LogError::Closed {
                dir: self.dir.clone(),
            });
        }
        self.check_online()?;
        let (assign, leader_epoch) = match mode {
            AppendMode::Assign { leader_epoch } => (true, leader_epoch),
            AppendMode::Follower => (false, None),
        };
        if assign {
            if let Some(dup) = self.check_sequences(&w, batches, count)? {
                return Ok(dup);
            }
        } else {
            let first = BatchHeader::parse(batches).map_or(w.next_offset, |h| h.base_offset);
            if first < w.next_offset {
                return Err(LogError::UnexpectedAppendOffset {
                    dir: self.dir.clone(),
                    offset: first,
                    log_end_offset: w.next_offset,
                });
            }
            if first > w.next_offset {
                // The leader's log has no records in between (compaction): a new segment
                // starts at the batch, so that every segment's offsets run from its base.
                w.next_offset = first;
                self.view_mut().log_end = first;
                self.roll(&mut w)?;
            }
        }
        let len = batches.len() as u64;
        self.log_dir.admit(len, self.may_use_reserve)?;
        let mut records = 0i64;
        let mut max_ts = i64::MIN;
        for (_, h) in batch::headers(batches) {
            records += i64::from(h.record_count);
            max_ts = max_ts.max(h.max_timestamp);
        }
        if self.should_roll(&w, len, records, max_ts) {
            self.roll(&mut w)?;
        }

        let base = w.next_offset;
        let mut next = base;
        let mut pos = 0;
        while pos < batches.len() {
            let Some(h) = BatchHeader::parse(&batches[pos..]) else {
                break;
            };
            if assign {
                batch::set_base_offset(&mut batches[pos..], next);
            }
            if let Some(epoch) = leader_epoch {
                batch::set_partition_leader_epoch(&mut batches[pos..], epoch);
            }
            next += i64::from(h.last_offset_delta) + 1;
            pos += h.total_size();
        }
        // Before the data: a crash in between leaves an entry past the log end, which
        // recovery cuts, never data whose epoch the cache does not know.
        {
            let mut epochs = lock(&self.epochs);
            for (_, h) in batch::headers(batches) {
                epochs.assign(h.partition_leader_epoch, h.base_offset)?;
            }
        }

        let at = w.size;
        if let Err(e) = w.active.write_all_at(batches, at) {
            // Leave no partial batch behind: the next append would write after it.
            if let Err(t) = w.active.set_len(at) {
                tracing::error!(file = %w.active.path.display(), error = %t,
                    "could not truncate a failed append; recovery will at restart");
            }
            return Err(LogError::io(&w.active.path, e));
        }

        let mut pending_index = 0;
        let log_start;
        {
            let mut v = self.view_mut();
            let active_base = w.active.base_offset;
            if let Some(seg) = v.segments.get_mut(&active_base) {
                for (p, h) in batch::headers(batches) {
                    seg.index.on_batch(
                        at + p as u64,
                        h.base_offset,
                        h.max_timestamp,
                        h.total_size() as u64,
                    );
                }
                seg.size = at + len;
                seg.last_offset = Some(next - 1);
                pending_index = seg.index.offsets.len() - w.offsets_written;
            }
            v.log_end = next;
            log_start = v.log_start;
        }
        for (_, h) in batch::headers(batches) {
            if h.has_sequence() {
                w.producers.apply(&h, h.base_offset);
            }
        }
        w.size = at + len;
        w.next_offset = next;
        if w.rolling_timestamp.is_none() {
            w.rolling_timestamp = Some(max_ts);
        }
        w.unflushed_records += records;
        if pending_index >= INDEX_WRITE_BATCH {
            self.write_index_entries(&mut w)?;
        }
        let flush_now = w.unflushed_records >= w.config.flush_messages
            || (w.config.flush_ms < i64::MAX
                && lock(&self.flush).last_flush.elapsed().as_millis() as i64 >= w.config.flush_ms);
        drop(w);
        self.leo.send_replace(next);
        if flush_now {
            self.flush_to(next - 1)?;
        }
        Ok(AppendInfo {
            base_offset: base,
            last_offset: next - 1,
            max_timestamp: max_ts,
            log_start_offset: log_start,
            duplicate: false,
        })
    }

    /// Checks idempotent producers' sequence numbers; `Some` when the append is a retry.
    fn check_sequences(
        &self,
        w: &Writer,
        batches: &[u8],
        count: usize,
    ) -> Result<Option<AppendInfo>, LogError> {
        if count == 1 {
            let Some(h) = BatchHeader::parse(batches) else {
                return Ok(None);
            };
            if !h.has_sequence() {
                return Ok(None);
            }
            return match producer::check(w.producers.get(h.producer_id), &h)? {
                SequenceCheck::Accept => Ok(None),
                SequenceCheck::Duplicate(b) => Ok(Some(AppendInfo {
                    base_offset: b.base_offset,
                    last_offset: b.last_offset,
                    max_timestamp: h.max_timestamp,
                    log_start_offset: self.log_start_offset(),
                    duplicate: true,
                })),
            };
        }
        // Several batches: later ones are checked against the state earlier ones leave.
        let mut scratch: HashMap<i64, Option<ProducerEntry>> = HashMap::new();
        let mut next = w.next_offset;
        for (_, h) in batch::headers(batches) {
            if h.has_sequence() {
                let known = scratch
                    .entry(h.producer_id)
                    .or_insert_with(|| w.producers.get(h.producer_id).cloned());
                match producer::check(known.as_ref(), &h)? {
                    SequenceCheck::Accept => {
                        producer::apply_to(known.get_or_insert_with(Default::default), &h, next)
                    }
                    SequenceCheck::Duplicate(_) => {
                        return Err(LogError::DuplicateSequence {
                            producer_id: h.producer_id,
                            sequence: h.base_sequence,
                        });
                    }
                }
            }
            next += i64::from(h.last_offset_delta) + 1;
        }
        Ok(None)
    }

    fn should_roll(&self, w: &Writer, len: u64, records: i64, max_ts: i64) -> bool {
        if w.size == 0 {
            return false;
        }
        let segment_bytes = w.config.segment_bytes.clamp(1, i32::MAX as u64);
        let too_big = w.size + len > segment_bytes;
        let too_old = w
            .rolling_timestamp
            .is_some_and(|t| max_ts.saturating_sub(t) > w.config.segment_ms);
        let offsets_overflow = w.next_offset + records - w.active.base_offset > i32::MAX as i64;
        too_big || too_old || offsets_overflow
    }

    /// Makes the active segment read-only (fsynced, final time index entry) and starts a
    /// new one at the log end offset.
    pub(super) fn roll(&self, w: &mut Writer) -> Result<(), LogError> {
        let old_base = w.active.base_offset;
        if let Some(seg) = self.view_mut().segments.get_mut(&old_base) {
            seg.index.on_roll();
        }
        self.write_index_entries(w)?;
        let base = w.next_offset;
        let seg = create_segment(
            self.log_dir.fds(),
            &self.dir,
            base,
            w.config.index_interval_bytes,
        )?;
        segment::sync_dir(&self.dir)?;
        let old = std::mem::replace(&mut w.active, Arc::clone(&seg.file));
        let dir = self.dir.clone();
        // Listed before the view switches to the new segment: a flush that sees the new
        // segment then also sees the old one still to be fsynced (see flush_to).
        let synced = Arc::new(AtomicBool::new(false));
        {
            let mut fs = lock(&self.flush);
            fs.rolled.retain(|(_, done)| !done.load(Ordering::Acquire));
            fs.rolled.push((Arc::clone(&old), Arc::clone(&synced)));
        }
        w.offsets_written = 0;
        w.times_written = 0;
        w.size = 0;
        w.rolling_timestamp = None;
        self.view_mut().segments.insert(base, seg);
        // The rolled segment is fsynced off the append path (as Kafka does), so appends
        // do not wait for a whole segment to reach the disk; flush_to covers it as well.
        let inline = Arc::clone(&old);
        let background_synced = Arc::clone(&synced);
        let sync = move || {
            let result = old
                .sync_data()
                .and_then(|_| sync_index_files(&dir, old.base_offset));
            if result.is_ok() {
                background_synced.store(true, Ordering::Release);
            }
            if let Err(e) = result {
                tracing::warn!(segment = %old.path.display(), error = %e,
                    "fsync of a rolled segment failed; the next flush retries it");
            }
        };
        let spawned = std::thread::Builder::new()
            .name("strand-log-roll".into())
            .spawn(sync);
        if spawned.is_err() {
            inline
                .sync_data()
                .map_err(|e| LogError::io(&inline.path, e))?;
            synced.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Writes the active segment's index entries not yet in their files.
    pub(super) fn write_index_entries(&self, w: &mut Writer) -> Result<(), LogError> {
        let base = w.active.base_offset;
        let mut buf = std::mem::take(&mut w.scratch);
        buf.clear();
        let (offsets_total, times_start) = {
            let v = self.view();
            let Some(seg) = v.segments.get(&base) else {
                return Ok(());
            };
            for e in &seg.index.offsets[w.offsets_written.min(seg.index.offsets.len())..] {
                e.encode(&mut buf);
            }
            let times_start = buf.len();
            for e in &seg.index.times[w.times_written.min(seg.index.times.len())..] {
                e.encode(&mut buf);
            }
            (seg.index.offsets.len(), times_start)
        };
        // Opened for the write only: entries come every `index.interval.bytes` and are
        // written 512 at a time, so an idle partition holds no index descriptors.
        for (suffix, bytes, at) in [
            (
                segment::INDEX_SUFFIX,
                &buf[..times_start],
                (w.offsets_written * OFFSET_ENTRY_SIZE) as u64,
            ),
            (
                segment::TIME_INDEX_SUFFIX,
                &buf[times_start..],
                (w.times_written * TIME_ENTRY_SIZE) as u64,
            ),
        ] {
            if bytes.is_empty() {
                continue;
            }
            let path = segment::file_path(&self.dir, base, suffix);
            segment::open_rw(&path)?
                .write_all_at(bytes, at)
                .map_err(|e| LogError::io(&path, e))?;
        }
        w.offsets_written = offsets_total;
        w.times_written += (buf.len() - times_start) / TIME_ENTRY_SIZE;
        w.scratch = buf;
        Ok(())
    }

    /// Reads committed batches (below the high watermark), starting with the one containing
    /// `offset`, up to `max_bytes` (the first batch is returned whole even when larger, if
    /// `min_one` is set): what a consumer may see.
    ///
    /// Batches come from one segment per read, as in Kafka; the caller reads on from the
    /// offset after the last batch returned.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<ReadResult, LogError> {
        self.read_to(offset, max_bytes, min_one, FetchIsolation::HighWatermark)
    }

    /// Reads whole batches like [`PartitionLog::read`], up to the high watermark or the log
    /// end offset as `isolation` says. An offset beyond the log end offset is out of
    /// range; one between the high watermark and the log end offset reads nothing (as in
    /// Kafka, a consumer ahead of the high watermark waits rather than fails).
    pub fn read_to(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        isolation: FetchIsolation,
    ) -> Result<ReadResult, LogError> {
        self.check_online()?;
        let (mut seg, mut pos, mut visible, hw, lso, limit) = {
            let v = self.view();
            if offset < v.log_start || offset > v.log_end {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset: v.log_start,
                    log_end_offset: v.log_end,
                });
            }
            let limit = match isolation {
                FetchIsolation::HighWatermark => v.high_watermark,
                FetchIsolation::LogEnd => v.log_end,
            };
            let empty = ReadResult {
                records: Bytes::new(),
                high_watermark: v.high_watermark,
                log_start_offset: v.log_start,
            };
            if offset >= limit {
                return Ok(empty);
            }
            let Some((&base, s)) = v.segments.range(..=offset).next_back() else {
                return Ok(empty);
            };
            let pos = index::lookup_offset(&s.index.offsets, base, offset);
            (
                Arc::clone(&s.file),
                pos,
                s.size,
                v.high_watermark,
                v.log_start,
                limit,
            )
        };
        loop {
            if let Some(found) = find_batch(&seg, pos, visible, offset)? {
                let records = if found.1.last_offset() >= limit {
                    Bytes::new()
                } else {
                    read_batches(&seg, found, visible, max_bytes, min_one, limit)?
                };
                return Ok(ReadResult {
                    records,
                    high_watermark: hw,
                    log_start_offset: lso,
                });
            }
            // Nothing at or after `offset` in this segment (compaction left a gap at its
            // end): go on with the next one, if it starts below the limit.
            let v = self.view();
            let next = v
                .segments
                .range(seg.base_offset + 1..limit.max(seg.base_offset + 1))
                .next()
                .map(|(_, s)| (Arc::clone(&s.file), s.size));
            let Some((file, size)) = next else {
                return Ok(ReadResult {
                    records: Bytes::new(),
                    high_watermark: hw,
                    log_start_offset: lso,
                });
            };
            (seg, pos, visible) = (file, 0, size);
        }
    }

    /// First offset still readable.
    pub fn log_start_offset(&self) -> i64 {
        self.view().log_start
    }

    /// Where leader epoch `requested` ends in this log, as OffsetForLeaderEpoch answers
    /// it (see [`LeaderEpochCache::end_offset_for`]): the latest epoch ends at the log end
    /// offset.
    pub fn end_offset_for_epoch(&self, requested: i32) -> (i32, i64) {
        let log_end = self.log_end_offset();
        lock(&self.epochs).end_offset_for(requested, log_end)
    }

    /// Records that leader epoch `epoch` begins at the log end offset, as a new leader
    /// does before its first append (Kafka's `maybeAssignEpochStartOffset`).
    pub fn assign_epoch_start(&self, epoch: i32) -> Result<(), LogError> {
        let _w = lock(&self.writer);
        let log_end = self.log_end_offset();
        lock(&self.epochs).assign(epoch, log_end)?;
        Ok(())
    }

    /// The latest leader epoch that wrote to this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        lock(&self.epochs).latest_epoch()
    }

    /// Offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.view().log_end
    }

    /// Offset up to which consumers may read: every record below it is committed.
    pub fn high_watermark(&self) -> i64 {
        self.view().high_watermark
    }

    /// Moves the high watermark forward to `offset`, never past the log end offset and
    /// never back; returns the high watermark after the move, and tells subscribers when
    /// it moved.
    pub fn advance_high_watermark(&self, offset: i64) -> i64 {
        let (moved, hw) = {
            let mut v = self.view_mut();
            let target = offset.min(v.log_end);
            if target > v.high_watermark {
                v.high_watermark = target;
                (true, target)
            } else {
                (false, v.high_watermark)
            }
        };
        if moved {
            // Sent after the view changed: a woken reader finds the records.
            self.hw.send_if_modified(|current| {
                let changed = *current < hw;
                *current = (*current).max(hw);
                changed
            });
        }
        hw
    }

    /// Notifications of log end offset changes, for followers' fetches that wait for data.
    pub fn subscribe_log_end(&self) -> watch::Receiver<i64> {
        self.leo.subscribe()
    }

    /// Notifications of high watermark changes, for Fetch requests that wait for data.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.hw.subscribe()
    }

    /// Every offset below this is durable (fsynced).
    pub fn flushed_offset(&self) -> i64 {
        lock(&self.flush).flushed
    }

    /// Blocks until every record up to and including `offset` (or up to the log end, if
    /// `offset` is beyond it) is fsynced. Group commit: one caller fsyncs on behalf of all
    /// appends made so far, while callers arriving meanwhile wait for it and then find
    /// their offsets covered or run the next fsync.
    pub fn flush_to(&self, offset: i64) -> Result<(), LogError> {
        let target = offset.saturating_add(1).min(self.log_end_offset());
        let mut fs = lock(&self.flush);
        loop {
            // Checked before the flushed offset: what was appended after the active
            // segment vanished went into a deleted file and must not be acknowledged.
            self.check_online()?;
            if fs.flushed >= target {
                return Ok(());
            }
            if fs.leader {
                fs = self
                    .flushed_cv
                    .wait(fs)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            fs.leader = true;
            drop(fs);
            let (file, end) = {
                let v = self.view();
                let active = v.segments.values().next_back().map(|s| Arc::clone(&s.file));
                (active, v.log_end)
            };
            // Read after the view: see `roll`. Older segments are already on disk.
            let rolled: Vec<Arc<SegmentFile>> = lock(&self.flush)
                .rolled
                .iter()
                .filter(|(_, done)| !done.load(Ordering::Acquire))
                .map(|(f, _)| Arc::clone(f))
                .collect();
            let result = rolled
                .iter()
                .chain(&file)
                .try_for_each(|f| f.sync_data().map_err(|e| LogError::io(&f.path, e)))
                // An fsync of a deleted file succeeds; only its path tells it is gone.
                .and_then(|()| file.as_deref().map_or(Ok(()), |f| self.check_active(f)));
            fs = lock(&self.flush);
            fs.leader = false;
            if result.is_ok() {
                fs.flushed = fs.flushed.max(end);
                fs.last_flush = Instant::now();
                fs.rolled.retain(|(r, done)| {
                    !done.load(Ordering::Acquire) && !rolled.iter().any(|s| Arc::ptr_eq(s, r))
                });
            }
            self.flushed_cv.notify_all();
            if let Err(e @ LogError::Io { .. }) = &result {
                self.log_dir.write_failed(&self.dir, e);
            }
            result?;
        }
    }

    /// Fsyncs everything appended so far.
    pub fn flush(&self) -> Result<(), LogError> {
        self.flush_to(i64::MAX)
    }

    /// Checks that the active segment's path still names the file the log writes to; if
    /// it was deleted or replaced (by hand, by a tool cleaning the disk), takes the log
    /// offline with a loud error rather than acknowledge writes that the next start would
    /// not find (it would then hand out the same offsets again). Run by the background
    /// flusher and by every fsync before acks=all is answered.
    pub fn check_files(&self) -> Result<(), LogError> {
        self.check_online()?;
        let active = self
            .view()
            .segments
            .values()
            .next_back()
            .map(|s| Arc::clone(&s.file));
        active.map_or(Ok(()), |f| self.check_active(&f))
    }

    /// Why the log is offline, if it is.
    pub fn offline_reason(&self) -> Option<&str> {
        self.offline.get().map(String::as_str)
    }

    pub(super) fn check_online(&self) -> Result<(), LogError> {
        match self.offline.get() {
            Some(reason) => Err(LogError::Offline {
                dir: self.dir.clone(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn check_active(&self, active: &SegmentFile) -> Result<(), LogError> {
        if self.deleted.load(Ordering::Acquire) {
            return Ok(());
        }
        match active.check_still_at_path() {
            Ok(()) => Ok(()),
            Err(reason) => Err(self.take_offline(reason)),
        }
    }

    /// Marks the log offline (once, loudly) and records its log end offset in the
    /// directory so that the next start does not reuse the offsets it handed out.
    fn take_offline(&self, reason: String) -> LogError {
        if self.offline.set(reason.clone()).is_ok() {
            self.log_dir.went_offline(&self.dir, &reason);
            tracing::error!(
                dir = %self.dir.display(),
                log_end_offset = self.log_end_offset(),
                "{reason} while the broker was running: this partition is offline (produce \
                 and fetch answer KAFKA_STORAGE_ERROR) until its files are restored and \
                 strand restarts; appends made since then went into the lost file"
            );
            if let Err(e) = self.write_snapshot(&ProducerTable::default(), true) {
                tracing::error!(dir = %self.dir.display(), error = %e,
                    "could not record the log end offset of the offline log");
            }
        }
        LogError::Offline {
            dir: self.dir.clone(),
            reason,
        }
    }

    /// Writes the clean-shutdown snapshot from the view (the directory recreated if it was
    /// removed), whose recorded log end offset the next open never goes below.
    fn write_snapshot(&self, producers: &ProducerTable, offline: bool) -> Result<(), LogError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| LogError::io(&self.dir, e))?;
        let segments = self
            .view()
            .segments
            .values()
            .map(|s| SegmentMeta {
                base: s.file.base_offset,
                size: s.size,
                max_timestamp: s.index.max_timestamp,
                offset_of_max_timestamp: s.index.offset_of_max_timestamp,
                last_offset: s.last_offset,
            })
            .collect();
        let mut snapshot = Snapshot::new(segments, producers);
        snapshot.offline = offline;
        snapshot::write(&self.dir, &snapshot)
    }

    /// The log's current settings.
    pub fn config(&self) -> LogConfig {
        lock(&self.writer).config.clone()
    }

    /// Replaces the log's settings; `index.interval.bytes` applies from the next segment.
    pub fn update_config(&self, config: LogConfig) {
        lock(&self.writer).config = config;
    }

    /// Bytes of all segments' `.log` files.
    pub fn size_bytes(&self) -> u64 {
        self.view().segments.values().map(|s| s.size).sum()
    }

    /// Number of segments (the active one included).
    pub fn segment_count(&self) -> usize {
        self.view().segments.len()
    }

    /// (base offset, size, max timestamp, last offset) of every segment, oldest first.
    #[cfg(test)]
    pub(crate) fn segment_infos(&self) -> Vec<(i64, u64, i64, Option<i64>)> {
        self.view()
            .segments
            .iter()
            .map(|(&b, s)| (b, s.size, s.index.max_timestamp, s.last_offset))
            .collect()
    }

    /// Fsyncs the log and its indexes, writes the clean-shutdown snapshot that lets the
    /// next open skip re-reading the older segments, and refuses further appends.
    /// Dropping the last handle does the same.
    pub fn close(&self) -> Result<(), LogError> {
        let mut w = lock(&self.writer);
        if w.closed {
            return Ok(());
        }
        w.closed = true;
        if self.offline.get().is_some() {
            // Nothing of it can be trusted to reach the disk; what matters is that the
            // next start knows where its offsets ended.
            return self.write_snapshot(&w.producers, true);
        }
        self.flush()?;
        self.write_index_entries(&mut w)?;
        sync_index_files(&self.dir, w.active.base_offset)
            .map_err(|e| LogError::io(&self.dir, e))?;
        self.write_snapshot(&w.producers, false)
    }

    /// Removes the log's directory with everything in it (DeleteTopics); the handle
    /// refuses appends afterwards.
    pub fn delete(&self) -> Result<(), LogError> {
        let mut w = lock(&self.writer);
        w.closed = true;
        self.deleted.store(true, Ordering::Release);
        self.log_dir.forget(&self.dir);
        std::fs::remove_dir_all(&self.dir).map_err(|e| LogError::io(&self.dir, e))
    }
}

impl Drop for PartitionLog {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(dir = %self.dir.display(), error = %e,
                "closing the log failed; the next open recovers it from its segments");
        }
    }
}

/// Creates the three files of a new, empty segment.
pub(super) fn create_segment(
    fds: &Arc<FdCache>,
    dir: &Path,
    base: i64,
    index_interval: u64,
) -> Result<SegmentView, LogError> {
    let path = segment::file_path(dir, base, segment::LOG_SUFFIX);
    let file = segment::open_rw(&path)?;
    file.set_len(0).map_err(|e| LogError::io(&path, e))?;
    for suffix in [segment::INDEX_SUFFIX, segment::TIME_INDEX_SUFFIX] {
        let p = segment::file_path(dir, base, suffix);
        segment::open_rw(&p)?
            .set_len(0)
            .map_err(|e| LogError::io(&p, e))?;
    }
    Ok(SegmentView {
        file: Arc::new(SegmentFile::new(fds, base, path, file)?),
        size: 0,
        index: IndexBuilder::new(base, index_interval),
        last_offset: None,
    })
}

/// fsyncs a segment's two index files, if they are still there.
fn sync_index_files(dir: &Path, base: i64) -> std::io::Result<()> {
    for suffix in [segment::INDEX_SUFFIX, segment::TIME_INDEX_SUFFIX] {
        match File::options()
            .write(true)
            .open(segment::file_path(dir, base, suffix))
        {
            Ok(f) => f.sync_data()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Position of the first batch at or after `pos` whose last offset is >= `offset`.
fn find_batch(
    seg: &SegmentFile,
    pos: u64,
    end: u64,
    offset: i64,
) -> Result<Option<(u64, BatchHeader)>, LogError> {
    let mut scanner = HeaderScanner::new(seg, pos, end);
    while let Some(b) = scanner.next_header()? {
        if b.header.last_offset() >= offset {
            return Ok(Some((b.position, b.header)));
        }
    }
    Ok(None)
}

/// Reads whole batches from `start` up to `max_bytes` in one `pread`, into a pooled buffer,
/// stopping before the first batch at or beyond `limit`.
fn read_batches(
    seg: &SegmentFile,
    (start, first): (u64, BatchHeader),
    end: u64,
    max_bytes: usize,
    min_one: bool,
    limit: i64,
) -> Result<Bytes, LogError> {
    let available = (end - start) as usize;
    let first_size = first.total_size();
    let want = if first_size > max_bytes {
        if !min_one {
            return Ok(Bytes::new());
        }
        first_size
    } else {
        max_bytes.min(available)
    };
    let mut buf = super::buffers::POOL.take(want);
    let read = buf.as_mut_slice();
    seg.read_at(read, start)?;
    let mut whole = 0;
    while let Some(h) = BatchHeader::parse(&read[whole..]) {
        if whole + h.total_size() > read.len() || h.check_shape().is_err() {
            break;
        }
        // The limit is a replica's log end, so it falls between batches; a batch it would
        // cut stays out whole rather than show records past it.
        if h.last_offset() >= limit {
            break;
        }
        whole += h.total_size();
    }
    Ok(buf.freeze(whole))
}
