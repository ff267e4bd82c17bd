//! The log's leader epochs: the leader stamps its epoch into every batch it appends, the
//! leader-epoch cache learns where each epoch began (from the batches themselves, so a
//! follower's copy learns the same), and it stays true across reopen, a torn tail and
//! DeleteRecords.

use super::{open, small_config};
use crate::log::batch::BatchHeader;
use crate::log::leader_epoch::CHECKPOINT_FILE;
use crate::log::testutil::batch_of;
use crate::log::{FetchIsolation, LogConfig};

/// The `partitionLeaderEpoch` of every batch the log holds, with its base offset.
fn stored_epochs(log: &crate::log::PartitionLog) -> Vec<(i64, i32)> {
    let r = log
        .read_to(0, 1 << 20, true, FetchIsolation::LogEnd)
        .unwrap()
        .records;
    crate::log::frames(&r)
        .map(|f| {
            let h = f.unwrap().header().unwrap();
            (h.base_offset, h.partition_leader_epoch)
        })
        .collect()
}

#[test]
fn the_leader_stamps_its_epoch_and_the_cache_answers_where_each_ends() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), LogConfig::default());
    log.append_as_leader(&mut batch_of(1, 3, 0, 10), 0).unwrap();
    log.append_as_leader(&mut batch_of(2, 2, 0, 10), 0).unwrap();
    log.append_as_leader(&mut batch_of(3, 4, 0, 10), 2).unwrap();
    log.append_as_leader(&mut batch_of(4, 1, 0, 10), 5).unwrap();
    assert_eq!(stored_epochs(&log), vec![(0, 0), (3, 0), (5, 2), (9, 5)]);
    assert_eq!(log.latest_epoch(), Some(5));
    assert_eq!(log.end_offset_for_epoch(0), (0, 5));
    assert_eq!(log.end_offset_for_epoch(1), (0, 5));
    assert_eq!(log.end_offset_for_epoch(2), (2, 9));
    assert_eq!(log.end_offset_for_epoch(5), (5, 10));
    assert_eq!(log.end_offset_for_epoch(6), (-1, -1));

    // A copy that appends the leader's batches as they are (a follower) learns the same.
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = open(copy_dir.path(), LogConfig::default());
    let mut all = log
        .read_to(0, 1 << 20, true, FetchIsolation::LogEnd)
        .unwrap()
        .records
        .to_vec();
    copy.append_uncommitted(&mut all).unwrap();
    for epoch in 0..7 {
        assert_eq!(
            copy.end_offset_for_epoch(epoch),
            log.end_offset_for_epoch(epoch)
        );
    }
    drop(log);
    let log = open(dir.path(), LogConfig::default());
    assert_eq!(log.end_offset_for_epoch(2), (2, 9), "kept across a reopen");
}

#[test]
fn a_torn_tail_and_delete_records_cut_the_epochs_they_remove() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    log.append_as_leader(&mut batch_of(1, 3, 0, 10), 1).unwrap();
    log.append_as_leader(&mut batch_of(2, 3, 0, 10), 3).unwrap();
    let last = batch_of(3, 2, 0, 10);
    log.append_as_leader(&mut last.clone(), 4).unwrap();
    log.flush().unwrap();
    drop(log);

    // A crash that lost half of the epoch-4 batch: recovery drops it, and the cache
    // forgets epoch 4 rather than claim records the log does not have.
    let segment = dir.path().join("00000000000000000000.log");
    let len = std::fs::metadata(&segment).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(len - (last.len() as u64 - BatchHeader::SIZE as u64))
        .unwrap();
    drop(file);
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.latest_epoch(), Some(3));
    assert_eq!(log.end_offset_for_epoch(3), (3, 6));
    assert_eq!(log.end_offset_for_epoch(4), (-1, -1));

    // DeleteRecords past the start of epoch 3: epoch 3 now starts at the new log start.
    log.advance_high_watermark(6);
    log.delete_records_before(4).unwrap();
    assert_eq!(log.end_offset_for_epoch(1), (1, 4));
    let text = std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap();
    assert_eq!(text, "0\n1\n3 4\n");
}
