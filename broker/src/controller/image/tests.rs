use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::controller::records::Roles;

fn registration(node_id: BrokerId, incarnation: u128) -> RegisterBroker {
    RegisterBroker {
        node_id,
        incarnation_id: Uuid::from_u128(incarnation),
        host: "127.0.0.1".into(),
        port: 9000 + node_id as u16,
        rack: None,
        roles: Roles {
            broker: true,
            controller: true,
        },
    }
}

fn apply_all(image: &mut MetadataImage, records: &[MetadataRecord]) {
    for record in records {
        image
            .apply(record)
            .unwrap_or_else(|e| panic!("{} did not apply: {e}", record.kind()));
    }
}

/// An image with `brokers` live brokers 0..brokers.
fn cluster(brokers: i32) -> MetadataImage {
    let mut image = MetadataImage::new();
    for b in 0..brokers {
        let records = image.register_records(registration(b, b as u128 + 1));
        apply_all(&mut image, &records);
        let records = image.unfence_records(b);
        apply_all(&mut image, &records);
    }
    image
}

fn create(
    image: &mut MetadataImage,
    name: &str,
    assignment: &[Vec<BrokerId>],
    configs: &[(&str, &str)],
) -> Uuid {
    let topic_id = Uuid::from_u128(name.len() as u128 + 1000);
    let configs = configs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let records = image
        .create_topic_records(name, topic_id, configs, assignment)
        .unwrap();
    apply_all(image, &records);
    topic_id
}

