//! Appends, reads, offsets, reopening, notifications and group commit.

use std::sync::Arc;
use std::time::Duration;

use super::{open, small_config};
use crate::log::testutil::{batch_of, decode, idempotent_batch};
use crate::log::{LogConfig, LogError};

#[test]
fn append_assigns_consecutive_offsets_and_read_returns_the_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let a = log.append(&mut batch_of(1, 3, 100, 10)).unwrap();
    let b = log.append(&mut batch_of(2, 2, 200, 10)).unwrap();
    assert_eq!((a.base_offset, a.last_offset), (0, 2));
    assert_eq!((b.base_offset, b.last_offset), (3, 4));
    assert_eq!(b.max_timestamp, 201);
    assert!(!b.duplicate);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.high_watermark(), 5);
    assert_eq!(log.log_start_offset(), 0);

    let r = log.read(0, 1 << 20, true).unwrap();
    let offsets: Vec<i64> = decode(&r.records).iter().map(|r| r.0).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4]);
    assert_eq!(r.high_watermark, 5);

    // Reading from inside the second batch starts with that whole batch.
    let r = log.read(4, 1 << 20, true).unwrap();
    let offsets: Vec<i64> = decode(&r.records).iter().map(|r| r.0).collect();
    assert_eq!(offsets, vec![3, 4]);
    assert!(log.read(5, 100, true).unwrap().records.is_empty());
    assert!(matches!(
        log.read(6, 100, true),
        Err(LogError::OffsetOutOfRange { offset: 6, .. })
    ));
}

#[test]
fn read_respects_the_byte_budget_but_returns_one_whole_batch_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let first = batch_of(1, 2, 0, 100);
    let size = first.len();
    log.append(&mut first.clone()).unwrap();
    log.append(&mut batch_of(2, 2, 0, 100)).unwrap();
    assert_eq!(log.read(0, size + 10, false).unwrap().records.len(), size);
    assert_eq!(
        log.read(0, 2 * size, false).unwrap().records.len(),
        2 * size
    );
    assert!(log.read(0, 10, false).unwrap().records.is_empty());
    assert_eq!(log.read(0, 10, true).unwrap().records.len(), size);
}

#[test]
fn corrupt_batch_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let mut good = batch_of(1, 2, 0, 10);
    let mut bad = batch_of(2, 2, 0, 10);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let mut both = good.clone();
    both.extend_from_slice(&bad);
    let err = log.append(&mut both).unwrap_err();
    assert!(matches!(err, LogError::CorruptBatch { position, .. } if position == good.len()));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
    assert_eq!(log.append(&mut good).unwrap().base_offset, 0);
}

#[test]
fn reopen_keeps_batches_offsets_and_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), small_config());
        for i in 0..50 {
            log.append(&mut batch_of(i, 3, i64::from(i) * 10, 100))
                .unwrap();
        }
        log.append(&mut idempotent_batch(7, 0, 0, 2)).unwrap();
        log.close().unwrap();
    }
    let log = open(dir.path(), small_config());
    assert!(log.segment_count() > 3, "small segments roll");
    assert_eq!(log.log_end_offset(), 152);
    let mut next = 0;
    let mut seen = 0;
    while next < log.log_end_offset() {
        let r = log.read(next, 1000, true).unwrap();
        let recs = decode(&r.records);
        assert_eq!(recs[0].0, next);
        seen += recs.len();
        next = recs.last().unwrap().0 + 1;
    }
    assert_eq!(seen, 152);
    let dup = log.append(&mut idempotent_batch(7, 0, 0, 2)).unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.base_offset, dup.last_offset), (150, 151));
    assert_eq!(log.log_end_offset(), 152);
    let next = log.append(&mut idempotent_batch(7, 0, 2, 1)).unwrap();
    assert_eq!(next.base_offset, 152);
    assert!(matches!(
        log.append(&mut idempotent_batch(7, 0, 9, 1)),
        Err(LogError::OutOfOrderSequence { expected: 3, .. })
    ));
}

#[test]
fn segments_roll_by_size_and_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 1000,
        segment_ms: 60_000,
        ..LogConfig::default()
    };
    let log = open(dir.path(), config);
    log.append(&mut batch_of(0, 1, 0, 600)).unwrap();
    assert_eq!(log.segment_count(), 1);
    log.append(&mut batch_of(0, 1, 0, 600)).unwrap();
    assert_eq!(log.segment_count(), 2);
    log.append(&mut batch_of(0, 1, 1, 10)).unwrap();
    assert_eq!(log.segment_count(), 2);
    log.append(&mut batch_of(0, 1, 120_000, 10)).unwrap();
    assert_eq!(log.segment_count(), 3);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .collect();
    assert!(
        names.contains(&"00000000000000000003.log".to_string()),
        "{names:?}"
    );
}

