//! Avro values framed the Confluent way: byte 0 is the magic byte `0`, bytes 1–4 the schema
//! id (big-endian), then the Avro binary encoding of the value.
//!
//! [`AvroSerializer`] picks the writer schema's id for a topic — by registering the
//! schema (`auto_register`), by taking the subject's latest version, or from a fixed id — and
//! caches it per subject. [`AvroDeserializer`] fetches the writer schema by the id in the
//! frame (cached) and, given a reader schema, resolves the data into it with Avro's
//! schema-resolution rules, so a consumer built against an older or newer schema still
//! decodes what an evolved producer wrote.

use std::io::Cursor;
use std::sync::{Arc, OnceLock};

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::schema::ResolvedSchema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{AvroSchema, Schema};
use dashmap::DashMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ClientError, Result};

mod binary;
use crate::registry::RegistryClient;

/// The first byte of every Confluent-framed record.
pub(crate) const MAGIC_BYTE: u8 = 0;

/// How the subject a schema is registered under is derived from the topic and schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubjectNameStrategy {
    /// `<topic>-value` or `<topic>-key` (Confluent's default).
    #[default]
    TopicName,
    /// The record's full name, e.g. `com.example.Order`.
    RecordName,
    /// `<topic>-<record full name>`.
    TopicRecordName,
}

impl SubjectNameStrategy {
    /// The subject for `schema` written to `topic`, as key or value.
    pub fn subject(&self, topic: &str, is_key: bool, schema: &Schema) -> Result<String> {
        let record_name = || {
            schema.name().map(|n| n.fullname(None)).ok_or_else(|| {
                ClientError::Config(format!(
                    "{self:?} needs a named schema (record, enum or fixed), got {}",
                    schema.canonical_form()
                ))
            })
        };
        Ok(match self {
            SubjectNameStrategy::TopicName => {
                format!("{topic}-{}", if is_key { "key" } else { "value" })
            }
            SubjectNameStrategy::RecordName => record_name()?,
            SubjectNameStrategy::TopicRecordName => format!("{topic}-{}", record_name()?),
        })
    }
}

/// Which schema, and so which schema id, the serializer writes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaSelection {
    /// Register the serializer's schema under the subject (a no-op if already there).
    #[default]
    AutoRegister,
    /// Write with the latest version registered under the subject.
    UseLatestVersion,
    /// Write with the schema registered with this id.
    SchemaId(u32),
}

/// Settings of an [`AvroSerializer`].
#[derive(Debug, Clone, Default)]
pub struct AvroSerializerConfig {
    /// How subjects are named.
    pub subject_name_strategy: SubjectNameStrategy,
    /// Which schema to write with.
    pub schema_selection: SchemaSelection,
    /// Whether this serializer writes record keys (subject suffix `-key`) or values.
    pub is_key: bool,
}

struct WriterSchema {
    id: u32,
    schema: &'static Schema,
    resolved: ResolvedSchema<'static>,
}

/// Writer schemas interned for the life of the process: apache-avro's serializer borrows
/// resolved names from the schema, and interning bounds the memory by the number of distinct
/// schemas rather than by the number of serializers.
fn intern(schema: Schema) -> &'static Schema {
    static INTERNED: OnceLock<DashMap<String, &'static Schema>> = OnceLock::new();
    let interned = INTERNED.get_or_init(DashMap::new);
    *interned
        .entry(schema_json(&schema))
        .or_insert_with(|| Box::leak(Box::new(schema)))
}

/// Serializes values into Confluent-framed Avro, registering or looking up schema ids.
pub struct AvroSerializer {
    registry: RegistryClient,
    config: AvroSerializerConfig,
    schema: Schema,
    schema_json: String,
    /// Writer schema by subject, and by topic so the hot path skips naming the subject.
    writers: DashMap<String, Arc<WriterSchema>>,
    by_topic: DashMap<String, Arc<WriterSchema>>,
}

impl std::fmt::Debug for AvroSerializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroSerializer")
            .field("config", &self.config)
            .field("schema", &self.schema_json)
            .finish()
    }
}

impl AvroSerializer {
    /// A serializer writing with `schema` (used as is unless the config selects another).
    pub fn new(registry: RegistryClient, schema: Schema, config: AvroSerializerConfig) -> Self {
        let schema_json = schema_json(&schema);
        AvroSerializer {
            registry,
            config,
            schema,
            schema_json,
            writers: DashMap::new(),
            by_topic: DashMap::new(),
        }
    }

