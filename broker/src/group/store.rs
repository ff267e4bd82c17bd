//! Persistence in the compacted `__consumer_offsets` topic: the record format, the one
//! writer task that appends records in order, and the replay at start.
//!
//! Records use Kafka's own schemas, so a stored log reads like Kafka's: an *offset commit*
//! has key v1 `(i16 1, group, topic, i32 partition)` and value v3 `(i16 3, i64 offset,
//! i32 leader epoch, metadata, i64 commit timestamp)` — or value v1 `(i16 1, i64 offset,
//! metadata, i64 commit timestamp, i64 expire timestamp)` when the commit asked for its own
//! retention; *group metadata* has key v2 `(i16 2, group)` and value v3 (protocol type,
//! generation, protocol, leader, state timestamp, members with subscription and
//! assignment). Strings are an i16 length and UTF-8 bytes (-1: null), byte arrays an i32
//! length. A deletion is a tombstone (the key with a null value), which compaction removes.
//! Values v0 and v2 of offsets are also read.
//!
//! Writes go through one task so that they reach the log in the order the groups queued
//! them, and whatever queued meanwhile shares one append and one fsync (group commit).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;
use tokio::sync::{mpsc, oneshot};

use super::GroupError;
use super::state::{CommittedOffset, TopicPartition, now_ms};
use crate::log::PartitionLog;

/// A boxed future, as the log trait returns.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Stored batches read from the log.
#[derive(Debug, Clone)]
pub(crate) struct LogChunk {
    /// Whole RecordBatch v2, as stored.
    pub records: Bytes,
    /// The offset after the last one written.
    pub log_end_offset: i64,
}

/// The log that holds `__consumer_offsets`, as the coordinator uses it.
pub(crate) trait OffsetsLog: Send + Sync + 'static {
    /// Appends RecordBatch v2 bytes; resolves once they are durable (fsynced).
    fn append(&self, batch: Vec<u8>) -> BoxFuture<Result<(), GroupError>>;
    /// Reads whole batches from `offset` (or from the log start, if later), up to about
    /// `max_bytes`. Blocking: only used while opening.
    fn read(&self, offset: i64, max_bytes: usize) -> Result<LogChunk, GroupError>;
}

/// `__consumer_offsets` as a [`PartitionLog`]: blocking calls run on the blocking pool.
pub(crate) struct PartitionOffsetsLog(pub Arc<PartitionLog>);

fn storage(e: impl std::fmt::Display) -> GroupError {
    GroupError::Storage(e.to_string())
}

impl OffsetsLog for PartitionOffsetsLog {
    fn append(&self, mut batch: Vec<u8>) -> BoxFuture<Result<(), GroupError>> {
        let log = Arc::clone(&self.0);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let info = log.append(&mut batch).map_err(storage)?;
                log.flush_to(info.last_offset).map_err(storage)
            })
            .await
            .map_err(storage)?
        })
    }

    fn read(&self, offset: i64, max_bytes: usize) -> Result<LogChunk, GroupError> {
        let offset = offset.max(self.0.log_start_offset());
        let read = self.0.read(offset, max_bytes, true).map_err(storage)?;
        Ok(LogChunk {
            records: read.records,
            log_end_offset: read.high_watermark,
        })
    }
}

/// One record for the log: a key and a value (`None`: a tombstone).
pub(crate) type StoredRecord = (Bytes, Option<Bytes>);

/// Records to append together, and who waits for them to be durable.
#[derive(Debug)]
pub(crate) struct Write {
    pub records: Vec<StoredRecord>,
    pub done: Option<oneshot::Sender<Result<(), GroupError>>>,
}

impl Write {
    /// A write nobody waits for.
    pub fn new(records: Vec<StoredRecord>) -> Write {
        Write {
            records,
            done: None,
        }
    }

    /// A write with a receiver that resolves once it is durable.
    pub fn waited(
        records: Vec<StoredRecord>,
    ) -> (Write, oneshot::Receiver<Result<(), GroupError>>) {
        let (tx, rx) = oneshot::channel();
        (
            Write {
                records,
                done: Some(tx),
            },
            rx,
        )
    }
}

/// Most writes waiting for the writer task; beyond this, groups wait to queue.
pub(crate) const WRITE_QUEUE: usize = 1024;
/// Most records appended in one batch.
const MAX_RECORDS_PER_APPEND: usize = 10_000;

