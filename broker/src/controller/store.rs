//! The controller's Raft storage for openraft: the metadata log, the vote and the
//! snapshots of the [`MetadataImage`], in one directory (`<data_dir>/controller/`).
//!
//! - `metadata.log`: the Raft log, append-only, one frame per entry: length (u32 BE),
//!   CRC32C of the payload (u32 BE), the entry as JSON. At open it is re-read frame by frame
//!   and truncated after the last whole, valid, contiguous entry, as a partition log's
//!   recovery does; entries live in memory until a snapshot lets openraft purge them.
//! - `state.json`: the vote, the last purged log id and the committed log id, replaced
//!   atomically (write, fsync, rename, fsync the directory).
//! - `snapshot.json`: the last snapshot (its meta and the image), CRC-checked, replaced
//!   atomically.
//!
//! Raft requires that what a node acknowledges is on disk: appends, truncations, purges
//! and votes are fsynced before they are reported done. Disk work runs on tokio's blocking
//! pool, not on the async workers. The state machine applies each log entry's batch of
//! records atomically (all or none, like a KRaft record batch) and publishes the new image
//! on a `watch` channel that the broker layer subscribes to.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Cursor, Seek, SeekFrom, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, LogState, OptionalSend, RaftLogReader,
    RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
    Vote,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::image::{ApplyError, MetadataImage};
use super::records::MetadataRecord;

/// The Raft node id of a controller (Kafka's `node.id`, as openraft wants it).
pub type RaftNodeId = u64;

openraft::declare_raft_types!(
    /// openraft's types for the metadata quorum.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = RaftNodeId,
        Node = BasicNode,
);

/// A Raft log entry of the metadata log.
pub type LogEntry = Entry<TypeConfig>;

/// What a leader proposes: records that apply together or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Proposal {
    /// The records, applied in order.
    pub records: Vec<MetadataRecord>,
}

/// The outcome of applying one log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Applied {
    /// The entry carried no records (a blank or membership entry).
    #[default]
    Nothing,
    /// Every record applied.
    Applied,
    /// Record `index` did not apply, so none did.
    Rejected {
        /// The position of the refused record in the proposal.
        index: usize,
        /// Why.
        error: ApplyError,
    },
}

/// Why the controller's storage could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("controller store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file that recovery cannot repair is damaged (the vote or the snapshot).
    #[error("controller store {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A frame bigger than this is damage, not an entry.
const MAX_ENTRY_BYTES: usize = 64 << 20;
const LOG_FILE: &str = "metadata.log";
const STATE_FILE: &str = "state.json";
const SNAPSHOT_FILE: &str = "snapshot.json";

/// Opens (or creates) the controller store in `dir`: its log store and its state machine.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachine), StoreError> {
    fs::create_dir_all(dir).map_err(|source| StoreError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let log = LogStore {
        inner: Arc::new(Mutex::new(LogFile::open(dir)?)),
    };
    let machine = StateMachine::open(dir)?;
    Ok((log, machine))
}

// ---- the log ----

/// The vote, the purge point and the commit point, kept together in `state.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LogMeta {
    vote: Option<Vote<RaftNodeId>>,
    last_purged: Option<LogId<RaftNodeId>>,
    committed: Option<LogId<RaftNodeId>>,
}

