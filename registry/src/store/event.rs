//! The events of the schema store and their encoding as key/value records, modelled on
//! Confluent's `_schemas` topic: the key names what the record is about (a subject version, a
//! config, a mode, a schema id) and the value is its latest state as JSON, or absent (a
//! tombstone) once it is gone. Because a later record with the same key replaces an earlier
//! one, the log may be compacted by key without changing what a replay produces.
//!
//! Records written by Confluent Schema Registry (or a backup/restore tool in its format)
//! decode too: their `SCHEMA` values carry the schema text with the version, and become a
//! schema id and a version here; `DELETE_SUBJECT` soft-deletes versions up to one; `CONTEXT`
//! notes a context; `NOOP` and `CLEAR_SUBJECT` records change nothing this registry keeps.

use serde::{Deserialize, Serialize};

use crate::context::{self, DEFAULT_CONTEXT};
use crate::store::LogRecord;

/// A reference from one schema to a named type in another subject's version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SchemaReference {
    /// The referenced type's full name as the referencing schema uses it.
    pub name: String,
    /// The subject holding the referenced schema.
    pub subject: String,
    /// The version of that subject.
    pub version: u32,
}

/// The content of a schema id in its context: what `/schemas/ids/{id}` serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SchemaContent {
    /// The context numbering this id (`.` the default one); kept in the record's key.
    #[serde(skip, default = "default_context")]
    pub context: String,
    pub id: u32,
    pub schema: String,
    #[serde(
        rename = "schemaType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub schema_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<SchemaReference>,
    /// Data-contract metadata (`tags`, `properties`, `sensitive`), kept as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Data-contract rules (`domainRules`, `migrationRules`), kept as given: clients run
    /// them, the registry only stores and serves them.
    #[serde(rename = "ruleSet", default, skip_serializing_if = "Option::is_none")]
    pub rule_set: Option<serde_json::Value>,
}

fn default_context() -> String {
    DEFAULT_CONTEXT.to_string()
}

/// One version of a subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct VersionValue {
    pub subject: String,
    pub version: u32,
    pub id: u32,
    pub deleted: bool,
}

/// A state change of the registry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Event {
    /// A global id now stands for this schema (never removed, so ids are never reused).
    SchemaId(SchemaContent),
    /// A subject version was registered, or soft-deleted (`deleted`).
    Version(VersionValue),
    /// A subject version was permanently deleted.
    VersionGone { subject: String, version: u32 },
    /// Every version of a subject up to `version` was soft-deleted (Confluent's
    /// `DELETE_SUBJECT` record; strand writes one `Version` record per version instead).
    SubjectDeleted { subject: String, version: u32 },
    /// The config of a subject (`None` = global) was set or, with neither a level nor a
    /// contract, removed.
    Config {
        subject: Option<String>,
        level: Option<String>,
        contract: Contract,
    },
    /// The mode of a subject (`None` = global) was set or removed.
    Mode {
        subject: Option<String>,
        mode: Option<String>,
    },
    /// A context other than the default one came into use (Confluent's `CONTEXT` record,
    /// written before the first schema of the context).
    Context { context: String },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "keytype")]
enum Key {
    #[serde(rename = "SCHEMA_ID")]
    SchemaId {
        id: u32,
        magic: u8,
        /// The context of the id, absent for the default one (so that ids of two contexts
        /// are two keys, which compaction keeps apart).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
    },
    #[serde(rename = "SCHEMA")]
    Schema {
        subject: String,
        version: u32,
        magic: u8,
    },
    #[serde(rename = "CONFIG")]
    Config { subject: Option<String>, magic: u8 },
    #[serde(rename = "MODE")]
    Mode { subject: Option<String>, magic: u8 },
    #[serde(rename = "DELETE_SUBJECT")]
    DeleteSubject { subject: String, magic: u8 },
    #[serde(rename = "CONTEXT")]
    Context {
        #[serde(default = "default_tenant")]
        tenant: String,
        context: String,
        magic: u8,
    },
    /// Keys of records that change nothing kept here: Confluent's leader-election marker and
    /// the note of a permanently deleted subject (its versions' tombstones do the work).
    #[serde(rename = "NOOP", alias = "CLEAR_SUBJECT")]
    Ignored,
}

/// The value of a `SCHEMA` record as either registry writes it: strand's carries the id of
/// a schema its own `SCHEMA_ID` record holds, Confluent's the schema itself.
#[derive(Deserialize)]
struct SchemaValue {
    subject: String,
    version: u32,
    id: u32,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    schema: Option<String>,
    #[serde(rename = "schemaType", default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Option<Vec<SchemaReference>>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
    #[serde(rename = "ruleSet", default)]
    rule_set: Option<serde_json::Value>,
}

