//! Consumes `--count` orders from `--topic` (every partition, from the beginning) and prints
//! each as one JSON line. Values are Confluent-framed Avro written by any producer whose
//! schema the registry knows; they are read through `schemas/order.avsc` as reader schema.
//!
//! ```text
//! cargo run -p strand-client --example consume_orders -- \
//!     --bootstrap 127.0.0.1:9092 --registry http://127.0.0.1:8081 --topic orders --count 10
//! ```

#[path = "common/order.rs"]
mod order;

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use apache_avro::Schema;
use clap::Parser;
use strand_client::{
    AdminClient, AvroDeserializer, ClientConfig, ConsumerConfig, OffsetReset, RawConsumer,
    RegistryClient, RegistryConfig, TopicPartition,
};

use order::{ORDER_SCHEMA, Order};

#[derive(Parser)]
struct Args {
    /// Kafka bootstrap servers (host:port, comma-separated).
    #[arg(long, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Schema registry URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    registry: String,
    /// Topic to consume.
    #[arg(long, default_value = "orders")]
    topic: String,
    /// Number of orders to read before exiting.
    #[arg(long, default_value_t = 10)]
    count: u64,
    /// Give up when fewer than `--count` orders arrived within this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let admin = AdminClient::new(ClientConfig::new(&args.bootstrap)).await?;
    let topic = admin.describe_topic(&args.topic).await?;

    let registry = RegistryClient::new(RegistryConfig::new(&args.registry))?;
    let schema = Schema::parse_str(ORDER_SCHEMA).context("parsing schemas/order.avsc")?;
    let deserializer = AvroDeserializer::with_reader_schema(registry, schema);

    let mut config = ConsumerConfig::new(&args.bootstrap, None);
    config.auto_offset_reset = OffsetReset::Earliest;
    let mut consumer = RawConsumer::new(config).await?;
    consumer.assign(
        topic
            .partitions
            .iter()
            .map(|(p, _)| TopicPartition::new(&args.topic, *p))
            .collect(),
    );

    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let mut read = 0;
    while read < args.count {
        if Instant::now() >= deadline {
            bail!("only {read} of {} orders arrived in time", args.count);
        }
        for record in consumer.poll(Duration::from_millis(500)).await? {
            let Some(value) = record.value else { continue };
            let order: Order = deserializer.deserialize(&value).await.with_context(|| {
                format!(
                    "decoding {}-{} offset {}",
                    record.topic, record.partition, record.offset
                )
            })?;
            println!("{}", serde_json::to_string(&order)?);
            read += 1;
            if read == args.count {
                break;
            }
        }
    }
    Ok(())
}
