//! The seed corpus of the request-decoder fuzz target (`fuzz/corpus/decode_request/`), and
//! the stable test that runs every file of it through the listener's decoder, so that CI
//! exercises the corpus even where `cargo fuzz` (nightly) is not available.
//!
//! Files named `valid-*` are well-formed request frames (without the `i32` length prefix)
//! built with the `kafka-protocol` encoders, one or more per served API and version range;
//! they must decode. Files named `hostile-*` are frames from the attack run (array counts
//! and lengths far beyond the bytes that follow); they must be refused without reserving
//! memory for what they announce. Any other file (inputs the fuzzer added) must only not
//! panic. `STRAND_WRITE_CORPUS=1 cargo test -p strand-broker write_seed_corpus -- --ignored`
//! rewrites the seed files.

use std::path::PathBuf;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::api_versions::SUPPORTED;
use super::connection::{Decoded, decode_request};

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode_request")
}

/// A request frame: header (with a client id) and body, without the length prefix.
fn frame<R: Request + Encodable>(request: &R, version: i16) -> Option<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("rdkafka")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, R::header_version(version)).ok()?;
    request.encode(&mut buf, version).ok()?;
    Some(buf.to_vec())
}

fn s(text: &'static str) -> StrBytes {
    StrBytes::from_static_str(text)
}

fn topic(text: &'static str) -> TopicName {
    TopicName(s(text))
}

fn record_batch() -> Bytes {
    let records: Vec<Record> = (0..3)
        .map(|i| Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: -1,
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    match RecordBatchEncoder::encode(&mut buf, &records, &options) {
        Ok(()) => buf.freeze(),
        Err(_) => Bytes::new(),
    }
}

/// Well-formed frames of every served API at every served version: the default request
/// and, for the APIs clients use most, one populated as a client would send it.
fn valid_frames() -> Vec<(String, Vec<u8>)> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};

    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic("orders"))),
            MetadataRequestTopic::default().with_name(Some(topic("payments"))),
        ]))
        .with_allow_auto_topic_creation(true);
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic("orders"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(record_batch())),
                ]),
        ]);
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(500)
        .with_min_bytes(1)
        .with_max_bytes(52_428_800)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic("orders"))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(42)
                        .with_partition_max_bytes(1_048_576),
                ]),
        ]);

    let mut out = Vec::new();
    let mut push = |name: String, bytes: Option<Vec<u8>>| {
        if let Some(bytes) = bytes {
            out.push((name, bytes));
        }
    };
    for &(api, min, max) in SUPPORTED {
        for version in min..=max {
            let name = |what: &str| format!("valid-{api:?}-v{version}-{what}").to_lowercase();
            macro_rules! default_of {
                ($t:ty) => {
                    push(name("default"), frame(&<$t>::default(), version))
                };
            }
            match api {
                ApiKey::Produce => push(name("batch"), frame(&produce, version)),
                ApiKey::Fetch => push(name("one-partition"), frame(&fetch, version)),
                ApiKey::Metadata => {
                    push(name("two-topics"), frame(&metadata, version));
                    default_of!(MetadataRequest)
                }
                ApiKey::ListOffsets => default_of!(ListOffsetsRequest),
                ApiKey::ApiVersions => push(
                    name("client"),
                    frame(
                        &ApiVersionsRequest::default()
                            .with_client_software_name(s("librdkafka"))
                            .with_client_software_version(s("2.0.2")),
                        version,
                    ),
                ),
                ApiKey::CreateTopics => default_of!(CreateTopicsRequest),
                ApiKey::DeleteTopics => default_of!(DeleteTopicsRequest),
                ApiKey::DeleteRecords => default_of!(DeleteRecordsRequest),
                ApiKey::InitProducerId => default_of!(InitProducerIdRequest),
                ApiKey::OffsetForLeaderEpoch => default_of!(OffsetForLeaderEpochRequest),
                ApiKey::DescribeConfigs => default_of!(DescribeConfigsRequest),
                ApiKey::AlterConfigs => default_of!(AlterConfigsRequest),
                ApiKey::CreatePartitions => default_of!(CreatePartitionsRequest),
                ApiKey::IncrementalAlterConfigs => default_of!(IncrementalAlterConfigsRequest),
                ApiKey::DescribeCluster => default_of!(DescribeClusterRequest),
                ApiKey::FindCoordinator => push(
                    name("group"),
                    frame(
                        &FindCoordinatorRequest::default()
                            .with_key(s("g1"))
                            .with_coordinator_keys(vec![s("g1")]),
                        version,
                    ),
                ),
                ApiKey::JoinGroup => default_of!(JoinGroupRequest),
                ApiKey::SyncGroup => default_of!(SyncGroupRequest),
                ApiKey::Heartbeat => default_of!(HeartbeatRequest),
                ApiKey::LeaveGroup => default_of!(LeaveGroupRequest),
                ApiKey::OffsetCommit => default_of!(OffsetCommitRequest),
                ApiKey::OffsetFetch => default_of!(OffsetFetchRequest),
                ApiKey::OffsetDelete => default_of!(OffsetDeleteRequest),
                ApiKey::ListGroups => default_of!(ListGroupsRequest),
                ApiKey::DescribeGroups => default_of!(DescribeGroupsRequest),
                ApiKey::DeleteGroups => default_of!(DeleteGroupsRequest),
                _ => {}
            }
        }
    }
    out
}

