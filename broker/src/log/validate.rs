//! What a produced batch must pass before the log takes it, and what the topic makes of
//! it: Kafka's LogValidator for RecordBatch v2.
//!
//! [`prepare`] runs on a blocking thread for each partition of a Produce request. It first
//! checks every batch's header and CRC32C ([`batch::validate`]), then reads every record,
//! decompressing the body if the batch is compressed, under a bound on the decompressed
//! bytes ([`decompressed_limit`]): each record's length prefix must match the fields it
//! holds (varints, key, value, headers), the offset deltas must run 0, 1, … n-1 in order,
//! the records must be exactly as many as `recordCount` says and nothing may follow them.
//! A batch that fails is refused whole with `CORRUPT_MESSAGE` and nothing is stored.
//!
//! Timestamps follow `message.timestamp.type`: under `CreateTime` every record's timestamp
//! must lie within `[now - message.timestamp.before.max.ms, now +
//! message.timestamp.after.max.ms]` (`INVALID_TIMESTAMP` otherwise); under
//! `LogAppendTime` the batch's timestamp-type bit is set and its `maxTimestamp` becomes
//! the broker's clock, which consumers then read as every record's timestamp.
//!
//! A valid batch is stored exactly as sent unless the topic says otherwise: when
//! `compression.type` names a codec other than the batch's, its records are recompressed
//! (the records themselves, their offset deltas and timestamps, and the header's producer
//! id, epoch and base sequence stay as they were); a rewritten header gets a new CRC32C.

use std::io::{self, BufRead, Write};

use super::LogError;
use super::batch::{self, BatchHeader};
use super::compression::{self, Codec, Compressor};

/// `message.timestamp.type`: whose clock a record's timestamp is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// The producer's timestamps are kept (checked against the allowed window).
    #[default]
    CreateTime,
    /// The broker stamps each batch with its clock when appending it.
    LogAppendTime,
}

/// `compression.type` of a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TopicCompression {
    /// `producer`: batches are kept with the codec the producer chose.
    #[default]
    Producer,
    /// A codec every stored batch uses, at the level its `compression.*.level` sets.
    Codec {
        /// The codec (`uncompressed` is [`Codec::None`]).
        codec: Codec,
        /// The codec's compression level.
        level: i32,
    },
}

/// What a topic's configs ask of the batches produced to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducePolicy {
    /// `max.message.bytes`: the largest batch, as stored.
    pub max_message_bytes: i32,
    /// `compression.type`.
    pub compression: TopicCompression,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// How far in the past a `CreateTime` timestamp may be (`message.timestamp.before.max.ms`).
    pub before_max_ms: i64,
    /// How far in the future a `CreateTime` timestamp may be (`message.timestamp.after.max.ms`).
    pub after_max_ms: i64,
}

impl Default for ProducePolicy {
    fn default() -> Self {
        ProducePolicy {
            max_message_bytes: 1_048_588,
            compression: TopicCompression::Producer,
            timestamp_type: TimestampType::CreateTime,
            before_max_ms: i64::MAX,
            after_max_ms: i64::MAX,
        }
    }
}

/// The most bytes one batch's records may decompress to: 32 times `max.message.bytes`
/// (at least 1 MiB of it), so that any batch a real producer compresses fits, while a
/// decompression bomb costs bounded CPU and is refused with `MESSAGE_TOO_LARGE`.
pub fn decompressed_limit(max_message_bytes: i32) -> u64 {
    const FACTOR: u64 = 32;
    const MAX: u64 = 1 << 31;
    (max_message_bytes.max(1 << 20) as u64 * FACTOR).min(MAX)
}

/// Attribute bit 3: the batch's timestamps are the broker's (`LogAppendTime`).
const LOG_APPEND_TIME_BIT: i16 = 1 << 3;
/// Byte positions of header fields rewritten here.
const BATCH_LENGTH_POS: usize = 8;
const CRC_POS: usize = 17;
const ATTRIBUTES_POS: usize = 21;
const MAX_TIMESTAMP_POS: usize = 35;

