//! The schema registry's store over the broker's compacted `_schemas` topic: each registry
//! event is a Kafka record (key and value JSON, as in Confluent's `_schemas`) in a RecordBatch
//! v2 appended to partition 0, so the registry's state is readable with any Kafka consumer
//! and survives restarts; replay reads the partition from its log start offset.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;
use strand_broker::PartitionLog;
use strand_registry::{LogRecord, SchemaLog, StoreError};

/// How much one replay read asks for.
const REPLAY_READ_BYTES: usize = 1024 * 1024;

/// `_schemas` partition 0 as a [`SchemaLog`].
pub struct SchemasLog(pub Arc<PartitionLog>);

fn store_error(context: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("_schemas: {context}: {e}"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn encode(records: &[LogRecord]) -> Result<BytesMut, StoreError> {
    let records = records.iter().map(|r| {
        (
            Bytes::copy_from_slice(&r.key),
            r.value.as_deref().map(Bytes::copy_from_slice),
        )
    });
    strand_broker::log::encode_keyed_batch(records, now_ms())
        .map_err(|e| store_error("encoding", e))
}

/// The offset after the last record of the whole batches in `bytes`, from their headers,
/// so that replay moves past batches whose records compaction removed.
fn end_of_batches(bytes: &[u8]) -> Option<i64> {
    strand_broker::log::frames(bytes)
        .map_while(Result::ok)
        .filter_map(|frame| frame.header())
        .last()
        .map(|header| header.last_offset() + 1)
}

impl SchemaLog for SchemasLog {
    fn append(&self, records: &[LogRecord]) -> Result<i64, StoreError> {
        if records.is_empty() {
            return Ok(-1);
        }
        let mut batch = encode(records)?;
        let info = self
            .0
            .append(&mut batch)
            .map_err(|e| store_error("append", e))?;
        Ok(info.last_offset)
    }

    fn flush(&self, position: i64) -> Result<(), StoreError> {
        self.0
            .flush_to(position)
            .map_err(|e| store_error("flush", e))
    }

    fn replay(&self) -> Result<Vec<LogRecord>, StoreError> {
        let mut out = Vec::new();
        let mut next = self.0.log_start_offset();
        loop {
            let end = self.0.log_end_offset();
            if next >= end {
                break;
            }
            let read = self
                .0
                .read(next, REPLAY_READ_BYTES, true)
                .map_err(|e| store_error("read", e))?;
            if read.records.is_empty() {
                break;
            }
            let past = end_of_batches(&read.records).unwrap_or(next + 1);
            let mut buf = read.records.clone();
            while buf.has_remaining() {
                let set = RecordBatchDecoder::decode(&mut buf)
                    .map_err(|e| store_error(&format!("decoding at offset {next}"), e))?;
                for record in set.records {
                    if record.offset < next || record.control {
                        continue;
                    }
                    if let Some(key) = record.key {
                        out.push(LogRecord {
                            key: key.to_vec(),
                            value: record.value.map(|v| v.to_vec()),
                        });
                    }
                }
            }
            next = past.max(next + 1);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strand_broker::LogConfig;

    fn record(key: &str, value: Option<&str>) -> LogRecord {
        LogRecord {
            key: key.as_bytes().to_vec(),
            value: value.map(|v| v.as_bytes().to_vec()),
        }
    }

    #[test]
    fn appended_records_replay_in_order_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("_schemas-0");
        let written = vec![
            record("a", Some("1")),
            record("b", None),
            record("a", Some("2")),
        ];
        {
            let log = SchemasLog(Arc::new(
                PartitionLog::open(&path, LogConfig::default()).unwrap(),
            ));
            let position = log.append(&written[..2]).unwrap();
            log.flush(position).unwrap();
            let position = log.append(&written[2..]).unwrap();
            log.flush(position).unwrap();
            log.0.close().unwrap();
        }
        let log = SchemasLog(Arc::new(
            PartitionLog::open(&path, LogConfig::default()).unwrap(),
        ));
        assert_eq!(log.replay().unwrap(), written);
    }
}
