//! strand-registry: the Confluent Schema Registry REST API, versioning Avro schemas.
//!
//! Not built yet: see the schema registry issue.