/// A frame with a fixed header (`client_id` null) for `api`/`version`, then `body`.
fn raw(api: i16, version: i16, flexible_header: bool, body: &[u8]) -> Vec<u8> {
    let mut f = BytesMut::new();
    f.put_i16(api);
    f.put_i16(version);
    f.put_i32(7);
    f.put_i16(-1);
    if flexible_header {
        f.put_u8(0);
    }
    f.put_slice(body);
    f.to_vec()
}

/// Frames from the attack run: counts and lengths far beyond the bytes that follow.
pub(crate) fn hostile_frames() -> Vec<(String, Vec<u8>)> {
    let mut fetch_v4 = BytesMut::new();
    fetch_v4.put_i32(-1); // replica id
    fetch_v4.put_i32(500); // max wait
    fetch_v4.put_i32(1); // min bytes
    fetch_v4.put_i32(55 << 20); // max bytes
    fetch_v4.put_i8(0); // isolation level
    fetch_v4.put_i32(0x67FF_FFFF); // topics
    fetch_v4.put_slice(&[0u8; 83]); // to the 114 bytes of the reported frame
    let mut produce_v3 = BytesMut::new();
    produce_v3.put_i16(-1); // transactional id
    produce_v3.put_i16(-1); // acks
    produce_v3.put_i32(30_000);
    produce_v3.put_i32(1); // one topic
    produce_v3.put_i16(1);
    produce_v3.put_u8(b't');
    produce_v3.put_i32(1); // one partition
    produce_v3.put_i32(0);
    produce_v3.put_i32(0x7FFF_FFF0); // records length
    vec![
        (
            "hostile-fetch-v4-topics-0x67ffffff".into(),
            raw(1, 4, false, &fetch_v4),
        ),
        (
            "hostile-produce-v3-records-2gib".into(),
            raw(0, 3, false, &produce_v3),
        ),
        (
            "hostile-metadata-v1-topics-i32-max".into(),
            raw(3, 1, false, &[0x7f, 0xff, 0xff, 0xff]),
        ),
        (
            "hostile-metadata-v12-topics-compact-2pow32".into(),
            raw(3, 12, true, &[0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]),
        ),
        (
            // DescribeConfigs v4: one resource, then 2^31 config names.
            "hostile-describeconfigs-v4-names".into(),
            raw(
                32,
                4,
                true,
                &[0x02, 0x02, 0x02, b't', 0xff, 0xff, 0xff, 0xff, 0x07, 0x00],
            ),
        ),
        (
            // ApiVersions v3: a client software name announcing 4 GiB.
            "hostile-apiversions-v3-name-4gib".into(),
            raw(18, 3, true, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ),
    ]
}

#[test]
#[ignore = "rewrites fuzz/corpus/decode_request; run with STRAND_WRITE_CORPUS=1"]
fn write_seed_corpus() -> std::io::Result<()> {
    if std::env::var_os("STRAND_WRITE_CORPUS").is_none() {
        return Ok(());
    }
    let dir = corpus_dir();
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in valid_frames().into_iter().chain(hostile_frames()) {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}

#[test]
fn every_corpus_frame_decodes_or_is_refused_as_its_name_says() -> std::io::Result<()> {
    let mut seen = 0;
    for entry in std::fs::read_dir(corpus_dir())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes = Bytes::from(std::fs::read(&path)?);
        let before = crate::alloc::huge_allocations_on_this_thread();
        let decoded = decode_request(bytes);
        assert_eq!(
            crate::alloc::huge_allocations_on_this_thread(),
            before,
            "{name} reserved memory for what it only announced"
        );
        if name.starts_with("valid-") {
            assert!(
                matches!(decoded, Ok(Decoded::Request(_))),
                "{name} does not decode"
            );
        } else if name.starts_with("hostile-") {
            assert!(decoded.is_err(), "{name} was accepted");
        }
        seen += 1;
    }
    assert!(seen > 100, "the seed corpus has only {seen} frames");
    Ok(())
}

#[test]
fn hostile_counts_are_refused_without_reserving_what_they_announce() {
    for (name, bytes) in hostile_frames() {
        let before = crate::alloc::huge_allocations_on_this_thread();
        assert!(decode_request(Bytes::from(bytes)).is_err(), "{name}");
        assert_eq!(
            crate::alloc::huge_allocations_on_this_thread(),
            before,
            "{name} reserved memory for what it only announced"
        );
    }
}
