//! Criterion benchmarks of the partition log: append throughput of 1 KiB records in
//! 16 KiB and 64 KiB batches, without fsync and with group-commit fsync from 1, 4 and 16
//! writer threads, and sequential reads from the page cache; plus, as the floor an append
//! is measured against, plain `pwrite`s of the same bytes. Throughput is in bytes of
//! batches. The log lives in a temporary directory under `STRAND_BENCH_DIR` (default: the
//! system temp dir), so that it can be put on the disk whose bandwidth is compared.
//! Retention keeps the log at a few hundred MiB so a run does not fill the disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strand_broker::{LogConfig, PartitionLog};

const RECORD: usize = 1024;

/// One uncompressed batch of `count` records with 1 KiB values (the batch is a little
/// larger than `count` KiB because of record and batch headers).
fn batch(count: usize) -> Vec<u8> {
    let value = Bytes::from(vec![b'x'; RECORD - 40]);
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1 + i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("key-{i:08}"))),
            value: Some(value.clone()),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encodable batch");
    buf.to_vec()
}

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("STRAND_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(PathBuf::from(d)).expect("bench dir"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 128 << 20,
        retention_bytes: 384 << 20,
        retention_ms: -1,
        ..LogConfig::default()
    }
}

/// Runs `iters` appends split over `writers` threads, each waiting for its append to be
/// fsynced when `fsync` is set; returns the elapsed time.
fn run_appends(
    log: &Arc<PartitionLog>,
    template: &[u8],
    iters: u64,
    writers: u64,
    fsync: bool,
) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            let log = Arc::clone(log);
            let n = iters / writers + u64::from(w < iters % writers);
            s.spawn(move || {
                let mut buf = template.to_vec();
                for i in 0..n {
                    // offsets are rewritten in place; the CRC does not cover them, so the
                    // same buffer can be appended again.
                    let info = log.append(&mut buf).expect("append");
                    if fsync {
                        log.flush_to(info.last_offset).expect("flush");
                    }
                    if w == 0 && i % 4096 == 4095 {
                        log.apply_retention(0).expect("retention");
                    }
                }
            });
        }
    });
    let elapsed = start.elapsed();
    log.apply_retention(0).expect("retention");
    elapsed
}

/// The floor for an append: the same bytes written with one `pwrite` each to files of
/// 128 MiB, the oldest deleted beyond three, as the log's segments and retention do.
fn run_raw_writes(dir: &std::path::Path, template: &[u8], iters: u64) -> Duration {
    use std::os::unix::fs::FileExt;
    const FILE: u64 = 128 << 20;
    let name = |n: u64| dir.join(format!("raw-{n}"));
    let start = Instant::now();
    let mut n = 0;
    let mut file = std::fs::File::create(name(n)).expect("create");
    let mut pos = 0;
    for _ in 0..iters {
        if pos + template.len() as u64 > FILE {
            n += 1;
            file = std::fs::File::create(name(n)).expect("create");
            pos = 0;
            if n >= 3 {
                std::fs::remove_file(name(n - 3)).expect("remove");
            }
        }
        file.write_all_at(template, pos).expect("write");
        pos += template.len() as u64;
    }
    let elapsed = start.elapsed();
    for i in n.saturating_sub(3)..=n {
        let _ = std::fs::remove_file(name(i));
    }
    elapsed
}

fn appends(c: &mut Criterion) {
    for (label, count) in [("16KiB", 16), ("64KiB", 64)] {
        let template = batch(count);
        let mut group = c.benchmark_group(format!("append_{label}"));
        group.throughput(Throughput::Bytes(template.len() as u64));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(4));
        let dir = bench_dir();
        let log = Arc::new(PartitionLog::open(dir.path(), config()).expect("open"));
        let raw_dir = bench_dir();
        group.bench_function("raw_pwrite_baseline", |b| {
            b.iter_custom(|iters| run_raw_writes(raw_dir.path(), &template, iters))
        });
        group.bench_function("no_fsync", |b| {
            b.iter_custom(|iters| run_appends(&log, &template, iters, 1, false))
        });
        for writers in [1u64, 4, 16] {
            group.bench_with_input(
                BenchmarkId::new("group_commit_writers", writers),
                &writers,
                |b, &writers| {
                    b.iter_custom(|iters| run_appends(&log, &template, iters, writers, true))
                },
            );
        }
        group.finish();
    }
}

fn reads(c: &mut Criterion) {
    let template = batch(64);
    let dir = bench_dir();
    let config = LogConfig {
        segment_bytes: 1 << 30,
        ..config()
    };
    let log = PartitionLog::open(dir.path(), config).expect("open");
    let mut buf = template.clone();
    while log.size_bytes() < 256 << 20 {
        log.append(&mut buf).expect("append");
    }
    log.flush().expect("flush");
    let max_bytes = 1 << 20;
    let per_read = log.read(0, max_bytes, true).expect("read").records.len();
    let end = log.log_end_offset();

    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Bytes(per_read as u64));
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    let mut next = 0;
    group.bench_function("sequential_1MiB_page_cache", |b| {
        b.iter(|| {
            let r = log.read(next, max_bytes, true).expect("read");
            assert_eq!(r.records.len(), per_read);
            // Whole batches of 64 records: the next read starts after the last one.
            next += (per_read / template.len()) as i64 * 64;
            if next + (per_read / template.len()) as i64 * 64 > end {
                next = 0;
            }
            r
        })
    });
    group.finish();
}

criterion_group!(benches, appends, reads);
criterion_main!(benches);
