//! Follower fetching, in the shape of Kafka's `ReplicaFetcherManager` and
//! `ReplicaFetcherThread`: one task per leader broker fetches every partition this node
//! follows from that leader, over the leader's Kafka listener, with Fetch requests that
//! carry this node's replica id.
//!
//! Each round asks, per partition, from the log end offset with the epoch of the last
//! batch (`last_fetched_epoch`) and the partition's `current_leader_epoch`. The answer is
//! appended as it is ([`PartitionLog::append_as_follower`]) and the follower's high
//! watermark becomes min(leader's high watermark, own log end offset). A
//! `diverging_epoch` (KIP-320) cuts the log where it stops agreeing with the leader
//! (KIP-279's rules); `OFFSET_OUT_OF_RANGE` below the leader's log start empties the log
//! to start there. Errors back the partition off for a moment; a lost connection is
//! reopened after a pause. The task ends when its last partition leaves it.
//!
//! [`PartitionLog::append_as_follower`]: crate::log::PartitionLog::append_as_follower

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use uuid::Uuid;

use super::Partition;

/// The Fetch version followers send: topic names, `last_fetched_epoch` and
/// `diverging_epoch` (v12).
const FETCH_VERSION: i16 = 12;
/// Longest a follower's fetch waits at the leader for new records.
const MAX_WAIT_MS: i32 = 500;
/// Most bytes one fetch returns (Kafka's `replica.fetch.response.max.bytes`, 10 MiB).
const MAX_BYTES: i32 = 10 * 1024 * 1024;
/// Most bytes of one partition per fetch (Kafka's `replica.fetch.max.bytes`, 1 MiB).
const PARTITION_MAX_BYTES: i32 = 1024 * 1024;
/// Pause after an error (Kafka's `replica.fetch.backoff.ms`).
const BACKOFF: Duration = Duration::from_secs(1);
/// How long to wait for a connection or an answer before starting over.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response accepted: anything bigger is a broken stream.
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

type Key = (Uuid, i32);

/// The partitions one fetcher task fetches.
type Followed = Arc<Mutex<HashMap<Key, Arc<Partition>>>>;

/// The fetcher tasks of this node, one per leader broker.
#[derive(Debug)]
pub(crate) struct Fetchers {
    node_id: i32,
    by_leader: Mutex<HashMap<i32, Fetcher>>,
}

