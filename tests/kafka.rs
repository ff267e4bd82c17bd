//! The Kafka protocol against a real `strand serve`, spoken over raw TCP with the
//! `kafka-protocol` crate's encoders: ApiVersions, Metadata with auto-creation, Produce
//! and Fetch with every acks mode, long-poll fetch, ListOffsets, topic administration,
//! durability across SIGKILL, and bad input that must not hurt other clients.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use strand_tests::Strand;
use strand_tests::kafka::{
    KafkaClient, batch, create_topic, decode_records, fetch, fetch_request, name, now_ms, produce,
    produce_request, values,
};

#[test]
fn api_versions_lists_served_apis_and_answers_too_new_version_with_v0_error() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let resp = client.call(
        3,
        &ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strand-tests"))
            .with_client_software_version(StrBytes::from_static_str("1")),
    )?;
    assert_eq!(resp.error_code, 0);
    let range = |key: ApiKey| {
        resp.api_keys
            .iter()
            .find(|k| k.api_key == key as i16)
            .map(|k| (k.min_version, k.max_version))
    };
    assert_eq!(range(ApiKey::ApiVersions), Some((0, 4)));
    assert!(range(ApiKey::Produce).is_some_and(|(min, max)| min <= 3 && max >= 9));
    assert!(range(ApiKey::Fetch).is_some_and(|(min, max)| min <= 4 && max >= 12));
    assert!(range(ApiKey::Metadata).is_some());
    assert_eq!(
        range(ApiKey::SaslHandshake),
        None,
        "not served, not advertised"
    );
    assert!(resp.supported_features.is_empty());
    assert_eq!(resp.finalized_features_epoch, -1);

    // A version newer than ours: a v0 response (header v0) with UNSUPPORTED_VERSION and
    // ApiVersions' own range, so the client can retry.
    let mut raw = Vec::new();
    raw.extend_from_slice(&18i16.to_be_bytes());
    raw.extend_from_slice(&99i16.to_be_bytes());
    raw.extend_from_slice(&77i32.to_be_bytes());
    raw.extend_from_slice(&(-1i16).to_be_bytes());
    raw.push(0);
    let mut frame = (raw.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&raw);
    client.stream().write_all(&frame)?;
    let (correlation_id, mut body) = client.receive_frame(0)?;
    assert_eq!(correlation_id, 77);
    let resp = <ApiVersionsResponse as kafka_protocol::protocol::Decodable>::decode(&mut body, 0)?;
    assert_eq!(resp.error_code, ResponseError::UnsupportedVersion.code());
    assert_eq!(resp.api_keys.len(), 1);
    assert_eq!(resp.api_keys[0].api_key, ApiKey::ApiVersions as i16);

    // The connection still serves requests after that.
    let resp = client.call(0, &ApiVersionsRequest::default())?;
    assert_eq!(resp.error_code, 0);
    Ok(())
}

#[test]
fn metadata_auto_creates_topics_and_reports_the_broker() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &["--num-partitions", "3"])?;
    let addr = strand.addr("kafka")?;
    let mut client = KafkaClient::connect(addr)?;
    let topics = |names: &[&str]| {
        Some(
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(name(n))))
                .collect(),
        )
    };
    let resp = client.call(
        12,
        &MetadataRequest::default()
            .with_topics(topics(&["orders", "bad/name"]))
            .with_allow_auto_topic_creation(true),
    )?;
    assert_eq!(resp.brokers.len(), 1);
    assert_eq!(resp.brokers[0].host.as_str(), addr.ip().to_string());
    assert_eq!(resp.brokers[0].port, i32::from(addr.port()));
    assert_eq!(resp.controller_id, resp.brokers[0].node_id);
    let orders = &resp.topics[0];
    assert_eq!(orders.error_code, 0);
    assert_eq!(orders.partitions.len(), 3);
    assert!(!orders.topic_id.is_nil());
    assert_eq!(
        resp.topics[1].error_code,
        ResponseError::InvalidTopicException.code()
    );

    // Not created when the client forbids it.
    let resp = client.call(
        12,
        &MetadataRequest::default()
            .with_topics(topics(&["never"]))
            .with_allow_auto_topic_creation(false),
    )?;
    assert_eq!(
        resp.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );

    // All topics: the created one and the internal ones, flagged.
    let resp = client.call(12, &MetadataRequest::default().with_topics(None))?;
    let find = |n: &str| {
        resp.topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|x| x.as_str() == n))
    };
    assert!(find("orders").is_some());
    assert!(find("never").is_none());
    assert!(find("__consumer_offsets").is_some_and(|t| t.is_internal));
    assert!(find("_schemas").is_some());

    // The topic id survives a restart.
    let id = orders.topic_id;
    drop(client);
    strand.terminate()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let resp = client.call(
        12,
        &MetadataRequest::default().with_topics(topics(&["orders"])),
    )?;
    assert_eq!(resp.topics[0].topic_id, id);
    assert_eq!(resp.topics[0].partitions.len(), 3);
    Ok(())
}

