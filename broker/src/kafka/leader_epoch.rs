//! OffsetForLeaderEpoch: where a leader epoch ends in this broker's replica, from the
//! partition log's leader-epoch cache (KIP-101, KIP-279), after the request's
//! `current_leader_epoch` is checked against the replica's (KIP-320: older is
//! `FENCED_LEADER_EPOCH`, newer `UNKNOWN_LEADER_EPOCH`). Consumers ask it to detect a
//! truncated log after a leader change; followers to find where to truncate theirs.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::dispatch::RequestContext;
use super::error::replica_error;
use crate::log::leader_epoch::{UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET};

/// Answers OffsetForLeaderEpoch.
pub(crate) fn handle(
    ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let broker = &ctx.broker;
    let replicas = broker.replicas();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = replicas.topic(broker.topics(), &t.topic, Default::default(), false);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let result = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(UNDEFINED_EPOCH)
                        .with_end_offset(UNDEFINED_EPOCH_OFFSET);
                    let answer = match &topic {
                        Err(e) => Err(replica_error(e)),
                        Ok(topic) => replicas
                            .partition(broker.topics(), topic, p.partition)
                            .and_then(|partition| {
                                partition.check_leader_epoch(p.current_leader_epoch)?;
                                Ok(partition.log().end_offset_for_epoch(p.leader_epoch))
                            })
                            .map_err(|e| replica_error(&e)),
                    };
                    match answer {
                        Err(e) => result.with_error_code(e.code()),
                        Ok((epoch, end_offset)) => {
                            result.with_leader_epoch(epoch).with_end_offset(end_offset)
                        }
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
