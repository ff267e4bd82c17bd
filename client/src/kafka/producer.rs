//! The raw-bytes producer: records are appended to a per-partition batch (the
//! accumulator), and a sender task ships batches to partition leaders when they are full
//! (`batch_size`) or have waited `linger`.
//!
//! Bounds everywhere: records waiting to be sent hold permits of a `buffer_memory`-byte
//! semaphore, so `send` waits (back-pressure) instead of queueing without limit; each broker
//! has at most `max_in_flight_requests_per_connection` produce requests outstanding; each
//! partition has one batch in flight, which keeps order across retries.
//!
//! Idempotence (on by default): the producer gets a producer id and epoch from
//! `InitProducerId` and numbers each partition's records with sequence numbers; a batch
//! retried after a lost response carries the same sequence, so the broker discards the
//! duplicate instead of appending it twice.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};

use crate::config::{Acks, ProducerConfig};
use crate::error::{ClientError, Result};
use crate::kafka::cluster::Cluster;
use crate::kafka::partitioner::{next_sticky, partition_for_key};

/// Per-record overhead in a batch (length, attributes, deltas, header count), for sizing.
const RECORD_OVERHEAD: usize = 21;
/// The record batch header.
const BATCH_OVERHEAD: usize = 61;

/// A record to produce, as bytes.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    /// Topic to write to.
    pub topic: String,
    /// Partition; `None` lets the partitioner choose (by key, else sticky).
    pub partition: Option<i32>,
    /// Record key.
    pub key: Option<Bytes>,
    /// Record value (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Record headers.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in ms since the epoch; `None` means now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value for `topic`.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the partition explicitly.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push((name.into(), Some(value.into())));
        self
    }
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset of the record; -1 with `acks=0`, where the broker does not answer.
    pub offset: i64,
    /// The record's timestamp.
    pub timestamp: i64,
}

/// Resolves to the delivery result of one record.
#[derive(Debug)]
pub struct DeliveryFuture {
    rx: oneshot::Receiver<Result<RecordMetadata>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ClientError::Closed("producer"))))
    }
}

struct PendingRecord {
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<(String, Option<Bytes>)>,
    timestamp: i64,
    reply: oneshot::Sender<Result<RecordMetadata>>,
}

struct Batch {
    records: Vec<PendingRecord>,
    size: usize,
    created: Instant,
    /// Encoded once, on first send, so retries resend identical bytes and sequences.
    encoded: Option<Bytes>,
    base_sequence: i32,
    retry_at: Option<Instant>,
    _memory: Vec<OwnedSemaphorePermit>,
}

impl Batch {
    fn fail(self, topic: &str, partition: i32, err: ClientError) {
        tracing::debug!(topic, partition, error = %err, "batch failed");
        for record in self.records {
            let _ = record.reply.send(Err(err.clone()));
        }
    }
}

#[derive(Default)]
struct PartitionQueue {
    batches: VecDeque<Batch>,
    in_flight: bool,
    next_sequence: i32,
}

#[derive(Default)]
struct Accumulator {
    partitions: HashMap<(String, i32), PartitionQueue>,
    sticky: HashMap<String, i32>,
    flushing: usize,
}

struct Inner {
    cluster: Arc<Cluster>,
    config: ProducerConfig,
    acc: Mutex<Accumulator>,
    wake: Notify,
    memory: Arc<Semaphore>,
    outstanding: AtomicUsize,
    drained: Notify,
    closed: AtomicBool,
    producer_id: i64,
    producer_epoch: i16,
    broker_slots: Mutex<HashMap<i32, Arc<Semaphore>>>,
}

/// A producer of raw-bytes records.
pub struct RawProducer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RawProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawProducer")
            .field("producer_id", &self.inner.producer_id)
            .finish()
    }
}

