//! strand-client: a pure-Rust Kafka client with Confluent-framed Avro serde, for `strand
//! serve` or any Kafka-compatible broker with a Confluent-compatible schema registry.
//!
//! How data flows: a typed value is serialized by [`AvroSerializer`] into the Confluent
//! frame (magic byte 0, 4-byte big-endian schema id, Avro body), the schema id coming from
//! the schema registry through [`RegistryClient`]; [`Producer`] hands the bytes to the
//! [`RawProducer`], which batches them per partition and sends them to the partition leader.
//! [`Consumer`] fetches batches back through the [`RawConsumer`] and [`AvroDeserializer`]
//! turns each record into the reader's type, resolving schema differences with Avro's rules.
//! [`AdminClient`] creates and inspects topics and groups. For JSON Schema subjects,
//! [`JsonSerializer`] validates a value against its schema and frames its JSON text the same
//! way, and [`JsonDeserializer`] reads it back. For Protobuf subjects, [`ProtobufSerializer`]
//! frames `prost` (or `prost-reflect` dynamic) messages with Confluent's message indexes and
//! [`ProtobufDeserializer`] decodes them.
//!
//! Where to look: `registry` is the REST client of the schema registry, `avro` the framing
//! and serializers, `json` the JSON Schema
//! serializers, `protobuf` the Protobuf ones, `typed` the typed producer and consumer; under `kafka/`, `connection`
//! frames and pipelines requests to one broker, `cluster` keeps metadata and connections,
//! `producer`, `consumer`, `group` (membership), `assignor` and `admin` do what they say, and
//! `partitioner` is Java's murmur2 partitioner. `error` holds the one error type.
//!
//! # Quickstart
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use apache_avro::AvroSchema;
//! use serde::{Deserialize, Serialize};
//! use strand_client::{
//!     Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, RegistryClient,
//!     RegistryConfig,
//! };
//!
//! #[derive(Debug, Serialize, Deserialize, AvroSchema)]
//! struct Order {
//!     id: String,
//!     amount_cents: i64,
//! }
//!
//! # async fn run() -> strand_client::Result<()> {
//! let registry = RegistryClient::new(RegistryConfig::new("http://127.0.0.1:8081"))?;
//!
//! let producer: Producer<String, Order> =
//!     Producer::new(ProducerConfig::new("127.0.0.1:9092"), registry.clone()).await?;
//! let order = Order { id: "o-1".into(), amount_cents: 1250 };
//! let delivered = producer.send("orders", Some(&order.id), &order).await?.await?;
//! println!("written to partition {} at offset {}", delivered.partition, delivered.offset);
//! producer.close().await?;
//!
//! let mut config = ConsumerConfig::new("127.0.0.1:9092", Some("order-readers"));
//! config.auto_offset_reset = OffsetReset::Earliest;
//! let mut consumer: Consumer<String, Order> = Consumer::new(config, registry).await?;
//! consumer.subscribe(&["orders"])?;
//! for record in consumer.poll(Duration::from_secs(1)).await? {
//!     println!("{:?} => {:?}", record.key, record.value);
//! }
//! consumer.close().await?;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod avro;
mod config;
mod error;
mod json;
mod kafka;
mod protobuf;
mod registry;
mod typed;

pub use avro::{
    AvroDeserializer, AvroSerializer, AvroSerializerConfig, SchemaSelection, SubjectNameStrategy,
};
pub use config::{
    Acks, Assignor, ClientConfig, Compression, ConsumerConfig, OffsetReset, ProducerConfig,
};
pub use error::{ClientError, Result};
pub use json::{JsonDeserializer, JsonSerializer, JsonSerializerConfig};
pub use kafka::admin::{
    AdminClient, GroupDescription, GroupMember, NewTopic, PartitionLag, PartitionOffsets,
    TopicDescription,
};
pub use kafka::consumer::{ConsumerRecord, RawConsumer, RebalanceEvent, TopicPartition};
pub use kafka::producer::{DeliveryFuture, ProducerRecord, RawProducer, RecordMetadata};
pub use protobuf::{
    ProtobufDeserializer, ProtobufSerializer, ProtobufSerializerConfig, compile_schema,
    message_indexes, split_protobuf_frame, write_message_indexes,
};
pub use registry::{
    Compatibility, RegisteredSchema, RegistryClient, RegistryConfig, SchemaById, SchemaReference,
};
pub use typed::{Consumer, Producer};

#[cfg(test)]
mod test_registry;
