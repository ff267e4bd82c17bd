//! Tests of the replica layer on a real topic store: the high watermark never passes the
//! log end offset, a fetch never returns past it, and `acks=all` waits for it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::append::LeaderAppend;
use super::*;
use crate::log::testutil::{batch_of, decode};
use crate::log::{BUFFERS, FetchIsolation};
use crate::topics::{TopicConfig, TopicDefaults};

/// Memory without limit, for fetches in tests.
struct Unbounded;

struct AnyGrant(usize);

impl FetchGrant for AnyGrant {
    fn bytes(&self) -> usize {
        self.0
    }
    fn is_whole_budget(&self) -> bool {
        true
    }
    fn try_grow(&mut self, to: usize) -> bool {
        self.0 = to;
        true
    }
    fn shrink(&mut self, to: usize) {
        self.0 = self.0.min(to);
    }
}

impl FetchMemory for Unbounded {
    type Grant = AnyGrant;
    fn grant(&self, want: usize, _need: usize) -> impl Future<Output = AnyGrant> + Send {
        std::future::ready(AnyGrant(want))
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    topics: TopicStore,
    replicas: ReplicaManager,
}

fn fixture(acks_all_fsync: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let topics = TopicStore::open(
        dir.path(),
        "test-cluster".into(),
        TopicDefaults::default(),
        1,
    )
    .unwrap();
    topics.create_topic("t", 1, TopicConfig::default()).unwrap();
    Fixture {
        _dir: dir,
        topics,
        replicas: ReplicaManager::new(1, acks_all_fsync),
    }
}

impl Fixture {
    fn partition(&self) -> Arc<Partition> {
        let topic = self
            .replicas
            .topic(&self.topics, "t", Default::default(), false)
            .unwrap();
        self.replicas.partition(&self.topics, &topic, 0).unwrap()
    }

    async fn produce(&self, seed: u32, records: usize) -> Vec<LeaderAppend> {
        let entry = AppendEntry {
            partition: self.partition(),
            records: Some(Bytes::from(batch_of(seed, records, 0, 10))),
        };
        self.replicas
            .append_records(&self.topics, vec![entry], true)
            .await
    }

