//! [`Partition`]: one (topic, partition) as this broker's replica of it, in the shape of
//! Kafka's `Partition`: its log, its role (leader or follower) and leader epoch, and, on
//! the leader, the in-sync replica set (ISR) and each follower's log end offset, from
//! which it moves the high watermark.
//!
//! The high watermark is the smallest log end offset over the ISR: a record below it is
//! held by every in-sync replica, so it survives the loss of any of them and consumers may
//! see it. Today every partition has one replica, this broker, which leads it in epoch 0
//! with an ISR of itself: the high watermark follows the log end offset at each append,
//! and an `acks=all` append is committed as soon as it is in the log. The followers' map
//! and the wait for the high watermark in [`Partition::wait_committed`] are where
//! follower fetching will plug in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;

use super::ReplicaError;
use crate::log::{AppendInfo, FetchIsolation, PartitionLog, ProducePolicy, ReadBuf, TimestampType};
use crate::topics::Topic;

/// ListOffsets' special timestamps, as Kafka defines them.
pub(crate) mod timestamps {
    /// The high watermark (the offset the next committed record gets).
    pub(crate) const LATEST: i64 = -1;
    /// The log start offset.
    pub(crate) const EARLIEST: i64 = -2;
    /// The record with the largest timestamp.
    pub(crate) const MAX_TIMESTAMP: i64 = -3;
    /// The earliest offset on local disk (= the log start offset: nothing is tiered).
    pub(crate) const EARLIEST_LOCAL: i64 = -4;
    /// The latest tiered offset (= the high watermark: nothing is tiered).
    pub(crate) const LATEST_TIERED: i64 = -5;
}

/// What this broker is for the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Takes appends and moves the high watermark.
    Leader,
    /// Copies the leader's log.
    Follower {
        /// The leader's node id (`None`: no leader at the moment).
        leader: Option<i32>,
    },
}

/// The leader's view of one follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FollowerState {
    /// The follower's log end offset, as its last fetch told (-1: not known yet in this
    /// leader epoch).
    pub(crate) log_end_offset: i64,
    /// When (ms) the follower was last caught up with the leader's log end offset, as
    /// Kafka's `lastCaughtUpTimeMs` (for the ISR shrink after `replica.lag.time.max.ms`).
    pub(crate) last_caught_up_ms: i64,
    /// The leader's log end offset at the follower's previous fetch.
    pub(crate) last_fetch_leader_log_end: i64,
    /// When (ms) the previous fetch came.
    pub(crate) last_fetch_ms: i64,
}

impl FollowerState {
    fn unknown(now: i64) -> FollowerState {
        FollowerState {
            log_end_offset: -1,
            last_caught_up_ms: now,
            last_fetch_leader_log_end: -1,
            last_fetch_ms: now,
        }
    }
}

/// What the leader does with a follower's fetch of the partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FollowerFetch {
    /// Read from the fetch offset, up to the log end offset.
    Read,
    /// The follower's log diverges from the leader's: its last fetched epoch ends at
    /// `end_offset` here, in `epoch` (KIP-320's `diverging_epoch`); it truncates there.
    Diverging {
        /// The largest epoch of the leader's not above the follower's.
        epoch: i32,
        /// Where that epoch ends in the leader's log.
        end_offset: i64,
    },
}

/// What the metadata image says of one partition this node hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The leader's node id, `None` when the partition has none.
    pub leader: Option<i32>,
    /// The leader epoch: grows at each leadership change.
    pub leader_epoch: i32,
    /// The partition epoch: grows at each change of the partition (ISR, replicas).
    pub partition_epoch: i32,
    /// Node ids of every replica.
    pub replicas: Vec<i32>,
    /// Node ids of the in-sync replicas.
    pub isr: Vec<i32>,
}

/// Replication state, changed by leadership changes and follower fetches.
#[derive(Debug)]
struct ReplicaState {
    role: Role,
    leader_epoch: i32,
    partition_epoch: i32,
    /// Node ids of every replica.
    replicas: Vec<i32>,
    /// Node ids of the in-sync replicas, this broker included when it leads.
    isr: Vec<i32>,
    /// The other replicas, by node id, as the leader sees them (empty on a follower).
    followers: HashMap<i32, FollowerState>,
}

