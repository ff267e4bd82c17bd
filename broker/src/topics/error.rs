//! Errors of the topic store: topic administration, configs and their persistence.

use std::path::PathBuf;

use crate::log::LogError;

/// Everything that can go wrong while creating, changing or loading topics.
#[derive(Debug, thiserror::Error)]
pub enum TopicStoreError {
    /// The topic name breaks Kafka's naming rules, or the topic may not be used this way.
    #[error("{0}")]
    InvalidTopic(String),
    /// No topic of that name or id exists.
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    /// A topic of that name already exists.
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// A partition count that is zero, negative, lower than the current one or too large.
    #[error("{0}")]
    InvalidPartitions(String),
    /// A replication factor other than 1 (or -1 for the default).
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// A config name that is unknown or a value out of its range.
    #[error("{0}")]
    InvalidConfig(String),
    /// A request that makes no sense (e.g. both an assignment and a partition count).
    #[error("{0}")]
    InvalidRequest(String),
    /// The partition log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A replica assignment names brokers that cannot hold the partitions.
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// The active controller refused the change, or could not be reached.
    #[error(transparent)]
    Controller(#[from] crate::controller::ControllerError),
    /// The change was committed but this node did not apply it in time.
    #[error("the change was made in the cluster, but this node did not see it within {0} ms")]
    NotApplied(u64),
    /// Reading or writing the topic metadata files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A metadata file holds something that is not what strand wrote.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl TopicStoreError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TopicStoreError::Io {
            path: path.into(),
            source,
        }
    }
}
