//! Test helpers: RecordBatch v2 bytes built with kafka-protocol's encoder, and decoding.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One record to encode: key, value (None = tombstone), timestamp.
pub(crate) type Rec<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64);

fn record(key: Option<&[u8]>, value: Option<&[u8]>, ts: i64, i: i64) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: i,
        sequence: -1 + i as i32,
        timestamp: ts,
        key: key.map(Bytes::copy_from_slice),
        value: value.map(Bytes::copy_from_slice),
        headers: Default::default(),
    }
}

fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records, &options).unwrap();
    buf.to_vec()
}

/// One uncompressed batch holding `records` (offsets 0..n as the producer sends them).
pub(crate) fn batch(records: &[Rec<'_>]) -> Vec<u8> {
    batch_compressed(records, Compression::None)
}

/// One batch holding `records`, compressed with `compression`.
pub(crate) fn batch_compressed(records: &[Rec<'_>], compression: Compression) -> Vec<u8> {
    let recs: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v, ts))| record(*k, *v, *ts, i as i64))
        .collect();
    encode(&recs, compression)
}

/// A batch of `count` records with keys `k{seed}-{i}`, values of `value_size` bytes and
/// timestamps `ts, ts+1, ...`.
pub(crate) fn batch_of(seed: u32, count: usize, ts: i64, value_size: usize) -> Vec<u8> {
    let keys: Vec<Vec<u8>> = (0..count)
        .map(|i| format!("k{seed}-{i}").into_bytes())
        .collect();
    let value = vec![b'x'; value_size];
    let recs: Vec<Rec<'_>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (Some(k.as_slice()), Some(value.as_slice()), ts + i as i64))
        .collect();
    batch(&recs)
}

/// A batch of an idempotent producer: `count` records starting at sequence `seq`.
pub(crate) fn idempotent_batch(pid: i64, epoch: i16, seq: i32, count: usize) -> Vec<u8> {
    let recs: Vec<Record> = (0..count)
        .map(|i| {
            let mut r = record(Some(b"k"), Some(b"v"), 1_000 + i as i64, i as i64);
            r.producer_id = pid;
            r.producer_epoch = epoch;
            r.sequence = seq + i as i32;
            r
        })
        .collect();
    encode(&recs, Compression::None)
}

/// Decodes every record of concatenated batches: `(offset, key, value, timestamp)`.
pub(crate) type Decoded = (i64, Option<Bytes>, Option<Bytes>, i64);

/// Decodes concatenated stored batches into their records.
pub(crate) fn decode(bytes: &[u8]) -> Vec<Decoded> {
    let mut buf = Bytes::copy_from_slice(bytes);
    RecordBatchDecoder::decode_all(&mut buf)
        .unwrap()
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| (r.offset, r.key, r.value, r.timestamp))
        .collect()
}