/// Runs the writer: appends queued writes in order, several per append.
pub(crate) async fn run_writer(log: Arc<dyn OffsetsLog>, mut rx: mpsc::Receiver<Write>) {
    while let Some(first) = rx.recv().await {
        let mut count = first.records.len();
        let mut writes = vec![first];
        while count < MAX_RECORDS_PER_APPEND {
            match rx.try_recv() {
                Ok(write) => {
                    count += write.records.len();
                    writes.push(write);
                }
                Err(_) => break,
            }
        }
        let records = writes.iter().flat_map(|w| w.records.iter());
        let result = match encode_batch(records) {
            Ok(batch) if batch.is_empty() => Ok(()),
            Ok(batch) => log.append(batch).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, "writing to __consumer_offsets failed");
        }
        for write in writes {
            if let Some(done) = write.done {
                let _ = done.send(result.clone());
            }
        }
    }
}

/// Encodes records as one uncompressed RecordBatch v2 (offsets are assigned by the log).
pub(crate) fn encode_batch<'a>(
    records: impl Iterator<Item = &'a StoredRecord>,
) -> Result<Vec<u8>, GroupError> {
    let records = records.map(|(key, value)| (key.clone(), value.clone()));
    crate::log::encode_keyed_batch(records, now_ms())
        .map(|buf| buf.to_vec())
        .map_err(|e| GroupError::Storage(e.to_string()))
}

/// A group's metadata as stored (group metadata value v3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredGroup {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

/// A member as stored in the group metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

fn put_str(buf: &mut BytesMut, s: &str) {
    // Strings longer than i16::MAX are refused before they get here (group ids, topic
    // names and metadata are all bounded); truncating keeps the record well formed.
    let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    buf.put_i16(bytes.len() as i16);
    buf.put_slice(bytes);
}

fn put_opt_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

/// The record of a committed offset (`None`: its tombstone).
pub(crate) fn offset_record(
    group: &str,
    topic: &str,
    partition: i32,
    offset: Option<&CommittedOffset>,
) -> StoredRecord {
    let mut key = BytesMut::new();
    key.put_i16(1);
    put_str(&mut key, group);
    put_str(&mut key, topic);
    key.put_i32(partition);
    let value = offset.map(|o| {
        let mut v = BytesMut::new();
        match o.expire_timestamp_ms {
            Some(expire) => {
                v.put_i16(1);
                v.put_i64(o.offset);
                put_str(&mut v, &o.metadata);
                v.put_i64(o.commit_timestamp_ms);
                v.put_i64(expire);
            }
            None => {
                v.put_i16(3);
                v.put_i64(o.offset);
                v.put_i32(o.leader_epoch);
                put_str(&mut v, &o.metadata);
                v.put_i64(o.commit_timestamp_ms);
            }
        }
        v.freeze()
    });
    (key.freeze(), value)
}

/// The record of a group's metadata (`None`: its tombstone).
pub(crate) fn group_record(group: &str, stored: Option<&StoredGroup>) -> StoredRecord {
    let mut key = BytesMut::new();
    key.put_i16(2);
    put_str(&mut key, group);
    let value = stored.map(|g| {
        let mut v = BytesMut::new();
        v.put_i16(3);
        put_str(&mut v, &g.protocol_type);
        v.put_i32(g.generation);
        put_opt_str(&mut v, g.protocol.as_deref());
        put_opt_str(&mut v, g.leader.as_deref());
        v.put_i64(g.state_timestamp_ms);
        v.put_i32(g.members.len() as i32);
        for m in &g.members {
            put_str(&mut v, &m.member_id);
            put_opt_str(&mut v, m.group_instance_id.as_deref());
            put_str(&mut v, &m.client_id);
            put_str(&mut v, &m.client_host);
            v.put_i32(m.rebalance_timeout_ms);
            v.put_i32(m.session_timeout_ms);
            put_bytes(&mut v, &m.subscription);
            put_bytes(&mut v, &m.assignment);
        }
        v.freeze()
    });
    (key.freeze(), value)
}

/// A checked reader over a record's key or value.
struct Reader(Bytes);

impl Reader {
    fn need(&self, n: usize) -> Result<(), String> {
        if self.0.remaining() < n {
            Err(format!(
                "truncated: needed {n} bytes, {} left",
                self.0.remaining()
            ))
        } else {
            Ok(())
        }
    }
    fn i16(&mut self) -> Result<i16, String> {
        self.need(2)?;
        Ok(self.0.get_i16())
    }
    fn i32(&mut self) -> Result<i32, String> {
        self.need(4)?;
        Ok(self.0.get_i32())
    }
    fn i64(&mut self) -> Result<i64, String> {
        self.need(8)?;
        Ok(self.0.get_i64())
    }
    fn opt_str(&mut self) -> Result<Option<String>, String> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        self.need(len as usize)?;
        let bytes = self.0.split_to(len as usize);
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| "string is not UTF-8".to_string())
    }
    fn str(&mut self) -> Result<String, String> {
        self.opt_str()?.ok_or_else(|| "null string".to_string())
    }
    fn bytes(&mut self) -> Result<Bytes, String> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(Bytes::new());
        }
        self.need(len as usize)?;
        Ok(self.0.split_to(len as usize))
    }
}

