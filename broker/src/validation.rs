//! Broker-side schema validation: a topic may require that every record's key and/or
//! value is framed with a schema id (Confluent's wire format: magic byte 0, then the id as
//! a 4-byte big-endian integer) that the schema registry has registered under the topic's
//! *subject*, so that no producer can write what the topic's consumers cannot decode.
//!
//! The topic configs `key.schema.validation` / `value.schema.validation` (or Confluent
//! Server's and Redpanda's names for them, see `crate::topics::config`) set a [`Level`]:
//! `none`, `id` (the framing and the registration are checked) or `deep` (the payload
//! must also decode against that schema, with nothing left over). The subject is the one a
//! [`Strategy`] names: `<topic>-key`/`<topic>-value`, the record's full name, or
//! `<topic>-<full name>`.
//!
//! [`check`] runs for each partition of a Produce request after the batches were framed
//! and before the log appends them, on the blocking thread of the appends: it decompresses
//! each batch (the batch is stored as sent), reads every record and refuses the whole
//! partition's records with `INVALID_RECORD` when any record fails, naming each bad record
//! by its index. The registry is reached through [`SchemaLookup`], which `strand serve`
//! wires to the registry's in-process state (no HTTP, no lock), so the broker does not
//! depend on the registry.

use std::sync::Arc;

use crate::log::{BatchHeader, Codec, decompressed_limit, frames};
use crate::replica::ReplicaError;

/// What schema validation asks of the registry.
pub trait SchemaLookup: Send + Sync + std::fmt::Debug + 'static {
    /// Whether a live version of `subject` has schema id `id`.
    fn is_registered(&self, subject: &str, id: u32) -> bool;
    /// Whether `subject` has any live version.
    fn subject_exists(&self, subject: &str) -> bool;
    /// The schema of id `id`, compiled for checking payloads; `None` when no schema has
    /// that id, an error when it does not compile.
    fn schema(&self, id: u32) -> Option<Result<Arc<dyn PayloadCheck>, String>>;
}

/// A registered schema as validation uses it.
pub trait PayloadCheck: Send + Sync + std::fmt::Debug {
    /// The full name of the schema's record, for the record-name strategies.
    fn record_name(&self) -> Option<&str>;
    /// Whether `payload` (after the 5-byte framing) is exactly one datum of the schema.
    fn check(&self, payload: &[u8]) -> Result<(), String>;
}

/// How strictly one side (key or value) of a topic's records is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    /// Not validated.
    #[default]
    None,
    /// Framed with a schema id registered under the subject.
    Id,
    /// As `Id`, and the payload decodes against that schema.
    Deep,
}

/// Which subject a record's schema id must be registered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// `<topic>-key` / `<topic>-value` (Confluent's `TopicNameStrategy`).
    #[default]
    Topic,
    /// The full name of the record the schema id stands for (`RecordNameStrategy`).
    Record,
    /// `<topic>-<record full name>` (`TopicRecordNameStrategy`).
    TopicRecord,
}

impl Strategy {
    /// Parses a strategy by its short name or Confluent's Java class name.
    pub fn parse(value: &str) -> Option<Strategy> {
        let short = value
            .strip_prefix("io.confluent.kafka.serializers.subject.")
            .unwrap_or(value);
        match short {
            "TopicNameStrategy" => Some(Strategy::Topic),
            "RecordNameStrategy" => Some(Strategy::Record),
            "TopicRecordNameStrategy" => Some(Strategy::TopicRecord),
            _ => None,
        }
    }
}

/// What a topic's configs ask of its records' keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchemaValidation {
    /// For keys.
    pub key: (Level, Strategy),
    /// For values.
    pub value: (Level, Strategy),
}

impl SchemaValidation {
    /// Whether anything is checked.
    pub fn is_on(&self) -> bool {
        self.key.0 != Level::None || self.value.0 != Level::None
    }
}

/// Where the part of a batch its CRC32C covers starts (the attributes).
const CRC_FROM: usize = 21;

/// How many refused records `error_message` names (all are in `record_errors`).
const NAMED_IN_MESSAGE: usize = 3;

