//! Fault tests: the last segment cut at every byte of its last batches, or with a bit
//! flipped there, must reopen with every whole batch before the damage intact, never
//! hand out a damaged batch, and go on appending right after the last intact batch.

use std::path::{Path, PathBuf};

use super::{open, small_config};
use crate::log::testutil::{batch_of, decode};
use crate::log::{LogConfig, LogError, PartitionLog};

/// A closed log of several segments; returns its directory, the last segment's path and
/// (position, base offset, last offset) of every batch in the last segment.
struct Fixture {
    dir: tempfile::TempDir,
    last_segment: PathBuf,
    batches: Vec<(u64, i64, i64)>,
    segment_len: u64,
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2000,
        index_interval_bytes: 100,
        ..small_config()
    }
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config());
    let mut batches = Vec::new();
    let mut segments = 0;
    for i in 0..40u32 {
        let mut b = batch_of(i, 1 + (i as usize % 3), i64::from(i), 40);
        let len = b.len() as u64;
        let info = log.append(&mut b).unwrap();
        if log.segment_count() != segments {
            // A roll: only the batches of the last segment matter.
            batches.clear();
            segments = log.segment_count();
        }
        batches.push((len, info.base_offset, info.last_offset));
    }
    log.close().unwrap();
    drop(log);
    // Turn sizes into positions.
    let mut pos = 0;
    let batches: Vec<_> = batches
        .into_iter()
        .map(|(len, base, last)| {
            let at = pos;
            pos += len;
            (at, base, last)
        })
        .collect();
    let first_base = batches[0].1;
    let last_segment = dir.path().join(format!("{first_base:020}.log"));
    let segment_len = std::fs::metadata(&last_segment).unwrap().len();
    assert_eq!(segment_len, pos, "positions add up to the segment size");
    assert!(batches.len() >= 4, "the last segment holds several batches");
    Fixture {
        dir,
        last_segment,
        batches,
        segment_len,
    }
}

fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
    }
    to
}

/// Reopens a damaged copy and checks what survives: everything before `intact_end`
/// (the end offset of the last batch wholly before the damage), nothing damaged, and
/// appends continuing at `intact_end`.
fn check_reopen(dir: &Path, intact_end: i64, what: &str) {
    let log = PartitionLog::open(dir, config()).unwrap();
    assert_eq!(log.log_end_offset(), intact_end, "{what}");
    let mut next = 0;
    while next < log.log_end_offset() {
        let r = log.read(next, 100_000, true).unwrap();
        // decode() verifies every CRC32C: a damaged batch would fail here.
        let recs = decode(&r.records);
        assert!(!recs.is_empty(), "{what}: no progress at {next}");
        for (i, rec) in recs.iter().enumerate() {
            assert_eq!(rec.0, next + i as i64, "{what}: offsets run on");
        }
        next = recs.last().unwrap().0 + 1;
    }
    assert_eq!(next, intact_end, "{what}");
    let info = log.append(&mut batch_of(999, 2, 0, 10)).unwrap();
    assert_eq!(info.base_offset, intact_end, "{what}");
    drop(log);
    let log = PartitionLog::open(dir, config()).unwrap();
    assert_eq!(
        log.log_end_offset(),
        intact_end + 2,
        "{what}: new append survives"
    );
}

#[test]
fn recovery_truncates_a_segment_cut_at_every_byte_of_its_last_batches() {
    let f = fixture();
    let n = f.batches.len();
    let from = f.batches[n - 3].0;
    for cut in from..f.segment_len {
        let copy = copy_dir(f.dir.path());
        let seg = copy.path().join(f.last_segment.file_name().unwrap());
        std::fs::OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();
        // The last batch that ends at or before the cut survives.
        let intact_end = f
            .batches
            .iter()
            .zip(f.batches.iter().skip(1).map(|b| b.0).chain([f.segment_len]))
            .filter(|&(_, end)| end <= cut)
            .map(|(&(_, _, last), _)| last + 1)
            .max()
            .unwrap_or(f.batches[0].1);
        check_reopen(copy.path(), intact_end, &format!("cut at {cut}"));
    }
}

#[test]
fn recovery_drops_a_batch_with_a_flipped_bit_and_everything_after_it() {
    let f = fixture();
    let n = f.batches.len();
    let from = f.batches[n - 3].0;
    for pos in from..f.segment_len {
        let (batch_pos, batch_base, _) = *f.batches.iter().rev().find(|b| b.0 <= pos).unwrap();
        // partitionLeaderEpoch (bytes 12..16) is covered by no checksum in Kafka's format.
        if (12..16).contains(&(pos - batch_pos)) {
            continue;
        }
        let copy = copy_dir(f.dir.path());
        let seg = copy.path().join(f.last_segment.file_name().unwrap());
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[pos as usize] ^= 1 << (pos % 8);
        std::fs::write(&seg, &bytes).unwrap();
        check_reopen(copy.path(), batch_base, &format!("bit flipped at {pos}"));
    }
}

