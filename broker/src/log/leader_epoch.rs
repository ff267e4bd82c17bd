//! The leader-epoch cache of one partition log (Kafka's `LeaderEpochFileCache`): for each
//! leader epoch that wrote to the log, the offset of its first record. It answers
//! OffsetForLeaderEpoch ("where does epoch E end in your log?"), which is how a follower
//! finds, after a leader change, where its log diverges from the new leader's and
//! truncates there (KIP-101, KIP-279) instead of trusting its high watermark.
//!
//! It is kept in `leader-epoch-checkpoint` in the partition's directory, in Kafka's text
//! format (a version line `0`, a count line, then one `epoch start_offset` line per entry),
//! rewritten atomically whenever an entry is added or truncated away. A missing file is an
//! empty cache (a log written before strand had leader epochs, or a new one); the log
//! rebuilds entries from its batches' `partitionLeaderEpoch` when it recovers.

use std::path::{Path, PathBuf};

use super::LogError;
use super::segment::write_atomically;

/// The cache file's name in the partition directory, as Kafka names it.
pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// "No epoch" in OffsetForLeaderEpoch answers (Kafka's `UNDEFINED_EPOCH`).
pub const UNDEFINED_EPOCH: i32 = -1;
/// "No offset" in OffsetForLeaderEpoch answers (Kafka's `UNDEFINED_EPOCH_OFFSET`).
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// The version line of the checkpoint format.
const VERSION: &str = "0";

/// One leader epoch and the offset of the first record it wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    /// The leader epoch.
    pub epoch: i32,
    /// The offset of the first record written in that epoch.
    pub start_offset: i64,
}

/// The leader epochs of one partition log and where each began, with its checkpoint file.
///
/// Entries are strictly increasing in both epoch and start offset: assigning an entry
/// removes every entry that would break that order (they describe a history this log no
/// longer has).
#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    /// Loads the cache of the log in `dir`; a missing checkpoint is an empty cache.
    pub fn load(dir: &Path) -> Result<LeaderEpochCache, LogError> {
        let path = dir.join(CHECKPOINT_FILE);
        let entries = match std::fs::read_to_string(&path) {
            Ok(text) => parse(&text).map_err(|reason| LogError::CorruptSegment {
                path: path.clone(),
                position: 0,
                reason,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(LogError::io(&path, e)),
        };
        Ok(LeaderEpochCache { path, entries })
    }

    /// An empty cache kept in `dir` (its file is written at the first assignment).
    pub fn empty(dir: &Path) -> LeaderEpochCache {
        LeaderEpochCache {
            path: dir.join(CHECKPOINT_FILE),
            entries: Vec::new(),
        }
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// The latest epoch that wrote to the log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Records that `epoch` wrote its first record at `start_offset`, dropping the entries
    /// it contradicts (an epoch at least as new, or one starting at or after it); writes the
    /// checkpoint when something changed. Negative epochs or offsets (batches written
    /// without a leader epoch) change nothing. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> Result<bool, LogError> {
        if epoch < 0 || start_offset < 0 {
            return Ok(false);
        }
        let needed = match self.entries.last() {
            None => true,
            Some(last) => epoch != last.epoch || start_offset < last.start_offset,
        };
        if !needed {
            return Ok(false);
        }
        let keep = self
            .entries
            .iter()
            .rposition(|e| e.epoch < epoch && e.start_offset < start_offset)
            .map_or(0, |i| i + 1);
        let removed = self.entries.len() - keep;
        if removed > 1 || (removed == 1 && self.entries[keep].start_offset != start_offset) {
            tracing::warn!(
                path = %self.path.display(),
                epoch,
                start_offset,
                dropped = ?&self.entries[keep..],
                "new leader epoch entry drops conflicting entries"
            );
        }
        self.entries.truncate(keep);
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        self.write()?;
        Ok(true)
    }

    /// Where `requested` epoch ends in a log whose end offset is `log_end_offset`, as
    /// OffsetForLeaderEpoch answers it: the largest epoch not above `requested` and the
    /// start offset of the first epoch after it (the log end offset for the latest
    /// epoch); `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)` for an undefined or unknown
    /// future epoch. An epoch older than every entry answers itself and the first entry's
    /// start offset: what came before is gone from the log.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some(higher) = self.entries.iter().find(|e| e.epoch > requested) else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            None => (requested, higher.start_offset),
            Some(floor) => (floor.epoch, higher.start_offset),
        }
    }

    /// The epoch that wrote `offset`, when the cache knows.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.entries
            .iter()
            .take_while(|e| e.start_offset <= offset)
            .last()
            .map(|e| e.epoch)
    }

    /// Forgets the epochs that start at or after `end_offset`, after the log was truncated
    /// to end there.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<(), LogError> {
        let keep = self
            .entries
            .iter()
            .position(|e| e.start_offset >= end_offset)
            .unwrap_or(self.entries.len());
        if keep == self.entries.len() {
            return Ok(());
        }
        self.entries.truncate(keep);
        self.write()
    }

    /// Forgets what lies before `start_offset`, after the log start offset moved there
    /// (retention, DeleteRecords): the epoch covering `start_offset` now starts there.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<(), LogError> {
        let covered = self
            .entries
            .iter()
            .take_while(|e| e.start_offset <= start_offset)
            .count();
        if covered == 0 {
            return Ok(());
        }
        let first = EpochEntry {
            epoch: self.entries[covered - 1].epoch,
            start_offset,
        };
        if covered == 1 && self.entries[0] == first {
            return Ok(());
        }
        self.entries.drain(..covered);
        self.entries.insert(0, first);
        self.write()
    }

    /// Forgets every entry (the log was emptied).
    pub fn clear(&mut self) -> Result<(), LogError> {
        if self.entries.is_empty() {
            return Ok(());
        }
        self.entries.clear();
        self.write()
    }

    fn write(&self) -> Result<(), LogError> {
        let mut text = format!("{VERSION}\n{}\n", self.entries.len());
        for e in &self.entries {
            text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        write_atomically(&self.path, text.as_bytes())
    }
}

