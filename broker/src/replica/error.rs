//! [`ReplicaError`]: why the replica layer refused or failed an append or a read.

use uuid::Uuid;

use crate::log::LogError;

/// An error of the replica layer; `kafka::error::replica_error` turns it into a Kafka code.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// No topic of that name, or it has no such partition.
    #[error("unknown topic or partition {topic}-{partition}")]
    UnknownTopicOrPartition {
        /// The topic as named (or its id).
        topic: String,
        /// The partition index asked for.
        partition: i32,
    },
    /// No topic with that id.
    #[error("unknown topic id {0}")]
    UnknownTopicId(Uuid),
    /// This broker does not lead the partition (it follows, or holds no replica).
    #[error("this broker is not the leader of {topic}-{partition}")]
    NotLeaderOrFollower {
        /// The topic.
        topic: String,
        /// The partition index.
        partition: i32,
    },
    /// Clients may not write to a topic the broker keeps itself.
    #[error("topic {0} is written by the broker only")]
    InternalTopic(String),
    /// The records are not a sequence of whole batches.
    #[error("the records are not a sequence of whole record batches")]
    CorruptRecords,
    /// A batch is larger than the topic's `max.message.bytes`.
    #[error("a batch of {size} bytes exceeds max.message.bytes ({max})")]
    RecordTooLarge {
        /// Bytes of the batch.
        size: usize,
        /// The topic's `max.message.bytes`.
        max: i32,
    },
    /// The client knows a newer leader epoch than this replica (KIP-320).
    #[error("leader epoch {requested} is newer than the current {current}")]
    UnknownLeaderEpoch {
        /// The epoch the request carried.
        requested: i32,
        /// This replica's epoch.
        current: i32,
    },
    /// The client's leader epoch is older than this replica's (KIP-320).
    #[error("leader epoch {requested} is older than the current {current}")]
    FencedLeaderEpoch {
        /// The epoch the request carried.
        requested: i32,
        /// This replica's epoch.
        current: i32,
    },
    /// `acks=all` with fewer in-sync replicas than `min.insync.replicas`: nothing appended.
    #[error("{isr} in-sync replicas, fewer than min.insync.replicas ({min})")]
    NotEnoughReplicas {
        /// In-sync replicas now.
        isr: usize,
        /// The topic's `min.insync.replicas`.
        min: usize,
    },
    /// `acks=all` appended, but the ISR shrank below `min.insync.replicas` before it was
    /// committed.
    #[error("appended, but the ISR shrank to {isr}, fewer than min.insync.replicas ({min})")]
    NotEnoughReplicasAfterAppend {
        /// In-sync replicas now.
        isr: usize,
        /// The topic's `min.insync.replicas`.
        min: usize,
    },
    /// The in-sync replicas did not all reach the append within the request's timeout.
    #[error("the in-sync replicas did not reach offset {offset} within {timeout_ms} ms")]
    RequestTimedOut {
        /// The offset the append needed committed (its last offset + 1).
        offset: i64,
        /// The request's `timeout_ms`.
        timeout_ms: u64,
    },
    /// Records failed the topic's schema validation (`crate::validation`); nothing of
    /// the partition's records was appended.
    #[error("{message}")]
    InvalidRecord {
        /// Each refused record: its index in the request's records, and why.
        errors: Vec<(i32, String)>,
        /// The first reasons, for `error_message`.
        message: String,
    },
    /// The log refused or failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A blocking task of the replica layer panicked or was cancelled.
    #[error("a blocking task failed: {0}")]
    Internal(String),
}

impl ReplicaError {
    pub(crate) fn internal(e: tokio::task::JoinError) -> ReplicaError {
        tracing::error!(error = %e, "a blocking task of the replica layer failed");
        ReplicaError::Internal(e.to_string())
    }
}
