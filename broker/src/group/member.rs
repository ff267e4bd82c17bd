//! One member of a group: who it is, what it supports, what it was assigned, and the
//! JoinGroup or SyncGroup request it may be waiting on.
//!
//! A *member id* is given by the coordinator at the first JoinGroup; a *static member*
//! also carries the client's `group.instance.id`, which outlives member ids: a restarted
//! static member takes over its old membership instead of joining as someone new.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::GroupError;

/// What a JoinGroup request gets back once the rebalance completes (or at once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// The member id of the member that joined.
    pub member_id: String,
    /// The generation the member joined.
    pub generation_id: i32,
    /// The group's protocol type (`consumer` for Kafka consumers).
    pub protocol_type: Option<String>,
    /// The protocol (assignor) chosen for this generation.
    pub protocol_name: Option<String>,
    /// The member id of the leader, who computes the assignment.
    pub leader: String,
    /// True when the leader must not compute a new assignment (static leader rejoining a
    /// stable group; JoinGroup v9+).
    pub skip_assignment: bool,
    /// Every member with its metadata for the chosen protocol: only for the leader.
    pub members: Vec<JoinedMember>,
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Its member id.
    pub member_id: String,
    /// Its `group.instance.id`, if static.
    pub group_instance_id: Option<String>,
    /// Its metadata (the consumer's subscription) for the chosen protocol.
    pub metadata: Bytes,
}

/// What a SyncGroup request gets back: this member's assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol_name: Option<String>,
    /// The assignment the leader computed for this member.
    pub assignment: Bytes,
}

pub(crate) type JoinReply = oneshot::Sender<Result<JoinResult, GroupError>>;
pub(crate) type SyncReply = oneshot::Sender<Result<SyncResult, GroupError>>;

/// Kafka's `group.new.member.join.timeout`: a member that joined for the first time and
/// is waiting for the rebalance to finish cannot heartbeat, so it gets this long instead
/// of its session timeout before it is dropped.
pub(crate) const NEW_MEMBER_JOIN_TIMEOUT: Duration = Duration::from_secs(300);

/// A member of a group.
#[derive(Debug)]
pub(crate) struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// Protocols (assignor names) in the member's order of preference, with metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// The assignment of the current generation (empty until the leader's SyncGroup).
    pub assignment: Bytes,
    /// A JoinGroup parked until the rebalance completes.
    pub awaiting_join: Option<JoinReply>,
    /// A SyncGroup parked until the leader sends the assignment.
    pub awaiting_sync: Option<SyncReply>,
    /// Joined during the current rebalance and never completed one.
    pub is_new: bool,
    /// When the session expires unless a heartbeat (or a parked request) keeps it alive.
    pub deadline: Instant,
    /// When the session timer task next wakes up by itself.
    pub armed_until: Instant,
    /// Wakes the session timer task early, when the deadline moved before `armed_until`.
    pub wake: Arc<Notify>,
    /// Distinguishes this membership from any other that reuses the member id, so that a
    /// stale session timer does nothing.
    pub serial: u64,
}

impl Member {
    /// The member's metadata for `protocol`.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// Whether a JoinGroup with these protocols asks for nothing new.
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    /// A member with a parked request cannot heartbeat, so its session stays alive while
    /// it waits (a first-time joiner only up to [`NEW_MEMBER_JOIN_TIMEOUT`]).
    pub fn keep_alive(&self) -> bool {
        (self.awaiting_join.is_some() && !self.is_new) || self.awaiting_sync.is_some()
    }

    /// Restarts the session timeout, as a heartbeat does.
    pub fn touch(&mut self) {
        self.deadline = Instant::now() + self.session_timeout;
        if self.deadline < self.armed_until {
            self.wake.notify_one();
        }
    }

    /// Answers a parked JoinGroup, if any.
    pub fn reply_join(&mut self, result: Result<JoinResult, GroupError>) {
        if let Some(reply) = self.awaiting_join.take() {
            // The client may have gone; nothing to do then.
            let _ = reply.send(result);
        }
    }

    /// Answers a parked SyncGroup, if any.
    pub fn reply_sync(&mut self, result: Result<SyncResult, GroupError>) {
        if let Some(reply) = self.awaiting_sync.take() {
            let _ = reply.send(result);
        }
    }
}
