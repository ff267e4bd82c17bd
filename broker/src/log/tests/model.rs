//! Property test: random appends (keys, tombstones, timestamps out of order), reads at
//! random offsets and budgets, reopenings, retention, DeleteRecords and compaction runs
//! must agree with a plain in-memory model of the log (a list of batches of records).

use proptest::prelude::*;

use crate::log::testutil::{Decoded, Rec, batch, decode};
use std::sync::Arc;

use crate::log::{CleanupPolicy, LogConfig, LogDir, LogError, PartitionLog};

/// A record to append: key, value (None = tombstone), timestamp.
type OwnedRec = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

#[derive(Debug, Clone)]
enum Op {
    /// Records: (key id or none, value length or tombstone, timestamp).
    Append(Vec<(Option<u8>, Option<u8>, i64)>),
    Read {
        at: u16,
        max_bytes: u16,
        min_one: bool,
    },
    Reopen,
    /// Reopen without closing (no clean-shutdown snapshot), as after a crash.
    Crash,
    Retention {
        now_ms: i64,
        retention_ms: i64,
        retention_bytes: i64,
    },
    DeleteRecords(u16),
    Compact(i64),
    ByTimestamp(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let record = (
        prop::option::weighted(0.9, 0u8..8),
        prop::option::weighted(0.8, 0u8..120),
        0i64..10_000,
    );
    prop_oneof![
        8 => prop::collection::vec(record, 1..6).prop_map(Op::Append),
        4 => (any::<u16>(), 0u16..3000, any::<bool>())
            .prop_map(|(at, max_bytes, min_one)| Op::Read { at, max_bytes, min_one }),
        1 => Just(Op::Reopen),
        1 => Just(Op::Crash),
        1 => (0i64..20_000, prop_oneof![Just(-1i64), 0i64..10_000], prop_oneof![Just(-1i64), 0i64..8_000])
            .prop_map(|(now_ms, retention_ms, retention_bytes)| Op::Retention { now_ms, retention_ms, retention_bytes }),
        1 => any::<u16>().prop_map(Op::DeleteRecords),
        2 => (0i64..20_000).prop_map(Op::Compact),
        1 => (0i64..11_000).prop_map(Op::ByTimestamp),
    ]
}

/// The model: batches of decoded records, plus the log start and end offsets.
#[derive(Debug, Default)]
struct Model {
    batches: Vec<Vec<Decoded>>,
    log_start: i64,
    log_end: i64,
}

impl Model {
    /// Batches from the first whose last offset is >= `offset`.
    fn from(&self, offset: i64) -> &[Vec<Decoded>] {
        let i = self
            .batches
            .partition_point(|b| b.last().is_some_and(|r| r.0 < offset));
        &self.batches[i..]
    }

