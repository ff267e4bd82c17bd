//! The schema formats the registry serves, chosen per request by Confluent's `schemaType`
//! (absent means AVRO). Each format has a parser that validates the text and gives its
//! normalized form, its identity and the model its compatibility checker walks; this module
//! dispatches on [`Format`] to them. Avro lives in [`avro`] (checked by `compat/checker.rs`),
//! JSON Schema in [`json`] (checked by `compat/json_diff.rs`), Protocol Buffers in [`protobuf`]
//! (checked by `compat/proto_diff.rs`). A new format gets a module beside these, a
//! [`Checkable`] variant, and a place in [`Format::SERVED`].

pub(crate) mod avro;
pub(crate) mod json;
pub(crate) mod protobuf;

use std::sync::Arc;

use crate::compat::{self, Budget, Graph, Level, TooComplex};
use crate::error::RegistryError;
use crate::store::SchemaReference;

/// A schema format, as Confluent names it in `schemaType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Apache Avro, the default.
    Avro,
    /// JSON Schema (drafts 4, 6, 7, 2019-09, 2020-12).
    Json,
    /// Protocol Buffers (proto2 and proto3 `.proto` text).
    Protobuf,
}

impl Format {
    /// The formats this registry serves, as `GET /schemas/types` lists them.
    pub(crate) const SERVED: &'static [Format] = &[Format::Avro, Format::Json, Format::Protobuf];

    /// The format a request's `schemaType` names; unknown or unserved types are 42201 with
    /// Confluent's wording.
    pub(crate) fn of_request(schema_type: Option<&str>) -> Result<Format, RegistryError> {
        let format = match schema_type {
            None => return Ok(Format::Avro),
            Some(t) => match t.to_ascii_uppercase().as_str() {
                "AVRO" => Format::Avro,
                "JSON" => Format::Json,
                "PROTOBUF" => Format::Protobuf,
                _ => {
                    return Err(RegistryError::InvalidSchema(format!(
                        "Invalid schema type {t}"
                    )));
                }
            },
        };
        if !Format::SERVED.contains(&format) {
            return Err(RegistryError::InvalidSchema(format!(
                "Invalid schema type {}",
                format.as_str()
            )));
        }
        Ok(format)
    }

    /// The format of a stored schema (`schemaType` of its `_schemas` record).
    pub(crate) fn of_stored(schema_type: Option<&str>) -> Format {
        match schema_type {
            Some("JSON") => Format::Json,
            Some("PROTOBUF") => Format::Protobuf,
            _ => Format::Avro,
        }
    }

    /// Confluent's name of the format.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Format::Avro => "AVRO",
            Format::Json => "JSON",
            Format::Protobuf => "PROTOBUF",
        }
    }

    /// The `schemaType` stored and returned: Confluent leaves it out for AVRO.
    pub(crate) fn schema_type(self) -> Option<String> {
        match self {
            Format::Avro => None,
            other => Some(other.as_str().to_string()),
        }
    }
}

/// The names of the served formats, as `GET /schemas/types` answers.
pub(crate) fn served_types() -> Vec<&'static str> {
    Format::SERVED.iter().map(|f| f.as_str()).collect()
}

/// A referenced schema, as a parser needs it: the name the referencing schema uses for it
/// (an Avro full name, a JSON Schema URI) and its text.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// The reference's `name`.
    pub name: String,
    /// The referenced subject version's schema text.
    pub schema: String,
}

/// What a compatibility check walks, per format.
#[derive(Debug)]
pub(crate) enum Checkable {
    /// Avro's schema graph.
    Avro(Graph),
    /// A JSON Schema model.
    Json(json::Model),
    /// A Protobuf file's model.
    Protobuf(protobuf::Model),
}

/// A schema that parsed, with its referenced schemas resolved.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The format it parsed as.
    pub format: Format,
    /// The normalized text (`?normalize=true` stores this).
    pub normalized: String,
    /// The schema as registered plus references: equal identities get the same id.
    pub identity: String,
    /// The identity of the normalized form, for `?normalize=true`.
    pub normalized_identity: String,
    /// What compatibility checks walk.
    pub graph: Arc<Checkable>,
}

impl Parsed {
    /// The identity a registration or lookup matches on.
    pub(crate) fn identity(&self, normalize: bool) -> &str {
        if normalize {
            &self.normalized_identity
        } else {
            &self.identity
        }
    }
}

/// Parses `text` in `format`, its references resolved to `resolved` (transitively,
/// dependencies first).
pub(crate) fn parse(
    format: Format,
    text: &str,
    references: &[SchemaReference],
    resolved: &[Resolved],
) -> Result<Parsed, RegistryError> {
    match format {
        Format::Avro => avro::parse(text, references, resolved),
        Format::Json => json::parse(text, references, resolved),
        Format::Protobuf => protobuf::parse(text, references, resolved),
    }
}

/// An earlier version a new schema is checked against.
pub(crate) struct Previous<'a> {
    pub version: u32,
    pub schema_text: &'a str,
    pub graph: &'a Checkable,
}

/// Checks `new` against `previous` (newest first) under `level` with the rules of its
/// format; returns Confluent's messages, empty when compatible.
pub(crate) fn check_level(
    level: Level,
    new: &Checkable,
    previous: &[Previous<'_>],
    budget: &mut Budget,
    max_reported: usize,
) -> Result<Vec<String>, TooComplex> {
    match new {
        Checkable::Avro(new) => {
            let mut avro = Vec::with_capacity(previous.len());
            for p in previous {
                match p.graph {
                    Checkable::Avro(graph) => avro.push(compat::Previous {
                        version: p.version,
                        schema_text: p.schema_text,
                        graph,
                    }),
                    _ => return Ok(different_type(level, p)),
                }
            }
            compat::check_level(level, new, &avro, budget, max_reported)
        }
        Checkable::Json(new) => {
            let mut json = Vec::with_capacity(previous.len());
            for p in previous {
                match p.graph {
                    Checkable::Json(model) => json.push(compat::json_diff::Previous {
                        version: p.version,
                        schema_text: p.schema_text,
                        model,
                    }),
                    _ => return Ok(different_type(level, p)),
                }
            }
            compat::json_diff::check_level(level, new, &json, budget, max_reported)
        }
        Checkable::Protobuf(new) => {
            let mut proto = Vec::with_capacity(previous.len());
            for p in previous {
                match p.graph {
                    Checkable::Protobuf(model) => proto.push(compat::proto_diff::Previous {
                        version: p.version,
                        schema_text: p.schema_text,
                        model,
                    }),
                    _ => return Ok(different_type(level, p)),
                }
            }
            compat::proto_diff::check_level(level, new, &proto, budget, max_reported)
        }
    }
}

/// Confluent's answer when a subject's earlier version is of another format.
fn different_type(level: Level, old: &Previous<'_>) -> Vec<String> {
    vec![
        "Incompatible because of different schema type".to_string(),
        format!("{{oldSchemaVersion: {}}}", old.version),
        format!("{{oldSchema: '{}'}}", old.schema_text),
        format!("{{validateFields: 'false', compatibility: '{level}'}}"),
    ]
}
