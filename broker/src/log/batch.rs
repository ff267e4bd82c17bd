//! The RecordBatch v2 header: parsing and the checks an appended batch must pass.
//!
//! Layout (big-endian): baseOffset i64, batchLength i32, partitionLeaderEpoch i32,
//! magic i8 (= 2), crc u32 (CRC32C of everything from `attributes` to the end),
//! attributes i16, lastOffsetDelta i32, baseTimestamp i64, maxTimestamp i64,
//! producerId i64, producerEpoch i16, baseSequence i32, recordCount i32, records.

use super::LogError;

/// The fixed 61-byte header of a RecordBatch v2, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `batchLength` field (the whole batch is `batch_length + 12` bytes).
    pub batch_length: i32,
    /// Leader epoch of the partition when the batch was appended.
    pub partition_leader_epoch: i32,
    /// Format version; only 2 is accepted.
    pub magic: i8,
    /// CRC32C stored in the batch.
    pub crc: u32,
    /// Compression codec (bits 0-2), timestamp type (bit 3), transactional (bit 4), control (bit 5).
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Idempotent producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub record_count: i32,
}

/// Byte position of `crc` within a batch; the CRC covers everything after it.
const CRC_POS: usize = 17;
/// Byte position of `attributes`, where the CRC-covered part starts.
const ATTRIBUTES_POS: usize = 21;
/// `batchLength` counts from `partitionLeaderEpoch` on; smaller than this cannot hold a header.
const MIN_BATCH_LENGTH: i32 = (BatchHeader::SIZE - BatchHeader::LOG_OVERHEAD) as i32;

impl BatchHeader {
    /// Size of the fixed header in bytes.
    pub const SIZE: usize = 61;
    /// Offset of the `batchLength` field's end: a batch occupies `batch_length + 12` bytes.
    pub const LOG_OVERHEAD: usize = 12;

    /// Decodes the fixed header from the first 61 bytes of `buf`; `None` if shorter.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        let h = buf.get(..Self::SIZE)?;
        let i64_at = |p: usize| i64::from_be_bytes(h[p..p + 8].try_into().unwrap_or_default());
        let i32_at = |p: usize| i32::from_be_bytes(h[p..p + 4].try_into().unwrap_or_default());
        let i16_at = |p: usize| i16::from_be_bytes(h[p..p + 2].try_into().unwrap_or_default());
        Some(BatchHeader {
            base_offset: i64_at(0),
            batch_length: i32_at(8),
            partition_leader_epoch: i32_at(12),
            magic: h[16] as i8,
            crc: u32::from_be_bytes(h[CRC_POS..CRC_POS + 4].try_into().unwrap_or_default()),
            attributes: i16_at(21),
            last_offset_delta: i32_at(23),
            base_timestamp: i64_at(27),
            max_timestamp: i64_at(35),
            producer_id: i64_at(43),
            producer_epoch: i16_at(51),
            base_sequence: i32_at(53),
            record_count: i32_at(57),
        })
    }

    /// Total size of the batch on disk, header included.
    pub fn total_size(&self) -> usize {
        self.batch_length.max(0) as usize + Self::LOG_OVERHEAD
    }

    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// Compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & 0x7
    }

    /// True for the marker batches of transactions (commit/abort), which carry no data.
    pub fn is_control(&self) -> bool {
        self.attributes & (1 << 5) != 0
    }

    /// True when the producer is idempotent, so its sequence numbers are checked.
    pub fn has_sequence(&self) -> bool {
        self.producer_id >= 0 && self.base_sequence >= 0
    }

    /// Sequence number of the last record, wrapping at `i32::MAX` as Kafka's do.
    pub fn last_sequence(&self) -> i32 {
        wrapping_seq(self.base_sequence, self.last_offset_delta)
    }

    /// Structural checks that need only the header: magic, a plausible length and record
    /// count. Stored batches may have gaps in their offsets (compaction), so this does
    /// not tie the record count to `lastOffsetDelta`; [`Self::check_produced`] does.
    pub(crate) fn check_shape(&self) -> Result<(), &'static str> {
        if self.magic != 2 {
            return Err("magic byte is not 2 (only RecordBatch v2 is supported)");
        }
        if self.batch_length < MIN_BATCH_LENGTH {
            return Err("batch length is shorter than a batch header");
        }
        if self.record_count < 0 || self.last_offset_delta < 0 {
            return Err("negative record count or lastOffsetDelta");
        }
        Ok(())
    }

    /// The checks of a batch a producer sent: at least one record, and offsets without
    /// gaps (`lastOffsetDelta + 1 == recordCount`), as Kafka's broker requires.
    pub(crate) fn check_produced(&self) -> Result<(), &'static str> {
        self.check_shape()?;
        if self.record_count < 1 {
            return Err("record count is not positive");
        }
        if i64::from(self.last_offset_delta) + 1 != i64::from(self.record_count) {
            return Err("lastOffsetDelta does not match the record count");
        }
        Ok(())
    }
}

