//! The records of the metadata log, in the spirit of KRaft's metadata records
//! (`RegisterBrokerRecord`, `FenceBrokerRecord`, `TopicRecord`, `PartitionRecord`,
//! `PartitionChangeRecord`, `ConfigRecord`, `RemoveTopicRecord`, `ProducerIdsRecord`).
//! The controller quorum replicates these through Raft and every node applies them, in log
//! order, into its [`MetadataImage`](super::image::MetadataImage). They are plain serde
//! types: a record is what happened, never how the wire asked for it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A Kafka node id (`node.id`): the broker id clients see and the controller's voter id.
pub type BrokerId = i32;

/// One entry of the metadata log.
///
/// Reserved for the records that come next (their image maps are ready in
/// [`MetadataImage`](super::image::MetadataImage)): `AccessControlEntry` /
/// `RemoveAccessControlEntry` (ACLs), `UserScramCredential` / `RemoveUserScramCredential`
/// (SCRAM credentials), and the `__transaction_state` coordination records. Adding a
/// variant is compatible: records are tagged by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// A broker announced itself (KRaft's `RegisterBrokerRecord`); it starts fenced.
    RegisterBroker(RegisterBroker),
    /// A broker stopped heartbeating, or shut down: it leads and follows nothing.
    FenceBroker {
        /// The broker.
        node_id: BrokerId,
        /// The registration this fencing is about; a newer registration is left alone.
        incarnation_id: Uuid,
    },
    /// A fenced broker heartbeats again and may lead and join ISRs.
    UnfenceBroker {
        /// The broker.
        node_id: BrokerId,
        /// The registration this unfencing is about.
        incarnation_id: Uuid,
    },
    /// A topic came to be (KRaft's `TopicRecord` plus its initial `ConfigRecord`s); its
    /// partitions follow as [`MetadataRecord::Partition`] records.
    CreateTopic {
        /// The topic's name.
        name: String,
        /// The topic id clients see in Metadata v10+.
        topic_id: Uuid,
        /// Topic-level config overrides (`cleanup.policy`, `min.insync.replicas`, …).
        configs: BTreeMap<String, String>,
    },
    /// A partition's initial state (KRaft's `PartitionRecord`).
    Partition(PartitionRecord),
    /// A change of a partition's leader, ISR or replicas (KRaft's `PartitionChangeRecord`).
    PartitionChange(PartitionChange),
    /// A topic config set (`Some`) or removed back to its default (`None`).
    ConfigChange {
        /// The topic.
        topic_id: Uuid,
        /// The config name, e.g. `retention.ms`.
        name: String,
        /// The new value, or `None` to delete the override.
        value: Option<String>,
    },
    /// A topic and all its partitions are gone (KRaft's `RemoveTopicRecord`).
    DeleteTopic {
        /// The topic.
        topic_id: Uuid,
    },
    /// A block of producer ids handed to a broker (KRaft's `ProducerIdsRecord`).
    ProducerIdBlock {
        /// The broker the block was given to.
        node_id: BrokerId,
        /// The first id of the block; the block is `[first, first + size)`.
        first_producer_id: i64,
        /// How many ids the block holds.
        size: i64,
    },
}

/// The roles a node plays (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Roles {
    /// Serves the Kafka protocol and hosts partition replicas.
    pub broker: bool,
    /// Is a voter of the controller quorum.
    pub controller: bool,
}

/// A broker registration (KRaft's `RegisterBrokerRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterBroker {
    /// The broker's node id.
    pub node_id: BrokerId,
    /// A fresh uuid per process start, so that a restarted broker is told from its
    /// predecessor (Kafka's `incarnationId`).
    pub incarnation_id: Uuid,
    /// The host of the Kafka listener advertised to clients.
    pub host: String,
    /// The port of the Kafka listener advertised to clients.
    pub port: u16,
    /// The rack (`broker.rack`), if any.
    pub rack: Option<String>,
    /// Which roles the node plays.
    pub roles: Roles,
}

/// A partition's initial state (KRaft's `PartitionRecord`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionRecord {
    /// The topic.
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
    /// The replicas, preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// The in-sync replicas.
    pub isr: Vec<BrokerId>,
    /// The leader, or `None` when no replica can lead.
    pub leader: Option<BrokerId>,
    /// Bumped on every leader change; stamped in each batch (`partitionLeaderEpoch`).
    pub leader_epoch: i32,
    /// Bumped on every change of the partition (Kafka's `partitionEpoch`).
    pub partition_epoch: i32,
}

/// What a [`PartitionChange`] does to the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LeaderChange {
    /// The leader stays (Kafka's `-2`).
    #[default]
    Unchanged,
    /// No replica leads (Kafka's `-1`).
    None,
    /// This broker leads.
    To(BrokerId),
}

/// A change of a partition (KRaft's `PartitionChangeRecord`), guarded by the partition
/// epoch it was computed against: applied to any other epoch it does nothing, so that two
/// changes decided against the same state cannot both land (AlterPartition semantics).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionChange {
    /// The topic.
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
    /// The partition epoch the change was computed against.
    pub expected_partition_epoch: i32,
    /// The new leader, if it changes.
    pub leader: LeaderChange,
    /// The new ISR, if it changes.
    pub isr: Option<Vec<BrokerId>>,
    /// The new replica list, if it changes (reassignment).
    pub replicas: Option<Vec<BrokerId>>,
}

impl MetadataRecord {
    /// A short name of the record's kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            MetadataRecord::RegisterBroker(_) => "register_broker",
            MetadataRecord::FenceBroker { .. } => "fence_broker",
            MetadataRecord::UnfenceBroker { .. } => "unfence_broker",
            MetadataRecord::CreateTopic { .. } => "create_topic",
            MetadataRecord::Partition(_) => "partition",
            MetadataRecord::PartitionChange(_) => "partition_change",
            MetadataRecord::ConfigChange { .. } => "config_change",
            MetadataRecord::DeleteTopic { .. } => "delete_topic",
            MetadataRecord::ProducerIdBlock { .. } => "producer_id_block",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json() {
        let records = vec![
            MetadataRecord::RegisterBroker(RegisterBroker {
                node_id: 1,
                incarnation_id: Uuid::from_u128(7),
                host: "h".into(),
                port: 9092,
                rack: Some("r1".into()),
                roles: Roles {
                    broker: true,
                    controller: true,
                },
            }),
            MetadataRecord::PartitionChange(PartitionChange {
                topic_id: Uuid::from_u128(3),
                partition: 2,
                expected_partition_epoch: 4,
                leader: LeaderChange::To(2),
                isr: Some(vec![2, 3]),
                replicas: None,
            }),
            MetadataRecord::ConfigChange {
                topic_id: Uuid::from_u128(3),
                name: "retention.ms".into(),
                value: None,
            },
        ];
        for record in records {
            let json = serde_json::to_vec(&record).unwrap();
            let back: MetadataRecord = serde_json::from_slice(&json).unwrap();
            assert_eq!(back, record);
        }
    }
}
