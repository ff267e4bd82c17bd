//! One partition's durable log, in Kafka's own on-disk layout.
//!
//! A partition lives in a directory `<topic>-<partition>/` holding *segments*, each named
//! by the offset of its first record with 20 digits: `00000000000000000000.log` keeps
//! Kafka RecordBatch v2 bytes exactly as the producer sent them (only `baseOffset` is
//! rewritten when the log assigns offsets; the CRC32C covers what follows it, so it stays
//! valid), `.index` maps offsets to file positions sparsely and `.timeindex` maps
//! timestamps to offsets sparsely. The *log start offset* is the first offset still
//! readable, the *log end offset* the next offset to be assigned and, on this single-node
//! broker, the *high watermark* equals the log end offset.
//!
//! Open [`partition`] for the public handle ([`PartitionLog`]), `batch` for parsing and
//! checking a batch header, `segment` and `index` for the files, `recovery` for what
//! happens at open after a crash, `timestamps` for ListOffsets lookups, `producer` for idempotent producers' sequence checks,
//! `retention` and `compaction` for cleaning.

mod batch;
mod compaction;
mod config;
mod error;
mod index;
mod partition;
mod producer;
mod recovery;
mod retention;
mod segment;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
mod timestamps;

pub use batch::BatchHeader;
pub use compaction::CompactionReport;
pub use config::{CleanupPolicy, LogConfig};
pub use error::LogError;
pub use partition::{AppendInfo, PartitionLog, ReadResult};
pub use retention::RetentionReport;