#[test]
fn produce_and_fetch_round_trip_with_every_acks_mode_and_codec() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    create_topic(&mut client, "rt", 2, &[])?;

    let mut expected = Vec::new();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for (i, codec) in codecs.into_iter().enumerate() {
        let value = format!("value-{i}");
        let records = batch(
            &[(Some(b"k"), Some(value.as_bytes()), &[("h", b"1")])],
            codec,
            now_ms(),
        );
        let acks = [1i16, -1][i % 2];
        let resp = client.call(9, &produce_request("rt", 1, records, acks))?;
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "{codec:?}");
        assert_eq!(p.base_offset, i as i64);
        expected.push(value.into_bytes());
    }
    // acks=0: no response; the next request's response comes next.
    let records = batch(
        &[(None, Some(b"fire-and-forget"), &[])],
        Compression::None,
        now_ms(),
    );
    client.send(9, &produce_request("rt", 1, records, 0))?;
    client.forget_oldest();
    expected.push(b"fire-and-forget".to_vec());
    let resp = client.call(4, &ApiVersionsRequest::default())?;
    assert_eq!(resp.error_code, 0);

    let p = fetch(&mut client, "rt", 1, 0, 0)?;
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 6);
    assert_eq!(values(&p.records)?, expected);
    let records = decode_records(&p.records.clone().unwrap_or_default())?;
    assert_eq!(records[0].headers.len(), 1);
    assert_eq!(records[5].key, None);

    // Fetching from the middle returns from the batch holding the offset.
    let p = fetch(&mut client, "rt", 1, 3, 0)?;
    assert_eq!(values(&p.records)?[0], b"value-3");
    // Out of range.
    let p = fetch(&mut client, "rt", 1, 100, 0)?;
    assert_eq!(p.error_code, ResponseError::OffsetOutOfRange.code());
    // Unknown partition.
    let p = fetch(&mut client, "rt", 7, 0, 0)?;
    assert_eq!(p.error_code, ResponseError::UnknownTopicOrPartition.code());
    let p = produce(
        &mut client,
        "nope",
        0,
        batch(&[(None, Some(b"x"), &[])], Compression::None, now_ms()),
    )?;
    assert_eq!(p.error_code, ResponseError::UnknownTopicOrPartition.code());
    Ok(())
}

#[test]
fn produce_refuses_oversized_and_corrupt_batches_per_partition() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    create_topic(&mut client, "small", 1, &[("max.message.bytes", "1000")])?;
    let big = vec![7u8; 2000];
    let p = produce(
        &mut client,
        "small",
        0,
        batch(&[(None, Some(&big), &[])], Compression::None, now_ms()),
    )?;
    assert_eq!(p.error_code, ResponseError::MessageTooLarge.code());

    let mut corrupt = batch(&[(None, Some(b"ok"), &[])], Compression::None, now_ms()).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let p = produce(&mut client, "small", 0, Bytes::from(corrupt))?;
    assert_eq!(p.error_code, ResponseError::CorruptMessage.code());

    let p = produce(
        &mut client,
        "small",
        0,
        batch(&[(None, Some(b"fine"), &[])], Compression::None, now_ms()),
    )?;
    assert_eq!(p.error_code, 0);
    assert_eq!(
        p.base_offset, 0,
        "nothing of the refused batches was stored"
    );
    Ok(())
}

#[test]
fn fetch_waits_for_data_and_wakes_on_produce() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let addr = strand.addr("kafka")?;
    let mut client = KafkaClient::connect(addr)?;
    create_topic(&mut client, "wait", 1, &[])?;

    // Nothing arrives: the fetch answers empty after max_wait_ms.
    let start = Instant::now();
    let p = fetch(&mut client, "wait", 0, 0, 300)?;
    assert!(start.elapsed() >= Duration::from_millis(250));
    assert_eq!(values(&p.records)?.len(), 0);

    // A produce from another connection wakes a fetch waiting up to 20 s.
    client.send(12, &fetch_request("wait", 0, 0, 20_000))?;
    let mut producer = KafkaClient::connect(addr)?;
    let start = Instant::now();
    let p = produce(
        &mut producer,
        "wait",
        0,
        batch(&[(None, Some(b"wake"), &[])], Compression::None, now_ms()),
    )?;
    assert_eq!(p.error_code, 0);
    let resp = client.receive::<FetchRequest>()?;
    // Had the fetch not been woken, it would have answered at its 20 s deadline with what
    // it read before waiting: nothing.
    assert!(
        start.elapsed() < Duration::from_secs(19),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        values(&resp.responses[0].partitions[0].records)?,
        vec![b"wake".to_vec()]
    );
    Ok(())
}

