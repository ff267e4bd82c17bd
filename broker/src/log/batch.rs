//! The RecordBatch v2 header: parsing and the checks an appended batch must pass.
//!
//! Layout (big-endian): baseOffset i64, batchLength i32, partitionLeaderEpoch i32,
//! magic i8 (= 2), crc u32 (CRC32C of everything from `attributes` to the end),
//! attributes i16, lastOffsetDelta i32, baseTimestamp i64, maxTimestamp i64,
//! producerId i64, producerEpoch i16, baseSequence i32, recordCount i32, records.

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

impl BatchHeader {
    /// Size of the fixed header in bytes.
    pub const SIZE: usize = 61;
    /// Offset of the `batchLength` field's end: a batch occupies `batch_length + 12` bytes.
    pub const LOG_OVERHEAD: usize = 12;
}
