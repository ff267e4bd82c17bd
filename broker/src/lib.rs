//! strand-broker: the log store and the Kafka protocol server of strand.
//!
//! Data flows in from a Kafka client's socket through [`kafka`] (framing, request
//! headers, one handler module per API family) into the partition logs of [`log`]
//! (segments of Kafka RecordBatch v2 bytes, kept verbatim, with sparse offset and time
//! indexes), and back out again as whole stored batches on Fetch.
//!
//! Where to look:
//! - [`log`]: one partition's durable log: segments, indexes, recovery, retention,
//!   compaction, group-commit fsync.
//! - `kafka`: the wire protocol server (connection framing, dispatch, handlers).
//! - `group`: the consumer-group coordinator and committed offsets.
//! - `cluster`: topics, partitions, per-topic configs and their persistence.

pub mod group;
pub mod log;

pub use group::{GroupConfig, GroupCoordinator, GroupError};
pub use log::{LogConfig, LogError, PartitionLog};
