//! Handlers of the consumer-group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, OffsetCommit, OffsetFetch, OffsetDelete, ListGroups, DescribeGroups and
//! DeleteGroups. Each turns a decoded request into calls on the [`GroupCoordinator`] and
//! the result into the response of the request's version (fields a version lacks are
//! left at their defaults, which the encoder requires); [`error_code`] is the one place
//! where a [`GroupError`] becomes a Kafka error code.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::dispatch::RequestContext;
use crate::group::{
    CommitRequest, FetchedOffset, GroupCoordinator, GroupError, GroupState, JoinRequest,
    LeavingMember, OffsetToCommit, SyncRequest,
};

/// Who sent a request: the header's client id and the peer address.
#[derive(Debug, Clone)]
struct ClientInfo {
    /// `client_id` of the request header (empty if null).
    client_id: String,
    /// The client's address, as Kafka shows it (`/127.0.0.1`).
    client_host: String,
}

/// Where clients find the coordinator: this broker.
#[derive(Debug, Clone)]
struct CoordinatorAddress {
    /// This broker's node id.
    node_id: i32,
    /// Advertised host.
    host: String,
    /// Advertised port.
    port: i32,
}

/// The Kafka error code of a coordinator error.
pub(crate) fn error_code(e: &GroupError) -> i16 {
    let error = match e {
        GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
        GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
        GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        GroupError::MemberIdRequired { .. } => ResponseError::MemberIdRequired,
        GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
        GroupError::GroupMaxSizeReached { .. } => ResponseError::GroupMaxSizeReached,
        GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
        GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
        GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        GroupError::InvalidSessionTimeout { .. } => ResponseError::InvalidSessionTimeout,
        GroupError::OffsetMetadataTooLarge { .. } => ResponseError::OffsetMetadataTooLarge,
        GroupError::MemberMetadataTooLarge { .. } => ResponseError::InvalidRequest,
        GroupError::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        GroupError::CoordinatorNotAvailable { .. } | GroupError::Storage(_) => {
            ResponseError::CoordinatorNotAvailable
        }
        GroupError::CorruptRecord { .. } => ResponseError::UnknownServerError,
    };
    error.code()
}

fn code_of(result: &Result<(), GroupError>) -> i16 {
    match result {
        Ok(()) => 0,
        Err(e) => error_code(e),
    }
}

