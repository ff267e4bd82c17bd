//! Produce: appends each partition's record batches to its log, as sent (compressed or
//! not), and answers per `acks`: 0 sends nothing, 1 answers once the batches are in the
//! log (page cache), -1 (all) once they are fsynced (group commit), unless
//! `acks_all_fsync` is off.
//!
//! Checks before the log sees a batch: the topic exists and is not internal, each batch
//! fits `max.message.bytes` (`MESSAGE_TOO_LARGE`) and its length fields add up
//! (`CORRUPT_MESSAGE`). Then, on the blocking thread, [`crate::log::prepare`] reads
//! every record (decompressing, bounded), applies the topic's `compression.type` and
//! `message.timestamp.*` configs (`CORRUPT_MESSAGE`, `INVALID_TIMESTAMP`), and the log
//! verifies the idempotent producer's sequence. Errors are per partition; the other
//! partitions of the request proceed.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::dispatch::{Reply, RequestContext};
use super::error::{internal_error, log_error};
use super::lookup;
use crate::log::{
    AppendInfo, FrameError, LogError, PartitionLog, ProducePolicy, ReadBuf, TimestampType,
};
use crate::topics::CONSUMER_OFFSETS;

/// One partition's append, prepared on the async side and run on a blocking thread.
struct Job {
    topic: usize,
    partition: usize,
    log: Arc<PartitionLog>,
    /// A copy the log may rewrite (it assigns offsets in place).
    batches: ReadBuf,
    /// What the topic's configs ask of the batches.
    policy: ProducePolicy,
}

