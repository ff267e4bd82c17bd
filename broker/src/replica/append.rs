//! Produce's domain: checking what a client sends, appending it as the leader of each
//! partition, and completing `acks=all` once the records are committed (Kafka's
//! `ReplicaManager.appendRecords` and `DelayedProduce`).
//!
//! Before the log sees a batch: the records must be whole batches, none over the topic's
//! `max.message.bytes` (`crate::log::prepare` then reads every record); on a topic with
//! schema validation, every record's schema id must pass `crate::validation`. Appends run on
//! one blocking thread in request order; each partition's result is its own, the other
//! partitions of a request proceed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::partition::LeaderAppendInfo;
use super::{Partition, ReplicaError, ReplicaManager};
use crate::log::{AppendInfo, FrameError, LogError, ProducePolicy, ReadBuf};
use crate::topics::TopicStore;
use crate::validation::SchemaValidation;

/// One partition's records to append.
#[derive(Debug)]
pub(crate) struct AppendEntry {
    /// Where they go.
    pub(crate) partition: Arc<Partition>,
    /// Concatenated RecordBatch v2, as the client sent them (`None`: no records).
    pub(crate) records: Option<Bytes>,
}

/// A partition's records after the checks: a copy the log may rewrite, and the topic's
/// policy and schema validation for them.
type Checked = Result<(ReadBuf, ProducePolicy, SchemaValidation), ReplicaError>;

/// One partition's append, done in the leader's log and maybe not yet committed.
#[derive(Debug)]
pub(crate) struct LeaderAppend {
    partition: Arc<Partition>,
    result: Result<LeaderAppendInfo, ReplicaError>,
}

/// How one partition's append ended, as its Produce response tells.
#[derive(Debug)]
pub(crate) struct AppendOutcome {
    /// The offsets given, or why nothing was appended (or acknowledged).
    pub(crate) result: Result<AppendInfo, ReplicaError>,
    /// The broker's clock stamped into the batches, or -1 for `CreateTime` topics.
    pub(crate) log_append_time_ms: i64,
}

impl LeaderAppend {
    /// The outcome as it stands, for `acks` 0 and 1 (answered once in the leader's log).
    pub(crate) fn outcome(self) -> AppendOutcome {
        match self.result {
            Ok(a) => AppendOutcome {
                result: Ok(a.info),
                log_append_time_ms: a.log_append_time_ms,
            },
            Err(e) => AppendOutcome {
                result: Err(e),
                log_append_time_ms: -1,
            },
        }
    }
}

impl ReplicaManager {
    /// Checks and appends each entry as the leader, in order, on a blocking thread; the
    /// topics' configs (with `topics`' defaults) say how batches are validated. With
    /// `acks_all`, a partition whose ISR is smaller than its `min.insync.replicas` is
    /// refused (`NOT_ENOUGH_REPLICAS`) before anything is appended. Returns once every
    /// append is in its leader's log, one result per entry.
    pub(crate) async fn append_records(
        &self,
        topics: &TopicStore,
        entries: Vec<AppendEntry>,
        acks_all: bool,
    ) -> Vec<LeaderAppend> {
        if entries.is_empty() {
            return Vec::new();
        }
        let jobs: Vec<(Arc<Partition>, Checked)> = entries
            .into_iter()
            .map(|e| {
                let config = e.partition.topic().config();
                let policy = config.produce_policy(topics.defaults());
                let schemas = config.schema_validation();
                let min_isr = self.min_insync_replicas(e.partition.topic());
                let enough = if acks_all {
                    e.partition.check_enough_replicas(min_isr)
                } else {
                    Ok(())
                };
                let checked = enough
                    .and_then(|()| check_batches(e.records.as_ref(), policy.max_message_bytes))
                    .map(|()| {
                        // A copy the log may rewrite (it assigns offsets in place).
                        let bytes = e.records.as_deref().unwrap_or_default();
                        (crate::log::BUFFERS.copy_of(bytes), policy, schemas)
                    });
                (e.partition, checked)
            })
            .collect();
        let partitions: Vec<Arc<Partition>> = jobs.iter().map(|(p, _)| Arc::clone(p)).collect();
        let lookup = self.schemas.get().cloned();
        let appended = tokio::task::spawn_blocking(move || {
            jobs.into_iter()
                .map(|(partition, checked)| {
                    let result = checked.and_then(|(mut batches, policy, schemas)| {
                        crate::validation::check(
                            partition.topic().name(),
                            &schemas,
                            batches.as_ref(),
                            policy.max_message_bytes,
                            lookup.as_deref(),
                        )?;
                        partition.append_as_leader(&mut batches, &policy)
                    });
                    LeaderAppend { partition, result }
                })
                .collect::<Vec<_>>()
        })
        .await;
        match appended {
            Ok(appended) => appended,
            Err(e) => {
                let e = ReplicaError::internal(e);
                partitions
                    .into_iter()
                    .map(|partition| LeaderAppend {
                        partition,
                        result: Err(ReplicaError::Internal(e.to_string())),
                    })
                    .collect()
            }
        }
    }

