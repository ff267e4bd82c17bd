//! Membership of a consumer group under the classic protocol: find the group coordinator,
//! `JoinGroup` (the coordinator picks a leader and the assignor), the leader computes the
//! assignment and everyone receives theirs through `SyncGroup`; a background task then sends
//! `Heartbeat`s, and flags a rejoin when the coordinator says a rebalance is under way.
//! Committed offsets (`OffsetCommit`/`OffsetFetch`) go to the same coordinator.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest, OffsetFetchRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::task::JoinHandle;

use crate::config::{Assignor, ConsumerConfig};
use crate::error::{ClientError, Result};
use crate::kafka::assignor::{self, MemberSubscription};
use crate::kafka::cluster::{Backoff, Cluster};
use crate::kafka::connection::Connection;
use crate::kafka::consumer::TopicPartition;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// This consumer's membership in its group.
pub(crate) struct Group {
    cluster: Arc<Cluster>,
    config: ConsumerConfig,
    pub(crate) group_id: String,
    coordinator: Option<Arc<Connection>>,
    pub(crate) member_id: String,
    pub(crate) generation: i32,
    pub(crate) protocol: Option<Assignor>,
    rejoin: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

impl Group {
    pub(crate) fn new(cluster: Arc<Cluster>, config: ConsumerConfig, group_id: String) -> Group {
        Group {
            cluster,
            config,
            group_id,
            coordinator: None,
            member_id: String::new(),
            generation: -1,
            protocol: None,
            rejoin: Arc::new(AtomicBool::new(true)),
            heartbeat: None,
        }
    }

    pub(crate) fn set_rejoin(&self) {
        self.rejoin.store(true, Ordering::Relaxed);
    }

    /// Whether the group must be (re)joined before consuming on.
    pub(crate) fn needs_rejoin(&self) -> bool {
        self.rejoin.load(Ordering::Relaxed)
    }

    /// A connection to the group's coordinator, looked up once and reused while it is open.
    pub(crate) async fn coordinator(&mut self) -> Result<Arc<Connection>> {
        if let Some(c) = &self.coordinator
            && !c.is_closed()
        {
            return Ok(c.clone());
        }
        let cluster = self.cluster.clone();
        let group = self.group_id.clone();
        let conn = cluster
            .retry("FindCoordinator", || async {
                let any = cluster.any_broker().await?;
                let (response, version) = cluster
                    .send(&any, |v| {
                        if v >= 4 {
                            FindCoordinatorRequest::default().with_coordinator_keys(vec![s(&group)])
                        } else {
                            FindCoordinatorRequest::default().with_key(s(&group))
                        }
                    })
                    .await?;
                let (code, host, port) = if version >= 4 {
                    let c = response.coordinators.first().ok_or_else(|| {
                        ClientError::Protocol("FindCoordinator answered no coordinator".into())
                    })?;
                    (c.error_code, c.host.to_string(), c.port)
                } else {
                    (
                        response.error_code,
                        response.host.to_string(),
                        response.port,
                    )
                };
                if let Some(e) = ClientError::broker(format!("FindCoordinator {group}"), code) {
                    return Err(e);
                }
                cluster.connection_to(&format!("{host}:{port}")).await
            })
            .await?;
        self.coordinator = Some(conn.clone());
        Ok(conn)
    }