/// Checks every record of `batches` (one partition's, already framed into whole
/// batches) against `rules`; `max_message_bytes` bounds decompression. A batch that does
/// not parse is `CorruptRecords`; records that fail are `InvalidRecord`.
pub(crate) fn check(
    topic: &str,
    rules: &SchemaValidation,
    batches: &[u8],
    max_message_bytes: i32,
    lookup: Option<&dyn SchemaLookup>,
) -> Result<(), ReplicaError> {
    if !rules.is_on() {
        return Ok(());
    }
    let mut key = Side::new(topic, "key", rules.key);
    let mut value = Side::new(topic, "value", rules.value);
    let mut errors: Vec<(i32, String)> = Vec::new();
    let mut index: i32 = 0;
    let limit = decompressed_limit(max_message_bytes);
    let mut scratch = Vec::new();
    for frame in frames(batches) {
        let frame = frame.map_err(|_| ReplicaError::CorruptRecords)?;
        let h = frame.header().ok_or(ReplicaError::CorruptRecords)?;
        let crc = crc32c::crc32c(frame.bytes.get(CRC_FROM..).unwrap_or_default());
        if crc != h.crc || h.is_control() {
            // A bad CRC is the log's to refuse, with its reason; control batches carry
            // no user records.
            index += h.record_count.max(0);
            continue;
        }
        let codec = Codec::from_attributes(h.attributes).ok_or(ReplicaError::CorruptRecords)?;
        let body = &frame.bytes[BatchHeader::SIZE..];
        let records: &[u8] = if codec == Codec::None {
            body
        } else {
            scratch.clear();
            let mut reader = crate::log::decompress(codec, body, limit)
                .map_err(|_| ReplicaError::CorruptRecords)?;
            std::io::Read::read_to_end(&mut reader, &mut scratch)
                .map_err(|_| ReplicaError::CorruptRecords)?;
            &scratch
        };
        let mut rest = records;
        for _ in 0..h.record_count.max(0) {
            let (k, v, after) = read_record(rest).ok_or(ReplicaError::CorruptRecords)?;
            rest = after;
            let reason = key
                .check(k, lookup)
                .err()
                .or_else(|| value.check(v, lookup).err());
            if let Some(reason) = reason {
                errors.push((index, reason));
            }
            index = index.saturating_add(1);
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    let mut message = errors
        .iter()
        .take(NAMED_IN_MESSAGE)
        .map(|(i, reason)| format!("record {i}: {reason}"))
        .collect::<Vec<_>>()
        .join("; ");
    if errors.len() > NAMED_IN_MESSAGE {
        message.push_str(&format!(
            "; and {} more records",
            errors.len() - NAMED_IN_MESSAGE
        ));
    }
    Err(ReplicaError::InvalidRecord { errors, message })
}

/// Whether a schema id may frame one side, with the schema to decode with for `deep`, or
/// why not.
type Verdict = Result<Option<Arc<dyn PayloadCheck>>, String>;

/// A record's key and value (`None`: null), and the bytes after the record.
type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, &'a [u8]);

/// One side (key or value) of the records, with what it learnt so far in this request:
/// records of a batch nearly always share one schema id.
struct Side<'a> {
    topic: &'a str,
    side: &'static str,
    level: Level,
    strategy: Strategy,
    /// `<topic>-<side>`, for `TopicNameStrategy`.
    topic_subject: String,
    /// The last id seen and whether it passed (with its schema for `deep`).
    last: Option<(u32, Verdict)>,
}

impl<'a> Side<'a> {
    fn new(topic: &'a str, side: &'static str, (level, strategy): (Level, Strategy)) -> Self {
        Side {
            topic,
            side,
            level,
            strategy,
            topic_subject: format!("{topic}-{side}"),
            last: None,
        }
    }

    fn check(
        &mut self,
        data: Option<&[u8]>,
        lookup: Option<&dyn SchemaLookup>,
    ) -> Result<(), String> {
        if self.level == Level::None {
            return Ok(());
        }
        // A null key or value (a tombstone) has nothing to decode.
        let Some(data) = data else {
            return Ok(());
        };
        let side = self.side;
        let id = match data {
            [0, a, b, c, d, ..] => u32::from_be_bytes([*a, *b, *c, *d]),
            _ => {
                return Err(format!(
                    "the {side} is not framed with a schema id (magic byte 0 and a 4-byte id)"
                ));
            }
        };
        let verdict = match &self.last {
            Some((last, verdict)) if *last == id => verdict.clone(),
            _ => {
                let verdict = self.verdict(id, lookup);
                self.last = Some((id, verdict.clone()));
                verdict
            }
        };
        match verdict? {
            Some(schema) => schema
                .check(&data[5..])
                .map_err(|e| format!("the {side} does not decode with schema id {id}: {e}")),
            None => Ok(()),
        }
    }

    /// Whether `id` may frame this side, and the schema to decode with for `deep`.
    fn verdict(&self, id: u32, lookup: Option<&dyn SchemaLookup>) -> Verdict {
        let Some(lookup) = lookup else {
            return Err("the schema registry is not open yet".into());
        };
        let needs_schema = self.level == Level::Deep || self.strategy != Strategy::Topic;
        let schema = if needs_schema {
            match lookup.schema(id) {
                Some(Ok(schema)) => Some(schema),
                Some(Err(e)) => return Err(format!("schema id {id} does not compile: {e}")),
                None if self.strategy == Strategy::Topic => {
                    return Err(not_registered(lookup, id, &self.topic_subject));
                }
                None => return Err(format!("schema id {id} is not registered")),
            }
        } else {
            None
        };
        let named;
        let subject = match self.strategy {
            Strategy::Topic => self.topic_subject.as_str(),
            Strategy::Record | Strategy::TopicRecord => {
                let Some(name) = schema.as_ref().and_then(|s| s.record_name()) else {
                    return Err(format!(
                        "schema id {id} has no record name for the {} strategy",
                        if self.strategy == Strategy::Record {
                            "RecordNameStrategy"
                        } else {
                            "TopicRecordNameStrategy"
                        }
                    ));
                };
                named = if self.strategy == Strategy::Record {
                    name.to_string()
                } else {
                    format!("{}-{name}", self.topic)
                };
                named.as_str()
            }
        };
        if !lookup.is_registered(subject, id) {
            return Err(not_registered(lookup, id, subject));
        }
        Ok(if self.level == Level::Deep {
            schema
        } else {
            None
        })
    }
}

fn not_registered(lookup: &dyn SchemaLookup, id: u32, subject: &str) -> String {
    if lookup.subject_exists(subject) {
        format!("schema id {id} is not registered under subject {subject}")
    } else {
        format!(
            "schema id {id} is not registered under subject {subject} (the subject has no schemas)"
        )
    }
}

/// Reads one record of a batch body: its key and value, and the bytes after it.
fn read_record(buf: &[u8]) -> Option<KeyValue<'_>> {
    let (length, mut pos) = varint(buf)?;
    let length = usize::try_from(length).ok()?;
    let end = pos.checked_add(length).filter(|&e| e <= buf.len())?;
    let record = &buf[..end];
    pos += 1; // attributes
    for _ in 0..2 {
        // timestamp delta, offset delta
        pos += varint(record.get(pos..)?)?.1;
    }
    let mut field = || -> Option<Option<&[u8]>> {
        let (len, used) = varint(record.get(pos..)?)?;
        pos += used;
        if len < 0 {
            return Some(None);
        }
        let len = usize::try_from(len).ok()?;
        let data = record.get(pos..pos.checked_add(len)?)?;
        pos += len;
        Some(Some(data))
    };
    let key = field()?;
    let value = field()?;
    Some((key, value, &buf[end..]))
}