    /// A serializer for the schema derived from `T`.
    pub fn for_type<T: AvroSchema>(registry: RegistryClient, config: AvroSerializerConfig) -> Self {
        Self::new(registry, T::get_schema(), config)
    }

    /// The serializer's own schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The schema id records for `topic` are framed with, asking the registry on first use.
    pub async fn schema_id(&self, topic: &str) -> Result<u32> {
        Ok(self.writer(topic).await?.id)
    }

    /// Serializes `value` for `topic` into a new framed buffer.
    pub async fn serialize<T: Serialize>(&self, topic: &str, value: &T) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(64);
        self.serialize_into(topic, value, &mut out).await?;
        Ok(out)
    }

    /// Serializes `value` for `topic`, appending the framed bytes to `out`.
    pub async fn serialize_into<T: Serialize>(
        &self,
        topic: &str,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let writer = self.writer(topic).await?;
        let start = out.len();
        out.push(MAGIC_BYTE);
        out.extend_from_slice(&writer.id.to_be_bytes());
        let body = out.len();
        if binary::encode(value, writer.schema, writer.resolved.get_names(), out).is_ok() {
            return Ok(());
        }
        out.truncate(body);
        apache_avro::write_avro_datum_ref(writer.schema, writer.resolved.get_names(), value, out)
            .map_err(|e| {
            out.truncate(start);
            ClientError::avro(
                format!(
                    "value does not fit schema id {} for topic {topic}",
                    writer.id
                ),
                e,
            )
        })?;
        Ok(())
    }

    /// Serializes a generic Avro [`Value`] for `topic`, validating it against the schema.
    pub async fn serialize_value(&self, topic: &str, value: &Value) -> Result<Vec<u8>> {
        let writer = self.writer(topic).await?;
        let mut out = vec![MAGIC_BYTE];
        out.extend_from_slice(&writer.id.to_be_bytes());
        GenericDatumWriter::builder(writer.schema)
            .build()
            .and_then(|w| w.write_value_ref(&mut out, value))
            .map_err(|e| {
                ClientError::avro(
                    format!(
                        "value does not fit schema id {} for topic {topic}",
                        writer.id
                    ),
                    e,
                )
            })?;
        Ok(out)
    }

    async fn writer(&self, topic: &str) -> Result<Arc<WriterSchema>> {
        if let Some(found) = self.by_topic.get(topic) {
            return Ok(found.clone());
        }
        let subject =
            self.config
                .subject_name_strategy
                .subject(topic, self.config.is_key, &self.schema)?;
        if let Some(found) = self.writers.get(&subject) {
            self.by_topic.insert(topic.to_string(), found.clone());
            return Ok(found.clone());
        }
        let (id, schema) = match self.config.schema_selection {
            SchemaSelection::AutoRegister => {
                let id = self.registry.register(&subject, &self.schema_json).await?;
                (id, self.schema.clone())
            }
            SchemaSelection::UseLatestVersion => {
                let latest = self.registry.latest_version(&subject).await?;
                (latest.id, parse_schema(latest.id, &latest.schema)?)
            }
            SchemaSelection::SchemaId(id) => {
                let text = self.registry.schema_by_id(id).await?;
                (id, parse_schema(id, &text)?)
            }
        };
        let schema = intern(schema);
        let resolved = ResolvedSchema::new(schema)
            .map_err(|e| ClientError::avro(format!("resolving schema id {id}"), e))?;
        let writer = Arc::new(WriterSchema {
            id,
            schema,
            resolved,
        });
        self.writers.insert(subject, writer.clone());
        self.by_topic.insert(topic.to_string(), writer.clone());
        Ok(writer)
    }
}

/// Splits a Confluent frame into its schema id and Avro body.
pub(crate) fn split_frame(bytes: &[u8]) -> Result<(u32, &[u8])> {
    match bytes {
        [MAGIC_BYTE, a, b, c, d, body @ ..] => Ok((u32::from_be_bytes([*a, *b, *c, *d]), body)),
        [other, ..] if *other != MAGIC_BYTE => Err(ClientError::UnknownMagicByte(*other)),
        _ => Err(ClientError::TruncatedFrame(bytes.len())),
    }
}

struct ReaderEntry {
    writer: Schema,
    /// Writer and reader schema are the same, so no resolution step is needed.
    same_as_reader: bool,
}

/// Deserializes Confluent-framed Avro, fetching writer schemas by id (cached).
pub struct AvroDeserializer {
    registry: RegistryClient,
    reader_schema: Option<Schema>,
    writers: DashMap<u32, Arc<ReaderEntry>>,
}