/// The tenant of every context strand writes: Confluent's single-tenant default.
const DEFAULT_TENANT: &str = "default";

fn default_tenant() -> String {
    DEFAULT_TENANT.to_string()
}

/// The value of Confluent's `CONTEXT` record (its key says the same).
#[derive(Serialize)]
struct ContextValue<'a> {
    tenant: &'a str,
    context: &'a str,
}

/// The value of Confluent's `DELETE_SUBJECT` record.
#[derive(Deserialize)]
struct DeleteSubjectValue {
    subject: String,
    version: u32,
}

/// The data-contract part of a config: metadata and rules that registrations under it
/// get by default (merged under what the registration names) or by override (merged over).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Contract {
    #[serde(
        rename = "defaultMetadata",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_metadata: Option<serde_json::Value>,
    #[serde(
        rename = "overrideMetadata",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub override_metadata: Option<serde_json::Value>,
    #[serde(
        rename = "defaultRuleSet",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_rule_set: Option<serde_json::Value>,
    #[serde(
        rename = "overrideRuleSet",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub override_rule_set: Option<serde_json::Value>,
}

impl Contract {
    /// Whether the config names no metadata or rules.
    pub(crate) fn is_empty(&self) -> bool {
        self == &Contract::default()
    }
}

/// A `CONFIG` value as Confluent writes it (fields strand does not keep, such as `alias` or
/// `normalize`, are ignored when read).
#[derive(Serialize, Deserialize)]
struct ConfigValue {
    #[serde(
        rename = "compatibilityLevel",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    compatibility_level: Option<String>,
    #[serde(flatten)]
    contract: Contract,
}

#[derive(Serialize, Deserialize)]
struct ModeValue {
    mode: String,
}

/// A record that is not a registry event.
#[derive(Debug, thiserror::Error)]
#[error("undecodable schema store record: {0}")]
pub struct DecodeError(String);

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// A `SCHEMA` value as Confluent writes it: the version with its schema, so that Confluent's
/// registry (or a tool reading `_schemas`) finds everything in the one record.
#[derive(Serialize)]
struct ConfluentSchemaValue<'a> {
    subject: &'a str,
    version: u32,
    id: u32,
    #[serde(rename = "schemaType", skip_serializing_if = "Option::is_none")]
    schema_type: Option<&'a str>,
    #[serde(skip_serializing_if = "<[SchemaReference]>::is_empty")]
    references: &'a [SchemaReference],
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a serde_json::Value>,
    #[serde(rename = "ruleSet", skip_serializing_if = "Option::is_none")]
    rule_set: Option<&'a serde_json::Value>,
    schema: &'a str,
    deleted: bool,
}

impl Event {
    /// Encodes the event as a key/value record.
    #[cfg(test)]
    pub(crate) fn encode(&self) -> LogRecord {
        self.encode_with(None)
    }

    /// Encodes the event as a key/value record; a version given the content of its schema
    /// id is written in Confluent's shape, schema text included.
    pub(crate) fn encode_with(&self, content: Option<&SchemaContent>) -> LogRecord {
        let (key, value) = match self {
            Event::SchemaId(content) => (
                Key::SchemaId {
                    id: content.id,
                    magic: 0,
                    context: Some(content.context.clone()).filter(|c| c != DEFAULT_CONTEXT),
                },
                Some(json(content)),
            ),
            Event::Version(v) => (
                Key::Schema {
                    subject: v.subject.clone(),
                    version: v.version,
                    magic: 1,
                },
                Some(match content {
                    Some(content) => json(&ConfluentSchemaValue {
                        subject: &v.subject,
                        version: v.version,
                        id: v.id,
                        schema_type: content.schema_type.as_deref(),
                        references: &content.references,
                        metadata: content.metadata.as_ref(),
                        rule_set: content.rule_set.as_ref(),
                        schema: &content.schema,
                        deleted: v.deleted,
                    }),
                    None => json(v),
                }),
            ),
            Event::VersionGone { subject, version } => (
                Key::Schema {
                    subject: subject.clone(),
                    version: *version,
                    magic: 1,
                },
                None,
            ),
            Event::SubjectDeleted { subject, version } => (
                Key::DeleteSubject {
                    subject: subject.clone(),
                    magic: 0,
                },
                Some(json(
                    &serde_json::json!({"subject": subject, "version": version}),
                )),
            ),
            Event::Config {
                subject,
                level,
                contract,
            } => (
                Key::Config {
                    subject: subject.clone(),
                    magic: 0,
                },
                (level.is_some() || !contract.is_empty()).then(|| {
                    json(&ConfigValue {
                        compatibility_level: level.clone(),
                        contract: contract.clone(),
                    })
                }),
            ),
            Event::Context { context } => (
                Key::Context {
                    tenant: default_tenant(),
                    context: context.clone(),
                    magic: 0,
                },
                Some(json(&ContextValue {
                    tenant: DEFAULT_TENANT,
                    context,
                })),
            ),
            Event::Mode { subject, mode } => (
                Key::Mode {
                    subject: subject.clone(),
                    magic: 0,
                },
                mode.as_ref().map(|m| json(&ModeValue { mode: m.clone() })),
            ),
        };
        LogRecord {
            key: json(&key),
            value,
        }
    }

