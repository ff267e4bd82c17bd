//! Building a RecordBatch v2 of keyed records, for the broker's own writers of internal
//! topics (`__consumer_offsets`, `_schemas`), so that each does not encode batches itself.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::LogError;

/// Encodes `(key, value)` records (a `None` value is a tombstone) as one uncompressed
/// RecordBatch v2 with offsets from 0, ready for [`super::PartitionLog::append`]; no
/// records give an empty buffer.
pub fn encode_keyed_batch(
    records: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
    timestamp: i64,
) -> Result<BytesMut, LogError> {
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch wherever `offset - sequence` changes; this keeps
            // it constant, so all records share one batch whose baseSequence is -1
            // (no idempotent producer).
            sequence: i as i32 - 1,
            timestamp,
            key: Some(key),
            value,
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    if records.is_empty() {
        return Ok(buf);
    }
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| LogError::Encode(e.to_string()))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::RecordBatchDecoder;

    #[test]
    fn keyed_batch_round_trips_keys_values_and_tombstones() -> anyhow::Result<()> {
        let batch = encode_keyed_batch(
            [
                (Bytes::from_static(b"a"), Some(Bytes::from_static(b"1"))),
                (Bytes::from_static(b"b"), None),
            ],
            42,
        )?;
        let batch_bytes = batch.freeze();
        let mut bytes = batch_bytes.clone();
        let sets = RecordBatchDecoder::decode_all(&mut bytes)?;
        assert_eq!(sets.len(), 1, "records were split into several batches");
        let header = crate::log::BatchHeader::parse(&batch_bytes)
            .ok_or_else(|| anyhow::anyhow!("no batch header"))?;
        assert_eq!(
            (
                header.base_sequence,
                header.producer_id,
                header.record_count
            ),
            (-1, -1, 2)
        );
        let got: Vec<_> = sets
            .iter()
            .flat_map(|set| set.records.iter())
            .map(|r| (r.offset, r.key.clone(), r.value.clone(), r.timestamp))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    0,
                    Some(Bytes::from_static(b"a")),
                    Some(Bytes::from_static(b"1")),
                    42
                ),
                (1, Some(Bytes::from_static(b"b")), None, 42),
            ]
        );
        assert!(encode_keyed_batch([], 0)?.is_empty());
        Ok(())
    }
}
