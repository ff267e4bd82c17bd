//! The one place where strand's errors become Kafka error codes.

use kafka_protocol::ResponseError;

use crate::log::LogError;
use crate::replica::ReplicaError;
use crate::topics::TopicStoreError;

/// The Kafka error code for a log error.
pub(crate) fn log_error(e: &LogError) -> ResponseError {
    match e {
        LogError::CorruptBatch { .. } => ResponseError::CorruptMessage,
        LogError::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        LogError::DuplicateSequence { .. } => ResponseError::DuplicateSequenceNumber,
        // A topic deleted while a request was using it.
        LogError::Closed { .. } => ResponseError::UnknownTopicOrPartition,
        // Only a follower's own appends meet it; no client request does.
        LogError::UnexpectedAppendOffset { .. } => ResponseError::UnknownServerError,
        LogError::CorruptSegment { .. }
        | LogError::Io { .. }
        | LogError::Offline { .. }
        | LogError::NoSpace { .. }
        | LogError::Encode(_) => ResponseError::KafkaStorageError,
    }
}

/// The Kafka error code for a replica-layer error (Produce, Fetch, ListOffsets,
/// DeleteRecords).
pub(crate) fn replica_error(e: &ReplicaError) -> ResponseError {
    match e {
        ReplicaError::UnknownTopicOrPartition { .. } => ResponseError::UnknownTopicOrPartition,
        ReplicaError::UnknownTopicId(_) => ResponseError::UnknownTopicId,
        ReplicaError::NotLeaderOrFollower { .. } => ResponseError::NotLeaderOrFollower,
        ReplicaError::InternalTopic(_) => ResponseError::InvalidTopicException,
        ReplicaError::CorruptRecords => ResponseError::CorruptMessage,
        ReplicaError::InvalidRecord { .. } => ResponseError::InvalidRecord,
        ReplicaError::RecordTooLarge { .. } => ResponseError::MessageTooLarge,
        ReplicaError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
        ReplicaError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        ReplicaError::RequestTimedOut { .. } => ResponseError::RequestTimedOut,
        ReplicaError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
        ReplicaError::NotEnoughReplicasAfterAppend { .. } => {
            ResponseError::NotEnoughReplicasAfterAppend
        }
        ReplicaError::Log(e) => log_error(e),
        ReplicaError::Internal(_) => ResponseError::UnknownServerError,
    }
}

impl From<ReplicaError> for ResponseError {
    fn from(e: ReplicaError) -> ResponseError {
        replica_error(&e)
    }
}

/// The Kafka error code for a cluster (topic administration) error.
pub(crate) fn cluster_error(e: &TopicStoreError) -> ResponseError {
    match e {
        TopicStoreError::InvalidTopic(_) => ResponseError::InvalidTopicException,
        TopicStoreError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        TopicStoreError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        TopicStoreError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        TopicStoreError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        TopicStoreError::InvalidConfig(_) => ResponseError::InvalidConfig,
        TopicStoreError::InvalidRequest(_) => ResponseError::InvalidRequest,
        TopicStoreError::Log(e) => log_error(e),
        TopicStoreError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        TopicStoreError::Controller(e) => e.response_error(),
        TopicStoreError::NotApplied(_) => ResponseError::RequestTimedOut,
        TopicStoreError::Io { .. } | TopicStoreError::Corrupt { .. } => {
            ResponseError::KafkaStorageError
        }
    }
}

/// Error code for a join error of a blocking task (a panic in the log layer).
pub(crate) fn internal_error(e: &tokio::task::JoinError) -> ResponseError {
    tracing::error!(error = %e, "a blocking task failed");
    ResponseError::UnknownServerError
}
