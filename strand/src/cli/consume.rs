//! `strand consume TOPIC`: prints records through the client's `RawConsumer`, one per line,
//! either from every partition (no group) or as a member of a consumer group, optionally
//! decoding Confluent-framed Avro (`--avro`), JSON Schema (`--json-schema`) or Protobuf
//! (`--protobuf`) values through the schema registry into JSON.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use apache_avro::types::Value;
use clap::Args;
use strand_client::{
    AvroDeserializer, ConsumerConfig, ConsumerRecord, JsonDeserializer, OffsetReset,
    ProtobufDeserializer, RawConsumer, TopicPartition,
};

use super::{KafkaArgs, RegistryArgs, count};

/// Flags of `strand consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// Topic to read.
    topic: String,
    /// Start at the log start offset where no offset is committed (default: only new records).
    #[arg(long)]
    from_beginning: bool,
    /// Consume as a member of this group, committing what was printed.
    #[arg(long)]
    group: Option<String>,
    /// Exit after this many records.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Exit when no record arrived for this long (an error if fewer than --count arrived).
    #[arg(long, value_name = "MS")]
    timeout_ms: Option<u64>,
    /// Print the key before the value, separated by --key-separator.
    #[arg(long)]
    print_key: bool,
    /// What separates key and value with --print-key.
    #[arg(long, value_name = "SEP", default_value = "\t")]
    key_separator: String,
    /// Decode values as Confluent-framed Avro (schema from the registry) into JSON.
    #[arg(long)]
    avro: bool,
    /// Decode values as Confluent-framed JSON of a JSON Schema subject, validating each
    /// against the schema its id names.
    #[arg(long, conflicts_with = "avro")]
    json_schema: bool,
    /// Decode values as Confluent-framed Protobuf (schema and its references from the
    /// registry, message chosen by the frame's message indexes) into Protobuf's JSON form.
    #[arg(long, conflicts_with_all = ["avro", "json_schema"])]
    protobuf: bool,
}

/// How framed values are decoded.
enum Decoder {
    Avro(AvroDeserializer),
    Json(JsonDeserializer),
    Protobuf(ProtobufDeserializer),
}

/// Consumes until --count, the idle timeout or Ctrl-C, then closes (leaving the group).
pub(crate) async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let mut config = ConsumerConfig::new(&args.kafka.bootstrap, args.group.as_deref());
    config.client = args.kafka.client_config();
    config.auto_offset_reset = if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    // Offsets are committed for exactly the records printed, not the fetched ones.
    config.enable_auto_commit = false;
    let deserializer = if args.avro {
        Some(Decoder::Avro(AvroDeserializer::new(
            args.registry.client()?,
        )))
    } else if args.json_schema {
        Some(Decoder::Json(JsonDeserializer::new(
            args.registry.client()?,
        )))
    } else if args.protobuf {
        Some(Decoder::Protobuf(ProtobufDeserializer::new(
            args.registry.client()?,
        )))
    } else {
        None
    };
    let admin = args.kafka.admin().await?;
    // Checked up front: subscribing to an unknown topic would just wait for nothing.
    let topic = admin.describe_topic(&args.topic).await?;
    let mut consumer = RawConsumer::new(config)
        .await
        .with_context(|| format!("connecting to {}", args.kafka.bootstrap))?;
    match &args.group {
        Some(_) => consumer.subscribe(&[&args.topic])?,
        None => consumer.assign(
            topic
                .partitions
                .iter()
                .map(|(p, _)| TopicPartition::new(&args.topic, *p))
                .collect(),
        ),
    }

    let result = consume_loop(&args, &mut consumer, deserializer.as_ref()).await;
    let closed = consumer.close().await;
    result?;
    closed?;
    Ok(())
}