/// Answers Produce.
pub(crate) async fn handle(ctx: &RequestContext, req: ProduceRequest) -> Reply {
    let broker = &ctx.broker;
    let by_id = ctx.version() >= 13;
    let acks = req.acks;
    let request_error = if !matches!(acks, -1..=1) {
        Some(ResponseError::InvalidRequiredAcks)
    } else if req.transactional_id.is_some() {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else {
        None
    };

    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut jobs = Vec::new();
    for (ti, t) in req.topic_data.into_iter().enumerate() {
        let topic = match request_error {
            Some(e) => Err(e),
            None => lookup::topic(broker, &t.name, t.topic_id, by_id).and_then(|topic| {
                if topic.name() == CONSUMER_OFFSETS {
                    Err(ResponseError::InvalidTopicException)
                } else {
                    Ok(topic)
                }
            }),
        };
        let mut partitions = Vec::with_capacity(t.partition_data.len());
        for (pi, p) in t.partition_data.into_iter().enumerate() {
            let mut resp = PartitionProduceResponse::default()
                .with_index(p.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let checked = topic.as_ref().map_err(|e| *e).and_then(|topic| {
                let log = topic
                    .partition(p.index)
                    .ok_or(ResponseError::UnknownTopicOrPartition)?;
                let policy = topic.config().produce_policy(broker.topics().defaults());
                check_batches(p.records.as_ref(), policy.max_message_bytes)?;
                Ok((log, policy))
            });
            match checked {
                Ok((log, policy)) => jobs.push(Job {
                    topic: ti,
                    partition: pi,
                    log,
                    batches: crate::log::BUFFERS.copy_of(p.records.as_deref().unwrap_or_default()),
                    policy,
                }),
                Err(e) => resp = resp.with_error_code(e.code()),
            }
            partitions.push(resp);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partition_responses(partitions),
        );
    }

    let version = ctx.version();
    let results = if jobs.is_empty() {
        Vec::new()
    } else {
        match tokio::task::spawn_blocking(move || append_all(jobs)).await {
            Ok(results) => results,
            Err(e) => {
                let code = internal_error(&e);
                return finish(version, acks, responses, Some(code));
            }
        }
    };
    if acks != -1 || !ctx.broker.config().acks_all_fsync {
        let results = results
            .into_iter()
            .map(|(t, p, r, _, time)| (t, p, r, time))
            .collect();
        fill(version, &mut responses, results);
        return finish(version, acks, responses, None);
    }
    // acks=all: the appends are done; the fsyncs run now, one per partition in parallel, and
    // the connection goes on with the next requests, whose appends the same fsyncs cover.
    let flushes: Vec<_> = results
        .into_iter()
        .map(|(t, p, result, log, time)| {
            let dir = log.dir().to_path_buf();
            let flush = match &result {
                // A retried duplicate waits for its first append's fsync too.
                Ok(info) => {
                    let last = info.last_offset;
                    Some(tokio::task::spawn_blocking(move || log.flush_to(last)))
                }
                Err(_) => None,
            };
            (t, p, result, flush, dir, time)
        })
        .collect();
    Reply::Later(Box::pin(async move {
        let mut results = Vec::with_capacity(flushes.len());
        for (t, p, result, flush, dir, time) in flushes {
            let result = match (result, flush) {
                (Ok(info), Some(flush)) => match flush.await {
                    Ok(Ok(())) => Ok(info),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(LogError::io(dir, std::io::Error::other(e.to_string()))),
                },
                (result, _) => result,
            };
            results.push((t, p, result, time));
        }
        fill(version, &mut responses, results);
        finish(version, acks, responses, None)
    }))
}

/// Puts each partition's append result into its response.
fn fill(
    version: i16,
    responses: &mut [TopicProduceResponse],
    results: Vec<(usize, usize, Result<AppendInfo, LogError>, i64)>,
) {
    for (ti, pi, result, log_append_time) in results {
        let topic = &mut responses[ti];
        let resp = &mut topic.partition_responses[pi];
        match result {
            Ok(info) => {
                resp.base_offset = info.base_offset;
                resp.log_start_offset = info.log_start_offset;
                resp.log_append_time_ms = log_append_time;
            }
            Err(e) => {
                tracing::debug!(topic = %topic.name.as_str(), partition = resp.index, "produce failed: {e}");
                resp.error_code = log_error(&e).code();
                if version >= 8 {
                    resp.error_message = Some(StrBytes::from_string(e.to_string()));
                }
            }
        }
    }
}

fn finish(
    version: i16,
    acks: i16,
    mut responses: Vec<TopicProduceResponse>,
    overall: Option<ResponseError>,
) -> Reply {
    if let Some(code) = overall {
        for p in responses
            .iter_mut()
            .flat_map(|t| t.partition_responses.iter_mut())
        {
            if p.error_code == 0 {
                p.error_code = code.code();
            }
        }
    }
    if acks == 0 {
        // Kafka closes the connection of an acks=0 producer whose write failed: the only
        // way to tell it something went wrong.
        let failed = responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.error_code != 0);
        return match failed {
            Some(p) => Reply::Close(format!(
                "acks=0 produce failed with error code {}",
                p.error_code
            )),
            None => Reply::None,
        };
    }
    if version < 13 {
        for t in responses.iter_mut() {
            t.topic_id = uuid::Uuid::nil();
        }
    }
    Reply::Response(ResponseKind::Produce(
        ProduceResponse::default().with_responses(responses),
    ))
}

/// One partition's append result, with where its response goes, the log it went to and
/// its `log_append_time_ms` (-1 unless the topic uses `LogAppendTime`).
type Appended = (
    usize,
    usize,
    Result<AppendInfo, LogError>,
    Arc<PartitionLog>,
    i64,
);

/// Validates and appends, in request order, on a blocking thread (decompression and
/// recompression included).
fn append_all(jobs: Vec<Job>) -> Vec<Appended> {
    jobs.into_iter()
        .map(|mut job| {
            let now = crate::shutdown::now_ms();
            let log_append_time = match job.policy.timestamp_type {
                TimestampType::LogAppendTime => now,
                TimestampType::CreateTime => -1,
            };
            let result = match crate::log::prepare(job.batches.as_mut_slice(), &job.policy, now) {
                Ok(None) => job.log.append(job.batches.as_mut_slice()),
                Ok(Some(mut rewritten)) => job.log.append(&mut rewritten),
                Err(e) => Err(e),
            };
            (job.topic, job.partition, result, job.log, log_append_time)
        })
        .collect()
}

/// Checks that the records are a sequence of whole batches, none over `max` bytes.
fn check_batches(records: Option<&Bytes>, max: i32) -> Result<(), ResponseError> {
    let records = match records {
        Some(r) if !r.is_empty() => r,
        _ => return Err(ResponseError::CorruptMessage),
    };
    let max = max.max(0) as usize;
    for frame in crate::log::frames(records) {
        let size = match frame {
            Ok(frame) => frame.bytes.len(),
            // A batch announcing more than `max` is too large before it is cut short.
            Err(FrameError::Truncated { size, .. }) if size > max => size,
            Err(_) => return Err(ResponseError::CorruptMessage),
        };
        if size > max {
            return Err(ResponseError::MessageTooLarge);
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
        assert_eq!(check_batches(Some(&ok), 100), Ok(()));
        assert_eq!(
            check_batches(Some(&ok), 99),
            Err(ResponseError::MessageTooLarge)
        );
        let torn = ok.slice(..90);
        assert_eq!(
            check_batches(Some(&torn), 1000),
            Err(ResponseError::CorruptMessage)
        );
        assert_eq!(
            check_batches(None, 1000),
            Err(ResponseError::CorruptMessage)
        );
    }
}