/// Parses a checkpoint's text; the error says what is wrong with it.
fn parse(text: &str) -> Result<Vec<EpochEntry>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some(VERSION) => {}
        other => return Err(format!("unknown checkpoint version {other:?}")),
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("missing entry count")?;
    let mut entries: Vec<EpochEntry> = Vec::new();
    for (i, line) in lines.by_ref().take(count).enumerate() {
        let mut fields = line.split_whitespace();
        let (Some(epoch), Some(start), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!("entry {i}: expected `epoch offset`, got {line:?}"));
        };
        let epoch: i32 = epoch.parse().map_err(|_| format!("entry {i}: bad epoch"))?;
        let start_offset: i64 = start
            .parse()
            .map_err(|_| format!("entry {i}: bad offset"))?;
        if let Some(prev) = entries.last()
            && (epoch <= prev.epoch || start_offset < prev.start_offset)
        {
            return Err(format!("entry {i}: not after the entry before it"));
        }
        entries.push(EpochEntry {
            epoch,
            start_offset,
        });
    }
    if entries.len() != count {
        return Err(format!(
            "{count} entries announced, {} found",
            entries.len()
        ));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cache(entries: &[(i32, i64)]) -> (tempfile::TempDir, LeaderEpochCache) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = LeaderEpochCache::empty(dir.path());
        for &(epoch, start) in entries {
            c.assign(epoch, start).unwrap();
        }
        (dir, c)
    }

    fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries()
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn end_offsets_answer_as_offset_for_leader_epoch_does() {
        let (_dir, c) = cache(&[(1, 0), (3, 10), (4, 25)]);
        // The latest epoch ends at the log end offset.
        assert_eq!(c.end_offset_for(4, 40), (4, 40));
        // An epoch ends where the next known one starts.
        assert_eq!(c.end_offset_for(3, 40), (3, 25));
        assert_eq!(c.end_offset_for(1, 40), (1, 10));
        // An epoch that never wrote: the largest one before it, ending at the next start.
        assert_eq!(c.end_offset_for(2, 40), (1, 10));
        // Older than everything known: itself, ending where the first known one starts.
        assert_eq!(c.end_offset_for(0, 40), (0, 0));
        // Newer than everything, or undefined: unknown.
        assert_eq!(c.end_offset_for(5, 40), (-1, -1));
        assert_eq!(c.end_offset_for(-1, 40), (-1, -1));
        assert_eq!(c.epoch_for_offset(9), Some(1));
        assert_eq!(c.epoch_for_offset(10), Some(3));
    }

    #[test]
    fn assigning_drops_the_history_it_contradicts() {
        let (_dir, mut c) = cache(&[(1, 0), (2, 10), (3, 20)]);
        // The same epoch again, later: nothing new.
        assert!(!c.assign(3, 30).unwrap());
        // An epoch that restarts below entries it follows: they go.
        assert!(c.assign(4, 15).unwrap());
        assert_eq!(pairs(&c), vec![(1, 0), (2, 10), (4, 15)]);
        // An older epoch than the latest: what is newer than it goes.
        assert!(c.assign(2, 12).unwrap());
        assert_eq!(pairs(&c), vec![(1, 0), (2, 12)]);
        // Batches without an epoch change nothing.
        assert!(!c.assign(-1, 50).unwrap());
    }

    #[test]
    fn truncations_keep_the_epoch_covering_the_cut() {
        let (_dir, mut c) = cache(&[(1, 0), (2, 10), (3, 20)]);
        c.truncate_from_end(20).unwrap();
        assert_eq!(pairs(&c), vec![(1, 0), (2, 10)]);
        c.truncate_from_end(11).unwrap();
        assert_eq!(pairs(&c), vec![(1, 0), (2, 10)]);
        c.truncate_from_start(12).unwrap();
        assert_eq!(pairs(&c), vec![(2, 12)]);
        c.truncate_from_start(5).unwrap();
        assert_eq!(pairs(&c), vec![(2, 12)]);
        c.clear().unwrap();
        assert!(c.entries().is_empty());
    }

    #[test]
    fn the_checkpoint_survives_a_reload_in_kafkas_format() {
        let (dir, c) = cache(&[(0, 0), (5, 100)]);
        let text = std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).unwrap();
        assert_eq!(text, "0\n2\n0 0\n5 100\n");
        let loaded = LeaderEpochCache::load(dir.path()).unwrap();
        assert_eq!(pairs(&loaded), pairs(&c));
        assert!(
            LeaderEpochCache::load(tempfile::tempdir().unwrap().path())
                .unwrap()
                .entries()
                .is_empty()
        );
    }

    #[test]
    fn a_damaged_checkpoint_is_refused_with_its_path() {
        for text in [
            "1\n0\n",
            "0\n2\n1 0\n",
            "0\n1\nx 0\n",
            "0\n2\n3 0\n2 5\n",
            "",
        ] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(CHECKPOINT_FILE), text).unwrap();
            let err = LeaderEpochCache::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains(CHECKPOINT_FILE), "{text:?}: {err}");
        }
    }

    /// What a follower's truncation relies on, against a model that keeps every record's
    /// epoch: for every epoch, the answer is where the model's records of epochs up to it
    /// end.
    #[derive(Debug, Clone)]
    enum Op {
        /// `n` records written by epoch `current + bump`.
        Append { bump: u8, n: u8 },
        /// The log cut to end `back` records earlier.
        TruncateEnd { back: u8 },
        /// The log start moved `forward` records on.
        TruncateStart { forward: u8 },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..3, 1u8..5).prop_map(|(bump, n)| Op::Append { bump, n }),
            1 => (0u8..6).prop_map(|back| Op::TruncateEnd { back }),
            1 => (0u8..6).prop_map(|forward| Op::TruncateStart { forward }),
        ]
    }

    proptest! {
        // Each step rewrites (and fsyncs) the checkpoint: fewer cases than the default.
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn answers_match_a_model_of_every_records_epoch(ops in proptest::collection::vec(op(), 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let mut c = LeaderEpochCache::empty(dir.path());
            // The epoch of each offset from `start` on.
            let mut start = 0i64;
            let mut epochs: Vec<i32> = Vec::new();
            let mut current = 0i32;
            for op in ops {
                let end = start + epochs.len() as i64;
                match op {
                    Op::Append { bump, n } => {
                        current += i32::from(bump);
                        c.assign(current, end).unwrap();
                        epochs.extend(std::iter::repeat_n(current, usize::from(n)));
                    }
                    Op::TruncateEnd { back } => {
                        let keep = epochs.len().saturating_sub(usize::from(back));
                        epochs.truncate(keep);
                        c.truncate_from_end(start + keep as i64).unwrap();
                        // A new leader's epoch is always above every epoch before it.
                        current = current.max(epochs.last().copied().unwrap_or(0));
                    }
                    Op::TruncateStart { forward } => {
                        let drop = usize::from(forward).min(epochs.len());
                        epochs.drain(..drop);
                        start += drop as i64;
                        c.truncate_from_start(start).unwrap();
                    }
                }
                let end = start + epochs.len() as i64;
                for (i, epoch) in epochs.iter().enumerate() {
                    prop_assert_eq!(c.epoch_for_offset(start + i as i64), Some(*epoch));
                }
                for requested in 0..=current + 1 {
                    let (epoch, offset) = c.end_offset_for(requested, end);
                    let upto = epochs.iter().filter(|e| **e <= requested).count() as i64;
                    if epochs.is_empty() || epochs.iter().all(|e| *e > requested) {
                        // Nothing of that epoch or older is left: the follower learns where
                        // the log's known history starts, or nothing.
                        prop_assert!(offset == -1 || offset <= start + upto.max(0) || offset == end);
                        continue;
                    }
                    if epochs.iter().all(|e| *e < requested) {
                        // Newer than anything in the log: unknown, as Kafka answers.
                        prop_assert_eq!((epoch, offset), (-1, -1));
                        continue;
                    }
                    prop_assert_eq!(offset, start + upto, "epoch {} of {:?}", requested, epochs);
                    prop_assert_eq!(Some(epoch), epochs.iter().copied().filter(|e| *e <= requested).max());
                }
                let reloaded = LeaderEpochCache::load(dir.path()).unwrap();
                prop_assert_eq!(reloaded.entries(), c.entries());
            }
        }
    }
}