    /// Runs a full JoinGroup/SyncGroup round and returns this member's new assignment.
    pub(crate) async fn join(
        &mut self,
        topics: &[String],
        owned: &[TopicPartition],
    ) -> Result<Vec<TopicPartition>> {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let deadline = Instant::now() + self.config.max_poll_interval;
        let mut backoff = Backoff::new(&self.cluster.config);
        loop {
            match self.join_once(topics, owned).await {
                Ok(assigned) => {
                    self.rejoin.store(false, Ordering::Relaxed);
                    self.start_heartbeat();
                    return Ok(assigned);
                }
                Err(e) if Instant::now() < deadline && rejoinable(&e) => {
                    tracing::debug!(group = %self.group_id, error = %e, "rejoining");
                    if matches!(
                        e.kafka_error(),
                        Some(ResponseError::UnknownMemberId | ResponseError::IllegalGeneration)
                    ) {
                        self.member_id.clear();
                        self.generation = -1;
                    }
                    if matches!(
                        e.kafka_error(),
                        Some(
                            ResponseError::NotCoordinator | ResponseError::CoordinatorNotAvailable
                        )
                    ) || !e.is_retriable() && e.kafka_error().is_none()
                    {
                        self.coordinator = None;
                    }
                    if e.kafka_error() != Some(ResponseError::MemberIdRequired) {
                        backoff.wait().await;
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn join_once(
        &mut self,
        topics: &[String],
        owned: &[TopicPartition],
    ) -> Result<Vec<TopicPartition>> {
        let conn = self.coordinator().await?;
        let metadata = encode_subscription(topics, owned);
        let protocols: Vec<JoinGroupRequestProtocol> = self
            .config
            .assignors
            .iter()
            .map(|a| {
                JoinGroupRequestProtocol::default()
                    .with_name(s(a.name()))
                    .with_metadata(metadata.clone())
            })
            .collect();
        let session_ms = self.config.session_timeout.as_millis() as i32;
        let rebalance_ms = self.config.max_poll_interval.as_millis() as i32;
        let group = GroupId(s(&self.group_id));
        let member = s(&self.member_id);
        // JoinGroup waits for every member, up to the rebalance timeout.
        let version = conn.version::<JoinGroupRequest>()?;
        let mut request = JoinGroupRequest::default()
            .with_group_id(group.clone())
            .with_session_timeout_ms(session_ms)
            .with_member_id(member)
            .with_protocol_type(s("consumer"))
            .with_protocols(protocols);
        if version >= 1 {
            request = request.with_rebalance_timeout_ms(rebalance_ms);
        }
        let wait = self.config.max_poll_interval + self.cluster.config.request_timeout;
        let response = tokio::time::timeout(wait, conn.send(&request, version))
            .await
            .map_err(|_| ClientError::Timeout {
                what: "JoinGroup".into(),
                millis: wait.as_millis() as u64,
            })??;
        if response.error_code == ResponseError::MemberIdRequired.code() {
            self.member_id = response.member_id.to_string();
        }
        if let Some(e) =
            ClientError::broker(format!("JoinGroup {}", self.group_id), response.error_code)
        {
            return Err(e);
        }
        self.member_id = response.member_id.to_string();
        self.generation = response.generation_id;
        let protocol_name = response
            .protocol_name
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let protocol = self
            .config
            .assignors
            .iter()
            .copied()
            .find(|a| a.name() == protocol_name)
            .ok_or_else(|| {
                ClientError::Protocol(format!("group chose unknown assignor {protocol_name:?}"))
            })?;
        self.protocol = Some(protocol);

        let assignments = if response.leader.as_str() == self.member_id {
            self.assign(protocol, &response.members).await?
        } else {
            Vec::new()
        };
        let version = conn.version::<SyncGroupRequest>()?;
        let mut sync = SyncGroupRequest::default()
            .with_group_id(group)
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id))
            .with_assignments(assignments);
        if version >= 5 {
            sync = sync
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s(protocol.name())));
        }
        let response = tokio::time::timeout(wait, conn.send(&sync, version))
            .await
            .map_err(|_| ClientError::Timeout {
                what: "SyncGroup".into(),
                millis: wait.as_millis() as u64,
            })??;
        if let Some(e) =
            ClientError::broker(format!("SyncGroup {}", self.group_id), response.error_code)
        {
            return Err(e);
        }
        decode_assignment(response.assignment)
    }

    async fn assign(
        &self,
        protocol: Assignor,
        members: &[kafka_protocol::messages::join_group_response::JoinGroupResponseMember],
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let mut subscriptions = BTreeMap::new();
        for m in members {
            subscriptions.insert(
                m.member_id.to_string(),
                decode_subscription(m.metadata.clone())?,
            );
        }
        let mut partitions = HashMap::new();
        for topic in subscriptions.values().flat_map(|s| s.topics.iter()) {
            if partitions.contains_key(topic) {
                continue;
            }
            match self.cluster.topic(topic, false).await {
                Ok(info) => {
                    partitions.insert(topic.clone(), info.partitions.len() as i32);
                }
                Err(ClientError::UnknownTopic(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let assignment = match protocol {
            Assignor::Range => assignor::range(&subscriptions, &partitions),
            Assignor::CooperativeSticky => {
                assignor::cooperative_sticky(&subscriptions, &partitions)
            }
        };
        tracing::debug!(group = %self.group_id, ?assignment, "leader assigned partitions");
        Ok(assignment
            .into_iter()
            .map(|(member, tps)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(encode_assignment(&tps))
            })
            .collect())
    }

    fn start_heartbeat(&mut self) {
        let cluster = self.cluster.clone();
        let Some(conn) = self.coordinator.clone() else {
            return;
        };
        let rejoin = self.rejoin.clone();
        let interval = self.config.heartbeat_interval;
        let group = self.group_id.clone();
        let member = self.member_id.clone();
        let generation = self.generation;
        self.heartbeat = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let result = cluster
                    .send(&conn, |_| {
                        HeartbeatRequest::default()
                            .with_group_id(GroupId(s(&group)))
                            .with_generation_id(generation)
                            .with_member_id(s(&member))
                    })
                    .await;
                match result {
                    Ok((r, _)) if r.error_code == 0 => {}
                    Ok((r, _)) => {
                        tracing::debug!(%group, code = r.error_code, "heartbeat asks to rejoin");
                        rejoin.store(true, Ordering::Relaxed);
                        return;
                    }
                    Err(e) if e.is_retriable() => {
                        tracing::debug!(%group, error = %e, "heartbeat failed");
                        if conn.is_closed() {
                            rejoin.store(true, Ordering::Relaxed);
                            return;
                        }
                    }
                    Err(_) => {
                        rejoin.store(true, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }));
    }

    /// Commits `offsets` (the next offset to consume, per partition) for this group.
    pub(crate) async fn commit(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for (tp, offset) in offsets {
            let p = OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition)
                .with_committed_offset(*offset);
            match topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s(&tp.topic)))
                        .with_partitions(vec![p]),
                ),
            }
        }
        let conn = self.coordinator().await?;
        let (response, _) = self
            .cluster
            .send(&conn, |_| {
                OffsetCommitRequest::default()
                    .with_group_id(GroupId(s(&self.group_id)))
                    .with_generation_id_or_member_epoch(self.generation)
                    .with_member_id(s(&self.member_id))
                    .with_topics(topics)
            })
            .await?;
        for t in &response.topics {
            for p in &t.partitions {
                if let Some(e) = ClientError::broker(
                    format!("OffsetCommit {}-{}", t.name.0, p.partition_index),
                    p.error_code,
                ) {
                    if matches!(
                        e.kafka_error(),
                        Some(
                            ResponseError::RebalanceInProgress
                                | ResponseError::IllegalGeneration
                                | ResponseError::UnknownMemberId
                        )
                    ) {
                        self.rejoin.store(true, Ordering::Relaxed);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The group's committed offsets of `partitions` (absent when none is committed).
    pub(crate) async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        let mut topics: Vec<OffsetFetchRequestTopic> = Vec::new();
        for tp in partitions {
            match topics.iter_mut().find(|t| t.name.0.as_str() == tp.topic) {
                Some(t) => t.partition_indexes.push(tp.partition),
                None => topics.push(
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s(&tp.topic)))
                        .with_partition_indexes(vec![tp.partition]),
                ),
            }
        }
        self.fetch_committed(Some(topics)).await
    }

    /// Every committed offset of the group, on any topic.
    pub(crate) async fn committed_all(&mut self) -> Result<HashMap<TopicPartition, i64>> {
        self.fetch_committed(None).await
    }

    /// OffsetFetch for `topics`, or for all the group's topics when `None`.
    async fn fetch_committed(
        &mut self,
        topics: Option<Vec<OffsetFetchRequestTopic>>,
    ) -> Result<HashMap<TopicPartition, i64>> {
        let group = self.group_id.clone();
        let conn = self.coordinator().await?;
        let cluster = self.cluster.clone();
        let response = cluster
            .retry("OffsetFetch", || async {
                let (r, _) = cluster
                    .send(&conn, |_| {
                        OffsetFetchRequest::default()
                            .with_group_id(GroupId(s(&group)))
                            .with_topics(topics.clone())
                    })
                    .await?;
                if let Some(e) = ClientError::broker(format!("OffsetFetch {group}"), r.error_code) {
                    return Err(e);
                }
                Ok(r)
            })
            .await?;
        let mut out = HashMap::new();
        for t in &response.topics {
            for p in &t.partitions {
                if p.error_code == 0 && p.committed_offset >= 0 {
                    out.insert(
                        TopicPartition::new(t.name.0.as_str(), p.partition_index),
                        p.committed_offset,
                    );
                }
            }
        }
        Ok(out)
    }

    /// Leaves the group so its partitions are reassigned at once, not after a session timeout.
    pub(crate) async fn leave(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        if self.member_id.is_empty() {
            return;
        }
        let Ok(conn) = self.coordinator().await else {
            return;
        };
        let group = GroupId(s(&self.group_id));
        let member = s(&self.member_id);
        let _ = self
            .cluster
            .send(&conn, |v| {
                if v >= 3 {
                    LeaveGroupRequest::default()
                        .with_group_id(group)
                        .with_members(vec![MemberIdentity::default().with_member_id(member)])
                } else {
                    LeaveGroupRequest::default()
                        .with_group_id(group)
                        .with_member_id(member)
                }
            })
            .await;
        self.member_id.clear();
        self.generation = -1;
        self.rejoin.store(true, Ordering::Relaxed);
    }
}

fn rejoinable(e: &ClientError) -> bool {
    e.is_retriable()
        || matches!(
            e.kafka_error(),
            Some(
                ResponseError::MemberIdRequired
                    | ResponseError::UnknownMemberId
                    | ResponseError::IllegalGeneration
                    | ResponseError::RebalanceInProgress
            )
        )
}

const SUBSCRIPTION_VERSION: i16 = 1;
const ASSIGNMENT_VERSION: i16 = 0;

fn encode_subscription(topics: &[String], owned: &[TopicPartition]) -> Bytes {
    let mut owned_topics: Vec<OwnedTopic> = Vec::new();
    for tp in owned {
        match owned_topics
            .iter_mut()
            .find(|t| t.topic.0.as_str() == tp.topic)
        {
            Some(t) => t.partitions.push(tp.partition),
            None => owned_topics.push(
                OwnedTopic::default()
                    .with_topic(TopicName(s(&tp.topic)))
                    .with_partitions(vec![tp.partition]),
            ),
        }
    }
    let sub = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| s(t)).collect())
        .with_owned_partitions(owned_topics);
    let mut buf = BytesMut::new();
    buf.put_i16(SUBSCRIPTION_VERSION);
    // Encoding a fully populated message at a supported version cannot fail.
    let _ = sub.encode(&mut buf, SUBSCRIPTION_VERSION);
    buf.freeze()
}

