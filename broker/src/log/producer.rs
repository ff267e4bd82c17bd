//! Idempotent producer state: per producer id, its epoch and its last five batches.
//!
//! An idempotent producer numbers its records (`baseSequence`) per partition and retries
//! a batch after a lost response with the same numbers. The log answers a retry of one of
//! the producer's last five batches with the offsets it already gave (and writes
//! nothing), refuses a gap in the numbering (`OUT_OF_ORDER_SEQUENCE_NUMBER`) and a
//! fenced, older epoch (`INVALID_PRODUCER_EPOCH`). A new epoch starts again at sequence 0.
//! A producer the log does not know is accepted at any sequence, as Kafka does once
//! retention has removed a producer's batches. The state is rebuilt at open from the
//! batch headers in the log.

use std::collections::{HashMap, VecDeque};

use super::LogError;
use super::batch::{BatchHeader, wrapping_seq};

/// How many recent batches per producer are remembered for duplicate detection.
const RECENT_BATCHES: usize = 5;

/// One remembered batch of a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerBatch {
    pub(crate) first_seq: i32,
    pub(crate) last_seq: i32,
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
}

/// What the log knows of one producer id.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerEntry {
    pub(crate) epoch: i16,
    pub(crate) batches: VecDeque<ProducerBatch>,
}

/// The verdict on an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Append it.
    Accept,
    /// A retry of a batch already in the log, at these offsets.
    Duplicate(ProducerBatch),
}

/// Checks an incoming batch against what is known of its producer.
pub(crate) fn check(
    entry: Option<&ProducerEntry>,
    h: &BatchHeader,
) -> Result<SequenceCheck, LogError> {
    let Some(entry) = entry else {
        return Ok(SequenceCheck::Accept);
    };
    if h.producer_epoch < entry.epoch {
        return Err(LogError::InvalidProducerEpoch {
            producer_id: h.producer_id,
            current_epoch: entry.epoch,
            epoch: h.producer_epoch,
        });
    }
    if h.producer_epoch > entry.epoch || entry.batches.is_empty() {
        if h.producer_epoch > entry.epoch && h.base_sequence != 0 {
            return Err(LogError::OutOfOrderSequence {
                producer_id: h.producer_id,
                expected: 0,
                sequence: h.base_sequence,
            });
        }
        return Ok(SequenceCheck::Accept);
    }
    let last_seq = h.last_sequence();
    if let Some(dup) = entry
        .batches
        .iter()
        .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
    {
        return Ok(SequenceCheck::Duplicate(*dup));
    }
    let expected = entry
        .batches
        .back()
        .map_or(0, |b| wrapping_seq(b.last_seq, 1));
    if h.base_sequence != expected {
        return Err(LogError::OutOfOrderSequence {
            producer_id: h.producer_id,
            expected,
            sequence: h.base_sequence,
        });
    }
    Ok(SequenceCheck::Accept)
}

/// Producer id → state, for one partition.
#[derive(Debug, Default)]
pub(crate) struct ProducerTable {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerTable {
    pub(crate) fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer and its state.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&i64, &ProducerEntry)> {
        self.producers.iter()
    }

    /// Sets a producer's state (when restoring a snapshot).
    pub(crate) fn insert(&mut self, producer_id: i64, entry: ProducerEntry) {
        self.producers.insert(producer_id, entry);
    }

    /// Records an appended (or recovered) batch at `base_offset`.
    pub(crate) fn apply(&mut self, h: &BatchHeader, base_offset: i64) {
        apply_to(
            self.producers.entry(h.producer_id).or_default(),
            h,
            base_offset,
        );
    }

    /// Number of producers known.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.producers.len()
    }
}

/// Records a batch in one producer's entry.
pub(crate) fn apply_to(entry: &mut ProducerEntry, h: &BatchHeader, base_offset: i64) {
    if h.producer_epoch != entry.epoch {
        entry.epoch = h.producer_epoch;
        entry.batches.clear();
    }
    if entry.batches.len() == RECENT_BATCHES {
        entry.batches.pop_front();
    }
    entry.batches.push_back(ProducerBatch {
        first_seq: h.base_sequence,
        last_seq: h.last_sequence(),
        base_offset,
        last_offset: base_offset + i64::from(h.last_offset_delta),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testutil::idempotent_batch;

    fn header(pid: i64, epoch: i16, seq: i32, count: usize) -> BatchHeader {
        BatchHeader::parse(&idempotent_batch(pid, epoch, seq, count)).unwrap()
    }

    #[test]
    fn retry_of_a_recent_batch_is_a_duplicate_with_its_offsets() {
        let mut t = ProducerTable::default();
        t.apply(&header(1, 0, 0, 3), 10);
        t.apply(&header(1, 0, 3, 2), 13);
        let verdict = check(t.get(1), &header(1, 0, 0, 3)).unwrap();
        assert_eq!(
            verdict,
            SequenceCheck::Duplicate(ProducerBatch {
                first_seq: 0,
                last_seq: 2,
                base_offset: 10,
                last_offset: 12
            })
        );
        assert_eq!(
            check(t.get(1), &header(1, 0, 5, 1)).unwrap(),
            SequenceCheck::Accept
        );
    }

    #[test]
    fn gap_old_epoch_and_new_epoch_not_at_zero_are_refused() {
        let mut t = ProducerTable::default();
        t.apply(&header(1, 3, 0, 3), 0);
        assert!(matches!(
            check(t.get(1), &header(1, 3, 7, 1)),
            Err(LogError::OutOfOrderSequence {
                expected: 3,
                sequence: 7,
                ..
            })
        ));
        assert!(matches!(
            check(t.get(1), &header(1, 2, 3, 1)),
            Err(LogError::InvalidProducerEpoch {
                current_epoch: 3,
                epoch: 2,
                ..
            })
        ));
        assert!(matches!(
            check(t.get(1), &header(1, 4, 1, 1)),
            Err(LogError::OutOfOrderSequence { expected: 0, .. })
        ));
        assert_eq!(
            check(t.get(1), &header(1, 4, 0, 1)).unwrap(),
            SequenceCheck::Accept
        );
        assert_eq!(
            check(t.get(9), &header(9, 0, 42, 1)).unwrap(),
            SequenceCheck::Accept
        );
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut t = ProducerTable::default();
        for i in 0..7 {
            t.apply(&header(1, 0, i, 1), i64::from(i));
        }
        assert_eq!(t.get(1).unwrap().batches.len(), 5);
        // Sequence 0 and 1 fell out of the window: no longer recognised as duplicates.
        assert!(check(t.get(1), &header(1, 0, 1, 1)).is_err());
        assert!(matches!(
            check(t.get(1), &header(1, 0, 2, 1)).unwrap(),
            SequenceCheck::Duplicate(_)
        ));
        assert_eq!(t.len(), 1);
    }
}
