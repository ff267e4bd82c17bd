//! The controller layer's errors. Each one names the Kafka error code a broker answers
//! with, so that the broker layer maps a controller refusal to the wire in one place
//! ([`ControllerError::error_code`]).

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::records::BrokerId;

/// Why the controller refused or could not carry out an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ControllerError {
    /// This node is not the active controller; `leader` is the one it knows of.
    #[error("this node is not the active controller (leader: {leader:?})")]
    NotController {
        /// The active controller, if known.
        leader: Option<BrokerId>,
    },
    /// The topic does not exist.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// The topic id does not exist.
    #[error("unknown topic id {0}")]
    UnknownTopicId(Uuid),
    /// The partition does not exist.
    #[error("unknown partition {partition} of topic {topic_id}")]
    UnknownPartition {
        /// The topic.
        topic_id: Uuid,
        /// The partition index.
        partition: i32,
    },
    /// A topic of that name exists.
    #[error("topic {0} already exists")]
    TopicAlreadyExists(String),
    /// The partition count asked for is not possible.
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    /// The replication factor is below 1 or above the number of live brokers.
    #[error("replication factor {requested} is invalid: {available} broker(s) available")]
    InvalidReplicationFactor {
        /// The replication factor asked for.
        requested: i32,
        /// How many unfenced brokers there are.
        available: usize,
    },
    /// An explicit replica assignment is malformed.
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    /// The broker asking is not the leader of the partition.
    #[error(
        "broker {broker} is not the leader of partition {partition} of {topic_id} (leader: {leader:?})"
    )]
    NotLeaderOrFollower {
        /// The topic.
        topic_id: Uuid,
        /// The partition index.
        partition: i32,
        /// The broker that asked.
        broker: BrokerId,
        /// The current leader.
        leader: Option<BrokerId>,
    },
    /// The request's leader epoch is older than the partition's.
    #[error("leader epoch {request} is older than the current {current}")]
    FencedLeaderEpoch {
        /// The epoch in the request.
        request: i32,
        /// The partition's epoch.
        current: i32,
    },
    /// The request's partition epoch is not the partition's.
    #[error("partition epoch {request} is not the current {current}")]
    InvalidUpdateVersion {
        /// The epoch in the request.
        request: i32,
        /// The partition's epoch.
        current: i32,
    },
    /// A new ISR names a replica that may not join it (fenced, unregistered).
    #[error("ineligible replica: {0}")]
    IneligibleReplica(String),
    /// The request contradicts itself (ISR without the leader, ISR outside the replicas).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The broker is not registered.
    #[error("broker {0} is not registered")]
    BrokerIdNotRegistered(BrokerId),
    /// The broker's epoch is not its current registration's.
    #[error("broker {node_id}: epoch {request} is not the current {current}")]
    StaleBrokerEpoch {
        /// The broker.
        node_id: BrokerId,
        /// The epoch in the request.
        request: i64,
        /// The epoch of its current registration.
        current: i64,
    },
    /// Another live process registered under this node id.
    #[error("broker {0} is already registered by another live process")]
    DuplicateBrokerRegistration(BrokerId),
    /// The leader is already the preferred (or an eligible) one.
    #[error("leader election not needed")]
    ElectionNotNeeded,
    /// The preferred replica is not live or not in the ISR.
    #[error("the preferred leader is not available")]
    PreferredLeaderNotAvailable,
    /// No replica may lead.
    #[error("no eligible leader is available")]
    EligibleLeadersNotAvailable,
    /// The quorum did not commit the proposal (lost leadership, shutting down, storage).
    #[error("metadata log: {0}")]
    Raft(String),
}

impl ControllerError {
    /// The Kafka error code a broker answers with.
    pub fn error_code(&self) -> i16 {
        self.response_error().code()
    }

    /// The Kafka error a broker answers with.
    pub fn response_error(&self) -> ResponseError {
        match self {
            ControllerError::NotController { .. } => ResponseError::NotController,
            ControllerError::UnknownTopic(_) | ControllerError::UnknownPartition { .. } => {
                ResponseError::UnknownTopicOrPartition
            }
            ControllerError::UnknownTopicId(_) => ResponseError::UnknownTopicId,
            ControllerError::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
            ControllerError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            ControllerError::InvalidReplicationFactor { .. } => {
                ResponseError::InvalidReplicationFactor
            }
            ControllerError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            ControllerError::NotLeaderOrFollower { .. } => ResponseError::NotLeaderOrFollower,
            ControllerError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
            ControllerError::InvalidUpdateVersion { .. } => ResponseError::InvalidUpdateVersion,
            ControllerError::IneligibleReplica(_) => ResponseError::IneligibleReplica,
            ControllerError::InvalidRequest(_) => ResponseError::InvalidRequest,
            ControllerError::BrokerIdNotRegistered(_) => ResponseError::BrokerIdNotRegistered,
            ControllerError::StaleBrokerEpoch { .. } => ResponseError::StaleBrokerEpoch,
            ControllerError::DuplicateBrokerRegistration(_) => {
                ResponseError::DuplicateBrokerRegistration
            }
            ControllerError::ElectionNotNeeded => ResponseError::ElectionNotNeeded,
            ControllerError::PreferredLeaderNotAvailable => {
                ResponseError::PreferredLeaderNotAvailable
            }
            ControllerError::EligibleLeadersNotAvailable => {
                ResponseError::EligibleLeadersNotAvailable
            }
            ControllerError::Raft(_) => ResponseError::RequestTimedOut,
        }
    }
}
