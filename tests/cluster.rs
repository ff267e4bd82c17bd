//! strand as a cluster (issue 11), proven on real processes: nodes started on loopback by
//! the harness of `strand_tests::cluster`, each behind fault-injecting proxies. Three nodes
//! form one cluster; the active controller's death elects another and metadata changes
//! again; a node cut off from the others is fenced and comes back once healed.
//! `STRAND_STRESS=1` repeats the failures more times.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{CreateTopicsResponse, DeleteTopicsRequest};
use kafka_protocol::records::Compression;
use strand_tests::cluster::{CLUSTER_TIMEOUT, Cluster, broker_ids};
use strand_tests::kafka::{
    batch, create_replicated_topic, create_topic, fetch, name, now_ms, produce, produce_request,
    values,
};

fn stress() -> bool {
    std::env::var_os("STRAND_STRESS").is_some_and(|v| v == "1")
}

/// The error code CreateTopics gave `topic` (0 when it was created).
fn topic_error(response: &CreateTopicsResponse) -> i16 {
    response.topics.first().map_or(-1, |t| t.error_code)
}

/// Creates `topic` through node `via`, retrying what a client retries while the cluster
/// has no active controller (NOT_CONTROLLER, REQUEST_TIMED_OUT, a refused connection),
/// until it exists.
fn create_topic_in_cluster(
    cluster: &Cluster,
    via: i32,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
) -> anyhow::Result<()> {
    cluster.wait_for(
        &format!("{topic} is created through node {via}"),
        CLUSTER_TIMEOUT,
        |c| {
            let mut client = c.client(via)?;
            let code = topic_error(&create_replicated_topic(
                &mut client,
                topic,
                partitions,
                replication_factor,
                &[],
            )?);
            if code == 0 || code == ResponseError::TopicAlreadyExists.code() {
                Ok(Some(()))
            } else {
                anyhow::bail!("CreateTopics answered error {code}")
            }
        },
    )
}

#[test]
fn one_node_cluster_serves_through_its_proxy_and_keeps_data_across_a_kill() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(1)?;
    assert_eq!(
        cluster.wait_for_agreement()?,
        1,
        "a lone node is its own controller"
    );
    let metadata = cluster.metadata(1, Some(&[]))?;
    let advertised = cluster.kafka_addr(1)?;
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(
        (metadata.brokers[0].host.as_str(), metadata.brokers[0].port),
        (
            advertised.ip().to_string().as_str(),
            i32::from(advertised.port())
        ),
        "the advertised address is the proxy's"
    );

    let mut client = cluster.client(1)?;
    assert_eq!(topic_error(&create_topic(&mut client, "kept", 1, &[])?), 0);
    let answer = produce(
        &mut client,
        "kept",
        0,
        batch(
            &[(None, Some(b"before the crash"), &[])],
            Compression::None,
            now_ms(),
        ),
    )?;
    assert_eq!((answer.error_code, answer.base_offset), (0, 0));

    // A cut proxy ends the client's connection; once healed, clients get through again.
    cluster.kafka_proxy(1)?.cut();
    assert!(
        fetch(&mut client, "kept", 0, 0, 0).is_err(),
        "a request passed a cut proxy"
    );
    cluster.kafka_proxy(1)?.heal();

    let old_kafka = cluster.direct_kafka_addr(1)?;
    cluster.kill(1)?;
    cluster.restart(1)?;
    assert_eq!(
        cluster.direct_kafka_addr(1)?,
        old_kafka,
        "restarted on its ports"
    );
    assert_eq!(cluster.wait_for_leader(1, "kept", 0)?, 1);
    let partition = cluster.wait_for_isr(1, "kept", 0, &[1])?;
    assert_eq!((partition.replicas, partition.offline), (vec![1], vec![]));
    let mut client = cluster.client(1)?;
    let data = fetch(&mut client, "kept", 0, 0, 0)?;
    assert_eq!(values(&data.records)?, vec![b"before the crash".to_vec()]);
    cluster.shutdown()
}

#[test]
fn three_nodes_form_one_cluster_with_one_controller() -> anyhow::Result<()> {
    let cluster = Cluster::start(3)?;
    let controller = cluster.wait_for_agreement()?;
    assert!((1..=3).contains(&controller), "controller {controller}");
    let mut cluster_ids = Vec::new();
    for id in cluster.node_ids() {
        let metadata = cluster.metadata(id, Some(&[]))?;
        assert_eq!(broker_ids(&metadata), vec![1, 2, 3], "node {id}");
        for broker in &metadata.brokers {
            let advertised = cluster.kafka_addr(broker.node_id.0)?;
            assert_eq!(broker.port, i32::from(advertised.port()), "node {id}");
        }
        cluster_ids.push(metadata.cluster_id.map(|c| c.to_string()));
    }
    assert!(cluster_ids[0].is_some());
    assert!(
        cluster_ids.iter().all(|c| *c == cluster_ids[0]),
        "{cluster_ids:?}"
    );

    topics_go_through_the_metadata_log(&cluster)?;
    cluster.shutdown()
}

