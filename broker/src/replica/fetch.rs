//! Fetch's domain: reading each partition's batches as stored, within `max_bytes`, each
//! partition's own limit and the memory the caller may fill, and the wait for data: a
//! fetch that finds fewer than `min_bytes` waits, up to `max_wait`, for the high
//! watermark of any of its partitions to move (the logs' watch channels), never polling
//! (Kafka's `ReplicaManager.fetchMessages` and `DelayedFetch`).
//!
//! The first batch of the first partition with data is returned whole even when it
//! exceeds the limits, so a consumer never stalls on a large record.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use super::{Partition, ReplicaError, ReplicaManager};
use crate::log::{FetchIsolation, LogError};

/// Longest a fetch waits, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Kafka's broker `fetch.max.bytes`: the most one fetch reads, whatever the client asks
/// (the first batch is still returned whole when larger), bounding memory per fetch.
const FETCH_MAX_BYTES: usize = 57_671_680;

/// Memory a fetch's records occupy until they are sent: the listener's budget of
/// built-but-unsent responses. A fetch reads only what a grant allows.
pub(crate) trait FetchMemory: Sync {
    /// A share of the memory, given back when dropped.
    type Grant: FetchGrant;
    /// Up to `want` bytes, waiting until at least `need` (or all there is) are free.
    fn grant(&self, want: usize, need: usize) -> impl Future<Output = Self::Grant> + Send;
}

/// A share of a [`FetchMemory`].
pub(crate) trait FetchGrant: Send {
    /// Bytes granted.
    fn bytes(&self) -> usize;
    /// Whether this grant is the whole memory (nothing more can ever be granted).
    fn is_whole_budget(&self) -> bool;
    /// Grows the grant to `to` bytes if that much is free at once.
    fn try_grow(&mut self, to: usize) -> bool;
    /// Gives back what is beyond `to` bytes.
    fn shrink(&mut self, to: usize);
}

/// What a fetch asks of all its partitions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchParams {
    /// The most bytes the fetch returns (`max_bytes`).
    pub(crate) max_bytes: usize,
    /// Fewer bytes than this wait for more (`min_bytes`).
    pub(crate) min_bytes: usize,
    /// The longest wait (`max_wait_ms`).
    pub(crate) max_wait: Duration,
    /// How far reads go: consumers to the high watermark.
    pub(crate) isolation: FetchIsolation,
}

/// One partition to read.
#[derive(Debug)]
pub(crate) struct FetchTarget {
    /// Where to read.
    pub(crate) partition: Arc<Partition>,
    /// From which offset (`fetch_offset`).
    pub(crate) offset: i64,
    /// The most bytes from this partition (`partition_max_bytes`).
    pub(crate) max_bytes: usize,
}

/// What a fetch returns for one partition.
#[derive(Debug)]
pub(crate) struct FetchOutcome {
    /// The batches read, or why not.
    pub(crate) records: Result<Bytes, ReplicaError>,
    /// The high watermark (-1 when the partition could not be read at all).
    pub(crate) high_watermark: i64,
    /// The log start offset (-1 likewise).
    pub(crate) log_start_offset: i64,
}

type ReadOutcome = Result<(Bytes, i64, i64), ReplicaError>;

