//! JSON values framed the Confluent way for JSON Schema subjects: byte 0 is the magic byte
//! `0`, bytes 1–4 the schema id (big-endian), then the value's JSON text (UTF-8), as
//! Confluent's `KafkaJsonSchemaSerializer` writes it. [`JsonSerializer`] validates each value
//! against its schema before framing it (a value that does not fit never reaches Kafka),
//! registering the schema with `schemaType: JSON` under `<topic>-value` (or `-key`);
//! [`JsonDeserializer`] reads the id, fetches that schema (cached), validates and decodes.
//! Schemas with `$ref`s to other subjects are not resolved here: such schemas are validated
//! by the registry, not by this client.

use std::sync::Arc;

use dashmap::DashMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::avro::{MAGIC_BYTE, split_frame};
use crate::error::{ClientError, Result};
use crate::registry::RegistryClient;

/// How a [`JsonSerializer`] finds its subject and schema id.
#[derive(Debug, Clone)]
pub struct JsonSerializerConfig {
    /// Serialize keys (`<topic>-key`) rather than values (`<topic>-value`).
    pub is_key: bool,
    /// Register the schema when missing (`true`), or only look its id up.
    pub auto_register: bool,
}

impl Default for JsonSerializerConfig {
    fn default() -> Self {
        JsonSerializerConfig {
            is_key: false,
            auto_register: true,
        }
    }
}

fn invalid(context: impl Into<String>, message: impl std::fmt::Display) -> ClientError {
    ClientError::JsonSchema {
        context: context.into(),
        message: message.to_string(),
    }
}

/// Compiles a JSON Schema for validating values (offline: no `$ref` is fetched).
fn compile(schema: &Value, context: &str) -> Result<jsonschema::Validator> {
    let mut options = jsonschema::options().offline();
    if schema.get("$schema").is_none() {
        // Confluent's default draft.
        options = options.with_draft(jsonschema::Draft::Draft7);
    }
    options.build(schema).map_err(|e| invalid(context, e))
}

/// Every validation error of `value`, joined, or `None` when it is valid.
fn validation_errors(validator: &jsonschema::Validator, value: &Value) -> Option<String> {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// Serializes values as Confluent-framed JSON, validated against a JSON Schema.
pub struct JsonSerializer {
    registry: RegistryClient,
    schema_text: String,
    validator: jsonschema::Validator,
    config: JsonSerializerConfig,
    ids: DashMap<String, u32>,
}

impl std::fmt::Debug for JsonSerializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSerializer")
            .field("schema", &self.schema_text)
            .field("config", &self.config)
            .finish()
    }
}

impl JsonSerializer {
    /// A serializer for `schema` (JSON Schema text); fails if it is not a valid schema.
    pub fn new(
        registry: RegistryClient,
        schema: &str,
        config: JsonSerializerConfig,
    ) -> Result<Self> {
        let value: Value =
            serde_json::from_str(schema).map_err(|e| invalid("parsing the schema", e))?;
        let validator = compile(&value, "compiling the schema")?;
        Ok(JsonSerializer {
            registry,
            schema_text: schema.to_string(),
            validator,
            config,
            ids: DashMap::new(),
        })
    }

    /// The schema id for `topic`, registering (or looking up) the schema on first use.
    pub async fn schema_id(&self, topic: &str) -> Result<u32> {
        if let Some(id) = self.ids.get(topic) {
            return Ok(*id);
        }
        let subject = format!(
            "{topic}-{}",
            if self.config.is_key { "key" } else { "value" }
        );
        let id = if self.config.auto_register {
            self.registry
                .register_typed(&subject, &self.schema_text, Some("JSON"))
                .await?
        } else {
            self.registry
                .lookup_typed(&subject, &self.schema_text, Some("JSON"))
                .await?
                .id
        };
        self.ids.insert(topic.to_string(), id);
        Ok(id)
    }

    /// Validates `value` and frames it for `topic`.
    pub async fn serialize<T: Serialize>(&self, topic: &str, value: &T) -> Result<Vec<u8>> {
        let value = serde_json::to_value(value).map_err(|e| invalid("converting to JSON", e))?;
        self.serialize_value(topic, &value).await
    }

    /// Validates a JSON value and frames it for `topic`.
    pub async fn serialize_value(&self, topic: &str, value: &Value) -> Result<Vec<u8>> {
        if let Some(errors) = validation_errors(&self.validator, value) {
            return Err(invalid(
                format!("value for topic {topic} does not match the schema"),
                errors,
            ));
        }
        let id = self.schema_id(topic).await?;
        let mut out = vec![MAGIC_BYTE];
        out.extend_from_slice(&id.to_be_bytes());
        serde_json::to_writer(&mut out, value).map_err(|e| invalid("writing JSON", e))?;
        Ok(out)
    }
}

/// Deserializes Confluent-framed JSON, validating each value against its writer's schema.
pub struct JsonDeserializer {
    registry: RegistryClient,
    validate: bool,
    validators: DashMap<u32, Arc<jsonschema::Validator>>,
}

impl std::fmt::Debug for JsonDeserializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonDeserializer")
            .field("validate", &self.validate)
            .finish()
    }
}

impl JsonDeserializer {
    /// A deserializer that validates every value against the schema its id names.
    pub fn new(registry: RegistryClient) -> Self {
        JsonDeserializer {
            registry,
            validate: true,
            validators: DashMap::new(),
        }
    }

    /// A deserializer that trusts the framing and does not validate.
    pub fn without_validation(registry: RegistryClient) -> Self {
        JsonDeserializer {
            validate: false,
            ..JsonDeserializer::new(registry)
        }
    }

    /// Decodes a framed record into `T`.
    pub async fn deserialize<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        let (id, value) = self.deserialize_value(bytes).await?;
        serde_json::from_value(value).map_err(|e| invalid(format!("record with schema id {id}"), e))
    }

    /// Decodes a framed record into a JSON value, returning the writer's schema id.
    pub async fn deserialize_value(&self, bytes: &[u8]) -> Result<(u32, Value)> {
        let (id, body) = split_frame(bytes)?;
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("record with schema id {id} is not JSON"), e))?;
        if self.validate {
            let validator = self.validator(id).await?;
            if let Some(errors) = validation_errors(&validator, &value) {
                return Err(invalid(
                    format!("record does not match schema id {id}"),
                    errors,
                ));
            }
        }
        Ok((id, value))
    }

    async fn validator(&self, id: u32) -> Result<Arc<jsonschema::Validator>> {
        if let Some(v) = self.validators.get(&id) {
            return Ok(v.clone());
        }
        let (text, schema_type) = self.registry.schema_with_type_by_id(id).await?;
        if schema_type.as_deref() != Some("JSON") {
            return Err(invalid(
                format!("schema id {id}"),
                format!(
                    "is a {} schema, not JSON",
                    schema_type.as_deref().unwrap_or("AVRO")
                ),
            ));
        }
        let schema: Value = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("parsing schema id {id}"), e))?;
        let validator = Arc::new(compile(&schema, &format!("compiling schema id {id}"))?);
        self.validators.insert(id, validator.clone());
        Ok(validator)
    }
}