impl std::fmt::Debug for AvroDeserializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroDeserializer")
            .field(
                "reader_schema",
                &self.reader_schema.as_ref().map(schema_json),
            )
            .finish()
    }
}

impl AvroDeserializer {
    /// A deserializer that returns data as written (no reader schema).
    pub fn new(registry: RegistryClient) -> Self {
        AvroDeserializer {
            registry,
            reader_schema: None,
            writers: DashMap::new(),
        }
    }

    /// A deserializer that resolves every record into `reader_schema`.
    pub fn with_reader_schema(registry: RegistryClient, reader_schema: Schema) -> Self {
        AvroDeserializer {
            registry,
            reader_schema: Some(reader_schema),
            writers: DashMap::new(),
        }
    }

    /// A deserializer that resolves records into the schema derived from `T`.
    pub fn for_type<T: AvroSchema>(registry: RegistryClient) -> Self {
        Self::with_reader_schema(registry, T::get_schema())
    }

    /// Decodes a framed record into `T` (through the reader schema, if one is set).
    pub async fn deserialize<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        let (id, body) = split_frame(bytes)?;
        let entry = self.entry(id).await?;
        if entry.same_as_reader || self.reader_schema.is_none() {
            // Straight into `T` without an intermediate `Value`; this path insists that the
            // Rust type's name equals the record's, so anything else takes the general path.
            let direct = GenericDatumReader::builder(&entry.writer)
                .build()
                .and_then(|reader| reader.read_deser(&mut Cursor::new(body)));
            if let Ok(value) = direct {
                return Ok(value);
            }
        }
        let value = self.resolve(id, &entry, body)?;
        apache_avro::from_value(&value)
            .map_err(|e| ClientError::avro(format!("record with schema id {id}"), e))
    }

    /// Decodes a framed record into a generic Avro value, returning the writer's schema id.
    pub async fn deserialize_value(&self, bytes: &[u8]) -> Result<(u32, Value)> {
        let (id, body) = split_frame(bytes)?;
        let entry = self.entry(id).await?;
        Ok((id, self.resolve(id, &entry, body)?))
    }

    fn resolve(&self, id: u32, entry: &ReaderEntry, body: &[u8]) -> Result<Value> {
        let reader = GenericDatumReader::builder(&entry.writer)
            .maybe_reader_schema(self.reader_schema.as_ref())
            .build()
            .map_err(|e| ClientError::avro(format!("reader schema for schema id {id}"), e))?;
        reader.read_value(&mut Cursor::new(body)).map_err(|e| {
            ClientError::avro(
                format!("decoding record with schema id {id} into the reader schema"),
                e,
            )
        })
    }

    async fn entry(&self, id: u32) -> Result<Arc<ReaderEntry>> {
        if let Some(entry) = self.writers.get(&id) {
            return Ok(entry.clone());
        }
        let text = self.registry.schema_by_id(id).await?;
        let writer = parse_schema(id, &text)?;
        let same_as_reader = self
            .reader_schema
            .as_ref()
            .is_some_and(|r| r.canonical_form() == writer.canonical_form());
        let entry = Arc::new(ReaderEntry {
            writer,
            same_as_reader,
        });
        self.writers.insert(id, entry.clone());
        Ok(entry)
    }
}

fn parse_schema(id: u32, text: &str) -> Result<Schema> {
    Schema::parse_str(text).map_err(|e| ClientError::avro(format!("parsing schema id {id}"), e))
}

