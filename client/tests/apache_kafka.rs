//! The client against real Apache Kafka (4.x, started by `bench/kafka/start`): set
//! `KAFKA_BOOTSTRAP=host:port` and run with `--ignored`. The same scenarios run against
//! `strand serve` in the workspace tests.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strand_client::{
    AdminClient, Assignor, ClientConfig, Compression, ConsumerConfig, NewTopic, OffsetReset,
    ProducerConfig, ProducerRecord, RawConsumer, RawProducer, TopicPartition,
};
use tokio::sync::watch;

fn bootstrap() -> String {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    std::env::var("KAFKA_BOOTSTRAP").expect("KAFKA_BOOTSTRAP=host:port of an Apache Kafka broker")
}

fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{nanos}")
}

#[tokio::test]
#[ignore = "needs Apache Kafka: bench/kafka/start, then KAFKA_BOOTSTRAP=… cargo test -- --ignored"]
async fn produce_and_consume_with_every_compression() -> anyhow::Result<()> {
    let bootstrap = bootstrap();
    let admin = AdminClient::new(ClientConfig::new(&bootstrap)).await?;
    let topic = unique("compress");
    admin.create_topics(&[NewTopic::new(&topic, 3)]).await?;
    let mut sent = 0;
    for compression in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let mut config = ProducerConfig::new(&bootstrap);
        config.compression = compression;
        let producer = RawProducer::new(config).await?;
        let mut deliveries = Vec::new();
        for i in 0..200 {
            let record = ProducerRecord::new(&topic, format!("{compression:?}-{i}"))
                .with_key(format!("key-{}", i % 10));
            deliveries.push(producer.send(record).await?);
        }
        for d in deliveries {
            let meta = d.await?;
            assert!(meta.offset >= 0);
        }
        sent += 200;
        producer.close().await?;
    }
    let mut config = ConsumerConfig::new(&bootstrap, None);
    config.auto_offset_reset = OffsetReset::Earliest;
    let mut consumer = RawConsumer::new(config).await?;
    consumer.assign((0..3).map(|p| TopicPartition::new(&topic, p)).collect());
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < sent && Instant::now() < deadline {
        got.extend(consumer.poll(Duration::from_secs(1)).await?);
    }
    assert_eq!(got.len(), sent);
    // Same key, same partition.
    let mut partition_of: HashMap<Bytes, i32> = HashMap::new();
    for r in &got {
        let key = r.key.clone().unwrap();
        assert_eq!(*partition_of.entry(key).or_insert(r.partition), r.partition);
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs Apache Kafka: bench/kafka/start, then KAFKA_BOOTSTRAP=… cargo test -- --ignored"]
async fn two_consumers_split_partitions_in_a_range_group() -> anyhow::Result<()> {
    two_consumers_split_partitions(Assignor::Range).await
}

#[tokio::test]
#[ignore = "needs Apache Kafka: bench/kafka/start, then KAFKA_BOOTSTRAP=… cargo test -- --ignored"]
async fn two_consumers_split_partitions_in_a_cooperative_sticky_group() -> anyhow::Result<()> {
    two_consumers_split_partitions(Assignor::CooperativeSticky).await
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
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if done(&a.borrow(), &b.borrow()) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let changed = tokio::time::timeout(left, async {
            tokio::select! {
                _ = a.changed() => {}
                _ = b.changed() => {}
            }
        })
        .await;
        assert!(
            changed.is_ok(),
            "{what}: {:?} {:?}",
            *a.borrow(),
            *b.borrow()
        );
    }
}

async fn two_consumers_split_partitions(assignor: Assignor) -> anyhow::Result<()> {
    let bootstrap = bootstrap();
    let admin = AdminClient::new(ClientConfig::new(&bootstrap)).await?;
    let topic = unique("group");
    admin.create_topics(&[NewTopic::new(&topic, 4)]).await?;
    let group = unique("g");
    let make = || {
        let mut c = ConsumerConfig::new(&bootstrap, Some(&group));
        c.auto_offset_reset = OffsetReset::Earliest;
        c.heartbeat_interval = Duration::from_millis(300);
        c.session_timeout = Duration::from_secs(10);
        c.assignors = vec![assignor];
        c
    };
    let (stop_tx, stop) = watch::channel(false);
    let mut a = RawConsumer::new(make()).await?;
    a.subscribe(&[&topic])?;
    let (mut pa, ha) = run_consumer(a, stop.clone());
    let (_, mut idle) = watch::channel((BTreeSet::new(), 0));
    wait_for(&mut pa, &mut idle, "first member gets all", |a, _| {
        a.0.len() == 4
    })
    .await;
    let mut b = RawConsumer::new(make()).await?;
    b.subscribe(&[&topic])?;
    let (mut pb, hb) = run_consumer(b, stop);
    wait_for(&mut pa, &mut pb, "balanced split", |a, b| {
        a.0.len() == 2 && b.0.len() == 2 && a.0.is_disjoint(&b.0)
    })
    .await;
    let producer = RawProducer::new(ProducerConfig::new(&bootstrap)).await?;
    for p in 0..4 {
        producer
            .send(ProducerRecord::new(&topic, "x").with_partition(p))
            .await?
            .await?;
    }
    wait_for(&mut pa, &mut pb, "all records consumed", |a, b| {
        a.1 + b.1 == 4
    })
    .await;
    stop_tx.send_replace(true);
    let a = ha.await??;
    let b = hb.await??;
    let lag = admin.group_lag(&group, &topic).await?;
    assert_eq!(lag.len(), 4, "{lag:?}");
    assert!(lag.iter().all(|l| l.lag == 0), "{lag:?}");
    assert!(admin.list_groups().await?.contains(&group));
    a.close().await?;
    b.close().await?;
    Ok(())
}