/// The partitions of `topic` whose log directory exists in node `id`'s data directory.
fn partitions_on_disk(cluster: &Cluster, id: i32, topic: &str) -> anyhow::Result<Vec<i32>> {
    let mut held = Vec::new();
    for entry in std::fs::read_dir(cluster.data_dir(id)?)? {
        let file_name = entry?.file_name();
        let file_name = file_name.to_string_lossy();
        if let Some(p) = file_name
            .strip_prefix(topic)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|p| p.parse::<i32>().ok())
        {
            held.push(p);
        }
    }
    held.sort_unstable();
    Ok(held)
}

/// Topics created through any node are the cluster's: every node's Metadata describes
/// them alike (replicas, ISR, one leader per partition), each node holds the logs of the
/// partitions assigned to it and no others, and a deletion through any node removes them
/// everywhere.
fn topics_go_through_the_metadata_log(cluster: &Cluster) -> anyhow::Result<()> {
    create_topic_in_cluster(cluster, 2, "replicated", 3, 3)?;
    create_topic_in_cluster(cluster, 1, "spread", 3, 1)?;
    let mut assigned: std::collections::BTreeMap<i32, Vec<i32>> = Default::default();
    for id in cluster.node_ids() {
        for p in 0..3 {
            let replicated = cluster.wait_for_isr(id, "replicated", p, &[1, 2, 3])?;
            let mut replicas = replicated.replicas.clone();
            replicas.sort_unstable();
            assert_eq!(replicas, vec![1, 2, 3], "node {id}, replicated-{p}");
            let spread = cluster.wait_for(
                &format!("node {id} knows spread-{p}"),
                CLUSTER_TIMEOUT,
                |c| c.partition(id, "spread", p),
            )?;
            assert_eq!(spread.replicas.len(), 1, "node {id}, spread-{p}");
            assert_eq!(spread.leader, spread.replicas[0], "node {id}");
            let owner = assigned.entry(p).or_insert_with(|| spread.replicas.clone());
            assert_eq!(&spread.replicas, owner, "node {id} disagrees on spread-{p}");
        }
    }
    for id in cluster.node_ids() {
        cluster.wait_for(
            &format!("node {id} holds its partitions"),
            CLUSTER_TIMEOUT,
            |c| {
                let mine: Vec<i32> = assigned
                    .iter()
                    .filter(|(_, r)| r.contains(&id))
                    .map(|(p, _)| *p)
                    .collect();
                let ok = partitions_on_disk(c, id, "replicated")? == vec![0, 1, 2]
                    && partitions_on_disk(c, id, "spread")? == mine;
                Ok(ok.then_some(()))
            },
        )?;
    }

    // Produce goes to a partition's leader; every other node answers
    // NOT_LEADER_OR_FOLLOWER, whether it follows the partition or holds none of it.
    let produce_acks_1 = |id: i32, topic: &str, p: i32| -> anyhow::Result<i16> {
        let mut client = cluster.client(id)?;
        let records = batch(&[(None, Some(b"v"), &[])], Compression::None, now_ms());
        let resp = client.call(9, &produce_request(topic, p, records, 1))?;
        Ok(resp.responses[0].partition_responses[0].error_code)
    };
    for (topic, p) in [("replicated", 0), ("spread", 0), ("spread", 1)] {
        let leader = cluster.wait_for_leader(1, topic, p)?;
        assert_eq!(
            produce_acks_1(leader, topic, p)?,
            0,
            "{topic}-{p} on its leader"
        );
        for id in cluster.node_ids().into_iter().filter(|&id| id != leader) {
            assert_eq!(
                produce_acks_1(id, topic, p)?,
                ResponseError::NotLeaderOrFollower.code(),
                "{topic}-{p} on node {id}, not its leader {leader}"
            );
        }
    }

    let mut client = cluster.client(3)?;
    assert_eq!(
        topic_error(&create_replicated_topic(&mut client, "spread", 1, 1, &[])?),
        ResponseError::TopicAlreadyExists.code(),
        "a topic created through another node exists here too"
    );
    assert_eq!(
        topic_error(&create_replicated_topic(
            &mut client,
            "too-many",
            1,
            4,
            &[]
        )?),
        ResponseError::InvalidReplicationFactor.code()
    );

    let deleted = client.call(
        6,
        &DeleteTopicsRequest::default().with_topics(vec![
            DeleteTopicState::default().with_name(Some(name("spread"))),
        ]),
    )?;
    assert_eq!(deleted.responses[0].error_code, 0);
    for id in cluster.node_ids() {
        cluster.wait_for(&format!("node {id} forgets spread"), CLUSTER_TIMEOUT, |c| {
            let metadata = c.metadata(id, Some(&["spread"]))?;
            let gone = metadata.topics.first().map(|t| t.error_code)
                == Some(ResponseError::UnknownTopicOrPartition.code());
            Ok((gone && partitions_on_disk(c, id, "spread")?.is_empty()).then_some(()))
        })?;
    }
    Ok(())
}