/// `seq + delta` in Kafka's sequence space, which wraps from `i32::MAX` to 0.
pub(crate) fn wrapping_seq(seq: i32, delta: i32) -> i32 {
    ((i64::from(seq) + i64::from(delta)) % (i64::from(i32::MAX) + 1)) as i32
}

/// One batch of a buffer of concatenated RecordBatches, as its `batchLength` frames it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchFrame<'a> {
    /// Where the batch starts in the buffer.
    pub position: usize,
    /// The whole batch, header included.
    pub bytes: &'a [u8],
}

impl BatchFrame<'_> {
    /// The batch's fixed header; `None` when the batch is shorter than one.
    pub fn header(&self) -> Option<BatchHeader> {
        BatchHeader::parse(self.bytes)
    }
}

/// Why the batches of a buffer cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A `batchLength` below zero.
    #[error("batch at byte {position} has a negative length")]
    NegativeLength {
        /// Where the batch starts.
        position: usize,
    },
    /// The buffer ends inside a batch (or inside the 12 bytes that frame it).
    #[error("batch at byte {position} needs {size} bytes, {available} are left")]
    Truncated {
        /// Where the batch starts.
        position: usize,
        /// The batch's size as its length field gives it (0 when that field is cut).
        size: usize,
        /// Bytes left from `position` on.
        available: usize,
    },
}

/// Frames the batches of `buf` one by one from their `baseOffset` and `batchLength`
/// fields, without checking their content: the one reader of batch boundaries, for
/// Produce's size checks, the replays of internal topics and the log itself. Stops after
/// the first error.
pub fn frames(buf: &[u8]) -> impl Iterator<Item = Result<BatchFrame<'_>, FrameError>> + '_ {
    let mut pos = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || pos >= buf.len() {
            return None;
        }
        let rest = &buf[pos..];
        let framed = match rest.get(8..12) {
            None => Err(FrameError::Truncated {
                position: pos,
                size: 0,
                available: rest.len(),
            }),
            Some(len) => {
                let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
                match usize::try_from(len) {
                    Err(_) => Err(FrameError::NegativeLength { position: pos }),
                    Ok(len) => {
                        let size = len + BatchHeader::LOG_OVERHEAD;
                        match rest.get(..size) {
                            Some(bytes) => Ok(BatchFrame {
                                position: pos,
                                bytes,
                            }),
                            None => Err(FrameError::Truncated {
                                position: pos,
                                size,
                                available: rest.len(),
                            }),
                        }
                    }
                }
            }
        };
        match &framed {
            Ok(frame) => pos += frame.bytes.len(),
            Err(_) => failed = true,
        }
        Some(framed)
    })
}

/// True when the CRC32C stored in `batch` (one whole batch) matches its content.
pub(crate) fn crc_matches(batch: &[u8], header: &BatchHeader) -> bool {
    batch.len() > ATTRIBUTES_POS && crc32c::crc32c(&batch[ATTRIBUTES_POS..]) == header.crc
}

/// Rewrites the `baseOffset` of the batch starting at `batch[0]`.
pub(crate) fn set_base_offset(batch: &mut [u8], offset: i64) {
    batch[..8].copy_from_slice(&offset.to_be_bytes());
}

/// Rewrites the `partitionLeaderEpoch` of the batch starting at `batch[0]` (outside the
/// part the CRC covers).
pub(crate) fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// Iterates the batches of a buffer that [`validate`] accepted: `(position, header)`.
pub(crate) fn headers(buf: &[u8]) -> impl Iterator<Item = (usize, BatchHeader)> + '_ {
    frames(buf)
        .map_while(Result::ok)
        .map_while(|frame| Some((frame.position, frame.header()?)))
}

/// Checks every batch of `buf` (CRC32C, magic, length, record count) and returns how many
/// batches it holds; the error names the position of the first bad batch.
pub(crate) fn validate(buf: &[u8]) -> Result<usize, LogError> {
    let corrupt = |position: usize, reason: &str| LogError::CorruptBatch {
        position,
        reason: reason.to_string(),
    };
    if buf.is_empty() {
        return Err(corrupt(0, "no record batch"));
    }
    let mut pos = 0;
    let mut count = 0;
    while pos < buf.len() {
        let Some(h) = BatchHeader::parse(&buf[pos..]) else {
            return Err(corrupt(pos, "truncated batch header"));
        };
        h.check_produced().map_err(|r| corrupt(pos, r))?;
        let end = pos + h.total_size();
        if end > buf.len() {
            return Err(corrupt(
                pos,
                &format!(
                    "batch length {} runs past the end of the data ({} bytes left)",
                    h.batch_length,
                    buf.len() - pos
                ),
            ));
        }
        let batch = &buf[pos..end];
        if !crc_matches(batch, &h) {
            return Err(corrupt(pos, "CRC32C mismatch"));
        }
        if h.compression() == 0 {
            count_records(&batch[BatchHeader::SIZE..], h.record_count)
                .map_err(|r| corrupt(pos, r))?;
        } else if h.compression() > 4 {
            return Err(corrupt(pos, "unknown compression codec"));
        }
        pos = end;
        count += 1;
    }
    Ok(count)
}

