//! The metadata image: the in-memory state every node builds by applying the metadata log
//! in order (KRaft's `MetadataImage`). It answers what the broker layer asks (live brokers,
//! who leads a partition at which epoch, the ISR, topic configs) and holds the controller's
//! decisions as pure functions of the image: replica assignment for a new topic, leader
//! election when a broker is fenced, validation of an ISR change (AlterPartition). The
//! decisions return records; only [`MetadataImage::apply`] changes the image, so that every
//! node that applies the same log holds the same image.
//!
//! Invariants [`MetadataImage::apply`] checks before a partition record or change enters
//! the image, whatever it is fed: the leader, when there is one, is a live (registered,
//! unfenced) member of the ISR; the ISR is a non-empty subset of the replicas; every
//! change bumps the partition epoch and every leader change bumps the leader epoch; a
//! partition has no leader only when no ISR member is live. A broker's fencing or
//! re-registration is written together with the partition changes that restore them
//! ([`MetadataImage::fence_records`]), as KRaft writes them in one atomic batch.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ControllerError;
use super::records::{
    BrokerId, LeaderChange, MetadataRecord, PartitionChange, PartitionRecord, RegisterBroker,
};

/// The topic config that allows electing a leader from outside the ISR (losing data).
pub const UNCLEAN_LEADER_ELECTION: &str = "unclean.leader.election.enable";

/// A registered broker as the image knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerState {
    /// The registration as the broker sent it.
    pub registration: RegisterBroker,
    /// Kafka's broker epoch: a number that grows with every registration in the cluster,
    /// so a heartbeat from a previous process of the same node id is told apart.
    pub broker_epoch: i64,
    /// A fenced broker leads nothing and is in no ISR (except as the last member).
    pub fenced: bool,
}

/// One partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The replicas, preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// The in-sync replicas.
    pub isr: Vec<BrokerId>,
    /// The leader, if any replica can lead.
    pub leader: Option<BrokerId>,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The partition epoch.
    pub partition_epoch: i32,
}

/// A topic with its configs and partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    /// The name.
    pub name: String,
    /// The topic id.
    pub topic_id: Uuid,
    /// Config overrides; a missing name means the broker's default.
    pub configs: BTreeMap<String, String>,
    /// The partitions by index.
    pub partitions: BTreeMap<i32, PartitionState>,
}

/// The kind of leader election asked for (Kafka's `ElectLeaders` election type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// Move leadership back to the first replica when it is live and in the ISR.
    Preferred,
    /// Elect a live replica outside the ISR when no ISR member can lead.
    Unclean,
}

/// Why a record did not apply. The image is unchanged when apply returns one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ApplyError {
    /// No topic with this id.
    #[error("unknown topic id {0}")]
    UnknownTopicId(Uuid),
    /// No such partition.
    #[error("unknown partition {partition} of topic {topic_id}")]
    UnknownPartition {
        /// The topic.
        topic_id: Uuid,
        /// The partition.
        partition: i32,
    },
    /// A topic of that name or id exists.
    #[error("topic {0} already exists")]
    TopicExists(String),
    /// The partition exists, or would leave a gap in the partition indexes.
    #[error(
        "partition {partition} of {topic_id} cannot be created: the topic has {count} partitions"
    )]
    PartitionNotNext {
        /// The topic.
        topic_id: Uuid,
        /// The partition in the record.
        partition: i32,
        /// How many partitions the topic has.
        count: usize,
    },
    /// The broker is not registered, or under another incarnation.
    #[error("broker {node_id} is not registered with incarnation {incarnation_id}")]
    UnknownIncarnation {
        /// The broker.
        node_id: BrokerId,
        /// The incarnation in the record.
        incarnation_id: Uuid,
    },
    /// The change was computed against another partition epoch.
    #[error("partition change expected epoch {expected}, partition is at {current}")]
    StalePartitionEpoch {
        /// The epoch the change expected.
        expected: i32,
        /// The partition's epoch.
        current: i32,
    },
    /// The resulting partition state would break an invariant.
    #[error("invalid partition state: {0}")]
    InvalidPartitionState(String),
    /// The producer-id block starts before the last one ended.
    #[error("producer id block starting at {first} (size {size}) does not follow {next}")]
    ProducerIdBlockOutOfOrder {
        /// The block's first id.
        first: i64,
        /// The block's size.
        size: i64,
        /// The next id the image expects.
        next: i64,
    },
    /// A field is out of its range (negative node id, empty name).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
}

