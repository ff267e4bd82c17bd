//! Produce: translates the request into appends on the replica layer
//! ([`crate::replica`]), which checks and appends each partition's record batches as sent
//! (compressed or not) and completes `acks`; this answers per `acks`: 0 sends nothing, 1
//! answers once the batches are in the log, -1 (all) once they are committed (and, with
//! `acks_all_fsync`, fsynced; group commit).
//!
//! A partition refused by the topic's schema validation (`crate::validation`) answers
//! `INVALID_RECORD` with `record_errors` (each bad record's index and reason) and an
//! `error_message` naming the first reasons.
//!
//! Request-level checks are here: `acks` must be -1, 0 or 1 (`INVALID_REQUIRED_ACKS`) and
//! transactions are not supported yet (`TRANSACTIONAL_ID_AUTHORIZATION_FAILED`). Errors
//! are per partition; the other partitions of the request proceed.

use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::dispatch::{Reply, RequestContext};
use super::error::replica_error;
use crate::replica::{AppendEntry, AppendOutcome, ReplicaError};

/// Where one partition's append result goes in the response.
#[derive(Debug, Clone, Copy)]
struct Slot {
    topic: usize,
    partition: usize,
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

    let replicas = broker.replicas();
    let topics = broker.topics();
    let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut entries = Vec::new();
    let mut slots = Vec::new();
    for (ti, t) in req.topic_data.into_iter().enumerate() {
        let topic = match request_error {
            Some(e) => Err(e),
            None => replicas
                .topic_for_produce(topics, &t.name, t.topic_id, by_id)
                .map_err(|e| replica_error(&e)),
        };
        let mut partitions = Vec::with_capacity(t.partition_data.len());
        for (pi, p) in t.partition_data.into_iter().enumerate() {
            let mut resp = PartitionProduceResponse::default()
                .with_index(p.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let partition = topic.as_ref().map_err(|e| *e).and_then(|topic| {
                replicas
                    .partition(topics, topic, p.index)
                    .map_err(|e| replica_error(&e))
            });
            match partition {
                Ok(partition) => {
                    entries.push(AppendEntry {
                        partition,
                        records: p.records,
                    });
                    slots.push(Slot {
                        topic: ti,
                        partition: pi,
                    });
                }
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
    let appended = replicas.append_records(topics, entries, acks == -1).await;
    if acks != -1 {
        let outcomes = appended.into_iter().map(|a| a.outcome()).collect();
        fill(version, &mut responses, &slots, outcomes);
        return finish(version, acks, responses, None);
    }
    // acks=all: the appends are done; the waits for their commit run now, one per
    // partition, and the connection goes on with the next requests meanwhile.
    let committed = replicas.complete_acks_all(appended, timeout);
    Reply::Later(Box::pin(async move {
        let outcomes = committed.await;
        fill(version, &mut responses, &slots, outcomes);
        finish(version, acks, responses, None)
    }))
}

/// Puts each partition's append outcome into its response.
fn fill(
    version: i16,
    responses: &mut [TopicProduceResponse],
    slots: &[Slot],
    outcomes: Vec<AppendOutcome>,
) {
    for (slot, outcome) in slots.iter().zip(outcomes) {
        let topic = &mut responses[slot.topic];
        let resp = &mut topic.partition_responses[slot.partition];
        match outcome.result {
            Ok(info) => {
                resp.base_offset = info.base_offset;
                resp.log_start_offset = info.log_start_offset;
                resp.log_append_time_ms = outcome.log_append_time_ms;
            }
            Err(e) => {
                tracing::debug!(topic = %topic.name.as_str(), partition = resp.index, "produce failed: {e}");
                resp.error_code = replica_error(&e).code();
                if version >= 8 {
                    if let ReplicaError::InvalidRecord { errors, .. } = &e {
                        resp.record_errors = errors
                            .iter()
                            .map(|(index, reason)| {
                                BatchIndexAndErrorMessage::default()
                                    .with_batch_index(*index)
                                    .with_batch_index_error_message(Some(StrBytes::from_string(
                                        reason.clone(),
                                    )))
                            })
                            .collect();
                    }
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
