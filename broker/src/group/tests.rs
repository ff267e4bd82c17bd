//! Tests of the coordinator: the rebalance state machine under Tokio's paused clock
//! (timeouts pass instantly and deterministically) and committed offsets surviving a
//! reopen from the log.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::member::{JoinResult, SyncResult};
use super::store::OffsetsLog;
use super::store::tests::MemoryLog;
use super::subscription::tests::subscription;
use super::*;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay: Duration::from_millis(3000),
        ..GroupConfig::default()
    }
}

async fn open(log: Arc<dyn OffsetsLog>, config: GroupConfig) -> GroupCoordinator {
    GroupCoordinator::open(log, config).unwrap()
}

fn join_req(group: &str, member_id: &str, instance: Option<&str>, topics: &[&str]) -> JoinRequest {
    JoinRequest {
        group_id: group.into(),
        member_id: member_id.into(),
        group_instance_id: instance.map(String::from),
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), subscription(topics))],
        require_known_member_id: false,
        reason: None,
    }
}

fn spawn_join(
    c: &GroupCoordinator,
    req: JoinRequest,
) -> JoinHandle<Result<JoinResult, GroupError>> {
    let c = c.clone();
    tokio::spawn(async move { c.join_group(req).await })
}

fn spawn_sync(
    c: &GroupCoordinator,
    group: &str,
    joined: &JoinResult,
    assignments: Vec<(String, Bytes)>,
) -> JoinHandle<Result<SyncResult, GroupError>> {
    let c = c.clone();
    let req = SyncRequest {
        group_id: group.into(),
        generation_id: joined.generation_id,
        member_id: joined.member_id.clone(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: joined.protocol_name.clone(),
        assignments,
    };
    tokio::spawn(async move { c.sync_group(req).await })
}

/// Joins and syncs the given members (by current member id) into a stable generation;
/// the leader assigns each member its own id as bytes. Returns the join results in order.
async fn rebalance(c: &GroupCoordinator, group: &str, members: &[JoinRequest]) -> Vec<JoinResult> {
    let handles: Vec<_> = members.iter().map(|r| spawn_join(c, r.clone())).collect();
    let mut joined = Vec::new();
    for h in handles {
        joined.push(h.await.unwrap().unwrap());
    }
    let generation = joined[0].generation_id;
    assert!(joined.iter().all(|j| j.generation_id == generation));
    let syncs: Vec<_> = joined
        .iter()
        .map(|j| {
            let assignments = if j.leader == j.member_id {
                j.members
                    .iter()
                    .map(|m| (m.member_id.clone(), Bytes::from(m.member_id.clone())))
                    .collect()
            } else {
                Vec::new()
            };
            spawn_sync(c, group, j, assignments)
        })
        .collect();
    for (j, s) in joined.iter().zip(syncs) {
        let assigned = s.await.unwrap().unwrap();
        assert_eq!(assigned.assignment, Bytes::from(j.member_id.clone()));
    }
    joined
}

async fn state_of(c: &GroupCoordinator, group: &str) -> GroupState {
    c.describe_group(group).await.unwrap().state
}

#[tokio::test(start_paused = true)]
async fn two_members_join_sync_and_heartbeat() {
    let c = open(Arc::new(MemoryLog::default()), config()).await;
    let start = tokio::time::Instant::now();
    let joined = rebalance(
        &c,
        "g",
        &[
            join_req("g", "", None, &["t"]),
            join_req("g", "", None, &["t"]),
        ],
    )
    .await;
    // The first rebalance of an empty group waits for the initial delay.
    assert!(start.elapsed() >= Duration::from_millis(3000));
    assert_eq!(joined[0].generation_id, 1);
    assert_eq!(joined[0].protocol_name.as_deref(), Some("range"));
    assert_eq!(joined[0].leader, joined[1].leader);
    let leader = joined.iter().find(|j| j.member_id == j.leader).unwrap();
    let follower = joined.iter().find(|j| j.member_id != j.leader).unwrap();
    assert_eq!(leader.members.len(), 2);
    assert!(follower.members.is_empty());
    assert_eq!(state_of(&c, "g").await, GroupState::Stable);
    for j in &joined {
        c.heartbeat("g", &j.member_id, None, 1).await.unwrap();
    }
    let described = c.describe_group("g").await.unwrap();
    assert_eq!(described.protocol_name, "range");
    assert_eq!(described.members.len(), 2);
    let listed = c.list_groups(&[GroupState::Stable]).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].protocol_type, "consumer");
    assert!(c.list_groups(&[GroupState::Empty]).await.is_empty());
}

