//! DeleteRecords: moves a partition's log start offset forward (offset -1 means the high
//! watermark), making everything before it unreadable and its whole segments deletable;
//! the replica layer ([`crate::replica::Partition::delete_records_before`]) does it, and
//! refuses an offset beyond the high watermark (`OFFSET_OUT_OF_RANGE`).

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::dispatch::RequestContext;
use super::error::{internal_error, replica_error};

/// Answers DeleteRecords.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let broker = ctx.broker.clone();
    let topics = tokio::task::spawn_blocking(move || {
        let replicas = broker.replicas();
        let store = broker.topics();
        req.topics
            .into_iter()
            .map(|t| {
                let topic = replicas
                    .topic(store, &t.name, Default::default(), false)
                    .map_err(|e| replica_error(&e));
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let result = DeleteRecordsPartitionResult::default()
                            .with_partition_index(p.partition_index)
                            .with_low_watermark(-1);
                        let deleted = topic.as_ref().map_err(|e| *e).and_then(|topic| {
                            let partition = replicas.partition(store, topic, p.partition_index)?;
                            Ok(partition.delete_records_before(p.offset)?)
                        });
                        match deleted {
                            Ok(low) => result.with_low_watermark(low),
                            Err(e) => result.with_error_code(e.code()),
                        }
                    })
                    .collect();
                DeleteRecordsTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect()
    })
    .await;
    match topics {
        Ok(topics) => DeleteRecordsResponse::default().with_topics(topics),
        Err(e) => {
            internal_error(&e);
            DeleteRecordsResponse::default()
        }
    }
}