    /// Completes `acks=all` appends: each resolves once its records are committed (the
    /// high watermark passed them, within `timeout`) and, when the broker's
    /// `acks_all_fsync` is on, fsynced. The waits start now, one per partition, so the
    /// caller may go on with other requests while the returned future runs; a retried
    /// duplicate waits for its first append's records like a new one.
    pub(crate) fn complete_acks_all(
        &self,
        appends: Vec<LeaderAppend>,
        timeout: Duration,
    ) -> impl Future<Output = Vec<AppendOutcome>> + Send + 'static {
        let fsync = self.acks_all_fsync;
        let waits: Vec<_> = appends
            .into_iter()
            .map(|a| {
                let wait = match &a.result {
                    Ok(done) => {
                        let offset = done.info.last_offset + 1;
                        let partition = Arc::clone(&a.partition);
                        let min_isr = self.min_insync_replicas(partition.topic());
                        Some(tokio::spawn(
                            partition.wait_committed(offset, min_isr, timeout, fsync),
                        ))
                    }
                    Err(_) => None,
                };
                (a, wait)
            })
            .collect();
        async move {
            let mut outcomes = Vec::with_capacity(waits.len());
            for (append, wait) in waits {
                let dir = append.partition.log().dir().to_path_buf();
                let mut outcome = append.outcome();
                if let Some(wait) = wait {
                    let waited = match wait.await {
                        Ok(result) => result,
                        Err(e) => Err(ReplicaError::Log(LogError::io(
                            dir,
                            std::io::Error::other(e.to_string()),
                        ))),
                    };
                    if let Err(e) = waited {
                        outcome.result = Err(e);
                    }
                }
                outcomes.push(outcome);
            }
            outcomes
        }
    }
}

/// Checks that the records are a sequence of whole batches, none over `max` bytes.
pub(crate) fn check_batches(records: Option<&Bytes>, max: i32) -> Result<(), ReplicaError> {
    let records = match records {
        Some(r) if !r.is_empty() => r,
        _ => return Err(ReplicaError::CorruptRecords),
    };
    let limit = max.max(0) as usize;
    for frame in crate::log::frames(records) {
        let size = match frame {
            Ok(frame) => frame.bytes.len(),
            // A batch announcing more than `max` is too large before it is cut short.
            Err(FrameError::Truncated { size, .. }) if size > limit => size,
            Err(_) => return Err(ReplicaError::CorruptRecords),
        };
        if size > limit {
            return Err(ReplicaError::RecordTooLarge { size, max });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        b[8..12].copy_from_slice(&((len - 12) as i32).to_be_bytes());
        b
    }

    #[test]
    fn oversized_batch_is_message_too_large_and_torn_one_corrupt() {
        let ok = Bytes::from(batch(100));
        assert!(check_batches(Some(&ok), 100).is_ok());
        assert!(matches!(
            check_batches(Some(&ok), 99),
            Err(ReplicaError::RecordTooLarge { size: 100, max: 99 })
        ));
        let torn = ok.slice(..90);
        assert!(matches!(
            check_batches(Some(&torn), 1000),
            Err(ReplicaError::CorruptRecords)
        ));
        assert!(matches!(
            check_batches(None, 1000),
            Err(ReplicaError::CorruptRecords)
        ));
    }
}