#[test]
fn killing_the_active_controller_elects_another_and_topics_can_be_created_again()
-> anyhow::Result<()> {
    let mut cluster = Cluster::start(3)?;
    let rounds = if stress() { 5 } else { 1 };
    for round in 0..rounds {
        let controller = cluster.wait_for_agreement()?;
        cluster.kill(controller)?;
        let survivor = cluster
            .node_ids()
            .into_iter()
            .find(|&id| id != controller)
            .unwrap_or(1);
        let elected = cluster.wait_for(
            &format!("a controller other than node {controller} is elected"),
            CLUSTER_TIMEOUT,
            |c| {
                let named = c.metadata(survivor, Some(&[]))?.controller_id.0;
                Ok((named >= 0 && named != controller).then_some(named))
            },
        )?;
        assert_ne!(elected, controller);
        // Replicas go to live brokers: the killed one is until its session times out.
        let others: Vec<i32> = cluster
            .node_ids()
            .into_iter()
            .filter(|&id| id != controller)
            .collect();
        cluster.wait_for_brokers(survivor, &others)?;
        let topic = format!("after-failover-{round}");
        create_topic_in_cluster(&cluster, survivor, &topic, 1, -1)?;
        let leader = cluster.wait_for_leader(survivor, &topic, 0)?;
        assert_ne!(leader, controller, "a dead node leads {topic}");

        cluster.restart(controller)?;
        cluster.wait_for_agreement()?;
    }
    cluster.shutdown()
}

#[test]
fn an_isolated_node_is_fenced_and_returns_after_heal() -> anyhow::Result<()> {
    let cluster = Cluster::start(3)?;
    // First a follower of the quorum; under stress also the active controller of the time,
    // silently (packets vanish instead of connections failing).
    let rounds = if stress() { 2 } else { 1 };
    for round in 0..rounds {
        let controller = cluster.wait_for_agreement()?;
        let victim = if round == 0 {
            (controller % 3) + 1
        } else {
            controller
        };
        let others: Vec<i32> = cluster
            .node_ids()
            .into_iter()
            .filter(|&id| id != victim)
            .collect();
        if round == 0 {
            cluster.isolate(victim)?;
        } else {
            cluster.isolate_silently(victim)?;
        }
        for &id in &others {
            cluster.wait_for_brokers(id, &others)?;
        }
        // The majority fenced it, so it has an active controller that is not the victim.
        let controller = cluster.wait_for_controller(others[0])?;
        assert_ne!(controller, victim, "the isolated node still controls");

        cluster.heal(victim)?;
        // Back in touch, it heartbeats again, is unfenced and sees every broker.
        cluster.wait_for_agreement()?;
    }
    cluster.shutdown()
}

/// Records acknowledged with `acks=all` are on every in-sync replica: once the partition's
/// leader is killed, a new leader is elected from the ISR and serves every one of them, and
/// takes `acks=all` writes itself.
#[test]
fn acknowledged_records_survive_the_death_of_their_leader() -> anyhow::Result<()> {
    let mut cluster = Cluster::start(3)?;
    cluster.wait_for_agreement()?;
    create_topic_in_cluster(&cluster, 1, "durable", 1, 3)?;
    cluster.wait_for_isr(1, "durable", 0, &[1, 2, 3])?;
    let rounds = if stress() { 3 } else { 1 };
    let mut acknowledged: Vec<Vec<u8>> = Vec::new();
    for round in 0..rounds {
        let leader = cluster.wait_for_leader(1, "durable", 0)?;
        let mut client = cluster.client(leader)?;
        for i in 0..5 {
            let value = format!("round {round} record {i}").into_bytes();
            let answer = produce(
                &mut client,
                "durable",
                0,
                batch(&[(None, Some(&value), &[])], Compression::None, now_ms()),
            )?;
            assert_eq!(answer.error_code, 0, "acks=all to leader {leader}");
            acknowledged.push(value);
        }
        cluster.kill(leader)?;
        let survivor = cluster
            .node_ids()
            .into_iter()
            .find(|&id| id != leader)
            .unwrap_or(1);
        let elected = cluster.wait_for(
            &format!("durable-0 gets a leader other than the killed node {leader}"),
            CLUSTER_TIMEOUT,
            |c| {
                Ok(c.partition(survivor, "durable", 0)?
                    .map(|p| p.leader)
                    .filter(|&l| l >= 0 && l != leader))
            },
        )?;
        let mut client = cluster.client(elected)?;
        let read = cluster.wait_for(
            &format!("node {elected} serves every acknowledged record"),
            CLUSTER_TIMEOUT,
            |_| {
                let data = fetch(&mut client, "durable", 0, 0, 0)?;
                let read = values(&data.records)?;
                Ok((data.error_code == 0 && read.len() >= acknowledged.len()).then_some(read))
            },
        )?;
        assert_eq!(read, acknowledged, "after the death of leader {leader}");
        cluster.restart(leader)?;
        cluster.wait_for_agreement()?;
    }
    cluster.shutdown()
}
