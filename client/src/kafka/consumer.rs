//! The raw-bytes consumer: manual assignment or group subscription, positions, seek,
//! pause/resume, commits, and fetching.
//!
//! Fetching is pipelined: while the caller processes the records one `poll` returned, the
//! next fetch to each partition leader is already in flight (starting at the offset after
//! the last record buffered). A seek or a lost assignment bumps the partition's epoch, and
//! fetched data from an older epoch is discarded, so a seek never returns stale records.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use tokio::task::JoinSet;

use crate::config::{Assignor, ConsumerConfig, OffsetReset};
use crate::error::{ClientError, Result};
use crate::kafka::cluster::Cluster;
use crate::kafka::group::Group;

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition id.
    pub partition: i32,
}

impl TopicPartition {
    /// The partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A record as consumed, still as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord<K = Option<Bytes>, V = Option<Bytes>> {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset within the partition.
    pub offset: i64,
    /// Timestamp (create or log-append time, per the topic).
    pub timestamp: i64,
    /// Key.
    pub key: K,
    /// Value.
    pub value: V,
    /// Headers.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// A change of a group member's assignment, passed to the rebalance listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    /// These partitions are no longer this consumer's (their positions were committed first
    /// when auto commit is on).
    Revoked(Vec<TopicPartition>),
    /// These partitions were added to this consumer's assignment.
    Assigned(Vec<TopicPartition>),
}

type Listener = Box<dyn FnMut(&RebalanceEvent) + Send>;

#[derive(Debug, Default, Clone)]
struct PartitionState {
    /// Next offset to hand to the caller.
    position: Option<i64>,
    /// Next offset to fetch (past what is buffered).
    fetch_offset: Option<i64>,
    paused: bool,
    epoch: u64,
    high_watermark: i64,
}

struct Fetched {
    tp: TopicPartition,
    epoch: u64,
    fetch_offset: i64,
    result: Result<(Vec<ConsumerRecord>, i64)>,
}

/// A consumer of raw-bytes records.
pub struct RawConsumer {
    cluster: Arc<Cluster>,
    config: ConsumerConfig,
    assignment: BTreeMap<TopicPartition, PartitionState>,
    subscription: Option<Vec<String>>,
    group: Option<Group>,
    buffered: VecDeque<ConsumerRecord>,
    in_flight: Option<JoinSet<Vec<Fetched>>>,
    listener: Option<Listener>,
    last_commit: Instant,
    next_epoch: u64,
}