fn decode_subscription(mut bytes: Bytes) -> Result<MemberSubscription> {
    if bytes.remaining() < 2 {
        return Err(ClientError::Protocol("empty member subscription".into()));
    }
    let version = bytes.get_i16().clamp(0, 3);
    let sub = ConsumerProtocolSubscription::decode(&mut bytes, version)
        .map_err(|e| ClientError::Protocol(format!("member subscription: {e}")))?;
    Ok(MemberSubscription {
        topics: sub.topics.iter().map(|t| t.to_string()).collect(),
        owned: sub
            .owned_partitions
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| TopicPartition::new(t.topic.0.as_str(), *p))
            })
            .collect(),
    })
}

fn encode_assignment(tps: &[TopicPartition]) -> Bytes {
    let mut topics: Vec<AssignedTopic> = Vec::new();
    for tp in tps {
        match topics.iter_mut().find(|t| t.topic.0.as_str() == tp.topic) {
            Some(t) => t.partitions.push(tp.partition),
            None => topics.push(
                AssignedTopic::default()
                    .with_topic(TopicName(s(&tp.topic)))
                    .with_partitions(vec![tp.partition]),
            ),
        }
    }
    let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(topics);
    let mut buf = BytesMut::new();
    buf.put_i16(ASSIGNMENT_VERSION);
    let _ = assignment.encode(&mut buf, ASSIGNMENT_VERSION);
    buf.freeze()
}

pub(crate) fn decode_assignment(mut bytes: Bytes) -> Result<Vec<TopicPartition>> {
    // An empty assignment (no partitions for this member) may come as no bytes at all.
    if bytes.remaining() < 2 {
        return Ok(Vec::new());
    }
    let version = bytes.get_i16().clamp(0, 3);
    let assignment = ConsumerProtocolAssignment::decode(&mut bytes, version)
        .map_err(|e| ClientError::Protocol(format!("assignment: {e}")))?;
    let mut out: Vec<TopicPartition> = assignment
        .assigned_partitions
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(t.topic.0.as_str(), *p))
        })
        .collect();
    out.sort();
    Ok(out)
}
