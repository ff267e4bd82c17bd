//! ListOffsets: offsets by time. The special timestamps are Kafka's: -2 the log start
//! offset (earliest), -1 the high watermark (latest), -3 the record with the largest
//! timestamp, -4 the earliest local offset (= earliest here); any other timestamp finds
//! the first record whose timestamp is at or after it.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::dispatch::RequestContext;
use super::error::{internal_error, log_error};
use super::lookup;
use crate::log::{LogError, PartitionLog};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Answers ListOffsets.
pub(crate) async fn handle(ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let broker = &ctx.broker;
    let version = ctx.version();
    let mut topics = Vec::with_capacity(req.topics.len());
    let mut jobs: Vec<(usize, usize, Arc<PartitionLog>, i64)> = Vec::new();
    for (ti, t) in req.topics.into_iter().enumerate() {
        let topic = lookup::topic(broker, &t.name, Default::default(), false);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for (pi, p) in t.partitions.into_iter().enumerate() {
            let mut resp = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let log = topic.as_ref().map_err(|e| *e).and_then(|t| {
                t.partition(p.partition_index)
                    .ok_or(ResponseError::UnknownTopicOrPartition)
            });
            match log {
                Ok(_) if p.current_leader_epoch > 0 => {
                    resp.error_code = ResponseError::UnknownLeaderEpoch.code()
                }
                Ok(log) => jobs.push((ti, pi, log, p.timestamp)),
                Err(e) => resp.error_code = e.code(),
            }
            partitions.push(resp);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    if jobs.is_empty() {
        return ListOffsetsResponse::default().with_topics(topics);
    }
    let lookups: Vec<(usize, usize, i64, Arc<PartitionLog>)> = jobs
        .into_iter()
        .map(|(t, p, log, ts)| (t, p, ts, log))
        .collect();
    let found = tokio::task::spawn_blocking(move || {
        lookups
            .into_iter()
            .map(|(t, p, ts, log)| (t, p, find(&log, ts)))
            .collect::<Vec<_>>()
    })
    .await;
    match found {
        Ok(found) => {
            for (t, p, result) in found {
                let resp = &mut topics[t].partitions[p];
                match result {
                    Ok(Some((offset, timestamp))) => {
                        resp.offset = offset;
                        resp.timestamp = timestamp;
                        if version >= 4 {
                            resp.leader_epoch = 0;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => resp.error_code = log_error(&e).code(),
                }
            }
        }
        Err(e) => {
            let code = internal_error(&e).code();
            for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                if p.error_code == 0 {
                    p.error_code = code;
                }
            }
        }
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// The (offset, timestamp) answered for `timestamp` (blocking).
fn find(log: &PartitionLog, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
    Ok(match timestamp {
        LATEST | LATEST_TIERED => Some((log.high_watermark(), -1)),
        EARLIEST | EARLIEST_LOCAL => Some((log.log_start_offset(), -1)),
        MAX_TIMESTAMP => log.max_timestamp().map(|(ts, offset)| (offset, ts)),
        ts if ts >= 0 => log.offset_for_timestamp(ts)?,
        _ => None,
    })
}
