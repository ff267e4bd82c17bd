//! Retention, DeleteRecords and compaction through the public handle.

use kafka_protocol::records::Compression;

use super::open;
use crate::log::testutil::{batch, batch_compressed, batch_of, decode};
use crate::log::{CleanupPolicy, LogConfig, LogError};

fn keyed(key: &str, value: Option<&str>, ts: i64) -> Vec<u8> {
    batch(&[(Some(key.as_bytes()), value.map(str::as_bytes), ts)])
}

/// Every record from the log start: (offset, key, value).
fn contents(log: &crate::log::PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    loop {
        let r = log.read(next, 1 << 20, true).unwrap();
        let recs = decode(&r.records);
        let Some(last) = recs.last() else { break };
        next = last.0 + 1;
        out.extend(recs.into_iter().map(|(o, k, v, _)| {
            let s = |b: bytes::Bytes| String::from_utf8(b.to_vec()).unwrap();
            (o, k.map(s).unwrap_or_default(), v.map(s))
        }));
    }
    out
}

#[test]
fn retention_by_time_deletes_expired_segments_and_rolls_an_expired_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 500,
        retention_ms: 1000,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    for i in 0..10 {
        log.append(&mut batch_of(i, 1, i64::from(i) * 100, 300))
            .unwrap();
    }
    assert_eq!(log.segment_count(), 10);
    // Segment i's newest timestamp is 100 * i; at now = 1450 those with 100 * i < 450 go.
    let report = log.apply_retention(1450).unwrap();
    assert_eq!(report.segments_deleted, 5);
    assert_eq!(report.log_start_offset, 5);
    assert_eq!(log.log_start_offset(), 5);
    assert!(matches!(
        log.read(4, 100, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(contents(&log)[0].0, 5);
    assert!(!dir.path().join("00000000000000000004.log").exists());
    // Exactly at the limit a segment stays (Kafka deletes when older than retention.ms).
    assert_eq!(log.apply_retention(1500).unwrap().segments_deleted, 0);
    // Everything expired: the active segment is rolled so that it can go too.
    let report = log.apply_retention(100_000).unwrap();
    assert_eq!(report.segments_deleted, 5);
    assert_eq!(log.log_start_offset(), 10);
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(
        log.append(&mut batch_of(0, 1, 0, 1)).unwrap().base_offset,
        10
    );
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (10, 11));
}

#[test]
fn retention_by_size_keeps_the_log_at_or_above_retention_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let one = batch_of(0, 1, 0, 300).len() as i64;
    let config = LogConfig {
        segment_bytes: 500,
        retention_ms: -1,
        retention_bytes: 3 * one,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    for i in 0..8 {
        log.append(&mut batch_of(i, 1, 0, 300)).unwrap();
    }
    let report = log.apply_retention(0).unwrap();
    assert_eq!(report.segments_deleted, 5);
    assert_eq!(report.bytes_deleted, 5 * one as u64);
    assert_eq!(log.size_bytes(), 3 * one as u64);
}

#[test]
fn delete_records_moves_the_log_start_and_it_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 500,
        ..LogConfig::default()
    };
    {
        let log = open(dir.path(), config.clone());
        for i in 0..6 {
            log.append(&mut batch_of(i, 2, 0, 200)).unwrap();
        }
        assert_eq!(log.delete_records_before(5).unwrap(), 5);
        // Offsets 0..4 sat in segments that are now wholly below the log start.
        assert!(!dir.path().join("00000000000000000000.log").exists());
        assert_eq!(log.delete_records_before(3).unwrap(), 5, "never moves back");
        assert!(matches!(
            log.delete_records_before(13),
            Err(LogError::OffsetOutOfRange { .. })
        ));
        // The batch holding offset 5 starts at 4 and is returned whole.
        assert_eq!(decode(&log.read(5, 1000, true).unwrap().records)[0].0, 4);
        assert!(matches!(
            log.read(3, 100, true),
            Err(LogError::OffsetOutOfRange { .. })
        ));
    }
    let log = open(dir.path(), config);
    assert_eq!(log.log_start_offset(), 5);
    assert_eq!(log.delete_records_before(12).unwrap(), 12);
    assert_eq!(log.log_start_offset(), 12);
    assert!(log.read(12, 100, true).unwrap().records.is_empty());
}

fn compacted_config() -> LogConfig {
    LogConfig {
        segment_bytes: 300,
        cleanup_policy: CleanupPolicy::Compact,
        delete_retention_ms: 1000,
        ..LogConfig::default()
    }
}

