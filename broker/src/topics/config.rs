//! Per-topic configs: the names Kafka uses (`retention.ms`, `cleanup.policy`, …), their
//! validation, the broker-wide defaults they fall back to, and the [`LogConfig`] they
//! produce for the topic's partition logs.
//!
//! A topic stores only its *overrides* (the values set at creation or by AlterConfigs);
//! every other name reads its broker default, as Kafka's DescribeConfigs shows with the
//! source `DEFAULT_CONFIG`.

use std::collections::BTreeMap;

use super::TopicStoreError;
use crate::log::{CleanupPolicy, Codec, LogConfig, ProducePolicy, TimestampType, TopicCompression};
use crate::validation::{Level, SchemaValidation, Strategy};

/// Broker-wide defaults that a topic's configs fall back to.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicDefaults {
    /// Log settings of a topic without overrides.
    pub log: LogConfig,
    /// `message.max.bytes`: the largest record batch a producer may send.
    pub max_message_bytes: i32,
}

impl Default for TopicDefaults {
    fn default() -> Self {
        TopicDefaults {
            log: LogConfig::default(),
            max_message_bytes: 1_048_588,
        }
    }
}

/// The type of a config value, as DescribeConfigs v3+ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// How a value is checked.
#[derive(Debug, Clone, Copy)]
enum Check {
    Long(i64),
    Int(i32),
    IntRange(i32, i32),
    GzipLevel,
    Bool,
    Ratio,
    CleanupPolicy,
    OneOf(&'static [&'static str]),
    /// A subject name strategy, by short name or Confluent's Java class name.
    SubjectStrategy,
}

/// One topic config name strand understands.
#[derive(Debug)]
pub(crate) struct ConfigDef {
    pub(crate) name: &'static str,
    check: Check,
    pub(crate) doc: &'static str,
}

impl ConfigDef {
    /// The wire type of this config.
    pub(crate) fn config_type(&self) -> ConfigType {
        match self.check {
            Check::Long(_) => ConfigType::Long,
            Check::Int(_) | Check::IntRange(..) | Check::GzipLevel => ConfigType::Int,
            Check::Bool => ConfigType::Boolean,
            Check::Ratio => ConfigType::Double,
            Check::CleanupPolicy => ConfigType::List,
            Check::OneOf(_) | Check::SubjectStrategy => ConfigType::String,
        }
    }
}

