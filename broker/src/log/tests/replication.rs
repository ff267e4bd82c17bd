//! A follower's log: appends that keep the leader's offsets and epochs, truncation to
//! where it agrees with the leader, and a property test of both (with reopens and
//! crashes) against a model.

use proptest::prelude::*;

use super::{open, small_config};
use crate::log::batch::{set_base_offset, set_partition_leader_epoch};
use crate::log::testutil::{batch_of, decode, idempotent_batch};
use crate::log::{LogError, PartitionLog};

/// `batch` as a leader stored it: at `base` in `epoch`.
fn as_leader_stored(mut batch: Vec<u8>, base: i64, epoch: i32) -> Vec<u8> {
    set_base_offset(&mut batch, base);
    set_partition_leader_epoch(&mut batch, epoch);
    batch
}

/// Every (offset, key) of the log, read from its start up to its log end.
fn contents(log: &PartitionLog) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = log.log_start_offset();
    while at < log.log_end_offset() {
        let r = log
            .read_to(at, 1 << 20, true, crate::log::FetchIsolation::LogEnd)
            .unwrap();
        let recs = decode(&r.records);
        let Some(last) = recs.last() else { break };
        at = last.0 + 1;
        out.extend(
            recs.into_iter()
                .map(|(o, k, _, _)| (o, k.map(|k| k.to_vec()).unwrap_or_default())),
        );
    }
    out
}

#[test]
fn follower_appends_keep_the_leaders_offsets_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    let info = log
        .append_as_follower(&mut as_leader_stored(batch_of(1, 3, 0, 10), 0, 2))
        .unwrap();
    assert_eq!((info.base_offset, info.last_offset), (0, 2));
    let mut two = as_leader_stored(batch_of(2, 2, 0, 10), 3, 2);
    two.extend(as_leader_stored(batch_of(3, 2, 0, 10), 5, 5));
    log.append_as_follower(&mut two).unwrap();
    assert_eq!(log.log_end_offset(), 7);
    assert_eq!(
        log.high_watermark(),
        0,
        "a follower's high watermark is the leader's word"
    );
    assert_eq!(log.end_offset_for_epoch(2), (2, 5));
    assert_eq!(log.end_offset_for_epoch(5), (5, 7));
    let err = log
        .append_as_follower(&mut as_leader_stored(batch_of(4, 1, 0, 10), 6, 5))
        .unwrap_err();
    assert!(matches!(
        err,
        LogError::UnexpectedAppendOffset {
            offset: 6,
            log_end_offset: 7,
            ..
        }
    ));
    // A compacted leader's batches leave offsets out: the log jumps with them.
    log.append_as_follower(&mut as_leader_stored(batch_of(5, 1, 0, 10), 20, 5))
        .unwrap();
    assert_eq!(log.log_end_offset(), 21);
    drop(log);
    let log = open(dir.path(), small_config());
    let offsets: Vec<i64> = contents(&log).into_iter().map(|(o, _)| o).collect();
    assert_eq!(offsets, vec![0, 1, 2, 3, 4, 5, 6, 20]);
}

#[test]
fn truncation_drops_records_segments_and_epochs_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    for i in 0..30u32 {
        let epoch = if i < 20 { 1 } else { 2 };
        let base = log.log_end_offset();
        log.append_as_follower(&mut as_leader_stored(batch_of(i, 2, 0, 300), base, epoch))
            .unwrap();
    }
    log.advance_high_watermark(50);
    assert!(log.segment_count() > 3);
    let segments = log.segment_count();
    // Offset 25 is inside the batch 24..25: that batch goes whole.
    assert_eq!(log.truncate_to(25).unwrap(), 24);
    assert_eq!(log.log_end_offset(), 24);
    assert_eq!(log.high_watermark(), 24, "the high watermark is clamped");
    assert!(log.segment_count() < segments);
    assert_eq!(log.latest_epoch(), Some(1), "epoch 2 began at 40: gone");
    assert_eq!(log.end_offset_for_epoch(1), (1, 24));
    assert_eq!(
        log.end_offset_for_epoch(2),
        (-1, -1),
        "an epoch newer than any left"
    );
    // The log goes on from the cut, and a reopen (clean or not) finds the same.
    log.append_as_follower(&mut as_leader_stored(batch_of(99, 2, 0, 300), 24, 3))
        .unwrap();
    let expected = contents(&log);
    assert_eq!(expected.last().unwrap().0, 25);
    assert_eq!(expected[24].1, b"k99-0".to_vec());
    drop(log);
    let log = open(dir.path(), small_config());
    assert_eq!(contents(&log), expected);
    assert_eq!(log.end_offset_for_epoch(1), (1, 24));
    let crashed = log;
    let log = open(dir.path(), small_config());
    std::mem::forget(crashed);
    assert_eq!(contents(&log), expected);
}

