//! The replica layer: this broker's partitions as replicas, in the shape of Kafka's
//! `ReplicaManager` and `Partition`. It owns the domain of Produce and Fetch: finding the
//! partition a request names, the rules for internal topics, appending as the leader,
//! the `acks` wait, the high watermark, and reading with the Fetch wait for data; the
//! handlers in `crate::kafka` only translate requests into these calls and results into
//! responses.
//!
//! Terms, as in Kafka: each partition has *replicas* on several brokers, one of them the
//! *leader* (which takes appends, in a *leader epoch* that grows at each leadership
//! change) and the others *followers* that copy its log; the *in-sync replicas* (ISR) are
//! those caught up with the leader; the *high watermark* is the smallest log end offset
//! over the ISR, and records below it are *committed*: consumers see only those, and an
//! `acks=all` append is answered once its records are committed.
//!
//! The metadata image says who leads what ([`ReplicaManager::apply_partition_state`]);
//! a broker without a controller (unit tests) leads every partition alone in epoch 0,
//! with an ISR of itself, so the high watermark follows the log end offset at each
//! append. A leader takes its followers' fetches ([`Partition::on_follower_fetch`]):
//! each tells how far the follower's log goes, or learns where it diverges (KIP-320).
//!
//! Files: `partition` (one [`Partition`]: its role, epoch, ISR, followers, high watermark,
//! append, the commit wait, reads), `append` (Produce: checks, appends, the `acks=all`
//! completion), `fetch` (Fetch: reads within a memory budget and the wait for data),
//! `error` ([`ReplicaError`]).

mod append;
mod error;
mod fetch;
mod fetcher;
mod partition;
#[cfg(test)]
mod replication_tests;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use uuid::Uuid;

use crate::validation::SchemaLookup;

pub(crate) use append::{AppendEntry, AppendOutcome};
pub use error::ReplicaError;
pub(crate) use fetch::{FetchGrant, FetchMemory, FetchOutcome, FetchParams, FetchTarget};
pub(crate) use partition::FollowerFetch;
use partition::StateChange;
pub use partition::{Partition, PartitionState};

use crate::log::PartitionLog;
use crate::topics::{CONSUMER_OFFSETS, Topic, TopicStore};

/// This broker's replicas, by (topic id, partition).
#[derive(Debug)]
pub struct ReplicaManager {
    node_id: i32,
    /// Whether an `acks=all` append also waits for the leader's fsync.
    acks_all_fsync: bool,
    partitions: DashMap<(Uuid, i32), Arc<Partition>>,
    /// Partitions added since deleted topics' entries were last dropped.
    added: AtomicUsize,
    /// Set once the metadata image says who leads what: partitions it never named are
    /// then no longer lazily led by this broker alone.
    managed: AtomicBool,
    /// The broker's `min.insync.replicas`, for topics that do not set it.
    min_insync_replicas: AtomicI32,
    /// The tasks fetching the partitions this broker follows, one per leader.
    fetchers: fetcher::Fetchers,
    /// The schema registry, for topics with schema validation (`crate::validation`).
    schemas: OnceLock<Arc<dyn SchemaLookup>>,
}

impl ReplicaManager {
    /// The replicas of node `node_id`; `acks_all_fsync` as in `BrokerConfig`.
    pub fn new(node_id: i32, acks_all_fsync: bool) -> ReplicaManager {
        ReplicaManager {
            node_id,
            acks_all_fsync,
            partitions: DashMap::new(),
            added: AtomicUsize::new(0),
            managed: AtomicBool::new(false),
            fetchers: fetcher::Fetchers::new(node_id),
            min_insync_replicas: AtomicI32::new(1),
            schemas: OnceLock::new(),
        }
    }

    /// Sets the broker's `min.insync.replicas` (`--min-insync-replicas`), which topics
    /// that do not set their own follow.
    pub fn set_min_insync_replicas(&self, min: i32) {
        self.min_insync_replicas
            .store(min.max(1), Ordering::Relaxed);
    }

    /// `min.insync.replicas` of `topic`: its own setting, else the broker's.
    pub(crate) fn min_insync_replicas(&self, topic: &Topic) -> usize {
        let own = topic
            .config()
            .overrides()
            .get("min.insync.replicas")
            .and_then(|v| v.parse::<i32>().ok());
        own.unwrap_or_else(|| self.min_insync_replicas.load(Ordering::Relaxed))
            .max(1) as usize
    }

    /// This broker's node id.
    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// Once called (`strand serve` does, when a controller is attached), partitions never
    /// given a state answer `NOT_LEADER_OR_FOLLOWER` instead of being lazily made sole
    /// leaders.
    pub fn set_managed(&self) {
        self.managed.store(true, Ordering::Release);
    }

    fn is_managed(&self) -> bool {
        self.managed.load(Ordering::Acquire)
    }

    /// Makes this node leader or follower of (topic, index) as `state` says (Kafka's
    /// `makeLeader`/`makeFollower`); `leader_addr` is the leader's Kafka listener
    /// (host, port), which a follower fetches from. A state older than the one held is
    /// ignored; a new `log` (the topic was recreated) replaces the replica.
    pub fn apply_partition_state(
        &self,
        topic: &Arc<Topic>,
        index: i32,
        log: Arc<PartitionLog>,
        state: PartitionState,
        leader_addr: Option<(String, u16)>,
    ) {
        let key = (topic.id(), index);
        let existing = self
            .partitions
            .get(&key)
            .map(|p| Arc::clone(p.value()))
            .filter(|p| Arc::ptr_eq(p.log(), &log));
        let (partition, change) = match existing {
            Some(p) => match p.apply_state(&state) {
                Ok(change) => (p, change),
                Err(e) => {
                    tracing::error!(topic = topic.name(), partition = index, error = %e,
                        "could not apply the partition's state");
                    return;
                }
            },
            None => {
                match Partition::with_state(Arc::clone(topic), index, self.node_id, log, &state) {
                    Ok(p) => {
                        let p = Arc::new(p);
                        self.partitions.insert(key, Arc::clone(&p));
                        let change = if p.is_leader() {
                            StateChange::BecameLeader
                        } else {
                            StateChange::BecameFollower
                        };
                        (p, change)
                    }
                    Err(e) => {
                        tracing::error!(topic = topic.name(), partition = index, error = %e,
                            "could not apply the partition's state");
                        return;
                    }
                }
            }
        };
        tracing::debug!(
            topic = topic.name(),
            partition = index,
            ?state,
            ?change,
            "applied partition state"
        );
        self.on_state_change(&partition, change, leader_addr);
    }

