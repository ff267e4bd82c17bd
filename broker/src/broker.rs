//! [`Broker`]: the single Kafka broker that `strand serve` runs: the cluster's topics and
//! partition logs, the Kafka listener, and the background flush and cleaner tasks.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::controller::{Controller, MetadataImage};
use crate::group::{GroupConfig, GroupCoordinator};
use crate::log::{LogDir, PartitionLog};
use crate::producer_id_manager::ProducerIdManager;
use crate::replica::ReplicaManager;
use crate::topics::{CONSUMER_OFFSETS, SCHEMAS, TopicDefaults, TopicStore, TopicStoreError};

/// Settings of the broker (a subset of Kafka's broker configs).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `node.id`: the broker id clients see in Metadata.
    pub node_id: i32,
    /// The cluster id (from the node's `meta.properties`).
    pub cluster_id: String,
    /// `default.replication.factor`: replicas of a topic created without one (and of
    /// auto-created topics).
    pub default_replication_factor: i32,
    /// `min.insync.replicas`: the default of the topic config of that name.
    pub min_insync_replicas: i32,
    /// `replica.lag.time.max.ms`: a follower that has not caught up for this long leaves
    /// the ISR.
    pub replica_lag_time_max_ms: u64,
    /// Where topics, partition logs and metadata live.
    pub data_dir: PathBuf,
    /// `host:port` clients are told to connect to.
    pub advertised_addr: String,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of an auto-created topic.
    pub num_partitions: i32,
    /// `max.broker.partitions` (KIP-578): auto-creation stops once the broker holds this
    /// many partitions, answering `POLICY_VIOLATION`.
    pub max_broker_partitions: usize,
    /// Defaults of per-topic configs (`log.*`, `message.max.bytes`).
    pub topic_defaults: TopicDefaults,
    /// How often every log is fsynced in the background, in milliseconds.
    pub flush_interval_ms: u64,
    /// Whether acks=all is answered only after the batch is fsynced (else from the page
    /// cache, as a single Kafka broker with one replica answers it).
    pub acks_all_fsync: bool,
    /// How often retention and compaction run, in milliseconds.
    pub cleaner_interval_ms: u64,
    /// `socket.request.max.bytes`: larger request frames close the connection unread.
    pub socket_request_max_bytes: u32,
    /// The consumer-group coordinator's settings (`group.*`, `offsets.*`).
    pub groups: GroupConfig,
    /// Bytes of free space kept for the internal topics: appends to other topics are
    /// refused with KAFKA_STORAGE_ERROR once the data directory has less (0: none).
    pub log_dir_reserve_bytes: u64,
    /// `queued.max.response.bytes`: bytes of Fetch responses built but not yet sent that
    /// the whole process may hold; a fetch reads only what this budget grants it.
    pub queued_max_response_bytes: usize,
    /// `connection.queued.max.response.bytes`: a connection stops reading requests while
    /// its built-but-unsent responses exceed this many bytes.
    pub connection_queued_max_response_bytes: usize,
    /// `max.connections`: Kafka connections open at once; more are closed when accepted.
    pub max_connections: usize,
    /// `max.connections.per.ip`: Kafka connections open at once from one address.
    pub max_connections_per_ip: usize,
    /// `connections.max.idle.ms`: a connection that sends no request, or takes no byte of
    /// its responses, for this long is closed.
    pub connections_max_idle_ms: u64,
}

impl BrokerConfig {
    /// The advertised host and port.
    pub fn advertised(&self) -> (&str, i32) {
        match self.advertised_addr.rsplit_once(':') {
            Some((host, port)) => (
                host.trim_start_matches('[').trim_end_matches(']'),
                port.parse().unwrap_or(9092),
            ),
            None => (&self.advertised_addr, 9092),
        }
    }
}

/// The broker: topics and their logs, served over the Kafka protocol.
#[derive(Debug)]
pub struct Broker {
    config: BrokerConfig,
    topics: TopicStore,
    replicas: ReplicaManager,
    groups: GroupCoordinator,
    /// The controller quorum member of this node, once `strand serve` started it; without
    /// one (unit tests) the broker answers as a cluster of itself alone.
    controller: OnceLock<Controller>,
    /// The block of producer ids the controller gave this broker.
    producer_ids: ProducerIdManager,
    /// The last metadata image the publisher applied to this node's topics and replicas
    /// (none before the first): what handlers wait on to see their own changes.
    published: watch::Sender<Option<Arc<MetadataImage>>>,
}

