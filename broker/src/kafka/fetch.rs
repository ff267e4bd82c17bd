//! Fetch: returns stored batches exactly as the log holds them, honouring `max_bytes`,
//! each partition's `partition_max_bytes` and `min_bytes`; a fetch that finds too little
//! waits, up to `max_wait_ms`, for the high watermark of any of its partitions to move
//! (the logs' watch channels), never polling.
//!
//! As Kafka allows, fetch sessions (KIP-227) are declined: every response carries session
//! id 0, so clients send full fetch requests. The first batch of the first partition with
//! data is returned whole even when it exceeds the limits, so a consumer never stalls on
//! a large record.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use tokio::sync::watch;

use super::dispatch::RequestContext;
use super::error::{internal_error, log_error};
use super::lookup;
use super::response_budget::Grant;
use crate::log::{LogError, PartitionLog};

/// Longest a fetch waits, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Kafka's broker `fetch.max.bytes`: the most one response carries, whatever the client
/// asks (the first batch is still returned whole when larger), bounding memory per fetch.
const FETCH_MAX_BYTES: usize = 57_671_680;

/// One partition to read.
struct Slot {
    topic: usize,
    partition: usize,
    log: Arc<PartitionLog>,
    offset: i64,
    max_bytes: usize,
}

/// Answers Fetch, with the share of the process's response budget its batches hold until
/// they are written.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: FetchRequest,
) -> (FetchResponse, Option<Grant>) {
    let broker = &ctx.broker;
    let version = ctx.version();
    if req.session_id != 0 {
        let response = FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
        return (response, None);
    }
    let by_id = version >= 13;
    let read_committed = req.isolation_level == 1;
    let mut responses = Vec::with_capacity(req.topics.len());
    let mut slots = Vec::new();
    for (ti, t) in req.topics.into_iter().enumerate() {
        let topic = lookup::topic(broker, &t.topic, t.topic_id, by_id);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for (pi, p) in t.partitions.into_iter().enumerate() {
            let mut data = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1)
                .with_aborted_transactions(if read_committed {
                    Some(Vec::new())
                } else {
                    None
                });
            let log = topic.as_ref().map_err(|e| *e).and_then(|topic| {
                topic
                    .partition(p.partition)
                    .ok_or(ResponseError::UnknownTopicOrPartition)
            });
            let log = log.and_then(|log| {
                if p.current_leader_epoch > 0 {
                    Err(ResponseError::UnknownLeaderEpoch)
                } else {
                    Ok(log)
                }
            });
            match log {
                Ok(log) => slots.push(Slot {
                    topic: ti,
                    partition: pi,
                    log,
                    offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes.max(0) as usize,
                }),
                Err(e) => data.error_code = e.code(),
            }
            partitions.push(data);
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(if by_id { Default::default() } else { t.topic })
                .with_topic_id(if by_id { t.topic_id } else { uuid::Uuid::nil() })
                .with_partitions(partitions),
        );
    }

    let max_bytes = (req.max_bytes.max(0) as usize).min(FETCH_MAX_BYTES);
    let min_bytes = req.min_bytes.max(0) as usize;
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let slots = Arc::new(slots);
    let budget = &ctx.budget;
    let mut held = None;
    // The bytes a read returned beyond its grant (a first batch returned whole): the next
    // grant waits for that much instead of keeping batches the budget cannot hold.
    let mut need = 0;
    loop {
        // Subscribing before reading means an append racing with the read still wakes us.
        let mut watches: Vec<watch::Receiver<i64>> =
            slots.iter().map(|s| s.log.subscribe()).collect();
        let mut grant = budget.grant(max_bytes, need).await;
        let s = slots.clone();
        let granted = grant.bytes();
        let read = tokio::task::spawn_blocking(move || read_all(&s, granted)).await;
        let results = match read {
            Ok(results) => results,
            Err(e) => {
                let code = internal_error(&e).code();
                for t in responses.iter_mut() {
                    for p in t.partitions.iter_mut() {
                        p.error_code = code;
                    }
                }
                break;
            }
        };
        let total: usize = results
            .iter()
            .map(|r| r.as_ref().map(|(b, _, _)| b.len()).unwrap_or(0))
            .sum();
        if total > grant.bytes() && !grant.try_grow(total) && !grant.is_whole_budget() {
            need = total;
            continue;
        }
        grant.shrink(total);
        let any_error = results.iter().any(|r| r.is_err());
        let done = total >= min_bytes
            || any_error
            || slots.is_empty()
            || tokio::time::Instant::now() >= deadline;
        if done {
            fill(&mut responses, &slots, results);
            held = Some(grant);
            break;
        }
        // Nothing of a long poll is held while it waits.
        drop(results);
        drop(grant);
        if !wait_for_any(&mut watches, deadline).await {
            // Nothing moved: the last read is the answer, read again under a fresh grant.
            let grant = budget.grant(max_bytes, 0).await;
            let s = slots.clone();
            let granted = grant.bytes();
            if let Ok(results) = tokio::task::spawn_blocking(move || read_all(&s, granted)).await {
                fill(&mut responses, &slots, results);
            }
            held = Some(grant);
            break;
        }
    }
    let response = FetchResponse::default()
        .with_session_id(0)
        .with_responses(responses);
    (response, held)
}