/// Set in the child process of the full-disk test: the log directory to work in.
const FULL_DISK_ENV: &str = "STRAND_TEST_FULL_DISK_DIR";

/// Runs in a child process (the same test binary), because the file size limit that makes
/// the kernel refuse a write half-way is process-wide.
fn full_disk_child(dir: &Path) {
    let log = PartitionLog::open(dir, LogConfig::default()).unwrap();
    let one = batch_of(0, 2, 0, 400);
    for i in 0..10 {
        log.append(&mut batch_of(i, 2, 0, 400)).unwrap();
    }
    let size = log.size_bytes();
    let segment = dir.join("00000000000000000000.log");
    // SAFETY: plain libc calls with valid arguments; the limit is raised again below.
    unsafe {
        // A write past the limit then fails with EFBIG instead of killing the process.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut limit: libc::rlimit = std::mem::zeroed();
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        let saved = limit;
        // Room for half of the next batch: the kernel writes that much, then refuses.
        limit.rlim_cur = size + one.len() as u64 / 2;
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
        let err = log.append(&mut batch_of(10, 2, 0, 400)).unwrap_err();
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &saved), 0);
        assert!(
            matches!(&err, crate::log::LogError::Io { path, .. } if path == &segment),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::metadata(&segment).unwrap().len(),
        size,
        "no partial batch left"
    );
    assert_eq!(log.size_bytes(), size);
    assert_eq!(log.log_end_offset(), 20);
    let info = log.append(&mut batch_of(11, 2, 0, 400)).unwrap();
    assert_eq!(info.base_offset, 20);
}

#[test]
fn append_failing_on_a_full_disk_leaves_no_partial_batch() {
    if let Some(dir) = std::env::var_os(FULL_DISK_ENV) {
        full_disk_child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "log::tests::faults::append_failing_on_a_full_disk_leaves_no_partial_batch",
            "--nocapture",
        ])
        .env(FULL_DISK_ENV, dir.path())
        .output()
        .unwrap();
    let output =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {output}");
    assert!(
        output.contains("1 passed"),
        "the child ran the test: {output}"
    );
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.log_end_offset(), 22);
    let r = log.read(18, 1 << 20, true).unwrap();
    let offsets: Vec<i64> = decode(&r.records).iter().map(|r| r.0).collect();
    assert_eq!(offsets, vec![18, 19, 20, 21]);
}

#[test]
fn deleted_active_segment_takes_the_log_offline_and_reopen_keeps_its_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    for i in 0..5 {
        log.append(&mut batch_of(i, 2, 0, 10)).unwrap();
    }
    log.check_files().unwrap();
    std::fs::remove_file(dir.path().join("00000000000000000000.log")).unwrap();
    let err = log.check_files().unwrap_err();
    assert!(
        matches!(&err, LogError::Offline { reason, .. } if reason.contains("00000000000000000000.log was deleted")),
        "{err}"
    );
    assert!(log.offline_reason().is_some());
    assert!(matches!(
        log.append(&mut batch_of(9, 1, 0, 10)),
        Err(LogError::Offline { .. })
    ));
    assert!(matches!(
        log.read(0, 1000, true),
        Err(LogError::Offline { .. })
    ));
    assert!(matches!(log.flush(), Err(LogError::Offline { .. })));
    drop(log);
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), 10, "offsets 0..10 are never reused");
    assert_eq!(log.log_start_offset(), 10);
    assert_eq!(
        log.append(&mut batch_of(10, 1, 0, 10)).unwrap().base_offset,
        10
    );
}

#[test]
fn flush_refuses_to_acknowledge_into_a_replaced_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    log.append(&mut batch_of(0, 2, 0, 10)).unwrap();
    log.flush().unwrap();
    let info = log.append(&mut batch_of(1, 2, 0, 10)).unwrap();
    // A copy put in its place: same name and content, another file.
    let segment = dir.path().join("00000000000000000000.log");
    let copy = dir.path().join("copy");
    std::fs::copy(&segment, &copy).unwrap();
    std::fs::rename(&copy, &segment).unwrap();
    let err = log.flush_to(info.last_offset).unwrap_err();
    assert!(
        matches!(&err, LogError::Offline { reason, .. } if reason.contains("was replaced")),
        "{err}"
    );
    // A crash now: the record written at the time of the loss is the one the next open
    // goes on from.
    std::mem::forget(log);
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn reopen_after_every_segment_vanished_goes_on_from_the_recorded_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    for i in 0..40 {
        log.append(&mut batch_of(i, 3, 0, 40)).unwrap();
    }
    assert!(log.segment_count() > 2);
    log.close().unwrap();
    drop(log);
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "log") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), 120);
    assert_eq!(
        log.append(&mut batch_of(99, 1, 0, 10)).unwrap().base_offset,
        120
    );
    drop(log);
    assert_eq!(open(dir.path(), small_config()).log_end_offset(), 121);
}
