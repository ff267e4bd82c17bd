//! strand-registry: the Confluent Schema Registry REST API, versioning Avro, JSON Schema
//! and Protobuf schemas under subjects and enforcing their compatibility.
//!
//! A *subject* (usually `<topic>-value` or `<topic>-key`) holds numbered *versions*; each
//! version points at a schema with a global *schema id*, the number a framed Kafka record
//! carries. Data flows like this: an HTTP request reaches a route in [`api`](crate::api)
//! (axum, Confluent's shapes and error codes), which calls a [`Registry`] operation; a change
//! becomes events appended durably to a [`SchemaLog`] (the broker's `_schemas` topic in
//! `strand serve`, [`MemoryLog`] in tests) and then applied to the state in `store/`, which
//! a restart rebuilds by replaying the log. New schemas are checked against earlier versions
//! by their format's rules in `compat/` (Avro's reader/writer resolution, Confluent's JSON
//! Schema and Protobuf diffs), per the subject's [`Level`].
//!
//! Open `api/` for routes, `registry.rs` for the operations, `compat/` for compatibility,
//! `store/` for events and replay, `format/` for the schema formats (parsing, normalized
//! form and identity per `schemaType`).

#![warn(missing_docs)]

mod api;
mod compat;
mod context;
mod error;
mod format;
mod mode;
mod payload;
mod registry;
mod resolved;
mod store;

pub use api::router;
pub use compat::Level;
pub use error::RegistryError;
pub use mode::Mode;
pub use payload::PayloadSchema;
pub use registry::{
    ConfigUpdate, LookupFilter, Options, Registry, SchemaRequest, SubjectVersion, VersionSpec,
};
pub use store::{LogRead, LogRecord, MemoryLog, SchemaLog, SchemaReference, StoreError};

/// Checks a reader schema against a writer schema with Avro's resolution rules; returns each
/// incompatibility as `(type, location, message)`, empty when the reader can read the
/// writer's data. For tools and the differential test against the Avro reference checker.
pub fn check_reader_writer(
    reader: &serde_json::Value,
    writer: &serde_json::Value,
) -> Result<Vec<(String, String, String)>, String> {
    let reader = compat::Graph::parse(reader, &[]).map_err(|e| e.to_string())?;
    let writer = compat::Graph::parse(writer, &[]).map_err(|e| e.to_string())?;
    let unbounded = &mut compat::Budget::unlimited();
    let report = compat::checker::check(&reader, &writer, unbounded, usize::MAX)
        .map_err(|e| e.to_string())?;
    Ok(report
        .incompatibilities
        .into_iter()
        .map(|i| (i.kind.name().to_string(), i.location, i.message))
        .collect())
}
