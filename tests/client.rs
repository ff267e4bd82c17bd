//! strand-client against a real `strand serve`: typed Avro round trip through the registry,
//! schema evolution in both directions, a group rebalance between two consumers, idempotent
//! retries across a broker restart, and the `produce_orders`/`consume_orders` examples.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use apache_avro::{AvroSchema, Schema};
use serde::{Deserialize, Serialize};
use strand_client::{
    AdminClient, Assignor, AvroDeserializer, AvroSerializer, ClientConfig, Consumer,
    ConsumerConfig, NewTopic, OffsetReset, Producer, ProducerConfig, ProducerRecord, RawConsumer,
    RawProducer, RegistryClient, RegistryConfig, TopicPartition,
};
use strand_tests::Strand;
use tokio::sync::watch;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "test")]
struct Payment {
    id: String,
    cents: i64,
    note: Option<String>,
}

const ORDER_V1: &str = r#"{"type":"record","name":"Order","namespace":"test","fields":[
    {"name":"id","type":"string"},{"name":"cents","type":"long"}]}"#;
const ORDER_V2: &str = r#"{"type":"record","name":"Order","namespace":"test","fields":[
    {"name":"id","type":"string"},{"name":"cents","type":"long"},
    {"name":"currency","type":"string","default":"EUR"}]}"#;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderV1 {
    id: String,
    cents: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct OrderV2 {
    id: String,
    cents: i64,
    currency: String,
}

struct Server {
    strand: Strand,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> anyhow::Result<Server> {
        let dir = tempfile::tempdir()?;
        let strand = Strand::start(dir.path(), &[])?;
        Ok(Server { strand, _dir: dir })
    }

    fn bootstrap(&self) -> String {
        self.strand
            .addr("kafka")
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    fn registry(&self) -> anyhow::Result<RegistryClient> {
        let url = format!("http://{}", self.strand.addr("registry")?);
        Ok(RegistryClient::new(RegistryConfig::new(url))?)
    }

    async fn create_topic(&self, name: &str, partitions: i32) -> anyhow::Result<()> {
        let admin = AdminClient::new(ClientConfig::new(&self.bootstrap())).await?;
        admin
            .create_topics(&[NewTopic::new(name, partitions)])
            .await?;
        Ok(())
    }
}

fn earliest(bootstrap: &str, group: Option<&str>) -> ConsumerConfig {
    let mut config = ConsumerConfig::new(bootstrap, group);
    config.auto_offset_reset = OffsetReset::Earliest;
    config
}

async fn drain<K, V>(
    consumer: &mut Consumer<K, V>,
    count: usize,
) -> anyhow::Result<Vec<strand_client::ConsumerRecord<Option<K>, Option<V>>>>
where
    K: serde::de::DeserializeOwned,
    V: serde::de::DeserializeOwned,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < count {
        if Instant::now() > deadline {
            bail!("only {} of {count} records arrived", out.len());
        }
        out.extend(consumer.poll(Duration::from_millis(500)).await?);
    }
    Ok(out)
}

#[tokio::test]
async fn typed_records_round_trip_through_strand() -> anyhow::Result<()> {
    let server = Server::start()?;
    server.create_topic("payments", 3).await?;
    let registry = server.registry()?;
    let producer: Producer<String, Payment> =
        Producer::new(ProducerConfig::new(&server.bootstrap()), registry.clone()).await?;
    let sent: Vec<Payment> = (0..50)
        .map(|i| Payment {
            id: format!("p-{i}"),
            cents: i * 100,
            note: (i % 2 == 0).then(|| format!("note {i}")),
        })
        .collect();
    for p in &sent {
        let meta = producer.send("payments", Some(&p.id), p).await?.await?;
        assert!(meta.offset >= 0);
    }
    producer.close().await?;
    assert!(
        registry
            .subjects()
            .await?
            .contains(&"payments-value".to_string()),
        "value schema registered under the topic's subject"
    );

    let mut consumer: Consumer<String, Payment> =
        Consumer::new(earliest(&server.bootstrap(), None), registry).await?;
    consumer.assign((0..3).map(|p| TopicPartition::new("payments", p)).collect());
    let got = drain(&mut consumer, sent.len()).await?;
    let mut values: Vec<Payment> = got.iter().filter_map(|r| r.value.clone()).collect();
    values.sort_by_key(|p| p.cents);
    assert_eq!(values, sent);
    assert!(
        got.iter()
            .all(|r| r.key.as_deref() == r.value.as_ref().map(|v| v.id.as_str()))
    );
    Ok(())
}