fn s(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

fn opt(value: &Option<StrBytes>) -> Option<String> {
    value.as_ref().map(|v| v.to_string())
}

/// FindCoordinator: every group (and transactional id) is coordinated by this broker.
pub(crate) fn find_coordinator(
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let version = ctx.version();
    let (host, port) = ctx.broker.config().advertised();
    let me = CoordinatorAddress {
        node_id: ctx.broker.node_id(),
        host: host.to_string(),
        port,
    };
    let error_for = |key_type: i8| match key_type {
        0 | 1 => None,
        other => Some(format!("unsupported key type {other}")),
    };
    let mut resp = FindCoordinatorResponse::default();
    if version < 4 {
        match error_for(req.key_type) {
            None => {
                resp.node_id = BrokerId(me.node_id);
                resp.host = s(me.host.clone());
                resp.port = me.port;
            }
            Some(message) => {
                resp.error_code = ResponseError::InvalidRequest.code();
                resp.node_id = BrokerId(-1);
                if version >= 1 {
                    resp.error_message = Some(s(message));
                }
            }
        }
        return resp;
    }
    resp.coordinators = req
        .coordinator_keys
        .into_iter()
        .map(|key| {
            let mut c = Coordinator::default();
            c.key = key;
            match error_for(req.key_type) {
                None => {
                    c.node_id = BrokerId(me.node_id);
                    c.host = s(me.host.clone());
                    c.port = me.port;
                }
                Some(message) => {
                    c.error_code = ResponseError::InvalidRequest.code();
                    c.node_id = BrokerId(-1);
                    c.error_message = Some(s(message));
                }
            }
            c
        })
        .collect();
    resp
}

/// JoinGroup; resolves when the rebalance's join phase completes.
pub(crate) async fn join_group(ctx: &RequestContext, req: JoinGroupRequest) -> JoinGroupResponse {
    let (groups, version) = (ctx.broker.groups(), ctx.version());
    let client = ClientInfo {
        client_id: ctx
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    let join = JoinRequest {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: opt(&req.group_instance_id),
        client_id: client.client_id.clone(),
        client_host: client.client_host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout doubles as one.
        rebalance_timeout_ms: if version >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .into_iter()
            .map(|p| (p.name.to_string(), p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
        reason: opt(&req.reason),
    };
    let mut resp = JoinGroupResponse::default();
    match groups.join_group(join).await {
        Ok(joined) => {
            resp.generation_id = joined.generation_id;
            if version >= 7 {
                resp.protocol_type = joined.protocol_type.map(s);
                resp.protocol_name = joined.protocol_name.map(s);
            } else {
                resp.protocol_name = Some(s(joined.protocol_name.unwrap_or_default()));
            }
            resp.leader = s(joined.leader);
            resp.skip_assignment = version >= 9 && joined.skip_assignment;
            resp.member_id = s(joined.member_id);
            resp.members = joined
                .members
                .into_iter()
                .map(|m| {
                    let mut member = JoinGroupResponseMember::default();
                    member.member_id = s(m.member_id);
                    if version >= 5 {
                        member.group_instance_id = m.group_instance_id.map(s);
                    }
                    member.metadata = m.metadata;
                    member
                })
                .collect();
        }
        Err(e) => {
            resp.error_code = error_code(&e);
            resp.generation_id = -1;
            resp.protocol_name = if version >= 7 { None } else { Some(s("")) };
            if let GroupError::MemberIdRequired { member_id } = e {
                resp.member_id = s(member_id);
            } else {
                resp.member_id = req.member_id;
            }
        }
    }
    resp
}

/// SyncGroup; a follower's resolves when the leader has sent the assignment.
pub(crate) async fn sync_group(ctx: &RequestContext, req: SyncGroupRequest) -> SyncGroupResponse {
    let (groups, version) = (ctx.broker.groups(), ctx.version());
    let sync = SyncRequest {
        group_id: req.group_id.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: opt(&req.group_instance_id),
        protocol_type: opt(&req.protocol_type),
        protocol_name: opt(&req.protocol_name),
        assignments: req
            .assignments
            .into_iter()
            .map(|a| (a.member_id.to_string(), a.assignment))
            .collect(),
    };
    let mut resp = SyncGroupResponse::default();
    match groups.sync_group(sync).await {
        Ok(synced) => {
            if version >= 5 {
                resp.protocol_type = synced.protocol_type.map(s);
                resp.protocol_name = synced.protocol_name.map(s);
            }
            resp.assignment = synced.assignment;
        }
        Err(e) => {
            resp.error_code = error_code(&e);
            resp.assignment = Bytes::new();
        }
    }
    resp
}

/// Heartbeat.
pub(crate) async fn heartbeat(ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
    let groups = ctx.broker.groups();
    let result = groups
        .heartbeat(
            &req.group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        )
        .await;
    let mut resp = HeartbeatResponse::default();
    resp.error_code = code_of(&result);
    resp
}

/// LeaveGroup: one member before v3, a batch of members from v3.
pub(crate) async fn leave_group(
    ctx: &RequestContext,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let (groups, version) = (ctx.broker.groups(), ctx.version());
    let leaving: Vec<LeavingMember> = if version >= 3 {
        req.members
            .iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                group_instance_id: opt(&m.group_instance_id),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: req.member_id.to_string(),
            group_instance_id: None,
        }]
    };
    let results = groups.leave_group(&req.group_id, &leaving).await;
    let mut resp = LeaveGroupResponse::default();
    if version >= 3 {
        resp.members = leaving
            .into_iter()
            .zip(&results)
            .map(|(m, result)| {
                let mut member = MemberResponse::default();
                member.member_id = s(m.member_id);
                member.group_instance_id = m.group_instance_id.map(s);
                member.error_code = code_of(result);
                member
            })
            .collect();
    } else {
        resp.error_code = results.first().map(code_of).unwrap_or(0);
    }
    resp
}

/// OffsetCommit; answered once the offsets are durable.
pub(crate) async fn offset_commit(
    ctx: &RequestContext,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let (groups, version) = (ctx.broker.groups(), ctx.version());
    // As in Kafka, offsets of partitions that do not exist are refused here, before the
    // coordinator sees them (which also bounds what a group can hold).
    let cluster = ctx.broker.topics();
    let exists = |topic: &str, partition: i32| {
        cluster
            .topic(topic)
            .is_some_and(|t| (0..t.partition_count()).contains(&partition))
    };
    let mut offsets = Vec::new();
    let mut known = Vec::new();
    for topic in &req.topics {
        for p in &topic.partitions {
            let found = exists(&topic.name, p.partition_index);
            known.push(found);
            if !found {
                continue;
            }
            offsets.push(OffsetToCommit {
                topic: topic.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: opt(&p.committed_metadata),
            });
        }
    }
    let retention = (version <= 4 && req.retention_time_ms >= 0)
        .then(|| std::time::Duration::from_millis(req.retention_time_ms as u64));
    let commit = CommitRequest {
        group_id: req.group_id.to_string(),
        generation_id: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        group_instance_id: opt(&req.group_instance_id),
        retention,
        offsets,
    };
    let mut results = groups.commit_offsets(commit).await.into_iter();
    let mut known = known.into_iter();
    let mut resp = OffsetCommitResponse::default();
    resp.topics = req
        .topics
        .into_iter()
        .map(|topic| {
            let mut t = OffsetCommitResponseTopic::default();
            t.partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let mut part = OffsetCommitResponsePartition::default();
                    part.partition_index = p.partition_index;
                    part.error_code = if known.next().unwrap_or(false) {
                        results.next().as_ref().map(code_of).unwrap_or(0)
                    } else {
                        ResponseError::UnknownTopicOrPartition.code()
                    };
                    part
                })
                .collect();
            t.name = topic.name;
            t.topic_id = topic.topic_id;
            t
        })
        .collect();
    resp
}