#[tokio::test(start_paused = true)]
async fn new_member_must_rejoin_with_the_member_id_it_is_given() {
    let c = open(Arc::new(MemoryLog::default()), config()).await;
    let mut req = join_req("g", "", None, &["t"]);
    req.require_known_member_id = true;
    let member_id = match c.join_group(req.clone()).await {
        Err(GroupError::MemberIdRequired { member_id }) => member_id,
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    };
    assert!(member_id.starts_with("client-"));
    req.member_id = member_id.clone();
    let joined = c.join_group(req).await.unwrap();
    assert_eq!(joined.member_id, member_id);
    assert_eq!(joined.leader, member_id);
    assert_eq!(joined.generation_id, 1);
}

#[tokio::test(start_paused = true)]
async fn third_member_joining_triggers_a_rebalance_of_all() {
    let c = open(Arc::new(MemoryLog::default()), config()).await;
    let first = rebalance(
        &c,
        "g",
        &[
            join_req("g", "", None, &["t"]),
            join_req("g", "", None, &["t"]),
        ],
    )
    .await;
    let third = spawn_join(&c, join_req("g", "", None, &["t"]));
    tokio::task::yield_now().await;
    // Existing members learn of the rebalance from their heartbeat…
    for j in &first {
        assert_eq!(
            c.heartbeat("g", &j.member_id, None, 1).await,
            Err(GroupError::RebalanceInProgress)
        );
    }
    assert_eq!(state_of(&c, "g").await, GroupState::PreparingRebalance);
    // …and rejoin; the join completes once all three are in, without waiting for the
    // rebalance timeout.
    let start = tokio::time::Instant::now();
    let rejoin: Vec<_> = first
        .iter()
        .map(|j| spawn_join(&c, join_req("g", &j.member_id, None, &["t"])))
        .collect();
    let mut all = vec![third.await.unwrap().unwrap()];
    for h in rejoin {
        all.push(h.await.unwrap().unwrap());
    }
    assert!(start.elapsed() < Duration::from_millis(REBALANCE_MS as u64));
    assert!(all.iter().all(|j| j.generation_id == 2));
    let leader = all.iter().find(|j| j.member_id == j.leader).unwrap();
    assert_eq!(leader.members.len(), 3);
    assert_eq!(state_of(&c, "g").await, GroupState::CompletingRebalance);
}

