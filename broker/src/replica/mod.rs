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
//! `acks=all` append is answered once its records are committed. Today every partition
//! has one replica (this broker, leader in epoch 0, ISR of itself), so the high watermark
//! follows the log end offset at each append.
//!
//! Files: `partition` (one [`Partition`]: its role, epoch, ISR, followers, high watermark,
//! append, the commit wait, reads), `append` (Produce: checks, appends, the `acks=all`
//! completion), `fetch` (Fetch: reads within a memory budget and the wait for data),
//! `error` ([`ReplicaError`]).

mod append;
mod error;
mod fetch;
mod partition;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use uuid::Uuid;

pub(crate) use append::{AppendEntry, AppendOutcome};
pub use error::ReplicaError;
pub(crate) use fetch::{FetchGrant, FetchMemory, FetchOutcome, FetchParams, FetchTarget};
pub use partition::Partition;

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
}

impl ReplicaManager {
    /// The replicas of node `node_id`; `acks_all_fsync` as in `BrokerConfig`.
    pub fn new(node_id: i32, acks_all_fsync: bool) -> ReplicaManager {
        ReplicaManager {
            node_id,
            acks_all_fsync,
            partitions: DashMap::new(),
            added: AtomicUsize::new(0),
        }
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
        let log = topic
            .partition(index)
            .ok_or_else(|| ReplicaError::UnknownTopicOrPartition {
                topic: topic.name().to_string(),
                partition: index,
            })?;
        let key = (topic.id(), index);
        if let Some(p) = self.partitions.get(&key)
            && Arc::ptr_eq(p.log(), &log)
        {
            return Ok(Arc::clone(&p));
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
