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