#[test]
fn subscribers_see_the_high_watermark_move() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), LogConfig::default()));
    let mut rx = log.subscribe();
    assert_eq!(*rx.borrow_and_update(), 0);
    let writer = Arc::clone(&log);
    let t = std::thread::spawn(move || writer.append(&mut batch_of(0, 4, 0, 10)).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let hw = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), rx.changed())
            .await
            .unwrap()
            .unwrap();
        *rx.borrow()
    });
    t.join().unwrap();
    assert_eq!(hw, 4);
}

#[test]
fn concurrent_writers_with_group_commit_get_all_their_data_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let writers = 8;
    let per_writer = 25;
    let mut acked = Vec::new();
    {
        let log = Arc::new(open(dir.path(), small_config()));
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..per_writer {
                        let info = log.append(&mut batch_of(w * 1000 + i, 2, 0, 50)).unwrap();
                        log.flush_to(info.last_offset).unwrap();
                        assert!(log.flushed_offset() > info.last_offset);
                        mine.push((info.base_offset, format!("k{}-0", w * 1000 + i)));
                    }
                    mine
                })
            })
            .collect();
        for h in handles {
            acked.extend(h.join().unwrap());
        }
        // A crash: no close(), no clean-shutdown snapshot; only what flush_to made
        // durable is relied upon.
        std::mem::forget(log);
    }
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), i64::from(writers * per_writer * 2));
    for (offset, key) in acked {
        let r = log.read(offset, 1 << 16, true).unwrap();
        let first = &decode(&r.records)[0];
        assert_eq!(first.0, offset);
        assert_eq!(first.1.as_deref(), Some(key.as_bytes()));
    }
}

#[test]
fn flush_to_covers_offsets_and_clamps_beyond_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    let info = log.append(&mut batch_of(0, 3, 0, 10)).unwrap();
    assert_eq!(log.flushed_offset(), 0);
    log.flush_to(info.last_offset + 100).unwrap();
    assert_eq!(log.flushed_offset(), 3);
    log.flush().unwrap();
    assert_eq!(log.flushed_offset(), 3);
}

#[test]
fn foreign_files_are_left_alone_and_index_files_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), small_config());
        for i in 0..30 {
            log.append(&mut batch_of(i, 2, 0, 100)).unwrap();
        }
        log.close().unwrap();
    }
    std::fs::write(dir.path().join("README.txt"), b"mine").unwrap();
    let index = dir.path().join("00000000000000000000.index");
    let good = std::fs::read(&index).unwrap();
    assert!(!good.is_empty());
    std::fs::write(&index, b"garbage!").unwrap();
    let log = open(dir.path(), small_config());
    assert_eq!(
        std::fs::read(dir.path().join("README.txt")).unwrap(),
        b"mine"
    );
    assert_eq!(std::fs::read(&index).unwrap(), good);
    assert_eq!(log.log_end_offset(), 60);
    let r = log.read(7, 300, true).unwrap();
    assert_eq!(decode(&r.records)[0].0, 6);
}

#[test]
fn delete_removes_the_directory_and_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let log = open(&path, LogConfig::default());
    log.append(&mut batch_of(0, 1, 0, 1)).unwrap();
    log.delete().unwrap();
    assert!(!path.exists());
    assert!(matches!(
        log.append(&mut batch_of(0, 1, 0, 1)),
        Err(LogError::Closed { .. })
    ));
}

#[test]
fn unreadable_directory_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = crate::log::PartitionLog::open(&file, LogConfig::default()).unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

#[test]
fn offset_for_timestamp_finds_the_first_record_at_or_after_the_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    // 40 batches of 3 records, timestamps 1000*i + (0, 1, 2), across several segments.
    for i in 0..40 {
        log.append(&mut batch_of(i, 3, i64::from(i) * 1000, 100))
            .unwrap();
    }
    assert!(log.segment_count() > 2);
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 0)));
    assert_eq!(log.offset_for_timestamp(5001).unwrap(), Some((16, 5001)));
    assert_eq!(log.offset_for_timestamp(5003).unwrap(), Some((18, 6000)));
    assert_eq!(
        log.offset_for_timestamp(39_002).unwrap(),
        Some((119, 39_002))
    );
    assert_eq!(log.offset_for_timestamp(39_003).unwrap(), None);
    assert_eq!(log.max_timestamp(), Some((39_002, 119)));
    // Timestamps going backwards: the largest one is still found.
    log.append(&mut batch_of(99, 3, 500_000, 10)).unwrap();
    log.append(&mut batch_of(98, 3, 7, 10)).unwrap();
    assert_eq!(log.max_timestamp(), Some((500_002, 122)));
    assert_eq!(
        log.offset_for_timestamp(40_000).unwrap(),
        Some((120, 500_000))
    );
    drop(log);
    let log = open(dir.path(), small_config());
    assert_eq!(log.offset_for_timestamp(5001).unwrap(), Some((16, 5001)));
    assert_eq!(log.max_timestamp(), Some((500_002, 122)));
}

