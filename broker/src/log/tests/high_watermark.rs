//! The log end offset and the high watermark apart: uncommitted records stay invisible
//! to consumers, the high watermark never passes the log end offset nor goes back, and
//! what only committed data may undergo (DeleteRecords, retention, compaction) stops at
//! it. Plus a property test against a model of the two offsets.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::{open, small_config};
use crate::log::testutil::{batch, batch_of, decode};
use crate::log::{CleanupPolicy, FetchIsolation, LogConfig, LogError, PartitionLog};

fn keyed(key: &str, value: Option<&str>, ts: i64) -> Vec<u8> {
    batch(&[(Some(key.as_bytes()), value.map(str::as_bytes), ts)])
}

#[test]
fn uncommitted_records_are_invisible_until_the_high_watermark_passes_them() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append(&mut batch_of(1, 3, 0, 10)).unwrap();
    let info = log.append_uncommitted(&mut batch_of(2, 2, 0, 10)).unwrap();
    assert_eq!((info.base_offset, info.last_offset), (3, 4));
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.high_watermark(), 3);

    let r = log.read(0, 1 << 20, true).unwrap();
    assert_eq!(r.high_watermark, 3);
    assert_eq!(decode(&r.records).len(), 3, "only the committed batch");
    // Between the high watermark and the log end: nothing yet, no error.
    assert!(log.read(3, 1 << 20, true).unwrap().records.is_empty());
    assert!(log.read(5, 1 << 20, true).unwrap().records.is_empty());
    assert!(matches!(
        log.read(6, 1 << 20, true),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    // A follower reads to the log end.
    let all = log
        .read_to(0, 1 << 20, true, FetchIsolation::LogEnd)
        .unwrap();
    assert_eq!(decode(&all.records).len(), 5);

    assert_eq!(log.advance_high_watermark(5), 5);
    assert_eq!(
        decode(&log.read(3, 1 << 20, true).unwrap().records).len(),
        2
    );
}

#[test]
fn high_watermark_never_passes_the_log_end_nor_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append_uncommitted(&mut batch_of(1, 4, 0, 10)).unwrap();
    assert_eq!(log.advance_high_watermark(100), 4);
    assert_eq!(log.advance_high_watermark(2), 4);
    assert_eq!(log.high_watermark(), 4);
}

#[test]
fn subscribers_hear_of_the_high_watermark_not_of_uncommitted_appends() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), LogConfig::default()));
    let mut rx = log.subscribe();
    rx.borrow_and_update();
    log.append_uncommitted(&mut batch_of(1, 2, 0, 10)).unwrap();
    assert!(
        !rx.has_changed().unwrap(),
        "an uncommitted append is no news"
    );
    let advancer = Arc::clone(&log);
    let t = std::thread::spawn(move || advancer.advance_high_watermark(2));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .unwrap()
            .unwrap();
    });
    assert_eq!(t.join().unwrap(), 2);
    assert_eq!(*rx.borrow(), 2);
}

#[test]
fn a_batch_the_high_watermark_cuts_stays_invisible_whole() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append_uncommitted(&mut batch_of(1, 4, 0, 10)).unwrap();
    log.advance_high_watermark(2);
    assert!(log.read(0, 1 << 20, true).unwrap().records.is_empty());
}

#[test]
fn reopened_log_commits_what_it_recovered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), LogConfig::default());
        log.append(&mut batch_of(1, 2, 0, 10)).unwrap();
        log.append_uncommitted(&mut batch_of(2, 3, 0, 10)).unwrap();
        assert_eq!(log.high_watermark(), 2);
    }
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.high_watermark(), 5);
}

#[test]
fn delete_records_beyond_the_high_watermark_is_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append(&mut batch_of(1, 2, 0, 10)).unwrap();
    log.append_uncommitted(&mut batch_of(2, 2, 0, 10)).unwrap();
    assert!(matches!(
        log.delete_records_before(3),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records_before(2).unwrap(), 2);
}

