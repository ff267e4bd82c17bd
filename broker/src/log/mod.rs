//! One partition's durable log, in Kafka's own on-disk layout.
//!
//! A partition lives in a directory `<topic>-<partition>/` holding *segments*, each named
//! by the offset of its first record with 20 digits: `00000000000000000000.log` keeps
//! Kafka RecordBatch v2 bytes exactly as the producer sent them, `.index` maps offsets to
//! file positions sparsely and `.timeindex` maps timestamps to offsets sparsely. The *log
//! start offset* is the first offset still readable, the *log end offset* the next offset
//! to be assigned, and the *high watermark* the offset below which records are committed
//! (held by every in-sync replica) and visible to consumers; the log moves its log end
//! offset, the replica layer (`crate::replica`) moves the high watermark. Everything is reached through [`PartitionLog`], shared as `Arc<PartitionLog>`;
//! all its methods are blocking and belong on a blocking thread.
//!
//! **Append** ([`PartitionLog::append`]): every batch of the request is checked (CRC32C,
//! magic 2, length, record count) before anything is written; an idempotent producer's
//! sequence numbers are checked against the producer state (`producer`); offsets are
//! assigned by rewriting each `baseOffset` in the caller's buffer (the CRC32C covers what
//! follows it, so it stays valid); then the buffer goes to the active segment in one
//! `pwrite`, which is undone by truncation if it fails half-way (a full disk). The active
//! segment rolls by size (`segment.bytes`) and age (`segment.ms`); a rolled segment is
//! fsynced by a background thread (and by the next flush). Subscribers
//! ([`PartitionLog::subscribe`]) learn of each move of the high watermark.
//!
//! **Durability**: [`PartitionLog::flush_to`] is group commit: one caller fsyncs for
//! everyone who appended meanwhile, the others wait on a condition variable. The flush
//! policy (`flush.messages`, `flush.ms`) fsyncs from the append path.
//!
//! **Read** ([`PartitionLog::read`]): whole stored batches, byte for byte, starting with
//! the batch holding the offset asked for, found through the sparse index and a short walk
//! of batch headers, read with one `pread` outside any lock into a pooled buffer (`buffers`). Lookups by timestamp for
//! ListOffsets are in `timestamps`.
//!
//! **Open and recovery** (`recovery`): the last segment is re-read batch by batch with
//! CRC32C checks and cut after its last whole valid batch (with a warning naming file,
//! position and bytes); indexes that disagree with the log are rebuilt; the producer
//! state is replayed from batch headers. After a clean shutdown (`snapshot`) the older
//! segments are not re-read.
//!
//! **Cleaning**: `retention` deletes whole segments by `retention.ms` and
//! `retention.bytes` and moves the log start offset for DeleteRecords (persisted in
//! `log-start-offset`); `compaction` keeps the newest record per key for
//! `cleanup.policy=compact`, never touching the active segment and never changing offsets.
//!
//! **Produce validation** (`validate`, `compression`): before a produced batch reaches
//! the log, [`prepare`] reads its records (decompressing under a bound), refuses what
//! Kafka's LogValidator refuses, and applies the topic's `compression.type` and
//! `message.timestamp.type`; batches are otherwise stored as sent.
//!
//! Files by concept: `batch` (the batch header and its checks), `segment` (segment files
//! and walking their batches), `index` (the two sparse indexes), `partition` (the handle,
//! its locks, append/read/flush), `producer`, `recovery`, `snapshot`, `retention`,
//! `compaction`, `timestamps`; `log_dir` (the data directory: free space, the reserve of
//! internal topics, failures for `/health`) and `fd_cache` (the budget of open segment
//! files shared by all logs, so that idle partitions hold no descriptors).

mod batch;
mod buffers;
mod compaction;
mod compression;
mod config;
mod error;
mod fd_cache;
mod index;
mod keyed;
pub mod leader_epoch;
mod log_dir;
mod partition;
mod producer;
mod recovery;
mod retention;
mod segment;
mod snapshot;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod testutil;
mod timestamps;
mod truncate;
mod validate;

pub use batch::{BatchFrame, BatchHeader, FrameError, frames};
pub(crate) use buffers::{POOL as BUFFERS, ReadBuf, pooled};
pub use compaction::CompactionReport;
pub use compression::Codec;
pub(crate) use compression::decoder as decompress;
pub use config::{CleanupPolicy, LogConfig};
pub use error::LogError;
pub use fd_cache::FdCache;
pub use keyed::encode_keyed_batch;
pub use log_dir::{LogDir, SpaceProbe, free_bytes};
pub use partition::{AppendInfo, FetchIsolation, PartitionLog, ReadResult};
pub use retention::RetentionReport;
pub use validate::{ProducePolicy, TimestampType, TopicCompression, decompressed_limit, prepare};
