//! One group's state: its place in the rebalance state machine, its generation, its
//! members and its committed offsets.
//!
//! The states are Kafka's: *Empty* (no members; offsets may remain), *PreparingRebalance*
//! (waiting for members to (re)join), *CompletingRebalance* (joined; waiting for the
//! leader's assignment in SyncGroup), *Stable* (assignment handed out; members heartbeat)
//! and *Dead* (deleted or expired; being removed). Each completed join starts a new
//! *generation*, which members quote in every request so that stale ones are refused.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::indexmap::IndexMap;

use super::member::{JoinedMember, Member};
use super::store::{StoredGroup, StoredMember, Write};
use super::subscription;

/// Where a group is in the rebalance protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members.
    Empty,
    /// Waiting for members to join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment handed out.
    Stable,
    /// Deleted or expired.
    Dead,
}

impl GroupState {
    /// Kafka's name of the state, as DescribeGroups and ListGroups report it.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A committed offset with what came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: i64,
    /// Leader epoch of the committed record, or -1.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed (ms since the epoch).
    pub commit_timestamp_ms: i64,
    /// An explicit expiry asked for by OffsetCommit v2-v4 `retention_time_ms`.
    pub expire_timestamp_ms: Option<i64>,
}

/// (topic, partition)
pub(crate) type TopicPartition = (String, i32);

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One group.
#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    /// When the group entered its current state (ms since the epoch); offsets of an
    /// empty group expire counting from here.
    pub state_timestamp_ms: i64,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// Members in join order (the first becomes leader when the leader leaves).
    pub members: IndexMap<String, Member>,
    /// `group.instance.id` → member id.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined with.
    pub pending_members: HashSet<String>,
    /// Members of the new generation that have not sent SyncGroup yet.
    pub pending_sync: HashSet<String>,
    /// A member joined during the initial delay, which is then extended once more.
    pub new_member_added: bool,
    /// While the initial rebalance delay runs: how much rebalance timeout is left.
    pub initial_join_remaining: Option<Duration>,
    /// Token of the armed join timer (0: none); a timer whose token is stale does nothing.
    /// Tokens come from the coordinator-wide serial, so a group re-created under the same
    /// id never matches a timer of its predecessor.
    pub join_timer: u64,
    /// Token of the armed pending-sync timer (0: none).
    pub sync_timer: u64,
    /// Topics the members subscribe to, when the protocol type is `consumer` and their
    /// subscriptions could be read; `None` means "unknown, assume all".
    pub subscribed_topics: Option<HashSet<String>>,
    pub offsets: HashMap<TopicPartition, CommittedOffset>,
    /// Records to append to `__consumer_offsets`, in order, before the lock is released.
    pub outbox: Vec<Write>,
}

impl Group {
    /// A new, empty group.
    pub fn new(id: String) -> Group {
        Group {
            id,
            state: GroupState::Empty,
            state_timestamp_ms: now_ms(),
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: IndexMap::new(),
            static_members: HashMap::new(),
            pending_members: HashSet::new(),
            pending_sync: HashSet::new(),
            new_member_added: false,
            initial_join_remaining: None,
            join_timer: 0,
            sync_timer: 0,
            subscribed_topics: None,
            offsets: HashMap::new(),
            outbox: Vec::new(),
        }
    }