/// What a stored key names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StoredKey {
    Offset(String, TopicPartition),
    Group(String),
}

fn decode_key(key: &Bytes) -> Result<StoredKey, String> {
    let mut r = Reader(key.clone());
    match r.i16()? {
        0 | 1 => {
            let group = r.str()?;
            let topic = r.str()?;
            let partition = r.i32()?;
            Ok(StoredKey::Offset(group, (topic, partition)))
        }
        2 => Ok(StoredKey::Group(r.str()?)),
        v => Err(format!("unknown key version {v}")),
    }
}

fn decode_offset(value: &Bytes) -> Result<CommittedOffset, String> {
    let mut r = Reader(value.clone());
    let version = r.i16()?;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.str()?;
    let commit_timestamp_ms = r.i64()?;
    let expire_timestamp_ms = match version {
        1 => Some(r.i64()?).filter(|e| *e >= 0),
        0 | 2 | 3 => None,
        v => return Err(format!("unknown offset value version {v}")),
    };
    Ok(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms,
        expire_timestamp_ms,
    })
}

fn decode_group(value: &Bytes) -> Result<StoredGroup, String> {
    let mut r = Reader(value.clone());
    let version = r.i16()?;
    if version != 3 {
        return Err(format!(
            "unsupported group metadata value version {version}"
        ));
    }
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.opt_str()?;
    let leader = r.opt_str()?;
    let state_timestamp_ms = r.i64()?;
    let count = r.i32()?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        members.push(StoredMember {
            member_id: r.str()?,
            group_instance_id: r.opt_str()?,
            client_id: r.str()?,
            client_host: r.str()?,
            rebalance_timeout_ms: r.i32()?,
            session_timeout_ms: r.i32()?,
            subscription: r.bytes()?,
            assignment: r.bytes()?,
        });
    }
    Ok(StoredGroup {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp_ms,
        members,
    })
}

/// Everything `__consumer_offsets` holds, after replay.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    pub groups: HashMap<String, StoredGroup>,
    pub offsets: HashMap<String, HashMap<TopicPartition, CommittedOffset>>,
}

impl Replayed {
    fn apply(&mut self, offset: i64, key: &Bytes, value: Option<&Bytes>) {
        let key = match decode_key(key) {
            Ok(key) => key,
            Err(reason) => {
                tracing::warn!(offset, %reason, "skipping an unreadable __consumer_offsets key");
                return;
            }
        };
        match (key, value) {
            (StoredKey::Offset(group, tp), None) => {
                if let Some(offsets) = self.offsets.get_mut(&group) {
                    offsets.remove(&tp);
                    // A group is restored from what the log still holds for it; an empty
                    // map would bring a deleted group back, which Kafka does not do.
                    if offsets.is_empty() {
                        self.offsets.remove(&group);
                    }
                }
            }
            (StoredKey::Offset(group, tp), Some(value)) => match decode_offset(value) {
                Ok(o) => {
                    self.offsets.entry(group).or_default().insert(tp, o);
                }
                Err(reason) => {
                    tracing::warn!(offset, %reason, "skipping an unreadable committed offset")
                }
            },
            (StoredKey::Group(group), None) => {
                self.groups.remove(&group);
            }
            (StoredKey::Group(group), Some(value)) => match decode_group(value) {
                Ok(g) => {
                    self.groups.insert(group, g);
                }
                Err(reason) => {
                    tracing::warn!(offset, %reason, "skipping unreadable group metadata")
                }
            },
        }
    }
}

/// How much one replay read asks for.
const REPLAY_READ_BYTES: usize = 1024 * 1024;