    /// Decodes a record written by [`Event::encode`] or by Confluent's registry into the
    /// events it stands for (none for records that change nothing kept here).
    pub(crate) fn decode(record: &LogRecord) -> Result<Vec<Event>, DecodeError> {
        let bad = |e: serde_json::Error| DecodeError(e.to_string());
        let key: Key = serde_json::from_slice(&record.key).map_err(bad)?;
        let value = record.value.as_deref();
        Ok(match key {
            Key::SchemaId { id, context, .. } => {
                let Some(value) = value else {
                    return Err(DecodeError(format!("schema id {id} without a value")));
                };
                let mut content: SchemaContent = serde_json::from_slice(value).map_err(bad)?;
                content.context = context.unwrap_or_else(default_context);
                vec![Event::SchemaId(content)]
            }
            Key::Schema {
                subject, version, ..
            } => match value {
                Some(value) => {
                    let v: SchemaValue = serde_json::from_slice(value).map_err(bad)?;
                    let mut events = Vec::with_capacity(2);
                    if let Some(schema) = v.schema {
                        events.push(Event::SchemaId(SchemaContent {
                            context: context::context_of(&v.subject).to_string(),
                            id: v.id,
                            schema,
                            // Confluent names Avro explicitly at times; strand leaves it out,
                            // as Confluent's answers do.
                            schema_type: v.schema_type.filter(|t| t != "AVRO"),
                            references: v.references.unwrap_or_default(),
                            metadata: v.metadata.filter(|m| !m.is_null()),
                            rule_set: v.rule_set.filter(|r| !r.is_null()),
                        }));
                    }
                    events.push(Event::Version(VersionValue {
                        subject: v.subject,
                        version: v.version,
                        id: v.id,
                        deleted: v.deleted,
                    }));
                    events
                }
                None => vec![Event::VersionGone { subject, version }],
            },
            Key::DeleteSubject { subject, .. } => match value {
                Some(value) => {
                    let v: DeleteSubjectValue = serde_json::from_slice(value).map_err(bad)?;
                    vec![Event::SubjectDeleted {
                        subject: v.subject,
                        version: v.version,
                    }]
                }
                None => {
                    tracing::debug!(%subject, "tombstone of a DELETE_SUBJECT record");
                    Vec::new()
                }
            },
            Key::Config { subject, .. } => {
                let (level, contract) = match value {
                    Some(v) => {
                        let v: ConfigValue = serde_json::from_slice(v).map_err(bad)?;
                        (v.compatibility_level, v.contract)
                    }
                    None => (None, Contract::default()),
                };
                vec![Event::Config {
                    subject,
                    level,
                    contract,
                }]
            }
            Key::Mode { subject, .. } => vec![Event::Mode {
                subject,
                mode: match value {
                    Some(v) => Some(serde_json::from_slice::<ModeValue>(v).map_err(bad)?.mode),
                    None => None,
                },
            }],
            Key::Context {
                tenant, context, ..
            } => {
                if tenant != DEFAULT_TENANT {
                    tracing::debug!(%tenant, %context, "a context of another tenant");
                    return Ok(Vec::new());
                }
                vec![Event::Context { context }]
            }
            Key::Ignored => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_survives_encode_decode() {
        let events = [
            Event::SchemaId(SchemaContent {
                context: ".ctx".into(),
                id: 7,
                schema: "\"int\"".into(),
                schema_type: None,
                references: vec![SchemaReference {
                    name: "a.B".into(),
                    subject: "b".into(),
                    version: 2,
                }],
                metadata: None,
                rule_set: None,
            }),
            Event::Version(VersionValue {
                subject: "s/ü%".into(),
                version: 3,
                id: 7,
                deleted: true,
            }),
            Event::VersionGone {
                subject: "s".into(),
                version: 3,
            },
            Event::SubjectDeleted {
                subject: "s".into(),
                version: 4,
            },
            Event::Config {
                subject: None,
                level: Some("FULL".into()),
                contract: Contract::default(),
            },
            Event::Config {
                subject: Some("s".into()),
                level: None,
                contract: Contract::default(),
            },
            Event::Config {
                subject: Some(":.ctx:".into()),
                level: None,
                contract: Contract {
                    override_metadata: Some(serde_json::json!({"properties": {"owner": "x"}})),
                    ..Contract::default()
                },
            },
            Event::Mode {
                subject: Some("s".into()),
                mode: Some("READONLY".into()),
            },
            Event::Context {
                context: ".ctx".into(),
            },
        ];
        for event in events {
            assert_eq!(Event::decode(&event.encode()).unwrap(), vec![event]);
        }
    }

    #[test]
    fn a_version_written_with_its_schema_has_confluents_shape_and_decodes_back() {
        let content = SchemaContent {
            context: ".ctx".into(),
            id: 3,
            schema: "syntax = \"proto3\";".into(),
            schema_type: Some("PROTOBUF".into()),
            references: vec![],
            metadata: None,
            rule_set: None,
        };
        let version = VersionValue {
            subject: ":.ctx:s".into(),
            version: 2,
            id: 3,
            deleted: false,
        };
        let record = Event::Version(version.clone()).encode_with(Some(&content));
        let value: serde_json::Value =
            serde_json::from_slice(record.value.as_deref().unwrap()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"subject": ":.ctx:s", "version": 2, "id": 3,
                "schemaType": "PROTOBUF", "schema": "syntax = \"proto3\";", "deleted": false})
        );
        assert_eq!(
            Event::decode(&record).unwrap(),
            vec![Event::SchemaId(content), Event::Version(version)]
        );
    }

    #[test]
    fn same_subject_version_has_same_key_for_compaction() {
        let live = Event::Version(VersionValue {
            subject: "s".into(),
            version: 1,
            id: 1,
            deleted: false,
        });
        let gone = Event::VersionGone {
            subject: "s".into(),
            version: 1,
        };
        assert_eq!(live.encode().key, gone.encode().key);
        assert!(gone.encode().value.is_none());
    }

    fn record(key: &str, value: Option<&str>) -> LogRecord {
        LogRecord {
            key: key.as_bytes().to_vec(),
            value: value.map(|v| v.as_bytes().to_vec()),
        }
    }

    #[test]
    fn confluent_schema_record_is_a_schema_id_and_a_version() {
        let events = Event::decode(&record(
            r#"{"keytype":"SCHEMA","subject":"orders-value","version":2,"magic":1}"#,
            Some(
                r#"{"subject":"orders-value","version":2,"id":41,"schema":"\"string\"","deleted":false,"schemaType":"AVRO"}"#,
            ),
        ))
        .unwrap();
        assert_eq!(
            events,
            vec![
                Event::SchemaId(SchemaContent {
                    context: ".".into(),
                    id: 41,
                    schema: "\"string\"".into(),
                    schema_type: None,
                    references: vec![],
                    metadata: None,
                    rule_set: None,
                }),
                Event::Version(VersionValue {
                    subject: "orders-value".into(),
                    version: 2,
                    id: 41,
                    deleted: false,
                }),
            ]
        );
    }

    #[test]
    fn confluent_bookkeeping_records_change_nothing_and_delete_subject_soft_deletes() {
        for key in [
            r#"{"keytype":"NOOP","magic":0}"#,
            r#"{"keytype":"CLEAR_SUBJECT","subject":"s","magic":0}"#,
        ] {
            assert_eq!(Event::decode(&record(key, Some("{}"))).unwrap(), vec![]);
        }
        assert_eq!(
            Event::decode(&record(
                r#"{"keytype":"CONTEXT","tenant":"default","context":".ctx","magic":0}"#,
                Some(r#"{"tenant":"default","context":".ctx"}"#),
            ))
            .unwrap(),
            vec![Event::Context {
                context: ".ctx".into()
            }]
        );
        assert_eq!(
            Event::decode(&record(
                r#"{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}"#,
                Some(r#"{"subject":"s","version":3}"#),
            ))
            .unwrap(),
            vec![Event::SubjectDeleted {
                subject: "s".into(),
                version: 3
            }]
        );
        assert!(Event::decode(&record(r#"{"keytype":"WHAT"}"#, Some("{}"))).is_err());
    }
}