/// A zig-zag varint (up to 10 bytes) and the bytes it took.
fn varint(buf: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, &b) in buf.iter().take(10).enumerate() {
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(((raw >> 1) as i64 ^ -((raw & 1) as i64), i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::testutil::{batch, batch_compressed};
    use kafka_protocol::records::Compression;

    /// Subject `t-value` holds id 1 (a schema named `shop.Order` whose payload must be
    /// `ok`); id 2 is registered elsewhere, under `shop.Order`.
    #[derive(Debug)]
    struct Fake;

    #[derive(Debug)]
    struct Exact;

    impl PayloadCheck for Exact {
        fn record_name(&self) -> Option<&str> {
            Some("shop.Order")
        }
        fn check(&self, payload: &[u8]) -> Result<(), String> {
            if payload == b"ok" {
                Ok(())
            } else {
                Err("not ok".into())
            }
        }
    }

    impl SchemaLookup for Fake {
        fn is_registered(&self, subject: &str, id: u32) -> bool {
            matches!(
                (subject, id),
                ("t-value", 1) | ("shop.Order", 2) | ("t-shop.Order", 2)
            )
        }
        fn subject_exists(&self, subject: &str) -> bool {
            matches!(subject, "t-value" | "shop.Order" | "t-shop.Order")
        }
        fn schema(&self, id: u32) -> Option<Result<Arc<dyn PayloadCheck>, String>> {
            (id == 1 || id == 2).then(|| Ok(Arc::new(Exact) as Arc<dyn PayloadCheck>))
        }
    }

    fn framed(id: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0];
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn value_rules(level: Level, strategy: Strategy) -> SchemaValidation {
        SchemaValidation {
            key: (Level::None, Strategy::Topic),
            value: (level, strategy),
        }
    }

    fn run(
        rules: SchemaValidation,
        values: &[Option<Vec<u8>>],
        c: Compression,
    ) -> Result<(), ReplicaError> {
        let recs: Vec<_> = values
            .iter()
            .map(|v| (Some(b"k".as_slice()), v.as_deref(), 0))
            .collect();
        let b = batch_compressed(&recs, c);
        check("t", &rules, &b, 1 << 20, Some(&Fake))
    }

    #[test]
    fn registered_ids_and_tombstones_pass_on_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Zstd,
            Compression::Lz4,
            Compression::Snappy,
        ] {
            let values = [Some(framed(1, b"ok")), None, Some(framed(1, b"ok"))];
            run(value_rules(Level::Deep, Strategy::Topic), &values, c).unwrap();
        }
    }

    #[test]
    fn bad_records_are_invalid_record_naming_each_by_index() {
        let values = [
            Some(framed(1, b"ok")),
            Some(b"plain string".to_vec()),
            Some(framed(17, b"ok")),
            Some(framed(2, b"ok")),
        ];
        let Err(ReplicaError::InvalidRecord { errors, message }) = run(
            value_rules(Level::Id, Strategy::Topic),
            &values,
            Compression::Gzip,
        ) else {
            panic!("expected InvalidRecord");
        };
        let indexes: Vec<i32> = errors.iter().map(|(i, _)| *i).collect();
        assert_eq!(indexes, [1, 2, 3]);
        assert!(
            message.starts_with("record 1: the value is not framed"),
            "{message}"
        );
        assert!(
            message.contains("record 2: schema id 17 is not registered under subject t-value"),
            "{message}"
        );
        assert!(message.contains("record 3: schema id 2 is not registered under subject t-value"));
    }

    #[test]
    fn deep_refuses_payloads_that_do_not_decode() {
        let values = [Some(framed(1, b"ok")), Some(framed(1, b"ok!"))];
        assert!(
            run(
                value_rules(Level::Id, Strategy::Topic),
                &values,
                Compression::None
            )
            .is_ok()
        );
        let Err(ReplicaError::InvalidRecord { errors, .. }) = run(
            value_rules(Level::Deep, Strategy::Topic),
            &values,
            Compression::None,
        ) else {
            panic!("expected InvalidRecord");
        };
        assert_eq!(
            errors,
            [(
                1,
                "the value does not decode with schema id 1: not ok".to_string()
            )]
        );
    }

    #[test]
    fn record_name_strategies_take_the_subject_from_the_schema() {
        let values = [Some(framed(2, b"ok"))];
        for s in [Strategy::Record, Strategy::TopicRecord] {
            assert!(
                run(value_rules(Level::Id, s), &values, Compression::None).is_ok(),
                "{s:?}"
            );
        }
        let values = [Some(framed(9, b"ok"))];
        assert!(
            run(
                value_rules(Level::Id, Strategy::Record),
                &values,
                Compression::None
            )
            .is_err()
        );
    }

    #[test]
    fn corrupt_compressed_records_are_corrupt_message() {
        let mut b = batch_compressed(&[(None, Some(b"x".as_slice()), 0)], Compression::Gzip);
        let len = b.len();
        b.truncate(len - 4);
        b[8..12].copy_from_slice(&((len - 4 - 12) as i32).to_be_bytes());
        let crc = crc32c::crc32c(&b[CRC_FROM..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let rules = value_rules(Level::Id, Strategy::Topic);
        assert!(matches!(
            check("t", &rules, &b, 1 << 20, Some(&Fake)),
            Err(ReplicaError::CorruptRecords)
        ));
    }

    #[test]
    fn without_a_registry_framed_records_are_refused_and_unvalidated_topics_pass() {
        let b = batch(&[(None, Some(&framed(1, b"ok")[..]), 0)]);
        let rules = value_rules(Level::Id, Strategy::Topic);
        assert!(matches!(
            check("t", &rules, &b, 1 << 20, None),
            Err(ReplicaError::InvalidRecord { .. })
        ));
        assert!(check("t", &SchemaValidation::default(), &b, 1 << 20, None).is_ok());
    }
}
