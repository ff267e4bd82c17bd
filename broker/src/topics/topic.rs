//! One topic: its name, id, partition logs and config overrides, plus Kafka's topic name
//! rules.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
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
    /// The logs this node holds, by partition index: all of them on a single node; in a
    /// cluster only those the metadata image assigns to this node.
    partitions: RwLock<BTreeMap<i32, Arc<PartitionLog>>>,
    /// How many partitions the topic has in the cluster (held here or not).
    count: AtomicI32,
    /// Whether the topic is in the metadata log (else it predates clusters and is this
    /// node's alone until it is bootstrapped into the log).
    managed: AtomicBool,
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
        let count = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
        Topic {
            name,
            id,
            internal,
            partitions: RwLock::new((0..).zip(partitions).collect()),
            count: AtomicI32::new(count),
            managed: AtomicBool::new(false),
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

    /// The log of partition `index`, if this node holds it.
    pub fn partition(&self, index: i32) -> Option<Arc<PartitionLog>> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&index)
            .cloned()
    }

    /// The partition logs this node holds, with their indexes, in partition order.
    pub fn partitions(&self) -> Vec<(i32, Arc<PartitionLog>)> {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(p, log)| (*p, Arc::clone(log)))
            .collect()
    }

    /// How many partitions the topic has in the cluster (this node may hold fewer).
    pub fn partition_count(&self) -> i32 {
        self.count.load(Ordering::Acquire)
    }

    /// Whether the topic is in the metadata log (created through the controller, or
    /// bootstrapped into it from a data directory older than clusters).
    pub fn is_managed(&self) -> bool {
        self.managed.load(Ordering::Acquire)
    }

    pub(crate) fn set_managed(&self) {
        self.managed.store(true, Ordering::Release);
    }

    /// Forgets that the topic is in the metadata log (this node's metadata log was lost):
    /// it is bootstrapped into the new one instead of deleted.
    pub(crate) fn clear_managed(&self) {
        self.managed.store(false, Ordering::Release);
    }

    pub(crate) fn set_partition_count(&self, count: i32) {
        self.count.fetch_max(count, Ordering::AcqRel);
    }

    /// Whether this node holds a log of partition `index`.
    pub(crate) fn holds(&self, index: i32) -> bool {
        self.partitions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&index)
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

    /// Adds partition logs this node now holds, by index; the count grows to cover them.
    pub(crate) fn add_partitions(&self, logs: Vec<(i32, Arc<PartitionLog>)>) {
        let mut partitions = self.partitions.write().unwrap_or_else(|e| e.into_inner());
        for (index, log) in logs {
            self.count
                .fetch_max(index.saturating_add(1), Ordering::AcqRel);
            partitions.insert(index, log);
        }
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