#[test]
fn round_robin_assignment_spreads_leaders_and_replicas() {
    let image = cluster(3);
    let assignment = image.assign_replicas(0, 6, 3, 4).unwrap();
    let mut leaders = BTreeMap::new();
    for replicas in &assignment {
        assert_eq!(
            replicas.iter().collect::<BTreeSet<_>>().len(),
            3,
            "{replicas:?}"
        );
        *leaders.entry(replicas[0]).or_insert(0) += 1;
    }
    assert_eq!(leaders.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
}

#[test]
fn assignment_refuses_replication_factor_above_live_brokers() {
    let mut image = cluster(3);
    let records = image.fence_records(2);
    apply_all(&mut image, &records);
    assert_eq!(
        image.assign_replicas(0, 1, 3, 0),
        Err(ControllerError::InvalidReplicationFactor {
            requested: 3,
            available: 2
        })
    );
}

#[test]
fn explicit_assignment_is_honoured_and_unknown_brokers_refused() {
    let mut image = cluster(3);
    let topic = create(&mut image, "t", &[vec![2, 0], vec![1, 2]], &[]);
    let p0 = image.partition(topic, 0).unwrap();
    assert_eq!(
        (p0.replicas.clone(), p0.isr.clone(), p0.leader),
        (vec![2, 0], vec![2, 0], Some(2))
    );
    let err = image
        .create_topic_records("u", Uuid::from_u128(9), BTreeMap::new(), &[vec![0, 7]])
        .unwrap_err();
    assert_eq!(err.error_code(), 39, "{err}");
    let err = image
        .create_topic_records("t", Uuid::from_u128(9), BTreeMap::new(), &[vec![0]])
        .unwrap_err();
    assert_eq!(err, ControllerError::TopicAlreadyExists("t".into()));
}

#[test]
fn fencing_the_leader_elects_the_first_live_isr_member_in_replica_order() {
    let mut image = cluster(3);
    let topic = create(&mut image, "t", &[vec![0, 2, 1]], &[]);
    let records = image.fence_records(0);
    apply_all(&mut image, &records);
    let p = image.partition(topic, 0).unwrap();
    assert_eq!(
        (p.leader, p.isr.clone(), p.leader_epoch),
        (Some(2), vec![2, 1], 1)
    );
    assert_eq!(image.partitions_led_by(2), vec![(topic, 0)]);
    assert_eq!(image.partitions_followed_by(0), vec![(topic, 0)]);
}

#[test]
fn fencing_the_last_isr_member_leaves_the_partition_leaderless_without_unclean_election() {
    let mut image = cluster(2);
    let topic = create(&mut image, "t", &[vec![0, 1]], &[]);
    let change = image
        .alter_partition(0, topic, 0, 0, 0, &[0])
        .unwrap()
        .unwrap();
    apply_all(&mut image, &[MetadataRecord::PartitionChange(change)]);
    let records = image.fence_records(0);
    apply_all(&mut image, &records);
    let p = image.partition(topic, 0).unwrap();
    assert_eq!(
        (p.leader, p.isr.clone()),
        (None, vec![0]),
        "broker 1 is out of sync and may not lead"
    );
    // Broker 0 comes back: it was the last in-sync replica, so it leads again.
    let records = image.unfence_records(0);
    apply_all(&mut image, &records);
    assert_eq!(image.partition(topic, 0).unwrap().leader, Some(0));
}

#[test]
fn unclean_election_takes_a_live_replica_when_the_topic_allows_it() {
    let mut image = cluster(2);
    let topic = create(
        &mut image,
        "t",
        &[vec![0, 1]],
        &[(UNCLEAN_LEADER_ELECTION, "true")],
    );
    let change = image
        .alter_partition(0, topic, 0, 0, 0, &[0])
        .unwrap()
        .unwrap();
    apply_all(&mut image, &[MetadataRecord::PartitionChange(change)]);
    let records = image.fence_records(0);
    apply_all(&mut image, &records);
    let p = image.partition(topic, 0).unwrap();
    assert_eq!((p.leader, p.isr.clone()), (Some(1), vec![1]));
}

#[test]
fn alter_partition_answers_kafkas_error_codes() {
    let mut image = cluster(3);
    let topic = create(&mut image, "t", &[vec![0, 1, 2]], &[]);
    let code = |r: Result<Option<PartitionChange>, ControllerError>| r.unwrap_err().error_code();
    assert_eq!(
        code(image.alter_partition(1, topic, 0, 0, 0, &[1])),
        6,
        "not the leader"
    );
    assert_eq!(
        code(image.alter_partition(0, topic, 0, 3, 0, &[0])),
        74,
        "stale leader epoch"
    );
    assert_eq!(
        code(image.alter_partition(0, topic, 0, 0, 5, &[0])),
        95,
        "stale partition epoch"
    );
    assert_eq!(
        code(image.alter_partition(0, topic, 0, 0, 0, &[1, 2])),
        42,
        "isr without the leader"
    );
    assert_eq!(
        code(image.alter_partition(0, Uuid::from_u128(5), 0, 0, 0, &[0])),
        100
    );
    let change = image
        .alter_partition(0, topic, 0, 0, 0, &[0, 1])
        .unwrap()
        .unwrap();
    apply_all(
        &mut image,
        &[MetadataRecord::PartitionChange(change.clone())],
    );
    let records = image.fence_records(2);
    apply_all(&mut image, &records);
    let p = image.partition(topic, 0).unwrap().clone();
    assert_eq!(
        code(image.alter_partition(0, topic, 0, p.leader_epoch, p.partition_epoch, &[0, 1, 2])),
        107
    );
    // The same change applied twice: the second is computed against a stale epoch.
    assert_eq!(
        image.apply(&MetadataRecord::PartitionChange(change)),
        Err(ApplyError::StalePartitionEpoch {
            expected: 0,
            current: 1
        })
    );
    assert_eq!(
        image.alter_partition(0, topic, 0, p.leader_epoch, p.partition_epoch, &[0, 1]),
        Ok(None)
    );
}

#[test]
fn preferred_election_moves_leadership_back_to_the_first_replica() {
    let mut image = cluster(2);
    let topic = create(&mut image, "t", &[vec![0, 1]], &[]);
    assert_eq!(
        image.elect_leader(topic, 0, ElectionType::Preferred),
        Err(ControllerError::ElectionNotNeeded)
    );
    let records = image.fence_records(0);
    apply_all(&mut image, &records);
    assert_eq!(
        image.elect_leader(topic, 0, ElectionType::Preferred),
        Err(ControllerError::PreferredLeaderNotAvailable)
    );
    let records = image.unfence_records(0);
    apply_all(&mut image, &records);
    let p = image.partition(topic, 0).unwrap().clone();
    let change = image
        .alter_partition(1, topic, 0, p.leader_epoch, p.partition_epoch, &[1, 0])
        .unwrap()
        .unwrap();
    apply_all(&mut image, &[MetadataRecord::PartitionChange(change)]);
    let change = image
        .elect_leader(topic, 0, ElectionType::Preferred)
        .unwrap();
    apply_all(&mut image, &[MetadataRecord::PartitionChange(change)]);
    assert_eq!(image.partition(topic, 0).unwrap().leader, Some(0));
}

#[test]
fn producer_id_blocks_follow_each_other_and_a_stale_block_is_a_no_op() {
    let mut image = MetadataImage::new();
    let block = |first| MetadataRecord::ProducerIdBlock {
        node_id: 1,
        first_producer_id: first,
        size: 1000,
    };
    image.apply(&block(0)).unwrap();
    assert_eq!(image.next_producer_id(), 1000);
    assert!(matches!(
        image.apply(&block(0)),
        Err(ApplyError::ProducerIdBlockOutOfOrder { .. })
    ));
    assert_eq!(image.next_producer_id(), 1000);
    image.apply(&block(5000)).unwrap();
    assert_eq!(image.next_producer_id(), 6000, "a block may skip ids");
}

#[test]
fn a_record_for_an_unknown_topic_or_incarnation_is_a_no_op_with_a_reason() {
    let mut image = cluster(1);
    let before = image.clone();
    let unknown = Uuid::from_u128(77);
    assert!(
        image
            .apply(&MetadataRecord::DeleteTopic { topic_id: unknown })
            .is_err()
    );
    assert!(
        image
            .apply(&MetadataRecord::FenceBroker {
                node_id: 0,
                incarnation_id: unknown
            })
            .is_err()
    );
    assert!(
        image
            .apply(&MetadataRecord::ConfigChange {
                topic_id: unknown,
                name: "a".into(),
                value: None
            })
            .is_err()
    );
    assert_eq!(image, before);
}

// ---- property test: random operations against a model ----

#[derive(Debug, Clone)]
enum Op {
    Register(BrokerId),
    Fence(BrokerId),
    Unfence(BrokerId),
    CreateTopic {
        partitions: i32,
        rf: i32,
        seed: u64,
    },
    AlterIsr {
        topic: usize,
        partition: i32,
        mask: u8,
        stale: bool,
    },
    Elect {
        topic: usize,
        partition: i32,
        unclean: bool,
    },
    SetUnclean {
        topic: usize,
        on: bool,
    },
    Raw {
        topic: usize,
        partition: i32,
        epoch: i32,
        leader: Option<BrokerId>,
        isr: Vec<BrokerId>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let broker = 0..5i32;
    prop_oneof![
        1 => broker.clone().prop_map(Op::Register),
        3 => broker.clone().prop_map(Op::Fence),
        3 => broker.clone().prop_map(Op::Unfence),
        2 => (1..4i32, 1..4i32, any::<u64>()).prop_map(|(partitions, rf, seed)| Op::CreateTopic { partitions, rf, seed }),
        3 => (0..4usize, 0..3i32, any::<u8>(), any::<bool>())
            .prop_map(|(topic, partition, mask, stale)| Op::AlterIsr { topic, partition, mask, stale }),
        1 => (0..4usize, 0..3i32, any::<bool>()).prop_map(|(topic, partition, unclean)| Op::Elect { topic, partition, unclean }),
        1 => (0..4usize, any::<bool>()).prop_map(|(topic, on)| Op::SetUnclean { topic, on }),
        1 => (0..4usize, 0..3i32, 0..6i32, proptest::option::of(broker.clone()), proptest::collection::vec(broker, 0..4))
            .prop_map(|(topic, partition, epoch, leader, isr)| Op::Raw { topic, partition, epoch, leader, isr }),
    ]
}

/// What the model knows independently of the image: which brokers are live and which
/// topics exist.
#[derive(Default)]
struct Model {
    live: BTreeSet<BrokerId>,
    registered: BTreeSet<BrokerId>,
    topics: Vec<Uuid>,
    incarnations: u128,
}

fn check_invariants(
    before: &MetadataImage,
    after: &MetadataImage,
    model: &Model,
) -> Result<(), TestCaseError> {
    let live: BTreeSet<BrokerId> = after
        .live_brokers()
        .map(|b| b.registration.node_id)
        .collect();
    prop_assert_eq!(&live, &model.live);
    prop_assert_eq!(after.topics().count(), model.topics.len());
    for topic in after.topics() {
        for (index, p) in &topic.partitions {
            prop_assert!(
                !p.isr.is_empty() && p.isr.iter().all(|b| p.replicas.contains(b)),
                "isr ⊄ replicas: {:?}",
                p
            );
            match p.leader {
                Some(l) => {
                    prop_assert!(p.isr.contains(&l), "leader outside the isr: {:?}", p);
                    prop_assert!(model.live.contains(&l), "fenced leader {} in {:?}", l, p);
                }
                None => prop_assert!(
                    !p.isr.iter().any(|b| model.live.contains(b)),
                    "leaderless although the isr has a live member: {:?}",
                    p
                ),
            }
            if let Some(old) = before.partition(topic.topic_id, *index) {
                if old != p {
                    prop_assert!(
                        p.partition_epoch > old.partition_epoch,
                        "{:?} -> {:?}",
                        old,
                        p
                    );
                }
                if old.leader != p.leader {
                    prop_assert!(p.leader_epoch > old.leader_epoch, "{:?} -> {:?}", old, p);
                } else {
                    prop_assert_eq!(p.leader_epoch, old.leader_epoch);
                }
            }
        }
    }
    Ok(())
}

fn partition_of(
    image: &MetadataImage,
    model: &Model,
    topic: usize,
    partition: i32,
) -> Option<(Uuid, PartitionState)> {
    let topic_id = *model.topics.get(topic % model.topics.len().max(1))?;
    image
        .partition(topic_id, partition)
        .map(|p| (topic_id, p.clone()))
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut image = MetadataImage::new();
    let mut model = Model::default();
    for op in ops {
        let before = image.clone();
        // Records the controller decided on must all apply; raw records may be refused.
        let mut decided = Vec::new();
        match op {
            Op::Register(b) => {
                model.incarnations += 1;
                decided = image.register_records(registration(b, model.incarnations));
                model.registered.insert(b);
                model.live.remove(&b);
            }
            Op::Fence(b) => {
                decided = image.fence_records(b);
                model.live.remove(&b);
            }
            Op::Unfence(b) => {
                decided = image.unfence_records(b);
                if model.registered.contains(&b) {
                    model.live.insert(b);
                }
            }
            Op::CreateTopic {
                partitions,
                rf,
                seed,
            } => {
                let assigned = image.assign_replicas(0, partitions, rf, seed);
                prop_assert_eq!(assigned.is_ok(), rf as usize <= model.live.len());
                if let Ok(assignment) = assigned {
                    let topic_id = Uuid::from_u128(model.topics.len() as u128 + 1);
                    let name = format!("topic-{}", model.topics.len());
                    decided = image
                        .create_topic_records(&name, topic_id, BTreeMap::new(), &assignment)
                        .unwrap();
                    model.topics.push(topic_id);
                }
            }
            Op::AlterIsr {
                topic,
                partition,
                mask,
                stale,
            } => {
                if let Some((topic_id, p)) = partition_of(&image, &model, topic, partition)
                    && let Some(leader) = p.leader
                {
                    let mut isr: Vec<BrokerId> = p
                        .replicas
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| mask & (1 << i) != 0)
                        .map(|(_, b)| *b)
                        .collect();
                    if !isr.contains(&leader) {
                        isr.insert(0, leader);
                    }
                    let epoch = p.partition_epoch - i32::from(stale);
                    match image.alter_partition(
                        leader,
                        topic_id,
                        partition,
                        p.leader_epoch,
                        epoch,
                        &isr,
                    ) {
                        Ok(change) => {
                            prop_assert!(!stale);
                            decided.extend(change.map(MetadataRecord::PartitionChange));
                        }
                        Err(ControllerError::InvalidUpdateVersion { .. }) => {
                            prop_assert!(stale)
                        }
                        Err(ControllerError::IneligibleReplica(_)) => {}
                        Err(other) => prop_assert!(false, "unexpected {other}"),
                    }
                }
            }
            Op::Elect {
                topic,
                partition,
                unclean,
            } => {
                if let Some((topic_id, _)) = partition_of(&image, &model, topic, partition) {
                    let election = if unclean {
                        ElectionType::Unclean
                    } else {
                        ElectionType::Preferred
                    };
                    if let Ok(change) = image.elect_leader(topic_id, partition, election) {
                        decided.push(MetadataRecord::PartitionChange(change));
                    }
                }
            }
            Op::SetUnclean { topic, on } => {
                if let Some(topic_id) = model.topics.get(topic % model.topics.len().max(1)) {
                    decided.push(MetadataRecord::ConfigChange {
                        topic_id: *topic_id,
                        name: UNCLEAN_LEADER_ELECTION.into(),
                        value: Some(on.to_string()),
                    });
                }
            }
            Op::Raw {
                topic,
                partition,
                epoch,
                leader,
                isr,
            } => {
                let topic_id = model
                    .topics
                    .get(topic % model.topics.len().max(1))
                    .copied()
                    .unwrap_or_default();
                let change = PartitionChange {
                    topic_id,
                    partition,
                    expected_partition_epoch: epoch,
                    leader: leader.map_or(LeaderChange::None, LeaderChange::To),
                    isr: Some(isr),
                    replicas: None,
                };
                let refused = image
                    .apply(&MetadataRecord::PartitionChange(change))
                    .is_err();
                if refused {
                    prop_assert_eq!(&image, &before, "a refused record changed the image");
                }
            }
        }
        for record in &decided {
            let applied = image.apply(record);
            prop_assert!(
                applied.is_ok(),
                "decided {:?} did not apply: {:?}",
                record,
                applied
            );
        }
        check_invariants(&before, &image, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_metadata_operations_keep_the_partition_invariants(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