/// Every topic config strand accepts, in Kafka's names; anything else is `INVALID_CONFIG`.
pub(crate) const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef {
        name: "cleanup.policy",
        check: Check::CleanupPolicy,
        doc: "delete (old segments go by retention), compact (newest record per key kept) or both",
    },
    ConfigDef {
        name: "compression.gzip.level",
        check: Check::GzipLevel,
        doc: "gzip level of batches recompressed for compression.type=gzip (1-9, -1 is 6)",
    },
    ConfigDef {
        name: "compression.lz4.level",
        check: Check::IntRange(1, 17),
        doc: "lz4 level of batches recompressed for compression.type=lz4",
    },
    ConfigDef {
        name: "compression.type",
        check: Check::OneOf(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
        doc: "producer keeps batches as sent; a codec recompresses batches that use another",
    },
    ConfigDef {
        name: "compression.zstd.level",
        check: Check::IntRange(-131_072, 22),
        doc: "zstd level of batches recompressed for compression.type=zstd",
    },
    ConfigDef {
        name: "confluent.key.schema.validation",
        check: Check::Bool,
        doc: "Confluent Server's name: true validates keys as key.schema.validation=id does",
    },
    ConfigDef {
        name: "confluent.key.subject.name.strategy",
        check: Check::SubjectStrategy,
        doc: "Confluent Server's name for key.subject.name.strategy (Java class names accepted)",
    },
    ConfigDef {
        name: "confluent.value.schema.validation",
        check: Check::Bool,
        doc: "Confluent Server's name: true validates values as value.schema.validation=id does",
    },
    ConfigDef {
        name: "confluent.value.subject.name.strategy",
        check: Check::SubjectStrategy,
        doc: "Confluent Server's name for value.subject.name.strategy (Java class names accepted)",
    },
    ConfigDef {
        name: "delete.retention.ms",
        check: Check::Long(0),
        doc: "how long compaction keeps tombstones",
    },
    ConfigDef {
        name: "flush.messages",
        check: Check::Long(1),
        doc: "fsync after this many records",
    },
    ConfigDef {
        name: "flush.ms",
        check: Check::Long(0),
        doc: "fsync data older than this",
    },
    ConfigDef {
        name: "index.interval.bytes",
        check: Check::Int(0),
        doc: "bytes of log between two offset index entries",
    },
    ConfigDef {
        name: "key.schema.validation",
        check: Check::OneOf(&["none", "id", "deep"]),
        doc: "none; id: every non-null key is framed with a schema id registered under its subject; deep: and decodes against it",
    },
    ConfigDef {
        name: "key.subject.name.strategy",
        check: Check::SubjectStrategy,
        doc: "the subject a key's schema id must be registered under: TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy",
    },
    ConfigDef {
        name: "max.compaction.lag.ms",
        check: Check::Long(1),
        doc: "accepted for compatibility",
    },
    ConfigDef {
        name: "max.message.bytes",
        check: Check::Int(0),
        doc: "largest record batch accepted",
    },
    ConfigDef {
        name: "message.timestamp.after.max.ms",
        check: Check::Long(0),
        doc: "how far ahead of the broker's clock a CreateTime timestamp may be",
    },
    ConfigDef {
        name: "message.timestamp.before.max.ms",
        check: Check::Long(0),
        doc: "how far behind the broker's clock a CreateTime timestamp may be",
    },
    ConfigDef {
        name: "message.timestamp.difference.max.ms",
        check: Check::Long(0),
        doc: "deprecated: bounds both sides, as before.max.ms and after.max.ms do",
    },
    ConfigDef {
        name: "message.timestamp.type",
        check: Check::OneOf(&["CreateTime", "LogAppendTime"]),
        doc: "CreateTime keeps the producer's timestamps, LogAppendTime stamps the broker's",
    },
    ConfigDef {
        name: "min.cleanable.dirty.ratio",
        check: Check::Ratio,
        doc: "accepted for compatibility",
    },
    ConfigDef {
        name: "min.compaction.lag.ms",
        check: Check::Long(0),
        doc: "accepted for compatibility",
    },
    ConfigDef {
        name: "min.insync.replicas",
        check: Check::Int(1),
        doc: "a single broker is always the whole in-sync replica set",
    },
    ConfigDef {
        name: "redpanda.key.schema.id.validation",
        check: Check::Bool,
        doc: "Redpanda's name: true validates keys as key.schema.validation=id does",
    },
    ConfigDef {
        name: "redpanda.key.subject.name.strategy",
        check: Check::SubjectStrategy,
        doc: "Redpanda's name for key.subject.name.strategy",
    },
    ConfigDef {
        name: "redpanda.value.schema.id.validation",
        check: Check::Bool,
        doc: "Redpanda's name: true validates values as value.schema.validation=id does",
    },
    ConfigDef {
        name: "redpanda.value.subject.name.strategy",
        check: Check::SubjectStrategy,
        doc: "Redpanda's name for value.subject.name.strategy",
    },
    ConfigDef {
        name: "retention.bytes",
        check: Check::Long(i64::MIN),
        doc: "delete oldest segments while a partition is larger; -1 is no limit",
    },
    ConfigDef {
        name: "retention.ms",
        check: Check::Long(-1),
        doc: "delete segments older than this; -1 keeps forever",
    },
    ConfigDef {
        name: "segment.bytes",
        check: Check::Int(14),
        doc: "roll to a new segment at this size",
    },
    ConfigDef {
        name: "segment.ms",
        check: Check::Long(1),
        doc: "roll to a new segment after this time",
    },
    ConfigDef {
        name: "unclean.leader.election.enable",
        check: Check::Bool,
        doc: "accepted for compatibility",
    },
    ConfigDef {
        name: "value.schema.validation",
        check: Check::OneOf(&["none", "id", "deep"]),
        doc: "none; id: every non-null value is framed with a schema id registered under its subject; deep: and decodes against it",
    },
    ConfigDef {
        name: "value.subject.name.strategy",
        check: Check::SubjectStrategy,
        doc: "the subject a value's schema id must be registered under: TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy",
    },
];