/// One partition as this broker's replica of it.
#[derive(Debug)]
pub struct Partition {
    topic: Arc<Topic>,
    index: i32,
    node_id: i32,
    log: Arc<PartitionLog>,
    state: Mutex<ReplicaState>,
}

/// What [`Partition::apply_state`] changed for replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateChange {
    /// Nothing: the state was not newer, or changed only the ISR of a leader.
    None,
    /// This broker leads now (or leads in a newer epoch): it stops fetching.
    BecameLeader,
    /// This broker follows now (or follows a newer epoch): its fetcher (re)starts.
    BecameFollower,
}

/// A successful append on the leader: the offsets the log gave and the partition's
/// `log_append_time_ms` (-1 unless the topic uses `LogAppendTime`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LeaderAppendInfo {
    /// What the log assigned.
    pub(crate) info: AppendInfo,
    /// The broker's clock stamped into the batches, or -1 for `CreateTime` topics.
    pub(crate) log_append_time_ms: i64,
}

/// Records read from a partition, with its offsets at the time of the read.
#[derive(Debug, Clone)]
pub(crate) struct PartitionRead {
    /// Whole stored batches, as the log holds them.
    pub(crate) records: Bytes,
    /// The high watermark.
    pub(crate) high_watermark: i64,
    /// The log start offset.
    pub(crate) log_start_offset: i64,
}

