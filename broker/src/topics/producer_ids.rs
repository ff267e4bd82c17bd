//! Producer id allocation for idempotent producers (InitProducerId).
//!
//! Ids are handed out from blocks: before the first id of a block is given, the block's
//! end is written and fsynced to `<data_dir>/cluster/producer-ids`, so that after a
//! restart (even a crash) allocation resumes past every id ever given and none is reused.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{TopicStoreError, write_atomically};

/// Ids reserved on disk at a time.
const BLOCK: i64 = 1000;

/// Allocator of producer ids that are never reused, even across restarts.
#[derive(Debug)]
pub struct ProducerIds {
    path: PathBuf,
    /// (next id to give, end of the block reserved on disk).
    state: Mutex<(i64, i64)>,
}

impl ProducerIds {
    /// Opens the allocator, resuming after the last reserved block.
    pub(crate) fn open(dir: &Path) -> Result<ProducerIds, TopicStoreError> {
        let path = dir.join("producer-ids");
        let reserved = match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .map_err(|e| TopicStoreError::Corrupt {
                    path: path.clone(),
                    reason: format!("not a producer id: {e}"),
                })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(TopicStoreError::io(&path, e)),
        };
        Ok(ProducerIds {
            path,
            state: Mutex::new((reserved, reserved)),
        })
    }

    /// The end of the last block reserved on disk: every id this allocator ever gave is
    /// below it.
    pub fn reserved_end(&self) -> i64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Gives a fresh producer id (blocking: may fsync a new block reservation).
    pub fn allocate(&self) -> Result<i64, TopicStoreError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (next, end) = *state;
        if next >= end {
            let new_end = next + BLOCK;
            write_atomically(&self.path, new_end.to_string().as_bytes())?;
            state.1 = new_end;
        }
        state.0 = next + 1;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_not_reused_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ids = ProducerIds::open(dir.path()).unwrap();
        let a = ids.allocate().unwrap();
        let b = ids.allocate().unwrap();
        assert_ne!(a, b);
        drop(ids);
        let ids = ProducerIds::open(dir.path()).unwrap();
        let c = ids.allocate().unwrap();
        assert!(c > b, "{c} after {b}");
    }
}
