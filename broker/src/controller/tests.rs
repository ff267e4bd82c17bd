//! Three controllers in one process on loopback TCP, each with its own directory.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Mutex as StdMutex;

use tempfile::TempDir;

use super::*;

const WAIT: Duration = Duration::from_secs(30);

/// Waits until `condition` holds, checking whenever time passes; fails after [`WAIT`].
async fn wait_for<F: FnMut() -> bool>(what: &str, mut condition: F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        ticks.tick().await;
    }
}

/// Retries `attempt` until it succeeds; fails after [`WAIT`].
async fn eventually<T, Fut: Future<Output = Result<T, ControllerError>>>(
    what: &str,
    mut attempt: impl FnMut() -> Fut,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut ticks = tokio::time::interval(Duration::from_millis(50));
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "timed out: {what}: {e}"
            ),
        }
        ticks.tick().await;
    }
}

struct Quorum {
    dirs: Vec<TempDir>,
    voters: BTreeMap<RaftNodeId, String>,
    nodes: Arc<StdMutex<Vec<Option<Controller>>>>,
}

fn config(
    node_id: BrokerId,
    dir: &Path,
    voters: &BTreeMap<RaftNodeId, String>,
) -> ControllerConfig {
    let mut config = ControllerConfig::new(node_id, "test-cluster", dir);
    config.voters = voters.clone();
    config.broker_session_timeout = Duration::from_secs(2);
    config.raft_heartbeat_interval = Duration::from_millis(50);
    config.raft_election_timeout = Duration::from_millis(300);
    config.snapshot_after_entries = 5;
    config.request_timeout = Duration::from_secs(2);
    config
}

impl Quorum {
    async fn start() -> Quorum {
        let mut listeners = Vec::new();
        let mut voters = BTreeMap::new();
        for id in 1..=3u64 {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            voters.insert(id, listener.local_addr().unwrap().to_string());
            listeners.push(listener);
        }
        let dirs: Vec<TempDir> = (0..3).map(|_| TempDir::new().unwrap()).collect();
        let mut nodes = Vec::new();
        for (index, listener) in listeners.into_iter().enumerate() {
            let node_id = index as BrokerId + 1;
            nodes.push(Some(
                Controller::start(config(node_id, dirs[index].path(), &voters), listener)
                    .await
                    .unwrap(),
            ));
        }
        Quorum {
            dirs,
            voters,
            nodes: Arc::new(StdMutex::new(nodes)),
        }
    }