/// Looks up a topic config by name.
pub(crate) fn config_def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The default of a config name under the broker's defaults.
pub(crate) fn default_value(name: &str, defaults: &TopicDefaults) -> String {
    let log = &defaults.log;
    match name {
        "cleanup.policy" => policy_name(log.cleanup_policy).to_string(),
        "compression.gzip.level" => "-1".to_string(),
        "compression.lz4.level" => "9".to_string(),
        "compression.type" => "producer".to_string(),
        "compression.zstd.level" => "3".to_string(),
        "delete.retention.ms" => log.delete_retention_ms.to_string(),
        "flush.messages" => log.flush_messages.to_string(),
        "flush.ms" => log.flush_ms.to_string(),
        "index.interval.bytes" => log.index_interval_bytes.to_string(),
        "max.compaction.lag.ms" => i64::MAX.to_string(),
        "max.message.bytes" => defaults.max_message_bytes.to_string(),
        "message.timestamp.after.max.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.difference.max.ms" => i64::MAX.to_string(),
        "message.timestamp.type" => "CreateTime".to_string(),
        "min.cleanable.dirty.ratio" => "0.5".to_string(),
        "min.compaction.lag.ms" => "0".to_string(),
        "min.insync.replicas" => "1".to_string(),
        "retention.bytes" => log.retention_bytes.to_string(),
        "retention.ms" => log.retention_ms.to_string(),
        "segment.bytes" => log.segment_bytes.to_string(),
        "segment.ms" => log.segment_ms.to_string(),
        "unclean.leader.election.enable" => "false".to_string(),
        "key.schema.validation" | "value.schema.validation" => "none".to_string(),
        "confluent.key.schema.validation"
        | "confluent.value.schema.validation"
        | "redpanda.key.schema.id.validation"
        | "redpanda.value.schema.id.validation" => "false".to_string(),
        "confluent.key.subject.name.strategy" | "confluent.value.subject.name.strategy" => {
            "io.confluent.kafka.serializers.subject.TopicNameStrategy".to_string()
        }
        "key.subject.name.strategy"
        | "value.subject.name.strategy"
        | "redpanda.key.subject.name.strategy"
        | "redpanda.value.subject.name.strategy" => "TopicNameStrategy".to_string(),
        _ => String::new(),
    }
}

fn policy_name(policy: CleanupPolicy) -> &'static str {
    match policy {
        CleanupPolicy::Delete => "delete",
        CleanupPolicy::Compact => "compact",
        CleanupPolicy::CompactDelete => "compact,delete",
    }
}

fn parse_policy(value: &str) -> Option<CleanupPolicy> {
    let mut delete = false;
    let mut compact = false;
    for part in value.split(',').map(str::trim) {
        match part {
            "delete" => delete = true,
            "compact" => compact = true,
            _ => return None,
        }
    }
    match (compact, delete) {
        (true, true) => Some(CleanupPolicy::CompactDelete),
        (true, false) => Some(CleanupPolicy::Compact),
        (false, true) => Some(CleanupPolicy::Delete),
        (false, false) => None,
    }
}

/// Checks one name and value, returning the value normalised as it will be stored.
pub(crate) fn validate(name: &str, value: &str) -> Result<String, TopicStoreError> {
    let def = config_def(name).ok_or_else(|| {
        TopicStoreError::InvalidConfig(format!("Unknown topic config name: {name}"))
    })?;
    let invalid = |why: String| {
        TopicStoreError::InvalidConfig(format!(
            "Invalid value {value} for configuration {name}: {why}"
        ))
    };
    let v = value.trim();
    match def.check {
        Check::Long(min) => {
            let n: i64 = v
                .parse()
                .map_err(|_| invalid("Not a number of type LONG".into()))?;
            if n < min {
                return Err(invalid(format!("Value must be at least {min}")));
            }
            Ok(n.to_string())
        }
        Check::Int(min) => {
            let n: i32 = v
                .parse()
                .map_err(|_| invalid("Not a number of type INT".into()))?;
            if n < min {
                return Err(invalid(format!("Value must be at least {min}")));
            }
            Ok(n.to_string())
        }
        Check::IntRange(..) | Check::GzipLevel => {
            let (min, max) = match def.check {
                Check::IntRange(min, max) => (min, max),
                _ => (1, 9),
            };
            let n: i32 = v
                .parse()
                .map_err(|_| invalid("Not a number of type INT".into()))?;
            // gzip's -1 is zlib's default level.
            let gzip_default = matches!(def.check, Check::GzipLevel) && n == -1;
            if !gzip_default && !(min..=max).contains(&n) {
                return Err(invalid(format!("Value must be between {min} and {max}")));
            }
            Ok(n.to_string())
        }
        Check::Bool => match v.to_ascii_lowercase().as_str() {
            "true" => Ok("true".into()),
            "false" => Ok("false".into()),
            _ => Err(invalid("Expected value to be either true or false".into())),
        },
        Check::Ratio => {
            let n: f64 = v
                .parse()
                .map_err(|_| invalid("Not a number of type DOUBLE".into()))?;
            if !(0.0..=1.0).contains(&n) {
                return Err(invalid("Value must be between 0 and 1".into()));
            }
            Ok(v.to_string())
        }
        Check::CleanupPolicy => parse_policy(v)
            .map(|p| policy_name(p).to_string())
            .ok_or_else(|| invalid("String must be one of: compact, delete".into())),
        Check::SubjectStrategy => match Strategy::parse(v) {
            Some(_) => Ok(v.to_string()),
            None => Err(invalid(
                "String must be one of: TopicNameStrategy, RecordNameStrategy, TopicRecordNameStrategy \
                 (or their io.confluent.kafka.serializers.subject class names)"
                    .into(),
            )),
        },
        Check::OneOf(allowed) => {
            if allowed.contains(&v) {
                Ok(v.to_string())
            } else {
                Err(invalid(format!(
                    "strand supports only {} ({})",
                    allowed.join(", "),
                    def.doc
                )))
            }
        }
    }
}

