//! Produces `--count` orders to `--topic` as Confluent-framed Avro (schema
//! `schemas/order.avsc`, registered under `<topic>-value`), keyed by order id (UTF-8), and
//! prints each delivery as `partition offset order_id`.
//!
//! ```text
//! cargo run -p strand-client --example produce_orders -- \
//!     --bootstrap 127.0.0.1:9092 --registry http://127.0.0.1:8081 --topic orders --count 10
//! ```

#[path = "common/order.rs"]
mod order;

use anyhow::Context;
use apache_avro::Schema;
use clap::Parser;
use kafka_protocol::error::ResponseError;
use strand_client::{
    AdminClient, AvroSerializer, ClientConfig, NewTopic, ProducerConfig, ProducerRecord,
    RawProducer, RegistryClient, RegistryConfig,
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
    /// Topic to produce to (created with 3 partitions if missing).
    #[arg(long, default_value = "orders")]
    topic: String,
    /// Number of orders.
    #[arg(long, default_value_t = 10)]
    count: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let admin = AdminClient::new(ClientConfig::new(&args.bootstrap)).await?;
    match admin.create_topics(&[NewTopic::new(&args.topic, 3)]).await {
        Ok(()) => {}
        Err(e) if e.kafka_error() == Some(ResponseError::TopicAlreadyExists) => {}
        Err(e) => return Err(e).context("creating the topic"),
    }

    let registry = RegistryClient::new(RegistryConfig::new(&args.registry))?;
    let schema = Schema::parse_str(ORDER_SCHEMA).context("parsing schemas/order.avsc")?;
    let serializer = AvroSerializer::new(registry, schema, Default::default());
    let producer = RawProducer::new(ProducerConfig::new(&args.bootstrap)).await?;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let mut deliveries = Vec::new();
    for i in 0..args.count {
        let order = Order {
            order_id: format!("order-{i}"),
            customer_id: format!("customer-{}", i % 7),
            amount_cents: 1_000 + (i as i64 * 37) % 9_000,
            currency: if i % 2 == 0 { "EUR" } else { "USD" }.to_string(),
            created_at: now + i as i64,
        };
        let value = serializer.serialize(&args.topic, &order).await?;
        let record = ProducerRecord::new(&args.topic, value).with_key(order.order_id.clone());
        deliveries.push((order.order_id, producer.send(record).await?));
    }
    for (order_id, delivery) in deliveries {
        let meta = delivery.await?;
        println!("{} {} {order_id}", meta.partition, meta.offset);
    }
    producer.close().await?;
    Ok(())
}
