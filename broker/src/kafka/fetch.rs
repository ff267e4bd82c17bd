//! Fetch: translates the request into a read on the replica layer ([`crate::replica`]),
//! which returns stored batches exactly as the log holds them, honouring `max_bytes`,
//! each partition's `partition_max_bytes` and `min_bytes`, and waits up to `max_wait_ms`
//! for the high watermark to move when it finds too little.
//!
//! A fetch with a replica id (`replica_id`, or `replica_state.replica_id` from v15) is a
//! follower's: the leader checks that it is a replica, answers `diverging_epoch` when the
//! follower's `last_fetched_epoch` does not end where its log does (v12+), records its log
//! end offset (the fetch offset), moves the high watermark, and reads to the log end.
//!
//! As Kafka allows, fetch sessions (KIP-227) are declined: every response carries session
//! id 0, so clients send full fetch requests. The records a response carries hold a share
//! of the listener's response budget until they are written.

use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse};

use super::dispatch::RequestContext;
use super::error::replica_error;
use super::response_budget::{Grant, ResponseBudget};
use crate::log::FetchIsolation;
use crate::replica::{
    FetchGrant, FetchMemory, FetchOutcome, FetchParams, FetchTarget, FollowerFetch,
};

/// Where one partition's read goes in the response.
#[derive(Debug, Clone, Copy)]
struct Slot {
    topic: usize,
    partition: usize,
}

/// Answers Fetch, with the share of the process's response budget its batches hold until
/// they are written.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: FetchRequest,
) -> (FetchResponse, Option<Grant>) {
    let broker = &ctx.broker;
    let replicas = broker.replicas();
    let topics = broker.topics();
    let version = ctx.version();
    if req.session_id != 0 {
        let response = FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
        return (response, None);
    }
    let by_id = version >= 13;
    // A replica of the partition fetching to copy the leader's log (Kafka's follower
    // fetch): it reads to the log end and tells the leader how far it got.
    let replica_id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let from_follower = replica_id >= 0;
    let read_committed = req.isolation_level == 1;
    let mut responses = Vec::with_capacity(req.topics.len());
    let mut targets = Vec::new();
    let mut slots = Vec::new();
    for (ti, t) in req.topics.into_iter().enumerate() {
        let topic = replicas
            .topic(topics, &t.topic, t.topic_id, by_id)
            .map_err(|e| replica_error(&e));
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
            let partition = topic.as_ref().map_err(|e| *e).and_then(|topic| {
                let partition = replicas.partition(topics, topic, p.partition)?;
                partition.check_leader_epoch(p.current_leader_epoch)?;
                if !from_follower {
                    partition.check_leader()?;
                    return Ok((partition, FollowerFetch::Read));
                }
                // Before v12 a follower finds divergence with OffsetForLeaderEpoch.
                let last_fetched_epoch = if version >= 12 {
                    p.last_fetched_epoch
                } else {
                    -1
                };
                let fetch =
                    partition.on_follower_fetch(replica_id, p.fetch_offset, last_fetched_epoch)?;
                Ok((partition, fetch))
            });
            match partition {
                Ok((partition, FollowerFetch::Diverging { epoch, end_offset })) => {
                    data.diverging_epoch = EpochEndOffset::default()
                        .with_epoch(epoch)
                        .with_end_offset(end_offset);
                    data.high_watermark = partition.high_watermark();
                    data.last_stable_offset = data.high_watermark;
                    data.log_start_offset = partition.log().log_start_offset();
                    data.records = Some(Default::default());
                }
                Ok((partition, FollowerFetch::Read)) => {
                    targets.push(FetchTarget {
                        partition,
                        offset: p.fetch_offset,
                        max_bytes: p.partition_max_bytes.max(0) as usize,
                    });
                    slots.push(Slot {
                        topic: ti,
                        partition: pi,
                    });
                }
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

    let params = FetchParams {
        max_bytes: req.max_bytes.max(0) as usize,
        min_bytes: req.min_bytes.max(0) as usize,
        max_wait: Duration::from_millis(req.max_wait_ms.max(0) as u64),
        isolation: if from_follower {
            FetchIsolation::LogEnd
        } else {
            FetchIsolation::HighWatermark
        },
    };
    let (outcomes, held) = replicas
        .fetch_messages(params, targets, ctx.budget.as_ref())
        .await;
    fill(&mut responses, &slots, outcomes);
    let response = FetchResponse::default()
        .with_session_id(0)
        .with_responses(responses);
    (response, held)
}

fn fill(responses: &mut [FetchableTopicResponse], slots: &[Slot], outcomes: Vec<FetchOutcome>) {
    for (slot, outcome) in slots.iter().zip(outcomes) {
        let data = &mut responses[slot.topic].partitions[slot.partition];
        data.high_watermark = outcome.high_watermark;
        data.last_stable_offset = outcome.high_watermark;
        data.log_start_offset = outcome.log_start_offset;
        match outcome.records {
            Ok(records) => data.records = Some(records),
            Err(e) => data.error_code = replica_error(&e).code(),
        }
    }
}

impl FetchMemory for ResponseBudget {
    type Grant = Grant;

    fn grant(&self, want: usize, need: usize) -> impl Future<Output = Grant> + Send {
        ResponseBudget::grant(self, want, need)
    }
}

impl FetchGrant for Grant {
    fn bytes(&self) -> usize {
        Grant::bytes(self)
    }

    fn is_whole_budget(&self) -> bool {
        Grant::is_whole_budget(self)
    }

    fn try_grow(&mut self, to: usize) -> bool {
        Grant::try_grow(self, to)
    }

    fn shrink(&mut self, to: usize) {
        Grant::shrink(self, to)
    }
}