/// Walks the length prefixes of uncompressed records to check that exactly `expected`
/// records fill the batch body.
fn count_records(mut body: &[u8], expected: i32) -> Result<(), &'static str> {
    let mut n = 0;
    while !body.is_empty() {
        let (len, used) = read_varint(body).ok_or("bad record length")?;
        let len = usize::try_from(len).map_err(|_| "negative record length")?;
        let end = used.checked_add(len).filter(|&e| e <= body.len());
        let end = end.ok_or("record runs past the end of the batch")?;
        body = &body[end..];
        n += 1;
        if n > expected {
            break;
        }
    }
    if n != expected {
        return Err("record count does not match the records in the batch");
    }
    Ok(())
}

/// Decodes a zig-zag varint (as Kafka records use), returning the value and bytes used.
fn read_varint(buf: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, &b) in buf.iter().enumerate().take(10) {
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let v = (raw >> 1) as i64 ^ -((raw & 1) as i64);
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testutil::{batch, batch_of};

    #[test]
    fn parse_reads_the_fields_the_encoder_wrote() {
        let b = batch_of(7, 3, 1000, 100);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.magic, 2);
        assert_eq!(h.record_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.base_timestamp, 1000);
        assert_eq!(h.max_timestamp, 1002);
        assert_eq!(h.total_size(), b.len());
        assert_eq!(validate(&b).unwrap(), 1);
    }

    #[test]
    fn validate_counts_concatenated_batches() {
        let mut b = batch_of(0, 2, 1, 10);
        b.extend_from_slice(&batch_of(0, 5, 1, 10));
        assert_eq!(validate(&b).unwrap(), 2);
        let offsets: Vec<_> = headers(&b).map(|(p, h)| (p, h.record_count)).collect();
        assert_eq!(offsets.len(), 2);
        assert_eq!(offsets[1].1, 5);
    }

    #[test]
    fn validate_rejects_flipped_bit_truncation_and_bad_magic() {
        let good = batch_of(0, 2, 1, 10);
        for i in 17..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x10;
            assert!(validate(&b).is_err(), "flip at {i} accepted");
        }
        for cut in 0..good.len() {
            assert!(validate(&good[..cut]).is_err(), "cut at {cut} accepted");
        }
        let mut b = good.clone();
        b[16] = 1;
        let err = validate(&b).unwrap_err().to_string();
        assert!(err.contains("magic"), "{err}");
    }

    #[test]
    fn validate_rejects_a_record_count_that_lies() {
        // Re-sign a batch whose recordCount/lastOffsetDelta claim one record more.
        let mut b = batch(&[(Some(b"k".as_slice()), Some(b"v".as_slice()), 5)]);
        b[57..61].copy_from_slice(&2i32.to_be_bytes());
        b[23..27].copy_from_slice(&1i32.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let err = validate(&b).unwrap_err().to_string();
        assert!(err.contains("record count"), "{err}");
    }

    #[test]
    fn frames_split_whole_batches_and_name_the_first_bad_one() {
        let a = batch_of(1, 1, 5, 3);
        let b = batch_of(2, 2, 9, 3);
        let mut buf = [a.clone(), b.clone()].concat();
        let framed: Vec<(usize, i64)> = frames(&buf)
            .map(|f| {
                let f = f.unwrap();
                (f.position, f.header().unwrap().last_offset())
            })
            .collect();
        assert_eq!(framed, vec![(0, 0), (a.len(), 1)]);

        buf.truncate(a.len() + 20);
        let framed: Vec<_> = frames(&buf).collect();
        assert_eq!(framed.len(), 2);
        assert_eq!(
            framed[1].unwrap_err(),
            FrameError::Truncated {
                position: a.len(),
                size: b.len(),
                available: 20
            }
        );

        buf.truncate(a.len() + 5);
        assert!(matches!(
            frames(&buf).nth(1),
            Some(Err(FrameError::Truncated { size: 0, .. }))
        ));

        let mut negative = a.clone();
        negative[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        let framed: Vec<_> = frames(&negative).collect();
        assert_eq!(
            framed,
            vec![Err(FrameError::NegativeLength { position: 0 })]
        );
    }

    #[test]
    fn sequence_wraps_like_kafka() {
        assert_eq!(wrapping_seq(i32::MAX, 1), 0);
        assert_eq!(wrapping_seq(5, 3), 8);
    }
}