/// Reads the whole log, keeping the last value of every key (blocking).
pub(crate) fn replay(log: &dyn OffsetsLog) -> Result<Replayed, GroupError> {
    let mut replayed = Replayed::default();
    let mut next = 0i64;
    loop {
        let chunk = log.read(next, REPLAY_READ_BYTES)?;
        if chunk.records.is_empty() || next >= chunk.log_end_offset {
            break;
        }
        let records = &chunk.records;
        let before = next;
        // Batch by batch, moving past each batch's last offset (from its header: compaction
        // may have removed the records at its end) so that a read always makes progress.
        for frame in crate::log::frames(records) {
            let frame = frame.map_err(|e| GroupError::CorruptRecord {
                offset: next,
                reason: e.to_string(),
            })?;
            let header = frame.header().ok_or(GroupError::CorruptRecord {
                offset: next,
                reason: format!(
                    "batch at byte {} is shorter than its header",
                    frame.position
                ),
            })?;
            let mut batch = records.slice(frame.position..frame.position + frame.bytes.len());
            let set =
                RecordBatchDecoder::decode(&mut batch).map_err(|e| GroupError::CorruptRecord {
                    offset: header.base_offset,
                    reason: e.to_string(),
                })?;
            for record in &set.records {
                if record.offset < next || record.control {
                    continue;
                }
                if let Some(key) = &record.key {
                    replayed.apply(record.offset, key, record.value.as_ref());
                }
            }
            next = next.max(header.last_offset() + 1);
        }
        if next == before {
            // Nothing readable past `next`: only possible with a log that does not grow.
            break;
        }
    }
    Ok(replayed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// An in-memory log: batches get consecutive offsets, reads return them all.
    #[derive(Default)]
    pub(crate) struct MemoryLog {
        batches: Mutex<(Vec<u8>, i64)>,
    }

    impl OffsetsLog for MemoryLog {
        fn append(&self, mut batch: Vec<u8>) -> BoxFuture<Result<(), GroupError>> {
            let mut guard = self.batches.lock().unwrap();
            let spans: Vec<(usize, i32)> = crate::log::frames(&batch)
                .map(|f| f.unwrap())
                .map(|f| (f.position, f.header().unwrap().last_offset_delta))
                .collect();
            for (position, last_offset_delta) in spans {
                batch[position..position + 8].copy_from_slice(&guard.1.to_be_bytes());
                guard.1 += i64::from(last_offset_delta) + 1;
            }
            guard.0.extend_from_slice(&batch);
            Box::pin(async { Ok(()) })
        }

        fn read(&self, _offset: i64, _max: usize) -> Result<LogChunk, GroupError> {
            let guard = self.batches.lock().unwrap();
            Ok(LogChunk {
                records: Bytes::from(guard.0.clone()),
                log_end_offset: guard.1,
            })
        }
    }

    #[tokio::test]
    async fn records_round_trip_through_a_batch_and_replay() {
        let log = MemoryLog::default();
        let committed = CommittedOffset {
            offset: 42,
            leader_epoch: 3,
            metadata: "meta".into(),
            commit_timestamp_ms: 1000,
            expire_timestamp_ms: None,
        };
        let expiring = CommittedOffset {
            expire_timestamp_ms: Some(5000),
            leader_epoch: -1,
            ..committed.clone()
        };
        let group = StoredGroup {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            state_timestamp_ms: 99,
            members: vec![StoredMember {
                member_id: "m-1".into(),
                group_instance_id: Some("i-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let records = [
            offset_record("g", "t", 0, Some(&committed)),
            offset_record("g", "t", 1, Some(&expiring)),
            offset_record("g", "t", 2, Some(&committed)),
            offset_record("g", "t", 2, None),
            group_record("g", Some(&group)),
            group_record("gone", Some(&group)),
            group_record("gone", None),
        ];
        log.append(encode_batch(records.iter()).unwrap())
            .await
            .unwrap();
        let replayed = replay(&log).unwrap();
        let offsets = &replayed.offsets["g"];
        assert_eq!(offsets.len(), 2);
        assert_eq!(offsets[&("t".to_string(), 0)], committed);
        assert_eq!(offsets[&("t".to_string(), 1)], expiring);
        assert_eq!(replayed.groups.len(), 1);
        assert_eq!(replayed.groups["g"], group);
    }

    #[tokio::test]
    async fn deleted_group_is_gone_after_replay() {
        let log = MemoryLog::default();
        let committed = CommittedOffset {
            offset: 1,
            leader_epoch: 0,
            metadata: String::new(),
            commit_timestamp_ms: 1000,
            expire_timestamp_ms: None,
        };
        let empty = StoredGroup {
            protocol_type: "consumer".into(),
            generation: 2,
            protocol: None,
            leader: None,
            state_timestamp_ms: 99,
            members: Vec::new(),
        };
        // What `consume --group g1` then `groups delete g1` leave: a commit and the group
        // emptied, then tombstones for both (as DeleteGroups writes them).
        let written = [
            offset_record("g1", "t1", 0, Some(&committed)),
            group_record("g1", Some(&empty)),
        ];
        log.append(encode_batch(written.iter()).unwrap())
            .await
            .unwrap();
        let deleted = [offset_record("g1", "t1", 0, None), group_record("g1", None)];
        log.append(encode_batch(deleted.iter()).unwrap())
            .await
            .unwrap();
        // A group with offsets only (no metadata record) whose offsets were all deleted.
        let offsets_only = [
            offset_record("simple", "t1", 0, Some(&committed)),
            offset_record("simple", "t1", 0, None),
        ];
        log.append(encode_batch(offsets_only.iter()).unwrap())
            .await
            .unwrap();
        let replayed = replay(&log).unwrap();
        assert!(replayed.groups.is_empty(), "{:?}", replayed.groups);
        assert!(replayed.offsets.is_empty(), "{:?}", replayed.offsets);
    }
}