    async fn fetch(&self, offset: i64, min_bytes: usize, max_wait: Duration) -> FetchOutcome {
        let params = FetchParams {
            max_bytes: 1 << 20,
            min_bytes,
            max_wait,
            isolation: FetchIsolation::HighWatermark,
        };
        let target = FetchTarget {
            partition: self.partition(),
            offset,
            max_bytes: 1 << 20,
        };
        let (mut outcomes, _) = self
            .replicas
            .fetch_messages(params, vec![target], &Unbounded)
            .await;
        outcomes.remove(0)
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_sole_leader_commits_each_append_at_once() {
    rt().block_on(async {
        let f = fixture(true);
        let appended = f.produce(1, 3).await;
        let outcomes = f
            .replicas
            .complete_acks_all(appended, Duration::from_secs(30))
            .await;
        let info = outcomes[0].result.as_ref().unwrap();
        assert_eq!((info.base_offset, info.last_offset), (0, 2));
        let p = f.partition();
        assert_eq!(p.high_watermark(), 3);
        assert_eq!(
            p.log().flushed_offset(),
            3,
            "acks=all answered after the fsync"
        );
        assert_eq!(p.isr(), vec![1]);
        assert!(p.is_leader());
        let fetched = f.fetch(0, 1, Duration::ZERO).await;
        assert_eq!(decode(&fetched.records.unwrap()).len(), 3);
        assert_eq!(fetched.high_watermark, 3);
    });
}

#[test]
fn the_high_watermark_waits_for_every_isr_member_and_never_passes_the_log_end() {
    let f = fixture(false);
    let p = f.partition();
    p.set_replicas_for_test(vec![1, 2, 3], &[(2, 0), (3, 0)]);
    let policy = p.topic().config().produce_policy(f.topics.defaults());
    for seed in 0..3 {
        let mut b = BUFFERS.copy_of(&batch_of(seed, 2, 0, 10));
        p.append_as_leader(&mut b, &policy).unwrap();
    }
    assert_eq!(p.log().log_end_offset(), 6);
    assert_eq!(p.high_watermark(), 0, "no follower has anything");

    p.set_replicas_for_test(vec![1, 2, 3], &[(2, 4), (3, 2)]);
    assert_eq!(
        p.maybe_increment_high_watermark(),
        2,
        "the slowest ISR member"
    );
    // A replica out of the ISR holds nothing back.
    p.set_replicas_for_test(vec![1, 2], &[(2, 4), (3, 2)]);
    assert_eq!(p.maybe_increment_high_watermark(), 4);
    // Followers claiming more than the leader has do not push it past the log end.
    p.set_replicas_for_test(vec![1, 2], &[(2, 100)]);
    assert_eq!(p.maybe_increment_high_watermark(), 6);
    // Nor does a shrinking follower move it back.
    p.set_replicas_for_test(vec![1, 2], &[(2, 1)]);
    assert_eq!(p.maybe_increment_high_watermark(), 6);
}

#[test]
fn acks_all_waits_until_the_isr_has_the_records() {
    rt().block_on(async {
        let f = fixture(false);
        let p = f.partition();
        p.set_replicas_for_test(vec![1, 2], &[(2, 0)]);
        let appended = f.produce(1, 2).await;
        let waiting = tokio::spawn(
            f.replicas
                .complete_acks_all(appended, Duration::from_secs(60)),
        );
        // The follower catches up: the append is committed and answered.
        p.set_replicas_for_test(vec![1, 2], &[(2, 2)]);
        assert_eq!(p.maybe_increment_high_watermark(), 2);
        let outcomes = tokio::time::timeout(Duration::from_secs(30), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcomes[0].result.as_ref().unwrap().last_offset, 1);
    });
}

#[test]
fn acks_all_times_out_when_the_isr_does_not_catch_up() {
    rt().block_on(async {
        let f = fixture(false);
        f.partition().set_replicas_for_test(vec![1, 2], &[(2, 0)]);
        let appended = f.produce(1, 2).await;
        let outcomes = f
            .replicas
            .complete_acks_all(appended, Duration::from_millis(1))
            .await;
        assert!(matches!(
            outcomes[0].result,
            Err(ReplicaError::RequestTimedOut { offset: 2, .. })
        ));
    });
}

#[test]
fn a_fetch_waits_for_the_high_watermark_and_never_reads_past_it() {
    rt().block_on(async {
        let f = Arc::new(fixture(false));
        let p = f.partition();
        p.set_replicas_for_test(vec![1, 2], &[(2, 0)]);
        f.produce(1, 2).await;
        f.produce(2, 3).await;
        assert_eq!(p.log().log_end_offset(), 5);

        // Uncommitted records are not there for a consumer, however long it waits.
        let empty = f.fetch(0, 1, Duration::ZERO).await;
        assert!(empty.records.unwrap().is_empty());
        assert_eq!(empty.high_watermark, 0);

        let waiting = {
            let f = Arc::clone(&f);
            tokio::spawn(async move { f.fetch(0, 1, Duration::from_secs(60)).await })
        };
        // Another uncommitted append wakes the fetch, which finds nothing and waits on.
        f.produce(3, 1).await;
        p.set_replicas_for_test(vec![1, 2], &[(2, 2)]);
        p.maybe_increment_high_watermark();
        let fetched = tokio::time::timeout(Duration::from_secs(30), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fetched.high_watermark, 2);
        let records = decode(&fetched.records.unwrap());
        assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0, 1]);
    });
}

#[test]
fn produce_to_consumer_offsets_is_refused_and_unknown_partitions_named() {
    let f = fixture(false);
    assert!(matches!(
        f.replicas.topic_for_produce(
            &f.topics,
            crate::topics::CONSUMER_OFFSETS,
            Default::default(),
            false
        ),
        Err(ReplicaError::InternalTopic(_))
    ));
    let topic = f
        .replicas
        .topic(&f.topics, "t", Default::default(), false)
        .unwrap();
    assert!(matches!(
        f.replicas.partition(&f.topics, &topic, 1),
        Err(ReplicaError::UnknownTopicOrPartition { partition: 1, .. })
    ));
    assert!(
        Arc::ptr_eq(&f.partition(), &f.partition()),
        "one Partition per partition"
    );
}

#[test]
fn list_offsets_and_delete_records_stop_at_the_high_watermark() {
    let f = fixture(false);
    let p = f.partition();
    let policy = p.topic().config().produce_policy(f.topics.defaults());
    let mut b = BUFFERS.copy_of(&batch_of(0, 2, 0, 10));
    p.append_as_leader(&mut b, &policy).unwrap();
    p.set_replicas_for_test(vec![1, 2], &[(2, 2)]);
    let mut b = BUFFERS.copy_of(&batch_of(1, 2, 5_000, 10));
    p.append_as_leader(&mut b, &policy).unwrap();
    assert_eq!(p.high_watermark(), 2);
    assert_eq!(p.fetch_offset_for_timestamp(-1).unwrap(), Some((2, -1)));
    assert_eq!(
        p.fetch_offset_for_timestamp(4_000).unwrap(),
        None,
        "uncommitted"
    );
    assert_eq!(p.delete_records_before(-1).unwrap(), 2);
    assert!(p.delete_records_before(3).is_err());
}

#[test]
fn leader_epochs_newer_are_unknown_and_older_fenced() {
    let f = fixture(false);
    let p = f.partition();
    assert!(p.check_leader_epoch(-1).is_ok());
    assert!(p.check_leader_epoch(0).is_ok());
    assert!(matches!(
        p.check_leader_epoch(1),
        Err(ReplicaError::UnknownLeaderEpoch {
            requested: 1,
            current: 0
        })
    ));
}

/// What the property test does to a three-replica partition led by node 1.
#[derive(Debug, Clone)]
enum Op {
    /// The leader appends a batch of this many records.
    Append(u8),
    /// Follower 2 or 3 reports a log end offset this far past its last one (at most the
    /// leader's), as a follower fetch will.
    FollowerFetch { follower: i32, ahead: u8 },
    /// Follower 2 or 3 leaves the ISR, or joins it again.
    Isr { follower: i32, member: bool },
    /// A consumer reads from this offset (modulo one past the log end).
    Read(u16),
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        3 => (1u8..4).prop_map(Op::Append),
        3 => (2i32..4, 0u8..8).prop_map(|(follower, ahead)| Op::FollowerFetch { follower, ahead }),
        1 => (2i32..4, any::<bool>()).prop_map(|(follower, member)| Op::Isr { follower, member }),
        2 => any::<u16>().prop_map(Op::Read),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// The high watermark against a model: it is the largest value the minimum log end
    /// offset over the ISR ever reached (never back, never past the leader's log end),
    /// and a consumer's read never returns a record at or beyond it.
    #[test]
    fn high_watermark_is_the_isr_minimum_log_end(ops in proptest::collection::vec(op(), 1..50)) {
        let f = fixture(false);
        let p = f.partition();
        let policy = p.topic().config().produce_policy(f.topics.defaults());
        let mut leo = 0i64;
        let mut followers = std::collections::BTreeMap::from([(2, 0i64), (3, 0i64)]);
        let mut isr = vec![1, 2, 3];
        let mut hw = 0i64;
        let mut batch_ends = Vec::new();
        let sync = |isr: &Vec<i32>, followers: &std::collections::BTreeMap<i32, i64>| {
            let fs: Vec<(i32, i64)> = followers.iter().map(|(&k, &v)| (k, v)).collect();
            p.set_replicas_for_test(isr.clone(), &fs);
        };
        sync(&isr, &followers);
        for op in ops {
            match op {
                Op::Append(n) => {
                    let mut b = BUFFERS.copy_of(&batch_of(0, usize::from(n), 0, 10));
                    p.append_as_leader(&mut b, &policy).unwrap();
                    leo += i64::from(n);
                    batch_ends.push(leo);
                }
                Op::FollowerFetch { follower, ahead } => {
                    // A follower's log end is a batch end of the leader's log.
                    let current = followers[&follower];
                    let next = batch_ends
                        .iter()
                        .copied()
                        .filter(|&e| e >= current)
                        .nth(usize::from(ahead) % 3)
                        .unwrap_or(current);
                    followers.insert(follower, next);
                }
                Op::Isr { follower, member } => {
                    isr.retain(|&id| id != follower);
                    if member {
                        isr.push(follower);
                    }
                }
                Op::Read(at) => {
                    let offset = i64::from(at) % (leo + 1);
                    let r = p.read(offset, 1 << 20, true, FetchIsolation::HighWatermark).unwrap();
                    proptest::prop_assert!(decode(&r.records).iter().all(|rec| rec.0 < hw));
                }
            }
            sync(&isr, &followers);
            let min = isr
                .iter()
                .filter(|&&id| id != 1)
                .map(|id| followers[id])
                .fold(leo, i64::min);
            hw = hw.max(min);
            proptest::prop_assert_eq!(p.maybe_increment_high_watermark(), hw);
            proptest::prop_assert!(p.high_watermark() <= p.log().log_end_offset());
        }
    }
}

fn state(leader: Option<i32>, leader_epoch: i32, isr: &[i32]) -> PartitionState {
    PartitionState {
        leader,
        leader_epoch,
        partition_epoch: leader_epoch,
        replicas: vec![1, 2, 3],
        isr: isr.to_vec(),
    }
}

impl Fixture {
    fn apply(&self, s: PartitionState) {
        let topic = self.topics.topic("t").unwrap();
        let log = topic.partition(0).unwrap();
        self.replicas.apply_partition_state(&topic, 0, log, s, None);
    }
}

#[test]
fn applied_state_makes_leader_or_follower_and_ignores_older_epochs() {
    let f = fixture(false);
    f.replicas.set_managed();
    let topic = f.topics.topic("t").unwrap();
    assert!(
        matches!(
            f.replicas.partition(&f.topics, &topic, 0),
            Err(ReplicaError::NotLeaderOrFollower { .. })
        ),
        "a managed broker does not lead what the image never gave it"
    );
    f.apply(state(Some(1), 3, &[1, 2]));
    let p = f.partition();
    assert!(p.is_leader());
    assert_eq!((p.leader_epoch(), p.isr()), (3, vec![1, 2]));
    assert_eq!(
        p.log().latest_epoch(),
        Some(3),
        "a new leader's epoch starts at its log end offset"
    );
    let policy = p.topic().config().produce_policy(f.topics.defaults());
    let mut b = BUFFERS.copy_of(&batch_of(0, 2, 0, 10));
    p.append_as_leader(&mut b, &policy).unwrap();
    assert_eq!(p.high_watermark(), 0, "follower 2 has not fetched yet");

    f.apply(state(Some(2), 4, &[1, 2]));
    let p = f.partition();
    assert!(!p.is_leader());
    assert_eq!(p.leader_id(), Some(2));
    let mut b = BUFFERS.copy_of(&batch_of(1, 2, 0, 10));
    assert!(matches!(
        p.append_as_leader(&mut b, &policy),
        Err(ReplicaError::NotLeaderOrFollower { .. })
    ));
    f.apply(state(Some(1), 3, &[1]));
    assert_eq!(
        (p.leader_epoch(), p.leader_id()),
        (4, Some(2)),
        "an older epoch is ignored"
    );

    f.replicas.remove_partition(topic.id(), 0);
    assert!(matches!(
        f.replicas.partition(&f.topics, &topic, 0),
        Err(ReplicaError::NotLeaderOrFollower { .. })
    ));
}

#[test]
fn follower_fetches_move_the_high_watermark_and_wake_acks_all() {
    rt().block_on(async {
        let f = fixture(false);
        f.replicas.set_managed();
        f.apply(state(Some(1), 2, &[1, 2]));
        let appended = f.produce(1, 3).await;
        let wait = f
            .replicas
            .complete_acks_all(appended, Duration::from_secs(30));
        let p = f.partition();
        assert_eq!(p.on_follower_fetch(2, 0, -1).unwrap(), FollowerFetch::Read);
        assert_eq!(p.high_watermark(), 0);
        // The follower read the batch and asks for what follows: it has it.
        assert_eq!(p.on_follower_fetch(2, 3, 2).unwrap(), FollowerFetch::Read);
        assert_eq!(p.high_watermark(), 3);
        let outcomes = wait.await;
        assert_eq!(outcomes[0].result.as_ref().unwrap().last_offset, 2);
        assert_eq!(p.follower(2).unwrap().log_end_offset, 3);
        // Node 3 is a replica outside the ISR: its fetches count, but not for the HW.
        assert_eq!(p.on_follower_fetch(3, 0, -1).unwrap(), FollowerFetch::Read);
        assert_eq!(p.high_watermark(), 3);
        assert!(matches!(
            p.on_follower_fetch(9, 0, -1),
            Err(ReplicaError::NotLeaderOrFollower { .. })
        ));
    });
}

#[test]
fn a_follower_with_a_newer_or_longer_epoch_is_told_where_it_diverges() {
    rt().block_on(async {
        let f = fixture(false);
        f.replicas.set_managed();
        f.apply(state(Some(1), 2, &[1, 2]));
        f.produce(1, 3).await;
        f.apply(state(Some(1), 4, &[1, 2]));
        f.produce(2, 2).await;
        let p = f.partition();
        // Epoch 2 ended at 3 here: a follower that has epoch 2 up to 6 must cut at 3.
        assert_eq!(
            p.on_follower_fetch(2, 6, 2).unwrap(),
            FollowerFetch::Diverging {
                epoch: 2,
                end_offset: 3
            }
        );
        assert_eq!(
            p.follower(2).unwrap().log_end_offset,
            -1,
            "a diverging fetch says nothing of its log end"
        );
        // An epoch this leader never had (3): the one before it, and where that ends.
        assert_eq!(
            p.on_follower_fetch(2, 4, 3).unwrap(),
            FollowerFetch::Diverging {
                epoch: 2,
                end_offset: 3
            }
        );
        assert_eq!(p.on_follower_fetch(2, 5, 4).unwrap(), FollowerFetch::Read);
        assert_eq!(p.high_watermark(), 5);
    });
}

#[test]
fn acks_all_needs_min_insync_replicas_before_and_after_the_append() {
    rt().block_on(async {
        let f = fixture(false);
        f.replicas.set_managed();
        f.replicas.set_min_insync_replicas(2);
        f.apply(state(Some(1), 1, &[1]));
        let refused = f.produce(1, 2).await.remove(0).outcome();
        assert!(matches!(
            refused.result,
            Err(ReplicaError::NotEnoughReplicas { isr: 1, min: 2 })
        ));
        assert_eq!(f.partition().log().log_end_offset(), 0, "nothing appended");

        f.apply(PartitionState {
            partition_epoch: 2,
            ..state(Some(1), 1, &[1, 2])
        });
        let appended = f.produce(2, 2).await;
        let wait = f
            .replicas
            .complete_acks_all(appended, Duration::from_secs(30));
        // The ISR shrinks to the leader alone: the records are committed, but by fewer
        // replicas than min.insync.replicas asks.
        f.apply(PartitionState {
            partition_epoch: 3,
            ..state(Some(1), 1, &[1])
        });
        let outcomes = wait.await;
        assert!(matches!(
            outcomes[0].result,
            Err(ReplicaError::NotEnoughReplicasAfterAppend { isr: 1, min: 2 })
        ));
    });
}