#[tokio::test]
async fn schema_evolution_works_in_both_directions() -> anyhow::Result<()> {
    let server = Server::start()?;
    server.create_topic("orders", 1).await?;
    let registry = server.registry()?;
    let bootstrap = server.bootstrap();
    let v1 = Schema::parse_str(ORDER_V1)?;
    let v2 = Schema::parse_str(ORDER_V2)?;

    // A v1 producer, then a v2 producer (BACKWARD-compatible: the new field has a default).
    let raw = RawProducer::new(ProducerConfig::new(&bootstrap)).await?;
    let ser1 = AvroSerializer::new(registry.clone(), v1.clone(), Default::default());
    let ser2 = AvroSerializer::new(registry.clone(), v2.clone(), Default::default());
    let old = OrderV1 {
        id: "old".into(),
        cents: 1,
    };
    let new = OrderV2 {
        id: "new".into(),
        cents: 2,
        currency: "USD".into(),
    };
    raw.send(ProducerRecord::new(
        "orders",
        ser1.serialize("orders", &old).await?,
    ))
    .await?
    .await?;
    raw.send(ProducerRecord::new(
        "orders",
        ser2.serialize("orders", &new).await?,
    ))
    .await?
    .await?;
    raw.close().await?;
    assert_ne!(
        ser1.schema_id("orders").await?,
        ser2.schema_id("orders").await?
    );

    // A v2 consumer reads v1 data with the default filled in.
    let key = AvroDeserializer::new(registry.clone());
    let mut v2_consumer: Consumer<String, OrderV2> = Consumer::with_deserializers(
        earliest(&bootstrap, None),
        key,
        AvroDeserializer::with_reader_schema(registry.clone(), v2),
    )
    .await?;
    v2_consumer.assign(vec![TopicPartition::new("orders", 0)]);
    let got: Vec<OrderV2> = drain(&mut v2_consumer, 2)
        .await?
        .into_iter()
        .filter_map(|r| r.value)
        .collect();
    assert_eq!(
        got,
        vec![
            OrderV2 {
                id: "old".into(),
                cents: 1,
                currency: "EUR".into()
            },
            new.clone()
        ]
    );

    // A v1 consumer reads v2 data, ignoring the field it does not know.
    let mut v1_consumer: Consumer<String, OrderV1> = Consumer::with_deserializers(
        earliest(&bootstrap, None),
        AvroDeserializer::new(registry.clone()),
        AvroDeserializer::with_reader_schema(registry, v1),
    )
    .await?;
    v1_consumer.assign(vec![TopicPartition::new("orders", 0)]);
    let got: Vec<OrderV1> = drain(&mut v1_consumer, 2)
        .await?
        .into_iter()
        .filter_map(|r| r.value)
        .collect();
    assert_eq!(
        got,
        vec![
            old,
            OrderV1 {
                id: "new".into(),
                cents: 2
            }
        ]
    );
    Ok(())
}

type Progress = (BTreeSet<TopicPartition>, usize);