/// The metadata image. Maps are ordered so that two nodes' snapshots of the same image
/// are the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MetadataImage {
    brokers: BTreeMap<BrokerId, BrokerState>,
    topics: BTreeMap<Uuid, TopicImage>,
    topic_ids: BTreeMap<String, Uuid>,
    next_producer_id: i64,
    broker_epochs: i64,
    /// ACL bindings, filled by the security issue's ACL records.
    #[serde(default)]
    acls: BTreeMap<Uuid, serde_json::Value>,
    /// SCRAM credentials by `user/mechanism`, filled by the security issue's records.
    #[serde(default)]
    scram_credentials: BTreeMap<String, serde_json::Value>,
}

impl PartitionState {
    /// Whether `broker` is one of the replicas.
    pub fn is_replica(&self, broker: BrokerId) -> bool {
        self.replicas.contains(&broker)
    }
}

impl MetadataImage {
    /// An empty image: what a fresh cluster starts from.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one record. A record that does not apply to this image changes nothing and
    /// says why; apply never panics, whatever the record holds.
    pub fn apply(&mut self, record: &MetadataRecord) -> Result<(), ApplyError> {
        match record {
            MetadataRecord::RegisterBroker(registration) => self.apply_register(registration),
            MetadataRecord::FenceBroker {
                node_id,
                incarnation_id,
            } => self.set_fenced(*node_id, *incarnation_id, true),
            MetadataRecord::UnfenceBroker {
                node_id,
                incarnation_id,
            } => self.set_fenced(*node_id, *incarnation_id, false),
            MetadataRecord::CreateTopic {
                name,
                topic_id,
                configs,
            } => {
                if name.is_empty() {
                    return Err(ApplyError::InvalidRecord("empty topic name".into()));
                }
                if self.topic_ids.contains_key(name) || self.topics.contains_key(topic_id) {
                    return Err(ApplyError::TopicExists(name.clone()));
                }
                self.topic_ids.insert(name.clone(), *topic_id);
                self.topics.insert(
                    *topic_id,
                    TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        configs: configs.clone(),
                        partitions: BTreeMap::new(),
                    },
                );
                Ok(())
            }
            MetadataRecord::Partition(record) => self.apply_partition(record),
            MetadataRecord::PartitionChange(change) => self.apply_change(change),
            MetadataRecord::ConfigChange {
                topic_id,
                name,
                value,
            } => {
                let topic = self
                    .topics
                    .get_mut(topic_id)
                    .ok_or(ApplyError::UnknownTopicId(*topic_id))?;
                match value {
                    Some(value) => topic.configs.insert(name.clone(), value.clone()),
                    None => topic.configs.remove(name),
                };
                Ok(())
            }
            MetadataRecord::DeleteTopic { topic_id } => {
                let topic = self
                    .topics
                    .remove(topic_id)
                    .ok_or(ApplyError::UnknownTopicId(*topic_id))?;
                self.topic_ids.remove(&topic.name);
                Ok(())
            }
            MetadataRecord::ProducerIdBlock {
                node_id: _,
                first_producer_id,
                size,
            } => {
                let next = first_producer_id.checked_add(*size).filter(|_| *size > 0);
                match next {
                    // A block may skip ids (those a node handed out before it joined a
                    // cluster), never go back.
                    Some(next) if *first_producer_id >= self.next_producer_id => {
                        self.next_producer_id = next;
                        Ok(())
                    }
                    _ => Err(ApplyError::ProducerIdBlockOutOfOrder {
                        first: *first_producer_id,
                        size: *size,
                        next: self.next_producer_id,
                    }),
                }
            }
        }
    }

    fn apply_register(&mut self, registration: &RegisterBroker) -> Result<(), ApplyError> {
        if registration.node_id < 0 {
            return Err(ApplyError::InvalidRecord(format!(
                "negative node id {}",
                registration.node_id
            )));
        }
        if let Some(existing) = self.brokers.get(&registration.node_id) {
            // A retried registration of the same process changes nothing.
            if existing.registration.incarnation_id == registration.incarnation_id {
                return Ok(());
            }
        }
        self.broker_epochs += 1;
        self.brokers.insert(
            registration.node_id,
            BrokerState {
                registration: registration.clone(),
                broker_epoch: self.broker_epochs,
                fenced: true,
            },
        );
        Ok(())
    }

    fn set_fenced(
        &mut self,
        node_id: BrokerId,
        incarnation_id: Uuid,
        fenced: bool,
    ) -> Result<(), ApplyError> {
        match self.brokers.get_mut(&node_id) {
            Some(broker) if broker.registration.incarnation_id == incarnation_id => {
                broker.fenced = fenced;
                Ok(())
            }
            _ => Err(ApplyError::UnknownIncarnation {
                node_id,
                incarnation_id,
            }),
        }
    }

    fn apply_partition(&mut self, record: &PartitionRecord) -> Result<(), ApplyError> {
        let state = PartitionState {
            replicas: record.replicas.clone(),
            isr: record.isr.clone(),
            leader: record.leader,
            leader_epoch: record.leader_epoch,
            partition_epoch: record.partition_epoch,
        };
        if record.leader_epoch < 0 || record.partition_epoch < 0 {
            return Err(ApplyError::InvalidRecord("negative epoch".into()));
        }
        self.check_partition_state(&state)?;
        let topic = self
            .topics
            .get_mut(&record.topic_id)
            .ok_or(ApplyError::UnknownTopicId(record.topic_id))?;
        let count = topic.partitions.len();
        if usize::try_from(record.partition).ok() != Some(count) {
            return Err(ApplyError::PartitionNotNext {
                topic_id: record.topic_id,
                partition: record.partition,
                count,
            });
        }
        topic.partitions.insert(record.partition, state);
        Ok(())
    }

    fn apply_change(&mut self, change: &PartitionChange) -> Result<(), ApplyError> {
        let current = self.partition(change.topic_id, change.partition).ok_or(
            ApplyError::UnknownPartition {
                topic_id: change.topic_id,
                partition: change.partition,
            },
        )?;
        if current.partition_epoch != change.expected_partition_epoch {
            return Err(ApplyError::StalePartitionEpoch {
                expected: change.expected_partition_epoch,
                current: current.partition_epoch,
            });
        }
        let leader = match change.leader {
            LeaderChange::Unchanged => current.leader,
            LeaderChange::None => None,
            LeaderChange::To(leader) => Some(leader),
        };
        let bump = |epoch: i32| {
            epoch
                .checked_add(1)
                .ok_or_else(|| ApplyError::InvalidPartitionState("epoch overflow".into()))
        };
        let next = PartitionState {
            replicas: change
                .replicas
                .clone()
                .unwrap_or_else(|| current.replicas.clone()),
            isr: change.isr.clone().unwrap_or_else(|| current.isr.clone()),
            leader,
            leader_epoch: if leader != current.leader {
                bump(current.leader_epoch)?
            } else {
                current.leader_epoch
            },
            partition_epoch: bump(current.partition_epoch)?,
        };
        self.check_partition_state(&next)?;
        if let Some(slot) = self
            .topics
            .get_mut(&change.topic_id)
            .and_then(|topic| topic.partitions.get_mut(&change.partition))
        {
            *slot = next;
        }
        Ok(())
    }

    /// The invariants of a partition state, checked before it enters the image.
    fn check_partition_state(&self, state: &PartitionState) -> Result<(), ApplyError> {
        let invalid = |reason: String| Err(ApplyError::InvalidPartitionState(reason));
        if state.replicas.is_empty() {
            return invalid("no replicas".into());
        }
        if !distinct(&state.replicas) || !distinct(&state.isr) {
            return invalid(format!(
                "duplicate broker in replicas {:?} or isr {:?}",
                state.replicas, state.isr
            ));
        }
        if state.isr.is_empty() {
            return invalid("empty isr".into());
        }
        if let Some(outside) = state.isr.iter().find(|b| !state.replicas.contains(b)) {
            return invalid(format!("isr member {outside} is not a replica"));
        }
        match state.leader {
            Some(leader) if !state.isr.contains(&leader) => {
                invalid(format!("leader {leader} is not in the isr"))
            }
            Some(leader) if !self.is_live(leader) => {
                invalid(format!("leader {leader} is not a live broker"))
            }
            None if state.isr.iter().any(|b| self.is_live(*b)) => invalid(format!(
                "no leader although isr {:?} has a live member",
                state.isr
            )),
            _ => Ok(()),
        }
    }

    // ---- what the broker layer asks ----

    /// Whether `broker` is registered and unfenced.
    pub fn is_live(&self, broker: BrokerId) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced)
    }

    /// A registered broker.
    pub fn broker(&self, broker: BrokerId) -> Option<&BrokerState> {
        self.brokers.get(&broker)
    }

    /// Every registered broker, by node id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerState> {
        self.brokers.values()
    }

    /// The registered, unfenced brokers, by node id: what Metadata lists.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerState> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Every topic, by topic id.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values()
    }

    /// A topic by id.
    pub fn topic(&self, topic_id: Uuid) -> Option<&TopicImage> {
        self.topics.get(&topic_id)
    }

    /// A topic by name.
    pub fn topic_by_name(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids.get(name).and_then(|id| self.topics.get(id))
    }

    /// A partition's leader, epochs and ISR.
    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<&PartitionState> {
        self.topics
            .get(&topic_id)
            .and_then(|t| t.partitions.get(&partition))
    }

    /// A topic config override, if set.
    pub fn topic_config(&self, topic_id: Uuid, name: &str) -> Option<&str> {
        self.topics
            .get(&topic_id)
            .and_then(|t| t.configs.get(name))
            .map(String::as_str)
    }

    /// The partitions `broker` leads, as (topic id, partition).
    pub fn partitions_led_by(&self, broker: BrokerId) -> Vec<(Uuid, i32)> {
        self.partitions_where(|p| p.leader == Some(broker))
    }

    /// The partitions `broker` is a replica of but does not lead.
    pub fn partitions_followed_by(&self, broker: BrokerId) -> Vec<(Uuid, i32)> {
        self.partitions_where(|p| p.leader != Some(broker) && p.is_replica(broker))
    }

    /// The first producer id not yet handed out.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    fn partitions_where(&self, keep: impl Fn(&PartitionState) -> bool) -> Vec<(Uuid, i32)> {
        self.topics
            .values()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|(_, p)| keep(p))
                    .map(|(i, _)| (t.topic_id, *i))
            })
            .collect()
    }

    fn unclean_allowed(&self, topic_id: Uuid) -> bool {
        self.topic_config(topic_id, UNCLEAN_LEADER_ELECTION)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    // ---- the controller's decisions: pure functions from the image to records ----

    /// Kafka's rack-unaware replica assignment: partition `p`'s first replica is the
    /// `(start + p)`-th live broker, the others follow at a shift that grows every time the
    /// partitions wrap around the brokers, so that leaders and followers both spread.
    /// `seed` picks the start and first shift (Kafka picks them at random).
    pub fn assign_replicas(
        &self,
        first_partition: i32,
        partitions: i32,
        replication_factor: i32,
        seed: u64,
    ) -> Result<Vec<Vec<BrokerId>>, ControllerError> {
        let brokers: Vec<BrokerId> = self
            .live_brokers()
            .map(|b| b.registration.node_id)
            .collect();
        let n = brokers.len();
        let rf = usize::try_from(replication_factor).unwrap_or(0);
        if rf == 0 || rf > n {
            return Err(ControllerError::InvalidReplicationFactor {
                requested: replication_factor,
                available: n,
            });
        }
        if partitions < 1 {
            return Err(ControllerError::InvalidPartitions(format!(
                "{partitions} partitions requested"
            )));
        }
        let start = (seed % n as u64) as usize;
        let mut shift = ((seed / n as u64) % n as u64) as usize;
        let mut assignment = Vec::new();
        for index in 0..partitions {
            let p = usize::try_from(first_partition.saturating_add(index)).unwrap_or(0);
            if p > 0 && p % n == 0 {
                shift += 1;
            }
            let first = (p + start) % n;
            let mut replicas = vec![brokers[first]];
            for j in 0..rf - 1 {
                let step = 1 + (shift + j) % (n - 1).max(1);
                replicas.push(brokers[(first + step) % n]);
            }
            assignment.push(replicas);
        }
        Ok(assignment)
    }

    /// The records that create `name` with the given assignment (one replica list per
    /// partition). The ISR of each partition is its live replicas and the leader the first
    /// of them, as Kafka does.
    pub fn create_topic_records(
        &self,
        name: &str,
        topic_id: Uuid,
        configs: BTreeMap<String, String>,
        assignment: &[Vec<BrokerId>],
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        if self.topic_ids.contains_key(name) || self.topics.contains_key(&topic_id) {
            return Err(ControllerError::TopicAlreadyExists(name.to_string()));
        }
        let mut records = vec![MetadataRecord::CreateTopic {
            name: name.to_string(),
            topic_id,
            configs,
        }];
        records.extend(self.partition_records(topic_id, 0, assignment)?);
        Ok(records)
    }

    /// The records that grow `topic_id` to `assignment.len()` more partitions.
    pub fn create_partitions_records(
        &self,
        topic_id: Uuid,
        assignment: &[Vec<BrokerId>],
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let topic = self
            .topics
            .get(&topic_id)
            .ok_or(ControllerError::UnknownTopicId(topic_id))?;
        let first = i32::try_from(topic.partitions.len())
            .map_err(|_| ControllerError::InvalidPartitions("too many partitions".into()))?;
        self.partition_records(topic_id, first, assignment)
    }

    fn partition_records(
        &self,
        topic_id: Uuid,
        first: i32,
        assignment: &[Vec<BrokerId>],
    ) -> Result<Vec<MetadataRecord>, ControllerError> {
        let bad = |reason: String| Err(ControllerError::InvalidReplicaAssignment(reason));
        if assignment.is_empty() {
            return Err(ControllerError::InvalidPartitions(
                "no partitions to create".into(),
            ));
        }
        let rf = assignment[0].len();
        let mut records = Vec::with_capacity(assignment.len());
        for (index, replicas) in assignment.iter().enumerate() {
            let partition = first.saturating_add(i32::try_from(index).unwrap_or(i32::MAX));
            if replicas.is_empty() || !distinct(replicas) {
                return bad(format!(
                    "partition {partition}: replicas {replicas:?} are empty or repeat a broker"
                ));
            }
            if replicas.len() != rf {
                return bad("all partitions must have the same number of replicas".into());
            }
            if let Some(unknown) = replicas.iter().find(|b| !self.brokers.contains_key(b)) {
                return bad(format!(
                    "partition {partition}: broker {unknown} is not registered"
                ));
            }
            let isr: Vec<BrokerId> = replicas
                .iter()
                .copied()
                .filter(|b| self.is_live(*b))
                .collect();
            let Some(leader) = isr.first().copied() else {
                return bad(format!(
                    "partition {partition}: every replica in {replicas:?} is fenced"
                ));
            };
            records.push(MetadataRecord::Partition(PartitionRecord {
                topic_id,
                partition,
                replicas: replicas.clone(),
                isr,
                leader: Some(leader),
                leader_epoch: 0,
                partition_epoch: 0,
            }));
        }
        Ok(records)
    }

    /// The records for fencing `node_id`: the fencing itself, then for every partition it
    /// led or was in the ISR of, its removal from the ISR (it stays as the last member
    /// when it is the only one, so it can lead again without data loss) and a new leader:
    /// the first live ISR member in replica order, or with `unclean.leader.election.enable`
    /// the first live replica, or none.
    pub fn fence_records(&self, node_id: BrokerId) -> Vec<MetadataRecord> {
        match self.brokers.get(&node_id) {
            Some(broker) if !broker.fenced => self.with_reconcile(MetadataRecord::FenceBroker {
                node_id,
                incarnation_id: broker.registration.incarnation_id,
            }),
            _ => Vec::new(),
        }
    }

    /// The records for unfencing `node_id`: the unfencing, then leaders for the partitions
    /// that had none and can now be led by it.
    pub fn unfence_records(&self, node_id: BrokerId) -> Vec<MetadataRecord> {
        match self.brokers.get(&node_id) {
            Some(broker) if broker.fenced => self.with_reconcile(MetadataRecord::UnfenceBroker {
                node_id,
                incarnation_id: broker.registration.incarnation_id,
            }),
            _ => Vec::new(),
        }
    }

    /// The records for a (re-)registration: a new incarnation starts fenced, so whatever
    /// the previous incarnation led moves as on a fencing.
    pub fn register_records(&self, registration: RegisterBroker) -> Vec<MetadataRecord> {
        self.with_reconcile(MetadataRecord::RegisterBroker(registration))
    }

    /// `first`, then the partition changes that restore the invariants after it.
    fn with_reconcile(&self, first: MetadataRecord) -> Vec<MetadataRecord> {
        let mut after = self.clone();
        if after.apply(&first).is_err() {
            return Vec::new();
        }
        let mut records = vec![first];
        records.extend(
            after
                .reconcile()
                .into_iter()
                .map(MetadataRecord::PartitionChange),
        );
        records
    }

    /// For every partition: fenced brokers leave the ISR (the last member stays), and a
    /// partition led by a fenced broker or by none gets the first live ISR member in
    /// replica order (or, when its topic allows unclean election, the first live replica).
    fn reconcile(&self) -> Vec<PartitionChange> {
        let mut changes = Vec::new();
        for topic in self.topics.values() {
            let unclean = self.unclean_allowed(topic.topic_id);
            for (index, p) in &topic.partitions {
                let mut isr: Vec<BrokerId> =
                    p.isr.iter().copied().filter(|b| self.is_live(*b)).collect();
                if isr.is_empty() {
                    let last = p
                        .leader
                        .filter(|l| p.isr.contains(l))
                        .or_else(|| p.isr.first().copied());
                    isr.extend(last);
                }
                let leader = if p
                    .leader
                    .is_some_and(|l| self.is_live(l) && isr.contains(&l))
                {
                    p.leader
                } else if let Some(l) = p
                    .replicas
                    .iter()
                    .copied()
                    .find(|b| isr.contains(b) && self.is_live(*b))
                {
                    Some(l)
                } else if let Some(l) = p
                    .replicas
                    .iter()
                    .copied()
                    .find(|b| unclean && self.is_live(*b))
                {
                    isr = vec![l];
                    Some(l)
                } else {
                    None
                };
                if leader != p.leader || isr != p.isr {
                    changes.push(PartitionChange {
                        topic_id: topic.topic_id,
                        partition: *index,
                        expected_partition_epoch: p.partition_epoch,
                        leader: match leader {
                            _ if leader == p.leader => LeaderChange::Unchanged,
                            Some(l) => LeaderChange::To(l),
                            None => LeaderChange::None,
                        },
                        isr: (isr != p.isr).then_some(isr),
                        replicas: None,
                    });
                }
            }
        }
        changes
    }

    /// Validates an AlterPartition from `broker` (the leader) proposing `new_isr` at the
    /// epochs it knows, as Kafka's controller does. `Ok(None)` means the ISR already is
    /// `new_isr`; `Ok(Some(change))` is the record to write.
    pub fn alter_partition(
        &self,
        broker: BrokerId,
        topic_id: Uuid,
        partition: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        new_isr: &[BrokerId],
    ) -> Result<Option<PartitionChange>, ControllerError> {
        let state =
            self.partition(topic_id, partition)
                .ok_or(if self.topics.contains_key(&topic_id) {
                    ControllerError::UnknownPartition {
                        topic_id,
                        partition,
                    }
                } else {
                    ControllerError::UnknownTopicId(topic_id)
                })?;
        if state.leader != Some(broker) {
            return Err(ControllerError::NotLeaderOrFollower {
                topic_id,
                partition,
                broker,
                leader: state.leader,
            });
        }
        if leader_epoch != state.leader_epoch {
            return Err(ControllerError::FencedLeaderEpoch {
                request: leader_epoch,
                current: state.leader_epoch,
            });
        }
        if partition_epoch != state.partition_epoch {
            return Err(ControllerError::InvalidUpdateVersion {
                request: partition_epoch,
                current: state.partition_epoch,
            });
        }
        if !distinct(new_isr) || !new_isr.contains(&broker) {
            return Err(ControllerError::InvalidRequest(format!(
                "isr {new_isr:?} must hold the leader {broker} once and no broker twice"
            )));
        }
        if let Some(outside) = new_isr.iter().find(|b| !state.replicas.contains(b)) {
            return Err(ControllerError::InvalidRequest(format!(
                "isr member {outside} is not a replica"
            )));
        }
        if let Some(ineligible) = new_isr
            .iter()
            .find(|b| !state.isr.contains(b) && !self.is_live(**b))
        {
            return Err(ControllerError::IneligibleReplica(format!(
                "broker {ineligible} is fenced or unregistered"
            )));
        }
        if new_isr == state.isr.as_slice() {
            return Ok(None);
        }
        Ok(Some(PartitionChange {
            topic_id,
            partition,
            expected_partition_epoch: state.partition_epoch,
            leader: LeaderChange::Unchanged,
            isr: Some(new_isr.to_vec()),
            replicas: None,
        }))
    }

    /// An `ElectLeaders` decision for one partition.
    pub fn elect_leader(
        &self,
        topic_id: Uuid,
        partition: i32,
        election: ElectionType,
    ) -> Result<PartitionChange, ControllerError> {
        let state =
            self.partition(topic_id, partition)
                .ok_or(ControllerError::UnknownPartition {
                    topic_id,
                    partition,
                })?;
        let change = |leader: BrokerId, isr: Option<Vec<BrokerId>>| PartitionChange {
            topic_id,
            partition,
            expected_partition_epoch: state.partition_epoch,
            leader: LeaderChange::To(leader),
            isr,
            replicas: None,
        };
        match election {
            ElectionType::Preferred => {
                let preferred = state.replicas[0];
                if state.leader == Some(preferred) {
                    Err(ControllerError::ElectionNotNeeded)
                } else if state.isr.contains(&preferred) && self.is_live(preferred) {
                    Ok(change(preferred, None))
                } else {
                    Err(ControllerError::PreferredLeaderNotAvailable)
                }
            }
            ElectionType::Unclean => {
                if state.leader.is_some() {
                    return Err(ControllerError::ElectionNotNeeded);
                }
                let leader = state
                    .replicas
                    .iter()
                    .copied()
                    .find(|b| self.is_live(*b))
                    .ok_or(ControllerError::EligibleLeadersNotAvailable)?;
                Ok(change(leader, Some(vec![leader])))
            }
        }
    }
}

fn distinct(brokers: &[BrokerId]) -> bool {
    brokers.iter().collect::<BTreeSet<_>>().len() == brokers.len()
}

#[cfg(test)]
mod tests;
