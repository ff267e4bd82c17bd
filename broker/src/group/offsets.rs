//! Committed offsets: OffsetCommit (from group members, checked against the generation,
//! or from standalone consumers with generation -1), OffsetFetch, OffsetDelete, and the
//! periodic expiry of offsets past `offsets.retention.minutes`.
//!
//! A commit is applied in memory and queued for `__consumer_offsets` under the group's
//! lock (so memory and log see commits in the same order) and answered once the record
//! is fsynced; if the write fails, the commit is answered with the error and undone in
//! memory. There are no transactional offsets here, so every committed offset is
//! stable and OffsetFetch's `require_stable` is always satisfied.

use std::time::Duration;

use super::GroupError;
use super::coordinator::{GroupCoordinator, wall_ms};
use super::state::{CommittedOffset, GroupState};
use super::store::{self, Write};

/// An OffsetCommit request.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// The group.
    pub group_id: String,
    /// The member's generation, or -1 for a standalone consumer.
    pub generation_id: i32,
    /// The member id (empty for a standalone consumer).
    pub member_id: String,
    /// The client's `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// OffsetCommit v2-v4 `retention_time_ms`; `None` uses the broker's retention.
    pub retention: Option<Duration>,
    /// What to commit.
    pub offsets: Vec<OffsetToCommit>,
}

/// One partition's offset to commit.
#[derive(Debug, Clone)]
pub struct OffsetToCommit {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to read.
    pub offset: i64,
    /// Leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: Option<String>,
}

/// One partition's committed offset as OffsetFetch returns it (-1 when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset, or -1.
    pub offset: i64,
    /// Leader epoch, or -1.
    pub leader_epoch: i32,
    /// Metadata (empty when none).
    pub metadata: String,
}