/// The key or the value of a topic's records, as schema validation configures each.
#[derive(Debug, Clone, Copy)]
enum Side {
    Key,
    Value,
}

/// A topic's config overrides, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
}

impl TopicConfig {
    /// Validates every override; the first bad one is an `INVALID_CONFIG` error.
    pub fn from_overrides<'a>(
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<TopicConfig, TopicStoreError> {
        let mut overrides = BTreeMap::new();
        for (name, value) in entries {
            overrides.insert(name.to_string(), validate(name, value)?);
        }
        Ok(TopicConfig { overrides })
    }

    /// The overrides, by name.
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }

    /// The effective value of `name` and whether it is an override.
    pub(crate) fn value(&self, name: &str, defaults: &TopicDefaults) -> (String, bool) {
        match self.overrides.get(name) {
            Some(v) => (v.clone(), true),
            None => (default_value(name, defaults), false),
        }
    }

    /// Sets or (with `None`) removes one override, validating it.
    pub(crate) fn set(&mut self, name: &str, value: Option<&str>) -> Result<(), TopicStoreError> {
        match value {
            Some(value) => {
                let value = validate(name, value)?;
                self.overrides.insert(name.to_string(), value);
            }
            None => {
                if config_def(name).is_none() {
                    return Err(TopicStoreError::InvalidConfig(format!(
                        "Unknown topic config name: {name}"
                    )));
                }
                self.overrides.remove(name);
            }
        }
        Ok(())
    }

    /// The largest batch a producer may append to this topic.
    pub fn max_message_bytes(&self, defaults: &TopicDefaults) -> i32 {
        self.overrides
            .get("max.message.bytes")
            .and_then(|v| v.parse().ok())
            .unwrap_or(defaults.max_message_bytes)
    }

    /// What this topic asks of produced batches: size, compression and timestamps.
    pub fn produce_policy(&self, defaults: &TopicDefaults) -> ProducePolicy {
        let int = |name: &str| self.value(name, defaults).0.parse::<i32>().ok();
        let long = |name: &str| {
            let value = self.value(name, defaults).0.parse::<i64>();
            value.unwrap_or(i64::MAX)
        };
        // The deprecated difference bounds both sides when set (Kafka 3.6's reading).
        let difference = long("message.timestamp.difference.max.ms");
        let codec = match self.value("compression.type", defaults).0.as_str() {
            "uncompressed" => Some((Codec::None, 0)),
            "gzip" => Some((Codec::Gzip, int("compression.gzip.level").unwrap_or(-1))),
            "snappy" => Some((Codec::Snappy, 0)),
            "lz4" => Some((Codec::Lz4, int("compression.lz4.level").unwrap_or(9))),
            "zstd" => Some((Codec::Zstd, int("compression.zstd.level").unwrap_or(3))),
            _ => None,
        };
        ProducePolicy {
            max_message_bytes: self.max_message_bytes(defaults),
            compression: codec.map_or(TopicCompression::Producer, |(codec, level)| {
                TopicCompression::Codec { codec, level }
            }),
            timestamp_type: match self.value("message.timestamp.type", defaults).0.as_str() {
                "LogAppendTime" => TimestampType::LogAppendTime,
                _ => TimestampType::CreateTime,
            },
            before_max_ms: long("message.timestamp.before.max.ms").min(difference),
            after_max_ms: long("message.timestamp.after.max.ms").min(difference),
        }
    }

    /// What schema validation this topic asks of its records' keys and values: Kafka-style
    /// names first, then Confluent Server's, then Redpanda's (whichever is set).
    pub fn schema_validation(&self) -> SchemaValidation {
        SchemaValidation {
            key: self.side_validation(Side::Key),
            value: self.side_validation(Side::Value),
        }
    }

    fn side_validation(&self, side: Side) -> (Level, Strategy) {
        let [
            native,
            confluent,
            redpanda,
            native_strategy,
            confluent_strategy,
            redpanda_strategy,
        ] = match side {
            Side::Key => [
                "key.schema.validation",
                "confluent.key.schema.validation",
                "redpanda.key.schema.id.validation",
                "key.subject.name.strategy",
                "confluent.key.subject.name.strategy",
                "redpanda.key.subject.name.strategy",
            ],
            Side::Value => [
                "value.schema.validation",
                "confluent.value.schema.validation",
                "redpanda.value.schema.id.validation",
                "value.subject.name.strategy",
                "confluent.value.subject.name.strategy",
                "redpanda.value.subject.name.strategy",
            ],
        };
        let get = |name: &str| self.overrides.get(name).map(String::as_str);
        let level = match get(native) {
            Some("id") => Level::Id,
            Some("deep") => Level::Deep,
            Some(_) => Level::None,
            None if get(confluent) == Some("true") || get(redpanda) == Some("true") => Level::Id,
            None => Level::None,
        };
        if level == Level::None {
            return (level, Strategy::Topic);
        }
        let strategy = get(native_strategy)
            .or_else(|| get(confluent_strategy))
            .or_else(|| get(redpanda_strategy))
            .and_then(Strategy::parse)
            .unwrap_or_default();
        (level, strategy)
    }

    /// The settings of this topic's partition logs.
    pub fn log_config(&self, defaults: &TopicDefaults) -> LogConfig {
        let mut log = defaults.log.clone();
        for (name, value) in &self.overrides {
            // Values were validated when stored; a parse failure keeps the default.
            match name.as_str() {
                "cleanup.policy" => {
                    if let Some(p) = parse_policy(value) {
                        log.cleanup_policy = p;
                    }
                }
                "delete.retention.ms" => set_parsed(&mut log.delete_retention_ms, value),
                "flush.messages" => set_parsed(&mut log.flush_messages, value),
                "flush.ms" => set_parsed(&mut log.flush_ms, value),
                "index.interval.bytes" => set_parsed(&mut log.index_interval_bytes, value),
                "retention.bytes" => set_parsed(&mut log.retention_bytes, value),
                "retention.ms" => set_parsed(&mut log.retention_ms, value),
                "segment.bytes" => set_parsed(&mut log.segment_bytes, value),
                "segment.ms" => set_parsed(&mut log.segment_ms, value),
                _ => {}
            }
        }
        log
    }
}

