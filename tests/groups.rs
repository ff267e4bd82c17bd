//! Consumer groups over real TCP against a real `strand serve`: two members rebalance,
//! share out an assignment, heartbeat, commit offsets, and the offsets survive a
//! restart; then the group is described, listed, emptied and deleted.

use std::net::SocketAddr;

use anyhow::Context;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, CreateTopicsRequest, DeleteGroupsRequest, DeleteTopicsRequest,
    DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use strand_tests::Strand;
use strand_tests::kafka::KafkaClient as Conn;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn subscription(topics: &[&str]) -> Bytes {
    let sub =
        ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| s(t)).collect());
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    sub.encode(&mut buf, 1).unwrap();
    buf.freeze()
}

fn join_request(group: &str, member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(20_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(subscription(&["t"])),
        ])
}

/// Joins as a new member the way a JoinGroup v5+ client does: first MEMBER_ID_REQUIRED,
/// then the real join with the given id, answered when the join phase completes.
fn join_new(addr: SocketAddr, group: &str) -> anyhow::Result<JoinGroupResponse> {
    let mut conn = Conn::connect(addr)?;
    let first = conn.call(7, &join_request(group, ""))?;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED expected");
    let joined = conn.call(7, &join_request(group, &first.member_id))?;
    assert_eq!(joined.error_code, 0);
    Ok(joined)
}

fn commit(group: &str, generation: i32, member: &str, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset)
                        .with_committed_metadata(Some(s("meta"))),
                ]),
        ])
}

/// Creates topic `t` with one partition, which the commits below use.
fn create_topic_t(conn: &mut Conn) -> anyhow::Result<()> {
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(s("t")))
                .with_num_partitions(1)
                .with_replication_factor(-1),
        ]);
    let resp = conn.call(7, &req)?;
    assert_eq!(resp.topics[0].error_code, 0);
    Ok(())
}

fn fetch_committed(conn: &mut Conn, group: &str) -> anyhow::Result<(i64, String)> {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("t")))
                .with_partition_indexes(vec![0]),
        ]));
    let resp = conn.call(5, &req)?;
    let p = &resp.topics.first().context("no topic")?.partitions[0];
    Ok((
        p.committed_offset,
        p.metadata
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    ))
}

