//! Errors of the log layer, each naming the file or offset concerned.

use std::path::PathBuf;

/// Everything that can go wrong in the log store.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A batch failed validation (CRC32C, magic, length or record count); nothing was written.
    #[error("corrupt record batch at byte {position} of the request: {reason}")]
    CorruptBatch {
        /// Byte position of the bad batch within the appended buffer.
        position: usize,
        /// What check failed.
        reason: String,
    },
    /// A batch would be larger than allowed once decompressed or recompressed; nothing
    /// was written.
    #[error("record batch at byte {position} of the request is too large: {reason}")]
    BatchTooLarge {
        /// Byte position of the batch within the appended buffer.
        position: usize,
        /// Which size passed which bound.
        reason: String,
    },
    /// A record's timestamp is outside what the topic allows; nothing was written.
    #[error("record batch at byte {position} of the request: {reason}")]
    InvalidTimestamp {
        /// Byte position of the batch within the appended buffer.
        position: usize,
        /// Which timestamp and which bound.
        reason: String,
    },
    /// A read asked for an offset outside `[log start offset, log end offset]`.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: i64,
        /// First readable offset.
        log_start_offset: i64,
        /// Next offset to be assigned.
        log_end_offset: i64,
    },
    /// An idempotent producer's batch does not follow its previous one.
    #[error("producer {producer_id}: expected sequence {expected}, got {sequence}")]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The sequence number the log expected next.
        expected: i32,
        /// The batch's base sequence.
        sequence: i32,
    },
    /// An idempotent producer wrote with an epoch older than the one the log knows.
    #[error(
        "producer {producer_id}: epoch {epoch} is older than the current epoch {current_epoch}"
    )]
    InvalidProducerEpoch {
        /// The producer id.
        producer_id: i64,
        /// The epoch the log knows.
        current_epoch: i16,
        /// The batch's epoch.
        epoch: i16,
    },
    /// One append held a retried (duplicate) batch together with new ones.
    #[error(
        "producer {producer_id}: batch at sequence {sequence} is a duplicate inside a larger append"
    )]
    DuplicateSequence {
        /// The producer id.
        producer_id: i64,
        /// The duplicate batch's base sequence.
        sequence: i32,
    },
    /// Stored data failed a check while it was read back (damaged on disk).
    #[error("{path}: corrupt data at position {position}: {reason}")]
    CorruptSegment {
        /// The segment file.
        path: PathBuf,
        /// Byte position within it.
        position: u64,
        /// What check failed.
        reason: String,
    },
    /// A follower's append does not continue its log (it would rewrite offsets it holds).
    #[error(
        "log {dir}: a follower append starts at offset {offset}, below the log end offset {log_end_offset}"
    )]
    UnexpectedAppendOffset {
        /// The log's directory.
        dir: PathBuf,
        /// The first offset of the batches.
        offset: i64,
        /// The log end offset.
        log_end_offset: i64,
    },
    /// The log was closed or deleted; nothing more can be appended.
    #[error("log {dir} is closed")]
    Closed {
        /// The log's directory.
        dir: PathBuf,
    },
    /// The log was stopped because one of its files vanished or was replaced under it;
    /// nothing is appended or read until the broker restarts.
    #[error("log {dir} is offline: {reason}")]
    Offline {
        /// The log's directory.
        dir: PathBuf,
        /// What was found.
        reason: String,
    },
    /// The log dir's free space is under the reserve kept for internal topics; nothing
    /// was written.
    #[error(
        "log dir {dir} is short of space: {free_bytes} bytes free, under the {reserve_bytes} \
         bytes reserved for internal topics"
    )]
    NoSpace {
        /// The data directory.
        dir: PathBuf,
        /// Free bytes on its file system (last measured, less what was written since).
        free_bytes: u64,
        /// The reserve.
        reserve_bytes: u64,
    },
    /// Records could not be encoded as a RecordBatch.
    #[error("encoding a record batch: {0}")]
    Encode(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl LogError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.into(),
            source,
        }
    }
}
