//! Two brokers replicating a partition over their Kafka listeners: the follower's fetcher
//! copies the leader's log, `acks=all` waits for it, and after a leader change the old
//! leader cuts its divergent tail and takes the new leader's records.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use super::{AppendEntry, PartitionState};
use crate::broker::{Broker, BrokerConfig};
use crate::log::testutil::{batch_of, decode};
use crate::log::{FetchIsolation, PartitionLog};
use crate::topics::{TopicConfig, TopicDefaults};

struct Node {
    _dir: tempfile::TempDir,
    broker: Arc<Broker>,
    addr: (String, u16),
}

async fn node(node_id: i32, shutdown: watch::Receiver<bool>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = BrokerConfig {
        node_id,
        cluster_id: "replication-test".into(),
        default_replication_factor: 1,
        min_insync_replicas: 1,
        replica_lag_time_max_ms: 30_000,
        data_dir: dir.path().to_path_buf(),
        advertised_addr: format!("127.0.0.1:{port}"),
        auto_create_topics: false,
        num_partitions: 1,
        max_broker_partitions: 1000,
        topic_defaults: TopicDefaults::default(),
        flush_interval_ms: 1000,
        acks_all_fsync: false,
        cleaner_interval_ms: 60_000,
        socket_request_max_bytes: 100 << 20,
        groups: Default::default(),
        log_dir_reserve_bytes: 0,
        queued_max_response_bytes: 64 << 20,
        connection_queued_max_response_bytes: 16 << 20,
        max_connections: 100,
        max_connections_per_ip: 100,
        connections_max_idle_ms: 600_000,
    };
    let broker = tokio::task::spawn_blocking(move || Broker::open(config))
        .await
        .unwrap()
        .unwrap();
    let broker = Arc::new(broker);
    broker
        .topics()
        .create_topic("t", 1, TopicConfig::default())
        .unwrap();
    broker.replicas().set_managed();
    tokio::spawn(crate::kafka::serve(Arc::clone(&broker), listener, shutdown));
    Node {
        _dir: dir,
        broker,
        addr: ("127.0.0.1".into(), port),
    }
}

impl Node {
    fn log(&self) -> Arc<PartitionLog> {
        self.broker
            .topics()
            .topic("t")
            .unwrap()
            .partition(0)
            .unwrap()
    }

    fn apply(&self, leader: i32, epoch: i32, isr: &[i32], leader_addr: Option<&Node>) {
        let topic = self.broker.topics().topic("t").unwrap();
        self.broker.replicas().apply_partition_state(
            &topic,
            0,
            self.log(),
            PartitionState {
                leader: Some(leader),
                leader_epoch: epoch,
                partition_epoch: epoch,
                replicas: vec![1, 2],
                isr: isr.to_vec(),
            },
            leader_addr.map(|n| n.addr.clone()),
        );
    }

    /// Appends `count` records as the leader; with `acks_all`, waits until committed.
    async fn produce(&self, seed: u32, count: usize, acks_all: bool) -> Result<(), String> {
        let replicas = self.broker.replicas();
        let topics = self.broker.topics();
        let topic = topics.topic("t").unwrap();
        let entry = AppendEntry {
            partition: replicas.partition(topics, &topic, 0).unwrap(),
            records: Some(Bytes::from(batch_of(seed, count, 0, 10))),
        };
        let appended = replicas.append_records(topics, vec![entry], acks_all).await;
        let outcomes = if acks_all {
            replicas
                .complete_acks_all(appended, Duration::from_secs(20))
                .await
        } else {
            appended.into_iter().map(|a| a.outcome()).collect()
        };
        outcomes[0]
            .result
            .as_ref()
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// Keys of the records in the log, to its end.
    fn keys(&self) -> Vec<String> {
        let log = self.log();
        let r = log
            .read_to(0, 1 << 20, true, FetchIsolation::LogEnd)
            .unwrap();
        decode(&r.records)
            .into_iter()
            .map(|(_, k, _, _)| String::from_utf8(k.unwrap().to_vec()).unwrap())
            .collect()
    }
}

/// Waits (bounded) until `cond` holds.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_copies_the_leader_and_truncates_its_divergent_tail_after_a_leader_change() {
    let (_stop, shutdown) = watch::channel(false);
    let one = node(1, shutdown.clone()).await;
    let two = node(2, shutdown).await;
    one.apply(1, 1, &[1, 2], None);
    two.apply(1, 1, &[1, 2], Some(&one));

    // acks=all is answered once the follower has the records.
    one.produce(1, 3, true).await.unwrap();
    assert!(
        two.log().log_end_offset() >= 3,
        "acks=all waited for the follower"
    );
    assert_eq!(one.log().high_watermark(), 3);
    eventually("the follower learns the high watermark", || {
        two.log().high_watermark() == 3
    })
    .await;
    assert_eq!(two.keys(), one.keys());

    // Node 2 takes over in epoch 2 while node 1 still thinks it leads: node 1 writes a
    // tail nobody copies, node 2 writes its own.
    two.apply(2, 2, &[2], Some(&two));
    one.produce(2, 2, false).await.unwrap();
    assert_eq!(one.log().log_end_offset(), 5);
    two.produce(3, 1, true).await.unwrap();
    assert_eq!(two.log().log_end_offset(), 4);

    // Node 1 learns of epoch 2: it cuts its tail at the end of epoch 1 and copies node 2.
    one.apply(2, 2, &[2], Some(&two));
    eventually("the old leader truncates and catches up", || {
        one.log().log_end_offset() == 4 && one.log().latest_epoch() == Some(2)
    })
    .await;
    assert_eq!(one.keys(), two.keys());
    assert_eq!(one.keys()[3], "k3-0");
    let refused = one.produce(4, 1, false).await;
    assert!(refused.is_err(), "a follower refuses produce");
}