#[tokio::test(start_paused = true)]
async fn silent_member_expires_after_its_session_timeout() {
    let c = open(Arc::new(MemoryLog::default()), config()).await;
    let joined = rebalance(
        &c,
        "g",
        &[
            join_req("g", "", None, &["t"]),
            join_req("g", "", None, &["t"]),
        ],
    )
    .await;
    let (alive, silent) = (&joined[0], &joined[1]);
    // Heartbeats every 3 s keep one member in; the other stays silent.
    let mut rebalancing_at = None;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        if c.heartbeat("g", &alive.member_id, None, 1).await == Err(GroupError::RebalanceInProgress)
        {
            rebalancing_at = Some(tokio::time::Instant::now());
            break;
        }
    }
    assert!(
        rebalancing_at.is_some(),
        "the silent member was never expired"
    );
    assert_eq!(
        c.heartbeat("g", &silent.member_id, None, 1).await,
        Err(GroupError::UnknownMemberId)
    );
    let rejoined = c
        .join_group(join_req("g", &alive.member_id, None, &["t"]))
        .await
        .unwrap();
    assert_eq!(rejoined.generation_id, 2);
    assert_eq!(rejoined.leader, alive.member_id);
    assert_eq!(rejoined.members.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn static_member_restart_takes_over_without_rebalance() {
    let c = open(Arc::new(MemoryLog::default()), config()).await;
    let joined = rebalance(
        &c,
        "g",
        &[
            join_req("g", "", Some("a"), &["t"]),
            join_req("g", "", Some("b"), &["t"]),
        ],
    )
    .await;
    let old_a = &joined[0];
    // Instance "a" restarts: it joins with no member id and gets a new one at once,
    // in the same generation.
    let new_a = c
        .join_group(join_req("g", "", Some("a"), &["t"]))
        .await
        .unwrap();
    assert_ne!(new_a.member_id, old_a.member_id);
    assert_eq!(new_a.generation_id, 1);
    assert_eq!(state_of(&c, "g").await, GroupState::Stable);
    // Its assignment is kept under the new member id.
    let sync = spawn_sync(&c, "g", &new_a, Vec::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sync.assignment, Bytes::from(old_a.member_id.clone()));
    // The old member id is fenced; the other member never noticed.
    assert_eq!(
        c.heartbeat("g", &old_a.member_id, Some("a"), 1).await,
        Err(GroupError::FencedInstanceId)
    );
    c.heartbeat("g", &new_a.member_id, Some("a"), 1)
        .await
        .unwrap();
    c.heartbeat("g", &joined[1].member_id, Some("b"), 1)
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn static_member_with_changed_subscription_triggers_a_rebalance() {
    let c = open(Arc::new(MemoryLog::default()), config()).await;
    let joined = rebalance(&c, "g", &[join_req("g", "", Some("a"), &["t"])]).await;
    let rejoin = spawn_join(&c, join_req("g", "", Some("a"), &["t", "u"]));
    let result = rejoin.await.unwrap().unwrap();
    assert_eq!(result.generation_id, joined[0].generation_id + 1);
}

#[tokio::test(start_paused = true)]
async fn stale_generation_and_unknown_member_are_refused() {
    let c = open(Arc::new(MemoryLog::default()), config()).await;
    let joined = rebalance(&c, "g", &[join_req("g", "", None, &["t"])]).await;
    let me = &joined[0];
    assert_eq!(
        c.heartbeat("g", &me.member_id, None, 0).await,
        Err(GroupError::IllegalGeneration)
    );
    assert_eq!(
        c.heartbeat("g", "nobody", None, 1).await,
        Err(GroupError::UnknownMemberId)
    );
    assert_eq!(
        c.heartbeat("no-such-group", "nobody", None, 1).await,
        Err(GroupError::UnknownMemberId)
    );
    let mut stale = me.clone();
    stale.generation_id = 7;
    assert_eq!(
        spawn_sync(&c, "g", &stale, Vec::new()).await.unwrap(),
        Err(GroupError::IllegalGeneration)
    );
    // Joining with a protocol nobody shares is refused.
    let mut other = join_req("g", "", None, &["t"]);
    other.protocols = vec![("roundrobin".into(), subscription(&["t"]))];
    assert_eq!(
        c.join_group(other).await,
        Err(GroupError::InconsistentGroupProtocol)
    );
    // So is a session timeout outside the broker's range.
    let mut short = join_req("g2", "", None, &["t"]);
    short.session_timeout_ms = 10;
    assert!(matches!(
        c.join_group(short).await,
        Err(GroupError::InvalidSessionTimeout { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn leaving_members_rebalance_then_empty_the_group() {
    let c = open(Arc::new(MemoryLog::default()), config()).await;
    let joined = rebalance(
        &c,
        "g",
        &[
            join_req("g", "", None, &["t"]),
            join_req("g", "", None, &["t"]),
        ],
    )
    .await;
    let results = c
        .leave_group(
            "g",
            &[
                LeavingMember {
                    member_id: joined[1].member_id.clone(),
                    group_instance_id: None,
                },
                LeavingMember {
                    member_id: "nobody".into(),
                    group_instance_id: None,
                },
            ],
        )
        .await;
    assert_eq!(results, vec![Ok(()), Err(GroupError::UnknownMemberId)]);
    assert_eq!(state_of(&c, "g").await, GroupState::PreparingRebalance);
    let alone = c
        .join_group(join_req("g", &joined[0].member_id, None, &["t"]))
        .await
        .unwrap();
    assert_eq!(alone.generation_id, 2);
    let results = c
        .leave_group(
            "g",
            &[LeavingMember {
                member_id: joined[0].member_id.clone(),
                group_instance_id: None,
            }],
        )
        .await;
    assert_eq!(results, vec![Ok(())]);
    assert_eq!(state_of(&c, "g").await, GroupState::Empty);
    assert_eq!(c.delete_groups(&["g".into()]).await, vec![Ok(())]);
    assert_eq!(
        c.describe_group("g").await.err(),
        Some(GroupError::GroupIdNotFound)
    );
}

#[tokio::test(start_paused = true)]
async fn member_that_does_not_rejoin_is_dropped_at_the_rebalance_timeout() {
    let c = open(Arc::new(MemoryLog::default()), config()).await;
    let joined = rebalance(
        &c,
        "g",
        &[
            join_req("g", "", None, &["t"]),
            join_req("g", "", None, &["t"]),
        ],
    )
    .await;
    // Member 0 rejoins (a leader rejoining forces a rebalance); member 1 keeps
    // heartbeating but never rejoins.
    let start = tokio::time::Instant::now();
    let leader_id = joined
        .iter()
        .find(|j| j.leader == j.member_id)
        .unwrap()
        .member_id
        .clone();
    let other_id = joined
        .iter()
        .find(|j| j.leader != j.member_id)
        .unwrap()
        .member_id
        .clone();
    let rejoin = spawn_join(&c, join_req("g", &leader_id, None, &["t"]));
    let hb = {
        let c = c.clone();
        let other_id = other_id.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(3000)).await;
                if c.heartbeat("g", &other_id, None, 1).await == Err(GroupError::UnknownMemberId) {
                    return;
                }
            }
        })
    };
    let result = rejoin.await.unwrap().unwrap();
    assert!(start.elapsed() >= Duration::from_millis(REBALANCE_MS as u64));
    assert_eq!(result.generation_id, 2);
    assert_eq!(result.members.len(), 1);
    hb.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn group_of_max_size_refuses_one_more_member() {
    let c = open(
        Arc::new(MemoryLog::default()),
        GroupConfig {
            max_size: 1,
            ..config()
        },
    )
    .await;
    rebalance(&c, "g", &[join_req("g", "", None, &["t"])]).await;
    assert_eq!(
        c.join_group(join_req("g", "", None, &["t"])).await,
        Err(GroupError::GroupMaxSizeReached { max: 1 })
    );
}

// ---- offsets ------------------------------------------------------------------------

fn commit(
    group: &str,
    generation: i32,
    member: &str,
    offsets: &[(&str, i32, i64)],
) -> CommitRequest {
    CommitRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        group_instance_id: None,
        retention: None,
        offsets: offsets
            .iter()
            .map(|(t, p, o)| OffsetToCommit {
                topic: t.to_string(),
                partition: *p,
                offset: *o,
                leader_epoch: 5,
                metadata: Some(format!("m{o}")),
            })
            .collect(),
    }
}

async fn fetch_one(
    c: &GroupCoordinator,
    group: &str,
    topic: &str,
    partition: i32,
) -> FetchedOffset {
    let wanted = [(topic.to_string(), vec![partition])];
    c.fetch_offsets(group, Some(&wanted))
        .await
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn committed_offsets_survive_reopening_the_log() {
    let log: Arc<MemoryLog> = Arc::new(MemoryLog::default());
    let c = open(log.clone(), config()).await;
    let results = c
        .commit_offsets(commit("g", -1, "", &[("t", 0, 10), ("t", 1, 20)]))
        .await;
    assert_eq!(results, vec![Ok(()), Ok(())]);
    c.commit_offsets(commit("g", -1, "", &[("t", 0, 15)])).await;
    c.commit_offsets(commit("h", -1, "", &[("u", 3, 7)])).await;
    assert_eq!(
        c.delete_offsets("h", &[("u".into(), vec![3])])
            .await
            .unwrap()[0]
            .1[0]
            .1,
        Ok(())
    );
    drop(c);
    let c = open(log, config()).await;
    let got = fetch_one(&c, "g", "t", 0).await;
    assert_eq!(
        (got.offset, got.leader_epoch, got.metadata.as_str()),
        (15, 5, "m15")
    );
    assert_eq!(fetch_one(&c, "g", "t", 1).await.offset, 20);
    assert_eq!(fetch_one(&c, "h", "u", 3).await.offset, -1);
    let all = c.fetch_offsets("g", None).await.unwrap();
    assert_eq!(all.len(), 2);
}

#[tokio::test]
async fn committed_offsets_survive_compaction_and_reopening_a_partition_log() {
    let dir = tempfile::tempdir().unwrap();
    let log_config = crate::log::LogConfig {
        cleanup_policy: crate::log::CleanupPolicy::Compact,
        segment_bytes: 2048,
        delete_retention_ms: 0,
        ..crate::log::LogConfig::default()
    };
    let path = dir.path().join("__consumer_offsets-0");
    let open_log = || Arc::new(crate::log::PartitionLog::open(&path, log_config.clone()).unwrap());
    let log = open_log();
    let c = GroupCoordinator::open_log(log.clone(), config()).unwrap();
    for offset in 1..=50 {
        c.commit_offsets(commit(
            "g",
            -1,
            "",
            &[("t", 0, offset), ("t", 1, offset * 2)],
        ))
        .await;
    }
    c.commit_offsets(commit("gone", -1, "", &[("t", 0, 1)]))
        .await;
    assert_eq!(c.delete_groups(&["gone".into()]).await, vec![Ok(())]);
    // Roll past everything written so far, then compact: only the newest value of each
    // key (and no tombstone) is left in the cleaned segments.
    for offset in 51..=60 {
        c.commit_offsets(commit("h", -1, "", &[("u", 0, offset)]))
            .await;
    }
    let before = log.size_bytes();
    log.compact(super::state::now_ms() + 1000).unwrap();
    assert!(log.size_bytes() < before, "compaction removed nothing");
    drop(c);
    drop(log);
    let c = GroupCoordinator::open_log(open_log(), config()).unwrap();
    assert_eq!(fetch_one(&c, "g", "t", 0).await.offset, 50);
    assert_eq!(fetch_one(&c, "g", "t", 1).await.offset, 100);
    assert_eq!(fetch_one(&c, "g", "t", 2).await.offset, -1);
    assert_eq!(fetch_one(&c, "h", "u", 0).await.offset, 60);
    assert_eq!(fetch_one(&c, "gone", "t", 0).await.offset, -1);
}

#[tokio::test(start_paused = true)]
async fn member_commits_are_checked_against_generation_and_membership() {
    let c = open(Arc::new(MemoryLog::default()), config()).await;
    let joined = rebalance(&c, "g", &[join_req("g", "", None, &["t"])]).await;
    let me = &joined[0].member_id;
    assert_eq!(
        c.commit_offsets(commit("g", 1, me, &[("t", 0, 5)])).await,
        vec![Ok(())]
    );
    assert_eq!(
        c.commit_offsets(commit("g", 0, me, &[("t", 0, 6)])).await,
        vec![Err(GroupError::IllegalGeneration)]
    );
    assert_eq!(
        c.commit_offsets(commit("g", 1, "nobody", &[("t", 0, 6)]))
            .await,
        vec![Err(GroupError::UnknownMemberId)]
    );
    // A standalone commit into a group with members is refused.
    assert_eq!(
        c.commit_offsets(commit("g", -1, "", &[("t", 0, 6)])).await,
        vec![Err(GroupError::UnknownMemberId)]
    );
    // Unknown group with a generation: stale.
    assert_eq!(
        c.commit_offsets(commit("nope", 3, "x", &[("t", 0, 6)]))
            .await,
        vec![Err(GroupError::IllegalGeneration)]
    );
    let mut big = commit("g", 1, me, &[("t", 0, 7), ("t", 1, 8)]);
    big.offsets[0].metadata = Some("x".repeat(5000));
    let results = c.commit_offsets(big).await;
    assert!(matches!(
        results[0],
        Err(GroupError::OffsetMetadataTooLarge { .. })
    ));
    assert_eq!(results[1], Ok(()));
    assert_eq!(fetch_one(&c, "g", "t", 0).await.offset, 5);
    assert_eq!(fetch_one(&c, "g", "t", 1).await.offset, 8);
    // Offsets of a subscribed topic cannot be deleted while the group is active.
    let deleted = c
        .delete_offsets("g", &[("t".into(), vec![1]), ("other".into(), vec![0])])
        .await
        .unwrap();
    assert_eq!(deleted[0].1[0].1, Err(GroupError::GroupSubscribedToTopic));
    assert_eq!(deleted[1].1[0].1, Ok(()));
    assert_eq!(
        c.delete_groups(&["g".into()]).await,
        vec![Err(GroupError::NonEmptyGroup)]
    );
}

#[tokio::test]
async fn offsets_of_an_empty_group_expire_after_retention() {
    let log: Arc<MemoryLog> = Arc::new(MemoryLog::default());
    let retention = Duration::from_secs(3600);
    let cfg = GroupConfig {
        offsets_retention: retention,
        ..config()
    };
    let c = open(log.clone(), cfg.clone()).await;
    c.commit_offsets(commit("g", -1, "", &[("t", 0, 10)])).await;
    let now = super::state::now_ms();
    assert_eq!(c.expire_offsets(now + 1000).await, 0);
    assert_eq!(fetch_one(&c, "g", "t", 0).await.offset, 10);
    assert_eq!(
        c.expire_offsets(now + retention.as_millis() as i64 + 1000)
            .await,
        1
    );
    assert_eq!(fetch_one(&c, "g", "t", 0).await.offset, -1);
    // The group went with its last offset, and the tombstones were written.
    assert!(c.list_groups(&[]).await.is_empty());
    // Wait for the writer: a commit after the tombstones is durable only after them.
    c.commit_offsets(commit("h", -1, "", &[("t", 0, 1)])).await;
    drop(c);
    let c = open(log, cfg).await;
    assert_eq!(fetch_one(&c, "g", "t", 0).await.offset, -1);
}

#[tokio::test(start_paused = true)]
async fn stable_group_is_restored_from_the_log_and_members_keep_heartbeating() {
    let log: Arc<MemoryLog> = Arc::new(MemoryLog::default());
    let c = open(log.clone(), config()).await;
    let joined = rebalance(&c, "g", &[join_req("g", "", None, &["t"])]).await;
    // Make sure the group record is written before reopening.
    c.commit_offsets(commit("g", 1, &joined[0].member_id, &[("t", 0, 3)]))
        .await;
    drop(c);
    let c = open(log, config()).await;
    assert_eq!(state_of(&c, "g").await, GroupState::Stable);
    c.heartbeat("g", &joined[0].member_id, None, 1)
        .await
        .unwrap();
    let described = c.describe_group("g").await.unwrap();
    assert_eq!(
        described.members[0].assignment,
        Bytes::from(joined[0].member_id.clone())
    );
}

#[tokio::test(start_paused = true)]
async fn initial_delay_is_extended_while_members_keep_arriving() {
    let c = open(Arc::new(MemoryLog::default()), config()).await;
    let start = tokio::time::Instant::now();
    let a = spawn_join(&c, join_req("g", "", None, &["t"]));
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let b = spawn_join(&c, join_req("g", "", None, &["t"]));
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    // The delay ran once (3 s), saw a newcomer, and ran once more.
    assert!(start.elapsed() >= Duration::from_millis(6000));
    assert_eq!((a.generation_id, b.generation_id), (1, 1));
    assert_eq!(a.leader, b.leader);
}

#[tokio::test(start_paused = true)]
async fn member_that_never_syncs_is_removed_and_the_group_rebalances() {
    let c = open(Arc::new(MemoryLog::default()), config()).await;
    let a = spawn_join(&c, join_req("g", "", None, &["t"]));
    let b = spawn_join(&c, join_req("g", "", None, &["t"]));
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    let (leader, silent) = if a.leader == a.member_id {
        (a, b)
    } else {
        (b, a)
    };
    // Only the leader syncs; the other member never does.
    let assignments = vec![(leader.member_id.clone(), Bytes::from_static(b"x"))];
    let synced = spawn_sync(&c, "g", &leader, assignments)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(synced.assignment, Bytes::from_static(b"x"));
    let start = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(3000)).await;
        match c.heartbeat("g", &leader.member_id, None, 1).await {
            Ok(()) => assert!(start.elapsed() <= Duration::from_millis(REBALANCE_MS as u64 + 3000)),
            Err(GroupError::RebalanceInProgress) => break,
            Err(e) => panic!("unexpected heartbeat error {e}"),
        }
    }
    assert_eq!(
        c.heartbeat("g", &silent.member_id, None, 1).await,
        Err(GroupError::UnknownMemberId)
    );
    let rejoined = c
        .join_group(join_req("g", &leader.member_id, None, &["t"]))
        .await
        .unwrap();
    assert_eq!(rejoined.generation_id, 2);
    assert_eq!(rejoined.members.len(), 1);
}

#[tokio::test]
async fn deleting_a_topic_forgets_its_committed_offsets() {
    let log: Arc<MemoryLog> = Arc::new(MemoryLog::default());
    let c = open(log.clone(), config()).await;
    c.commit_offsets(commit("g", -1, "", &[("t", 0, 10), ("u", 0, 20)]))
        .await;
    c.delete_topic_offsets(&["t".to_string()]).await;
    assert_eq!(fetch_one(&c, "g", "t", 0).await.offset, -1);
    assert_eq!(fetch_one(&c, "g", "u", 0).await.offset, 20);
    // The tombstone is in the log: a commit queued after it is durable only after it.
    c.commit_offsets(commit("h", -1, "", &[("u", 0, 1)])).await;
    drop(c);
    let c = open(log, config()).await;
    assert_eq!(fetch_one(&c, "g", "t", 0).await.offset, -1);
    assert_eq!(fetch_one(&c, "g", "u", 0).await.offset, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_keep_the_last_offset_of_each_partition() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("__consumer_offsets-0");
    let log_config = crate::log::LogConfig {
        cleanup_policy: crate::log::CleanupPolicy::Compact,
        ..crate::log::LogConfig::default()
    };
    let open_log = || Arc::new(crate::log::PartitionLog::open(&path, log_config.clone()).unwrap());
    let c = GroupCoordinator::open_log(open_log(), config()).unwrap();
    // Sixteen committers, each owning one partition and committing in order; the writer
    // batches whatever they queue meanwhile into shared appends.
    let tasks: Vec<_> = (0..16)
        .map(|p| {
            let c = c.clone();
            tokio::spawn(async move {
                for offset in 1..=40 {
                    let results = c
                        .commit_offsets(commit("g", -1, "", &[("t", p, offset)]))
                        .await;
                    assert_eq!(results, vec![Ok(())]);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    drop(c);
    let c = GroupCoordinator::open_log(open_log(), config()).unwrap();
    for p in 0..16 {
        assert_eq!(fetch_one(&c, "g", "t", p).await.offset, 40, "partition {p}");
    }
}