/// The committed offsets of one group, grouped by topic in request order (or by name
/// when all were asked for).
async fn fetch_group(
    groups: &GroupCoordinator,
    group_id: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Vec<(String, Vec<FetchedOffset>)>, GroupError> {
    let fetched = groups.fetch_offsets(group_id, wanted.as_deref()).await?;
    let mut by_topic: Vec<(String, Vec<FetchedOffset>)> = Vec::new();
    for f in fetched {
        match by_topic.last_mut() {
            Some((topic, parts)) if *topic == f.topic => parts.push(f),
            _ => by_topic.push((f.topic.clone(), vec![f])),
        }
    }
    Ok(by_topic)
}

/// OffsetFetch: one group before v8, a batch of groups from v8. There are no
/// transactional offsets, so `require_stable` never has anything to wait for.
pub(crate) async fn offset_fetch(
    ctx: &RequestContext,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let (groups, version) = (ctx.broker.groups(), ctx.version());
    let mut resp = OffsetFetchResponse::default();
    if version < 8 {
        let wanted = req.topics.map(|topics| {
            topics
                .into_iter()
                .map(|t| (t.name.to_string(), t.partition_indexes))
                .collect()
        });
        match fetch_group(groups, &req.group_id, wanted).await {
            Ok(topics) => {
                resp.topics = topics
                    .into_iter()
                    .map(|(name, parts)| {
                        let mut t = OffsetFetchResponseTopic::default();
                        t.name = TopicName(s(name));
                        t.partitions = parts
                            .into_iter()
                            .map(|f| {
                                let mut p = OffsetFetchResponsePartition::default();
                                p.partition_index = f.partition;
                                p.committed_offset = f.offset;
                                if version >= 5 {
                                    p.committed_leader_epoch = f.leader_epoch;
                                }
                                p.metadata = Some(s(f.metadata));
                                p
                            })
                            .collect();
                        t
                    })
                    .collect();
            }
            Err(e) if version >= 2 => resp.error_code = error_code(&e),
            Err(e) => tracing::warn!(group = %req.group_id.as_str(), error = %e, "offset fetch"),
        }
        return resp;
    }
    for group in req.groups {
        let wanted = group.topics.map(|topics| {
            topics
                .into_iter()
                .map(|t| (t.name.to_string(), t.partition_indexes))
                .collect()
        });
        let mut g = OffsetFetchResponseGroup::default();
        match fetch_group(groups, &group.group_id, wanted).await {
            Ok(topics) => {
                g.topics = topics
                    .into_iter()
                    .map(|(name, parts)| {
                        let mut t = OffsetFetchResponseTopics::default();
                        t.name = TopicName(s(name));
                        t.partitions = parts
                            .into_iter()
                            .map(|f| {
                                let mut p = OffsetFetchResponsePartitions::default();
                                p.partition_index = f.partition;
                                p.committed_offset = f.offset;
                                p.committed_leader_epoch = f.leader_epoch;
                                p.metadata = Some(s(f.metadata));
                                p
                            })
                            .collect();
                        t
                    })
                    .collect();
            }
            Err(e) => g.error_code = error_code(&e),
        }
        g.group_id = group.group_id;
        resp.groups.push(g);
    }
    resp
}

/// OffsetDelete.
pub(crate) async fn offset_delete(
    ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let groups = ctx.broker.groups();
    let wanted: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let mut resp = OffsetDeleteResponse::default();
    match groups.delete_offsets(&req.group_id, &wanted).await {
        Ok(results) => {
            resp.topics = results
                .into_iter()
                .map(|(name, parts)| {
                    let mut t = OffsetDeleteResponseTopic::default();
                    t.name = TopicName(s(name));
                    t.partitions = parts
                        .into_iter()
                        .map(|(partition, result)| {
                            let mut p = OffsetDeleteResponsePartition::default();
                            p.partition_index = partition;
                            p.error_code = code_of(&result);
                            p
                        })
                        .collect();
                    t
                })
                .collect();
        }
        Err(e) => resp.error_code = error_code(&e),
    }
    resp
}

fn parse_state(name: &str) -> Option<GroupState> {
    [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ]
    .into_iter()
    .find(|s| s.name().eq_ignore_ascii_case(name))
}

/// The group type of every group here (KIP-848 names the old protocol "classic").
const GROUP_TYPE: &str = "classic";

/// ListGroups, with the states filter (v4+) and types filter (v5+).
pub(crate) async fn list_groups(
    ctx: &RequestContext,
    req: ListGroupsRequest,
) -> ListGroupsResponse {
    let (groups, version) = (ctx.broker.groups(), ctx.version());
    let mut resp = ListGroupsResponse::default();
    if version >= 5
        && !req.types_filter.is_empty()
        && !req
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case(GROUP_TYPE))
    {
        return resp;
    }
    let states: Vec<GroupState> = req
        .states_filter
        .iter()
        .filter_map(|n| parse_state(n))
        .collect();
    if !req.states_filter.is_empty() && states.is_empty() {
        return resp;
    }
    resp.groups = groups
        .list_groups(&states)
        .await
        .into_iter()
        .map(|g| {
            let mut listed = ListedGroup::default();
            listed.group_id = GroupId(s(g.group_id));
            listed.protocol_type = s(g.protocol_type);
            if version >= 4 {
                listed.group_state = s(g.state.name());
            }
            if version >= 5 {
                listed.group_type = s(GROUP_TYPE);
            }
            listed
        })
        .collect();
    resp
}

