//! Tests of the whole partition log through its public handle: behaviour, faults
//! (torn and damaged files), and a property test against an in-memory model.

mod basic;
mod cleaning;
mod faults;
mod high_watermark;
mod leader_epochs;
mod model;
mod replication;

use std::path::Path;

use super::{LogConfig, PartitionLog};

/// A config with small segments and a dense index, so tests cross segment boundaries.
pub(crate) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

pub(crate) fn open(dir: &Path, config: LogConfig) -> PartitionLog {
    PartitionLog::open(dir, config).unwrap()
}