type ReadOutcome = Result<(Bytes, i64, i64), LogError>;

/// Reads every slot within the response budget (blocking).
fn read_all(slots: &[Slot], max_bytes: usize) -> Vec<ReadOutcome> {
    let mut left = max_bytes;
    let mut results = Vec::with_capacity(slots.len());
    for slot in slots {
        let budget = slot.max_bytes.min(left);
        let first = left == max_bytes;
        let result = if budget == 0 && !first {
            Ok((
                Bytes::new(),
                slot.log.high_watermark(),
                slot.log.log_start_offset(),
            ))
        } else {
            slot.log
                .read(slot.offset, budget, first)
                .map(|r| (r.records, r.high_watermark, r.log_start_offset))
        };
        if let Ok((records, _, _)) = &result {
            left = left.saturating_sub(records.len());
        }
        results.push(result);
    }
    results
}

fn fill(responses: &mut [FetchableTopicResponse], slots: &[Slot], results: Vec<ReadOutcome>) {
    for (slot, result) in slots.iter().zip(results) {
        let data = &mut responses[slot.topic].partitions[slot.partition];
        match result {
            Ok((records, hw, log_start)) => {
                data.high_watermark = hw;
                data.last_stable_offset = hw;
                data.log_start_offset = log_start;
                data.records = Some(records);
            }
            Err(e) => {
                if let LogError::OffsetOutOfRange {
                    log_start_offset,
                    log_end_offset,
                    ..
                } = &e
                {
                    data.high_watermark = *log_end_offset;
                    data.last_stable_offset = *log_end_offset;
                    data.log_start_offset = *log_start_offset;
                } else {
                    tracing::warn!(partition = data.partition_index, "fetch failed: {e}");
                }
                data.error_code = log_error(&e).code();
            }
        }
    }
}

/// Waits until any watched high watermark changes (true) or the deadline passes (false).
async fn wait_for_any(
    watches: &mut [watch::Receiver<i64>],
    deadline: tokio::time::Instant,
) -> bool {
    let mut changes: Vec<Option<Pin<Box<dyn Future<Output = bool> + Send + '_>>>> = watches
        .iter_mut()
        .map(|w| {
            Some(Box::pin(async move { w.changed().await.is_ok() })
                as Pin<Box<dyn Future<Output = bool> + Send>>)
        })
        .collect();
    let any = std::future::poll_fn(|cx| {
        let mut open = false;
        for slot in changes.iter_mut() {
            let Some(change) = slot else { continue };
            match change.as_mut().poll(cx) {
                Poll::Ready(true) => return Poll::Ready(true),
                Poll::Ready(false) => *slot = None,
                Poll::Pending => open = true,
            }
        }
        // Every sender gone (topics deleted): nothing will ever change.
        if open {
            Poll::Pending
        } else {
            Poll::Ready(false)
        }
    });
    tokio::time::timeout_at(deadline, any)
        .await
        .unwrap_or(false)
}