    /// Stops replicating a partition this node no longer hosts (topic deleted or
    /// replicas reassigned).
    pub fn remove_partition(&self, topic_id: Uuid, index: i32) {
        if let Some((_, p)) = self.partitions.remove(&(topic_id, index)) {
            self.on_removed(&p);
        }
    }

    /// Starts, moves or stops the fetching of `partition` after a change of its role.
    fn on_state_change(
        &self,
        partition: &Arc<Partition>,
        change: StateChange,
        leader_addr: Option<(String, u16)>,
    ) {
        let key = (partition.topic().id(), partition.index());
        let leader = partition.leader_id().filter(|&l| l != self.node_id);
        match (leader, leader_addr) {
            (Some(leader), Some(addr)) if !partition.is_leader() => {
                self.fetchers.follow(Arc::clone(partition), leader, addr)
            }
            _ => {
                if change == StateChange::BecameFollower && leader.is_some() {
                    tracing::warn!(
                        topic = partition.topic().name(),
                        partition = partition.index(),
                        "following a leader whose address is not known: not fetching"
                    );
                }
                self.fetchers.stop(key)
            }
        }
    }

    /// Stops fetching a partition that went away.
    fn on_removed(&self, partition: &Arc<Partition>) {
        self.fetchers
            .stop((partition.topic().id(), partition.index()));
    }

    /// Gives schema validation its registry; the first one given stays.
    pub fn attach_schema_lookup(&self, lookup: Arc<dyn SchemaLookup>) {
        let _ = self.schemas.set(lookup);
    }

    /// The topic named `name`, or with id `id` when `by_id`.
    pub(crate) fn topic(
        &self,
        topics: &TopicStore,
        name: &str,
        id: Uuid,
        by_id: bool,
    ) -> Result<Arc<Topic>, ReplicaError> {
        if by_id {
            topics
                .topic_by_id(id)
                .ok_or(ReplicaError::UnknownTopicId(id))
        } else {
            topics
                .topic(name)
                .ok_or_else(|| ReplicaError::UnknownTopicOrPartition {
                    topic: name.to_string(),
                    partition: -1,
                })
        }
    }

    /// Like [`ReplicaManager::topic`], for a client's Produce: the broker's own
    /// `__consumer_offsets` is written by the group coordinator only.
    pub(crate) fn topic_for_produce(
        &self,
        topics: &TopicStore,
        name: &str,
        id: Uuid,
        by_id: bool,
    ) -> Result<Arc<Topic>, ReplicaError> {
        let topic = self.topic(topics, name, id, by_id)?;
        if topic.name() == CONSUMER_OFFSETS {
            return Err(ReplicaError::InternalTopic(topic.name().to_string()));
        }
        Ok(topic)
    }

    /// Partition `index` of `topic` (found in `topics`) as this broker's replica of it.
    pub(crate) fn partition(
        &self,
        topics: &TopicStore,
        topic: &Arc<Topic>,
        index: i32,
    ) -> Result<Arc<Partition>, ReplicaError> {
        let log = topic.partition(index).ok_or_else(|| {
            // A partition of the cluster held by other brokers only.
            if (0..topic.partition_count()).contains(&index) {
                ReplicaError::NotLeaderOrFollower {
                    topic: topic.name().to_string(),
                    partition: index,
                }
            } else {
                ReplicaError::UnknownTopicOrPartition {
                    topic: topic.name().to_string(),
                    partition: index,
                }
            }
        })?;
        let key = (topic.id(), index);
        if let Some(p) = self.partitions.get(&key)
            && Arc::ptr_eq(p.log(), &log)
        {
            return Ok(Arc::clone(&p));
        }
        if self.is_managed() {
            // The metadata image has not given this node a part in the partition.
            return Err(ReplicaError::NotLeaderOrFollower {
                topic: topic.name().to_string(),
                partition: index,
            });
        }
        let partition = Arc::new(Partition::new_sole_leader(
            Arc::clone(topic),
            index,
            self.node_id,
            log,
        ));
        let partition = Arc::clone(
            self.partitions
                .entry(key)
                .and_modify(|p| {
                    if !Arc::ptr_eq(p.log(), partition.log()) {
                        *p = Arc::clone(&partition);
                    }
                })
                .or_insert_with(|| Arc::clone(&partition))
                .value(),
        );
        self.forget_deleted_now_and_then(topics);
        Ok(partition)
    }

    /// Drops the entries of deleted topics once as many partitions were added as are
    /// held, so that the map follows the live topics at an amortised constant cost.
    fn forget_deleted_now_and_then(&self, topics: &TopicStore) {
        let added = self.added.fetch_add(1, Ordering::Relaxed) + 1;
        if added < self.partitions.len().max(64) {
            return;
        }
        self.added.store(0, Ordering::Relaxed);
        self.partitions
            .retain(|(id, _), _| topics.topic_by_id(*id).is_some());
    }
}