/// ACL operations allowed on a group (READ, DELETE, DESCRIBE): there are no ACLs here.
const GROUP_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

/// DescribeGroups.
pub(crate) async fn describe_groups(
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let (groups, version) = (ctx.broker.groups(), ctx.version());
    let mut resp = DescribeGroupsResponse::default();
    for group_id in req.groups {
        let mut d = DescribedGroup::default();
        if version >= 3 && req.include_authorized_operations {
            d.authorized_operations = GROUP_OPERATIONS;
        }
        match groups.describe_group(&group_id).await {
            Ok(desc) => {
                d.group_state = s(desc.state.name());
                d.protocol_type = s(desc.protocol_type);
                d.protocol_data = s(desc.protocol_name);
                d.members = desc
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut member = DescribedGroupMember::default();
                        member.member_id = s(m.member_id);
                        if version >= 4 {
                            member.group_instance_id = m.group_instance_id.map(s);
                        }
                        member.client_id = s(m.client_id);
                        member.client_host = s(m.client_host);
                        member.member_metadata = m.metadata;
                        member.member_assignment = m.assignment;
                        member
                    })
                    .collect();
            }
            // Before v6 an unknown group is described as Dead, without error.
            Err(GroupError::GroupIdNotFound) if version < 6 => {
                d.group_state = s(GroupState::Dead.name());
            }
            Err(e) => {
                d.error_code = error_code(&e);
                d.group_state = s(GroupState::Dead.name());
                if version >= 6 {
                    d.error_message = Some(s(format!("group {}: {e}", group_id.as_str())));
                }
            }
        }
        d.group_id = group_id;
        resp.groups.push(d);
    }
    resp
}

/// DeleteGroups.
pub(crate) async fn delete_groups(
    ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let groups = ctx.broker.groups();
    let ids: Vec<String> = req.groups_names.iter().map(|g| g.to_string()).collect();
    let results = groups.delete_groups(&ids).await;
    let mut resp = DeleteGroupsResponse::default();
    resp.results = req
        .groups_names
        .into_iter()
        .zip(&results)
        .map(|(group_id, result)| {
            let mut r = DeletableGroupResult::default();
            r.group_id = group_id;
            r.error_code = code_of(result);
            r
        })
        .collect();
    resp
}
