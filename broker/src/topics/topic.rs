//! One topic: its name, id, partition logs and config overrides, plus Kafka's topic name
//! rules.

use std::sync::{Arc, RwLock};

use uuid::Uuid;

use super::{TopicConfig, TopicStoreError};
use crate::log::PartitionLog;

/// Longest topic name Kafka accepts.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Checks a topic name against Kafka's rules: non-empty, not `.` or `..`, at most 249
/// characters of `[a-zA-Z0-9._-]`.
pub fn validate_topic_name(name: &str) -> Result<(), TopicStoreError> {
    let why = if name.is_empty() {
        "Topic name is illegal, it can't be empty".to_string()
    } else if name == "." || name == ".." {
        "Topic name cannot be \".\" or \"..\"".to_string()
    } else if name.len() > MAX_TOPIC_NAME_LEN {
        format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, topic name: {name}"
        )
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )
    } else {
        return Ok(());
    };
    Err(TopicStoreError::InvalidTopic(why))
}

/// A topic: a named, identified set of partition logs sharing one config.
#[derive(Debug)]
pub struct Topic {
    name: String,
    id: Uuid,
    internal: bool,
    partitions: RwLock<Vec<Arc<PartitionLog>>>,
    config: RwLock<TopicConfig>,
}

impl Topic {
    pub(crate) fn new(
        name: String,
        id: Uuid,
        internal: bool,
        partitions: Vec<Arc<PartitionLog>>,
        config: TopicConfig,
    ) -> Topic {
        Topic {
            name,
            id,
            internal,
            partitions: RwLock::new(partitions),
            config: RwLock::new(config),
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The topic's id, fixed at creation and kept across restarts.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// True for the broker's own topics (`__consumer_offsets`).
    pub fn is_internal(&self) -> bool {
        self.internal
    }

    /// The log of partition `index`, if it exists.
    pub fn partition(&self, index: i32) -> Option<Arc<PartitionLog>> {
        let index = usize::try_from(index).ok()?;
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(index)
            .cloned()
    }

    /// Every partition log, in partition order.
    pub fn partitions(&self) -> Vec<Arc<PartitionLog>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many partitions the topic has.
    pub fn partition_count(&self) -> i32 {
        let n = self
            .partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        i32::try_from(n).unwrap_or(i32::MAX)
    }

    /// The topic's config overrides.
    pub fn config(&self) -> TopicConfig {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_config(&self, config: TopicConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    pub(crate) fn add_partitions(&self, logs: Vec<Arc<PartitionLog>>) {
        self.partitions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(logs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        for ok in ["a", "orders.v1", "A_b-c.9", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "ü", "a/b", &"x".repeat(250)] {
            assert!(
                matches!(
                    validate_topic_name(bad),
                    Err(TopicStoreError::InvalidTopic(_))
                ),
                "{bad}"
            );
        }
    }
}
