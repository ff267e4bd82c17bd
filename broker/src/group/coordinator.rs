//! [`GroupCoordinator`]: the rebalance protocol of classic consumer groups (JoinGroup,
//! SyncGroup, Heartbeat, LeaveGroup), the administrative calls (DescribeGroups,
//! ListGroups, DeleteGroups), and the timers that drive it.
//!
//! A rebalance: the first member (or a change — a member joining, leaving, changing its
//! subscription, or missing its session timeout) moves the group to PreparingRebalance;
//! JoinGroup requests are parked until every known member has rejoined (or the
//! rebalance timeout, the largest of the members', expires and those that did not
//! rejoin are dropped); then a new generation starts, a protocol all members support is
//! chosen, every parked JoinGroup is answered (the leader's with all members'
//! subscriptions) and the group waits in CompletingRebalance for the leader's
//! SyncGroup, whose assignment is handed to every member. The first rebalance of an
//! empty group waits `group.initial.rebalance.delay.ms` for more members first.
//!
//! Each group sits behind its own async mutex; every timer is a task sleeping until its
//! deadline (`sleep_until`) that then takes the lock and checks it is still current.
//!
//! The group's metadata (generation, protocol, leader, members with subscription and
//! assignment) is written to `__consumer_offsets` whenever a generation becomes stable or
//! empty, without making anyone wait for it: after a restart the members carry on
//! heartbeating in their generation, and one lost write only costs them a rejoin.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use tokio::sync::{Mutex, Notify, OwnedMutexGuard, mpsc, oneshot};
use tokio::time::Instant;

use super::member::{JoinResult, Member, NEW_MEMBER_JOIN_TIMEOUT, SyncResult};
use super::state::{Group, GroupState, now_ms};
use super::store::{self, OffsetsLog, Write};
use super::{GroupConfig, GroupError};

/// A JoinGroup request, as the coordinator needs it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The group.
    pub group_id: String,
    /// The member id, or empty for a member joining for the first time.
    pub member_id: String,
    /// The client's `group.instance.id` (static membership).
    pub group_instance_id: Option<String>,
    /// The client id from the request header.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// How long the member may go without heartbeat.
    pub session_timeout_ms: i32,
    /// How long the member may take to rejoin during a rebalance.
    pub rebalance_timeout_ms: i32,
    /// `consumer` for Kafka consumers.
    pub protocol_type: String,
    /// Supported protocols (assignors), preferred first, with metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED with its member id.
    pub require_known_member_id: bool,
    /// Why the member (re)joins, for the log.
    pub reason: Option<String>,
}

/// A SyncGroup request.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// The group.
    pub group_id: String,
    /// The generation the member joined.
    pub generation_id: i32,
    /// The member id.
    pub member_id: String,
    /// The client's `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// The protocol type the member expects (v5+).
    pub protocol_type: Option<String>,
    /// The protocol the member expects (v5+).
    pub protocol_name: Option<String>,
    /// The leader's assignment for each member (empty from followers).
    pub assignments: Vec<(String, Bytes)>,
}

/// A member leaving (LeaveGroup v3+ lists several).
#[derive(Debug, Clone)]
pub struct LeavingMember {
    /// The member id (empty: find it by `group_instance_id`).
    pub member_id: String,
    /// The client's `group.instance.id`.
    pub group_instance_id: Option<String>,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    /// Its state.
    pub state: GroupState,
    /// Its protocol type (empty if none).
    pub protocol_type: String,
    /// The chosen protocol when Stable (empty otherwise).
    pub protocol_name: String,
    /// Its members.
    pub members: Vec<MemberDescription>,
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// `group.instance.id`.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Metadata for the chosen protocol (Stable only).
    pub metadata: Bytes,
    /// Current assignment (Stable only).
    pub assignment: Bytes,
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type (empty if none).
    pub protocol_type: String,
    /// State.
    pub state: GroupState,
}

/// The consumer-group coordinator of this broker: groups, their members and their
/// committed offsets, persisted in `__consumer_offsets`. Cheap to clone.
#[derive(Clone)]
pub struct GroupCoordinator {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for GroupCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCoordinator")
            .field("groups", &self.inner.groups.len())
            .finish()
    }
}

pub(super) type Slot = Arc<Mutex<Group>>;

pub(super) struct Inner {
    pub config: GroupConfig,
    pub groups: DashMap<String, Slot>,
    pub writer: mpsc::Sender<Write>,
    serial: AtomicU64,
}

/// A parked request's answer, or the answer now.
enum Outcome<T> {
    Now(Result<T, GroupError>),
    Wait(oneshot::Receiver<Result<T, GroupError>>),
}

impl<T> Outcome<T> {
    async fn resolve(self) -> Result<T, GroupError> {
        match self {
            Outcome::Now(result) => result,
            // The member was superseded by a newer request of its own; it must rejoin.
            Outcome::Wait(rx) => rx.await.unwrap_or(Err(GroupError::RebalanceInProgress)),
        }
    }
}