#[test]
fn compaction_keeps_the_newest_value_per_key_with_offsets_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), compacted_config());
    for (i, (k, v)) in [
        ("a", "1"),
        ("b", "1"),
        ("a", "2"),
        ("c", "1"),
        ("b", "2"),
        ("a", "3"),
    ]
    .into_iter()
    .enumerate()
    {
        log.append(&mut keyed(k, Some(v), i as i64)).unwrap();
    }
    log.append(&mut batch_of(0, 1, 0, 400)).unwrap(); // rolls: the above is cleanable
    let report = log.compact(0).unwrap();
    assert_eq!(report.records_removed, 3);
    assert!(report.bytes_after < report.bytes_before);
    let got = contents(&log);
    let kv: Vec<_> = got
        .iter()
        .take(3)
        .map(|(o, k, v)| (*o, k.as_str(), v.as_deref()))
        .collect();
    assert_eq!(
        kv,
        vec![
            (3, "c", Some("1")),
            (4, "b", Some("2")),
            (5, "a", Some("3"))
        ]
    );
    // Reading from inside a gap starts at the next record kept.
    assert_eq!(decode(&log.read(0, 1000, true).unwrap().records)[0].0, 3);
    assert_eq!(log.compact(0).unwrap().records_removed, 0, "idempotent");
    drop(log);
    let log = open(dir.path(), compacted_config());
    assert_eq!(contents(&log)[..3], got[..3], "survives a restart");
    assert_eq!(log.log_end_offset(), 7);
}

#[test]
fn compaction_drops_tombstones_only_after_delete_retention() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), compacted_config());
    log.append(&mut keyed("a", Some("1"), 100)).unwrap();
    log.append(&mut keyed("a", None, 200)).unwrap();
    log.append(&mut keyed("b", Some("1"), 300)).unwrap();
    log.append(&mut batch_of(0, 1, 0, 400)).unwrap();
    log.compact(1000).unwrap();
    let got = contents(&log);
    assert_eq!(
        got[0],
        (1, "a".into(), None),
        "tombstone kept within delete.retention.ms"
    );
    log.compact(1201).unwrap();
    let got = contents(&log);
    assert_eq!(
        got[0],
        (2, "b".into(), Some("1".into())),
        "tombstone gone after"
    );
}

#[test]
fn compaction_rewrites_compressed_batches_with_their_codec() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), compacted_config());
        let mut b = batch_compressed(
            &[
                (Some(b"a".as_slice()), Some(b"old".as_slice()), 1),
                (Some(b"b"), Some(b"keep"), 2),
                (Some(b"a"), Some(b"new"), 3),
            ],
            codec,
        );
        log.append(&mut b).unwrap();
        log.append(&mut batch_of(0, 1, 0, 400)).unwrap();
        assert_eq!(log.compact(0).unwrap().records_removed, 1, "{codec:?}");
        let r = log.read(0, 10_000, true).unwrap();
        let h = crate::log::BatchHeader::parse(&r.records).unwrap();
        assert_eq!(h.compression(), codec as i16, "{codec:?}");
        let kv: Vec<_> = decode(&r.records)
            .into_iter()
            .take(2)
            .map(|(o, _, v, _)| (o, v.unwrap()))
            .collect();
        assert_eq!(kv, vec![(1, "keep".into()), (2, "new".into())], "{codec:?}");
    }
}

#[test]
fn compaction_never_touches_the_active_segment_and_delete_policy_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), compacted_config());
    log.append(&mut keyed("a", Some("1"), 0)).unwrap();
    log.append(&mut keyed("a", Some("2"), 0)).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.compact(0).unwrap().records_removed, 0);
    assert_eq!(contents(&log).len(), 2);
    log.update_config(LogConfig {
        cleanup_policy: CleanupPolicy::Delete,
        ..compacted_config()
    });
    log.append(&mut batch_of(0, 1, 0, 400)).unwrap();
    assert_eq!(log.compact(0).unwrap().records_removed, 0);
}

#[test]
fn leftovers_of_an_interrupted_compaction_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), compacted_config());
        log.append(&mut keyed("a", Some("1"), 0)).unwrap();
        log.close().unwrap();
    }
    let leftover = dir.path().join("00000000000000000000.log.cleaned");
    std::fs::write(&leftover, b"half written").unwrap();
    let log = open(dir.path(), compacted_config());
    assert!(!leftover.exists());
    assert_eq!(contents(&log).len(), 1);
}