/// Polls in its own task, as an application would, publishing assignment and record count.
fn run_consumer(
    mut consumer: RawConsumer,
    mut stop: watch::Receiver<bool>,
) -> (
    watch::Receiver<Progress>,
    tokio::task::JoinHandle<anyhow::Result<RawConsumer>>,
) {
    let (tx, rx) = watch::channel((BTreeSet::new(), 0));
    let handle = tokio::spawn(async move {
        let mut count = 0;
        while !*stop.borrow_and_update() {
            count += consumer.poll(Duration::from_millis(200)).await?.len();
            tx.send_replace((consumer.assignment().into_iter().collect(), count));
        }
        consumer.commit().await?;
        Ok(consumer)
    });
    (rx, handle)
}

async fn wait_for(
    a: &mut watch::Receiver<Progress>,
    b: &mut watch::Receiver<Progress>,
    what: &str,
    done: impl Fn(&Progress, &Progress) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if done(&a.borrow(), &b.borrow()) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, async {
            tokio::select! {
                _ = a.changed() => {}
                _ = b.changed() => {}
            }
        })
        .await
        .with_context(|| format!("{what}: {:?} {:?}", *a.borrow(), *b.borrow()))?;
    }
}

async fn group_rebalances_between_two_consumers(assignor: Assignor) -> anyhow::Result<()> {
    let server = Server::start()?;
    let bootstrap = server.bootstrap();
    server.create_topic("events", 4).await?;
    let make = || {
        let mut c = earliest(&bootstrap, Some("readers"));
        c.heartbeat_interval = Duration::from_millis(200);
        c.session_timeout = Duration::from_secs(10);
        c.assignors = vec![assignor];
        c
    };
    let (stop_tx, stop) = watch::channel(false);
    let mut a = RawConsumer::new(make()).await?;
    a.subscribe(&["events"])?;
    let (mut pa, ha) = run_consumer(a, stop.clone());
    let (_idle_tx, mut idle) = watch::channel((BTreeSet::new(), 0));
    wait_for(&mut pa, &mut idle, "first member owns all", |a, _| {
        a.0.len() == 4
    })
    .await?;

    let mut b = RawConsumer::new(make()).await?;
    b.subscribe(&["events"])?;
    let (mut pb, hb) = run_consumer(b, stop);
    wait_for(&mut pa, &mut pb, "balanced split", |a, b| {
        a.0.len() == 2 && b.0.len() == 2 && a.0.is_disjoint(&b.0)
    })
    .await?;

    let producer = RawProducer::new(ProducerConfig::new(&bootstrap)).await?;
    for i in 0..40 {
        producer
            .send(ProducerRecord::new("events", format!("e{i}")).with_partition(i % 4))
            .await?;
    }
    producer.flush().await?;
    wait_for(&mut pa, &mut pb, "every record consumed once", |a, b| {
        a.1 + b.1 == 40
    })
    .await?;
    stop_tx.send_replace(true);
    let a = ha.await??;
    let b = hb.await??;
    let admin = AdminClient::new(ClientConfig::new(&bootstrap)).await?;
    let lag = admin.group_lag("readers", "events").await?;
    assert_eq!(lag.len(), 4, "{lag:?}");
    assert!(
        lag.iter().all(|l| l.lag == 0 && l.committed == 10),
        "{lag:?}"
    );
    a.close().await?;
    b.close().await?;
    Ok(())
}

#[tokio::test]
async fn range_group_rebalances_between_two_consumers() -> anyhow::Result<()> {
    group_rebalances_between_two_consumers(Assignor::Range).await
}

#[tokio::test]
async fn cooperative_sticky_group_rebalances_between_two_consumers() -> anyhow::Result<()> {
    group_rebalances_between_two_consumers(Assignor::CooperativeSticky).await
}

