//! [`LogDir`]: the data directory every partition log of the broker lives in, as one
//! failure domain: its free space, the reserve kept for internal topics, and the write
//! failures and offline partitions seen in it, which `/health` reports.
//!
//! A full disk must not be silent. Free space is probed with `statvfs` (at most once a
//! second from the append path, and by the background flusher); once it drops under the
//! configured reserve, appends to user topics are refused with `KAFKA_STORAGE_ERROR`
//! before they reach the disk, while the internal topics (`__consumer_offsets`,
//! `_schemas`, `__transaction_state`) may still use the reserve for their small writes,
//! so that offset commits and schema registrations go on. A write that fails anyway (the
//! kernel's ENOSPC, EFBIG, EIO) is logged with the file and the free space, and the
//! partition counts as failing until one of its writes succeeds again. Logs are
//! rate-limited to one line per kind every ten seconds, saying how many were held back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{FdCache, LogError};

/// How old a free-space probe may be before the append path probes again.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// At most one log line of each kind per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Measures the free space of the file system holding a path, in bytes.
pub type SpaceProbe = Box<dyn Fn(&Path) -> std::io::Result<u64> + Send + Sync>;

/// The broker's data directory as a failure domain (see the module doc).
pub struct LogDir {
    path: PathBuf,
    reserve_bytes: u64,
    probe: SpaceProbe,
    start: Instant,
    /// Free bytes at the last probe, less what was appended since.
    free: AtomicU64,
    /// Milliseconds since `start` of the last probe, `u64::MAX` before the first.
    probed_at: AtomicU64,
    /// Free space was under the reserve at the last probe.
    low: AtomicBool,
    /// Partitions whose last write failed, or that went offline, by their directory.
    failing: Mutex<BTreeMap<PathBuf, Failure>>,
    any_failing: AtomicBool,
    low_log: RateLimit,
    failure_log: RateLimit,
    /// The budget of open segment files shared by the directory's logs.
    fds: Arc<FdCache>,
}

impl std::fmt::Debug for LogDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogDir")
            .field("path", &self.path)
            .field("reserve_bytes", &self.reserve_bytes)
            .finish_non_exhaustive()
    }
}

/// Why a partition counts as failing.
#[derive(Debug, Clone)]
struct Failure {
    reason: String,
    /// An offline partition stays failing until restart; a failed write until the next
    /// one succeeds.
    permanent: bool,
}

impl LogDir {
    /// The data directory at `path`, refusing user-topic appends once its file system has
    /// less than `reserve_bytes` free (0: no reserve).
    pub fn new(path: &Path, reserve_bytes: u64) -> LogDir {
        Self::with_probe(path, reserve_bytes, Box::new(free_bytes))
    }