/// Why a batch's records were refused.
#[derive(Debug)]
enum Refusal {
    Corrupt(String),
    TooLarge(String),
    Timestamp(String),
}

impl Refusal {
    fn at(self, position: usize) -> LogError {
        match self {
            Refusal::Corrupt(reason) => LogError::CorruptBatch { position, reason },
            Refusal::TooLarge(reason) => LogError::BatchTooLarge { position, reason },
            Refusal::Timestamp(reason) => LogError::InvalidTimestamp { position, reason },
        }
    }

    /// A read error of the record stream: a passed limit, or corrupt compressed data.
    fn from_io(e: &io::Error, codec: Codec, what: &str) -> Refusal {
        match compression::limit_exceeded(e) {
            Some(limit) => Refusal::TooLarge(format!("{what} exceed {limit} bytes")),
            None if codec == Codec::None => Refusal::Corrupt(format!("{what}: {e}")),
            None => Refusal::Corrupt(format!("{} data is corrupt: {e}", codec.name())),
        }
    }
}

/// Checks every batch of `batches` (concatenated, as one partition of a Produce request
/// carries them) under `policy` at broker time `now_ms`. Returns `None` when the buffer
/// is to be appended as it is (possibly with headers stamped in place), or the new bytes
/// when batches were recompressed.
pub fn prepare(
    batches: &mut [u8],
    policy: &ProducePolicy,
    now_ms: i64,
) -> Result<Option<Vec<u8>>, LogError> {
    batch::validate(batches)?;
    let limit = decompressed_limit(policy.max_message_bytes);
    let mut rebuilt: Option<Vec<u8>> = None;
    let mut pos = 0;
    while pos < batches.len() {
        let Some(h) = BatchHeader::parse(&batches[pos..]) else {
            break;
        };
        let end = pos + h.total_size();
        let batch = &mut batches[pos..end];
        let source = Codec::from_attributes(h.attributes)
            .ok_or_else(|| Refusal::Corrupt("unknown compression codec".into()).at(pos))?;
        if h.attributes & LOG_APPEND_TIME_BIT != 0 {
            return Err(Refusal::Timestamp(
                "the batch has the LogAppendTime timestamp type: a producer may not set it".into(),
            )
            .at(pos));
        }
        let target = match policy.compression {
            TopicCompression::Codec { codec, level } if codec != source && !h.is_control() => {
                Some((codec, level))
            }
            _ => None,
        };
        let window = match policy.timestamp_type {
            TimestampType::CreateTime => Some((
                now_ms.saturating_sub(policy.before_max_ms),
                now_ms.saturating_add(policy.after_max_ms),
            )),
            TimestampType::LogAppendTime => None,
        };
        let body = &batch[BatchHeader::SIZE..];
        let records = match target {
            None => {
                check_records(source, body, &h, limit, window, None).map_err(|r| r.at(pos))?;
                None
            }
            Some((codec, level)) => {
                let room = (policy.max_message_bytes.max(0) as u64)
                    .saturating_sub(BatchHeader::SIZE as u64);
                let mut out = Compressor::new(codec, level, room)
                    .map_err(|e| Refusal::Corrupt(format!("{}: {e}", codec.name())).at(pos))?;
                check_records(source, body, &h, limit, window, Some(&mut out))
                    .map_err(|r| r.at(pos))?;
                let records = out
                    .finish()
                    .map_err(|e| Refusal::from_io(&e, codec, "the recompressed records").at(pos))?;
                Some((codec, records))
            }
        };
        let stamp = (policy.timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        match records {
            None => {
                if let Some(now) = stamp {
                    stamp_header(batch, h.attributes | LOG_APPEND_TIME_BIT, now);
                }
                if let Some(out) = rebuilt.as_mut() {
                    out.extend_from_slice(batch);
                }
            }
            Some((codec, records)) => {
                let out = rebuilt.get_or_insert_with(|| {
                    let mut out = Vec::with_capacity(batches.len());
                    out.extend_from_slice(&batches[..pos]);
                    out
                });
                let start = out.len();
                out.extend_from_slice(&batches[pos..pos + BatchHeader::SIZE]);
                out.extend_from_slice(&records);
                let new = &mut out[start..];
                let length = (new.len() - BatchHeader::LOG_OVERHEAD) as i32;
                new[BATCH_LENGTH_POS..BATCH_LENGTH_POS + 4].copy_from_slice(&length.to_be_bytes());
                let mut attributes = (h.attributes & !0x7) | codec.id();
                let mut max_timestamp = h.max_timestamp;
                if let Some(now) = stamp {
                    attributes |= LOG_APPEND_TIME_BIT;
                    max_timestamp = now;
                }
                stamp_header(new, attributes, max_timestamp);
            }
        }
        pos = end;
    }
    Ok(rebuilt)
}

/// Writes `attributes` and `maxTimestamp` into a batch's header and re-signs it.
fn stamp_header(batch: &mut [u8], attributes: i16, max_timestamp: i64) {
    batch[ATTRIBUTES_POS..ATTRIBUTES_POS + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_POS..MAX_TIMESTAMP_POS + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_POS..]);
    batch[CRC_POS..CRC_POS + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Reads every record of a batch body compressed with `codec`, checking it as the module
/// doc says, and copies the decompressed record bytes into `copy` when given.
fn check_records(
    codec: Codec,
    body: &[u8],
    h: &BatchHeader,
    limit: u64,
    window: Option<(i64, i64)>,
    copy: Option<&mut Compressor>,
) -> Result<(), Refusal> {
    let what = "the decompressed records";
    let src =
        compression::decoder(codec, body, limit).map_err(|e| Refusal::from_io(&e, codec, what))?;
    let mut r = Records {
        src,
        read: 0,
        copy,
        error: None,
    };
    let result = r.walk(h, window);
    if let Some(e) = r.error.take() {
        return Err(Refusal::from_io(
            &e,
            Codec::None,
            "the recompressed records",
        ));
    }
    result.map_err(|e| match e {
        Walk::Io(e) => Refusal::from_io(&e, codec, what),
        Walk::Bad(reason) => Refusal::Corrupt(reason),
        Walk::Timestamp(reason) => Refusal::Timestamp(reason),
    })
}

/// Why a walk over records stopped.
enum Walk {
    Io(io::Error),
    Bad(String),
    Timestamp(String),
}

impl From<io::Error> for Walk {
    fn from(e: io::Error) -> Walk {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Walk::Bad("the records end before the batch says they do".into())
        } else {
            Walk::Io(e)
        }
    }
}

/// A cursor over a batch's record bytes, counting what it read and passing the bytes on
/// to a compressor when recompressing.
struct Records<'a, 'c> {
    src: Box<dyn BufRead + 'a>,
    read: u64,
    copy: Option<&'c mut Compressor>,
    /// The first write error of `copy`, reported after the walk.
    error: Option<io::Error>,
}

impl Records<'_, '_> {
    fn consume(&mut self, n: usize) -> io::Result<()> {
        if let Some(copy) = self.copy.as_deref_mut()
            && self.error.is_none()
        {
            let buf = self.src.fill_buf()?;
            if let Err(e) = copy.write_all(&buf[..n]) {
                self.error = Some(e);
            }
        }
        self.src.consume(n);
        self.read += n as u64;
        Ok(())
    }

    fn byte(&mut self) -> io::Result<u8> {
        let b = *self
            .src
            .fill_buf()?
            .first()
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        self.consume(1)?;
        Ok(b)
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let available = self.src.fill_buf()?.len();
            if available == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let take = available.min(usize::try_from(n).unwrap_or(usize::MAX));
            self.consume(take)?;
            n -= take as u64;
        }
        Ok(())
    }

    /// A zig-zag varint of at most `max_bytes` bytes (5 for an int, 10 for a long).
    fn varint(&mut self, max_bytes: u32, field: &str) -> Result<i64, Walk> {
        let mut raw: u64 = 0;
        for i in 0..max_bytes {
            let b = self.byte()?;
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                let v = (raw >> 1) as i64 ^ -((raw & 1) as i64);
                if max_bytes == 5 && i32::try_from(v).is_err() {
                    break;
                }
                return Ok(v);
            }
        }
        Err(Walk::Bad(format!("the varint of {field} is too long")))
    }

    fn int(&mut self, field: &str) -> Result<i64, Walk> {
        self.varint(5, field)
    }

    /// Skips a length-prefixed field whose length may be -1 (null). Kafka reads any
    /// negative length as null; clients do not all, so below -1 is refused.
    fn bytes(&mut self, field: &str) -> Result<(), Walk> {
        let len = self.int(field)?;
        if len < -1 {
            return Err(Walk::Bad(format!("{field} is {len}")));
        }
        if len > 0 {
            self.skip(len as u64)?;
        }
        Ok(())
    }

    fn walk(&mut self, h: &BatchHeader, window: Option<(i64, i64)>) -> Result<(), Walk> {
        for i in 0..h.record_count {
            let length = self.int("a record length")?;
            if length < 0 {
                return Err(Walk::Bad(format!(
                    "record {i} has a negative length {length}"
                )));
            }
            let start = self.read;
            self.byte()?; // attributes: no record-level bits are defined for v2
            let timestamp_delta = self.varint(10, "a timestamp delta")?;
            let offset_delta = self.int("an offset delta")?;
            if offset_delta != i64::from(i) {
                return Err(Walk::Bad(format!(
                    "record {i} has offset delta {offset_delta}; the deltas of a produced batch run 0, 1, 2, ..."
                )));
            }
            self.bytes("a key length")?;
            self.bytes("a value length")?;
            let headers = self.int("a header count")?;
            if headers < 0 {
                return Err(Walk::Bad(format!(
                    "record {i} has a negative header count {headers}"
                )));
            }
            for _ in 0..headers {
                let key = self.int("a header key length")?;
                if key < 0 {
                    return Err(Walk::Bad(format!(
                        "record {i} has a header with a negative key length {key}"
                    )));
                }
                self.skip(key as u64)?;
                self.bytes("a header value length")?;
                if self.read - start > length as u64 {
                    break;
                }
            }
            let used = self.read - start;
            if used != length as u64 {
                return Err(Walk::Bad(format!(
                    "record {i} says it is {length} bytes long but its fields take {used}"
                )));
            }
            if let Some((lower, upper)) = window {
                let timestamp = h
                    .base_timestamp
                    .checked_add(timestamp_delta)
                    .ok_or_else(|| Walk::Bad(format!("record {i}'s timestamp delta overflows")))?;
                // Kafka does not check records without a timestamp (-1).
                if timestamp != -1 && !(lower..=upper).contains(&timestamp) {
                    return Err(Walk::Timestamp(format!(
                        "Timestamp {timestamp} of message with offset {i} is out of range. \
                         The timestamp should be within [{lower}, {upper}]"
                    )));
                }
            }
        }
        if !self.src.fill_buf()?.is_empty() {
            return Err(Walk::Bad(format!(
                "bytes follow the {} records the batch header declares",
                h.record_count
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testutil::{batch, batch_compressed};
    use kafka_protocol::records::{Compression, RecordBatchDecoder};
    use proptest::prelude::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn codec_of(c: Compression) -> Codec {
        match c {
            Compression::None => Codec::None,
            Compression::Gzip => Codec::Gzip,
            Compression::Snappy => Codec::Snappy,
            Compression::Lz4 => Codec::Lz4,
            Compression::Zstd => Codec::Zstd,
        }
    }

    /// A batch whose body is `body` with `attributes`, re-signed so that only the body is wrong.
    fn with_body(template: &[u8], attributes: i16, body: &[u8]) -> Vec<u8> {
        let mut b = template[..BatchHeader::SIZE].to_vec();
        b.extend_from_slice(body);
        let length = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&length.to_be_bytes());
        let max = BatchHeader::parse(&b).unwrap().max_timestamp;
        stamp_header(&mut b, attributes, max);
        b
    }

    /// Incompressible bytes (xorshift).
    fn noise(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    }

    /// The bytes of one record: offset delta `delta`, no key, `value`, no headers.
    fn record(delta: i64, value: &[u8]) -> Vec<u8> {
        fn varint(out: &mut Vec<u8>, v: i64) {
            let mut z = ((v << 1) ^ (v >> 63)) as u64;
            while z >= 0x80 {
                out.push((z as u8) | 0x80);
                z >>= 7;
            }
            out.push(z as u8);
        }
        let mut body = vec![0u8, 0]; // attributes, timestamp delta 0
        varint(&mut body, delta);
        varint(&mut body, -1);
        varint(&mut body, value.len() as i64);
        body.extend_from_slice(value);
        varint(&mut body, 0);
        let mut out = Vec::new();
        varint(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
        out
    }

    fn sample(compression: Compression) -> Vec<u8> {
        batch_compressed(
            &[
                (Some(b"k1".as_slice()), Some(b"v1".as_slice()), 1000),
                (None, Some(b"value two".as_slice()), 1001),
                (Some(b"k3".as_slice()), None, 1002),
            ],
            compression,
        )
    }

    fn prepare_default(b: &mut [u8]) -> Result<Option<Vec<u8>>, LogError> {
        prepare(b, &ProducePolicy::default(), 0)
    }

    #[test]
    fn valid_batches_of_every_codec_are_kept_as_sent() {
        for c in ALL {
            let sent = sample(c);
            let mut b = sent.clone();
            assert!(prepare_default(&mut b).unwrap().is_none(), "{c:?}");
            assert_eq!(b, sent, "{c:?}");
        }
    }

    #[test]
    fn random_bytes_as_compressed_records_are_corrupt() {
        let template = batch(&[(None, Some(b"x".as_slice()), 5)]);
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            let mut b = with_body(&template, codec.id(), &noise(200));
            let err = prepare_default(&mut b).unwrap_err();
            assert!(
                matches!(err, LogError::CorruptBatch { .. }),
                "{codec:?}: {err}"
            );
            assert!(err.to_string().contains(codec.name()), "{err}");
        }
    }

    #[test]
    fn well_compressed_garbage_is_corrupt_not_stored() {
        // A valid gzip stream whose content is not records.
        let template = batch(&[(None, Some(b"x".as_slice()), 5)]);
        for codec in [Codec::Gzip, Codec::Zstd, Codec::Lz4, Codec::Snappy] {
            let mut c = Compressor::new(codec, -1, u64::MAX).unwrap();
            c.write_all(&noise(200)).unwrap();
            let mut b = with_body(&template, codec.id(), &c.finish().unwrap());
            let err = prepare_default(&mut b).unwrap_err();
            assert!(
                matches!(err, LogError::CorruptBatch { .. }),
                "{codec:?}: {err}"
            );
        }
    }

    #[test]
    fn uncompressed_records_with_bad_fields_are_corrupt() {
        let good = sample(Compression::None);
        let body = &good[BatchHeader::SIZE..];
        // The first record: length, attributes, timestamp delta, offset delta, ...
        let mut wrong_delta = body.to_vec();
        assert_eq!(wrong_delta[3], 0, "offset delta of record 0");
        wrong_delta[3] = 2; // zig-zag 1
        let mut long_key = body.to_vec();
        long_key[4] = 6; // key length 3 instead of 2
        let mut trailing = body.to_vec();
        trailing.extend_from_slice(&[0, 0]);
        for (name, body) in [
            ("offset delta", wrong_delta),
            ("record size", long_key),
            ("trailing bytes", trailing),
            ("short", body[..body.len() - 1].to_vec()),
        ] {
            let mut b = with_body(&good, 0, &body);
            let result = prepare_default(&mut b);
            assert!(
                matches!(result, Err(LogError::CorruptBatch { .. })),
                "{name}: {result:?}"
            );
        }
    }

    #[test]
    fn compressed_records_with_wrong_count_or_deltas_are_corrupt() {
        let good = sample(Compression::None);
        let body = &good[BatchHeader::SIZE..];
        let mut wrong_delta = body.to_vec();
        wrong_delta[3] = 4;
        for codec in [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd] {
            for (name, records) in [
                ("extra bytes", [body, &[0u8][..]].concat()),
                ("delta", wrong_delta.clone()),
                ("short", body[..body.len() - 2].to_vec()),
            ] {
                let mut c = Compressor::new(codec, -1, u64::MAX).unwrap();
                c.write_all(&records).unwrap();
                let mut b = with_body(&good, codec.id(), &c.finish().unwrap());
                let err = prepare_default(&mut b).unwrap_err();
                assert!(
                    matches!(err, LogError::CorruptBatch { .. }),
                    "{codec:?} {name}: {err}"
                );
            }
        }
    }

    #[test]
    fn a_decompression_bomb_is_refused_as_too_large() {
        let template = batch(&[(None, Some(b"x".as_slice()), 5)]);
        let mut c = Compressor::new(Codec::Zstd, 3, u64::MAX).unwrap();
        // One well-formed record whose value is 40 MiB of zeros.
        c.write_all(&record(0, &vec![0u8; 40 << 20])).unwrap();
        let packed = c.finish().unwrap();
        assert!(packed.len() < 10_000);
        let mut b = with_body(&template, Codec::Zstd.id(), &packed);
        let err = prepare_default(&mut b).unwrap_err();
        assert!(matches!(err, LogError::BatchTooLarge { .. }), "{err}");
    }

    #[test]
    fn topic_compression_recompresses_keeping_header_and_records() {
        for from in ALL {
            for to in ALL {
                let sent = sample(from);
                let mut b = sent.clone();
                let policy = ProducePolicy {
                    compression: TopicCompression::Codec {
                        codec: codec_of(to),
                        level: -1,
                    },
                    ..ProducePolicy::default()
                };
                let out = prepare(&mut b, &policy, 0).unwrap();
                let stored = match out {
                    Some(new) => {
                        assert_ne!(from, to);
                        new
                    }
                    None => {
                        assert_eq!(from, to);
                        b
                    }
                };
                let h = BatchHeader::parse(&stored).unwrap();
                let orig = BatchHeader::parse(&sent).unwrap();
                assert_eq!(Codec::from_attributes(h.attributes), Some(codec_of(to)));
                assert_eq!(h.total_size(), stored.len());
                for (a, b) in [
                    (h.base_timestamp, orig.base_timestamp),
                    (h.max_timestamp, orig.max_timestamp),
                    (h.producer_id, orig.producer_id),
                    (i64::from(h.base_sequence), i64::from(orig.base_sequence)),
                    (i64::from(h.record_count), i64::from(orig.record_count)),
                ] {
                    assert_eq!(a, b, "{from:?} -> {to:?}");
                }
                assert!(batch::validate(&stored).is_ok());
                let theirs = RecordBatchDecoder::decode(&mut bytes::Bytes::from(stored)).unwrap();
                let ours = RecordBatchDecoder::decode(&mut bytes::Bytes::from(sent)).unwrap();
                assert_eq!(theirs.records, ours.records, "{from:?} -> {to:?}");
            }
        }
    }

    #[test]
    fn recompression_past_max_message_bytes_is_too_large() {
        let value = noise(5000);
        let sent = batch_compressed(&[(None, Some(value.as_slice()), 1)], Compression::None);
        let mut b = sent.clone();
        let policy = ProducePolicy {
            max_message_bytes: sent.len() as i32,
            compression: TopicCompression::Codec {
                codec: Codec::Gzip,
                level: 1,
            },
            ..ProducePolicy::default()
        };
        let err = prepare(&mut b, &policy, 0).unwrap_err();
        assert!(matches!(err, LogError::BatchTooLarge { .. }), "{err}");
    }

    #[test]
    fn log_append_time_stamps_the_header_with_the_brokers_clock() {
        for c in ALL {
            let mut b = sample(c);
            let policy = ProducePolicy {
                timestamp_type: TimestampType::LogAppendTime,
                ..ProducePolicy::default()
            };
            assert!(prepare(&mut b, &policy, 777_000).unwrap().is_none());
            let h = BatchHeader::parse(&b).unwrap();
            assert_eq!(h.max_timestamp, 777_000);
            assert!(batch::validate(&b).is_ok(), "CRC re-signed");
            // Consumers read maxTimestamp as every record's timestamp under LogAppendTime.
            let records = RecordBatchDecoder::decode(&mut bytes::Bytes::from(b)).unwrap();
            assert!(
                records
                    .records
                    .iter()
                    .all(|r| r.timestamp_type == kafka_protocol::records::TimestampType::LogAppend)
            );
        }
    }

    #[test]
    fn create_time_outside_the_window_is_an_invalid_timestamp() {
        let policy = ProducePolicy {
            before_max_ms: 500,
            after_max_ms: 100,
            ..ProducePolicy::default()
        };
        for c in ALL {
            // Records at 1000..=1002.
            for (now, ok) in [
                (1000, true),
                (1500, true),
                (1501, false),
                (902, true),
                (901, false),
            ] {
                let mut b = sample(c);
                let result = prepare(&mut b, &policy, now);
                match ok {
                    true => assert!(result.is_ok(), "{c:?} now {now}: {result:?}"),
                    false => assert!(
                        matches!(result, Err(LogError::InvalidTimestamp { .. })),
                        "{c:?} now {now}: {result:?}"
                    ),
                }
            }
        }
    }

    #[test]
    fn a_producer_may_not_send_log_append_time() {
        let sent = sample(Compression::None);
        let h = BatchHeader::parse(&sent).unwrap();
        let mut b = sent.clone();
        stamp_header(&mut b, h.attributes | LOG_APPEND_TIME_BIT, h.max_timestamp);
        let err = prepare_default(&mut b).unwrap_err();
        assert!(matches!(err, LogError::InvalidTimestamp { .. }), "{err}");
    }

    proptest! {
        /// Whatever the records' bytes, `prepare` never panics, and what it accepts
        /// kafka-protocol's decoder reads with the declared number of records.
        #[test]
        fn arbitrary_bodies_are_refused_or_decodable(
            body in proptest::collection::vec(any::<u8>(), 0..300),
            codec in 0i16..5,
        ) {
            let template = sample(Compression::None);
            let mut b = with_body(&template, codec, &body);
            if prepare_default(&mut b).is_ok() {
                let set = RecordBatchDecoder::decode(&mut bytes::Bytes::from(b)).unwrap();
                prop_assert_eq!(set.records.len(), 3);
            }
        }

        /// Mutating one byte of a valid body never yields a batch that decodes otherwise
        /// than `prepare` says.
        #[test]
        fn mutated_bodies_are_refused_or_decodable(at in 0usize..40, byte in any::<u8>(), c in 0usize..5) {
            let good = sample(ALL[c]);
            let mut body = good[BatchHeader::SIZE..].to_vec();
            let at = at % body.len();
            body[at] = byte;
            let mut b = with_body(&good, codec_of(ALL[c]).id(), &body);
            if prepare_default(&mut b).is_ok() {
                let set = RecordBatchDecoder::decode(&mut bytes::Bytes::from(b));
                prop_assert!(set.is_ok(), "{:?}", set.err());
                prop_assert_eq!(set.unwrap().records.len(), 3);
            }
        }
    }
}