#[tokio::test]
async fn idempotent_retries_across_a_broker_restart_leave_no_duplicate() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let kafka = strand.addr("kafka")?.to_string();
    let admin = AdminClient::new(ClientConfig::new(&kafka)).await?;
    admin.create_topics(&[NewTopic::new("ledger", 1)]).await?;
    let mut config = ProducerConfig::new(&kafka);
    config.client.retry_backoff = Duration::from_millis(50);
    config.client.request_timeout = Duration::from_secs(5);
    config.linger = Duration::from_millis(1);
    let producer = RawProducer::new(config).await?;

    let total = 2_000;
    let mut deliveries = Vec::new();
    let mut restarted = None;
    for i in 0..total {
        deliveries.push(
            producer
                .send(ProducerRecord::new("ledger", format!("entry-{i}")))
                .await?,
        );
        if i == total / 2 {
            // Crash mid-stream with batches in flight, then come back on the same port.
            strand.kill()?;
            restarted = Some(Strand::start(dir.path(), &["--kafka-addr", &kafka])?);
            break;
        }
    }
    let strand = restarted.context("restarted")?;
    for i in (total / 2 + 1)..total {
        deliveries.push(
            producer
                .send(ProducerRecord::new("ledger", format!("entry-{i}")))
                .await?,
        );
    }
    for d in deliveries {
        d.await?;
    }
    producer.close().await?;

    let mut consumer = RawConsumer::new(earliest(&kafka, None)).await?;
    consumer.assign(vec![TopicPartition::new("ledger", 0)]);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < total && Instant::now() < deadline {
        seen.extend(consumer.poll(Duration::from_millis(500)).await?);
    }
    // Nothing more than `total` arrives: a duplicate would show up here.
    seen.extend(consumer.poll(Duration::from_millis(500)).await?);
    let values: Vec<String> = seen
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    let distinct: BTreeSet<&String> = values.iter().collect();
    assert_eq!(distinct.len(), total, "every record delivered");
    assert_eq!(values.len(), total, "no record written twice");
    drop(strand);
    Ok(())
}

fn example(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "strand-client", "--example", name])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("building example {name} failed");
    }
    Ok(target.join("debug").join("examples").join(name))
}

#[test]
fn produce_orders_output_is_read_back_by_consume_orders() -> anyhow::Result<()> {
    let server = Server::start()?;
    let bootstrap = server.bootstrap();
    let registry = format!("http://{}", server.strand.addr("registry")?);
    let args = [
        "--bootstrap",
        &bootstrap,
        "--registry",
        &registry,
        "--topic",
        "orders",
        "--count",
        "20",
    ];
    let produced = Command::new(example("produce_orders")?)
        .args(args)
        .output()?;
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&produced.stdout).lines().count(),
        20
    );
    let consumed = Command::new(example("consume_orders")?)
        .args(args)
        .output()?;
    assert!(
        consumed.status.success(),
        "{}",
        String::from_utf8_lossy(&consumed.stderr)
    );
    let mut ids: Vec<String> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(|line| {
            let order: serde_json::Value = serde_json::from_str(line)?;
            Ok(order["order_id"].as_str().unwrap_or_default().to_string())
        })
        .collect::<anyhow::Result<_>>()?;
    ids.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("order-{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected);
    Ok(())
}

#[tokio::test]
async fn bad_input_is_a_typed_error_not_a_hang() -> anyhow::Result<()> {
    // Unreachable broker: a closed port, retried only until the retry timeout.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = closed.local_addr()?.to_string();
    drop(closed);
    let mut config = ProducerConfig::new(&addr);
    config.client.retry_timeout = Duration::from_millis(300);
    let err = RawProducer::new(config).await.unwrap_err();
    assert!(
        matches!(err, strand_client::ClientError::Unreachable { .. }),
        "{err}"
    );

    let server = Server::start()?;
    server.create_topic("small", 1).await?;
    let producer = RawProducer::new(ProducerConfig::new(&server.bootstrap())).await?;
    let err = producer
        .send(ProducerRecord::new("no-such-topic", "x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, strand_client::ClientError::UnknownTopic(ref t) if t == "no-such-topic"),
        "{err}"
    );
    let err = producer
        .send(ProducerRecord::new("small", vec![0u8; 2 * 1024 * 1024]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, strand_client::ClientError::RecordTooLarge { .. }),
        "{err}"
    );
    let err = producer
        .send(ProducerRecord::new("small", "x").with_partition(5))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            strand_client::ClientError::UnknownPartition { partition: 5, .. }
        ),
        "{err}"
    );
    // The producer still works after refusing bad records.
    let meta = producer
        .send(ProducerRecord::new("small", "ok"))
        .await?
        .await?;
    assert_eq!(meta.offset, 0);
    Ok(())
}

