//! Storage failures under a running `strand serve`: files vanishing under the broker, a
//! full disk, and a process short of file descriptors. Each must be loud (the log, the
//! admin `/health`), must never acknowledge a write that is not kept, and must not cost
//! offsets already handed out.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::records::Compression;
use strand_tests::kafka::{KafkaClient, batch, create_topic, fetch, now_ms, produce};
use strand_tests::{Launch, Strand};

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
