//! The one place where strand's errors become Kafka error codes.

use kafka_protocol::ResponseError;

use crate::cluster::ClusterError;
use crate::log::LogError;

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
        LogError::CorruptSegment { .. }
        | LogError::Io { .. }
        | LogError::Offline { .. }
        | LogError::NoSpace { .. }
        | LogError::Encode(_) => ResponseError::KafkaStorageError,
    }
}

/// The Kafka error code for a cluster (topic administration) error.
pub(crate) fn cluster_error(e: &ClusterError) -> ResponseError {
    match e {
        ClusterError::InvalidTopic(_) => ResponseError::InvalidTopicException,
        ClusterError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        ClusterError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        ClusterError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        ClusterError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        ClusterError::InvalidConfig(_) => ResponseError::InvalidConfig,
        ClusterError::InvalidRequest(_) => ResponseError::InvalidRequest,
        ClusterError::Log(e) => log_error(e),
        ClusterError::Io { .. } | ClusterError::Corrupt { .. } => ResponseError::KafkaStorageError,
    }
}

/// Error code for a join error of a blocking task (a panic in the log layer).
pub(crate) fn internal_error(e: &tokio::task::JoinError) -> ResponseError {
    tracing::error!(error = %e, "a blocking task failed");
    ResponseError::UnknownServerError
}
