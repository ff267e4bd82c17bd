//! Typed produce to a real `strand serve` (release build): 100-byte Avro values, acks=1,
//! idempotence off (as Kafka requires for acks=1), 4 partitions, null keys (sticky
//! partitioning). Target: 500 000 records/s. `STRAND_BIN` names the server binary; without
//! it the workspace's release build is used (built on first run).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use apache_avro::AvroSchema;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::Serialize;
use strand_client::{
    Acks, AdminClient, ClientConfig, NewTopic, Producer, ProducerConfig, RegistryClient,
    RegistryConfig,
};

#[derive(Serialize, AvroSchema)]
#[avro(namespace = "bench")]
struct Event {
    /// 95 bytes of text; with its length prefix the Avro value is 96 bytes, 101 framed.
    payload: String,
}

const RECORDS: usize = 50_000;

struct Server {
    child: Child,
    kafka: String,
    registry: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strand_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("STRAND_BIN") {
        return PathBuf::from(bin);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", "strand"])
        .current_dir(&root)
        .status()
        .expect("cargo build");
    assert!(status.success(), "building strand failed");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release")
        .join("strand")
}

fn start() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(strand_bin())
        .arg("serve")
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "--kafka-addr",
            "127.0.0.1:0",
            "--registry-addr",
            "127.0.0.1:0",
        ])
        .args(["--admin-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0"])
        .args([
            "--grpc-addr",
            "127.0.0.1:0",
            "--controller-addr",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn strand serve");
    let stdout = child.stdout.take().expect("stdout");
    let (mut kafka, mut registry) = (None, None);
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if let Some(addr) = line.strip_prefix("kafka listening on ") {
            kafka = Some(addr.trim().to_string());
        }
        if let Some(addr) = line.strip_prefix("registry listening on ") {
            registry = Some(format!("http://{}", addr.trim()));
        }
        if kafka.is_some() && registry.is_some() {
            break;
        }
    }
    Server {
        child,
        kafka: kafka.expect("kafka address"),
        registry: registry.expect("registry address"),
        _dir: dir,
    }
}

fn produce(c: &mut Criterion) {
    let server = start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let producer: Producer<String, Event> = runtime.block_on(async {
        let admin = AdminClient::new(ClientConfig::new(&server.kafka))
            .await
            .unwrap();
        admin
            .create_topics(&[NewTopic::new("bench", 4)])
            .await
            .unwrap();
        let mut config = ProducerConfig::new(&server.kafka);
        config.acks = Acks::Leader;
        config.enable_idempotence = false;
        config.batch_size = 256 * 1024;
        config.linger = Duration::from_millis(5);
        let registry = RegistryClient::new(RegistryConfig::new(&server.registry)).unwrap();
        Producer::new(config, registry).await.unwrap()
    });
    let event = Event {
        payload: "x".repeat(95),
    };
    let mut group = c.benchmark_group("produce");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.bench_function("typed_100_byte_values_acks_1", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut last = None;
                for _ in 0..RECORDS {
                    last = Some(producer.send("bench", None, &event).await.unwrap());
                }
                producer.flush().await.unwrap();
                last.unwrap().await.unwrap();
            })
        })
    });
    group.finish();
    drop(producer);
}

criterion_group!(benches, produce);
criterion_main!(benches);
