//! Storage failures under a running `strand serve`: files vanishing under the broker, a
//! full disk, and a process short of file descriptors. Each must be loud (the log, the
//! admin `/health`), must never acknowledge a write that is not kept, and must not cost
//! offsets already handed out.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiVersionsRequest, CreateTopicsRequest, GroupId, OffsetCommitRequest, OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use strand_tests::kafka::{KafkaClient, batch, create_topic, fetch, name, now_ms, produce};
use strand_tests::{Launch, RlimitResource, Strand, http_get};

/// How long a test waits for the broker to notice something (its flusher runs every second).
const NOTICE_TIMEOUT: Duration = Duration::from_secs(30);

fn one_record(value: &[u8]) -> Bytes {
    batch(&[(None, Some(value), &[])], Compression::None, now_ms())
}

#[test]
fn deleted_active_segment_takes_the_partition_offline_and_restart_keeps_its_offsets()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::launch(dir.path(), &[], &[], Launch::default().capture_log())?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    for topic in ["lost", "kept"] {
        assert_eq!(
            create_topic(&mut client, topic, 1, &[])?.topics[0].error_code,
            0
        );
    }
    for i in 0..3 {
        let r = produce(&mut client, "lost", 0, one_record(b"before"))?;
        assert_eq!((r.error_code, r.base_offset), (0, i));
    }
    let segment = dir.path().join("lost-0").join("00000000000000000000.log");
    std::fs::remove_file(&segment)?;

    // The background flusher notices without any client writing, and says which file.
    let line = strand.wait_for_log(
        &["00000000000000000000.log was deleted", "offline"],
        NOTICE_TIMEOUT,
    )?;
    assert!(line.contains("lost-0"), "{line}");
    let r = produce(&mut client, "lost", 0, one_record(b"into the void"))?;
    assert_eq!(
        r.error_code,
        ResponseError::KafkaStorageError.code(),
        "produce after the loss"
    );
    let f = fetch(&mut client, "lost", 0, 0, 0)?;
    assert_eq!(
        f.error_code,
        ResponseError::KafkaStorageError.code(),
        "fetch after the loss"
    );
    // Other partitions go on.
    let r = produce(&mut client, "kept", 0, one_record(b"fine"))?;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    assert!(strand.terminate()?.success());

    // After a restart the partition goes on from offset 3: offsets 0..3 were handed out
    // (and may be committed by consumers) and are never given to other records.
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let r = produce(&mut client, "lost", 0, one_record(b"after"))?;
    assert_eq!(
        (r.error_code, r.base_offset),
        (0, 3),
        "restart reused offsets"
    );
    assert!(strand.terminate()?.success());
    Ok(())
}

#[test]
fn acks_all_is_not_acknowledged_into_a_deleted_segment() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // The flusher never runs during the test: only the acks=all fsync can notice.
    let strand = Strand::start(dir.path(), &["--log-flush-interval-ms", "3600000"])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    assert_eq!(
        create_topic(&mut client, "lost", 1, &[])?.topics[0].error_code,
        0
    );
    let r = produce(&mut client, "lost", 0, one_record(b"kept"))?;
    assert_eq!((r.error_code, r.base_offset), (0, 0));
    std::fs::remove_file(dir.path().join("lost-0").join("00000000000000000000.log"))?;
    let r = produce(&mut client, "lost", 0, one_record(b"lost"))?;
    assert_eq!(r.error_code, ResponseError::KafkaStorageError.code());
    let message = r.error_message.map(|m| m.to_string()).unwrap_or_default();
    assert!(message.contains("was deleted"), "{message}");
    Ok(())
}

/// A commit of `offset` for partition 0 of `topic` by a group that uses no group
/// management (generation -1), as a simple consumer or an admin tool commits.
fn commit(client: &mut KafkaClient, group: &str, topic: &str, offset: i64) -> anyhow::Result<i16> {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(offset),
                ]),
        ]);
    let resp = client.call(2, &req)?;
    Ok(resp.topics[0].partitions[0].error_code)
}

fn committed(client: &mut KafkaClient, group: &str, topic: &str) -> anyhow::Result<i64> {
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(name(topic))
                .with_partition_indexes(vec![0]),
        ]));
    let resp = client.call(5, &req)?;
    Ok(resp.topics[0].partitions[0].committed_offset)
}

