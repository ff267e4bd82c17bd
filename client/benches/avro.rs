//! Avro serialization of a 10-field record into the Confluent frame, with the schema id
//! already cached (the steady state of a producer). Target: 2 million records/s on one core.

use apache_avro::AvroSchema;
use axum::routing::post;
use axum::{Json, Router};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use strand_client::{AvroSerializer, RegistryClient, RegistryConfig};

#[derive(Serialize, AvroSchema)]
#[avro(namespace = "bench")]
struct Trade {
    id: i64,
    account: String,
    symbol: String,
    venue: String,
    quantity: i32,
    price: f64,
    fee: f32,
    buy: bool,
    timestamp_ms: i64,
    comment: Option<String>,
}

const BATCH: usize = 1000;

fn serialize(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A registry that gives every schema id 1: enough for the serializer to cache its id.
    let url = runtime.block_on(async {
        let app = Router::new().route(
            "/subjects/{subject}/versions",
            post(|| async { Json(serde_json::json!({"id": 1})) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    });
    let registry = RegistryClient::new(RegistryConfig::new(url)).unwrap();
    let serializer = AvroSerializer::for_type::<Trade>(registry, Default::default());
    let trades: Vec<Trade> = (0..BATCH as i64)
        .map(|i| Trade {
            id: i,
            account: format!("acct-{}", i % 97),
            symbol: "ACME".into(),
            venue: "XNAS".into(),
            quantity: (i % 1000) as i32,
            price: 101.25 + i as f64,
            fee: 0.5,
            buy: i % 2 == 0,
            timestamp_ms: 1_700_000_000_000 + i,
            comment: (i % 3 == 0).then(|| "rebalance".to_string()),
        })
        .collect();
    runtime.block_on(serializer.schema_id("trades")).unwrap();

    let mut group = c.benchmark_group("avro");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("serialize_10_field_record", |b| {
        let mut buf = Vec::with_capacity(128);
        b.iter(|| {
            runtime.block_on(async {
                for trade in &trades {
                    buf.clear();
                    serializer
                        .serialize_into("trades", trade, &mut buf)
                        .await
                        .unwrap();
                }
            })
        })
    });
    group.finish();
}

criterion_group!(benches, serialize);
criterion_main!(benches);