impl Broker {
    /// Opens the data directory (blocking: loads every topic and recovers its logs, and
    /// replays `__consumer_offsets`); runs inside a Tokio runtime context (e.g.
    /// `spawn_blocking`), where the group coordinator starts its tasks.
    pub fn open(config: BrokerConfig) -> Result<Broker, TopicStoreError> {
        let log_dir = Arc::new(LogDir::new(&config.data_dir, config.log_dir_reserve_bytes));
        let topics = TopicStore::open_in(
            log_dir,
            config.cluster_id.clone(),
            config.topic_defaults.clone(),
            config.num_partitions,
        )?;
        let offsets = internal_log(&topics, CONSUMER_OFFSETS);
        let path = offsets.dir().to_path_buf();
        let groups = GroupCoordinator::open_log(offsets, config.groups.clone()).map_err(|e| {
            TopicStoreError::Corrupt {
                path,
                reason: e.to_string(),
            }
        })?;
        let replicas = ReplicaManager::new(config.node_id, config.acks_all_fsync);
        replicas.set_min_insync_replicas(config.min_insync_replicas);
        Ok(Broker {
            config,
            topics,
            replicas,
            groups,
            controller: OnceLock::new(),
            producer_ids: ProducerIdManager::default(),
            published: watch::Sender::new(None),
        })
    }

    /// Gives the broker its node's controller; the first one given stays.
    pub fn attach_controller(&self, controller: Controller) {
        let _ = self.controller.set(controller);
    }

    /// A producer id never given before in the cluster: from this broker's block of the
    /// controller's, or without a controller (unit tests) from the node's own allocator.
    pub(crate) async fn allocate_producer_id(self: &Arc<Self>) -> Result<i64, AllocateError> {
        match self.controller() {
            Some(controller) => {
                let floor = self.topics.producer_ids().reserved_end();
                Ok(self
                    .producer_ids
                    .next(controller, self.config.node_id, floor)
                    .await?)
            }
            None => {
                let broker = self.clone();
                tokio::task::spawn_blocking(move || broker.topics.producer_ids().allocate())
                    .await
                    .map_err(|e| AllocateError::Internal(e.to_string()))?
                    .map_err(AllocateError::Local)
            }
        }
    }

    /// Records that the publisher applied `image` to this node.
    pub(crate) fn publish(&self, image: Arc<MetadataImage>) {
        self.published.send_replace(Some(image));
    }

    /// A receiver of the images the publisher applied to this node.
    pub fn published(&self) -> watch::Receiver<Option<Arc<MetadataImage>>> {
        self.published.subscribe()
    }

    /// Waits until this node applied an image in which `done` holds, at most `timeout`;
    /// returns that image, or `None` when the wait timed out.
    pub(crate) async fn wait_published(
        &self,
        timeout: Duration,
        done: impl Fn(&MetadataImage) -> bool,
    ) -> Option<Arc<MetadataImage>> {
        let mut published = self.published.subscribe();
        let found = tokio::time::timeout(
            timeout,
            published.wait_for(|image| image.as_ref().is_some_and(|i| done(i))),
        )
        .await;
        match found {
            Ok(Ok(image)) => image.clone(),
            _ => None,
        }
    }

    /// This node's controller quorum member, once attached.
    pub fn controller(&self) -> Option<&Controller> {
        self.controller.get()
    }

