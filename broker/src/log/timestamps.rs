//! Lookups by timestamp, for ListOffsets: the first offset at or after a time, and the
//! record with the largest timestamp.
//!
//! The segment is chosen by its largest timestamp, the starting point inside it by the
//! time index, and the batch by walking headers from there; within the batch the exact
//! record is found by decoding it (kafka-protocol handles compressed batches), as Kafka's
//! own lookup does. Should a stored batch not decode, the batch's own offset and maximum
//! timestamp are answered instead.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use super::LogError;
use super::batch::BatchHeader;
use super::index;
use super::partition::PartitionLog;
use super::segment::{HeaderScanner, SegmentFile};

impl PartitionLog {
    /// The first offset (at or after the log start offset) whose record timestamp is
    /// `>= timestamp`, with that record's timestamp; `None` if there is none.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        self.check_online()?;
        let (candidates, log_start) = {
            let v = self.view();
            let candidates: Vec<(Arc<SegmentFile>, u64, u64)> = v
                .segments
                .iter()
                .filter(|(_, s)| {
                    s.size > 0
                        && s.index.max_timestamp >= timestamp
                        && s.last_offset.is_some_and(|l| l >= v.log_start)
                })
                .map(|(&base, s)| {
                    let from = index::lookup_time(&s.index.times, base, timestamp);
                    let pos = index::lookup_offset(&s.index.offsets, base, from);
                    (Arc::clone(&s.file), pos, s.size)
                })
                .collect();
            (candidates, v.log_start)
        };
        for (seg, pos, end) in candidates {
            let mut scanner = HeaderScanner::new(&seg, pos, end);
            while let Some(b) = scanner.next_header()? {
                let h = b.header;
                if h.last_offset() < log_start || h.max_timestamp < timestamp {
                    continue;
                }
                let found = find_record(&seg, b.position, &h, |off, ts| {
                    off >= log_start && ts >= timestamp
                })?;
                if let Some(found) = found {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the offset of its (first) record, for
    /// ListOffsets with MAX_TIMESTAMP; `None` for an empty log. Should the batch not be
    /// readable, the batch's own offset is answered.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let found = {
            let v = self.view();
            v.segments
                .iter()
                .filter(|(_, s)| s.size > 0 && s.index.max_timestamp > i64::MIN)
                .max_by_key(|(_, s)| (s.index.max_timestamp, std::cmp::Reverse(s.file.base_offset)))
                .map(|(&base, s)| {
                    let at = s.index.offset_of_max_timestamp;
                    let pos = index::lookup_offset(&s.index.offsets, base, at);
                    (Arc::clone(&s.file), pos, s.size, at, s.index.max_timestamp)
                })
        };
        let (seg, pos, end, batch_offset, max_ts) = found?;
        let exact = || -> Result<Option<(i64, i64)>, LogError> {
            let mut scanner = HeaderScanner::new(&seg, pos, end);
            while let Some(b) = scanner.next_header()? {
                if b.header.base_offset == batch_offset {
                    return find_record(&seg, b.position, &b.header, |_, ts| ts == max_ts);
                }
            }
            Ok(None)
        };
        match exact() {
            Ok(Some((offset, ts))) => Some((ts, offset)),
            Ok(None) => Some((max_ts, batch_offset)),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the batch with the largest timestamp");
                Some((max_ts, batch_offset))
            }
        }
    }
}

/// The first record of the batch at `pos` that satisfies `want(offset, timestamp)`.
fn find_record(
    seg: &SegmentFile,
    pos: u64,
    h: &BatchHeader,
    want: impl Fn(i64, i64) -> bool,
) -> Result<Option<(i64, i64)>, LogError> {
    let mut buf = vec![0u8; h.total_size()];
    seg.read_at(&mut buf, pos)?;
    let mut bytes = Bytes::from(buf);
    match RecordBatchDecoder::decode(&mut bytes) {
        Ok(set) => Ok(set
            .records
            .iter()
            .find(|r| want(r.offset, r.timestamp))
            .map(|r| (r.offset, r.timestamp))),
        Err(e) => {
            tracing::warn!(file = %seg.path.display(), position = pos, error = %e,
                "could not decode a stored batch; answering with its header");
            Ok(want(h.base_offset, h.max_timestamp).then_some((h.base_offset, h.max_timestamp)))
        }
    }
}