impl RawProducer {
    /// Connects to the cluster and, when idempotent, obtains a producer id.
    pub async fn new(config: ProducerConfig) -> Result<RawProducer> {
        if config.batch_size == 0 || config.max_in_flight_requests_per_connection == 0 {
            return Err(ClientError::Config(
                "batch_size and max_in_flight_requests_per_connection must be positive".into(),
            ));
        }
        if config.enable_idempotence && config.acks != Acks::All {
            return Err(ClientError::Config(
                "enable_idempotence needs acks=all (as in the Java client)".into(),
            ));
        }
        let cluster = Cluster::new(config.client.clone())?;
        cluster
            .retry("bootstrap metadata", || cluster.refresh(&[]))
            .await?;
        let (producer_id, producer_epoch) = if config.enable_idempotence {
            init_producer_id(&cluster).await?
        } else {
            (-1, -1)
        };
        let memory = Arc::new(Semaphore::new(
            config.buffer_memory.min(Semaphore::MAX_PERMITS),
        ));
        let inner = Arc::new(Inner {
            cluster,
            config,
            acc: Mutex::new(Accumulator::default()),
            wake: Notify::new(),
            memory,
            outstanding: AtomicUsize::new(0),
            drained: Notify::new(),
            closed: AtomicBool::new(false),
            producer_id,
            producer_epoch,
            broker_slots: Mutex::new(HashMap::new()),
        });
        tokio::spawn(sender_loop(inner.clone()));
        Ok(RawProducer { inner })
    }

    /// Queues a record; waits for metadata and buffer space, not for delivery. Await the
    /// returned future for the record's partition and offset.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Relaxed) {
            return Err(ClientError::Closed("producer"));
        }
        let size = RECORD_OVERHEAD
            + record.key.as_ref().map_or(0, |k| k.len())
            + record.value.as_ref().map_or(0, |v| v.len())
            + record
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()) + 4)
                .sum::<usize>();
        let max = inner.config.max_request_size;
        if size + BATCH_OVERHEAD > max {
            return Err(ClientError::RecordTooLarge { size, max });
        }
        let partitions = inner
            .cluster
            .partition_count(&record.topic, inner.config.allow_auto_create_topics)
            .await?;
        if let Some(p) = record.partition
            && !(0..partitions).contains(&p)
        {
            return Err(ClientError::UnknownPartition {
                topic: record.topic,
                partition: p,
            });
        }
        let permit = inner
            .memory
            .clone()
            .acquire_many_owned(size.min(inner.config.buffer_memory) as u32)
            .await
            .map_err(|_| ClientError::Closed("producer"))?;
        let (reply, rx) = oneshot::channel();
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let pending = PendingRecord {
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp,
            reply,
        };
        let batch_size = inner.config.batch_size;
        let ready = {
            let mut acc = inner.acc.lock().unwrap_or_else(|e| e.into_inner());
            let partition = match (record.partition, &pending.key) {
                (Some(p), _) => p,
                (None, Some(key)) => partition_for_key(key, partitions),
                (None, None) => {
                    let current = acc.sticky.get(&record.topic).copied();
                    let open = current.is_some_and(|p| {
                        acc.partitions
                            .get(&(record.topic.clone(), p))
                            .and_then(|q| q.batches.back())
                            .is_some_and(|b| b.encoded.is_none() && b.size + size <= batch_size)
                    });
                    let p = match current {
                        Some(p) if open && p < partitions => p,
                        _ => next_sticky(current, partitions),
                    };
                    acc.sticky.insert(record.topic.clone(), p);
                    p
                }
            };
            let queue = acc.partitions.entry((record.topic, partition)).or_default();
            let fits = queue
                .batches
                .back()
                .is_some_and(|b| b.encoded.is_none() && b.size + size <= batch_size);
            if !fits {
                queue.batches.push_back(Batch {
                    records: Vec::new(),
                    size: BATCH_OVERHEAD,
                    created: Instant::now(),
                    encoded: None,
                    base_sequence: -1,
                    retry_at: None,
                    _memory: Vec::new(),
                });
            }
            let Some(batch) = queue.batches.back_mut() else {
                return Err(ClientError::Closed("producer"));
            };
            batch.records.push(pending);
            batch.size += size;
            batch._memory.push(permit);
            inner.outstanding.fetch_add(1, Ordering::Relaxed);
            // A new batch gives the sender a new linger deadline to wait for.
            !fits || batch.size >= batch_size
        };
        if ready || inner.config.linger.is_zero() {
            inner.wake.notify_one();
        }
        Ok(DeliveryFuture { rx })
    }

    /// Sends everything queued now and waits until each record has its delivery result.
    pub async fn flush(&self) -> Result<()> {
        let inner = &self.inner;
        inner.acc.lock().unwrap_or_else(|e| e.into_inner()).flushing += 1;
        inner.wake.notify_one();
        loop {
            let drained = inner.drained.notified();
            if inner.outstanding.load(Ordering::Acquire) == 0 {
                break;
            }
            drained.await;
        }
        inner.acc.lock().unwrap_or_else(|e| e.into_inner()).flushing -= 1;
        Ok(())
    }

    /// Flushes, then stops the sender.
    pub async fn close(self) -> Result<()> {
        self.flush().await?;
        self.inner.closed.store(true, Ordering::Relaxed);
        self.inner.wake.notify_one();
        Ok(())
    }

    /// The number of partitions of `topic`.
    pub async fn partition_count(&self, topic: &str) -> Result<i32> {
        Ok(self
            .inner
            .cluster
            .topic(topic, false)
            .await?
            .partitions
            .len() as i32)
    }
}