/// One leader's fetcher task and what it fetches.
#[derive(Debug)]
struct Fetcher {
    addr: (String, u16),
    partitions: Followed,
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fetchers {
    /// No fetchers yet, for node `node_id`.
    pub(crate) fn new(node_id: i32) -> Fetchers {
        Fetchers {
            node_id,
            by_leader: Mutex::new(HashMap::new()),
        }
    }

    /// Fetches `partition` from `leader` at `addr` (its Kafka listener) from now on, and
    /// from no other leader.
    pub(crate) fn follow(&self, partition: Arc<Partition>, leader: i32, addr: (String, u16)) {
        let key = (partition.topic().id(), partition.index());
        let mut by_leader = self
            .by_leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (&id, f) in by_leader.iter() {
            if id != leader {
                lock(&f.partitions).remove(&key);
            }
        }
        if by_leader.get(&leader).is_some_and(|f| f.addr != addr) {
            // The leader moved to another address: start over there.
            if let Some(old) = by_leader.remove(&leader) {
                let moved = std::mem::take(&mut *lock(&old.partitions));
                let fetcher = self.start(leader, addr.clone());
                lock(&fetcher.partitions).extend(moved);
                by_leader.insert(leader, fetcher);
            }
        }
        let fetcher = match by_leader.entry(leader) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                if tokio::runtime::Handle::try_current().is_err() {
                    tracing::error!(
                        topic = partition.topic().name(),
                        partition = partition.index(),
                        "no async runtime to fetch from the leader in"
                    );
                    return;
                }
                e.insert(self.start(leader, addr))
            }
        };
        lock(&fetcher.partitions).insert(key, partition);
        fetcher.wake.notify_one();
        by_leader.retain(|_, f| !lock(&f.partitions).is_empty());
    }

    /// Stops fetching the partition (it is led here now, or no longer hosted).
    pub(crate) fn stop(&self, key: Key) {
        let mut by_leader = self
            .by_leader
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for f in by_leader.values() {
            lock(&f.partitions).remove(&key);
        }
        by_leader.retain(|_, f| !lock(&f.partitions).is_empty());
    }

    fn start(&self, leader: i32, addr: (String, u16)) -> Fetcher {
        let partitions: Followed = Arc::default();
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run(
            self.node_id,
            leader,
            addr.clone(),
            Arc::clone(&partitions),
            Arc::clone(&wake),
        ));
        Fetcher {
            addr,
            partitions,
            wake,
            task,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A fetcher task: connects to the leader and fetches until aborted.
async fn run(
    node_id: i32,
    leader: i32,
    addr: (String, u16),
    partitions: Followed,
    wake: Arc<Notify>,
) {
    loop {
        let stream =
            tokio::time::timeout(IO_TIMEOUT, TcpStream::connect((addr.0.as_str(), addr.1)))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))
                .and_then(|r| r);
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(leader, addr = %format!("{}:{}", addr.0, addr.1), error = %e,
                    "cannot reach the leader to fetch from; retrying");
                tokio::time::sleep(BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let mut correlation_id = 0i32;
        loop {
            let targets: Vec<Arc<Partition>> = lock(&partitions)
                .values()
                .filter(|p| !p.is_leader() && p.leader_id() == Some(leader))
                .cloned()
                .collect();
            if targets.is_empty() {
                wake.notified().await;
                continue;
            }
            correlation_id = correlation_id.wrapping_add(1);
            let request = fetch_request(node_id, &targets);
            let response =
                tokio::time::timeout(IO_TIMEOUT, roundtrip(&mut stream, &request, correlation_id))
                    .await
                    .map_err(|_| "no answer in time".to_string())
                    .and_then(|r| r);
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(leader, error = %e, "fetch from the leader failed; reconnecting");
                    break;
                }
            };
            let handled =
                tokio::task::spawn_blocking(move || handle_response(&targets, response)).await;
            match handled {
                Ok(true) => {}
                Ok(false) => {
                    // Every partition failed: wait before asking again, or for a change.
                    let _ = tokio::time::timeout(BACKOFF, wake.notified()).await;
                }
                Err(e) => {
                    tracing::error!(leader, error = %e, "handling a fetch response failed");
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
        tokio::time::sleep(BACKOFF).await;
    }
}

/// The Fetch a follower sends for `targets`.
fn fetch_request(node_id: i32, targets: &[Arc<Partition>]) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    for p in targets {
        let log = p.log();
        let partition = FetchPartition::default()
            .with_partition(p.index())
            .with_current_leader_epoch(p.leader_epoch())
            .with_fetch_offset(log.log_end_offset())
            .with_last_fetched_epoch(log.latest_epoch().unwrap_or(-1))
            .with_log_start_offset(log.log_start_offset())
            .with_partition_max_bytes(PARTITION_MAX_BYTES);
        let name = p.topic().name();
        match topics.iter_mut().find(|t| t.topic.0.as_str() == name) {
            Some(t) => t.partitions.push(partition),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(name.to_string())))
                    .with_partitions(vec![partition]),
            ),
        }
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(node_id))
        .with_max_wait_ms(MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(MAX_BYTES)
        .with_isolation_level(0)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics)
}

/// Sends `request` and reads its response (one at a time on the connection).
async fn roundtrip(
    stream: &mut TcpStream,
    request: &FetchRequest,
    correlation_id: i32,
) -> Result<FetchResponse, String> {
    let header = RequestHeader::default()
        .with_request_api_key(kafka_protocol::messages::ApiKey::Fetch as i16)
        .with_request_api_version(FETCH_VERSION)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("strand-replica-fetcher")));
    let header_version = FetchRequest::header_version(FETCH_VERSION);
    let size = header
        .compute_size(header_version)
        .and_then(|h| Ok(h + request.compute_size(FETCH_VERSION)?))
        .map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(size + 4);
    buf.put_i32(size as i32);
    header
        .encode(&mut buf, header_version)
        .and_then(|()| request.encode(&mut buf, FETCH_VERSION))
        .map_err(|e| e.to_string())?;
    stream.write_all(&buf).await.map_err(|e| e.to_string())?;
    let len = stream.read_i32().await.map_err(|e| e.to_string())?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_RESPONSE)
        .ok_or_else(|| format!("response of {len} bytes"))?;
    let mut frame = vec![0u8; len];
    stream
        .read_exact(&mut frame)
        .await
        .map_err(|e| e.to_string())?;
    let mut frame = Bytes::from(frame);
    let header = ResponseHeader::decode(&mut frame, FetchResponse::header_version(FETCH_VERSION))
        .map_err(|e| e.to_string())?;
    if header.correlation_id != correlation_id {
        return Err(format!(
            "response to request {} where {correlation_id} was expected",
            header.correlation_id
        ));
    }
    let response = FetchResponse::decode(&mut frame, FETCH_VERSION).map_err(|e| e.to_string())?;
    if frame.has_remaining() {
        tracing::debug!(
            bytes = frame.remaining(),
            "ignoring trailing bytes of a fetch response"
        );
    }
    Ok(response)
}