async fn consume_loop(
    args: &ConsumeArgs,
    consumer: &mut RawConsumer,
    deserializer: Option<&Decoder>,
) -> anyhow::Result<()> {
    let idle = args.timeout_ms.map(Duration::from_millis);
    let mut last_record = Instant::now();
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        if args.count.is_some_and(|n| printed >= n) {
            return Ok(());
        }
        let wait = match idle {
            Some(idle) => {
                let left = idle.saturating_sub(last_record.elapsed());
                if left.is_zero() {
                    return match args.count {
                        Some(n) => bail!(
                            "only {printed} of {n} records arrived before {} ms without records",
                            idle.as_millis()
                        ),
                        None => Ok(()),
                    };
                }
                left.min(Duration::from_millis(500))
            }
            None => Duration::from_millis(500),
        };
        let records = tokio::select! {
            records = consumer.poll(wait) => records?,
            _ = &mut interrupt => {
                eprintln!("interrupted after {}", count(printed, "record"));
                return Ok(());
            }
        };
        if records.is_empty() {
            continue;
        }
        last_record = Instant::now();
        let mut next_offsets: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut lines = Vec::new();
        for record in records {
            if args.count.is_some_and(|n| printed >= n) {
                break;
            }
            lines.extend(render(args, &record, deserializer).await?);
            printed += 1;
            next_offsets.insert(
                TopicPartition::new(&record.topic, record.partition),
                record.offset + 1,
            );
        }
        let mut out = stdout.lock();
        if let Err(e) = out.write_all(&lines).and_then(|()| out.flush()) {
            return broken_pipe_is_success(e);
        }
        drop(out);
        if args.group.is_some() && !next_offsets.is_empty() {
            let offsets: Vec<(TopicPartition, i64)> = next_offsets.into_iter().collect();
            consumer.commit_offsets(&offsets).await?;
        }
    }
}

/// `strand consume … | head` ends the reader early; that is not a failure.
fn broken_pipe_is_success(e: std::io::Error) -> anyhow::Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(anyhow::Error::new(e).context("writing to stdout"))
    }
}

/// One output line: `[key SEP] value\n`, the value raw or as JSON decoded from Avro.
async fn render(
    args: &ConsumeArgs,
    record: &ConsumerRecord,
    deserializer: Option<&Decoder>,
) -> anyhow::Result<Vec<u8>> {
    let mut line = Vec::new();
    if args.print_key {
        match &record.key {
            Some(key) => line.extend_from_slice(key),
            None => line.extend_from_slice(b"null"),
        }
        line.extend_from_slice(args.key_separator.as_bytes());
    }
    match (&record.value, deserializer) {
        (None, _) => line.extend_from_slice(b"null"),
        (Some(value), None) => line.extend_from_slice(value),
        (Some(value), Some(deserializer)) => {
            let context = || {
                format!(
                    "decoding {}-{} offset {}",
                    record.topic, record.partition, record.offset
                )
            };
            let json = match deserializer {
                Decoder::Avro(avro) => {
                    let (_, decoded) = avro.deserialize_value(value).await.with_context(context)?;
                    let mut json = String::new();
                    write_json(decoded, &mut json)?;
                    json
                }
                Decoder::Json(json) => {
                    let (_, decoded) = json.deserialize_value(value).await.with_context(context)?;
                    decoded.to_string()
                }
                Decoder::Protobuf(proto) => {
                    let (_, decoded) = proto
                        .deserialize_dynamic(value)
                        .await
                        .with_context(context)?;
                    serde_json::to_string(&decoded)?
                }
            };
            line.extend_from_slice(json.as_bytes());
        }
    }
    line.push(b'\n');
    Ok(line)
}

/// Avro value to JSON text, keeping record fields in schema order (a JSON map would sort
/// them). Unions print as their branch's value, as the typed consumer's serde does.
fn write_json(value: Value, out: &mut String) -> anyhow::Result<()> {
    match value {
        Value::Record(fields) => {
            out.push('{');
            for (i, (name, v)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(&name)?);
                out.push(':');
                write_json(v, out)?;
            }
            out.push('}');
        }
        Value::Union(_, inner) => write_json(*inner, out)?,
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(v, out)?;
            }
            out.push(']');
        }
        other => {
            let json = serde_json::Value::try_from(other).context("converting Avro to JSON")?;
            out.push_str(&serde_json::to_string(&json)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avro_records_print_as_json_in_field_order() {
        let value = Value::Record(vec![
            ("id".into(), Value::String("o-1".into())),
            ("amount".into(), Value::Long(1250)),
            (
                "note".into(),
                Value::Union(1, Box::new(Value::String("gift".into()))),
            ),
            (
                "tags".into(),
                Value::Array(vec![Value::Enum(0, "NEW".into())]),
            ),
        ]);
        let mut out = String::new();
        write_json(value, &mut out).unwrap();
        assert_eq!(
            out,
            r#"{"id":"o-1","amount":1250,"note":"gift","tags":["NEW"]}"#
        );
    }
}
