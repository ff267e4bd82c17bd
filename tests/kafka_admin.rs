//! Topic administration and the smaller APIs against a real `strand serve`: DeleteTopics,
//! CreatePartitions, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs,
//! DeleteRecords, OffsetForLeaderEpoch, DescribeCluster and InitProducerId.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use strand_tests::Strand;
use strand_tests::kafka::{
    KafkaClient, batch, batch_with_producer, create_topic, fetch, name, now_ms, produce, values,
};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn describe(
    client: &mut KafkaClient,
    resource_type: i8,
    resource: &str,
) -> anyhow::Result<describe_configs_response::DescribeConfigsResult> {
    let resp = client.call(
        4,
        &DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(resource))
                .with_configuration_keys(None),
        ]),
    )?;
    Ok(resp.results[0].clone())
}

fn config_value(
    result: &describe_configs_response::DescribeConfigsResult,
    key: &str,
) -> Option<(String, i8)> {
    result
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .map(|c| {
            (
                c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                c.config_source,
            )
        })
}

fn incremental(
    client: &mut KafkaClient,
    topic: &str,
    changes: &[(&str, i8, Option<&str>)],
) -> anyhow::Result<(i16, Option<String>)> {
    let resp = client.call(
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s(topic))
                .with_configs(
                    changes
                        .iter()
                        .map(|(k, op, v)| {
                            AlterableConfig::default()
                                .with_name(s(k))
                                .with_config_operation(*op)
                                .with_value(v.map(s))
                        })
                        .collect(),
                ),
        ]),
    )?;
    let r = &resp.responses[0];
    Ok((
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    ))
}

#[test]
fn topic_configs_are_described_altered_validated_and_kept_across_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    create_topic(&mut client, "cfg", 1, &[("retention.ms", "60000")])?;

    let described = describe(&mut client, 2, "cfg")?;
    assert_eq!(described.error_code, 0);
    assert_eq!(
        config_value(&described, "retention.ms"),
        Some(("60000".into(), 1))
    );
    assert_eq!(
        config_value(&described, "cleanup.policy"),
        Some(("delete".into(), 5))
    );
    assert_eq!(
        config_value(&described, "max.message.bytes"),
        Some(("1048588".into(), 5))
    );

    assert_eq!(
        incremental(
            &mut client,
            "cfg",
            &[
                ("cleanup.policy", 0, Some("compact")),
                ("retention.ms", 1, None)
            ]
        )?
        .0,
        0
    );
    assert_eq!(
        incremental(&mut client, "cfg", &[("cleanup.policy", 2, Some("delete"))])?.0,
        0
    );
    let (code, message) = incremental(&mut client, "cfg", &[("segment.bytes", 0, Some("-1"))])?;
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert!(message.is_some_and(|m| m.contains("segment.bytes")));
    let (code, _) = incremental(&mut client, "missing", &[("retention.ms", 0, Some("1"))])?;
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());

    let described = describe(&mut client, 2, "cfg")?;
    assert_eq!(
        config_value(&described, "cleanup.policy"),
        Some(("compact,delete".into(), 1))
    );
    assert_eq!(
        config_value(&described, "retention.ms").map(|v| v.1),
        Some(5)
    );

    // AlterConfigs replaces every override.
    let resp = client.call(
        2,
        &AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("cfg"))
                .with_configs(vec![
                    alter_configs_request::AlterableConfig::default()
                        .with_name(s("retention.bytes"))
                        .with_value(Some(s("1000000"))),
                ]),
        ]),
    )?;
    assert_eq!(resp.responses[0].error_code, 0);

    strand.terminate()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let described = describe(&mut client, 2, "cfg")?;
    assert_eq!(
        config_value(&described, "retention.bytes"),
        Some(("1000000".into(), 1))
    );
    assert_eq!(
        config_value(&described, "cleanup.policy").map(|v| v.1),
        Some(5)
    );
    let broker = describe(&mut client, 4, "1")?;
    assert_eq!(broker.error_code, 0);
    assert!(config_value(&broker, "message.max.bytes").is_some());
    assert_eq!(
        describe(&mut client, 2, "missing")?.error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    Ok(())
}

#[test]
fn topics_are_deleted_and_grow_partitions() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    create_topic(&mut client, "grow", 2, &[])?;
    let grow = |client: &mut KafkaClient, count: i32| -> anyhow::Result<i16> {
        let resp = client.call(
            3,
            &CreatePartitionsRequest::default().with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(name("grow"))
                    .with_count(count),
            ]),
        )?;
        Ok(resp.results[0].error_code)
    };
    assert_eq!(grow(&mut client, 5)?, 0);
    assert_eq!(
        grow(&mut client, 3)?,
        ResponseError::InvalidPartitions.code()
    );
    assert_eq!(
        grow(&mut client, -1)?,
        ResponseError::InvalidPartitions.code()
    );
    let p = produce(
        &mut client,
        "grow",
        4,
        batch(
            &[(None, Some(b"new partition"), &[])],
            Compression::None,
            now_ms(),
        ),
    )?;
    assert_eq!(p.error_code, 0);

    let p = produce(
        &mut client,
        "grow",
        0,
        batch(&[(None, Some(b"old"), &[])], Compression::None, now_ms()),
    )?;
    assert_eq!(p.error_code, 0);
    let resp = client.call(
        6,
        &DeleteTopicsRequest::default().with_topics(vec![
            DeleteTopicState::default().with_name(Some(name("grow"))),
            DeleteTopicState::default().with_name(Some(name("absent"))),
            DeleteTopicState::default().with_name(Some(name("__consumer_offsets"))),
        ]),
    )?;
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(
        resp.responses[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_ne!(resp.responses[2].error_code, 0, "internal topics stay");
    assert!(!dir.path().join("grow-0").exists());

    // Recreated under the same name, the topic starts empty with a new id.
    create_topic(&mut client, "grow", 1, &[])?;
    let p = fetch(&mut client, "grow", 0, 0, 0)?;
    assert_eq!(p.high_watermark, 0);
    assert!(values(&p.records)?.is_empty());
    let resp = client.call(
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(name("grow"))),
        ])),
    )?;
    assert_eq!(resp.topics[0].partitions.len(), 1);
    Ok(())
}