/// Applies a fetch response to the partitions asked (blocking); false when every
/// partition failed.
fn handle_response(targets: &[Arc<Partition>], response: FetchResponse) -> bool {
    if response.error_code != 0 {
        tracing::warn!(
            error_code = response.error_code,
            "the leader refused the whole fetch"
        );
        return false;
    }
    let mut any_ok = false;
    for t in response.responses {
        for data in t.partitions {
            let Some(p) = targets.iter().find(|p| {
                p.topic().name() == t.topic.0.as_str() && p.index() == data.partition_index
            }) else {
                continue;
            };
            match handle_partition(p, data) {
                Ok(()) => any_ok = true,
                Err(e) => tracing::warn!(
                    topic = p.topic().name(),
                    partition = p.index(),
                    "follower fetch: {e}"
                ),
            }
        }
    }
    any_ok
}

/// Applies one partition's answer: append, truncate, or an error.
fn handle_partition(p: &Partition, data: PartitionData) -> Result<(), String> {
    let log = p.log();
    if data.error_code == ResponseError::OffsetOutOfRange.code() {
        let end = log.log_end_offset();
        return if end < data.log_start_offset {
            log.truncate_fully_and_start_at(data.log_start_offset)
                .map(drop)
                .map_err(|e| e.to_string())
        } else {
            // Beyond the leader's log: keep what it has committed (unclean history).
            log.truncate_to(data.high_watermark.max(0))
                .map(drop)
                .map_err(|e| e.to_string())
        };
    }
    if data.error_code != 0 {
        let name = ResponseError::try_from_code(data.error_code)
            .map_or_else(|| data.error_code.to_string(), |e| format!("{e:?}"));
        return Err(format!("the leader answered {name}"));
    }
    let diverging = &data.diverging_epoch;
    if diverging.epoch >= 0 || diverging.end_offset >= 0 {
        let cut = truncation_offset(p, diverging.epoch, diverging.end_offset);
        log.truncate_to(cut).map_err(|e| e.to_string())?;
        return Ok(());
    }
    if let Some(records) = data.records.filter(|r| !r.is_empty()) {
        // A fetch may end in a partial batch; only whole batches are appended.
        let whole = whole_batches(&records);
        if whole > 0 {
            let mut batches = crate::log::BUFFERS.copy_of(&records[..whole]);
            log.append_as_follower(batches.as_mut_slice())
                .map_err(|e| e.to_string())?;
        }
    }
    log.advance_high_watermark(data.high_watermark.min(log.log_end_offset()));
    Ok(())
}

/// Bytes of the whole batches at the start of `records`.
fn whole_batches(records: &[u8]) -> usize {
    let mut whole = 0;
    for frame in crate::log::frames(records) {
        match frame {
            Ok(f) => whole += f.bytes.len(),
            Err(_) => break,
        }
    }
    whole
}

/// Where to cut this follower's log after the leader said its last fetched epoch ends at
/// `end_offset` in `epoch` (Kafka's `getOffsetTruncationState`): an unknown end keeps
/// only what is committed; otherwise the smaller of the leader's end and this log's end
/// of the same epoch.
fn truncation_offset(p: &Partition, epoch: i32, end_offset: i64) -> i64 {
    let log = p.log();
    let log_end = log.log_end_offset();
    if end_offset < 0 {
        return log.high_watermark();
    }
    if epoch < 0 {
        return end_offset.min(log_end);
    }
    let (local_epoch, local_end) = log.end_offset_for_epoch(epoch);
    if local_epoch < 0 || local_end < 0 {
        end_offset.min(log_end)
    } else if local_epoch != epoch {
        // This log never had the leader's epoch: cut to where the older one it has ends,
        // and the next fetch finds out the rest.
        local_end.min(log_end)
    } else {
        end_offset.min(local_end)
    }
}