impl std::fmt::Debug for RawConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawConsumer")
            .field("group", &self.config.group_id)
            .field("assignment", &self.assignment.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RawConsumer {
    /// Connects to the cluster.
    pub async fn new(config: ConsumerConfig) -> Result<RawConsumer> {
        if config.assignors.is_empty() {
            return Err(ClientError::Config("assignors must not be empty".into()));
        }
        let cluster = Cluster::new(config.client.clone())?;
        cluster
            .retry("bootstrap metadata", || cluster.refresh(&[]))
            .await?;
        let group = config
            .group_id
            .clone()
            .map(|g| Group::new(cluster.clone(), config.clone(), g));
        Ok(RawConsumer {
            cluster,
            config,
            assignment: BTreeMap::new(),
            subscription: None,
            group,
            buffered: VecDeque::new(),
            in_flight: None,
            listener: None,
            last_commit: Instant::now(),
            next_epoch: 1,
        })
    }

    /// Calls `listener` on every assignment change of a group subscription.
    pub fn set_rebalance_listener(
        &mut self,
        listener: impl FnMut(&RebalanceEvent) + Send + 'static,
    ) {
        self.listener = Some(Box::new(listener));
    }

    /// Consumes exactly these partitions (no group management).
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) {
        self.subscription = None;
        self.set_assignment(partitions);
    }

    /// Joins the group (on the next `poll`) to share `topics`' partitions with its members.
    pub fn subscribe(&mut self, topics: &[&str]) -> Result<()> {
        if self.group.is_none() {
            return Err(ClientError::Config("subscribe needs a group_id".into()));
        }
        self.subscription = Some(topics.iter().map(|t| t.to_string()).collect());
        if let Some(g) = &self.group {
            g.request_rejoin();
        }
        Ok(())
    }

    /// The partitions currently assigned.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.assignment.keys().cloned().collect()
    }

    /// The next offset `poll` returns for a partition, if known yet.
    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.assignment.get(tp).and_then(|s| s.position)
    }

    /// Moves a partition's position: the next `poll` returns records from `offset`.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        let epoch = self.bump_epoch();
        let state = self
            .assignment
            .get_mut(tp)
            .ok_or_else(|| ClientError::Config(format!("seek on {tp}, which is not assigned")))?;
        state.position = Some(offset);
        state.fetch_offset = Some(offset);
        state.epoch = epoch;
        self.buffered
            .retain(|r| r.topic != tp.topic || r.partition != tp.partition);
        Ok(())
    }

    /// Stops returning records of these partitions until resumed.
    pub fn pause(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if let Some(s) = self.assignment.get_mut(tp) {
                s.paused = true;
            }
        }
    }

    /// Resumes paused partitions.
    pub fn resume(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            if let Some(s) = self.assignment.get_mut(tp) {
                s.paused = false;
            }
        }
    }

    /// The partitions currently paused.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.assignment
            .iter()
            .filter(|(_, s)| s.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Waits up to `timeout` for records, returning what is available (possibly none).
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        self.maintain_group().await?;
        self.maybe_auto_commit().await;
        loop {
            self.ensure_positions().await?;
            let records = self.take_buffered();
            if !records.is_empty() {
                self.start_fetch();
                return Ok(records);
            }
            self.start_fetch();
            let Some(set) = self.in_flight.as_mut() else {
                // Nothing to fetch (no assignment, or all paused): wait out the timeout.
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(left.min(Duration::from_millis(100))).await;
                if Instant::now() >= deadline {
                    return Ok(Vec::new());
                }
                self.maintain_group().await?;
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let mut results = Vec::new();
            match tokio::time::timeout(left, set.join_next()).await {
                Ok(Some(Ok(batch))) => results.extend(batch),
                Ok(Some(Err(e))) => {
                    return Err(ClientError::Protocol(format!("fetch task failed: {e}")));
                }
                Ok(None) => self.in_flight = None,
                Err(_) => return Ok(Vec::new()),
            }
            if self.in_flight.as_ref().is_some_and(|s| s.is_empty()) {
                self.in_flight = None;
            }
            self.apply_fetched(results)?;
            if Instant::now() >= deadline && self.buffered.is_empty() {
                return Ok(Vec::new());
            }
            self.maintain_group().await?;
        }
    }

    /// Commits the current positions of all assigned partitions.
    pub async fn commit(&mut self) -> Result<()> {
        let offsets: Vec<(TopicPartition, i64)> = self
            .assignment
            .iter()
            .filter_map(|(tp, s)| s.position.map(|p| (tp.clone(), p)))
            .collect();
        self.commit_offsets(&offsets).await
    }

    /// Commits the given next-offsets-to-consume.
    pub async fn commit_offsets(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        let group = self
            .group
            .as_mut()
            .ok_or_else(|| ClientError::Config("commit needs a group_id".into()))?;
        group.commit(offsets).await?;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// The group's committed offsets of `partitions`.
    pub async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        let group = self
            .group
            .as_mut()
            .ok_or_else(|| ClientError::Config("committed needs a group_id".into()))?;
        group.committed(partitions).await
    }

    /// Commits (with auto commit), leaves the group, and drops the connections.
    pub async fn close(mut self) -> Result<()> {
        let result = if self.config.enable_auto_commit && self.group.is_some() {
            self.commit().await
        } else {
            Ok(())
        };
        if let Some(g) = self.group.as_mut() {
            g.leave().await;
        }
        result
    }

    fn bump_epoch(&mut self) -> u64 {
        self.next_epoch += 1;
        self.next_epoch
    }

    fn set_assignment(&mut self, partitions: Vec<TopicPartition>) {
        let mut next = BTreeMap::new();
        for tp in partitions {
            let state = self.assignment.remove(&tp).unwrap_or_default();
            next.insert(tp, state);
        }
        let removed: Vec<TopicPartition> =
            std::mem::take(&mut self.assignment).into_keys().collect();
        self.buffered.retain(|r| {
            !removed
                .iter()
                .any(|tp| tp.topic == r.topic && tp.partition == r.partition)
        });
        self.assignment = next;
        // Stale in-flight fetches are recognised by epoch.
        let epoch = self.bump_epoch();
        for s in self.assignment.values_mut() {
            s.epoch = epoch;
            s.fetch_offset = s.position;
        }
        self.buffered.clear();
    }

    async fn maybe_auto_commit(&mut self) {
        if self.config.enable_auto_commit
            && self.group.is_some()
            && self.last_commit.elapsed() >= self.config.auto_commit_interval
            && let Err(e) = self.commit().await
        {
            tracing::warn!(error = %e, "auto commit failed");
        }
    }

    async fn maintain_group(&mut self) -> Result<()> {
        let Some(topics) = self.subscription.clone() else {
            return Ok(());
        };
        while self.group.as_ref().is_some_and(|g| g.needs_rejoin()) {
            let cooperative = self
                .group
                .as_ref()
                .and_then(|g| g.protocol)
                .is_some_and(|p| p == Assignor::CooperativeSticky);
            let owned = self.assignment();
            if !cooperative && !owned.is_empty() {
                // Eager protocol: give up everything before rejoining.
                self.revoke(owned.clone()).await;
            }
            let owned_now = self.assignment();
            let Some(group) = self.group.as_mut() else {
                return Ok(());
            };
            let assigned = group.join(&topics, &owned_now).await?;
            let protocol = group.protocol;
            let revoked: Vec<TopicPartition> = owned_now
                .iter()
                .filter(|tp| !assigned.contains(tp))
                .cloned()
                .collect();
            let added: Vec<TopicPartition> = assigned
                .iter()
                .filter(|tp| !owned_now.contains(tp))
                .cloned()
                .collect();
            if !revoked.is_empty() {
                self.revoke(revoked.clone()).await;
            }
            let mut next = self.assignment();
            next.extend(added.iter().cloned());
            next.sort();
            next.dedup();
            self.set_assignment_keep_positions(next);
            if !added.is_empty() {
                self.notify(&RebalanceEvent::Assigned(added));
            }
            // Cooperative: partitions given up must be released before others can get them,
            // which takes another round.
            if protocol == Some(Assignor::CooperativeSticky)
                && !revoked.is_empty()
                && let Some(g) = self.group.as_ref()
            {
                g.request_rejoin();
            }
        }
        Ok(())
    }

    fn set_assignment_keep_positions(&mut self, partitions: Vec<TopicPartition>) {
        let keep: BTreeMap<TopicPartition, PartitionState> = partitions
            .into_iter()
            .map(|tp| {
                let s = self.assignment.get(&tp).cloned().unwrap_or_default();
                (tp, s)
            })
            .collect();
        let epoch = self.bump_epoch();
        self.assignment = keep;
        for s in self.assignment.values_mut() {
            if s.position.is_none() {
                s.epoch = epoch;
            }
        }
        let assignment = &self.assignment;
        self.buffered.retain(|r| {
            assignment.contains_key(&TopicPartition::new(r.topic.clone(), r.partition))
        });
    }

    async fn revoke(&mut self, partitions: Vec<TopicPartition>) {
        if self.config.enable_auto_commit {
            let offsets: Vec<(TopicPartition, i64)> = partitions
                .iter()
                .filter_map(|tp| {
                    self.assignment
                        .get(tp)
                        .and_then(|s| s.position)
                        .map(|p| (tp.clone(), p))
                })
                .collect();
            if let Some(g) = self.group.as_mut()
                && let Err(e) = g.commit(&offsets).await
            {
                tracing::warn!(error = %e, "commit before revocation failed");
            }
        }
        self.notify(&RebalanceEvent::Revoked(partitions.clone()));
        for tp in &partitions {
            self.assignment.remove(tp);
        }
        self.buffered.retain(|r| {
            !partitions
                .iter()
                .any(|tp| tp.topic == r.topic && tp.partition == r.partition)
        });
    }

    fn notify(&mut self, event: &RebalanceEvent) {
        tracing::debug!(?event, "rebalance");
        if let Some(listener) = self.listener.as_mut() {
            listener(event);
        }
    }

    /// Gives every assigned partition a position: the committed offset, else the reset policy.
    async fn ensure_positions(&mut self) -> Result<()> {
        let missing: Vec<TopicPartition> = self
            .assignment
            .iter()
            .filter(|(_, s)| s.position.is_none())
            .map(|(tp, _)| tp.clone())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let committed = match self.group.as_mut() {
            Some(g) => g.committed(&missing).await?,
            None => HashMap::new(),
        };
        let mut reset = Vec::new();
        for tp in missing {
            match committed.get(&tp) {
                Some(offset) => self.set_position(&tp, *offset),
                None => reset.push(tp),
            }
        }
        if reset.is_empty() {
            return Ok(());
        }
        let timestamp = match self.config.auto_offset_reset {
            OffsetReset::Earliest => -2,
            OffsetReset::Latest => -1,
            OffsetReset::None => {
                return Err(ClientError::Config(format!(
                    "no committed offset for {} and auto_offset_reset is None",
                    reset[0]
                )));
            }
        };
        for (tp, offset) in list_offsets(&self.cluster, &reset, timestamp).await? {
            self.set_position(&tp, offset);
        }
        Ok(())
    }

    fn set_position(&mut self, tp: &TopicPartition, offset: i64) {
        if let Some(s) = self.assignment.get_mut(tp) {
            s.position = Some(offset);
            s.fetch_offset = Some(offset);
        }
    }

    fn take_buffered(&mut self) -> Vec<ConsumerRecord> {
        let mut out = Vec::new();
        let mut kept = VecDeque::new();
        while let Some(r) = self.buffered.pop_front() {
            let tp = TopicPartition::new(r.topic.clone(), r.partition);
            match self.assignment.get_mut(&tp) {
                Some(s) if s.paused => kept.push_back(r),
                Some(s) if out.len() < self.config.max_poll_records.max(1) => {
                    s.position = Some(r.offset + 1);
                    out.push(r);
                }
                Some(_) => kept.push_back(r),
                None => {}
            }
        }
        self.buffered = kept;
        out
    }

    /// Starts fetches to every leader of a fetchable partition that has none in flight.
    fn start_fetch(&mut self) {
        if self.in_flight.as_ref().is_some_and(|s| !s.is_empty()) {
            return;
        }
        let buffered: std::collections::HashSet<(String, i32)> = self
            .buffered
            .iter()
            .map(|r| (r.topic.clone(), r.partition))
            .collect();
        let mut by_leader: HashMap<i32, Vec<(TopicPartition, i64, u64)>> = HashMap::new();
        let mut leaderless = false;
        for (tp, s) in &self.assignment {
            let Some(offset) = s.fetch_offset else {
                continue;
            };
            // Keep at most one fetch's worth buffered per partition.
            if s.paused || buffered.contains(&(tp.topic.clone(), tp.partition)) {
                continue;
            }
            match self.cluster.leader(&tp.topic, tp.partition) {
                Some(leader) => {
                    by_leader
                        .entry(leader)
                        .or_default()
                        .push((tp.clone(), offset, s.epoch))
                }
                None => leaderless = true,
            }
        }
        if leaderless {
            let cluster = self.cluster.clone();
            let topics: Vec<String> = self.assignment.keys().map(|tp| tp.topic.clone()).collect();
            tokio::spawn(async move {
                let _ = cluster.refresh(&topics).await;
            });
        }
        if by_leader.is_empty() {
            if leaderless {
                // Come back after the metadata refresh.
                let mut set = JoinSet::new();
                let backoff = self.cluster.config.retry_backoff;
                set.spawn(async move {
                    tokio::time::sleep(backoff).await;
                    Vec::new()
                });
                self.in_flight = Some(set);
            }
            return;
        }
        let mut set = JoinSet::new();
        for (leader, partitions) in by_leader {
            let cluster = self.cluster.clone();
            let config = self.config.clone();
            set.spawn(async move { fetch(cluster, config, leader, partitions).await });
        }
        self.in_flight = Some(set);
    }

    fn apply_fetched(&mut self, results: Vec<Fetched>) -> Result<()> {
        for f in results {
            let Some(state) = self.assignment.get_mut(&f.tp) else {
                continue;
            };
            if state.epoch != f.epoch || state.fetch_offset != Some(f.fetch_offset) {
                continue;
            }
            match f.result {
                Ok((records, high_watermark)) => {
                    state.high_watermark = high_watermark;
                    if let Some(last) = records.last() {
                        state.fetch_offset = Some(last.offset + 1);
                    }
                    self.buffered.extend(records);
                }
                Err(e) if e.kafka_error() == Some(ResponseError::OffsetOutOfRange) => {
                    tracing::info!(partition = %f.tp, "offset out of range, resetting");
                    state.position = None;
                    state.fetch_offset = None;
                }
                Err(e) if e.is_retriable() => {
                    tracing::debug!(partition = %f.tp, error = %e, "fetch failed, will retry");
                    self.cluster.invalidate();
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Group {
    pub(crate) fn request_rejoin(&self) {
        self.set_rejoin();
    }
}

async fn fetch(
    cluster: Arc<Cluster>,
    config: ConsumerConfig,
    leader: i32,
    partitions: Vec<(TopicPartition, i64, u64)>,
) -> Vec<Fetched> {
    let fail = |e: ClientError| -> Vec<Fetched> {
        partitions
            .iter()
            .map(|(tp, offset, epoch)| Fetched {
                tp: tp.clone(),
                epoch: *epoch,
                fetch_offset: *offset,
                result: Err(e.clone()),
            })
            .collect()
    };
    let conn = match cluster.broker(leader).await {
        Ok(c) => c,
        Err(e) => {
            tokio::time::sleep(cluster.config.retry_backoff).await;
            return fail(e);
        }
    };
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, offset, _) in &partitions {
        let p = FetchPartition::default()
            .with_partition(tp.partition)
            .with_fetch_offset(*offset)
            .with_partition_max_bytes(config.max_partition_fetch_bytes);
        match topics.iter_mut().find(|t| t.topic.0.as_str() == tp.topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(tp.topic.clone())))
                    .with_partitions(vec![p]),
            ),
        }
    }
    let max_wait = config.fetch_max_wait.as_millis() as i32;
    let result = cluster
        .send(&conn, |_| {
            FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(max_wait)
                .with_min_bytes(config.fetch_min_bytes)
                .with_max_bytes(config.fetch_max_bytes)
                .with_topics(topics)
        })
        .await;
    let response = match result {
        Ok((r, _)) => r,
        Err(e) => {
            tokio::time::sleep(cluster.config.retry_backoff).await;
            return fail(e);
        }
    };
    if let Some(e) = ClientError::broker("Fetch", response.error_code) {
        return fail(e);
    }
    let mut out = Vec::new();
    for (tp, offset, epoch) in &partitions {
        let data = response
            .responses
            .iter()
            .filter(|t| t.topic.0.as_str() == tp.topic)
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == tp.partition);
        let result = match data {
            None => Ok((Vec::new(), -1)),
            Some(p) => match ClientError::broker(format!("fetch {tp}"), p.error_code) {
                Some(e) => Err(e),
                None => decode_records(tp, *offset, p.records.clone())
                    .map(|records| (records, p.high_watermark)),
            },
        };
        out.push(Fetched {
            tp: tp.clone(),
            epoch: *epoch,
            fetch_offset: *offset,
            result,
        });
    }
    out
}