#[test]
fn delete_records_moves_the_log_start_offset() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    create_topic(&mut client, "dr", 1, &[])?;
    for i in 0..5 {
        let v = format!("v{i}");
        produce(
            &mut client,
            "dr",
            0,
            batch(
                &[(None, Some(v.as_bytes()), &[])],
                Compression::None,
                now_ms(),
            ),
        )?;
    }
    let resp = client.call(
        2,
        &DeleteRecordsRequest::default().with_topics(vec![
            DeleteRecordsTopic::default()
                .with_name(name("dr"))
                .with_partitions(vec![
                    DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(3),
                ]),
        ]),
    )?;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    assert_eq!(resp.topics[0].partitions[0].low_watermark, 3);
    let p = fetch(&mut client, "dr", 0, 0, 0)?;
    assert_eq!(p.error_code, ResponseError::OffsetOutOfRange.code());
    assert_eq!(p.log_start_offset, 3);
    let p = fetch(&mut client, "dr", 0, 3, 0)?;
    assert_eq!(values(&p.records)?, vec![b"v3".to_vec(), b"v4".to_vec()]);
    Ok(())
}

#[test]
fn leader_epoch_cluster_and_producer_ids_answer_as_one_broker() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let addr = strand.addr("kafka")?;
    let mut client = KafkaClient::connect(addr)?;
    create_topic(&mut client, "ep", 1, &[])?;
    produce(
        &mut client,
        "ep",
        0,
        batch(
            &[(None, Some(b"a"), &[]), (None, Some(b"b"), &[])],
            Compression::None,
            now_ms(),
        ),
    )?;
    let resp = client.call(
        4,
        &OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                OffsetForLeaderTopic::default()
                    .with_topic(name("ep"))
                    .with_partitions(vec![
                        OffsetForLeaderPartition::default()
                            .with_partition(0)
                            .with_current_leader_epoch(0)
                            .with_leader_epoch(0),
                    ]),
            ]),
    )?;
    let p = &resp.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, 0, 2));

    let resp = client.call(1, &DescribeClusterRequest::default().with_endpoint_type(1))?;
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.brokers.len(), 1);
    assert_eq!(resp.brokers[0].port, i32::from(addr.port()));
    assert!(!resp.cluster_id.is_empty());

    // Idempotent producer: a fresh id, a retried batch answered with its first offset, a
    // gap refused, and ids never reused after a restart.
    let init = |client: &mut KafkaClient| -> anyhow::Result<(i64, i16)> {
        let resp = client.call(
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        )?;
        assert_eq!(resp.error_code, 0);
        Ok((resp.producer_id.0, resp.producer_epoch))
    };
    let (pid, epoch) = init(&mut client)?;
    assert_eq!(epoch, 0);
    let idem = |seq: i32, value: &[u8]| {
        batch_with_producer(
            &[(None, Some(value), &[])],
            Compression::None,
            now_ms(),
            pid,
            epoch,
            seq,
        )
    };
    let first = produce(&mut client, "ep", 0, idem(0, b"once"))?;
    assert_eq!(first.error_code, 0);
    let retry = produce(&mut client, "ep", 0, idem(0, b"once"))?;
    assert_eq!(retry.error_code, 0);
    assert_eq!(retry.base_offset, first.base_offset);
    let gap = produce(&mut client, "ep", 0, idem(5, b"gap"))?;
    assert_eq!(
        gap.error_code,
        ResponseError::OutOfOrderSequenceNumber.code()
    );
    let p = fetch(&mut client, "ep", 0, first.base_offset, 0)?;
    assert_eq!(values(&p.records)?, vec![b"once".to_vec()]);

    strand.kill()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let (pid2, _) = init(&mut client)?;
    assert!(pid2 > pid, "{pid2} reuses an id at or below {pid}");
    Ok(())
}

#[test]
fn clean_stop_closes_every_partition_and_restart_serves_them_all() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    assert_eq!(
        create_topic(&mut client, "wide", 64, &[])?.topics[0].error_code,
        0
    );
    for p in 0..64 {
        let value = format!("p{p}");
        let records = batch(
            &[(None, Some(value.as_bytes()), &[])],
            Compression::None,
            now_ms(),
        );
        assert_eq!(produce(&mut client, "wide", p, records)?.error_code, 0);
    }
    assert!(strand.terminate()?.success());
    // Every partition was closed (fsynced, clean-shutdown snapshot written), which lets
    // the next start skip its recovery work.
    for p in 0..64 {
        let snapshot = dir.path().join(format!("wide-{p}")).join("clean-shutdown");
        assert!(snapshot.is_file(), "{} missing", snapshot.display());
    }
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    for p in 0..64 {
        let fetched = fetch(&mut client, "wide", p, 0, 0)?;
        assert_eq!(fetched.high_watermark, 1);
        assert_eq!(
            values(&fetched.records)?,
            vec![format!("p{p}").into_bytes()]
        );
    }
    Ok(())
}