impl Drop for RawProducer {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::Relaxed);
        self.inner.wake.notify_one();
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn init_producer_id(cluster: &Arc<Cluster>) -> Result<(i64, i16)> {
    cluster
        .retry("InitProducerId", || async {
            let conn = cluster.any_broker().await?;
            let (response, _) = cluster
                .send(&conn, |_| {
                    InitProducerIdRequest::default()
                        .with_transactional_id(None)
                        .with_transaction_timeout_ms(60_000)
                })
                .await?;
            if let Some(err) = ClientError::broker("InitProducerId", response.error_code) {
                return Err(err);
            }
            Ok((response.producer_id.0, response.producer_epoch))
        })
        .await
}

/// A batch taken from its queue to be sent.
struct InFlight {
    topic: String,
    partition: i32,
    batch: Batch,
}

async fn sender_loop(inner: Arc<Inner>) {
    loop {
        let wake = inner.wake.notified();
        let (ready, next_deadline) = collect_ready(&inner);
        let mut by_leader: HashMap<i32, Vec<InFlight>> = HashMap::new();
        for item in ready {
            match inner.cluster.leader(&item.topic, item.partition) {
                Some(leader) => by_leader.entry(leader).or_default().push(item),
                None => {
                    inner.cluster.invalidate();
                    let cluster = inner.cluster.clone();
                    let topic = item.topic.clone();
                    tokio::spawn(async move {
                        let _ = cluster.refresh(&[topic]).await;
                    });
                    requeue(&inner, item, true);
                }
            }
        }
        for (leader, batches) in by_leader {
            let slots = inner
                .broker_slots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(leader)
                .or_insert_with(|| {
                    Arc::new(Semaphore::new(
                        inner.config.max_in_flight_requests_per_connection,
                    ))
                })
                .clone();
            let Ok(slot) = slots.acquire_owned().await else {
                continue;
            };
            let inner = inner.clone();
            tokio::spawn(async move {
                produce(&inner, leader, batches).await;
                drop(slot);
                inner.wake.notify_one();
            });
        }
        if inner.closed.load(Ordering::Relaxed) && inner.outstanding.load(Ordering::Acquire) == 0 {
            return;
        }
        match next_deadline {
            Some(deadline) => {
                tokio::select! {
                    _ = wake => {}
                    _ = tokio::time::sleep_until(deadline.into()) => {}
                }
            }
            None => wake.await,
        }
    }
}