#[test]
fn list_offsets_finds_earliest_latest_by_timestamp_and_max_timestamp() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    // Timestamps from 1970 are past the default retention.ms: keep them from the cleaner.
    create_topic(&mut client, "times", 1, &[("retention.ms", "-1")])?;
    for ts in [1_000i64, 5_000, 3_000] {
        let p = produce(
            &mut client,
            "times",
            0,
            batch(&[(None, Some(b"v"), &[])], Compression::None, ts),
        )?;
        assert_eq!(p.error_code, 0);
    }
    let query = |client: &mut KafkaClient, ts: i64| -> anyhow::Result<(i64, i64)> {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(name("times"))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(ts),
                    ]),
            ]);
        let resp = client.call(7, &req)?;
        let p = &resp.topics[0].partitions[0];
        assert_eq!(p.error_code, 0);
        Ok((p.offset, p.timestamp))
    };
    assert_eq!(query(&mut client, -2)?.0, 0);
    assert_eq!(query(&mut client, -1)?.0, 3);
    assert_eq!(query(&mut client, 2_000)?, (1, 5_000));
    assert_eq!(query(&mut client, -3)?, (1, 5_000));
    assert_eq!(query(&mut client, 9_000)?.0, -1);
    Ok(())
}

#[test]
fn create_topics_reports_kafkas_errors() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let code = |resp: CreateTopicsResponse| resp.topics[0].error_code;
    assert_eq!(code(create_topic(&mut client, "o_k", 2, &[])?), 0);
    assert_eq!(
        code(create_topic(&mut client, "o_k", 2, &[])?),
        ResponseError::TopicAlreadyExists.code()
    );
    assert_eq!(
        code(create_topic(&mut client, "..", 1, &[])?),
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        code(create_topic(&mut client, &"x".repeat(250), 1, &[])?),
        ResponseError::InvalidTopicException.code()
    );
    assert_eq!(
        code(create_topic(&mut client, "o.k", 1, &[])?),
        ResponseError::InvalidTopicException.code(),
        "collides with o_k"
    );
    assert_eq!(
        code(create_topic(&mut client, "neg", -5, &[])?),
        ResponseError::InvalidPartitions.code()
    );
    assert_eq!(
        code(create_topic(&mut client, "zero", 0, &[])?),
        ResponseError::InvalidPartitions.code()
    );
    let resp = create_topic(&mut client, "cfg", 1, &[("retention.ms", "soon")])?;
    assert_eq!(
        resp.topics[0].error_code,
        ResponseError::InvalidConfig.code()
    );
    assert!(
        resp.topics[0]
            .error_message
            .as_ref()
            .is_some_and(|m| m.contains("retention.ms")),
        "{:?}",
        resp.topics[0].error_message
    );
    let resp = client.call(
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(name("rf"))
                .with_num_partitions(1)
                .with_replication_factor(3),
        ]),
    )?;
    assert_eq!(
        resp.topics[0].error_code,
        ResponseError::InvalidReplicationFactor.code()
    );
    // validate_only creates nothing.
    let resp = client.call(
        7,
        &CreateTopicsRequest::default()
            .with_validate_only(true)
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(name("dry"))
                    .with_num_partitions(4)
                    .with_replication_factor(1),
            ]),
    )?;
    assert_eq!(resp.topics[0].error_code, 0);
    assert_eq!(resp.topics[0].num_partitions, 4);
    assert_eq!(code(create_topic(&mut client, "dry", 1, &[])?), 0);
    Ok(())
}

#[test]
fn acks_all_records_survive_sigkill() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &["--log-flush-interval-ms", "3600000"])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    create_topic(&mut client, "durable", 1, &[])?;
    let mut sent = Vec::new();
    for i in 0..50 {
        let value = format!("record-{i}");
        let p = produce(
            &mut client,
            "durable",
            0,
            batch(
                &[(None, Some(value.as_bytes()), &[])],
                Compression::None,
                now_ms(),
            ),
        )?;
        assert_eq!(p.error_code, 0);
        sent.push(value.into_bytes());
    }
    strand.kill()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let p = fetch(&mut client, "durable", 0, 0, 0)?;
    assert_eq!(p.high_watermark, 50);
    assert_eq!(values(&p.records)?, sent);
    Ok(())
}