    fn running(&self) -> Vec<Controller> {
        self.nodes
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn node(&self, node_id: BrokerId) -> Controller {
        self.nodes.lock().unwrap()[node_id as usize - 1]
            .clone()
            .unwrap()
    }

    /// Waits until one running node leads and every running node agrees on it.
    async fn leader(&self) -> Controller {
        wait_for("the running controllers agree on a leader", || {
            let running = self.running();
            let leaders: Vec<_> = running.iter().filter(|c| c.is_leader()).collect();
            leaders.len() == 1
                && running
                    .iter()
                    .all(|c| c.leader_id() == Some(leaders[0].node_id()))
        })
        .await;
        self.running()
            .into_iter()
            .find(Controller::is_leader)
            .unwrap()
    }

    async fn stop(&self, node_id: BrokerId) {
        let node = self.nodes.lock().unwrap()[node_id as usize - 1]
            .take()
            .unwrap();
        node.shutdown().await;
    }

    async fn restart(&self, node_id: BrokerId) {
        let address = &self.voters[&(node_id as u64)];
        let listener = TcpListener::bind(address).await.unwrap();
        let dir = self.dirs[node_id as usize - 1].path();
        let node = Controller::start(config(node_id, dir, &self.voters), listener)
            .await
            .unwrap();
        self.nodes.lock().unwrap()[node_id as usize - 1] = Some(node);
    }

    /// A broker process: registers through whichever node leads, then heartbeats until
    /// its task is aborted.
    fn spawn_broker(&self, node_id: BrokerId) -> JoinHandle<()> {
        let nodes = self.nodes.clone();
        tokio::spawn(async move {
            let registration = RegisterBroker {
                node_id,
                incarnation_id: Uuid::new_v4(),
                host: "127.0.0.1".into(),
                port: 9090 + node_id as u16,
                rack: None,
                roles: Roles {
                    broker: true,
                    controller: true,
                },
            };
            let mut epoch = None;
            let mut ticks = tokio::time::interval(Duration::from_millis(200));
            loop {
                ticks.tick().await;
                let running: Vec<Controller> =
                    nodes.lock().unwrap().iter().flatten().cloned().collect();
                let Some(leader) = running.into_iter().find(Controller::is_leader) else {
                    continue;
                };
                match epoch {
                    None => epoch = leader.register_broker(registration.clone()).await.ok(),
                    Some(e) => {
                        let _ = leader.heartbeat(node_id, e).await;
                    }
                }
            }
        })
    }
}

fn topic_everywhere(quorum: &Quorum, name: &str, partitions: usize) -> bool {
    quorum.running().iter().all(|c| {
        c.image().topic_by_name(name).is_some_and(|t| {
            t.partitions.len() == partitions && t.partitions.values().all(|p| p.replicas.len() == 3)
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_controllers_elect_replicate_fail_over_catch_up_and_fence() {
    let quorum = Quorum::start().await;
    let leader = quorum.leader().await;

    // A follower refuses requests and names the leader.
    let follower = quorum
        .running()
        .into_iter()
        .find(|c| !c.is_leader())
        .unwrap();
    let refused = follower
        .create_topic("x", 1, 1, None, BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(
        refused,
        ControllerError::NotController {
            leader: Some(leader.node_id())
        }
    );
    assert_eq!(refused.error_code(), 41);

    let brokers: Vec<JoinHandle<()>> = (1..=3).map(|id| quorum.spawn_broker(id)).collect();
    wait_for("three brokers are registered and unfenced", || {
        leader.image().live_brokers().count() == 3
    })
    .await;

    let topic_id = leader
        .create_topic("orders", 6, 3, None, BTreeMap::new())
        .await
        .unwrap();
    wait_for("every node's image has orders with RF=3", || {
        topic_everywhere(&quorum, "orders", 6)
    })
    .await;
    let image = leader.image();
    let leaders: BTreeSet<_> = image
        .topic(topic_id)
        .unwrap()
        .partitions
        .values()
        .map(|p| p.leader)
        .collect();
    assert_eq!(
        leaders.len(),
        3,
        "leadership spreads over the three brokers"
    );
    let duplicate = leader
        .create_topic("orders", 1, 1, None, BTreeMap::new())
        .await
        .unwrap_err();
    assert_eq!(duplicate.error_code(), 36);

    // The leader goes away: another takes over with the same image.
    let old = leader.node_id();
    let old_last_index = leader
        .inner
        .raft
        .metrics()
        .borrow()
        .last_log_index
        .unwrap_or(0);
    quorum.stop(old).await;
    assert!(
        !leader.is_leader(),
        "a stopped controller does not claim to lead"
    );
    let leader = quorum.leader().await;
    assert_ne!(leader.node_id(), old);
    assert_eq!(
        leader.image().topic_by_name("orders").map(|t| t.topic_id),
        Some(topic_id)
    );
    let payments = eventually("create payments on the new leader", || {
        leader.create_topic("payments", 2, 3, None, BTreeMap::new())
    })
    .await;
    // Enough further changes that the leader snapshots and drops the entries the stopped
    // node lacks: it can only catch up from a snapshot.
    for i in 0..12 {
        leader
            .create_topic(&format!("extra-{i}"), 1, 2, None, BTreeMap::new())
            .await
            .unwrap();
    }
    wait_for(
        "the leader has purged log entries past what the stopped node has",
        || {
            let metrics = leader.inner.raft.metrics();
            let purged = metrics.borrow().purged.map(|p| p.index);
            purged.is_some_and(|p| p > old_last_index)
        },
    )
    .await;

    // The old leader restarts from its directory and catches up, including what it missed.
    quorum.restart(old).await;
    wait_for("the restarted node has caught up", || {
        let image = quorum.node(old).image();
        image.topic(payments).is_some()
            && image.topic_by_name("extra-11").is_some()
            && topic_everywhere(&quorum, "orders", 6)
    })
    .await;

    // A broker stops heartbeating: it is fenced and its partitions move within the ISR.
    let leader = quorum.leader().await;
    let victim = leader
        .image()
        .partition(topic_id, 0)
        .unwrap()
        .leader
        .unwrap();
    brokers[victim as usize - 1].abort();
    wait_for("the silent broker is fenced and leads nothing", || {
        let image = leader.image();
        image.broker(victim).is_some_and(|b| b.fenced) && image.partitions_led_by(victim).is_empty()
    })
    .await;
    let image = leader.image();
    for p in image.topic(topic_id).unwrap().partitions.values() {
        let new_leader = p.leader.unwrap();
        assert!(
            p.isr.contains(&new_leader) && image.is_live(new_leader),
            "{p:?}"
        );
        assert!(
            !p.isr.contains(&victim),
            "the fenced broker left the ISR: {p:?}"
        );
    }

    for broker in brokers {
        broker.abort();
    }
    for node in quorum.running() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_partition_and_producer_ids_go_through_the_leader() {
    let quorum = Quorum::start().await;
    let leader = quorum.leader().await;
    let brokers: Vec<JoinHandle<()>> = (1..=3).map(|id| quorum.spawn_broker(id)).collect();
    wait_for("three brokers are live", || {
        leader.image().live_brokers().count() == 3
    })
    .await;
    let topic_id = leader
        .create_topic("t", 1, 3, Some(vec![vec![2, 3, 1]]), BTreeMap::new())
        .await
        .unwrap();
    let p = leader.image().partition(topic_id, 0).unwrap().clone();
    assert_eq!(
        p.leader,
        Some(2),
        "the explicit assignment's first replica leads"
    );

    let shrunk = leader
        .alter_partition(
            2,
            topic_id,
            0,
            p.leader_epoch,
            p.partition_epoch,
            vec![2, 3],
        )
        .await
        .unwrap();
    assert_eq!(shrunk.isr, vec![2, 3]);
    let stale = leader
        .alter_partition(2, topic_id, 0, p.leader_epoch, p.partition_epoch, vec![2])
        .await;
    assert_eq!(
        stale.unwrap_err().error_code(),
        95,
        "INVALID_UPDATE_VERSION"
    );
    let fenced = leader
        .alter_partition(
            2,
            topic_id,
            0,
            p.leader_epoch - 1,
            shrunk.partition_epoch,
            vec![2],
        )
        .await;
    assert_eq!(fenced.unwrap_err().error_code(), 74, "FENCED_LEADER_EPOCH");

    let first = leader.allocate_producer_ids(1).await.unwrap();
    let second = leader.allocate_producer_ids(2).await.unwrap();
    assert_eq!((first.start, second.start), (0, PRODUCER_ID_BLOCK_SIZE));

    for broker in brokers {
        broker.abort();
    }
    for node in quorum.running() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_voter_is_its_own_controller_and_keeps_its_metadata_across_a_restart() {
    let dir = TempDir::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let voters = BTreeMap::from([(1, address.clone())]);
    let node = Controller::start(config(1, dir.path(), &voters), listener)
        .await
        .unwrap();
    wait_for("the single voter leads", || node.is_leader()).await;
    let registration = RegisterBroker {
        node_id: 1,
        incarnation_id: Uuid::new_v4(),
        host: "127.0.0.1".into(),
        port: 9092,
        rack: None,
        roles: Roles {
            broker: true,
            controller: true,
        },
    };
    let epoch = node.register_broker(registration).await.unwrap();
    assert_eq!(
        node.heartbeat(1, epoch).await,
        Ok(HeartbeatAnswer { fenced: false })
    );
    assert_eq!(
        node.heartbeat(1, epoch + 1).await.unwrap_err().error_code(),
        77,
        "STALE_BROKER_EPOCH"
    );
    let topic_id = node
        .create_topic("solo", 3, 1, None, BTreeMap::new())
        .await
        .unwrap();
    node.create_partitions("solo", 5, None).await.unwrap();
    assert_eq!(
        node.create_partitions("solo", 4, None)
            .await
            .unwrap_err()
            .error_code(),
        37
    );
    node.shutdown().await;

    let listener = TcpListener::bind(&address).await.unwrap();
    let node = Controller::start(config(1, dir.path(), &voters), listener)
        .await
        .unwrap();
    wait_for("the restarted voter has replayed its log", || {
        node.image()
            .topic(topic_id)
            .is_some_and(|t| t.partitions.len() == 5)
    })
    .await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_majority_commits_nothing() {
    let quorum = Quorum::start().await;
    let leader = quorum.leader().await;
    let brokers: Vec<JoinHandle<()>> = (1..=3).map(|id| quorum.spawn_broker(id)).collect();
    wait_for("three brokers are live", || {
        leader.image().live_brokers().count() == 3
    })
    .await;
    for broker in brokers {
        broker.abort();
    }
    for node in quorum.running() {
        if node.node_id() != leader.node_id() {
            quorum.stop(node.node_id()).await;
        }
    }
    let refused = leader
        .create_topic("lonely", 1, 1, None, BTreeMap::new())
        .await;
    assert!(
        matches!(refused, Err(ControllerError::Raft(_))),
        "{refused:?}"
    );
    assert_eq!(
        refused.unwrap_err().error_code(),
        7,
        "REQUEST_TIMED_OUT, which clients retry"
    );
    assert!(
        leader.image().topic_by_name("lonely").is_none(),
        "nothing uncommitted is applied"
    );
    leader.shutdown().await;
}

#[tokio::test]
async fn a_directory_of_another_cluster_or_node_is_refused() {
    let dir = TempDir::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let voters = BTreeMap::from([(1, listener.local_addr().unwrap().to_string())]);
    let node = Controller::start(config(1, dir.path(), &voters), listener)
        .await
        .unwrap();
    node.shutdown().await;

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut other = config(1, dir.path(), &voters);
    other.cluster_id = "another".into();
    let error = Controller::start(other, listener)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("belongs to cluster test-cluster node 1, not cluster another node 1"),
        "{error}"
    );

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = Controller::start(config(2, dir.path(), &voters), listener)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("node 2 is not in controller.quorum.voters"),
        "{error}"
    );
}