/// The schema's full JSON, defaults and docs included (the canonical form drops defaults,
/// which schema evolution needs).
fn schema_json(schema: &Schema) -> String {
    serde_json::to_string(schema).unwrap_or_else(|_| schema.canonical_form())
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::registry::RegistryConfig;
    use crate::test_registry::TestRegistry;

    const ORDER_V1: &str = r#"{"type":"record","name":"Order","namespace":"test","fields":[
        {"name":"id","type":"string"},{"name":"amount","type":"long"}]}"#;
    const ORDER_V2: &str = r#"{"type":"record","name":"Order","namespace":"test","fields":[
        {"name":"id","type":"string"},{"name":"amount","type":"long"},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"currency","type":"string","default":"EUR"}]}"#;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct OrderV1 {
        id: String,
        amount: i64,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct OrderV2 {
        id: String,
        amount: i64,
        note: Option<String>,
        currency: String,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize, AvroSchema)]
    #[avro(namespace = "test")]
    struct Payment {
        id: String,
        cents: i64,
        settled: bool,
    }

    fn schema(text: &str) -> Schema {
        Schema::parse_str(text).unwrap()
    }

    async fn setup() -> (TestRegistry, RegistryClient) {
        let registry = TestRegistry::start().await;
        let client = RegistryClient::new(RegistryConfig::new(&registry.url)).unwrap();
        (registry, client)
    }

    #[tokio::test]
    async fn frame_is_magic_byte_then_big_endian_id_then_avro_body() {
        let (registry, client) = setup().await;
        registry.register("other-value", r#""string""#);
        let ser = AvroSerializer::new(client, schema(ORDER_V1), Default::default());
        let order = OrderV1 {
            id: "o-1".into(),
            amount: 3,
        };
        let bytes = ser.serialize("orders", &order).await.unwrap();
        // id 2: the schema registered before took id 1.
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 2]);
        // Avro binary: string = zigzag length 3 (6) + bytes, long 3 = zigzag 6.
        assert_eq!(&bytes[5..], &[6, b'o', b'-', b'1', 6]);
        assert_eq!(
            registry.state.lock().unwrap().subjects["orders-value"],
            vec![2]
        );
    }

    #[tokio::test]
    async fn serializer_asks_registry_once_per_subject() {
        let (registry, client) = setup().await;
        let ser = AvroSerializer::new(client.clone(), schema(ORDER_V1), Default::default());
        for i in 0..50 {
            let order = OrderV1 {
                id: format!("o-{i}"),
                amount: i,
            };
            ser.serialize("orders", &order).await.unwrap();
        }
        assert_eq!(registry.requests(), 1);
        let de = AvroDeserializer::with_reader_schema(client, schema(ORDER_V1));
        let bytes = ser
            .serialize(
                "orders",
                &OrderV1 {
                    id: "x".into(),
                    amount: 1,
                },
            )
            .await
            .unwrap();
        for _ in 0..10 {
            let _: OrderV1 = de.deserialize(&bytes).await.unwrap();
        }
        // Registering also cached the schema text under its id.
        assert_eq!(registry.requests(), 1);
    }

    #[tokio::test]
    async fn derived_type_round_trips() {
        let (_registry, client) = setup().await;
        let ser = AvroSerializer::for_type::<Payment>(client.clone(), Default::default());
        let de = AvroDeserializer::for_type::<Payment>(client);
        let payment = Payment {
            id: "p".into(),
            cents: -42,
            settled: true,
        };
        let bytes = ser.serialize("payments", &payment).await.unwrap();
        assert_eq!(de.deserialize::<Payment>(&bytes).await.unwrap(), payment);
    }

    #[tokio::test]
    async fn newer_reader_fills_defaults_for_data_written_by_older_schema() {
        let (_registry, client) = setup().await;
        let ser = AvroSerializer::new(client.clone(), schema(ORDER_V1), Default::default());
        let bytes = ser
            .serialize(
                "orders",
                &OrderV1 {
                    id: "a".into(),
                    amount: 7,
                },
            )
            .await
            .unwrap();
        let de = AvroDeserializer::with_reader_schema(client, schema(ORDER_V2));
        let read: OrderV2 = de.deserialize(&bytes).await.unwrap();
        assert_eq!(
            read,
            OrderV2 {
                id: "a".into(),
                amount: 7,
                note: None,
                currency: "EUR".into(),
            }
        );
    }

    #[tokio::test]
    async fn older_reader_skips_fields_added_by_newer_writer() {
        let (_registry, client) = setup().await;
        let ser = AvroSerializer::new(client.clone(), schema(ORDER_V2), Default::default());
        let bytes = ser
            .serialize(
                "orders",
                &OrderV2 {
                    id: "b".into(),
                    amount: 9,
                    note: Some("gift".into()),
                    currency: "USD".into(),
                },
            )
            .await
            .unwrap();
        let de = AvroDeserializer::with_reader_schema(client, schema(ORDER_V1));
        let read: OrderV1 = de.deserialize(&bytes).await.unwrap();
        assert_eq!(
            read,
            OrderV1 {
                id: "b".into(),
                amount: 9,
            }
        );
    }

    #[tokio::test]
    async fn wrong_magic_byte_is_a_typed_error() {
        let (_registry, client) = setup().await;
        let de = AvroDeserializer::new(client);
        let err = de.deserialize_value(b"{\"json\":1}").await.unwrap_err();
        assert!(matches!(err, ClientError::UnknownMagicByte(b'{')), "{err}");
        let err = de.deserialize_value(&[0, 0, 1]).await.unwrap_err();
        assert!(matches!(err, ClientError::TruncatedFrame(3)), "{err}");
    }

    #[tokio::test]
    async fn unknown_schema_id_is_a_typed_error() {
        let (_registry, client) = setup().await;
        let de = AvroDeserializer::new(client);
        let err = de
            .deserialize_value(&[0, 0, 0, 0, 99, 2])
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::UnknownSchemaId(99)), "{err}");
    }

    #[tokio::test]
    async fn bytes_not_matching_writer_schema_are_an_avro_error() {
        let (registry, client) = setup().await;
        let id = registry.register("orders-value", ORDER_V1) as u8;
        let de = AvroDeserializer::with_reader_schema(client, schema(ORDER_V1));
        // A string claiming 50 bytes followed by two.
        let err = de
            .deserialize::<OrderV1>(&[0, 0, 0, 0, id, 100, b'a', b'b'])
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Avro { .. }), "{err}");
    }

    #[tokio::test]
    async fn value_not_fitting_schema_is_rejected_before_sending() {
        let (_registry, client) = setup().await;
        let ser = AvroSerializer::new(client, schema(ORDER_V1), Default::default());
        let err = ser
            .serialize(
                "orders",
                &Payment {
                    id: "p".into(),
                    cents: 1,
                    settled: false,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Avro { .. }), "{err}");
        let err = ser
            .serialize_value("orders", &Value::String("not a record".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Avro { .. }), "{err}");
    }

    #[tokio::test]
    async fn subject_name_strategies_name_subjects_like_confluent() {
        let s = schema(ORDER_V1);
        let subject =
            |strategy: SubjectNameStrategy, is_key| strategy.subject("orders", is_key, &s).unwrap();
        assert_eq!(
            subject(SubjectNameStrategy::TopicName, false),
            "orders-value"
        );
        assert_eq!(subject(SubjectNameStrategy::TopicName, true), "orders-key");
        assert_eq!(
            subject(SubjectNameStrategy::RecordName, false),
            "test.Order"
        );
        assert_eq!(
            subject(SubjectNameStrategy::TopicRecordName, false),
            "orders-test.Order"
        );
        let primitive = schema(r#""string""#);
        assert!(
            SubjectNameStrategy::RecordName
                .subject("orders", false, &primitive)
                .is_err()
        );

        let (registry, client) = setup().await;
        let config = AvroSerializerConfig {
            subject_name_strategy: SubjectNameStrategy::TopicRecordName,
            ..Default::default()
        };
        let ser = AvroSerializer::new(client, s.clone(), config);
        ser.schema_id("orders").await.unwrap();
        assert!(
            registry
                .state
                .lock()
                .unwrap()
                .subjects
                .contains_key("orders-test.Order")
        );
    }

    #[tokio::test]
    async fn use_latest_version_writes_with_the_registered_schema() {
        let (registry, client) = setup().await;
        registry.register("orders-value", ORDER_V1);
        let v2 = registry.register("orders-value", ORDER_V2);
        let config = AvroSerializerConfig {
            schema_selection: SchemaSelection::UseLatestVersion,
            ..Default::default()
        };
        let ser = AvroSerializer::new(client.clone(), schema(ORDER_V2), config);
        let value = OrderV2 {
            id: "c".into(),
            amount: 1,
            note: None,
            currency: "EUR".into(),
        };
        let bytes = ser.serialize("orders", &value).await.unwrap();
        assert_eq!(split_frame(&bytes).unwrap().0, v2);

        let missing = AvroSerializer::new(client, schema(ORDER_V2), config_latest());
        let err = missing.schema_id("nothing").await.unwrap_err();
        assert!(matches!(err, ClientError::UnknownSubject(_)), "{err}");
    }

    fn config_latest() -> AvroSerializerConfig {
        AvroSerializerConfig {
            schema_selection: SchemaSelection::UseLatestVersion,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn fixed_schema_id_is_used_without_registering() {
        let (registry, client) = setup().await;
        let id = registry.register("elsewhere", ORDER_V1);
        let config = AvroSerializerConfig {
            schema_selection: SchemaSelection::SchemaId(id),
            ..Default::default()
        };
        let ser = AvroSerializer::new(client, schema(ORDER_V1), config);
        let bytes = ser
            .serialize(
                "orders",
                &OrderV1 {
                    id: "d".into(),
                    amount: 2,
                },
            )
            .await
            .unwrap();
        assert_eq!(split_frame(&bytes).unwrap().0, id);
        assert!(
            !registry
                .state
                .lock()
                .unwrap()
                .subjects
                .contains_key("orders-value")
        );
    }
}
