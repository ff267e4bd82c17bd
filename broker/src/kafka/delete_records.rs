//! DeleteRecords: moves a partition's log start offset forward (offset -1 means the high
//! watermark), making everything before it unreadable and its whole segments deletable.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::dispatch::RequestContext;
use super::error::{internal_error, log_error};
use super::lookup;

/// Answers DeleteRecords.
pub(crate) async fn handle(
    ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let broker = ctx.broker.clone();
    let topics = tokio::task::spawn_blocking(move || {
        req.topics
            .into_iter()
            .map(|t| {
                let topic = lookup::topic(&broker, &t.name, Default::default(), false);
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| {
                        let result = DeleteRecordsPartitionResult::default()
                            .with_partition_index(p.partition_index)
                            .with_low_watermark(-1);
                        let log = topic.as_ref().map_err(|e| *e).and_then(|t| {
                            t.partition(p.partition_index)
                                .ok_or(ResponseError::UnknownTopicOrPartition)
                        });
                        let log = match log {
                            Ok(log) => log,
                            Err(e) => return result.with_error_code(e.code()),
                        };
                        let offset = if p.offset == -1 {
                            log.high_watermark()
                        } else {
                            p.offset
                        };
                        match log.delete_records_before(offset) {
                            Ok(low) => result.with_low_watermark(low),
                            Err(e) => result.with_error_code(log_error(&e).code()),
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
