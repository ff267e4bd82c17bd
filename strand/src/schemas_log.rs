//! The schema registry's store over the broker's compacted `_schemas` topic: each registry
//! event is a Kafka record (key and value JSON, as in Confluent's `_schemas`) in a RecordBatch
//! v2 appended to partition 0, so the registry's state is readable with any Kafka consumer
//! and survives restarts. The registry reads the partition from its log start offset and
//! then follows it, woken by the high watermark's notifications: it reads only below the
//! high watermark, so nothing it applies can be truncated away by a leader change.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;
use strand_broker::PartitionLog;
use strand_registry::{LogRead, LogRecord, SchemaLog, StoreError};

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
            return Ok(self.0.log_end_offset());
        }
        let mut batch = encode(records)?;
        let info = self
            .0
            .append(&mut batch)
            .map_err(|e| store_error("append", e))?;
        let end = info.last_offset + 1;
        // The registry is this log's only writer on this node and `_schemas` has no
        // followers yet, so what it appends is committed at once: the high watermark moves
        // (waking the registry's follower and Kafka consumers of `_schemas`). Once `_schemas`
        // is replicated, this append belongs to the replica layer's leader append and commit.
        self.0.advance_high_watermark(end);
        Ok(end)
    }

    fn flush(&self, position: i64) -> Result<(), StoreError> {
        if position <= 0 {
            return Ok(());
        }
        self.0
            .flush_to(position - 1)
            .map_err(|e| store_error("flush", e))
    }

    fn read_from(&self, position: i64) -> Result<LogRead, StoreError> {
        let start = self.0.log_start_offset();
        let end = self.0.high_watermark();
        let next = position.max(start);
        if next >= end {
            return Ok(LogRead {
                records: Vec::new(),
                next,
            });
        }
        let read = self
            .0
            .read(next, REPLAY_READ_BYTES, true)
            .map_err(|e| store_error("read", e))?;
        // Nothing at or after `next` below the end: compaction removed it.
        let past = end_of_batches(&read.records).unwrap_or(end).min(end);
        let mut records = Vec::new();
        let mut buf = read.records.clone();
        while buf.has_remaining() {
            let set = RecordBatchDecoder::decode(&mut buf)
                .map_err(|e| store_error(&format!("decoding at offset {next}"), e))?;
            for record in set.records {
                if record.offset < next || record.offset >= end || record.control {
                    continue;
                }
                if let Some(key) = record.key {
                    records.push(LogRecord {
                        key: key.to_vec(),
                        value: record.value.map(|v| v.to_vec()),
                    });
                }
            }
        }
        Ok(LogRead {
            records,
            next: past.max(next + 1),
        })
    }

    fn end(&self) -> i64 {
        self.0.high_watermark()
    }

    fn subscribe(&self) -> tokio::sync::watch::Receiver<i64> {
        self.0.subscribe()
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
        let mut read = Vec::new();
        let mut position = 0;
        loop {
            let got = log.read_from(position).unwrap();
            read.extend(got.records);
            if got.next <= position {
                break;
            }
            position = got.next;
        }
        assert_eq!(read, written);
        assert_eq!(position, log.end());
    }
}