#[test]
fn clean_shutdown_snapshot_is_consumed_and_restores_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("clean-shutdown");
    {
        let log = open(dir.path(), small_config());
        for i in 0..40 {
            log.append(&mut batch_of(i, 3, i64::from(i) * 1000, 100))
                .unwrap();
        }
        log.append(&mut idempotent_batch(5, 2, 0, 3)).unwrap();
        log.close().unwrap();
        assert!(matches!(
            log.append(&mut batch_of(0, 1, 0, 1)),
            Err(LogError::Closed { .. })
        ));
    }
    assert!(snapshot.exists());
    let indexes = |d: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().contains("index"))
            .map(|e| {
                (
                    e.file_name().into_string().unwrap(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = indexes(dir.path());
    let log = open(dir.path(), small_config());
    assert!(
        !snapshot.exists(),
        "a crash after this open must recover the full way"
    );
    assert_eq!(log.log_end_offset(), 123);
    assert!(
        log.append(&mut idempotent_batch(5, 2, 0, 3))
            .unwrap()
            .duplicate
    );
    assert_eq!(log.offset_for_timestamp(5001).unwrap(), Some((16, 5001)));
    assert_eq!(log.max_timestamp(), Some((39_002, 119)));
    for i in 0..10 {
        log.append(&mut batch_of(i, 3, 50_000, 100)).unwrap();
    }
    drop(log);
    let restored = indexes(dir.path());
    assert!(restored.len() == before.len() && restored.len() > 4);
    // The indexes continued from the restored state equal those a full recovery builds.
    std::fs::remove_file(&snapshot).unwrap();
    drop(open(dir.path(), small_config()));
    let recovered = indexes(dir.path());
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(names(&restored), names(&recovered));
    for (a, b) in restored.iter().zip(&recovered) {
        assert!(a.1 == b.1, "{} differs after a full recovery", a.0);
    }
}

#[test]
fn clean_shutdown_snapshot_is_not_trusted_when_a_segment_changed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), small_config());
        for i in 0..40 {
            log.append(&mut batch_of(i, 3, 0, 100)).unwrap();
        }
    }
    // Garbage after the last batch of the first (older) segment.
    let first = dir.path().join("00000000000000000000.log");
    let len = std::fs::metadata(&first).unwrap().len();
    let mut bytes = std::fs::read(&first).unwrap();
    bytes.extend_from_slice(&[0xab; 100]);
    std::fs::write(&first, &bytes).unwrap();
    // And an index file that no longer fits its segment.
    std::fs::write(dir.path().join("00000000000000000000.index"), [0xff; 16]).unwrap();
    let log = open(dir.path(), small_config());
    assert_eq!(std::fs::metadata(&first).unwrap().len(), len, "garbage cut");
    assert_eq!(log.log_end_offset(), 120);
    let r = log.read(2, 1 << 20, true).unwrap();
    assert_eq!(decode(&r.records)[0].0, 0);
}

#[test]
fn reads_running_alongside_appends_see_only_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(open(dir.path(), small_config()));
    let total = 300i64;
    let writer = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for i in 0..total {
                log.append(&mut batch_of(i as u32, 1 + (i as usize % 4), i, 60))
                    .unwrap();
            }
        })
    };
    // Follow the log like a consumer until the writer is done and everything was seen.
    let mut next = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut rx = log.subscribe();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    while next < log.log_end_offset() || !writer.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "reader stuck at {next}"
        );
        rx.borrow_and_update();
        let r = log.read(next, 700, true).unwrap();
        if r.records.is_empty() {
            // Wait for the high watermark to move rather than spinning.
            let _ = rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(50), rx.changed()).await
            });
            continue;
        }
        for rec in decode(&r.records) {
            assert!(rec.0 <= next, "no gap: got {} expecting {next}", rec.0);
            if rec.0 == next {
                next += 1;
            }
        }
    }
    writer.join().unwrap();
    assert_eq!(next, log.log_end_offset());
}