#[test]
fn truncation_rebuilds_producer_state_so_retries_of_cut_batches_are_appended_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    log.append(&mut idempotent_batch(7, 0, 0, 2)).unwrap();
    log.append(&mut idempotent_batch(7, 0, 2, 2)).unwrap();
    assert!(
        log.append(&mut idempotent_batch(7, 0, 2, 2))
            .unwrap()
            .duplicate
    );
    log.truncate_to(2).unwrap();
    let again = log.append(&mut idempotent_batch(7, 0, 2, 2)).unwrap();
    assert!(!again.duplicate, "the cut batch is no longer in the log");
    assert_eq!(again.base_offset, 2);
    assert!(matches!(
        log.append(&mut idempotent_batch(7, 0, 6, 1)),
        Err(LogError::OutOfOrderSequence { .. })
    ));
}

#[test]
fn truncating_fully_starts_the_log_empty_at_the_given_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    for i in 0..10u32 {
        log.append(&mut batch_of(i, 2, 0, 300)).unwrap();
    }
    assert_eq!(log.truncate_fully_and_start_at(100).unwrap(), 100);
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.high_watermark()
        ),
        (100, 100, 100)
    );
    assert_eq!(log.latest_epoch(), None);
    log.append_as_follower(&mut as_leader_stored(batch_of(1, 2, 0, 10), 100, 4))
        .unwrap();
    drop(log);
    let log = open(dir.path(), small_config());
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 102));
    assert_eq!(contents(&log).first().unwrap().0, 100);
    // Below the log start: the same.
    assert_eq!(log.truncate_to(50).unwrap(), 50);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (50, 50));
}

#[derive(Debug, Clone)]
enum Op {
    /// The leader of `epoch` sends a batch of this many records.
    Append {
        records: u8,
        epoch_step: u8,
    },
    /// Truncate at this offset (modulo the log end + 1).
    Truncate(u16),
    Reopen,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..5, 0u8..2).prop_map(|(records, epoch_step)| Op::Append { records, epoch_step }),
        2 => any::<u16>().prop_map(Op::Truncate),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn follower_log_agrees_with_a_model(ops in prop::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), small_config());
        // The model: (first offset, epoch, records) per batch.
        let mut model: Vec<(i64, i32, u8)> = Vec::new();
        let mut epoch = 0;
        let mut seed = 0u32;
        for op in ops {
            match op {
                Op::Append { records, epoch_step } => {
                    epoch += i32::from(epoch_step);
                    seed += 1;
                    let base = model.last().map_or(0, |&(b, _, n)| b + i64::from(n));
                    let mut b = as_leader_stored(batch_of(seed, usize::from(records), 0, 200), base, epoch);
                    log.append_as_follower(&mut b).unwrap();
                    model.push((base, epoch, records));
                }
                Op::Truncate(at) => {
                    let end = log.log_end_offset();
                    let at = i64::from(at) % (end + 1);
                    let new_end = log.truncate_to(at).unwrap();
                    model.retain(|&(b, _, n)| b + i64::from(n) <= at);
                    let model_end = model.last().map_or(0, |&(b, _, n)| b + i64::from(n));
                    if at == 0 {
                        prop_assert_eq!(new_end, 0);
                    } else {
                        prop_assert_eq!(new_end, model_end);
                    }
                }
                Op::Reopen => {
                    drop(log);
                    log = open(dir.path(), small_config());
                }
                Op::Crash => {
                    let crashed = std::mem::replace(&mut log, open(dir.path(), small_config()));
                    std::mem::forget(crashed);
                }
            }
            let end = model.last().map_or(0, |&(b, _, n)| b + i64::from(n));
            prop_assert_eq!(log.log_end_offset(), end);
            let offsets: Vec<i64> = contents(&log).into_iter().map(|(o, _)| o).collect();
            let expected: Vec<i64> = (0..end).collect();
            prop_assert_eq!(offsets, expected);
            prop_assert_eq!(log.latest_epoch(), model.last().map(|&(_, e, _)| e));
            for &(base, e, _) in &model {
                let next = model.iter().find(|&&(_, e2, _)| e2 > e).map_or(end, |&(b, _, _)| b);
                let first = model.iter().find(|&&(_, e2, _)| e2 == e).map_or(base, |&(b, _, _)| b);
                prop_assert!(first <= base);
                prop_assert_eq!(log.end_offset_for_epoch(e), (e, next));
            }
        }
    }
}