#[test]
fn group_rebalances_commits_and_keeps_offsets_across_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let flags = ["--group-initial-rebalance-delay-ms", "200"];
    let strand = Strand::start(dir.path(), &flags)?;
    let addr = strand.addr("kafka")?;
    let mut conn = Conn::connect(addr)?;
    create_topic_t(&mut conn)?;

    let found = conn.call(
        3,
        &FindCoordinatorRequest::default()
            .with_key(s("g"))
            .with_key_type(0),
    )?;
    assert_eq!(found.error_code, 0);
    assert_eq!(found.port as u16, addr.port());
    let batched = conn.call(
        4,
        &FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g"), s("h")]),
    )?;
    assert_eq!(batched.coordinators.len(), 2);
    assert!(batched.coordinators.iter().all(|c| c.error_code == 0));

    // Two members join concurrently and land in the same generation.
    let a = std::thread::spawn(move || join_new(addr, "g"));
    let b = std::thread::spawn(move || join_new(addr, "g"));
    let a = a.join().unwrap()?;
    let b = b.join().unwrap()?;
    assert_eq!(a.generation_id, 1);
    assert_eq!(b.generation_id, 1);
    assert_eq!(a.leader, b.leader);
    let (leader, follower) = if a.leader == a.member_id {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(leader.members.len(), 2);

    // The follower waits in SyncGroup until the leader hands in the assignment.
    let follower_id = follower.member_id.clone();
    let follower_sync = std::thread::spawn(move || {
        let mut conn = Conn::connect(addr)?;
        conn.call(
            3,
            &SyncGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id(1)
                .with_member_id(follower_id),
        )
    });
    let assignments = [&leader, &follower]
        .iter()
        .map(|m| {
            SyncGroupRequestAssignment::default()
                .with_member_id(m.member_id.clone())
                .with_assignment(Bytes::from(format!("for {}", m.member_id.as_str())))
        })
        .collect();
    let leader_sync = conn.call(
        3,
        &SyncGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_generation_id(1)
            .with_member_id(leader.member_id.clone())
            .with_assignments(assignments),
    )?;
    assert_eq!(leader_sync.error_code, 0);
    let follower_sync = follower_sync.join().unwrap()?;
    assert_eq!(follower_sync.error_code, 0);
    assert_eq!(
        follower_sync.assignment,
        Bytes::from(format!("for {}", follower.member_id.as_str()))
    );

    let hb = |conn: &mut Conn, member: &StrBytes, generation: i32| -> anyhow::Result<i16> {
        Ok(conn
            .call(
                3,
                &HeartbeatRequest::default()
                    .with_group_id(GroupId(s("g")))
                    .with_generation_id(generation)
                    .with_member_id(member.clone()),
            )?
            .error_code)
    };
    assert_eq!(hb(&mut conn, &leader.member_id, 1)?, 0);
    assert_eq!(
        hb(&mut conn, &leader.member_id, 0)?,
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(hb(&mut conn, &s("nobody"), 1)?, 25, "UNKNOWN_MEMBER_ID");

    let committed = conn.call(7, &commit("g", 1, &leader.member_id, 42))?;
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    let stale = conn.call(7, &commit("g", 0, &leader.member_id, 43))?;
    assert_eq!(stale.topics[0].partitions[0].error_code, 22);
    assert_eq!(fetch_committed(&mut conn, "g")?, (42, "meta".to_string()));

    let described = conn.call(
        5,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("g"))]),
    )?;
    let g = &described.groups[0];
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!(g.protocol_data.as_str(), "range");
    assert_eq!(g.members.len(), 2);
    let listed = conn.call(
        4,
        &ListGroupsRequest::default().with_states_filter(vec![s("Stable")]),
    )?;
    assert_eq!(listed.groups.len(), 1);
    assert_eq!(listed.groups[0].group_id.as_str(), "g");

    // A restart keeps the committed offset (and the group).
    drop(conn);
    strand.terminate()?;
    let strand = Strand::start(dir.path(), &flags)?;
    let addr = strand.addr("kafka")?;
    let mut conn = Conn::connect(addr)?;
    assert_eq!(fetch_committed(&mut conn, "g")?, (42, "meta".to_string()));

    // Both leave; the group is then empty and can be deleted with its offsets.
    let deleted = conn.call(
        1,
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]),
    )?;
    assert_eq!(deleted.results[0].error_code, 68, "NON_EMPTY_GROUP");
    let left = conn.call(
        4,
        &LeaveGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_members(vec![
                MemberIdentity::default().with_member_id(leader.member_id.clone()),
                MemberIdentity::default().with_member_id(follower.member_id.clone()),
            ]),
    )?;
    assert!(left.members.iter().all(|m| m.error_code == 0), "{left:?}");
    // Leaving is synchronous: the group is empty once the answer is in.
    let deleted = conn.call(
        1,
        &DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g"))]),
    )?;
    assert_eq!(deleted.results[0].error_code, 0);
    assert_eq!(fetch_committed(&mut conn, "g")?.0, -1);
    Ok(())
}

#[test]
fn standalone_consumer_commits_with_generation_minus_one() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut conn = Conn::connect(strand.addr("kafka")?)?;
    let resp = conn.call(2, &commit("solo", -1, "", 7))?;
    assert_eq!(
        resp.topics[0].partitions[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION before the topic exists"
    );
    create_topic_t(&mut conn)?;
    let resp = conn.call(2, &commit("solo", -1, "", 7))?;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    assert_eq!(fetch_committed(&mut conn, "solo")?, (7, "meta".to_string()));
    assert_eq!(fetch_committed(&mut conn, "nobody")?.0, -1);
    // Deleting the topic forgets its committed offsets, as in Kafka.
    let deleted = conn.call(
        4,
        &DeleteTopicsRequest::default()
            .with_topic_names(vec![TopicName(s("t"))])
            .with_timeout_ms(10_000),
    )?;
    assert_eq!(deleted.responses[0].error_code, 0);
    assert_eq!(fetch_committed(&mut conn, "solo")?.0, -1);
    Ok(())
}