impl ReplicaManager {
    /// Reads `targets` per `params` within grants of `memory`, waiting for data as
    /// `min_bytes` and `max_wait` ask; returns one outcome per target, in order, and the
    /// grant its records hold until they are sent.
    pub(crate) async fn fetch_messages<M: FetchMemory>(
        &self,
        params: FetchParams,
        targets: Vec<FetchTarget>,
        memory: &M,
    ) -> (Vec<FetchOutcome>, Option<M::Grant>) {
        let max_bytes = params.max_bytes.min(FETCH_MAX_BYTES);
        let deadline = tokio::time::Instant::now() + params.max_wait.min(MAX_WAIT);
        let targets = Arc::new(targets);
        // The bytes a read returned beyond its grant (a first batch returned whole): the
        // next grant waits for that much instead of keeping batches it cannot hold.
        let mut need = 0;
        loop {
            // Subscribing before reading means an append racing with the read still
            // wakes us.
            let mut watches: Vec<watch::Receiver<i64>> = targets
                .iter()
                .map(|t| match params.isolation {
                    FetchIsolation::HighWatermark => t.partition.log().subscribe(),
                    FetchIsolation::LogEnd => t.partition.log().subscribe_log_end(),
                })
                .collect();
            let mut grant = memory.grant(max_bytes, need).await;
            let results = match read_all_blocking(&targets, grant.bytes(), params).await {
                Ok(results) => results,
                Err(e) => return (failed(&targets, &e), None),
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
            let done = total >= params.min_bytes
                || any_error
                || targets.is_empty()
                || tokio::time::Instant::now() >= deadline;
            if done {
                return (outcomes(&targets, results), Some(grant));
            }
            // Nothing of a long poll is held while it waits.
            drop(results);
            drop(grant);
            if !wait_for_any(&mut watches, deadline).await {
                // Nothing moved: the last read is the answer, read again under a fresh
                // grant.
                let grant = memory.grant(max_bytes, 0).await;
                let outcomes = match read_all_blocking(&targets, grant.bytes(), params).await {
                    Ok(results) => outcomes(&targets, results),
                    Err(e) => failed(&targets, &e),
                };
                return (outcomes, Some(grant));
            }
        }
    }
}

async fn read_all_blocking(
    targets: &Arc<Vec<FetchTarget>>,
    granted: usize,
    params: FetchParams,
) -> Result<Vec<ReadOutcome>, ReplicaError> {
    let t = Arc::clone(targets);
    tokio::task::spawn_blocking(move || read_all(&t, granted, params.isolation))
        .await
        .map_err(ReplicaError::internal)
}

/// Reads every target within `max_bytes` (blocking).
fn read_all(
    targets: &[FetchTarget],
    max_bytes: usize,
    isolation: FetchIsolation,
) -> Vec<ReadOutcome> {
    let mut left = max_bytes;
    let mut results = Vec::with_capacity(targets.len());
    for target in targets {
        let budget = target.max_bytes.min(left);
        let first = left == max_bytes;
        let p = &target.partition;
        let result = if budget == 0 && !first {
            Ok((Bytes::new(), p.high_watermark(), p.log().log_start_offset()))
        } else {
            target
                .partition
                .read(target.offset, budget, first, isolation)
                .map(|r| (r.records, r.high_watermark, r.log_start_offset))
        };
        if let Ok((records, _, _)) = &result {
            left = left.saturating_sub(records.len());
        }
        results.push(result);
    }
    results
}

fn outcomes(targets: &[FetchTarget], results: Vec<ReadOutcome>) -> Vec<FetchOutcome> {
    targets
        .iter()
        .zip(results)
        .map(|(target, result)| match result {
            Ok((records, high_watermark, log_start_offset)) => FetchOutcome {
                records: Ok(records),
                high_watermark,
                log_start_offset,
            },
            Err(e) => {
                // Out of range: the client resets its position from these.
                let (high_watermark, log_start_offset) =
                    if matches!(e, ReplicaError::Log(LogError::OffsetOutOfRange { .. })) {
                        let log = target.partition.log();
                        (log.high_watermark(), log.log_start_offset())
                    } else {
                        tracing::warn!(
                            topic = target.partition.topic().name(),
                            partition = target.partition.index(),
                            "fetch failed: {e}"
                        );
                        (-1, -1)
                    };
                FetchOutcome {
                    records: Err(e),
                    high_watermark,
                    log_start_offset,
                }
            }
        })
        .collect()
}

fn failed(targets: &[FetchTarget], e: &ReplicaError) -> Vec<FetchOutcome> {
    targets
        .iter()
        .map(|_| FetchOutcome {
            records: Err(ReplicaError::Internal(e.to_string())),
            high_watermark: -1,
            log_start_offset: -1,
        })
        .collect()
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
