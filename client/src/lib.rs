//! strand-client: a pure-Rust Kafka client with Confluent-framed Avro serde.
//!
//! How data flows: a typed value is serialized by [`AvroSerializer`] into the Confluent
//! frame (magic byte, schema id, Avro body), the schema id coming from the schema registry
//! through [`RegistryClient`]; the framed bytes go to the Kafka producer, which batches them
//! per partition and sends them to the partition leader. A consumer fetches the batches back
//! and [`AvroDeserializer`] turns each record into a value of the reader's type, resolving
//! schema differences with Avro's rules.
//!
//! Where to look: `registry` is the REST client of the schema registry, `avro` the framing and
//! the serializers, `error` the one error type.

mod avro;
mod error;
mod registry;

pub use avro::{
    AvroDeserializer, AvroSerializer, AvroSerializerConfig, SchemaSelection, SubjectNameStrategy,
};
pub use error::{ClientError, Result};
pub use registry::{RegisteredSchema, RegistryClient, RegistryConfig};

#[cfg(test)]
mod test_registry;
