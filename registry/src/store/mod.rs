//! The schema store: every change of the registry is an [`Event`] appended to a log
//! ([`SchemaLog`]) and then applied to the in-memory [`State`]; at start the log is replayed
//! through the same `apply`, so what a restart rebuilds is exactly what was served. The
//! durable log is the broker's compacted `_schemas` topic (the `strand` binary provides that
//! adapter); [`MemoryLog`] serves tests.

pub(crate) mod event;
pub(crate) mod state;

use std::sync::Mutex;

pub use event::SchemaReference;
pub(crate) use event::{Event, SchemaContent, VersionValue};
pub(crate) use state::State;

/// One key/value record of the schema log; `value: None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The record key (JSON naming what the record is about).
    pub key: Vec<u8>,
    /// The record value (JSON), or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// Why the schema log could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("schema log: {0}")]
pub struct StoreError(pub String);

/// Where registry events are kept. Every method blocks (call them off the async workers).
///
/// Appending and making durable are two steps so that, while one change waits for its
/// fsync, the next can already be appended, and one fsync covers both (group commit).
pub trait SchemaLog: Send + Sync + 'static {
    /// Appends records in order; returns the position [`SchemaLog::flush`] needs to make
    /// them durable.
    fn append(&self, records: &[LogRecord]) -> Result<i64, StoreError>;
    /// Returns once everything appended up to `position` is durable.
    fn flush(&self, position: i64) -> Result<(), StoreError>;
    /// Every record appended so far (or its compaction), in order.
    fn replay(&self) -> Result<Vec<LogRecord>, StoreError>;
}

/// A schema log in memory, for tests: nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryLog {
    records: Mutex<Vec<LogRecord>>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }
}

impl SchemaLog for MemoryLog {
    fn append(&self, records: &[LogRecord]) -> Result<i64, StoreError> {
        let mut log = self
            .records
            .lock()
            .map_err(|_| StoreError("memory log poisoned".into()))?;
        log.extend_from_slice(records);
        Ok(log.len() as i64)
    }

    fn flush(&self, _position: i64) -> Result<(), StoreError> {
        Ok(())
    }

    fn replay(&self) -> Result<Vec<LogRecord>, StoreError> {
        let log = self
            .records
            .lock()
            .map_err(|_| StoreError("memory log poisoned".into()))?;
        Ok(log.clone())
    }
}