/// Takes each partition's front batch that is due: full, lingered long enough, flushed, or
/// retry backoff over; returns them with the earliest time another batch becomes due.
fn collect_ready(inner: &Inner) -> (Vec<InFlight>, Option<Instant>) {
    let now = Instant::now();
    let linger = inner.config.linger;
    let delivery_timeout = inner.config.delivery_timeout;
    let mut acc = inner.acc.lock().unwrap_or_else(|e| e.into_inner());
    let urgent = acc.flushing > 0 || inner.closed.load(Ordering::Relaxed);
    let mut ready = Vec::new();
    let mut expired = Vec::new();
    let mut next: Option<Instant> = None;
    for ((topic, partition), queue) in acc.partitions.iter_mut() {
        if queue.in_flight {
            continue;
        }
        // Batches never sent can expire; a sent one keeps its place to keep sequences whole.
        while queue
            .batches
            .front()
            .is_some_and(|b| b.encoded.is_none() && now >= b.created + delivery_timeout)
        {
            if let Some(b) = queue.batches.pop_front() {
                expired.push((topic.clone(), *partition, b));
            }
        }
        let Some(front) = queue.batches.front() else {
            continue;
        };
        let due = match front.retry_at {
            Some(at) => at,
            None if urgent || front.size >= inner.config.batch_size || queue.batches.len() > 1 => {
                now
            }
            None => front.created + linger,
        };
        if due <= now {
            if let Some(mut batch) = queue.batches.pop_front() {
                batch.retry_at = None;
                if batch.encoded.is_none() {
                    batch.base_sequence = queue.next_sequence;
                    queue.next_sequence =
                        queue.next_sequence.wrapping_add(batch.records.len() as i32) & i32::MAX;
                }
                queue.in_flight = true;
                ready.push(InFlight {
                    topic: topic.clone(),
                    partition: *partition,
                    batch,
                });
            }
        } else {
            next = Some(next.map_or(due, |n: Instant| n.min(due)));
        }
    }
    drop(acc);
    for (topic, partition, batch) in expired {
        let n = batch.records.len();
        batch.fail(
            &topic,
            partition,
            ClientError::Timeout {
                what: format!("delivery to {topic}-{partition}"),
                millis: delivery_timeout.as_millis() as u64,
            },
        );
        complete(inner, n);
    }
    (ready, next)
}

fn complete(inner: &Inner, records: usize) {
    if inner.outstanding.fetch_sub(records, Ordering::AcqRel) == records {
        inner.drained.notify_waiters();
    }
}

/// Puts a batch back at the front of its queue, to be retried after a backoff.
fn requeue(inner: &Inner, mut item: InFlight, backoff: bool) {
    let mut acc = inner.acc.lock().unwrap_or_else(|e| e.into_inner());
    let queue = acc
        .partitions
        .entry((item.topic, item.partition))
        .or_default();
    if backoff {
        item.batch.retry_at = Some(Instant::now() + inner.config.client.retry_backoff);
    }
    queue.batches.push_front(item.batch);
    queue.in_flight = false;
}

fn encode_batch(inner: &Inner, batch: &Batch) -> Result<Bytes> {
    let records: Vec<Record> = batch
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: inner.producer_id,
            producer_epoch: inner.producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Without idempotence the base sequence must be -1; offsets minus sequences
            // must stay constant within one encoded batch either way.
            sequence: if inner.producer_id >= 0 {
                batch.base_sequence.wrapping_add(i as i32)
            } else {
                (i as i32).wrapping_sub(1)
            },
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone()))
                .collect(),
        })
        .collect();
    let mut buf = BytesMut::with_capacity(batch.size + 64);
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: inner.config.compression.codec(),
        },
    )
    .map_err(|e| ClientError::Protocol(format!("encoding record batch: {e}")))?;
    Ok(buf.freeze())
}