    pub fn transition(&mut self, state: GroupState) {
        self.state = state;
        self.state_timestamp_ms = now_ms();
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    pub fn add_member(&mut self, member: Member, protocol_type: &str) {
        if self.members.is_empty() {
            self.protocol_type = Some(protocol_type.to_string());
        }
        if self.leader.is_none() {
            self.leader = Some(member.member_id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        self.members.insert(member.member_id.clone(), member);
    }

    /// Removes a member, handing leadership to the oldest remaining member if needed.
    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let member = self.members.shift_remove(member_id)?;
        if let Some(instance) = &member.group_instance_id
            && self.static_members.get(instance).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(instance);
        }
        self.pending_sync.remove(member_id);
        if self.is_leader(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
        Some(member)
    }

    /// Moves a static member's membership to a new member id (the old one is fenced).
    pub fn replace_static_member(&mut self, instance: &str, old_id: &str, new_id: &str) {
        let Some(mut member) = self.members.shift_remove(old_id) else {
            return;
        };
        member.reply_join(Err(super::GroupError::FencedInstanceId));
        member.reply_sync(Err(super::GroupError::FencedInstanceId));
        member.member_id = new_id.to_string();
        self.members.insert(new_id.to_string(), member);
        if self.is_leader(old_id) {
            self.leader = Some(new_id.to_string());
        }
        if self.pending_sync.remove(old_id) {
            self.pending_sync.insert(new_id.to_string());
        }
        self.static_members
            .insert(instance.to_string(), new_id.to_string());
    }

    /// Kafka's member check for heartbeat, sync, commit and leave: a `group.instance.id`
    /// must map to this member id, and the member id must exist.
    pub fn validate_member(
        &self,
        member_id: &str,
        instance: Option<&str>,
    ) -> Result<(), super::GroupError> {
        use super::GroupError;
        match instance {
            Some(instance) => match self.static_members.get(instance) {
                Some(current) if current != member_id => Err(GroupError::FencedInstanceId),
                Some(_) => Ok(()),
                None => Err(GroupError::UnknownMemberId),
            },
            None if !self.members.contains_key(member_id) => Err(GroupError::UnknownMemberId),
            None => Ok(()),
        }
    }

    /// Whether a member with this protocol type and these protocols may join.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let candidates = self.candidate_protocols();
        protocols.iter().any(|(name, _)| candidates.contains(name))
    }

    /// Protocols every member supports.
    fn candidate_protocols(&self) -> Vec<String> {
        let mut members = self.members.values();
        let Some(first) = members.next() else {
            return Vec::new();
        };
        let mut candidates: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for member in members {
            candidates.retain(|c| member.protocols.iter().any(|(n, _)| n == c));
        }
        candidates
    }

    /// Kafka's protocol choice: among the protocols all members support, each member
    /// votes for the one it prefers most; the most votes win (ties: the earliest
    /// candidate in the first member's order).
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidate_protocols();
        let mut votes = vec![0usize; candidates.len()];
        for member in self.members.values() {
            if let Some(i) = member
                .protocols
                .iter()
                .find_map(|(n, _)| candidates.iter().position(|c| c == n))
            {
                votes[i] += 1;
            }
        }
        let mut best: Option<usize> = None;
        for (i, v) in votes.iter().enumerate() {
            if best.is_none_or(|b| *v > votes[b]) {
                best = Some(i);
            }
        }
        best.map(|i| candidates[i].clone())
    }

    pub fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    pub fn num_awaiting_join(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.awaiting_join.is_some())
            .count()
    }

    pub fn has_all_members_joined(&self) -> bool {
        self.members.len() == self.num_awaiting_join() && self.pending_members.is_empty()
    }

    /// Every member with its metadata for the chosen protocol, as the leader gets them.
    pub fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(&protocol),
            })
            .collect()
    }

    /// Starts the next generation once the join phase is over.
    pub fn init_next_generation(&mut self) {
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = None;
            self.transition(GroupState::Empty);
        } else {
            self.protocol_name = self.select_protocol();
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition(GroupState::CompletingRebalance);
        }
    }

    /// The union of the members' subscriptions, for `consumer` groups.
    pub fn compute_subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some(subscription::CONSUMER_PROTOCOL_TYPE) {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = HashSet::new();
        for member in self.members.values() {
            topics.extend(subscription::topics(&member.metadata(protocol))?);
        }
        Some(topics)
    }

    /// Whether the group reads `topic` (unknown subscriptions count as yes, as in Kafka).
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => true,
        }
    }

    /// The group's metadata as persisted in `__consumer_offsets`.
    pub fn to_stored(&self) -> StoredGroup {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        StoredGroup {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol_name.clone(),
            leader: self.leader.clone(),
            state_timestamp_ms: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                    session_timeout_ms: m.session_timeout.as_millis() as i32,
                    subscription: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Queues the group's metadata record.
    pub fn persist(&mut self) {
        let record = super::store::group_record(&self.id, Some(&self.to_stored()));
        self.outbox.push(Write::new(vec![record]));
    }

    /// Offsets that have expired at `now_ms` under Kafka's rules: all of them (counting
    /// from when the group became empty) for an empty group, all (counting from each
    /// commit) for a group used only to store offsets, and those of topics no member
    /// subscribes to for a stable consumer group.
    pub fn expired_offsets(&self, now_ms: i64, retention: Duration) -> Vec<TopicPartition> {
        let retention_ms = retention.as_millis() as i64;
        let (from_state, only_unsubscribed) = match (&self.protocol_type, self.state) {
            (None, _) => (false, false),
            (Some(_), GroupState::Empty) => (true, false),
            (Some(t), GroupState::Stable)
                if t == subscription::CONSUMER_PROTOCOL_TYPE
                    && self.subscribed_topics.is_some() =>
            {
                (false, true)
            }
            _ => return Vec::new(),
        };
        self.offsets
            .iter()
            .filter(|((topic, _), _)| !only_unsubscribed || !self.is_subscribed_to(topic))
            .filter(|(_, o)| match o.expire_timestamp_ms {
                Some(expire) => now_ms >= expire,
                None => {
                    let base = if from_state {
                        self.state_timestamp_ms
                    } else {
                        o.commit_timestamp_ms
                    };
                    now_ms.saturating_sub(base) >= retention_ms
                }
            })
            .map(|(tp, _)| tp.clone())
            .collect()
    }
}
