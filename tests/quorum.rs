//! Several `strand serve` processes on loopback forming one cluster through their shared
//! `--controller-quorum-voters`: every node's Metadata lists every live broker and the same
//! active controller, producer ids from different brokers never collide, and when the
//! controller's process is killed the others elect a new one and fence the lost broker.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::bail;
use kafka_protocol::messages::{InitProducerIdRequest, MetadataRequest, ProducerId};
use strand_tests::Strand;
use strand_tests::kafka::KafkaClient;
use tempfile::TempDir;

/// How long a cluster may take to agree on something (elections, fencing after the 9 s
/// broker session timeout).
const AGREE: Duration = Duration::from_secs(60);

/// Free loopback ports for the controller listeners (bound, read, released).
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()?)
}

/// `n` nodes, ids 1..=n, each a broker and a controller voter.
fn start_cluster(n: usize) -> anyhow::Result<(Vec<TempDir>, Vec<Option<Strand>>)> {
    let ports = free_ports(n)?;
    let voters = ports
        .iter()
        .enumerate()
        .map(|(i, port)| format!("{}@127.0.0.1:{port}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut dirs = Vec::new();
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let dir = tempfile::tempdir()?;
        let id = (i + 1).to_string();
        let controller = format!("127.0.0.1:{port}");
        nodes.push(Some(Strand::start(
            dir.path(),
            &[
                "--node-id",
                &id,
                "--controller-addr",
                &controller,
                "--controller-quorum-voters",
                &voters,
            ],
        )?));
        dirs.push(dir);
    }
    Ok((dirs, nodes))
}

/// The broker ids, controller id and cluster id a node's Metadata names.
fn view(node: &Strand) -> anyhow::Result<(BTreeSet<i32>, i32, String)> {
    let mut client = KafkaClient::connect(node.addr("kafka")?)?;
    let metadata = client.call(12, &MetadataRequest::default().with_topics(Some(vec![])))?;
    Ok((
        metadata.brokers.iter().map(|b| b.node_id.0).collect(),
        metadata.controller_id.0,
        metadata
            .cluster_id
            .map(|c| c.to_string())
            .unwrap_or_default(),
    ))
}

/// Waits until every running node's Metadata lists exactly `brokers` and one controller,
/// the same on all, that is not `not`; returns it.
fn wait_for_agreement(
    nodes: &[Option<Strand>],
    brokers: &BTreeSet<i32>,
    not: i32,
) -> anyhow::Result<i32> {
    let deadline = Instant::now() + AGREE;
    loop {
        let views = nodes
            .iter()
            .flatten()
            .map(view)
            .collect::<anyhow::Result<Vec<_>>>();
        if let Ok(views) = &views {
            let controller = views[0].1;
            if controller >= 0
                && controller != not
                && views
                    .iter()
                    .all(|(b, c, id)| b == brokers && *c == controller && *id == views[0].2)
            {
                return Ok(controller);
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the nodes did not agree on brokers {brokers:?} and a controller other than {not}: {views:?}"
            );
        }
        // Elections and fencing are timed by the servers; ask again shortly.
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn three_nodes_form_one_cluster_and_elect_a_new_controller_when_it_is_killed() -> anyhow::Result<()>
{
    let (_dirs, mut nodes) = start_cluster(3)?;
    let all: BTreeSet<i32> = [1, 2, 3].into();
    let controller = wait_for_agreement(&nodes, &all, -1)?;
    let cluster_id = view(nodes[0].as_ref().unwrap())?.2;
    assert!(!cluster_id.is_empty());

    // Producer ids come from each broker's block of the controller's (asked for through
    // the active controller by the others): no two brokers give the same id.
    let mut given = BTreeSet::new();
    for node in nodes.iter().flatten() {
        let mut client = KafkaClient::connect(node.addr("kafka")?)?;
        for _ in 0..2 {
            let answer = client.call(
                4,
                &InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60_000)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            )?;
            assert_eq!(answer.error_code, 0);
            assert!(
                given.insert(answer.producer_id.0),
                "producer id {} given twice",
                answer.producer_id.0
            );
        }
    }

    let killed = nodes[usize::try_from(controller)? - 1]
        .take()
        .expect("the controller's node is running");
    killed.kill()?;
    let survivors: BTreeSet<i32> = all.iter().copied().filter(|b| *b != controller).collect();
    let new_controller = wait_for_agreement(&nodes, &survivors, controller)?;
    assert!(survivors.contains(&new_controller));
    for node in nodes.iter().flatten() {
        assert_eq!(view(node)?.2, cluster_id, "the cluster id stays");
    }
    for node in nodes.into_iter().flatten() {
        assert!(node.terminate()?.success());
    }
    Ok(())
}