#[test]
fn full_disk_is_logged_and_reported_in_health_while_offset_commits_go_on() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().display().to_string();
    // A reserve larger than any disk: the data directory is "full" for user topics from
    // the start, exactly as when free space drops under the reserve.
    let reserve = ["--log-dir-reserve-bytes", "1000000000000000000"];
    let strand = Strand::launch(dir.path(), &reserve, &[], Launch::default().capture_log())?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    assert_eq!(
        create_topic(&mut client, "t", 1, &[])?.topics[0].error_code,
        0
    );

    let r = produce(&mut client, "t", 0, one_record(b"no room"))?;
    assert_eq!(r.error_code, ResponseError::KafkaStorageError.code());
    let message = r.error_message.map(|m| m.to_string()).unwrap_or_default();
    assert!(message.contains("bytes free"), "{message}");

    let line = strand.wait_for_log(&["short of space", "bytes free"], NOTICE_TIMEOUT)?;
    assert!(
        line.contains(&data_dir),
        "the log names the directory: {line}"
    );
    for path in ["/health", "/ready"] {
        let (status, body) = http_get(strand.addr("admin")?, path)?;
        assert_eq!(status, 503, "{path}: {body}");
        assert!(
            body.contains(&data_dir) && body.contains("bytes free"),
            "{path}: {body}"
        );
    }

    // Offset commits write to __consumer_offsets, which may use the reserve.
    assert_eq!(commit(&mut client, "g", "t", 7)?, 0);
    assert!(strand.terminate()?.success());
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    assert_eq!(
        committed(&mut client, "g", "t")?,
        7,
        "the commit reached the log"
    );
    let (status, body) = http_get(strand.addr("admin")?, "/health")?;
    assert_eq!((status, body.trim()), (200, "ok"));
    Ok(())
}

#[test]
fn failed_writes_are_logged_and_unhealthy_until_the_partition_writes_again() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // No file may grow past 200 KiB: the kernel refuses the write that would (EFBIG), as it
    // refuses one on a full disk (ENOSPC); small files (offsets, metadata) are unaffected.
    let launch = Launch::default()
        .capture_log()
        .limit(RlimitResource::FileSize, 200 * 1024);
    let strand = Strand::launch(dir.path(), &["--log-dir-reserve-bytes", "0"], &[], launch)?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    assert_eq!(
        create_topic(&mut client, "t", 1, &[])?.topics[0].error_code,
        0
    );
    let big = vec![b'x'; 90 * 1024];
    for i in 0..2 {
        let r = produce(&mut client, "t", 0, one_record(&big))?;
        assert_eq!((r.error_code, r.base_offset), (0, i));
    }
    let r = produce(&mut client, "t", 0, one_record(&big))?;
    assert_eq!(r.error_code, ResponseError::KafkaStorageError.code());

    let line = strand.wait_for_log(&["write to the log failed", "bytes free"], NOTICE_TIMEOUT)?;
    assert!(
        line.contains("00000000000000000000.log"),
        "the log names the file: {line}"
    );
    let (status, body) = http_get(strand.addr("admin")?, "/health")?;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("t-0") && body.contains("write failed"),
        "{body}"
    );
    assert_eq!(commit(&mut client, "g", "t", 2)?, 0, "commits go on");

    // A write that fits succeeds, after the failed one left nothing behind.
    let r = produce(&mut client, "t", 0, one_record(b"small"))?;
    assert_eq!((r.error_code, r.base_offset), (0, 2));
    let (status, body) = http_get(strand.addr("admin")?, "/health")?;
    assert_eq!((status, body.trim()), (200, "ok"));
    Ok(())
}

/// Produces one record to partition 0 of each topic and fetches everything back.
fn produce_and_fetch(
    client: &mut KafkaClient,
    topics: &[String],
    round: i64,
) -> anyhow::Result<()> {
    for topic in topics {
        let r = produce(client, topic, 0, one_record(topic.as_bytes()))?;
        assert_eq!(
            (r.error_code, r.base_offset),
            (0, round),
            "produce to {topic}"
        );
        let f = fetch(client, topic, 0, 0, 0)?;
        assert_eq!(f.error_code, 0, "fetch from {topic}");
        let values = strand_tests::kafka::values(&f.records)?;
        assert_eq!(values.len() as i64, round + 1, "{topic}");
        assert!(values.iter().all(|v| v == topic.as_bytes()), "{topic}");
    }
    Ok(())
}

#[test]
fn six_hundred_topics_are_served_under_256_descriptors_before_and_after_a_restart()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let launch = || Launch::default().limit(RlimitResource::NoFile, 256);
    let strand = Strand::launch(dir.path(), &[], &[], launch())?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    for chunk in 0..6 {
        let topics = (0..100)
            .map(|i| {
                CreatableTopic::default()
                    .with_name(name(&format!("t{}", chunk * 100 + i)))
                    .with_num_partitions(1)
                    .with_replication_factor(-1)
            })
            .collect();
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(60_000)
            .with_topics(topics);
        for t in client.call(7, &req)?.topics {
            assert_eq!(
                t.error_code,
                0,
                "creating {}: {:?}",
                t.name.as_str(),
                t.error_message
            );
        }
    }
    let some: Vec<String> = [0, 123, 299, 450, 599]
        .iter()
        .map(|i| format!("t{i}"))
        .collect();
    produce_and_fetch(&mut client, &some, 0)?;
    assert!(strand.terminate()?.success());

    // A restart opens the 600 logs under the same limit and keeps serving.
    let strand = Strand::launch(dir.path(), &[], &[], launch())?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    produce_and_fetch(&mut client, &some, 1)?;
    let mut others = Vec::new();
    for _ in 0..40 {
        let mut c = KafkaClient::connect(strand.addr("kafka")?)?;
        assert_eq!(c.call(3, &ApiVersionsRequest::default())?.error_code, 0);
        others.push(c);
    }
    let (status, _) = http_get(strand.addr("admin")?, "/health")?;
    assert_eq!(status, 200);
    assert!(strand.terminate()?.success());
    Ok(())
}
