//! The schema store: every change of the registry is an [`Event`] appended to a log
//! ([`SchemaLog`]) and then applied to the in-memory [`State`]; at start the log is replayed
//! through the same `apply`, so what a restart rebuilds is exactly what was served. The
//! durable log is the broker's compacted `_schemas` topic (the `strand` binary provides that
//! adapter); [`MemoryLog`] serves tests.

pub(crate) mod event;
pub(crate) mod state;

use std::sync::Mutex;

pub use event::SchemaReference;
pub(crate) use event::{Contract, Event, SchemaContent, VersionValue};
pub(crate) use state::{Gid, State};

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

/// What one read of a [`SchemaLog`] returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRead {
    /// The records read, in log order.
    pub records: Vec<LogRecord>,
    /// The position to read from next (past the records read, and past any gap that
    /// compaction left).
    pub next: i64,
}

/// Where registry events are kept: an ordered log that this registry appends to and that
/// others (another registry instance, a replica fetcher, a restore tool writing Confluent's
/// records) may append to as well. The registry follows it from its start, continuously, so
/// positions are offsets: `append` returns the position after what it appended, and the
/// registry has applied an append once it has read past that position.
///
/// Every method but `subscribe` blocks (call them off the async workers). Appending and making
/// durable are two steps so that, while one change waits for its fsync, the next can
/// already be appended, and one fsync covers both (group commit).
pub trait SchemaLog: Send + Sync + 'static {
    /// Appends records in order; returns the position after the last of them, which
    /// [`SchemaLog::flush`] needs to make them durable.
    fn append(&self, records: &[LogRecord]) -> Result<i64, StoreError>;
    /// Returns once everything before `position` is durable.
    fn flush(&self, position: i64) -> Result<(), StoreError>;
    /// The records from `position` on that may be read (what is committed: on a replicated
    /// log, below its high watermark), as many as one read gives; none once `position` is
    /// the end. A position before the log's start reads from its start.
    fn read_from(&self, position: i64) -> Result<LogRead, StoreError>;
    /// The position after the last record that may be read.
    fn end(&self) -> i64;
    /// A receiver that changes whenever the readable end moves.
    fn subscribe(&self) -> tokio::sync::watch::Receiver<i64>;
}

/// Records one [`MemoryLog`] read returns at most, so that tests see catch-up in steps.
const MEMORY_READ_RECORDS: usize = 64;

/// A schema log in memory, for tests: nothing survives the process.
#[derive(Debug)]
pub struct MemoryLog {
    records: Mutex<Vec<LogRecord>>,
    end: tokio::sync::watch::Sender<i64>,
}

impl Default for MemoryLog {
    fn default() -> MemoryLog {
        MemoryLog {
            records: Mutex::new(Vec::new()),
            end: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Vec<LogRecord>>, StoreError> {
        self.records
            .lock()
            .map_err(|_| StoreError("memory log poisoned".into()))
    }
}

impl SchemaLog for MemoryLog {
    fn append(&self, records: &[LogRecord]) -> Result<i64, StoreError> {
        let mut log = self.lock()?;
        log.extend_from_slice(records);
        let end = log.len() as i64;
        self.end.send_replace(end);
        Ok(end)
    }

    fn flush(&self, _position: i64) -> Result<(), StoreError> {
        Ok(())
    }

    fn read_from(&self, position: i64) -> Result<LogRead, StoreError> {
        let log = self.lock()?;
        let from = usize::try_from(position).unwrap_or(0).min(log.len());
        let to = (from + MEMORY_READ_RECORDS).min(log.len());
        Ok(LogRead {
            records: log[from..to].to_vec(),
            next: to as i64,
        })
    }

    fn end(&self) -> i64 {
        *self.end.borrow()
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<i64> {
        self.end.subscribe()
    }
}