    fn drop_below_log_start(&mut self) {
        let start = self.log_start;
        self.batches
            .retain(|b| b.last().is_some_and(|r| r.0 >= start));
    }
}

fn key(k: u8) -> Vec<u8> {
    format!("key-{k}").into_bytes()
}

/// Reads the whole log from its start and checks it equals the model.
fn check_all(log: &PartitionLog, model: &Model) {
    assert_eq!(log.log_start_offset(), model.log_start, "log start offset");
    assert_eq!(log.log_end_offset(), model.log_end, "log end offset");
    let mut got: Vec<Vec<Decoded>> = Vec::new();
    let mut next = model.log_start;
    loop {
        let r = log.read(next, 1 << 20, true).unwrap();
        if r.records.is_empty() {
            break;
        }
        let mut bytes = &r.records[..];
        while !bytes.is_empty() {
            let h = crate::log::BatchHeader::parse(bytes).unwrap();
            got.push(decode(&bytes[..h.total_size()]));
            bytes = &bytes[h.total_size()..];
        }
        next = got.last().unwrap().last().unwrap().0 + 1;
        assert!(next <= model.log_end);
    }
    assert_eq!(got, model.from(model.log_start), "whole log");
}

fn run(config: LogConfig, ops: Vec<Op>, fd_budget: usize) {
    let dir = tempfile::tempdir().unwrap();
    let log_dir = Arc::new(LogDir::new(dir.path(), 0));
    log_dir.fds().set_budget(fd_budget);
    let open = |config: LogConfig| PartitionLog::open_in(&log_dir, dir.path(), config, false);
    let mut log = open(config.clone()).unwrap();
    let mut model = Model::default();
    for op in ops {
        match op {
            Op::Append(records) => {
                let keys: Vec<OwnedRec> = records
                    .iter()
                    .map(|&(k, v, ts)| (k.map(key), v.map(|n| vec![b'v'; n as usize]), ts))
                    .collect();
                let recs: Vec<Rec<'_>> = keys
                    .iter()
                    .map(|(k, v, ts)| (k.as_deref(), v.as_deref(), *ts))
                    .collect();
                let info = log.append(&mut batch(&recs)).unwrap();
                assert_eq!(info.base_offset, model.log_end);
                let decoded = keys
                    .into_iter()
                    .enumerate()
                    .map(|(i, (k, v, ts))| {
                        (
                            model.log_end + i as i64,
                            k.map(Into::into),
                            v.map(Into::into),
                            ts,
                        )
                    })
                    .collect();
                model.batches.push(decoded);
                model.log_end = info.last_offset + 1;
            }
            Op::Read {
                at,
                max_bytes,
                min_one,
            } => {
                let span = (model.log_end - model.log_start + 1) as u64;
                let offset = model.log_start + (u64::from(at) % span) as i64;
                let r = log.read(offset, usize::from(max_bytes), min_one).unwrap();
                assert!(
                    r.records.len() <= usize::from(max_bytes) || min_one,
                    "budget kept"
                );
                let mut got = Vec::new();
                let mut bytes = &r.records[..];
                while !bytes.is_empty() {
                    let h = crate::log::BatchHeader::parse(bytes).unwrap();
                    got.push(decode(&bytes[..h.total_size()]));
                    bytes = &bytes[h.total_size()..];
                }
                let expected = model.from(offset);
                assert!(got.len() <= expected.len());
                assert_eq!(&got[..], &expected[..got.len()], "read at {offset}");
                if min_one && !expected.is_empty() {
                    // A read may stop at a segment's end but never returns nothing when
                    // there is data at or after the offset.
                    assert!(!got.is_empty(), "min_one read at {offset} returned nothing");
                }
                for bad in [model.log_start - 1, model.log_end + 1] {
                    if bad >= 0 {
                        assert!(matches!(
                            log.read(bad, 100, true),
                            Err(LogError::OffsetOutOfRange { .. })
                        ));
                    }
                }
            }
            Op::Reopen => {
                drop(log);
                log = open(config.clone()).unwrap();
            }
            Op::Crash => {
                let crashed = std::mem::replace(&mut log, open(config.clone()).unwrap());
                std::mem::forget(crashed);
            }
            Op::Retention {
                now_ms,
                retention_ms,
                retention_bytes,
            } => {
                let config = LogConfig {
                    retention_ms,
                    retention_bytes,
                    ..log.config()
                };
                log.update_config(config);
                let segs = log.segment_infos();
                let expected_deleted = expected_retention(
                    &segs,
                    now_ms,
                    retention_ms,
                    retention_bytes,
                    model.log_start,
                );
                let report = log.apply_retention(now_ms).unwrap();
                assert_eq!(
                    report.segments_deleted, expected_deleted,
                    "segments {segs:?}"
                );
                let new_start = if expected_deleted >= segs.len() {
                    model.log_end
                } else {
                    segs[expected_deleted].0
                };
                model.log_start = model.log_start.max(new_start);
                assert_eq!(report.log_start_offset, model.log_start);
                model.drop_below_log_start();
            }
            Op::DeleteRecords(at) => {
                let span = (model.log_end - model.log_start + 1) as u64;
                let offset = model.log_start + (u64::from(at) % span) as i64;
                let start = log.delete_records_before(offset).unwrap();
                model.log_start = model.log_start.max(offset);
                assert_eq!(start, model.log_start);
                model.drop_below_log_start();
            }
            Op::Compact(now_ms) => {
                let active_base = log.segment_infos().last().unwrap().0;
                compact_model(
                    &mut model,
                    active_base,
                    now_ms,
                    log.config().delete_retention_ms,
                );
                log.compact(now_ms).unwrap();
            }
            Op::ByTimestamp(ts) => {
                let expected = model
                    .batches
                    .iter()
                    .flatten()
                    .find(|r| r.0 >= model.log_start && r.3 >= ts)
                    .map(|r| (r.0, r.3));
                assert_eq!(
                    log.offset_for_timestamp(ts).unwrap(),
                    expected,
                    "timestamp {ts}"
                );
            }
        }
        check_all(&log, &model);
    }
}

/// How many of the oldest segments retention deletes, by the documented rules.
fn expected_retention(
    segs: &[(i64, u64, i64, Option<i64>)],
    now_ms: i64,
    retention_ms: i64,
    retention_bytes: i64,
    log_start: i64,
) -> usize {
    let is_last = |i: usize| i + 1 == segs.len();
    let expired = |i: usize| {
        let (_, size, max_ts, _) = segs[i];
        if size == 0 {
            !is_last(i)
        } else {
            now_ms - max_ts > retention_ms
        }
    };
    let by_time = if retention_ms >= 0 {
        (0..segs.len()).take_while(|&i| expired(i)).count()
    } else {
        0
    };
    let mut by_size = 0;
    if retention_bytes >= 0 {
        let mut excess = segs.iter().map(|s| s.1 as i64).sum::<i64>() - retention_bytes;
        while by_size < segs.len() && segs[by_size].1 > 0 && excess >= segs[by_size].1 as i64 {
            excess -= segs[by_size].1 as i64;
            by_size += 1;
        }
    }
    let below_start = (1..segs.len())
        .take_while(|&i| segs[i].0 <= log_start)
        .count();
    by_time.max(by_size).max(below_start)
}

/// Compaction on the model: among records below the active segment, keep the newest per
/// key, drop tombstones older than `delete_retention_ms`, keep records without a key.
fn compact_model(model: &mut Model, active_base: i64, now_ms: i64, delete_retention_ms: i64) {
    let mut newest = std::collections::HashMap::new();
    for r in model.batches.iter().flatten().filter(|r| r.0 < active_base) {
        if let Some(k) = &r.1 {
            newest.insert(k.clone(), r.0);
        }
    }
    for b in model.batches.iter_mut() {
        b.retain(|r| {
            r.0 >= active_base
                || match &r.1 {
                    None => true,
                    Some(k) => {
                        newest[k] == r.0 && (r.2.is_some() || now_ms - r.3 <= delete_retention_ms)
                    }
                }
        });
    }
    model.batches.retain(|b| !b.is_empty());
}

fn config() -> impl Strategy<Value = LogConfig> {
    (300u64..3000, 0u64..600, 0i64..5000).prop_map(
        |(segment_bytes, index_interval_bytes, delete_retention_ms)| LogConfig {
            segment_bytes,
            index_interval_bytes,
            delete_retention_ms,
            retention_ms: -1,
            retention_bytes: -1,
            cleanup_policy: CleanupPolicy::CompactDelete,
            ..LogConfig::default()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn log_agrees_with_an_in_memory_model(config in config(), ops in prop::collection::vec(op(), 1..60)) {
        run(config, ops, 512);
    }

    /// The same with one descriptor for all segments: every read or append after another
    /// segment's reopens its file, and retired segments stay readable.
    #[test]
    fn log_agrees_with_the_model_under_a_one_descriptor_budget(config in config(), ops in prop::collection::vec(op(), 1..60)) {
        run(config, ops, 1);
    }
}
