//! OffsetForLeaderEpoch: where a leader epoch ends. This broker has only ever had leader
//! epoch 0, so epoch 0 ends at the log end offset and any later epoch is unknown
//! (answered with epoch and offset -1, as Kafka does).

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::dispatch::RequestContext;
use super::lookup;

/// Answers OffsetForLeaderEpoch.
pub(crate) fn handle(
    ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = lookup::topic(&ctx.broker, &t.topic, Default::default(), false);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let result = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let log = topic.as_ref().map_err(|e| *e).and_then(|t| {
                        t.partition(p.partition)
                            .ok_or(ResponseError::UnknownTopicOrPartition)
                    });
                    match log {
                        Err(e) => result.with_error_code(e.code()),
                        Ok(_) if p.current_leader_epoch > 0 => {
                            result.with_error_code(ResponseError::UnknownLeaderEpoch.code())
                        }
                        Ok(log) if p.leader_epoch == 0 => result
                            .with_leader_epoch(0)
                            .with_end_offset(log.log_end_offset()),
                        Ok(_) => result,
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
