//! ListOffsets: offsets by time, answered by the replica layer
//! ([`crate::replica::Partition::fetch_offset_for_timestamp`]). The special timestamps are
//! Kafka's: -2 the log start offset (earliest), -1 the high watermark (latest), -3 the
//! record with the largest timestamp, -4 the earliest local offset (= earliest here); any
//! other timestamp finds the first record whose timestamp is at or after it.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::dispatch::RequestContext;
use super::error::replica_error;
use crate::replica::{Partition, ReplicaError};

/// One partition to look up, and where its answer goes.
struct Lookup {
    topic: usize,
    partition: usize,
    replica: Arc<Partition>,
    timestamp: i64,
}

/// Answers ListOffsets.
pub(crate) async fn handle(ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let broker = &ctx.broker;
    let replicas = broker.replicas();
    let topics_store = broker.topics();
    let version = ctx.version();
    let mut topics = Vec::with_capacity(req.topics.len());
    let mut lookups: Vec<Lookup> = Vec::new();
    for (ti, t) in req.topics.into_iter().enumerate() {
        let topic = replicas
            .topic(topics_store, &t.name, Default::default(), false)
            .map_err(|e| replica_error(&e));
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for (pi, p) in t.partitions.into_iter().enumerate() {
            let mut resp = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let partition = topic.as_ref().map_err(|e| *e).and_then(|topic| {
                let partition = replicas.partition(topics_store, topic, p.partition_index)?;
                partition.check_leader()?;
                partition.check_leader_epoch(p.current_leader_epoch)?;
                Ok(partition)
            });
            match partition {
                Ok(replica) => lookups.push(Lookup {
                    topic: ti,
                    partition: pi,
                    replica,
                    timestamp: p.timestamp,
                }),
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
    if lookups.is_empty() {
        return ListOffsetsResponse::default().with_topics(topics);
    }
    let found = tokio::task::spawn_blocking(move || {
        lookups
            .into_iter()
            .map(|l| {
                let found = l.replica.fetch_offset_for_timestamp(l.timestamp);
                (l, found)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(ReplicaError::internal);
    match found {
        Ok(found) => {
            for (l, result) in found {
                let resp = &mut topics[l.topic].partitions[l.partition];
                match result {
                    Ok(Some((offset, timestamp))) => {
                        resp.offset = offset;
                        resp.timestamp = timestamp;
                        if version >= 4 {
                            resp.leader_epoch = l.replica.leader_epoch();
                        }
                    }
                    Ok(None) => {}
                    Err(e) => resp.error_code = replica_error(&e).code(),
                }
            }
        }
        Err(e) => {
            let code = replica_error(&e).code();
            for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                if p.error_code == 0 {
                    p.error_code = code;
                }
            }
        }
    }
    ListOffsetsResponse::default().with_topics(topics)
}