/// A suffix making member ids unique across restarts: start time, then a counter.
fn start_nanos() -> u64 {
    static START: OnceLock<u64> = OnceLock::new();
    *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    })
}

impl GroupCoordinator {
    /// Opens the coordinator over the `__consumer_offsets` log: replays it into memory
    /// (blocking) and starts the writer and offset-expiry tasks, which needs a Tokio
    /// runtime context (a worker or a `spawn_blocking` thread).
    pub(crate) fn open(
        log: Arc<dyn OffsetsLog>,
        config: GroupConfig,
    ) -> Result<GroupCoordinator, GroupError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(GroupError::Storage(
                "the group coordinator must be opened inside a Tokio runtime".into(),
            ));
        }
        let replayed = store::replay(log.as_ref())?;
        let (tx, rx) = mpsc::channel(store::WRITE_QUEUE);
        tokio::spawn(store::run_writer(log, rx));
        let inner = Arc::new(Inner {
            config,
            groups: DashMap::new(),
            writer: tx,
            serial: AtomicU64::new(1),
        });
        inner.restore(replayed);
        let coordinator = GroupCoordinator { inner };
        coordinator.spawn_expiry_task();
        Ok(coordinator)
    }

    /// Opens the coordinator over the `__consumer_offsets` partition log (see
    /// `GroupCoordinator::open`; blocking, inside a Tokio runtime context).
    pub fn open_log(
        log: Arc<crate::log::PartitionLog>,
        config: GroupConfig,
    ) -> Result<GroupCoordinator, GroupError> {
        Self::open(Arc::new(store::PartitionOffsetsLog(log)), config)
    }

    /// JoinGroup: joins (or rejoins) a member; resolves when the rebalance completes.
    pub async fn join_group(&self, req: JoinRequest) -> Result<JoinResult, GroupError> {
        let inner = &self.inner;
        if req.group_id.is_empty() {
            return Err(GroupError::InvalidGroupId);
        }
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        if req.session_timeout_ms < 0
            || session < inner.config.min_session_timeout
            || session > inner.config.max_session_timeout
        {
            return Err(GroupError::InvalidSessionTimeout {
                asked_ms: req.session_timeout_ms,
                min_ms: inner.config.min_session_timeout.as_millis(),
                max_ms: inner.config.max_session_timeout.as_millis(),
            });
        }
        let size: usize = req.protocols.iter().map(|(n, m)| n.len() + m.len()).sum();
        if size > inner.config.member_metadata_max_bytes {
            return Err(GroupError::MemberMetadataTooLarge {
                what: "metadata",
                size,
                max: inner.config.member_metadata_max_bytes,
            });
        }
        if let Some(reason) = &req.reason {
            tracing::debug!(group = %req.group_id, member = %req.member_id, %reason, "join");
        }
        let outcome = {
            let create = req.member_id.is_empty();
            let Some(mut g) = inner.lock_group(&req.group_id, create).await? else {
                return Err(GroupError::UnknownMemberId);
            };
            let outcome = inner.do_join(&mut g, req);
            inner.maybe_complete_join(&mut g);
            inner.flush(&mut g).await;
            outcome
        };
        outcome.resolve().await
    }

    /// SyncGroup: the leader hands in the assignment; everyone gets theirs.
    pub async fn sync_group(&self, req: SyncRequest) -> Result<SyncResult, GroupError> {
        let inner = &self.inner;
        let outcome = {
            let Some(mut g) = inner.lock_group(&req.group_id, false).await? else {
                return Err(GroupError::UnknownMemberId);
            };
            let outcome = inner.do_sync(&mut g, req);
            inner.flush(&mut g).await;
            outcome
        };
        outcome.resolve().await
    }

    /// Heartbeat: keeps the member's session alive; says whether a rebalance is on.
    pub async fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        group_instance_id: Option<&str>,
        generation_id: i32,
    ) -> Result<(), GroupError> {
        let Some(mut g) = self.inner.lock_group(group_id, false).await? else {
            return Err(GroupError::UnknownMemberId);
        };
        g.validate_member(member_id, group_instance_id)?;
        if generation_id != g.generation {
            return Err(GroupError::IllegalGeneration);
        }
        let state = g.state;
        let member = g
            .members
            .get_mut(member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        match state {
            GroupState::Empty => Err(GroupError::UnknownMemberId),
            GroupState::CompletingRebalance | GroupState::Stable => {
                member.touch();
                Ok(())
            }
            GroupState::PreparingRebalance => {
                member.touch();
                Err(GroupError::RebalanceInProgress)
            }
            GroupState::Dead => Err(GroupError::CoordinatorNotAvailable {
                reason: "the group is being removed",
            }),
        }
    }

    /// LeaveGroup: removes members; one result per member, in order.
    pub async fn leave_group(
        &self,
        group_id: &str,
        leaving: &[LeavingMember],
    ) -> Vec<Result<(), GroupError>> {
        let inner = &self.inner;
        let Ok(Some(mut g)) = inner.lock_group(group_id, false).await else {
            return leaving
                .iter()
                .map(|_| Err(GroupError::UnknownMemberId))
                .collect();
        };
        let mut results = Vec::with_capacity(leaving.len());
        for member in leaving {
            let instance = member.group_instance_id.as_deref();
            let result = if member.member_id.is_empty() {
                match instance.and_then(|i| g.static_members.get(i).cloned()) {
                    Some(id) => {
                        inner.remove_member_and_update(&mut g, &id, "left the group");
                        Ok(())
                    }
                    None => Err(GroupError::UnknownMemberId),
                }
            } else if g.pending_members.remove(&member.member_id) {
                inner.maybe_complete_join(&mut g);
                Ok(())
            } else {
                match g.validate_member(&member.member_id, instance) {
                    Ok(()) => {
                        inner.remove_member_and_update(&mut g, &member.member_id, "left the group");
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            };
            results.push(result);
        }
        inner.flush(&mut g).await;
        results
    }

    /// DescribeGroups for one group.
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription, GroupError> {
        let Some(g) = self.inner.lock_group(group_id, false).await? else {
            return Err(GroupError::GroupIdNotFound);
        };
        let stable = g.state == GroupState::Stable;
        let protocol = g.protocol_name.clone().unwrap_or_default();
        Ok(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_name: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: if stable {
                        m.metadata(&protocol)
                    } else {
                        Bytes::new()
                    },
                    assignment: if stable {
                        m.assignment.clone()
                    } else {
                        Bytes::new()
                    },
                })
                .collect(),
        })
    }

    /// ListGroups: every group, optionally only those in the given states.
    pub async fn list_groups(&self, states: &[GroupState]) -> Vec<GroupListing> {
        let slots: Vec<(String, Slot)> = self
            .inner
            .groups
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        let mut listings = Vec::with_capacity(slots.len());
        for (group_id, slot) in slots {
            let g = slot.lock().await;
            if g.state == GroupState::Dead || (!states.is_empty() && !states.contains(&g.state)) {
                continue;
            }
            listings.push(GroupListing {
                group_id,
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            });
        }
        listings.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        listings
    }

    /// DeleteGroups: removes empty groups with their offsets; one result per group.
    pub async fn delete_groups(&self, group_ids: &[String]) -> Vec<Result<(), GroupError>> {
        let mut waits = Vec::with_capacity(group_ids.len());
        for group_id in group_ids {
            waits.push(self.delete_one(group_id).await);
        }
        let mut results = Vec::with_capacity(waits.len());
        for wait in waits {
            results.push(match wait {
                Ok(rx) => rx.await.unwrap_or_else(|_| {
                    Err(GroupError::Storage("the offsets writer stopped".into()))
                }),
                Err(e) => Err(e),
            });
        }
        results
    }

    async fn delete_one(
        &self,
        group_id: &str,
    ) -> Result<oneshot::Receiver<Result<(), GroupError>>, GroupError> {
        let inner = &self.inner;
        let Some(mut g) = inner.lock_group(group_id, false).await? else {
            return Err(GroupError::GroupIdNotFound);
        };
        if g.state != GroupState::Empty {
            return Err(GroupError::NonEmptyGroup);
        }
        let rx = inner.kill_group(&mut g);
        inner.flush(&mut g).await;
        Ok(rx)
    }

    /// The coordinator's settings.
    pub fn config(&self) -> &GroupConfig {
        &self.inner.config
    }
}