    /// Like [`LogDir::new`], measuring free space with `probe` (tests use a fake one).
    pub fn with_probe(path: &Path, reserve_bytes: u64, probe: SpaceProbe) -> LogDir {
        LogDir {
            path: path.to_path_buf(),
            reserve_bytes,
            probe,
            start: Instant::now(),
            free: AtomicU64::new(u64::MAX),
            probed_at: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
            failing: Mutex::new(BTreeMap::new()),
            any_failing: AtomicBool::new(false),
            low_log: RateLimit::default(),
            failure_log: RateLimit::default(),
            fds: Arc::new(FdCache::default()),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The budget of open segment files its logs share.
    pub fn fds(&self) -> &Arc<FdCache> {
        &self.fds
    }

    /// Bytes kept free for internal topics.
    pub fn reserve_bytes(&self) -> u64 {
        self.reserve_bytes
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// Probes the free space now (the background flusher calls this every interval),
    /// updating and logging the low-space state; returns the free bytes.
    pub fn refresh(&self) -> Option<u64> {
        let free = match (self.probe)(&self.path) {
            Ok(free) => free,
            Err(e) => {
                tracing::debug!(dir = %self.path.display(), error = %e, "statvfs failed");
                return None;
            }
        };
        self.free.store(free, Ordering::Relaxed);
        self.probed_at.store(self.now_ms(), Ordering::Relaxed);
        let low = self.reserve_bytes > 0 && free < self.reserve_bytes;
        let was_low = self.low.swap(low, Ordering::Relaxed);
        if low {
            self.log_low(free);
        } else if was_low {
            tracing::info!(dir = %self.path.display(), free_bytes = free,
                "log dir has space again; appends to every topic are accepted");
        }
        Some(free)
    }

    fn log_low(&self, free: u64) {
        self.low_log.run(self.now_ms(), |held_back| {
            tracing::error!(
                dir = %self.path.display(),
                free_bytes = free,
                reserve_bytes = self.reserve_bytes,
                held_back,
                "log dir {} is short of space: {free} bytes free, under the {} bytes \
                 reserved for internal topics; appends to other topics are refused with \
                 KAFKA_STORAGE_ERROR until space is freed",
                self.path.display(),
                self.reserve_bytes
            );
        });
    }

    /// Admits an append of `len` bytes, or refuses it when it would eat into the reserve
    /// and the log may not (`may_use_reserve`: internal topics).
    pub(crate) fn admit(&self, len: u64, may_use_reserve: bool) -> Result<(), LogError> {
        if self.reserve_bytes == 0 {
            return Ok(());
        }
        let probed_at = self.probed_at.load(Ordering::Relaxed);
        let stale = probed_at == u64::MAX
            || self.now_ms().saturating_sub(probed_at) >= PROBE_EVERY.as_millis() as u64;
        if stale {
            self.refresh();
        }
        let free = self.free.load(Ordering::Relaxed);
        if may_use_reserve || free >= self.reserve_bytes.saturating_add(len) {
            return Ok(());
        }
        // Perhaps crossed by appends since the last probe: say so now, not at the next.
        self.low.store(true, Ordering::Relaxed);
        self.log_low(free);
        Err(LogError::NoSpace {
            dir: self.path.clone(),
            free_bytes: free,
            reserve_bytes: self.reserve_bytes,
        })
    }

    /// Counts `len` bytes just written into the free-space estimate, and clears a write
    /// failure of the partition in `log`.
    pub(crate) fn appended(&self, log: &Path, len: u64) {
        let _ = self
            .free
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |f| {
                Some(f.saturating_sub(len))
            });
        if self.any_failing.load(Ordering::Relaxed) {
            let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
            if failing.get(log).is_some_and(|f| !f.permanent) {
                failing.remove(log);
                tracing::info!(dir = %log.display(), "writes to the partition succeed again");
            }
            self.any_failing
                .store(!failing.is_empty(), Ordering::Relaxed);
        }
    }

    /// Records (and logs, rate-limited) a failed write to the partition in `log`.
    pub(crate) fn write_failed(&self, log: &Path, error: &LogError) {
        let free = self.refresh();
        let free_text = free.map_or_else(|| "unknown".to_string(), |f| f.to_string());
        self.failure_log.run(self.now_ms(), |held_back| {
            tracing::error!(
                dir = %log.display(),
                free_bytes = free_text,
                held_back,
                "write to the log failed ({error}); {free_text} bytes free in {}; the \
                 partition answers KAFKA_STORAGE_ERROR until a write succeeds again",
                self.path.display()
            );
        });
        self.set_failing(
            log,
            Failure {
                reason: format!("write failed: {error} ({free_text} bytes free)"),
                permanent: false,
            },
        );
    }

    /// Records that the partition in `log` went offline (a file vanished under it).
    pub(crate) fn went_offline(&self, log: &Path, reason: &str) {
        self.set_failing(
            log,
            Failure {
                reason: format!("offline: {reason}"),
                permanent: true,
            },
        );
    }

    fn set_failing(&self, log: &Path, failure: Failure) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        if failing.get(log).is_none_or(|f| !f.permanent) {
            failing.insert(log.to_path_buf(), failure);
        }
        self.any_failing.store(true, Ordering::Relaxed);
    }

    /// What is wrong with the directory, one line each; empty when healthy.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.low.load(Ordering::Relaxed) {
            problems.push(format!(
                "log dir {}: {} bytes free, under the {} bytes reserved for internal topics",
                self.path.display(),
                self.free.load(Ordering::Relaxed),
                self.reserve_bytes
            ));
        }
        let failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        for (log, f) in failing.iter() {
            problems.push(format!(
                "log dir {}: partition {}: {}",
                self.path.display(),
                log.display(),
                f.reason
            ));
        }
        problems
    }

    /// Forgets a partition whose log was deleted (its topic went away).
    pub(crate) fn forget(&self, log: &Path) {
        let mut failing = self.failing.lock().unwrap_or_else(PoisonError::into_inner);
        failing.remove(log);
        self.any_failing
            .store(!failing.is_empty(), Ordering::Relaxed);
    }
}