/// Decodes the complete record batches of a fetch (a trailing partial batch is normal and
/// skipped), keeping records at or after `from` and dropping control records.
fn decode_records(
    tp: &TopicPartition,
    from: i64,
    records: Option<Bytes>,
) -> Result<Vec<ConsumerRecord>> {
    let mut out = Vec::new();
    let Some(mut data) = records else {
        return Ok(out);
    };
    while data.remaining() >= 12 {
        let batch_len = i32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        if batch_len < 0 {
            return Err(ClientError::Protocol(format!(
                "{tp}: negative batch length"
            )));
        }
        let total = 12 + batch_len as usize;
        if data.remaining() < total {
            break;
        }
        let mut batch = data.split_to(total);
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| ClientError::Protocol(format!("{tp}: record batch: {e}")))?;
        for r in set.records {
            if r.control || r.offset < from {
                continue;
            }
            out.push(ConsumerRecord {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
    }
    Ok(out)
}

/// Offsets of `partitions` at `timestamp` (-2 earliest, -1 latest), from their leaders.
pub(crate) async fn list_offsets(
    cluster: &Arc<Cluster>,
    partitions: &[TopicPartition],
    timestamp: i64,
) -> Result<Vec<(TopicPartition, i64)>> {
    cluster
        .retry("ListOffsets", || async {
            let mut by_leader: HashMap<i32, Vec<&TopicPartition>> = HashMap::new();
            for tp in partitions {
                cluster.topic(&tp.topic, false).await?;
                let leader =
                    cluster
                        .leader(&tp.topic, tp.partition)
                        .ok_or_else(|| ClientError::Broker {
                            context: format!("leader of {tp}"),
                            error: ResponseError::LeaderNotAvailable,
                        })?;
                by_leader.entry(leader).or_default().push(tp);
            }
            let mut out = Vec::new();
            for (leader, tps) in by_leader {
                let conn = cluster.broker(leader).await?;
                let mut topics: Vec<ListOffsetsTopic> = Vec::new();
                for tp in &tps {
                    let p = ListOffsetsPartition::default()
                        .with_partition_index(tp.partition)
                        .with_timestamp(timestamp);
                    match topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
                        Some(t) => t.partitions.push(p),
                        None => topics.push(
                            ListOffsetsTopic::default()
                                .with_name(TopicName(StrBytes::from_string(tp.topic.clone())))
                                .with_partitions(vec![p]),
                        ),
                    }
                }
                let (response, _) = cluster
                    .send(&conn, |_| {
                        ListOffsetsRequest::default()
                            .with_replica_id(BrokerId(-1))
                            .with_topics(topics)
                    })
                    .await?;
                for t in &response.topics {
                    for p in &t.partitions {
                        let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                        if let Some(e) =
                            ClientError::broker(format!("ListOffsets {tp}"), p.error_code)
                        {
                            return Err(e);
                        }
                        out.push((tp, p.offset));
                    }
                }
            }
            Ok(out)
        })
        .await
}