struct LogFile {
    dir: PathBuf,
    file: File,
    /// Entries by index, with the position of their frame in the file.
    entries: BTreeMap<u64, (u64, LogEntry)>,
    meta: LogMeta,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl LogFile {
    fn open(dir: &Path) -> Result<Self, StoreError> {
        let state_path = dir.join(STATE_FILE);
        let meta = match fs::read(&state_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                path: state_path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => LogMeta::default(),
            Err(e) => {
                return Err(StoreError::Io {
                    path: state_path,
                    source: e,
                });
            }
        };
        let path = dir.join(LOG_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error(&path))?;
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        let (entries, valid) = recover(&bytes, meta.last_purged.map(|l| l.index));
        if valid < bytes.len() as u64 {
            tracing::warn!(
                path = %path.display(),
                kept = valid,
                dropped = bytes.len() as u64 - valid,
                "metadata log: truncating a torn or damaged tail"
            );
            file.set_len(valid).map_err(io_error(&path))?;
            file.sync_all().map_err(io_error(&path))?;
        }
        file.seek(SeekFrom::End(0)).map_err(io_error(&path))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            entries,
            meta,
        })
    }

    fn last_log_id(&self) -> Option<LogId<RaftNodeId>> {
        self.entries
            .values()
            .next_back()
            .map(|(_, e)| e.log_id)
            .or(self.meta.last_purged)
    }

    fn append(&mut self, entries: Vec<LogEntry>) -> io::Result<()> {
        let position = self.file.seek(SeekFrom::End(0))?;
        let mut buffer = Vec::new();
        let mut placed = Vec::with_capacity(entries.len());
        for entry in entries {
            let payload = serde_json::to_vec(&entry).map_err(io::Error::other)?;
            let frame_start = position + buffer.len() as u64;
            buffer.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            buffer.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
            buffer.extend_from_slice(&payload);
            placed.push((frame_start, entry));
        }
        if let Err(e) = self
            .file
            .write_all(&buffer)
            .and_then(|()| self.file.sync_data())
        {
            // Leave no half-written frame behind for the next append to follow.
            let _ = self.file.set_len(position);
            return Err(e);
        }
        for (at, entry) in placed {
            self.entries.insert(entry.log_id.index, (at, entry));
        }
        Ok(())
    }

    /// Removes the entries from `index` on, on disk first.
    fn truncate(&mut self, index: u64) -> io::Result<()> {
        let Some((&first, &(position, _))) = self.entries.range(index..).next() else {
            return Ok(());
        };
        self.file.set_len(position)?;
        self.file.sync_all()?;
        self.file.seek(SeekFrom::End(0))?;
        self.entries.split_off(&first);
        Ok(())
    }

    /// Forgets the entries up to `log_id`: the purge point is saved first, then the log is
    /// rewritten without them (an interrupted rewrite leaves the old file, whose purged
    /// entries the next open skips).
    fn purge(&mut self, log_id: LogId<RaftNodeId>) -> io::Result<()> {
        if self
            .meta
            .last_purged
            .is_some_and(|p| p.index >= log_id.index)
        {
            return Ok(());
        }
        let mut meta = self.meta.clone();
        meta.last_purged = Some(log_id);
        self.save_meta(meta, true)?;
        self.entries = self.entries.split_off(&(log_id.index + 1));
        let path = self.dir.join(LOG_FILE);
        let tmp = self.dir.join(format!("{LOG_FILE}.tmp"));
        let mut out = File::create(&tmp)?;
        let mut position = 0u64;
        for (at, entry) in self.entries.values_mut() {
            let payload = serde_json::to_vec(entry).map_err(io::Error::other)?;
            out.write_all(&(payload.len() as u32).to_be_bytes())?;
            out.write_all(&crc32c::crc32c(&payload).to_be_bytes())?;
            out.write_all(&payload)?;
            *at = position;
            position += 8 + payload.len() as u64;
        }
        out.sync_all()?;
        fs::rename(&tmp, &path)?;
        sync_dir(&self.dir)?;
        self.file = OpenOptions::new().read(true).write(true).open(&path)?;
        self.file.seek(SeekFrom::End(0))?;
        Ok(())
    }

    fn save_meta(&mut self, meta: LogMeta, durable: bool) -> io::Result<()> {
        let bytes = serde_json::to_vec(&meta).map_err(io::Error::other)?;
        write_atomically(&self.dir, STATE_FILE, &bytes, durable)?;
        self.meta = meta;
        Ok(())
    }
}

/// Reads frames from the start of the log; returns the entries after `purged` and the
/// length of the valid prefix.
fn recover(bytes: &[u8], purged: Option<u64>) -> (BTreeMap<u64, (u64, LogEntry)>, u64) {
    let mut entries = BTreeMap::new();
    let mut position = 0usize;
    let mut last_index: Option<u64> = None;
    while let Some(header) = bytes.get(position..position + 8) {
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if length > MAX_ENTRY_BYTES {
            break;
        }
        let Some(payload) = bytes.get(position + 8..position + 8 + length) else {
            break;
        };
        if crc32c::crc32c(payload) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice::<LogEntry>(payload) else {
            break;
        };
        if last_index.is_some_and(|last| entry.log_id.index != last + 1) {
            break;
        }
        last_index = Some(entry.log_id.index);
        if purged.is_none_or(|p| entry.log_id.index > p) {
            entries.insert(entry.log_id.index, (position as u64, entry));
        }
        position += 8 + length;
    }
    (entries, position as u64)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `dir/name` with `bytes` so that a crash leaves the old or the new file whole.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8], durable: bool) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// The metadata log as openraft's [`RaftLogStorage`]; clones share the same log.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogFile>>,
}

