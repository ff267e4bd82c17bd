//! A node's identity and its cluster of one, through real `strand serve` processes: the
//! data directory's `meta.properties`, the refusals at start (another node id, another
//! cluster id, a voter list that leaves this node out or names one id twice), a data
//! directory of strand before clusters opening with its cluster id and data, and a node
//! alone answering Metadata and DescribeCluster as its own controller.

use kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafka_protocol::messages::{BrokerId, InitProducerIdRequest, MetadataRequest, ProducerId};
use kafka_protocol::records::Compression;
use strand_tests::kafka::{KafkaClient, batch, create_topic, fetch, now_ms, produce, values};
use strand_tests::{Strand, run_strand};

/// `strand serve` over `data` with free ports and `extra` flags, expected to fail; its
/// stderr.
fn refused(data: &std::path::Path, extra: &[&str]) -> anyhow::Result<String> {
    let data = data.to_string_lossy().into_owned();
    let mut args = vec!["serve", "--data-dir", &data];
    for flag in [
        "--kafka-addr",
        "--registry-addr",
        "--admin-addr",
        "--controller-addr",
    ] {
        if !extra.contains(&flag) {
            args.extend([flag, "127.0.0.1:0"]);
        }
    }
    args.extend(extra);
    let out = run_strand(&args, &[])?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    anyhow::ensure!(!out.status.success(), "started: {stderr}");
    Ok(stderr)
}

#[test]
fn a_data_directory_of_another_node_id_is_refused_naming_both() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let first = Strand::start(dir.path(), &["--node-id", "1"])?;
    assert!(first.terminate()?.success());
    let text = std::fs::read_to_string(dir.path().join("meta.properties"))?;
    assert!(text.contains("version=1\n"), "{text}");
    assert!(text.contains("node.id=1\n"), "{text}");
    assert!(text.contains("cluster.id="), "{text}");

    let stderr = refused(dir.path(), &["--node-id", "2"])?;
    assert!(
        stderr.contains("belongs to node.id 1") && stderr.contains("node.id 2"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn a_data_directory_of_another_cluster_is_refused_naming_both() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let first = Strand::start(dir.path(), &["--cluster-id", "first-cluster"])?;
    assert!(first.terminate()?.success());
    let stderr = refused(dir.path(), &["--cluster-id", "second-cluster"])?;
    assert!(
        stderr.contains("first-cluster") && stderr.contains("second-cluster"),
        "{stderr}"
    );
    // The same cluster id, or none, starts.
    let again = Strand::start(dir.path(), &["--cluster-id", "first-cluster"])?;
    assert!(again.terminate()?.success());
    Ok(())
}

#[test]
fn a_voter_list_without_this_node_or_naming_an_id_twice_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let stderr = refused(
        dir.path(),
        &[
            "--node-id",
            "3",
            "--controller-quorum-voters",
            "1@127.0.0.1:19093,2@127.0.0.1:19094",
        ],
    )?;
    assert!(
        stderr.contains("node.id 3 is not in controller.quorum.voters"),
        "{stderr}"
    );
    let stderr = refused(
        dir.path(),
        &[
            "--controller-quorum-voters",
            "1@127.0.0.1:19093,1@127.0.0.1:19094",
        ],
    )?;
    assert!(stderr.contains("names node 1 twice"), "{stderr}");
    // Neither wrote an identity: the directory is still free for any node.
    assert!(!dir.path().join("meta.properties").exists());
    Ok(())
}

/// The cluster id, broker ids and controller id a Metadata v12 answer names.
fn cluster_view(client: &mut KafkaClient) -> anyhow::Result<(String, Vec<i32>, i32)> {
    let metadata = client.call(12, &MetadataRequest::default().with_topics(Some(vec![])))?;
    let mut brokers: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    brokers.sort();
    let cluster_id = metadata
        .cluster_id
        .map(|c| c.to_string())
        .unwrap_or_default();
    Ok((cluster_id, brokers, metadata.controller_id.0))
}

#[test]
fn a_node_alone_is_its_own_controller_in_metadata_and_describe_cluster() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &["--node-id", "7"])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let metadata = client.call(12, &MetadataRequest::default().with_topics(Some(vec![])))?;
    assert_eq!(metadata.controller_id, BrokerId(7));
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(metadata.brokers[0].node_id, BrokerId(7));
    assert_eq!(
        metadata.brokers[0].port,
        i32::from(strand.addr("kafka")?.port())
    );

    let described = client.call(1, &DescribeClusterRequest::default().with_endpoint_type(1))?;
    assert_eq!(described.error_code, 0);
    assert_eq!(described.controller_id, BrokerId(7));
    let ids: Vec<i32> = described.brokers.iter().map(|b| b.broker_id.0).collect();
    assert_eq!(ids, vec![7]);
    let meta = std::fs::read_to_string(dir.path().join("meta.properties"))?;
    assert!(
        meta.contains(&format!("cluster.id={}\n", described.cluster_id)),
        "{meta}"
    );
    assert!(strand.terminate()?.success());
    Ok(())
}

#[test]
fn a_data_directory_of_strand_before_clusters_keeps_its_cluster_id_and_data() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let created = create_topic(&mut client, "kept", 2, &[("retention.ms", "123456789")])?;
    assert_eq!(created.topics[0].error_code, 0);
    let records = batch(
        &[(None, Some(b"before".as_slice()), &[])],
        Compression::None,
        now_ms(),
    );
    let produced = produce(&mut client, "kept", 1, records)?;
    assert_eq!(produced.error_code, 0);
    assert!(strand.terminate()?.success());

    // What strand wrote before clusters: the topics' files and logs, the cluster id in
    // cluster/cluster.json, and no meta.properties nor controller directory.
    std::fs::remove_file(dir.path().join("meta.properties"))?;
    std::fs::remove_dir_all(dir.path().join("controller"))?;
    std::fs::write(
        dir.path().join("cluster/cluster.json"),
        br#"{"cluster_id":"Old-Single-Node_Id"}"#,
    )?;
    // It had handed out producer ids below 7000.
    std::fs::write(dir.path().join("cluster/producer-ids"), b"7000")?;

    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let (cluster_id, brokers, controller) = cluster_view(&mut client)?;
    assert_eq!(cluster_id, "Old-Single-Node_Id");
    assert_eq!((brokers, controller), (vec![1], 1));
    let fetched = fetch(&mut client, "kept", 1, 0, 0)?;
    assert_eq!(values(&fetched.records)?, vec![b"before".to_vec()]);
    let meta = std::fs::read_to_string(dir.path().join("meta.properties"))?;
    assert!(meta.contains("cluster.id=Old-Single-Node_Id\n"), "{meta}");
    let id = new_producer_id(&mut client)?;
    assert!(
        id >= 7000,
        "producer id {id} may have been given before the upgrade"
    );
    assert!(strand.terminate()?.success());
    Ok(())
}

/// A new idempotent producer's id (InitProducerId v4).
fn new_producer_id(client: &mut KafkaClient) -> anyhow::Result<i64> {
    let answer = client.call(
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    )?;
    anyhow::ensure!(answer.error_code == 0, "error {}", answer.error_code);
    Ok(answer.producer_id.0)
}

#[test]
fn producer_ids_are_never_given_twice_across_restarts() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut given = std::collections::BTreeSet::new();
    for _ in 0..2 {
        let strand = Strand::start(dir.path(), &[])?;
        let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
        for _ in 0..3 {
            let id = new_producer_id(&mut client)?;
            assert!(given.insert(id), "producer id {id} given twice");
        }
        assert!(strand.terminate()?.success());
    }
    Ok(())
}
