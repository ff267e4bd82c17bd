//! strand-broker: the log store and the Kafka protocol server of strand.
//!
//! Data flows in from a Kafka client's socket through `kafka` (framing, request
//! headers, one handler module per API family), through the replica layer of [`replica`]
//! (each partition's leader, high watermark and `acks` wait) into the partition logs of
//! [`log`] (segments of Kafka RecordBatch v2 bytes, kept verbatim, with sparse offset and
//! time indexes), and back out again as whole stored batches on Fetch, up to the high
//! watermark.
//!
//! Where to look:
//! - [`Broker`]: what `strand serve` runs: opens the data directory, serves the Kafka
//!   listener, runs the background flush and cleaner.
//! - [`log`]: one partition's durable log: segments, indexes, recovery, retention,
//!   compaction, group-commit fsync.
//! - [`replica`]: this broker's partitions as replicas (Kafka's ReplicaManager and
//!   Partition): the domain of Produce and Fetch, the high watermark and the `acks` wait;
//!   the handlers of [`kafka`] only translate to and from it.
//! - [`kafka`]: the wire protocol server (connection framing, dispatch, handlers).
//! - [`GuardedAllocator`]: the allocator `strand serve` runs on, so that a request
//!   announcing billions of elements cannot abort the process.
//! - `group`: the consumer-group coordinator and committed offsets.
//! - [`topics`]: this node's topics, partitions, per-topic configs and their persistence, producer
//!   id allocation.
//! - [`controller`]: the metadata quorum (KRaft's shape, on openraft) and the metadata
//!   image every node applies; [`lifecycle`] registers the broker with it and heartbeats,
//!   and Metadata / DescribeCluster list the brokers and the active controller it knows.
//! - [`validation`]: broker-side schema validation of produced records against the
//!   registry, per topic (`value.schema.validation`), reached through [`validation::SchemaLookup`].
//! - [`identity`]: the data directory's `meta.properties` (cluster id, node id).

mod admin;
mod alloc;
mod broker;
pub mod controller;
mod group;
pub mod identity;
pub mod kafka;
pub mod lifecycle;
pub mod log;
mod parallel;
mod producer_id_manager;
pub mod publisher;
pub mod replica;
mod shutdown;
pub mod topics;
pub mod validation;

pub use admin::{CreatedTopic, NewTopic};
pub use alloc::GuardedAllocator;
pub use broker::{Broker, BrokerConfig};
pub use group::{GroupConfig, GroupCoordinator, GroupError};
pub use log::{LogConfig, LogError, PartitionLog};
pub use topics::{Topic, TopicConfig, TopicDefaults, TopicStore, TopicStoreError};

/// Decodes one Kafka request frame (without its `i32` length prefix) exactly as the
/// listener does, returning why the connection would be closed; for the fuzz target in
/// `fuzz/` and tests that feed hostile frames.
#[doc(hidden)]
pub fn decode_request_frame(frame: bytes::Bytes) -> Result<(), String> {
    kafka::decode_request_frame(frame)
}

// Unit tests feed hostile requests to the decoders, so they run on the same allocator as
// `strand serve`.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: GuardedAllocator = GuardedAllocator;
