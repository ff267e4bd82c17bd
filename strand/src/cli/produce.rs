//! `strand produce TOPIC`: one record per stdin line through the client's `RawProducer`,
//! with an optional key before a separator, and a summary on stderr once every record's
//! delivery is known. With `--avro-schema` a JSON line becomes Confluent-framed Avro; with
//! `--json-schema` it is validated against the JSON Schema and framed as Confluent's JSON
//! Schema serializer frames it; with `--protobuf-schema` and `--message` it is read as
//! Protobuf's JSON form of that message and written Confluent-framed Protobuf.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use apache_avro::Schema;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use strand_client::{
    Acks, AvroSerializer, AvroSerializerConfig, DeliveryFuture, JsonSerializer,
    JsonSerializerConfig, ProducerConfig, ProducerRecord, ProtobufSerializer,
    ProtobufSerializerConfig, RawProducer,
};
use tokio::io::AsyncBufReadExt;

use super::json_avro::JsonSchema;
use super::{KafkaArgs, RegistryArgs, count};

/// Flags of `strand produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Topic to write to (must exist).
    topic: String,
    /// Split each line at the first SEP into key and value; a line without SEP is an error.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Write every record to this partition instead of partitioning by key.
    #[arg(long)]
    partition: Option<i32>,
    /// Durability a record needs before it counts as delivered.
    #[arg(long, value_enum, default_value_t = AcksArg::All)]
    acks: AcksArg,
    /// Read each value as JSON and write it as Confluent-framed Avro with this schema
    /// (`.avsc`), registered under `<topic>-value`; keys stay plain UTF-8.
    #[arg(long, value_name = "FILE")]
    avro_schema: Option<PathBuf>,
    /// Validate each value against this JSON Schema (`.json`) and write it Confluent-framed,
    /// the schema registered as `schemaType: JSON` under `<topic>-value`; keys stay plain.
    #[arg(long, value_name = "FILE", conflicts_with = "avro_schema")]
    json_schema: Option<PathBuf>,
    /// Read each value as Protobuf's JSON form of `--message` and write it Confluent-framed
    /// Protobuf with this schema (`.proto`), registered as `schemaType: PROTOBUF` under
    /// `<topic>-value` (its imports first, each under its import path).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["avro_schema", "json_schema"], requires = "message")]
    protobuf_schema: Option<PathBuf>,
    /// The message of `--protobuf-schema` each value is, by full name (`package.Message`).
    #[arg(long, value_name = "NAME", requires = "protobuf_schema")]
    message: Option<String>,
    /// A file the `--protobuf-schema` imports, as IMPORT_PATH=FILE (repeatable); the
    /// well-known `google/protobuf/*` types need none.
    #[arg(long, value_name = "IMPORT=FILE", requires = "protobuf_schema")]
    proto_import: Vec<String>,
}

/// How values are encoded.
enum Encoder {
    /// Stdin bytes as they are.
    Raw,
    /// JSON lines to framed Avro.
    Avro(Box<JsonToAvro>),
    /// JSON lines validated and framed for a JSON Schema subject.
    Json(JsonSerializer),
    /// JSON lines as one Protobuf message type, framed for a Protobuf subject.
    Protobuf(Box<JsonToProtobuf>),
}

impl Encoder {
    async fn encode(&self, topic: &str, number: u64, value: &[u8]) -> anyhow::Result<Bytes> {
        Ok(match self {
            Encoder::Raw => Bytes::copy_from_slice(value),
            Encoder::Avro(avro) => Bytes::from(avro.encode(topic, number, value).await?),
            Encoder::Json(json) => {
                let value: serde_json::Value = serde_json::from_slice(value)
                    .with_context(|| format!("line {number}: not JSON"))?;
                Bytes::from(
                    json.serialize_value(topic, &value)
                        .await
                        .with_context(|| format!("line {number}"))?,
                )
            }
            Encoder::Protobuf(proto) => Bytes::from(proto.encode(topic, number, value).await?),
        })
    }
}

/// Turns JSON values into Confluent-framed Protobuf for `--protobuf-schema`.
struct JsonToProtobuf {
    message: prost_reflect::MessageDescriptor,
    serializer: ProtobufSerializer,
}