#[tokio::test]
async fn seek_pause_resume_and_manual_commit_control_what_is_consumed() -> anyhow::Result<()> {
    let server = Server::start()?;
    let bootstrap = server.bootstrap();
    server.create_topic("steps", 2).await?;
    // acks=0: no offsets come back, but the records are written.
    let mut config = ProducerConfig::new(&bootstrap);
    config.acks = strand_client::Acks::None;
    config.enable_idempotence = false;
    let producer = RawProducer::new(config).await?;
    for p in 0..2 {
        for i in 0..10 {
            let meta = producer
                .send(ProducerRecord::new("steps", format!("{p}-{i}")).with_partition(p))
                .await?
                .await?;
            assert_eq!(meta.offset, -1);
        }
    }
    producer.close().await?;

    let mut config = earliest(&bootstrap, Some("steppers"));
    config.enable_auto_commit = false;
    let mut consumer = RawConsumer::new(config).await?;
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_events = events.clone();
    consumer.set_rebalance_listener(move |e| seen_events.lock().unwrap().push(e.clone()));
    consumer.subscribe(&["steps"])?;
    let p0 = TopicPartition::new("steps", 0);
    let p1 = TopicPartition::new("steps", 1);

    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 20 && Instant::now() < deadline {
        got.extend(consumer.poll(Duration::from_millis(300)).await?);
    }
    assert_eq!(got.len(), 20);
    assert!(matches!(
        events.lock().unwrap().first(),
        Some(strand_client::RebalanceEvent::Assigned(tps)) if tps.len() == 2
    ));

    // Seek back on partition 0 and pause partition 1: only p0's tail comes again.
    consumer.seek(&p0, 7)?;
    consumer.pause(std::slice::from_ref(&p1));
    let mut again = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while again.len() < 3 && Instant::now() < deadline {
        again.extend(consumer.poll(Duration::from_millis(300)).await?);
    }
    let offsets: Vec<(i32, i64)> = again.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(offsets, vec![(0, 7), (0, 8), (0, 9)]);
    assert_eq!(consumer.paused(), vec![p1.clone()]);
    consumer.resume(std::slice::from_ref(&p1));
    consumer.seek(&p1, 9)?;
    let mut last = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while last.is_empty() && Instant::now() < deadline {
        last.extend(consumer.poll(Duration::from_millis(300)).await?);
    }
    assert_eq!(
        last.iter()
            .map(|r| (r.partition, r.offset))
            .collect::<Vec<_>>(),
        vec![(1, 9)]
    );

    // Manual commit: what was committed is what the group reads back.
    consumer
        .commit_offsets(&[(p0.clone(), 4), (p1.clone(), 10)])
        .await?;
    let committed = consumer.committed(&[p0.clone(), p1.clone()]).await?;
    assert_eq!(committed.get(&p0), Some(&4));
    assert_eq!(committed.get(&p1), Some(&10));
    consumer.close().await?;

    // A new member of the group starts at the committed offsets.
    let mut config = earliest(&bootstrap, Some("steppers"));
    config.enable_auto_commit = false;
    let mut next = RawConsumer::new(config).await?;
    next.subscribe(&["steps"])?;
    let mut rest = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while rest.len() < 6 && Instant::now() < deadline {
        rest.extend(next.poll(Duration::from_millis(300)).await?);
    }
    let mut offsets: Vec<(i32, i64)> = rest.iter().map(|r| (r.partition, r.offset)).collect();
    offsets.sort();
    assert_eq!(offsets, (4..10).map(|o| (0, o)).collect::<Vec<_>>());
    next.close().await?;
    Ok(())
}