impl LogStore {
    fn lock(&self) -> MutexGuard<'_, LogFile> {
        // A panic while holding the lock cannot leave the file half-updated (every write
        // is followed by its in-memory update), so the data stays usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs blocking disk work off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut LogFile) -> io::Result<T> + Send + 'static,
    ) -> io::Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = inner
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut guard)
        })
        .await
        .map_err(io::Error::other)?
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<LogEntry>, StorageError<RaftNodeId>> {
        Ok(self
            .lock()
            .entries
            .range(range)
            .map(|(_, (_, e))| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<RaftNodeId>> {
        let log = self.lock();
        Ok(LogState {
            last_purged_log_id: log.meta.last_purged,
            last_log_id: log.last_log_id(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<RaftNodeId>) -> Result<(), StorageError<RaftNodeId>> {
        let vote = *vote;
        self.blocking(move |log| {
            let mut meta = log.meta.clone();
            meta.vote = Some(vote);
            log.save_meta(meta, true)
        })
        .await
        .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<RaftNodeId>>, StorageError<RaftNodeId>> {
        Ok(self.lock().meta.vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<RaftNodeId>>,
    ) -> Result<(), StorageError<RaftNodeId>> {
        // Not fsynced: a lost commit point is learned again from the leader; it only lets a
        // restarted node re-apply its committed entries before hearing from one.
        self.blocking(move |log| {
            let mut meta = log.meta.clone();
            meta.committed = committed;
            log.save_meta(meta, false)
        })
        .await
        .map_err(|e| StorageIOError::write(AnyError::new(&e)).into())
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<RaftNodeId>>, StorageError<RaftNodeId>> {
        Ok(self.lock().meta.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<RaftNodeId>>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<LogEntry> = entries.into_iter().collect();
        match self.blocking(move |log| log.append(entries)).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let error = StorageIOError::write_logs(AnyError::new(&e));
                callback.log_io_completed(Err(e));
                Err(error.into())
            }
        }
    }

    async fn truncate(
        &mut self,
        log_id: LogId<RaftNodeId>,
    ) -> Result<(), StorageError<RaftNodeId>> {
        self.blocking(move |log| log.truncate(log_id.index))
            .await
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }

    async fn purge(&mut self, log_id: LogId<RaftNodeId>) -> Result<(), StorageError<RaftNodeId>> {
        self.blocking(move |log| log.purge(log_id))
            .await
            .map_err(|e| StorageIOError::write_logs(AnyError::new(&e)).into())
    }
}

// ---- the state machine ----

/// A snapshot as kept in `snapshot.json`: openraft's meta and the serialized image.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<RaftNodeId, BasicNode>,
    /// JSON of the [`MetadataImage`].
    data: Vec<u8>,
    /// CRC32C of `data`.
    crc: u32,
}

/// The metadata image as openraft's [`RaftStateMachine`].
pub struct StateMachine {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId<RaftNodeId>>,
    last_membership: StoredMembership<RaftNodeId, BasicNode>,
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
    published: watch::Sender<Arc<MetadataImage>>,
}

impl StateMachine {
    fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(SNAPSHOT_FILE);
        let snapshot: Option<StoredSnapshot> = match fs::read(&path) {
            Ok(bytes) => Some(
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?,
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(StoreError::Io { path, source: e }),
        };
        let (image, last_applied, last_membership) = match &snapshot {
            Some(snapshot) => {
                let image = decode_image(snapshot).map_err(|reason| StoreError::Corrupt {
                    path: path.clone(),
                    reason,
                })?;
                (
                    image,
                    snapshot.meta.last_log_id,
                    snapshot.meta.last_membership.clone(),
                )
            }
            None => (MetadataImage::new(), None, StoredMembership::default()),
        };
        let image = Arc::new(image);
        let (published, _) = watch::channel(image.clone());
        Ok(Self {
            dir: dir.to_path_buf(),
            image,
            last_applied,
            last_membership,
            snapshot: Arc::new(Mutex::new(snapshot)),
            published,
        })
    }

    /// A receiver of every image this state machine applies, starting with the current
    /// one. Take it before the state machine is handed to openraft.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.published.subscribe()
    }

    fn publish(&mut self, image: MetadataImage) {
        self.image = Arc::new(image);
        self.published.send_replace(self.image.clone());
    }
}

fn decode_image(snapshot: &StoredSnapshot) -> Result<MetadataImage, String> {
    if crc32c::crc32c(&snapshot.data) != snapshot.crc {
        return Err("snapshot CRC mismatch".into());
    }
    serde_json::from_slice(&snapshot.data).map_err(|e| e.to_string())
}

/// Saves `snapshot` unless a newer one is already saved.
fn save_snapshot(
    dir: &Path,
    slot: &Mutex<Option<StoredSnapshot>>,
    snapshot: StoredSnapshot,
) -> io::Result<()> {
    let mut current = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if current
        .as_ref()
        .is_some_and(|c| c.meta.last_log_id > snapshot.meta.last_log_id)
    {
        return Ok(());
    }
    let bytes = serde_json::to_vec(&snapshot).map_err(io::Error::other)?;
    write_atomically(dir, SNAPSHOT_FILE, &bytes, true)?;
    *current = Some(snapshot);
    Ok(())
}

/// Builds a snapshot of the image as it was when openraft asked for the builder.
pub struct SnapshotBuilder {
    dir: PathBuf,
    image: Arc<MetadataImage>,
    last_applied: Option<LogId<RaftNodeId>>,
    last_membership: StoredMembership<RaftNodeId, BasicNode>,
    snapshot: Arc<Mutex<Option<StoredSnapshot>>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<RaftNodeId>> {
        let data = serde_json::to_vec(&*self.image)
            .map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)))?;
        let snapshot_id = match self.last_applied {
            Some(id) => format!(
                "{}-{}-{}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => "empty".to_string(),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            crc: crc32c::crc32c(&data),
            data: data.clone(),
        };
        let (dir, slot) = (self.dir.clone(), self.snapshot.clone());
        tokio::task::spawn_blocking(move || save_snapshot(&dir, &slot, stored))
            .await
            .map_err(io::Error::other)
            .and_then(|r| r)
            .map_err(|e| {
                StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
            })?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<RaftNodeId>>,
            StoredMembership<RaftNodeId, BasicNode>,
        ),
        StorageError<RaftNodeId>,
    > {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<RaftNodeId>>
    where
        I: IntoIterator<Item = LogEntry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut image = (*self.image).clone();
        let mut outcomes = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let outcome = match entry.payload {
                EntryPayload::Blank => Applied::Nothing,
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    Applied::Nothing
                }
                EntryPayload::Normal(proposal) => apply_atomically(&mut image, &proposal.records),
            };
            if let Applied::Rejected { index, error } = &outcome {
                tracing::debug!(log_index = entry.log_id.index, index, %error, "metadata record did not apply");
            }
            outcomes.push(outcome);
        }
        self.publish(image);
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            dir: self.dir.clone(),
            image: self.image.clone(),
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            snapshot: self.snapshot.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<RaftNodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<RaftNodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<RaftNodeId>> {
        let data = snapshot.into_inner();
        let stored = StoredSnapshot {
            meta: meta.clone(),
            crc: crc32c::crc32c(&data),
            data,
        };
        let image = decode_image(&stored).map_err(|reason| {
            StorageIOError::read_snapshot(Some(meta.signature()), AnyError::error(reason))
        })?;
        let (dir, slot) = (self.dir.clone(), self.snapshot.clone());
        tokio::task::spawn_blocking(move || save_snapshot(&dir, &slot, stored))
            .await
            .map_err(io::Error::other)
            .and_then(|r| r)
            .map_err(|e| {
                StorageIOError::write_snapshot(Some(meta.signature()), AnyError::new(&e))
            })?;
        self.last_applied = meta.last_log_id;
        self.last_membership = meta.last_membership.clone();
        self.publish(image);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<RaftNodeId>> {
        let current = self
            .snapshot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        Ok(current.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// Applies `records` to `image` all together, or leaves it as it was.
fn apply_atomically(image: &mut MetadataImage, records: &[MetadataRecord]) -> Applied {
    let mut next = image.clone();
    for (index, record) in records.iter().enumerate() {
        if let Err(error) = next.apply(record) {
            return Applied::Rejected { index, error };
        }
    }
    *image = next;
    Applied::Applied
}

#[cfg(test)]
mod tests;
