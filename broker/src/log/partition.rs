//! [`PartitionLog`]: the handle through which everything reads and writes one partition.
//!
//! CONTRACT (filled in by the log-store work): every method is blocking file I/O and
//! must be called from a blocking context (`spawn_blocking` or a dedicated thread), never
//! directly on an async worker. The handle is `Send + Sync`; appends to one log are
//! serialised, reads run concurrently with appends.

use std::path::Path;

use bytes::Bytes;

use super::{LogConfig, LogError};

/// The outcome of an append: the offsets the log assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset given to the first record appended.
    pub base_offset: i64,
    /// Offset given to the last record appended.
    pub last_offset: i64,
    /// Largest timestamp among the appended records.
    pub max_timestamp: i64,
    /// Log start offset after the append.
    pub log_start_offset: i64,
    /// True when the batch was a retry of an idempotent producer's batch already in the
    /// log: nothing was written and the offsets are the original ones.
    pub duplicate: bool,
}

/// Whole stored batches returned by a read.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Batches exactly as stored, starting with the one that contains the offset asked.
    pub records: Bytes,
    /// High watermark at the time of the read.
    pub high_watermark: i64,
    /// Log start offset at the time of the read.
    pub log_start_offset: i64,
}

/// One partition's log: segments on disk and the state needed to append and read.
#[derive(Debug)]
pub struct PartitionLog {
    _private: (),
}

impl PartitionLog {
    /// Opens (creating if missing) the log in `dir`, recovering its tail after a crash.
    pub fn open(_dir: &Path, _config: LogConfig) -> Result<PartitionLog, LogError> {
        todo!("log store")
    }

    /// Validates and appends one or more concatenated RecordBatch v2, assigning offsets by
    /// rewriting each `baseOffset` in place; nothing is written if any batch is bad.
    pub fn append(&self, _batches: &mut [u8]) -> Result<AppendInfo, LogError> {
        todo!("log store")
    }

    /// Reads whole batches starting with the one containing `offset`, up to `max_bytes`
    /// (the first batch is returned whole even when larger, if `min_one` is set).
    pub fn read(
        &self,
        _offset: i64,
        _max_bytes: usize,
        _min_one: bool,
    ) -> Result<ReadResult, LogError> {
        todo!("log store")
    }
}