async fn produce(inner: &Arc<Inner>, leader: i32, mut batches: Vec<InFlight>) {
    let mut sendable = Vec::with_capacity(batches.len());
    for mut item in batches.drain(..) {
        if item.batch.encoded.is_none() {
            match encode_batch(inner, &item.batch) {
                Ok(bytes) => item.batch.encoded = Some(bytes),
                Err(e) => {
                    finish(inner, item, Err(e));
                    continue;
                }
            }
        }
        sendable.push(item);
    }
    if sendable.is_empty() {
        return;
    }
    let mut topics: Vec<TopicProduceData> = Vec::new();
    for item in &sendable {
        let data = PartitionProduceData::default()
            .with_index(item.partition)
            .with_records(item.batch.encoded.clone());
        match topics.iter_mut().find(|t| t.name.0.as_str() == item.topic) {
            Some(t) => t.partition_data.push(data),
            None => topics.push(
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(item.topic.clone())))
                    .with_partition_data(vec![data]),
            ),
        }
    }
    let acks = inner.config.acks;
    let timeout_ms = inner
        .config
        .client
        .request_timeout
        .as_millis()
        .min(i32::MAX as u128) as i32;
    let request = ProduceRequest::default()
        .with_acks(acks.wire())
        .with_timeout_ms(timeout_ms)
        .with_topic_data(topics);
    let cluster = &inner.cluster;
    let result = async {
        let conn = cluster.broker(leader).await?;
        let version = conn.version::<ProduceRequest>()?;
        if acks == Acks::None {
            conn.send_without_response(&request, version).await?;
            return Ok(None);
        }
        let timeout = cluster.config.request_timeout;
        match tokio::time::timeout(timeout, conn.send(&request, version)).await {
            Ok(r) => r.map(Some),
            Err(_) => Err(ClientError::Timeout {
                what: format!("produce to broker {leader}"),
                millis: timeout.as_millis() as u64,
            }),
        }
    }
    .await;
    match result {
        Err(e) => {
            for item in sendable {
                finish(inner, item, Err(e.clone()));
            }
        }
        Ok(None) => {
            for item in sendable {
                finish(inner, item, Ok(-1));
            }
        }
        Ok(Some(response)) => {
            for item in sendable {
                let found = response
                    .responses
                    .iter()
                    .find(|t| t.name.0.as_str() == item.topic)
                    .and_then(|t| {
                        t.partition_responses
                            .iter()
                            .find(|p| p.index == item.partition)
                    });
                let outcome = match found {
                    None => Err(ClientError::Protocol(format!(
                        "produce response lacks {}-{}",
                        item.topic, item.partition
                    ))),
                    // The broker already has this batch (a retry of one whose response was
                    // lost): delivered once, which is the point of idempotence.
                    Some(p) if p.error_code == ResponseError::DuplicateSequenceNumber.code() => {
                        Ok(p.base_offset)
                    }
                    Some(p) => match ClientError::broker(
                        produce_context(&item, p.error_message.as_ref().map(|m| m.as_str())),
                        p.error_code,
                    ) {
                        None => Ok(p.base_offset),
                        Some(e) => Err(e),
                    },
                };
                finish(inner, item, outcome);
            }
        }
    }
}

fn produce_context(item: &InFlight, message: Option<&str>) -> String {
    match message {
        Some(m) => format!("produce to {}-{} ({m})", item.topic, item.partition),
        None => format!("produce to {}-{}", item.topic, item.partition),
    }
}

/// Completes a sent batch: delivered, retried, or failed.
fn finish(inner: &Arc<Inner>, item: InFlight, outcome: Result<i64>) {
    match outcome {
        Ok(base_offset) => {
            {
                let mut acc = inner.acc.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(q) = acc
                    .partitions
                    .get_mut(&(item.topic.clone(), item.partition))
                {
                    q.in_flight = false;
                }
            }
            let n = item.batch.records.len();
            for (i, record) in item.batch.records.into_iter().enumerate() {
                let _ = record.reply.send(Ok(RecordMetadata {
                    topic: item.topic.clone(),
                    partition: item.partition,
                    offset: if base_offset >= 0 {
                        base_offset + i as i64
                    } else {
                        -1
                    },
                    timestamp: record.timestamp,
                }));
            }
            complete(inner, n);
        }
        Err(e)
            if e.is_retriable()
                && item.batch.created.elapsed() < inner.config.delivery_timeout
                && !inner.closed.load(Ordering::Relaxed) =>
        {
            tracing::debug!(topic = %item.topic, partition = item.partition, error = %e, "retrying batch");
            inner.cluster.invalidate();
            requeue(inner, item, true);
        }
        Err(e) => {
            let n = item.batch.records.len();
            {
                let mut acc = inner.acc.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(q) = acc
                    .partitions
                    .get_mut(&(item.topic.clone(), item.partition))
                {
                    q.in_flight = false;
                    // The broker did not append it, so the next batch reuses its sequence.
                    if item.batch.encoded.is_some() && item.batch.base_sequence >= 0 {
                        q.next_sequence = item.batch.base_sequence;
                        for b in q.batches.iter_mut() {
                            b.encoded = None;
                        }
                    }
                }
            }
            item.batch.fail(&item.topic, item.partition, e);
            complete(inner, n);
        }
    }
}
