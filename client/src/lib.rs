//! strand-client: a pure-Rust Kafka client with Confluent-framed Avro serde.
//!
//! Not built yet: see the Rust client issue.