impl GroupCoordinator {
    /// OffsetCommit: one result per offset, in order; answered once durable.
    pub async fn commit_offsets(&self, req: CommitRequest) -> Vec<Result<(), GroupError>> {
        match self.commit_inner(&req).await {
            Ok(results) => results,
            Err(e) => req.offsets.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    async fn commit_inner(
        &self,
        req: &CommitRequest,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let inner = &self.inner;
        let standalone = req.generation_id < 0;
        let (results, rx, undo) = {
            let Some(mut g) = inner.lock_group(&req.group_id, standalone).await? else {
                return Err(GroupError::IllegalGeneration);
            };
            if req.generation_id >= 0
                || !req.member_id.is_empty()
                || req.group_instance_id.is_some()
            {
                g.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
                if req.generation_id != g.generation {
                    return Err(GroupError::IllegalGeneration);
                }
            } else if g.state != GroupState::Empty {
                // Only members may commit to a group that has members.
                return Err(GroupError::UnknownMemberId);
            }
            if g.state == GroupState::CompletingRebalance {
                return Err(GroupError::RebalanceInProgress);
            }
            // A commit counts as a heartbeat.
            if let Some(member) = g.members.get_mut(&req.member_id) {
                member.touch();
            }
            let now = wall_ms();
            let expire = req
                .retention
                .map(|r| now.saturating_add(r.as_millis() as i64));
            let max = inner.config.offset_metadata_max_bytes;
            let mut results = Vec::with_capacity(req.offsets.len());
            let mut records = Vec::new();
            let mut undo = Vec::new();
            for o in &req.offsets {
                let metadata = o.metadata.clone().unwrap_or_default();
                if metadata.len() > max {
                    results.push(Err(GroupError::OffsetMetadataTooLarge {
                        size: metadata.len(),
                        max,
                    }));
                    continue;
                }
                let committed = CommittedOffset {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata,
                    commit_timestamp_ms: now,
                    expire_timestamp_ms: expire,
                };
                records.push(store::offset_record(
                    &g.id,
                    &o.topic,
                    o.partition,
                    Some(&committed),
                ));
                let key = (o.topic.clone(), o.partition);
                let previous = g.offsets.insert(key.clone(), committed.clone());
                undo.push((key, previous, committed));
                results.push(Ok(()));
            }
            let rx = if records.is_empty() {
                None
            } else {
                let (write, rx) = Write::waited(records);
                g.outbox.push(write);
                Some(rx)
            };
            inner.flush(&mut g).await;
            (results, rx, undo)
        };
        let Some(rx) = rx else {
            return Ok(results);
        };
        let written = rx
            .await
            .unwrap_or_else(|_| Err(GroupError::Storage("the offsets writer stopped".into())));
        if let Err(e) = written {
            if let Ok(Some(mut g)) = inner.lock_group(&req.group_id, false).await {
                for (key, previous, committed) in undo {
                    if g.offsets.get(&key) == Some(&committed) {
                        match previous {
                            Some(p) => g.offsets.insert(key, p),
                            None => g.offsets.remove(&key),
                        };
                    }
                }
            }
            return Err(e);
        }
        Ok(results)
    }

    /// OffsetFetch: the committed offsets of the given partitions (`None`: every
    /// partition the group has an offset for).
    pub async fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, Vec<i32>)]>,
    ) -> Result<Vec<FetchedOffset>, GroupError> {
        let g = self.inner.lock_group(group_id, false).await?;
        let lookup = |topic: &str, partition: i32| {
            let committed = g
                .as_ref()
                .and_then(|g| g.offsets.get(&(topic.to_string(), partition)));
            match committed {
                Some(c) => FetchedOffset {
                    topic: topic.to_string(),
                    partition,
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                    metadata: c.metadata.clone(),
                },
                None => FetchedOffset {
                    topic: topic.to_string(),
                    partition,
                    offset: -1,
                    leader_epoch: -1,
                    metadata: String::new(),
                },
            }
        };
        Ok(match partitions {
            Some(wanted) => wanted
                .iter()
                .flat_map(|(topic, parts)| parts.iter().map(|p| lookup(topic, *p)))
                .collect(),
            None => {
                let mut all: Vec<FetchedOffset> = g
                    .as_ref()
                    .map(|g| g.offsets.keys().map(|(t, p)| lookup(t, *p)).collect())
                    .unwrap_or_default();
                all.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
                all
            }
        })
    }

    /// OffsetDelete: removes committed offsets of topics the group does not read; one
    /// result per partition, in order.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, Vec<i32>)],
    ) -> Result<Vec<(String, Vec<(i32, Result<(), GroupError>)>)>, GroupError> {
        let inner = &self.inner;
        let (results, rx) = {
            let Some(mut g) = inner.lock_group(group_id, false).await? else {
                return Err(GroupError::GroupIdNotFound);
            };
            let any_topic = g.protocol_type.is_none() || g.state == GroupState::Empty;
            let consumer =
                g.protocol_type.as_deref() == Some(super::subscription::CONSUMER_PROTOCOL_TYPE);
            if !any_topic && !consumer {
                return Err(GroupError::NonEmptyGroup);
            }
            let mut records = Vec::new();
            let mut results = Vec::with_capacity(partitions.len());
            for (topic, parts) in partitions {
                let subscribed = !any_topic && g.is_subscribed_to(topic);
                let mut topic_results = Vec::with_capacity(parts.len());
                for &p in parts {
                    if subscribed {
                        topic_results.push((p, Err(GroupError::GroupSubscribedToTopic)));
                        continue;
                    }
                    if g.offsets.remove(&(topic.clone(), p)).is_some() {
                        records.push(store::offset_record(&g.id, topic, p, None));
                    }
                    topic_results.push((p, Ok(())));
                }
                results.push((topic.clone(), topic_results));
            }
            let rx = if records.is_empty() {
                None
            } else {
                let (write, rx) = Write::waited(records);
                g.outbox.push(write);
                Some(rx)
            };
            inner.flush(&mut g).await;
            (results, rx)
        };
        if let Some(rx) = rx {
            rx.await.unwrap_or_else(|_| {
                Err(GroupError::Storage("the offsets writer stopped".into()))
            })?;
        }
        Ok(results)
    }

    /// Forgets every group's committed offsets of deleted topics (writing tombstones), as
    /// Kafka does, so that a topic created again under the same name starts afresh.
    pub async fn delete_topic_offsets(&self, topics: &[String]) {
        if topics.is_empty() {
            return;
        }
        let inner = &self.inner;
        let ids: Vec<String> = inner.groups.iter().map(|e| e.key().clone()).collect();
        for id in ids {
            let Ok(Some(mut g)) = inner.lock_group(&id, false).await else {
                continue;
            };
            let gone: Vec<_> = g
                .offsets
                .keys()
                .filter(|(topic, _)| topics.contains(topic))
                .cloned()
                .collect();
            if gone.is_empty() {
                continue;
            }
            let mut records = Vec::with_capacity(gone.len());
            for key in gone {
                records.push(store::offset_record(&g.id, &key.0, key.1, None));
                g.offsets.remove(&key);
            }
            g.outbox.push(Write::new(records));
            inner.flush(&mut g).await;
        }
    }

    /// Removes offsets expired at `now_ms` (writing tombstones) and drops groups left
    /// empty with no offsets; returns how many offsets expired.
    pub async fn expire_offsets(&self, now_ms: i64) -> usize {
        let inner = &self.inner;
        let ids: Vec<String> = inner.groups.iter().map(|e| e.key().clone()).collect();
        let mut expired_total = 0;
        for id in ids {
            let Ok(Some(mut g)) = inner.lock_group(&id, false).await else {
                continue;
            };
            let expired = g.expired_offsets(now_ms, inner.config.offsets_retention);
            if !expired.is_empty() {
                expired_total += expired.len();
                let mut records = Vec::with_capacity(expired.len());
                for key in expired {
                    records.push(store::offset_record(&g.id, &key.0, key.1, None));
                    g.offsets.remove(&key);
                }
                tracing::info!(group = %g.id, offsets = records.len(), "committed offsets expired");
                g.outbox.push(Write::new(records));
            }
            if g.state == GroupState::Empty && g.offsets.is_empty() {
                tracing::info!(group = %g.id, "empty group without offsets removed");
                // Nobody waits for these tombstones.
                drop(inner.kill_group(&mut g));
            }
            inner.flush(&mut g).await;
        }
        expired_total
    }

    /// Runs [`GroupCoordinator::expire_offsets`] every
    /// `offsets.retention.check.interval.ms` for as long as the coordinator lives.
    pub(super) fn spawn_expiry_task(&self) {
        let weak = std::sync::Arc::downgrade(&self.inner);
        let period = self.inner.config.offsets_retention_check_interval;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                GroupCoordinator { inner }.expire_offsets(wall_ms()).await;
            }
        });
    }
}