impl Inner {
    pub(super) fn next_serial(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::Relaxed)
    }

    fn new_member_id(&self, client_id: &str) -> String {
        let n = self.next_serial();
        format!("{client_id}-{:016x}-{n:08x}", start_nanos())
    }

    /// Locks a group, creating it if asked. A group found Dead (deleted meanwhile) is
    /// looked up again.
    pub(super) async fn lock_group(
        &self,
        group_id: &str,
        create: bool,
    ) -> Result<Option<OwnedMutexGuard<Group>>, GroupError> {
        loop {
            let slot = match self.groups.get(group_id) {
                Some(slot) => slot.clone(),
                None if !create => return Ok(None),
                None => {
                    if self.groups.len() >= self.config.max_groups {
                        return Err(GroupError::CoordinatorNotAvailable {
                            reason: "the coordinator holds its maximum number of groups",
                        });
                    }
                    self.groups
                        .entry(group_id.to_string())
                        .or_insert_with(|| Arc::new(Mutex::new(Group::new(group_id.to_string()))))
                        .clone()
                }
            };
            let guard = slot.clone().lock_owned().await;
            if guard.state != GroupState::Dead {
                return Ok(Some(guard));
            }
            self.groups
                .remove_if(group_id, |_, s| Arc::ptr_eq(s, &slot));
            if !create {
                return Ok(None);
            }
        }
    }

    /// Queues the group's pending records for the writer, in order.
    pub(super) async fn flush(&self, g: &mut Group) {
        for write in std::mem::take(&mut g.outbox) {
            if let Err(mpsc::error::SendError(write)) = self.writer.send(write).await
                && let Some(done) = write.done
            {
                let _ = done.send(Err(GroupError::Storage(
                    "the offsets writer stopped".into(),
                )));
            }
        }
    }

    /// Marks a group Dead, queues tombstones for its offsets and metadata, and removes it.
    pub(super) fn kill_group(&self, g: &mut Group) -> oneshot::Receiver<Result<(), GroupError>> {
        g.transition(GroupState::Dead);
        let mut records: Vec<_> = g
            .offsets
            .drain()
            .map(|((topic, partition), _)| store::offset_record(&g.id, &topic, partition, None))
            .collect();
        records.push(store::group_record(&g.id, None));
        let (write, rx) = Write::waited(records);
        g.outbox.push(write);
        let id = g.id.clone();
        // The slot is Dead now: whoever holds it looks the group up again.
        self.groups.remove_if(&id, |_, _| true);
        rx
    }

    fn do_join(self: &Arc<Self>, g: &mut Group, req: JoinRequest) -> Outcome<JoinResult> {
        let max = self.config.max_size;
        let probe_id = match (&req.group_instance_id, req.member_id.is_empty()) {
            (Some(instance), true) => g.static_members.get(instance).cloned().unwrap_or_default(),
            _ => req.member_id.clone(),
        };
        let accept = match g.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                g.members
                    .get(&probe_id)
                    .is_some_and(|m| m.awaiting_join.is_some())
                    || g.num_awaiting_join() < max
            }
            _ => g.members.contains_key(&probe_id) || g.members.len() < max,
        };
        if !accept {
            return Outcome::Now(Err(GroupError::GroupMaxSizeReached { max }));
        }
        if !g.supports_protocols(&req.protocol_type, &req.protocols) {
            return Outcome::Now(Err(GroupError::InconsistentGroupProtocol));
        }
        if req.member_id.is_empty() {
            self.join_new_member(g, req)
        } else {
            self.join_known_member(g, req)
        }
    }

    fn join_new_member(self: &Arc<Self>, g: &mut Group, req: JoinRequest) -> Outcome<JoinResult> {
        let new_id = self.new_member_id(&req.client_id);
        if let Some(instance) = req.group_instance_id.clone() {
            return match g.static_members.get(&instance).cloned() {
                Some(old_id) => self.replace_static_member(g, &instance, &old_id, new_id, req),
                None => self.add_member_and_rebalance(g, new_id, req),
            };
        }
        if req.require_known_member_id {
            if g.pending_members.len() >= self.config.max_size {
                return Outcome::Now(Err(GroupError::GroupMaxSizeReached {
                    max: self.config.max_size,
                }));
            }
            g.pending_members.insert(new_id.clone());
            let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
            self.spawn_pending_member_timer(&g.id, new_id.clone(), Instant::now() + session);
            return Outcome::Now(Err(GroupError::MemberIdRequired { member_id: new_id }));
        }
        self.add_member_and_rebalance(g, new_id, req)
    }

    fn join_known_member(self: &Arc<Self>, g: &mut Group, req: JoinRequest) -> Outcome<JoinResult> {
        let member_id = req.member_id.clone();
        if g.pending_members.remove(&member_id) {
            return self.add_member_and_rebalance(g, member_id, req);
        }
        if let Err(e) = g.validate_member(&member_id, req.group_instance_id.as_deref()) {
            return Outcome::Now(Err(e));
        }
        let Some(member) = g.members.get(&member_id) else {
            return Outcome::Now(Err(GroupError::UnknownMemberId));
        };
        let unchanged = member.matches(&req.protocols);
        match g.state {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(g, req),
            // The member lost the JoinGroup response; give it the same again.
            GroupState::CompletingRebalance if unchanged => {
                Outcome::Now(Ok(current_join_result(g, &member_id)))
            }
            GroupState::CompletingRebalance => self.update_member_and_rebalance(g, req),
            // A leader rejoining forces a rebalance (it wants a new assignment); so does a
            // member whose subscription changed.
            GroupState::Stable if g.is_leader(&member_id) || !unchanged => {
                self.update_member_and_rebalance(g, req)
            }
            GroupState::Stable => Outcome::Now(Ok(current_join_result(g, &member_id))),
            GroupState::Empty | GroupState::Dead => Outcome::Now(Err(GroupError::UnknownMemberId)),
        }
    }

    fn add_member_and_rebalance(
        self: &Arc<Self>,
        g: &mut Group,
        member_id: String,
        req: JoinRequest,
    ) -> Outcome<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let serial = self.next_serial();
        let deadline = Instant::now() + NEW_MEMBER_JOIN_TIMEOUT;
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout: Duration::from_millis(req.session_timeout_ms.max(0) as u64),
            rebalance_timeout: Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64),
            protocols: req.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(tx),
            awaiting_sync: None,
            is_new: true,
            deadline,
            armed_until: deadline,
            wake: Arc::new(Notify::new()),
            serial,
        };
        if g.state == GroupState::PreparingRebalance && g.generation == 0 {
            g.new_member_added = true;
        }
        g.add_member(member, &req.protocol_type);
        let wake = g
            .members
            .get(&member_id)
            .map(|m| m.wake.clone())
            .unwrap_or_default();
        self.spawn_member_timer(&g.id, member_id.clone(), serial, deadline, wake);
        tracing::info!(group = %g.id, member = %member_id, "member joined");
        self.maybe_prepare_rebalance(g);
        Outcome::Wait(rx)
    }

    fn update_member_and_rebalance(
        self: &Arc<Self>,
        g: &mut Group,
        req: JoinRequest,
    ) -> Outcome<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if let Some(member) = g.members.get_mut(&req.member_id) {
            update_member(member, &req, tx);
        }
        self.maybe_prepare_rebalance(g);
        Outcome::Wait(rx)
    }

    /// A static member rejoining with a new member id takes over the old membership.
    fn replace_static_member(
        self: &Arc<Self>,
        g: &mut Group,
        instance: &str,
        old_id: &str,
        new_id: String,
        req: JoinRequest,
    ) -> Outcome<JoinResult> {
        let current_leader = g.leader.clone().unwrap_or_default();
        let old_metadata_unchanged = g
            .members
            .get(old_id)
            .is_some_and(|m| m.matches(&req.protocols));
        g.replace_static_member(instance, old_id, &new_id);
        let serial = self.next_serial();
        let (tx, rx) = oneshot::channel();
        let Some(member) = g.members.get_mut(&new_id) else {
            return Outcome::Now(Err(GroupError::UnknownMemberId));
        };
        member.serial = serial;
        member.wake = Arc::new(Notify::new());
        update_member(member, &req, tx);
        member.touch();
        member.armed_until = member.deadline;
        let (deadline, wake) = (member.deadline, member.wake.clone());
        self.spawn_member_timer(&g.id, new_id.clone(), serial, deadline, wake);
        tracing::info!(group = %g.id, %instance, old = %old_id, new = %new_id, "static member replaced");
        match g.state {
            GroupState::Stable
                if old_metadata_unchanged && g.select_protocol() == g.protocol_name =>
            {
                // Nothing changed: no rebalance. The old leader id is returned so that a
                // leader before v9 does not compute an assignment the stable group would
                // never hand out; v9 says so with skip_assignment.
                if let Some(member) = g.members.get_mut(&new_id) {
                    member.awaiting_join = None;
                }
                g.persist();
                let is_leader = g.is_leader(&new_id);
                Outcome::Now(Ok(JoinResult {
                    member_id: new_id,
                    generation_id: g.generation,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol_name.clone(),
                    leader: current_leader,
                    skip_assignment: is_leader,
                    members: if is_leader {
                        g.joined_members()
                    } else {
                        Vec::new()
                    },
                }))
            }
            // The leader may already have been sent the old member id: rebalance again.
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(g);
                Outcome::Wait(rx)
            }
            GroupState::PreparingRebalance => Outcome::Wait(rx),
            GroupState::Empty | GroupState::Dead => Outcome::Now(Err(GroupError::UnknownMemberId)),
        }
    }

    pub(super) fn maybe_prepare_rebalance(self: &Arc<Self>, g: &mut Group) {
        if matches!(
            g.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(g);
        }
    }

    fn prepare_rebalance(self: &Arc<Self>, g: &mut Group) {
        if g.state == GroupState::CompletingRebalance {
            // Members waiting in SyncGroup must rejoin.
            for member in g.members.values_mut() {
                member.assignment = Bytes::new();
                member.reply_sync(Err(GroupError::RebalanceInProgress));
            }
        }
        g.sync_timer = 0;
        g.pending_sync.clear();
        let was_empty = g.state == GroupState::Empty;
        g.transition(GroupState::PreparingRebalance);
        let token = self.next_serial();
        g.join_timer = token;
        let rebalance_timeout = g.max_rebalance_timeout();
        let delay = if was_empty {
            let delay = self.config.initial_rebalance_delay;
            g.initial_join_remaining = Some(rebalance_timeout.saturating_sub(delay));
            delay
        } else {
            g.initial_join_remaining = None;
            rebalance_timeout
        };
        tracing::info!(group = %g.id, generation = g.generation, "preparing to rebalance");
        self.spawn_group_timer(&g.id, TimerKind::Join(token), Instant::now() + delay);
    }

    /// Completes the join phase as soon as every known member has rejoined.
    pub(super) fn maybe_complete_join(self: &Arc<Self>, g: &mut Group) {
        if g.state == GroupState::PreparingRebalance
            && g.initial_join_remaining.is_none()
            && g.has_all_members_joined()
        {
            self.complete_join(g);
        }
    }

    fn on_join_timer(self: &Arc<Self>, g: &mut Group, token: u64) {
        if g.state != GroupState::PreparingRebalance || g.join_timer != token {
            return;
        }
        if let Some(remaining) = g.initial_join_remaining {
            if g.new_member_added && !remaining.is_zero() {
                // Someone joined during the delay: wait once more for stragglers.
                g.new_member_added = false;
                let delay = self.config.initial_rebalance_delay.min(remaining);
                g.initial_join_remaining = Some(remaining - delay);
                let token = self.next_serial();
                g.join_timer = token;
                self.spawn_group_timer(&g.id, TimerKind::Join(token), Instant::now() + delay);
                return;
            }
            g.initial_join_remaining = None;
        }
        self.complete_join(g);
    }

    fn complete_join(self: &Arc<Self>, g: &mut Group) {
        g.join_timer = 0;
        g.initial_join_remaining = None;
        g.new_member_added = false;
        // Dynamic members that did not rejoin in time are gone; static ones keep their
        // place until their session expires.
        let missing: Vec<String> = g
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in missing {
            tracing::info!(group = %g.id, member = %id, "member did not rejoin in time");
            if let Some(mut m) = g.remove_member(&id) {
                m.reply_sync(Err(GroupError::UnknownMemberId));
            }
        }
        if !self.elect_joined_leader(g) && !g.members.is_empty() {
            // Nobody rejoined (static members only): wait another rebalance timeout.
            let token = self.next_serial();
            g.join_timer = token;
            let at = Instant::now() + g.max_rebalance_timeout();
            self.spawn_group_timer(&g.id, TimerKind::Join(token), at);
            return;
        }
        g.init_next_generation();
        tracing::info!(
            group = %g.id,
            generation = g.generation,
            members = g.members.len(),
            protocol = g.protocol_name.as_deref().unwrap_or(""),
            "rebalance: join phase complete"
        );
        if g.state == GroupState::Empty {
            g.persist();
            return;
        }
        let leader = g.leader.clone().unwrap_or_default();
        let leader_view = g.joined_members();
        let ids: Vec<String> = g.members.keys().cloned().collect();
        for id in ids {
            let result = JoinResult {
                member_id: id.clone(),
                generation_id: g.generation,
                protocol_type: g.protocol_type.clone(),
                protocol_name: g.protocol_name.clone(),
                leader: leader.clone(),
                skip_assignment: false,
                members: if id == leader {
                    leader_view.clone()
                } else {
                    Vec::new()
                },
            };
            if let Some(member) = g.members.get_mut(&id) {
                member.reply_join(Ok(result));
                member.touch();
                member.is_new = false;
            }
            g.pending_sync.insert(id);
        }
        let token = self.next_serial();
        g.sync_timer = token;
        let at = Instant::now() + g.max_rebalance_timeout();
        self.spawn_group_timer(&g.id, TimerKind::Sync(token), at);
    }

    /// Keeps the leader if it rejoined, else picks a member that did; false if none did.
    fn elect_joined_leader(&self, g: &mut Group) -> bool {
        let Some(leader) = g.leader.clone() else {
            return false;
        };
        if g.members
            .get(&leader)
            .is_some_and(|m| m.awaiting_join.is_some())
        {
            return true;
        }
        match g.members.values().find(|m| m.awaiting_join.is_some()) {
            Some(m) => {
                g.leader = Some(m.member_id.clone());
                true
            }
            None => false,
        }
    }

    fn on_sync_timer(self: &Arc<Self>, g: &mut Group, token: u64) {
        if g.sync_timer != token
            || !matches!(
                g.state,
                GroupState::CompletingRebalance | GroupState::Stable
            )
            || g.pending_sync.is_empty()
        {
            return;
        }
        let missing: Vec<String> = g.pending_sync.drain().collect();
        for id in missing {
            tracing::info!(group = %g.id, member = %id, "member did not sync in time");
            if let Some(mut m) = g.remove_member(&id) {
                m.reply_join(Err(GroupError::UnknownMemberId));
                m.reply_sync(Err(GroupError::UnknownMemberId));
            }
        }
        self.prepare_rebalance(g);
        self.maybe_complete_join(g);
    }

    /// Removes a member and starts (or advances) a rebalance.
    pub(super) fn remove_member_and_update(self: &Arc<Self>, g: &mut Group, id: &str, why: &str) {
        let Some(mut member) = g.remove_member(id) else {
            return;
        };
        tracing::info!(group = %g.id, member = %id, "member removed: {why}");
        member.reply_join(Err(GroupError::UnknownMemberId));
        member.reply_sync(Err(GroupError::UnknownMemberId));
        match g.state {
            GroupState::Stable | GroupState::CompletingRebalance => self.maybe_prepare_rebalance(g),
            _ => {}
        }
        self.maybe_complete_join(g);
    }

    fn do_sync(self: &Arc<Self>, g: &mut Group, req: SyncRequest) -> Outcome<SyncResult> {
        if let Err(e) = g.validate_member(&req.member_id, req.group_instance_id.as_deref()) {
            return Outcome::Now(Err(e));
        }
        if req.generation_id != g.generation {
            return Outcome::Now(Err(GroupError::IllegalGeneration));
        }
        if req.protocol_type.is_some() && req.protocol_type != g.protocol_type
            || req.protocol_name.is_some() && req.protocol_name != g.protocol_name
        {
            return Outcome::Now(Err(GroupError::InconsistentGroupProtocol));
        }
        match g.state {
            GroupState::Empty => Outcome::Now(Err(GroupError::UnknownMemberId)),
            GroupState::PreparingRebalance => Outcome::Now(Err(GroupError::RebalanceInProgress)),
            GroupState::Dead => Outcome::Now(Err(GroupError::CoordinatorNotAvailable {
                reason: "the group is being removed",
            })),
            GroupState::Stable => {
                g.pending_sync.remove(&req.member_id);
                let Some(member) = g.members.get_mut(&req.member_id) else {
                    return Outcome::Now(Err(GroupError::UnknownMemberId));
                };
                member.touch();
                let assignment = member.assignment.clone();
                Outcome::Now(Ok(SyncResult {
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol_name.clone(),
                    assignment,
                }))
            }
            GroupState::CompletingRebalance => {
                let max = self.config.member_metadata_max_bytes;
                if let Some((_, a)) = req.assignments.iter().find(|(_, a)| a.len() > max) {
                    return Outcome::Now(Err(GroupError::MemberMetadataTooLarge {
                        what: "assignment",
                        size: a.len(),
                        max,
                    }));
                }
                let (tx, rx) = oneshot::channel();
                g.pending_sync.remove(&req.member_id);
                if let Some(member) = g.members.get_mut(&req.member_id) {
                    member.awaiting_sync = Some(tx);
                }
                if g.is_leader(&req.member_id) {
                    for member in g.members.values_mut() {
                        member.assignment = req
                            .assignments
                            .iter()
                            .find(|(id, _)| *id == member.member_id)
                            .map(|(_, a)| a.clone())
                            .unwrap_or_default();
                    }
                    g.transition(GroupState::Stable);
                    g.persist();
                    let (protocol_type, protocol_name) =
                        (g.protocol_type.clone(), g.protocol_name.clone());
                    for member in g.members.values_mut() {
                        let assignment = member.assignment.clone();
                        if member.awaiting_sync.is_some() {
                            member.reply_sync(Ok(SyncResult {
                                protocol_type: protocol_type.clone(),
                                protocol_name: protocol_name.clone(),
                                assignment,
                            }));
                            member.touch();
                        }
                    }
                    tracing::info!(group = %g.id, generation = g.generation, "group stable");
                }
                Outcome::Wait(rx)
            }
        }
    }

    // ---- timers -------------------------------------------------------------------

    fn spawn_member_timer(
        self: &Arc<Self>,
        group_id: &str,
        member_id: String,
        serial: u64,
        at: Instant,
        wake: Arc<Notify>,
    ) {
        let weak = Arc::downgrade(self);
        let group_id = group_id.to_string();
        tokio::spawn(async move {
            let mut at = at;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = wake.notified() => {}
                }
                let Some((inner, mut g)) = lock_for_timer(&weak, &group_id).await else {
                    return;
                };
                let now = Instant::now();
                let Some(member) = g.members.get_mut(&member_id).filter(|m| m.serial == serial)
                else {
                    return;
                };
                if now < member.deadline {
                    at = member.deadline;
                    member.armed_until = at;
                    continue;
                }
                if member.keep_alive() {
                    member.deadline = now + member.session_timeout;
                    at = member.deadline;
                    member.armed_until = at;
                    continue;
                }
                inner.remove_member_and_update(&mut g, &member_id, "session timeout expired");
                inner.flush(&mut g).await;
                return;
            }
        });
    }

    fn spawn_pending_member_timer(
        self: &Arc<Self>,
        group_id: &str,
        member_id: String,
        at: Instant,
    ) {
        let weak = Arc::downgrade(self);
        let group_id = group_id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let Some((inner, mut g)) = lock_for_timer(&weak, &group_id).await else {
                return;
            };
            if g.pending_members.remove(&member_id) {
                inner.maybe_complete_join(&mut g);
                inner.flush(&mut g).await;
            }
        });
    }

    fn spawn_group_timer(self: &Arc<Self>, group_id: &str, kind: TimerKind, at: Instant) {
        let weak = Arc::downgrade(self);
        let group_id = group_id.to_string();
        tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            let Some((inner, mut g)) = lock_for_timer(&weak, &group_id).await else {
                return;
            };
            match kind {
                TimerKind::Join(token) => inner.on_join_timer(&mut g, token),
                TimerKind::Sync(token) => inner.on_sync_timer(&mut g, token),
            }
            inner.flush(&mut g).await;
        });
    }

    // ---- restore ------------------------------------------------------------------

    fn restore(self: &Arc<Self>, replayed: store::Replayed) {
        let store::Replayed {
            mut groups,
            mut offsets,
        } = replayed;
        let mut ids: Vec<String> = groups.keys().chain(offsets.keys()).cloned().collect();
        ids.sort();
        ids.dedup();
        for id in ids {
            let mut g = Group::new(id.clone());
            if let Some(stored) = groups.remove(&id) {
                g.protocol_type = Some(stored.protocol_type).filter(|t| !t.is_empty());
                g.generation = stored.generation;
                g.protocol_name = stored.protocol.clone();
                g.leader = stored.leader;
                let protocol = stored.protocol.unwrap_or_default();
                for m in stored.members {
                    let serial = self.next_serial();
                    let session = Duration::from_millis(m.session_timeout_ms.max(0) as u64);
                    let member = Member {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        session_timeout: session,
                        rebalance_timeout: Duration::from_millis(
                            m.rebalance_timeout_ms.max(0) as u64
                        ),
                        protocols: vec![(protocol.clone(), m.subscription)],
                        assignment: m.assignment,
                        awaiting_join: None,
                        awaiting_sync: None,
                        is_new: false,
                        deadline: Instant::now() + session,
                        armed_until: Instant::now() + session,
                        wake: Arc::new(Notify::new()),
                        serial,
                    };
                    let (deadline, wake) = (member.deadline, member.wake.clone());
                    let protocol_type = g.protocol_type.clone().unwrap_or_default();
                    g.add_member(member, &protocol_type);
                    self.spawn_member_timer(&id, m.member_id, serial, deadline, wake);
                }
                if g.leader.as_ref().is_none_or(|l| !g.members.contains_key(l)) {
                    g.leader = g.members.keys().next().cloned();
                }
                g.state = if g.members.is_empty() {
                    GroupState::Empty
                } else {
                    GroupState::Stable
                };
                g.state_timestamp_ms = stored.state_timestamp_ms;
                g.subscribed_topics = g.compute_subscribed_topics();
            }
            if let Some(o) = offsets.remove(&id) {
                g.offsets = o;
            }
            self.groups.insert(id, Arc::new(Mutex::new(g)));
        }
        tracing::info!(
            groups = self.groups.len(),
            "consumer groups restored from __consumer_offsets"
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum TimerKind {
    Join(u64),
    Sync(u64),
}

async fn lock_for_timer(
    weak: &Weak<Inner>,
    group_id: &str,
) -> Option<(Arc<Inner>, OwnedMutexGuard<Group>)> {
    let inner = weak.upgrade()?;
    let slot = inner.groups.get(group_id)?.clone();
    let guard = slot.lock_owned().await;
    if guard.state == GroupState::Dead {
        return None;
    }
    Some((inner, guard))
}

fn update_member(member: &mut Member, req: &JoinRequest, reply: super::member::JoinReply) {
    member.protocols = req.protocols.clone();
    member.session_timeout = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
    member.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms.max(0) as u64);
    member.client_id = req.client_id.clone();
    member.client_host = req.client_host.clone();
    // A superseded parked JoinGroup gets dropped and so told to rejoin.
    member.awaiting_join = Some(reply);
}

/// The current generation's answer to a member that rejoins with nothing new.
fn current_join_result(g: &Group, member_id: &str) -> JoinResult {
    let is_leader = g.is_leader(member_id);
    JoinResult {
        member_id: member_id.to_string(),
        generation_id: g.generation,
        protocol_type: g.protocol_type.clone(),
        protocol_name: g.protocol_name.clone(),
        leader: g.leader.clone().unwrap_or_default(),
        skip_assignment: false,
        members: if is_leader {
            g.joined_members()
        } else {
            Vec::new()
        },
    }
}

/// Milliseconds since the epoch (re-exported for the offset code).
pub(super) fn wall_ms() -> i64 {
    now_ms()
}