impl JsonToProtobuf {
    fn new(args: &ProduceArgs, path: &std::path::Path) -> anyhow::Result<JsonToProtobuf> {
        let read = |path: &std::path::Path| {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        let text = read(path)?;
        let mut imports = Vec::new();
        for spec in &args.proto_import {
            let Some((name, file)) = spec.split_once('=') else {
                bail!("--proto-import {spec:?} is not IMPORT_PATH=FILE");
            };
            imports.push((name.to_string(), read(std::path::Path::new(file))?));
        }
        let borrowed: Vec<(&str, &str)> = imports
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let serializer = ProtobufSerializer::new(
            args.registry.client()?,
            &text,
            &borrowed,
            ProtobufSerializerConfig::default(),
        )
        .with_context(|| format!("{} is not a valid .proto file", path.display()))?;
        let name = args.message.as_deref().unwrap_or_default();
        let message = serializer.message(name)?;
        Ok(JsonToProtobuf {
            message,
            serializer,
        })
    }

    /// Line `number`'s JSON (Protobuf's JSON mapping) as a framed message.
    async fn encode(&self, topic: &str, number: u64, json: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut de = serde_json::Deserializer::from_slice(json);
        let message = prost_reflect::DynamicMessage::deserialize(self.message.clone(), &mut de)
            .with_context(|| format!("line {number}: not a {}", self.message.full_name()))?;
        de.end()
            .with_context(|| format!("line {number}: text after the JSON value"))?;
        Ok(self.serializer.serialize_dynamic(topic, &message).await?)
    }
}

/// Turns JSON values into Confluent-framed Avro for `--avro-schema`.
struct JsonToAvro {
    schema: JsonSchema,
    serializer: AvroSerializer,
}

impl JsonToAvro {
    fn new(path: &std::path::Path, registry: &RegistryArgs) -> anyhow::Result<JsonToAvro> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let schema = Schema::parse_str(&text)
            .with_context(|| format!("{} is not a valid Avro schema", path.display()))?;
        let serializer = AvroSerializer::new(
            registry.client()?,
            schema.clone(),
            AvroSerializerConfig::default(),
        );
        let schema = JsonSchema::new(schema)
            .with_context(|| format!("{} has an unresolvable named type", path.display()))?;
        Ok(JsonToAvro { schema, serializer })
    }

    /// Line `number`'s JSON as framed Avro; a line that does not fit says where and why
    /// (`line 3, field amount_cents: expected a long, got the string "five"`).
    async fn encode(&self, topic: &str, number: u64, json: &[u8]) -> anyhow::Result<Vec<u8>> {
        let json: serde_json::Value =
            serde_json::from_slice(json).with_context(|| format!("line {number}: not JSON"))?;
        let value = self.schema.to_avro(json).map_err(|e| {
            if e.path.is_empty() {
                anyhow::anyhow!("line {number}: {}", e.problem)
            } else {
                anyhow::anyhow!("line {number}, {e}")
            }
        })?;
        Ok(self.serializer.serialize_value(topic, &value).await?)
    }
}

/// `--acks` values, as Kafka spells them.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum AcksArg {
    /// Every in-sync replica (on strand: fsynced).
    All,
    /// The leader appended it.
    #[value(name = "1")]
    Leader,
    /// Not awaited: offsets are unknown.
    #[value(name = "0")]
    None,
}

/// Deliveries awaited behind the reader; bounds memory on a long stdin.
const IN_FLIGHT: usize = 10_000;

#[derive(Default)]
struct Summary {
    delivered: u64,
    failed: u64,
    first_error: Option<String>,
    per_partition: BTreeMap<i32, u64>,
}