fn set_parsed<T: std::str::FromStr>(field: &mut T, value: &str) {
    if let Ok(v) = value.parse() {
        *field = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_config_name_is_invalid_config_naming_it() {
        let err = TopicConfig::from_overrides([("retention.mss", "1")]).unwrap_err();
        assert!(
            matches!(err, TopicStoreError::InvalidConfig(ref m) if m.contains("retention.mss"))
        );
    }

    #[test]
    fn out_of_range_and_non_numeric_values_are_refused() {
        assert!(TopicConfig::from_overrides([("retention.ms", "-2")]).is_err());
        assert!(TopicConfig::from_overrides([("segment.bytes", "ten")]).is_err());
        assert!(TopicConfig::from_overrides([("cleanup.policy", "shred")]).is_err());
        assert!(TopicConfig::from_overrides([("retention.ms", "-1")]).is_ok());
    }

    #[test]
    fn overrides_reach_the_log_config_and_others_keep_defaults() {
        let defaults = TopicDefaults::default();
        let c = TopicConfig::from_overrides([
            ("cleanup.policy", "delete,compact"),
            ("retention.ms", "1000"),
            ("max.message.bytes", "2048"),
        ])
        .unwrap();
        let log = c.log_config(&defaults);
        assert_eq!(log.cleanup_policy, CleanupPolicy::CompactDelete);
        assert_eq!(log.retention_ms, 1000);
        assert_eq!(log.segment_bytes, defaults.log.segment_bytes);
        assert_eq!(c.max_message_bytes(&defaults), 2048);
        assert_eq!(
            c.value("cleanup.policy", &defaults),
            ("compact,delete".into(), true)
        );
        assert!(!c.value("segment.ms", &defaults).1);
    }

    #[test]
    fn compression_type_and_levels_are_accepted_and_reach_the_produce_policy() {
        let defaults = TopicDefaults::default();
        assert_eq!(
            TopicConfig::default().produce_policy(&defaults).compression,
            TopicCompression::Producer
        );
        for (name, codec) in [
            ("uncompressed", Codec::None),
            ("gzip", Codec::Gzip),
            ("snappy", Codec::Snappy),
            ("lz4", Codec::Lz4),
            ("zstd", Codec::Zstd),
        ] {
            let c = TopicConfig::from_overrides([("compression.type", name)]).unwrap();
            let TopicCompression::Codec { codec: got, .. } =
                c.produce_policy(&defaults).compression
            else {
                panic!("{name}: no codec");
            };
            assert_eq!(got, codec);
        }
        let c = TopicConfig::from_overrides([
            ("compression.type", "zstd"),
            ("compression.zstd.level", "-5"),
        ])
        .unwrap();
        assert_eq!(
            c.produce_policy(&defaults).compression,
            TopicCompression::Codec {
                codec: Codec::Zstd,
                level: -5
            }
        );
        assert!(TopicConfig::from_overrides([("compression.type", "none")]).is_err());
        assert!(TopicConfig::from_overrides([("compression.gzip.level", "0")]).is_err());
        assert!(TopicConfig::from_overrides([("compression.gzip.level", "-1")]).is_ok());
        assert!(TopicConfig::from_overrides([("compression.lz4.level", "18")]).is_err());
        assert!(TopicConfig::from_overrides([("compression.zstd.level", "23")]).is_err());
    }

    #[test]
    fn timestamp_configs_reach_the_produce_policy() {
        let defaults = TopicDefaults::default();
        let p = TopicConfig::default().produce_policy(&defaults);
        assert_eq!(p.timestamp_type, TimestampType::CreateTime);
        assert_eq!((p.before_max_ms, p.after_max_ms), (i64::MAX, i64::MAX));
        let c = TopicConfig::from_overrides([
            ("message.timestamp.type", "LogAppendTime"),
            ("message.timestamp.before.max.ms", "5000"),
            ("message.timestamp.difference.max.ms", "9000"),
        ])
        .unwrap();
        let p = c.produce_policy(&defaults);
        assert_eq!(p.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!((p.before_max_ms, p.after_max_ms), (5000, 9000));
        assert!(TopicConfig::from_overrides([("message.timestamp.type", "Now")]).is_err());
        assert!(TopicConfig::from_overrides([("message.timestamp.after.max.ms", "-1")]).is_err());
    }

    #[test]
    fn each_dialect_turns_schema_validation_on_and_bad_values_are_invalid_config() {
        let on = |entries: &[(&str, &str)]| {
            TopicConfig::from_overrides(entries.iter().copied())
                .unwrap()
                .schema_validation()
        };
        assert!(!on(&[]).is_on());
        assert_eq!(
            on(&[("value.schema.validation", "deep")]).value,
            (Level::Deep, Strategy::Topic)
        );
        assert_eq!(
            on(&[
                ("confluent.value.schema.validation", "true"),
                (
                    "confluent.value.subject.name.strategy",
                    "io.confluent.kafka.serializers.subject.RecordNameStrategy"
                ),
            ])
            .value,
            (Level::Id, Strategy::Record)
        );
        assert_eq!(
            on(&[
                ("redpanda.key.schema.id.validation", "true"),
                (
                    "redpanda.key.subject.name.strategy",
                    "TopicRecordNameStrategy"
                ),
            ])
            .key,
            (Level::Id, Strategy::TopicRecord)
        );
        for (name, value) in [
            ("value.schema.validation", "strict"),
            ("key.subject.name.strategy", "SubjectStrategy"),
            ("confluent.value.schema.validation", "yes"),
        ] {
            let e = TopicConfig::from_overrides([(name, value)]).unwrap_err();
            assert!(e.to_string().contains(value), "{e}");
        }
    }
}