    /// The consumer-group coordinator.
    pub fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }

    /// The broker's settings.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// Topics, partitions and configs.
    pub fn topics(&self) -> &TopicStore {
        &self.topics
    }

    /// This broker's partitions as replicas: appends, the high watermark, reads.
    pub fn replicas(&self) -> &ReplicaManager {
        &self.replicas
    }

    /// What is wrong with the broker's storage (a log dir short of space, partitions whose
    /// writes fail or that went offline), one line each; empty when all is well.
    pub fn storage_problems(&self) -> Vec<String> {
        self.topics.storage().problems()
    }

    /// This broker's node id (`node.id`).
    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// The log of `__consumer_offsets` (one partition, compacted).
    pub fn consumer_offsets_log(&self) -> Arc<PartitionLog> {
        self.internal_log(CONSUMER_OFFSETS)
    }

    /// The log of `_schemas` (one partition, compacted), the schema registry's store.
    pub fn schemas_log(&self) -> Arc<PartitionLog> {
        self.internal_log(SCHEMAS)
    }

    fn internal_log(&self, name: &str) -> Arc<PartitionLog> {
        internal_log(&self.topics, name)
    }

    /// Runs the periodic flush and cleaner until `shutdown` turns true.
    pub async fn run_background(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut flush =
            tokio::time::interval(Duration::from_millis(self.config.flush_interval_ms.max(1)));
        let mut clean = tokio::time::interval(Duration::from_millis(
            self.config.cleaner_interval_ms.max(1),
        ));
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        clean.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = flush.tick() => {
                    let b = self.clone();
                    let _ = tokio::task::spawn_blocking(move || b.flush_all()).await;
                }
                _ = clean.tick() => {
                    let b = self.clone();
                    let _ = tokio::task::spawn_blocking(move || b.clean_all()).await;
                }
                _ = crate::shutdown::stopped(&mut shutdown) => return,
            }
        }
    }

    /// fsyncs every partition log (blocking), after checking that its active segment is
    /// still the file at its path (a log whose file vanished goes offline, loudly, once).
    pub fn flush_all(&self) {
        // Also how a full disk is noticed (and logged) when nobody is writing, and how
        // its recovery is noticed when only internal topics are.
        self.topics.storage().refresh();
        for topic in self.topics.topics() {
            for (p, log) in topic.partitions() {
                if log.offline_reason().is_some() || log.check_files().is_err() {
                    continue;
                }
                if let Err(e) = log.flush() {
                    tracing::error!(topic = topic.name(), partition = p, "flush failed: {e}");
                }
            }
        }
    }

    /// Closes every partition log (blocking): fsyncs it and writes the clean-shutdown
    /// snapshot that lets the next start skip recovery work. Several logs at a time, since
    /// each close waits on the disk; appends to a closed log fail.
    pub fn close_all(&self) {
        let logs: Vec<(String, i32, Arc<PartitionLog>)> = self
            .topics
            .topics()
            .iter()
            .flat_map(|t| {
                let name = t.name().to_string();
                t.partitions()
                    .into_iter()
                    .map(move |(p, log)| (name.clone(), p, log))
            })
            .collect();
        crate::parallel::map_bounded(&logs, CLOSE_THREADS, |(topic, p, log)| {
            if let Err(e) = log.close() {
                tracing::error!(topic, partition = p, "closing the log failed: {e}");
            }
        });
    }

    /// Applies retention and compaction to every partition log (blocking).
    pub fn clean_all(&self) {
        let now = crate::shutdown::now_ms();
        for topic in self.topics.topics() {
            for (p, log) in topic.partitions() {
                if let Err(e) = log.apply_retention(now) {
                    tracing::error!(topic = topic.name(), partition = p, "retention failed: {e}");
                }
                if let Err(e) = log.compact(now) {
                    tracing::error!(
                        topic = topic.name(),
                        partition = p,
                        "compaction failed: {e}"
                    );
                }
            }
        }
    }
}

/// Why no producer id could be given.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AllocateError {
    /// The controller could not give a block (no leader, no majority).
    #[error("no producer id block from the controller: {0}")]
    Controller(#[from] crate::controller::ControllerError),
    /// The node's own allocator failed.
    #[error(transparent)]
    Local(TopicStoreError),
    /// The allocating task failed.
    #[error("allocating a producer id: {0}")]
    Internal(String),
}

/// Threads closing partition logs at once at shutdown.
const CLOSE_THREADS: usize = 16;

fn internal_log(store: &TopicStore, name: &str) -> Arc<PartitionLog> {
    // Created by `TopicStore::open` and never deletable, so always present.
    match store.topic(name).and_then(|t| t.partition(0)) {
        Some(log) => log,
        None => unreachable!("internal topic {name} is created at open and cannot be deleted"),
    }
}