/// Produces stdin and reports the deliveries.
pub(crate) async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let mut config = ProducerConfig::new(&args.kafka.bootstrap);
    config.client = args.kafka.client_config();
    config.acks = match args.acks {
        AcksArg::All => Acks::All,
        AcksArg::Leader => Acks::Leader,
        AcksArg::None => Acks::None,
    };
    // Idempotence needs acks=all, as in the Java client.
    config.enable_idempotence = config.acks == Acks::All;
    let producer = RawProducer::new(config)
        .await
        .with_context(|| format!("connecting to {}", args.kafka.bootstrap))?;
    let partitions = producer.partition_count(&args.topic).await?;
    if let Some(p) = args.partition
        && !(0..partitions).contains(&p)
    {
        bail!(
            "topic {} has no partition {p} (it has {partitions})",
            args.topic
        );
    }

    let encoder = match (&args.avro_schema, &args.json_schema) {
        (Some(path), _) => Encoder::Avro(Box::new(JsonToAvro::new(path, &args.registry)?)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let serializer = JsonSerializer::new(
                args.registry.client()?,
                &text,
                JsonSerializerConfig::default(),
            )
            .with_context(|| format!("{} is not a valid JSON Schema", path.display()))?;
            Encoder::Json(serializer)
        }
        (None, None) => match &args.protobuf_schema {
            Some(path) => Encoder::Protobuf(Box::new(JsonToProtobuf::new(&args, path)?)),
            None => Encoder::Raw,
        },
    };

    let (tx, mut rx) = tokio::sync::mpsc::channel::<DeliveryFuture>(IN_FLIGHT);
    let collector = tokio::spawn(async move {
        let mut summary = Summary::default();
        while let Some(delivery) = rx.recv().await {
            match delivery.await {
                Ok(meta) => {
                    summary.delivered += 1;
                    *summary.per_partition.entry(meta.partition).or_default() += 1;
                }
                Err(e) => {
                    summary.failed += 1;
                    summary.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        summary
    });

    let read = read_and_send(&args, &producer, &encoder, tx).await;
    let flushed = producer.close().await;
    let summary = collector.await.context("delivery collector failed")?;
    let partitions: Vec<String> = summary
        .per_partition
        .iter()
        .map(|(p, n)| format!("{p}:{n}"))
        .collect();
    eprintln!(
        "produced {} to {} (partition:records {}){}",
        count(summary.delivered, "record"),
        args.topic,
        if partitions.is_empty() {
            "none".to_string()
        } else {
            partitions.join(" ")
        },
        if summary.failed > 0 {
            format!(", {} failed", summary.failed)
        } else {
            String::new()
        }
    );
    read?;
    if let Some(e) = summary.first_error {
        bail!("{} not delivered: {e}", count(summary.failed, "record"));
    }
    flushed?;
    Ok(())
}

/// Sends each stdin line; stops at the first line it cannot turn into a record.
async fn read_and_send(
    args: &ProduceArgs,
    producer: &RawProducer,
    encoder: &Encoder,
    deliveries: tokio::sync::mpsc::Sender<DeliveryFuture>,
) -> anyhow::Result<()> {
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        if stdin
            .read_until(b'\n', &mut line)
            .await
            .context("reading stdin")?
            == 0
        {
            return Ok(());
        }
        number += 1;
        let text = strip_newline(&line);
        let (key, value) = match &args.key_separator {
            Some(sep) => {
                let Some((key, value)) = split_once(text, sep.as_bytes()) else {
                    bail!("line {number} has no key separator {sep:?}");
                };
                (Some(key), value)
            }
            None => (None, text),
        };
        let value = encoder.encode(&args.topic, number, value).await?;
        let mut record = ProducerRecord::new(&args.topic, value);
        if let Some(key) = key {
            record = record.with_key(Bytes::copy_from_slice(key));
        }
        if let Some(p) = args.partition {
            record = record.with_partition(p);
        }
        let delivery = producer
            .send(record)
            .await
            .with_context(|| format!("sending line {number}"))?;
        if deliveries.send(delivery).await.is_err() {
            bail!("delivery collector stopped");
        }
    }
}

fn strip_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn split_once<'a>(line: &'a [u8], sep: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    if sep.is_empty() {
        return None;
    }
    let at = line.windows(sep.len()).position(|w| w == sep)?;
    Some((&line[..at], &line[at + sep.len()..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_split_at_the_first_separator_only() {
        assert_eq!(
            split_once(b"k1::a::b", b"::"),
            Some((&b"k1"[..], &b"a::b"[..]))
        );
        assert_eq!(split_once(b"no separator", b":"), None);
    }

    #[test]
    fn crlf_and_lf_line_ends_are_stripped() {
        assert_eq!(strip_newline(b"v\r\n"), b"v");
        assert_eq!(strip_newline(b"v\n"), b"v");
        assert_eq!(strip_newline(b"v"), b"v");
    }
}