#[test]
fn retention_keeps_segments_holding_uncommitted_records() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    for i in 0..20 {
        log.append_uncommitted(&mut batch_of(i, 2, 0, 400)).unwrap();
    }
    assert!(log.segment_count() > 3);
    log.update_config(LogConfig {
        retention_ms: 0,
        ..small_config()
    });
    let report = log.apply_retention(1_000_000).unwrap();
    assert_eq!(report.segments_deleted, 0, "nothing is committed");
    assert_eq!(log.log_start_offset(), 0);

    log.advance_high_watermark(10);
    let report = log.apply_retention(1_000_000).unwrap();
    assert!(report.segments_deleted > 0);
    assert!(log.log_start_offset() <= 10);
    assert!(log.log_end_offset() == 40 && log.high_watermark() == 10);
}

#[test]
fn compaction_leaves_uncommitted_records_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..small_config()
    };
    let log = open(dir.path(), config);
    log.append(&mut keyed("a", Some("old"), 0)).unwrap();
    // Superseded only by an uncommitted record, which a new leader might truncate.
    log.append_uncommitted(&mut keyed("a", Some("new"), 1))
        .unwrap();
    for i in 0..12 {
        log.append_uncommitted(&mut batch_of(i, 1, 2, 400)).unwrap();
    }
    assert!(log.segment_count() > 1);
    log.compact(10).unwrap();
    let first = log.read(0, 1 << 20, true).unwrap();
    let records = decode(&first.records);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].2.as_deref(), Some(&b"old"[..]));

    // Once committed, the newer record supersedes it.
    log.advance_high_watermark(log.log_end_offset());
    log.compact(10).unwrap();
    let first = log.read(0, 1 << 20, true).unwrap();
    assert_ne!(decode(&first.records)[0].2.as_deref(), Some(&b"old"[..]));
}

/// What the property test does to the log.
#[derive(Debug, Clone)]
enum Op {
    /// Appends a batch of n records, committed at once or not.
    Append {
        records: u8,
        committed: bool,
    },
    /// Advances the high watermark to the end of one of the uncommitted batches (picked
    /// by this number), as the replica layer does: a follower's log end is a batch end.
    Advance(u8),
    /// Reads from this offset (taken modulo one past the log end).
    Read(u16),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..5, any::<bool>()).prop_map(|(records, committed)| Op::Append { records, committed }),
        2 => (0u8..12).prop_map(Op::Advance),
        3 => any::<u16>().prop_map(Op::Read),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The log against a model of (log end offset, high watermark): HW <= LEO always, a
    /// read never returns a record at or past the HW and returns every committed batch
    /// in order, and a reopened log commits everything it recovered.
    #[test]
    fn high_watermark_follows_the_model(ops in prop::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), small_config()).unwrap();
        let (mut leo, mut hw) = (0i64, 0i64);
        let mut batch_ends: Vec<i64> = Vec::new();
        for op in ops {
            match op {
                Op::Append { records, committed } => {
                    let mut b = batch_of(0, usize::from(records), 0, 300);
                    let info = if committed {
                        log.append(&mut b).unwrap()
                    } else {
                        log.append_uncommitted(&mut b).unwrap()
                    };
                    prop_assert_eq!(info.base_offset, leo);
                    leo += i64::from(records);
                    batch_ends.push(leo);
                    if committed {
                        hw = leo;
                    }
                }
                Op::Advance(n) => {
                    let ends: Vec<i64> = batch_ends.iter().copied().filter(|&e| e > hw).collect();
                    if !ends.is_empty() {
                        hw = ends[usize::from(n) % ends.len()];
                    }
                    prop_assert_eq!(log.advance_high_watermark(hw), hw);
                    // Never back.
                    prop_assert_eq!(log.advance_high_watermark(hw - 1), hw);
                }
                Op::Read(at) => {
                    let offset = i64::from(at) % (leo + 1);
                    let r = log.read(offset, 1 << 20, true).unwrap();
                    prop_assert_eq!(r.high_watermark, hw);
                    let got = decode(&r.records);
                    prop_assert!(got.iter().all(|rec| rec.0 < hw), "read past the HW");
                    if offset < hw {
                        prop_assert!(!got.is_empty(), "committed data at {} not read", offset);
                    } else {
                        prop_assert!(got.is_empty());
                    }
                }
                Op::Reopen => {
                    drop(log);
                    log = PartitionLog::open(dir.path(), small_config()).unwrap();
                    hw = leo;
                }
            }
            prop_assert!(log.high_watermark() <= log.log_end_offset());
            prop_assert_eq!(log.log_end_offset(), leo);
            prop_assert_eq!(log.high_watermark(), hw);
        }
    }
}