fn lock(m: &Mutex<ReplicaState>) -> std::sync::MutexGuard<'_, ReplicaState> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Partition {
    /// Partition `index` of `topic`, backed by `log`, led by this broker (`node_id`) alone.
    pub(crate) fn new_sole_leader(
        topic: Arc<Topic>,
        index: i32,
        node_id: i32,
        log: Arc<PartitionLog>,
    ) -> Partition {
        Partition {
            topic,
            index,
            node_id,
            log,
            state: Mutex::new(ReplicaState {
                role: Role::Leader,
                leader_epoch: 0,
                partition_epoch: 0,
                replicas: vec![node_id],
                isr: vec![node_id],
                followers: HashMap::new(),
            }),
        }
    }

    /// Partition `index` of `topic`, backed by `log`, in the role `state` gives this
    /// broker (`node_id`).
    pub(crate) fn with_state(
        topic: Arc<Topic>,
        index: i32,
        node_id: i32,
        log: Arc<PartitionLog>,
        state: &PartitionState,
    ) -> Result<Partition, ReplicaError> {
        let partition = Partition::new_sole_leader(topic, index, node_id, log);
        {
            let mut s = lock(&partition.state);
            // Below any epoch the image gives, so that `apply_state` takes it.
            s.leader_epoch = -1;
            s.partition_epoch = -1;
        }
        partition.apply_state(state)?;
        Ok(partition)
    }

    /// Makes this replica what `state` says (Kafka's `makeLeader` / `makeFollower`);
    /// returns what changed for replication. A state older than the one held (lower
    /// leader epoch, or same leader epoch and lower partition epoch) is ignored.
    pub(crate) fn apply_state(&self, state: &PartitionState) -> Result<StateChange, ReplicaError> {
        let mut s = lock(&self.state);
        let newer_leader = state.leader_epoch > s.leader_epoch;
        let same_leader = state.leader_epoch == s.leader_epoch;
        let newer = newer_leader || (same_leader && state.partition_epoch > s.partition_epoch);
        if !newer {
            return Ok(StateChange::None);
        }
        let was = s.role;
        s.leader_epoch = state.leader_epoch;
        s.partition_epoch = state.partition_epoch;
        s.replicas = state.replicas.clone();
        s.isr = state.isr.clone();
        if state.leader == Some(self.node_id) {
            s.role = Role::Leader;
            let now = crate::shutdown::now_ms();
            if newer_leader || was != Role::Leader {
                // A new leader knows nothing of its followers yet (Kafka's
                // `resetReplicaState`): their log end offsets come with their fetches.
                s.followers.clear();
            }
            let node_id = self.node_id;
            s.followers.retain(|id, _| state.replicas.contains(id));
            for &id in state.replicas.iter().filter(|&&id| id != node_id) {
                s.followers
                    .entry(id)
                    .or_insert_with(|| FollowerState::unknown(now));
            }
            drop(s);
            if newer_leader {
                // The new epoch begins at the log end offset (Kafka's
                // `maybeAssignEpochStartOffset`), so followers asking where their epoch
                // ends learn it even before the first append.
                let log = &self.log;
                log.assign_epoch_start(state.leader_epoch)?;
            }
            self.maybe_increment_high_watermark();
            Ok(if was == Role::Leader && !newer_leader {
                StateChange::None
            } else {
                StateChange::BecameLeader
            })
        } else {
            s.role = Role::Follower {
                leader: state.leader,
            };
            s.followers.clear();
            Ok(StateChange::BecameFollower)
        }
    }

    /// The leader this replica follows, `None` when it leads or knows no leader.
    pub(crate) fn leader_id(&self) -> Option<i32> {
        match lock(&self.state).role {
            Role::Leader => Some(self.node_id),
            Role::Follower { leader } => leader,
        }
    }

    #[allow(dead_code)] // follower fetching uses it next
    /// Node ids of every replica.
    pub(crate) fn replicas(&self) -> Vec<i32> {
        lock(&self.state).replicas.clone()
    }

    /// The topic.
    pub(crate) fn topic(&self) -> &Arc<Topic> {
        &self.topic
    }

    /// The partition index.
    pub(crate) fn index(&self) -> i32 {
        self.index
    }

    /// The partition's log on this broker.
    pub(crate) fn log(&self) -> &Arc<PartitionLog> {
        &self.log
    }

    /// The current leader epoch.
    pub(crate) fn leader_epoch(&self) -> i32 {
        lock(&self.state).leader_epoch
    }

    #[allow(dead_code)] // follower fetching uses it next
    /// Node ids of the in-sync replicas.
    pub(crate) fn isr(&self) -> Vec<i32> {
        lock(&self.state).isr.clone()
    }

    /// Whether this broker leads the partition.
    pub(crate) fn is_leader(&self) -> bool {
        lock(&self.state).role == Role::Leader
    }

    /// `NOT_LEADER_OR_FOLLOWER` unless this broker leads the partition: clients produce
    /// to, consume from and list offsets of the leader only.
    pub(crate) fn check_leader(&self) -> Result<(), ReplicaError> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(ReplicaError::NotLeaderOrFollower {
                topic: self.topic.name().to_string(),
                partition: self.index,
            })
        }
    }

    /// The high watermark: offsets below it are committed.
    pub(crate) fn high_watermark(&self) -> i64 {
        self.log.high_watermark()
    }

    /// Checks a request's `current_leader_epoch` (-1: none given) against this replica's,
    /// as KIP-320 asks.
    pub(crate) fn check_leader_epoch(&self, requested: i32) -> Result<(), ReplicaError> {
        let current = self.leader_epoch();
        if requested < 0 || requested == current {
            Ok(())
        } else if requested > current {
            Err(ReplicaError::UnknownLeaderEpoch { requested, current })
        } else {
            Err(ReplicaError::FencedLeaderEpoch { requested, current })
        }
    }

    /// Validates `batches` against the topic's `policy` and appends them as the leader
    /// (blocking), then moves the high watermark as far as the ISR allows. The records
    /// are not committed until the high watermark passes them: see
    /// [`Partition::wait_committed`].
    pub(crate) fn append_as_leader(
        &self,
        batches: &mut ReadBuf,
        policy: &ProducePolicy,
    ) -> Result<LeaderAppendInfo, ReplicaError> {
        self.check_leader()?;
        let now = crate::shutdown::now_ms();
        let log_append_time_ms = match policy.timestamp_type {
            TimestampType::LogAppendTime => now,
            TimestampType::CreateTime => -1,
        };
        let epoch = self.leader_epoch();
        let info = match crate::log::prepare(batches.as_mut_slice(), policy, now)? {
            None => self.log.append_as_leader(batches.as_mut_slice(), epoch)?,
            Some(mut rewritten) => self.log.append_as_leader(&mut rewritten, epoch)?,
        };
        self.maybe_increment_high_watermark();
        Ok(LeaderAppendInfo {
            info,
            log_append_time_ms,
        })
    }

    /// Moves the high watermark to the smallest log end offset over the ISR, if that is
    /// further; returns the high watermark.
    pub(crate) fn maybe_increment_high_watermark(&self) -> i64 {
        let candidate = {
            let state = lock(&self.state);
            if state.role != Role::Leader {
                return self.log.high_watermark();
            }
            let leader_end = self.log.log_end_offset();
            // A member whose log end offset is not known yet holds the high watermark
            // where it is.
            let hw = self.log.high_watermark();
            state
                .isr
                .iter()
                .filter(|&&id| id != self.node_id)
                .map(|id| {
                    state.followers.get(id).map_or(hw, |f| {
                        if f.log_end_offset < 0 {
                            hw
                        } else {
                            f.log_end_offset
                        }
                    })
                })
                .fold(leader_end, i64::min)
        };
        self.log.advance_high_watermark(candidate)
    }

    /// Takes a fetch from follower `replica_id` at `fetch_offset`, whose log's last batch
    /// has `last_fetched_epoch` (-1: unknown): answers whether its log diverges from this
    /// one (KIP-320), and otherwise records its log end offset and when it was caught up,
    /// and moves the high watermark (Kafka's `Partition.fetchRecords` and
    /// `updateFollowerFetchState`). A node that is no replica of the partition gets
    /// `NOT_LEADER_OR_FOLLOWER`.
    pub(crate) fn on_follower_fetch(
        &self,
        replica_id: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
    ) -> Result<FollowerFetch, ReplicaError> {
        self.check_leader()?;
        let not_replica = || ReplicaError::NotLeaderOrFollower {
            topic: self.topic.name().to_string(),
            partition: self.index,
        };
        if replica_id == self.node_id || !lock(&self.state).followers.contains_key(&replica_id) {
            return Err(not_replica());
        }
        if last_fetched_epoch >= 0 {
            let (epoch, end_offset) = self.log.end_offset_for_epoch(last_fetched_epoch);
            if epoch < last_fetched_epoch || end_offset < fetch_offset {
                return Ok(FollowerFetch::Diverging { epoch, end_offset });
            }
        }
        let leader_end = self.log.log_end_offset();
        if fetch_offset > leader_end {
            // The read answers OFFSET_OUT_OF_RANGE; nothing of it is to be believed.
            return Ok(FollowerFetch::Read);
        }
        let now = crate::shutdown::now_ms();
        {
            let mut state = lock(&self.state);
            let Some(f) = state.followers.get_mut(&replica_id) else {
                return Err(not_replica());
            };
            if fetch_offset >= leader_end {
                f.last_caught_up_ms = now;
            } else if fetch_offset >= f.last_fetch_leader_log_end {
                f.last_caught_up_ms = f.last_fetch_ms;
            }
            f.log_end_offset = fetch_offset;
            f.last_fetch_leader_log_end = leader_end;
            f.last_fetch_ms = now;
        }
        self.maybe_increment_high_watermark();
        Ok(FollowerFetch::Read)
    }

    /// The leader's view of follower `id` (tests).
    #[cfg(test)]
    pub(crate) fn follower(&self, id: i32) -> Option<FollowerState> {
        lock(&self.state).followers.get(&id).copied()
    }

    /// Makes `isr` the in-sync replicas and sets the followers' log end offsets, as
    /// follower fetches and AlterPartition will (tests only, until they exist).
    #[cfg(test)]
    pub(crate) fn set_replicas_for_test(&self, isr: Vec<i32>, followers: &[(i32, i64)]) {
        let mut state = lock(&self.state);
        state.isr = isr;
        state.followers = followers
            .iter()
            .map(|&(id, log_end_offset)| {
                (
                    id,
                    FollowerState {
                        log_end_offset,
                        ..FollowerState::unknown(0)
                    },
                )
            })
            .collect();
    }

    /// `NOT_ENOUGH_REPLICAS` when the ISR has fewer than `min_isr` members: an
    /// `acks=all` append is then refused before it is made.
    pub(crate) fn check_enough_replicas(&self, min_isr: usize) -> Result<(), ReplicaError> {
        let isr = lock(&self.state).isr.len();
        if isr < min_isr {
            return Err(ReplicaError::NotEnoughReplicas { isr, min: min_isr });
        }
        Ok(())
    }

    /// Whether the ISR holds everything below `offset` (the high watermark reached it);
    /// `NOT_ENOUGH_REPLICAS_AFTER_APPEND` when it did but the ISR has shrunk below
    /// `min_isr` meanwhile (Kafka's `checkEnoughReplicasReachOffset`).
    fn reached(&self, offset: i64, min_isr: usize) -> Result<bool, ReplicaError> {
        if self.log.high_watermark() < offset {
            return Ok(false);
        }
        let isr = lock(&self.state).isr.len();
        if isr < min_isr {
            return Err(ReplicaError::NotEnoughReplicasAfterAppend { isr, min: min_isr });
        }
        Ok(true)
    }

    /// Waits until the records below `offset` are committed (every in-sync replica has
    /// them, and the ISR has at least `min_isr` members), at most `timeout`; then, with `fsync`, until the leader's log has them on
    /// disk (strand's `acks=all` durability on top of Kafka's). This is the completion of
    /// an `acks=all` append, Kafka's `DelayedProduce`.
    pub(crate) async fn wait_committed(
        self: Arc<Self>,
        offset: i64,
        min_isr: usize,
        timeout: Duration,
        fsync: bool,
    ) -> Result<(), ReplicaError> {
        // Subscribed before the check, so a move in between still wakes us.
        let mut hw = self.log.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.reached(offset, min_isr)? {
            match tokio::time::timeout_at(deadline, hw.changed()).await {
                Ok(Ok(())) => {}
                // The log went away (topic deleted): the append's fate is unknown.
                Ok(Err(_)) => {
                    return Err(ReplicaError::UnknownTopicOrPartition {
                        topic: self.topic.name().to_string(),
                        partition: self.index,
                    });
                }
                Err(_) => {
                    return Err(ReplicaError::RequestTimedOut {
                        offset,
                        timeout_ms: timeout.as_millis() as u64,
                    });
                }
            }
        }
        if fsync {
            let log = Arc::clone(&self.log);
            tokio::task::spawn_blocking(move || log.flush_to(offset - 1))
                .await
                .map_err(ReplicaError::internal)??;
        }
        Ok(())
    }

    /// Reads whole batches from `offset`, up to `max_bytes` (the first batch whole when
    /// `min_one`), no further than `isolation` allows (blocking).
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        isolation: FetchIsolation,
    ) -> Result<PartitionRead, ReplicaError> {
        let r = self.log.read_to(offset, max_bytes, min_one, isolation)?;
        Ok(PartitionRead {
            records: r.records,
            high_watermark: r.high_watermark,
            log_start_offset: r.log_start_offset,
        })
    }

    /// The (offset, timestamp) ListOffsets answers for `timestamp`, one of
    /// [`timestamps`]' or a time (blocking); only committed records are found, as for a
    /// consumer reading uncommitted-isolated up to the high watermark.
    pub(crate) fn fetch_offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, ReplicaError> {
        use timestamps::*;
        let hw = self.log.high_watermark();
        let committed = |found: Option<(i64, i64)>| found.filter(|&(offset, _)| offset < hw);
        Ok(match timestamp {
            LATEST | LATEST_TIERED => Some((hw, -1)),
            EARLIEST | EARLIEST_LOCAL => Some((self.log.log_start_offset(), -1)),
            MAX_TIMESTAMP => committed(self.log.max_timestamp().map(|(ts, o)| (o, ts))),
            ts if ts >= 0 => committed(self.log.offset_for_timestamp(ts)?),
            _ => None,
        })
    }

    /// Moves the log start offset to `offset` (-1: the high watermark), for DeleteRecords
    /// (blocking); returns the new log start offset (the low watermark).
    pub(crate) fn delete_records_before(&self, offset: i64) -> Result<i64, ReplicaError> {
        let offset = if offset == -1 {
            self.log.high_watermark()
        } else {
            offset
        };
        Ok(self.log.delete_records_before(offset)?)
    }
}