#[test]
fn acks_all_answered_from_the_page_cache_when_fsync_is_off() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &["--acks-all-fsync", "false"])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    create_topic(&mut client, "cached", 1, &[])?;
    for i in 0..3 {
        let records = batch(&[(None, Some(b"v"), &[])], Compression::None, now_ms());
        let p = produce(&mut client, "cached", 0, records)?;
        assert_eq!((p.error_code, p.base_offset), (0, i));
    }
    assert_eq!(fetch(&mut client, "cached", 0, 0, 0)?.high_watermark, 3);
    Ok(())
}

#[test]
fn pipelined_acks_all_requests_are_answered_in_order_and_survive_sigkill() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &["--log-flush-interval-ms", "3600000"])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    create_topic(&mut client, "piped", 2, &[])?;
    // Sixty acks=all requests sent back to back over one connection, alternating partitions,
    // with a Metadata request in the middle: the answers must come in the order sent, each
    // with the offset its partition gave it, and every answered record must be durable.
    let mut sent: [Vec<Vec<u8>>; 2] = Default::default();
    for i in 0..60 {
        if i == 30 {
            client.send(12, &MetadataRequest::default().with_topics(None))?;
        }
        let partition = i % 2;
        let value = format!("piped-{i}").into_bytes();
        let records = batch(&[(None, Some(&value), &[])], Compression::None, now_ms());
        client.send(9, &produce_request("piped", partition, records, -1))?;
        sent[partition as usize].push(value);
    }
    let mut next = [0i64; 2];
    for i in 0..60 {
        if i == 30 {
            let meta = client.receive::<MetadataRequest>()?;
            assert_eq!(meta.brokers.len(), 1);
        }
        let resp = client.receive::<ProduceRequest>()?;
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!((p.index, p.error_code), (i % 2, 0));
        assert_eq!(p.base_offset, next[(i % 2) as usize]);
        next[(i % 2) as usize] += 1;
    }
    strand.kill()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    for partition in 0..2 {
        let p = fetch(&mut client, "piped", partition, 0, 0)?;
        assert_eq!(p.high_watermark, 30);
        assert_eq!(values(&p.records)?, sent[partition as usize]);
    }
    Ok(())
}

/// Writes raw bytes on a fresh connection and reports whether the broker closed it.
fn closed_after(addr: std::net::SocketAddr, bytes: &[u8]) -> anyhow::Result<bool> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.write_all(bytes)?;
    let mut buf = [0u8; 64];
    Ok(matches!(stream.read(&mut buf), Ok(0) | Err(_)))
}

#[test]
fn bad_frames_close_only_their_connection() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let addr = strand.addr("kafka")?;
    let mut good = KafkaClient::connect(addr)?;
    create_topic(&mut good, "safe", 1, &[])?;
    let p = produce(
        &mut good,
        "safe",
        0,
        batch(&[(None, Some(b"kept"), &[])], Compression::None, now_ms()),
    )?;
    assert_eq!(p.error_code, 0);

    // A 2 GiB frame length: refused before any allocation.
    assert!(closed_after(addr, &0x7fff_ffffi32.to_be_bytes())?);
    // A negative length.
    assert!(closed_after(addr, &(-5i32).to_be_bytes())?);
    // Garbage in a well-sized frame.
    let mut garbage = 12i32.to_be_bytes().to_vec();
    garbage.extend_from_slice(b"\xde\xad\xbe\xef garbage");
    assert!(closed_after(addr, &garbage)?);
    // An unknown API key.
    let mut unknown = 10i32.to_be_bytes().to_vec();
    unknown.extend_from_slice(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    assert!(closed_after(addr, &unknown)?);
    // A Produce version below what Kafka 4 serves.
    let mut old = 10i32.to_be_bytes().to_vec();
    old.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
    assert!(closed_after(addr, &old)?);
    // A truncated Metadata body.
    let mut truncated = 11i32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&[0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0]);
    assert!(closed_after(addr, &truncated)?);
    // A Metadata request announcing 2^31 topics in a few bytes.
    let body = [
        0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00,
    ];
    let mut huge = (body.len() as i32).to_be_bytes().to_vec();
    huge.extend_from_slice(&body);
    assert!(closed_after(addr, &huge)?);
    // A client that disconnects in the middle of a frame.
    {
        let mut s = std::net::TcpStream::connect(addr)?;
        s.write_all(&1000i32.to_be_bytes())?;
        s.write_all(&[0u8; 10])?;
    }

    // The earlier connection, and new ones, are served as before; the data is intact.
    let p = fetch(&mut good, "safe", 0, 0, 0)?;
    assert_eq!(values(&p.records)?, vec![b"kept".to_vec()]);
    let mut fresh = KafkaClient::connect(addr)?;
    assert_eq!(fresh.call(3, &ApiVersionsRequest::default())?.error_code, 0);
    Ok(())
}