/// A TCP proxy in front of the broker that forwards everything, except that it swallows
/// the response to the first Produce request and cuts the connection: the request was
/// appended, but the producer never hears so, and must retry.
async fn lossy_proxy(listener: tokio::net::TcpListener, upstream: String) {
    use std::collections::VecDeque;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dropped = Arc::new(AtomicBool::new(false));
    while let Ok((client, _)) = listener.accept().await {
        let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
            continue;
        };
        let dropped = dropped.clone();
        tokio::spawn(async move {
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let (api_tx, mut api_rx) = tokio::sync::mpsc::unbounded_channel::<i16>();
            let requests = tokio::spawn(async move {
                while let Ok(len) = client_read.read_i32().await {
                    let mut frame = vec![0; len as usize];
                    if client_read.read_exact(&mut frame).await.is_err() {
                        break;
                    }
                    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
                    // Every request here expects a response (the test does not use acks=0).
                    let _ = api_tx.send(api_key);
                    let mut out = (len).to_be_bytes().to_vec();
                    out.extend_from_slice(&frame);
                    if server_write.write_all(&out).await.is_err() {
                        break;
                    }
                }
            });
            let mut pending: VecDeque<i16> = VecDeque::new();
            while let Ok(len) = server_read.read_i32().await {
                let mut frame = vec![0; len as usize];
                if server_read.read_exact(&mut frame).await.is_err() {
                    break;
                }
                while pending.is_empty() {
                    match api_rx.recv().await {
                        Some(k) => pending.push_back(k),
                        None => break,
                    }
                }
                let api_key = pending.pop_front().unwrap_or(-1);
                if api_key == 0 && !dropped.swap(true, Ordering::SeqCst) {
                    break; // swallow this Produce response and cut the connection
                }
                let mut out = len.to_be_bytes().to_vec();
                out.extend_from_slice(&frame);
                if client_write.write_all(&out).await.is_err() {
                    break;
                }
            }
            requests.abort();
        });
    }
}

#[tokio::test]
async fn lost_produce_response_is_retried_without_writing_twice() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let proxy = listener.local_addr()?.to_string();
    let strand = Strand::start(dir.path(), &["--advertised-kafka-addr", &proxy])?;
    tokio::spawn(lossy_proxy(listener, strand.addr("kafka")?.to_string()));

    let admin = AdminClient::new(ClientConfig::new(&proxy)).await?;
    admin.create_topics(&[NewTopic::new("once", 1)]).await?;
    let producer = RawProducer::new(ProducerConfig::new(&proxy)).await?;
    let mut deliveries = Vec::new();
    for i in 0..5 {
        deliveries.push(
            producer
                .send(ProducerRecord::new("once", format!("r{i}")))
                .await?,
        );
    }
    let mut offsets = Vec::new();
    for d in deliveries {
        offsets.push(d.await?.offset);
    }
    producer.close().await?;
    assert_eq!(
        offsets,
        vec![0, 1, 2, 3, 4],
        "the retry was acknowledged with the original offsets"
    );

    let mut consumer = RawConsumer::new(earliest(&proxy, None)).await?;
    consumer.assign(vec![TopicPartition::new("once", 0)]);
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while values.len() < 5 && Instant::now() < deadline {
        for r in consumer.poll(Duration::from_millis(300)).await? {
            values
                .push(String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned());
        }
    }
    values.extend(
        consumer
            .poll(Duration::from_millis(500))
            .await?
            .iter()
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()),
    );
    assert_eq!(values, vec!["r0", "r1", "r2", "r3", "r4"]);
    Ok(())
}