#[test]
fn static_member_restart_skips_the_rebalance_and_batched_apis_answer() -> anyhow::Result<()> {
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopics,
    };
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &["--group-initial-rebalance-delay-ms", "0"])?;
    let addr = strand.addr("kafka")?;
    let mut conn = Conn::connect(addr)?;
    create_topic_t(&mut conn)?;
    let static_join = |member_id: &str| {
        join_request("s", member_id).with_group_instance_id(Some(s("instance-1")))
    };
    // A static member joins at once (no MEMBER_ID_REQUIRED round) and leads.
    let first = conn.call(9, &static_join(""))?;
    assert_eq!(first.error_code, 0);
    assert_eq!(first.leader, first.member_id);
    let synced = conn.call(
        5,
        &SyncGroupRequest::default()
            .with_group_id(GroupId(s("s")))
            .with_generation_id(first.generation_id)
            .with_member_id(first.member_id.clone())
            .with_group_instance_id(Some(s("instance-1")))
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(Some(s("range")))
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(first.member_id.clone())
                    .with_assignment(Bytes::from_static(b"mine")),
            ]),
    )?;
    assert_eq!(synced.error_code, 0);
    assert_eq!(
        synced.protocol_name.as_ref().map(|p| p.as_str()),
        Some("range")
    );
    // The same instance restarts: a new member id, the same generation, and the leader
    // is told to skip the assignment (v9).
    let again = conn.call(9, &static_join(""))?;
    assert_eq!(again.error_code, 0);
    assert_ne!(again.member_id, first.member_id);
    assert_eq!(again.generation_id, first.generation_id);
    assert!(again.skip_assignment);
    let hb = conn.call(
        4,
        &HeartbeatRequest::default()
            .with_group_id(GroupId(s("s")))
            .with_generation_id(first.generation_id)
            .with_member_id(first.member_id.clone())
            .with_group_instance_id(Some(s("instance-1"))),
    )?;
    assert_eq!(
        hb.error_code, 82,
        "FENCED_INSTANCE_ID for the old member id"
    );

    // Batched OffsetFetch (v8) over two groups; DescribeGroups v6 knows missing groups.
    let committed = conn.call(
        8,
        &commit("s", again.generation_id, &again.member_id, 9)
            .with_group_instance_id(Some(s("instance-1"))),
    )?;
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    let fetched = conn.call(
        8,
        &OffsetFetchRequest::default().with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(s("s")))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopics::default()
                        .with_name(TopicName(s("t")))
                        .with_partition_indexes(vec![0]),
                ])),
            OffsetFetchRequestGroup::default().with_group_id(GroupId(s("other"))),
        ]),
    )?;
    assert_eq!(fetched.groups.len(), 2);
    assert_eq!(
        fetched.groups[0].topics[0].partitions[0].committed_offset,
        9
    );
    assert!(fetched.groups[1].topics.is_empty());
    let described = conn.call(
        6,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("missing"))]),
    )?;
    assert_eq!(described.groups[0].error_code, 69, "GROUP_ID_NOT_FOUND");

    // Removing the static member by instance id alone (as the admin client does).
    let left = conn.call(
        5,
        &LeaveGroupRequest::default()
            .with_group_id(GroupId(s("s")))
            .with_members(vec![
                MemberIdentity::default()
                    .with_member_id(s(""))
                    .with_group_instance_id(Some(s("instance-1"))),
            ]),
    )?;
    assert_eq!(left.members[0].error_code, 0);
    let listed = conn.call(
        5,
        &ListGroupsRequest::default().with_states_filter(vec![s("empty")]),
    )?;
    assert_eq!(listed.groups.len(), 1);
    assert_eq!(listed.groups[0].group_type.as_str(), "classic");
    Ok(())
}