/// Lets one log line through per [`LOG_EVERY`], counting the ones held back.
#[derive(Debug, Default)]
struct RateLimit {
    /// Milliseconds (on the owner's clock) of the last line let through, plus one; 0: none.
    last: AtomicU64,
    held_back: AtomicU64,
}

impl RateLimit {
    fn run(&self, now_ms: u64, log: impl FnOnce(u64)) {
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now_ms + 1 >= last + LOG_EVERY.as_millis() as u64;
        if due
            && self
                .last
                .compare_exchange(last, now_ms + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            log(self.held_back.swap(0, Ordering::Relaxed));
        } else {
            self.held_back.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Free bytes for an unprivileged writer on the file system holding `path` (`statvfs`).
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs writes into the zeroed struct we own, given a valid C string.
    let stat = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut stat) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        stat
    };
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(free: &Arc<AtomicU64>) -> SpaceProbe {
        let free = Arc::clone(free);
        Box::new(move |_| Ok(free.load(Ordering::Relaxed)))
    }

    #[test]
    fn user_appends_are_refused_under_the_reserve_and_internal_ones_use_it() {
        let free = Arc::new(AtomicU64::new(10_000));
        let dir = LogDir::with_probe(Path::new("/data"), 5_000, fake(&free));
        dir.admit(1_000, false).unwrap();
        assert!(dir.problems().is_empty());

        free.store(4_000, Ordering::Relaxed);
        dir.refresh();
        let err = dir.admit(100, false).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::NoSpace {
                    free_bytes: 4_000,
                    reserve_bytes: 5_000,
                    ..
                }
            ),
            "{err}"
        );
        dir.admit(100, true).unwrap();
        let problems = dir.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("/data") && problems[0].contains("4000 bytes free"));

        // Space comes back: healthy again at the next probe.
        free.store(50_000, Ordering::Relaxed);
        dir.refresh();
        assert!(dir.problems().is_empty());
        dir.admit(100, false).unwrap();
    }

    #[test]
    fn appends_since_the_last_probe_count_against_the_free_space() {
        let free = Arc::new(AtomicU64::new(10_000));
        let dir = LogDir::with_probe(Path::new("/data"), 5_000, fake(&free));
        dir.admit(3_000, false).unwrap();
        dir.appended(Path::new("/data/t-0"), 3_000);
        assert!(dir.admit(3_000, false).is_err(), "7 000 - 3 000 < 5 000");
    }

    #[test]
    fn a_failed_write_is_a_problem_until_the_partition_writes_again() {
        let dir = LogDir::with_probe(Path::new("/data"), 0, Box::new(|_| Ok(123)));
        let log = Path::new("/data/t-0");
        let e = LogError::io(
            "/data/t-0/00000000000000000000.log",
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        );
        dir.write_failed(log, &e);
        let problems = dir.problems();
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("t-0") && problems[0].contains("123 bytes free"));
        dir.appended(Path::new("/data/u-0"), 10);
        assert_eq!(dir.problems().len(), 1, "another partition's success");
        dir.appended(log, 10);
        assert!(dir.problems().is_empty());

        dir.went_offline(log, "segment deleted");
        dir.appended(log, 10);
        assert_eq!(dir.problems().len(), 1, "offline stays until restart");
    }

    #[test]
    fn rate_limit_lets_one_line_through_per_interval_and_counts_the_rest() {
        let limit = RateLimit::default();
        let mut lines = Vec::new();
        for now in [0, 10, 20, 10_000, 10_005] {
            limit.run(now, |held| lines.push((now, held)));
        }
        assert_eq!(lines, vec![(0, 0), (10_000, 2)]);
    }

    #[test]
    fn free_bytes_reads_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
    }
}
