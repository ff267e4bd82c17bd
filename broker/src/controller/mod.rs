//! The controller quorum: the cluster's metadata (broker registrations and fencing, topics
//! and their configs, each partition's replicas, leader, leader epoch and ISR, producer-id
//! blocks) as a log of [`MetadataRecord`]s replicated by Raft (openraft) among the voters
//! of `controller.quorum.voters`, which every node applies, in order, into a
//! [`MetadataImage`], as Kafka's KRaft does.
//!
//! [`Controller`] runs one voter: [`store`] keeps its log, vote and image snapshots on
//! disk, [`network`] carries the Raft RPCs over the controller listener. The broker layer
//! subscribes to the image ([`Controller::subscribe`]) and asks the active controller (the
//! Raft leader) for changes: broker registration and heartbeats, topic and partition
//! creation, ISR changes (AlterPartition), leader elections, producer-id blocks. A request
//! made on a follower answers [`ControllerError::NotController`] with the leader it knows;
//! [`Controller::request`] instead forwards it to the active controller over the
//! controller listener and relays the answer, which is how the broker layer asks.
//! The active controller also fences brokers whose heartbeats stop for
//! `broker.session.timeout.ms` and moves their partitions' leadership within the ISR.

mod error;
mod image;
pub mod network;
mod records;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, Raft, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use error::ControllerError;
pub use image::{
    ApplyError, BrokerState, ElectionType, MetadataImage, PartitionState, TopicImage,
    UNCLEAN_LEADER_ELECTION,
};
pub use network::{VotersError, parse_voters};
pub use records::{
    BrokerId, LeaderChange, MetadataRecord, PartitionChange, PartitionRecord, RegisterBroker, Roles,
};

use network::{Forwarder, Identity, Network, Peer};
use store::{Applied, Proposal, RaftNodeId, StoreError, TypeConfig};

/// How long a new leader may take to apply the log before it decides anything.
const DECISION_WAIT: Duration = Duration::from_secs(5);

/// How many producer ids a block holds (Kafka's `ProducerIdsBlock` size).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// How a controller voter runs.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// This node's id (`node.id`); must be one of the voters.
    pub node_id: BrokerId,
    /// The cluster id every voter shares; a peer of another cluster is refused.
    pub cluster_id: String,
    /// The node's data directory; the controller keeps its files in `controller/` under it.
    pub data_dir: PathBuf,
    /// The voters: node id → controller listener address (`controller.quorum.voters`).
    pub voters: BTreeMap<RaftNodeId, String>,
    /// How long a broker may go without heartbeating before it is fenced
    /// (`broker.session.timeout.ms`, 9 s by default like Kafka).
    pub broker_session_timeout: Duration,
    /// The Raft leader's heartbeat interval.
    pub raft_heartbeat_interval: Duration,
    /// The Raft election timeout; each election waits a random time between this and twice
    /// this (`controller.quorum.election.timeout.ms`, 1 s by default like Kafka).
    pub raft_election_timeout: Duration,
    /// How many log entries are applied between two snapshots of the image; the entries
    /// a snapshot covers are then dropped from the log, and a voter that lags behind them
    /// is sent the snapshot.
    pub snapshot_after_entries: u64,
    /// How long a metadata change may take to be committed by a majority before the
    /// request fails with a retriable error (a leader cut off from the majority never
    /// commits).
    pub request_timeout: Duration,
}

impl ControllerConfig {
    /// A configuration with Kafka's default timeouts.
    pub fn new(
        node_id: BrokerId,
        cluster_id: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            node_id,
            cluster_id: cluster_id.into(),
            data_dir: data_dir.into(),
            voters: BTreeMap::new(),
            broker_session_timeout: Duration::from_secs(9),
            raft_heartbeat_interval: Duration::from_millis(200),
            raft_election_timeout: Duration::from_secs(1),
            snapshot_after_entries: 1000,
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// Why a controller did not start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerStartError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration contradicts itself.
    #[error("{0}")]
    Config(String),
    /// The data directory belongs to another cluster or node.
    #[error(
        "{path}: this directory belongs to cluster {found_cluster} node {found_node}, not cluster {cluster} node {node}"
    )]
    WrongDirectory {
        /// The identity file.
        path: PathBuf,
        /// The cluster id found.
        found_cluster: String,
        /// The node id found.
        found_node: BrokerId,
        /// The configured cluster id.
        cluster: String,
        /// The configured node id.
        node: BrokerId,
    },
    /// openraft refused to start.
    #[error("starting Raft: {0}")]
    Raft(String),
}

/// What a broker heartbeat learns (Kafka's BrokerHeartbeat response, in part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatAnswer {
    /// Whether the broker is (still) fenced.
    pub fenced: bool,
}

/// A request to the active controller, as [`Controller::request`] carries it (locally,
/// or forwarded over the controller listener).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// Kafka's BrokerRegistration.
    RegisterBroker(RegisterBroker),
    /// Kafka's BrokerHeartbeat.
    Heartbeat {
        /// The broker.
        node_id: BrokerId,
        /// Its broker epoch, from its registration.
        broker_epoch: i64,
    },
    /// CreateTopics, for one topic.
    CreateTopic {
        /// The topic's name.
        name: String,
        /// How many partitions (ignored with an assignment).
        partitions: i32,
        /// How many replicas each (ignored with an assignment).
        replication_factor: i32,
        /// An explicit replica list per partition.
        assignment: Option<Vec<Vec<BrokerId>>>,
        /// Config overrides.
        configs: BTreeMap<String, String>,
        /// The id to give the topic: a topic of a data directory older than clusters keeps
        /// its own when it is bootstrapped into the metadata log. A fresh one when absent.
        #[serde(default)]
        topic_id: Option<Uuid>,
    },
    /// CreatePartitions, for one topic.
    CreatePartitions {
        /// The topic's name.
        name: String,
        /// The new partition count.
        total: i32,
        /// An explicit replica list per new partition.
        assignment: Option<Vec<Vec<BrokerId>>>,
    },
    /// DeleteTopics, for one topic.
    DeleteTopic {
        /// The topic's name.
        name: String,
    },
    /// A topic's config changes: `Some` sets, `None` removes an override.
    AlterConfigs {
        /// The topic's name.
        name: String,
        /// The changes.
        changes: BTreeMap<String, Option<String>>,
    },
    /// Kafka's AllocateProducerIds.
    AllocateProducerIds {
        /// The broker asking.
        node_id: BrokerId,
        /// The block starts at this id or later: the ids the node handed out before it
        /// was part of a cluster are never given again.
        #[serde(default)]
        floor: i64,
    },
}

/// The active controller's answer to a [`ControllerRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerReply {
    /// A registration's broker epoch.
    BrokerEpoch(i64),
    /// A heartbeat's answer.
    Heartbeat(HeartbeatAnswer),
    /// A created or deleted topic's id.
    TopicId(Uuid),
    /// Done.
    Done,
    /// A block of producer ids, `[first, first + size)`.
    ProducerIds {
        /// The block's first id.
        first: i64,
        /// How many ids.
        size: i64,
    },
}

/// One controller voter. Cheap to clone; every clone is the same node.
#[derive(Clone)]
pub struct Controller {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("node_id", &self.inner.node_id)
            .field("leader", &self.leader_id())
            .finish_non_exhaustive()
    }
}

struct Inner {
    node_id: BrokerId,
    raft: Raft<TypeConfig>,
    images: watch::Receiver<Arc<MetadataImage>>,
    /// When each broker last heartbeated, as seen by this node while it is the active
    /// controller (KRaft keeps this in memory too; only fencing goes through the log).
    heartbeats: Mutex<HashMap<BrokerId, Instant>>,
    /// One decision at a time: a decision reads the image, then proposes records computed
    /// from it.
    decide: tokio::sync::Mutex<()>,
    session_timeout: Duration,
    request_timeout: Duration,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Set by [`Controller::shutdown`]: openraft's metrics keep their last values after.
    stopped: AtomicBool,
    /// Who this node is to its peers, and the voters' addresses.
    identity: Identity,
    /// Idle connections to the active controller for forwarded requests.
    forwarders: Mutex<Vec<Peer>>,
    /// Whether this node had no metadata log on disk when it started.
    started_empty: bool,
}

/// The controller's identity file, like Kafka's `meta.properties`.
#[derive(Serialize, Deserialize)]
struct DirectoryIdentity {
    cluster_id: String,
    node_id: BrokerId,
}

fn check_directory(
    dir: &Path,
    cluster_id: &str,
    node_id: BrokerId,
) -> Result<(), ControllerStartError> {
    let path = dir.join("meta.json");
    let io_error = |source: io::Error| StoreError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let found: DirectoryIdentity =
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if found.cluster_id != cluster_id || found.node_id != node_id {
                return Err(ControllerStartError::WrongDirectory {
                    path,
                    found_cluster: found.cluster_id,
                    found_node: found.node_id,
                    cluster: cluster_id.to_string(),
                    node: node_id,
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(io_error)?;
            let identity = DirectoryIdentity {
                cluster_id: cluster_id.to_string(),
                node_id,
            };
            let bytes = serde_json::to_vec(&identity).map_err(|e| io_error(io::Error::other(e)))?;
            std::fs::write(&path, bytes).map_err(io_error)?;
            Ok(())
        }
        Err(e) => Err(io_error(e).into()),
    }
}

impl Controller {
    /// Starts this voter: opens `<data_dir>/controller/`, serves the Raft RPCs on
    /// `listener` (the controller listener, already bound) and, when the quorum is new
    /// and this is its lowest node id, initialises it with the voters as members. The
    /// other voters wait to be contacted, so every node of a new cluster can start the
    /// same way.
    pub async fn start(
        config: ControllerConfig,
        listener: TcpListener,
    ) -> Result<Self, ControllerStartError> {
        let raft_id = RaftNodeId::try_from(config.node_id).map_err(|_| {
            ControllerStartError::Config(format!("node id {} is negative", config.node_id))
        })?;
        if !config.voters.contains_key(&raft_id) {
            return Err(ControllerStartError::Config(format!(
                "node {} is not in controller.quorum.voters ({})",
                config.node_id,
                config
                    .voters
                    .iter()
                    .map(|(id, a)| format!("{id}@{a}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )));
        }
        let dir = config.data_dir.join("controller");
        let started_empty = std::fs::read_dir(&dir).map_or(true, |mut d| d.next().is_none());
        check_directory(&dir, &config.cluster_id, config.node_id)?;
        let (log, machine) = store::open(&dir)?;
        let images = machine.subscribe();
        let election = config.raft_election_timeout.as_millis() as u64;
        let raft_config = Config {
            cluster_name: config.cluster_id.clone(),
            heartbeat_interval: config.raft_heartbeat_interval.as_millis() as u64,
            election_timeout_min: election,
            election_timeout_max: election * 2,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_after_entries.max(1)),
            max_in_snapshot_log_to_keep: config.snapshot_after_entries.min(100),
            ..Config::default()
        }
        .validate()
        .map_err(|e| ControllerStartError::Config(e.to_string()))?;
        let identity = Identity {
            cluster_id: config.cluster_id.clone(),
            node_id: raft_id,
            voters: config.voters.clone(),
        };
        let raft = Raft::new(
            raft_id,
            Arc::new(raft_config),
            Network::new(identity.clone()),
            log,
            machine,
        )
        .await
        .map_err(|e| ControllerStartError::Raft(e.to_string()))?;
        // Forwarded requests reach the controller once it exists; before, the sender is told
        // to retry.
        let this: Arc<OnceLock<Weak<Inner>>> = Arc::new(OnceLock::new());
        let forward: Forwarder = {
            let this = this.clone();
            Arc::new(move |request| {
                let inner = this.get().and_then(Weak::upgrade);
                Box::pin(async move {
                    match inner {
                        Some(inner) => Controller { inner }.execute(request).await,
                        None => Err(ControllerError::NotController { leader: None }),
                    }
                })
            })
        };
        let server = tokio::spawn(network::serve(
            listener,
            raft.clone(),
            identity.clone(),
            forward,
        ));

        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| ControllerStartError::Raft(e.to_string()))?;
        let lowest = config.voters.keys().next().copied();
        if !initialized && lowest == Some(raft_id) {
            let members: BTreeMap<RaftNodeId, BasicNode> = config
                .voters
                .iter()
                .map(|(id, address)| (*id, BasicNode::new(address)))
                .collect();
            if let Err(e) = raft.initialize(members).await {
                tracing::warn!(error = %e, "controller quorum: initialisation refused");
            } else {
                tracing::info!(
                    voters = config.voters.len(),
                    "controller quorum initialised by this node"
                );
            }
        }

        let controller = Controller {
            inner: Arc::new(Inner {
                node_id: config.node_id,
                raft,
                images,
                heartbeats: Mutex::new(HashMap::new()),
                decide: tokio::sync::Mutex::new(()),
                session_timeout: config.broker_session_timeout,
                request_timeout: config.request_timeout,
                tasks: Mutex::new(vec![server]),
                stopped: AtomicBool::new(false),
                identity,
                forwarders: Mutex::new(Vec::new()),
                started_empty,
            }),
        };
        let _ = this.set(Arc::downgrade(&controller.inner));
        let fencer = tokio::spawn(fence_expired_brokers(Arc::downgrade(&controller.inner)));
        controller.tasks().push(fencer);
        Ok(controller)
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stops this voter: its Raft node, its listener and its background work. When it
    /// returns, the controller address is free again.
    pub async fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::Release);
        let tasks: Vec<JoinHandle<()>> = self.tasks().drain(..).collect();
        for task in tasks {
            task.abort();
            // Aborting only asks; waiting for the task to end releases the listener and
            // closes the connections, so the address can be bound again.
            let _ = task.await;
        }
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "controller: Raft did not shut down cleanly");
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> BrokerId {
        self.inner.node_id
    }

    /// Whether this node is the active controller.
    pub fn is_leader(&self) -> bool {
        if self.inner.stopped.load(Ordering::Acquire) {
            return false;
        }
        let metrics = self.inner.raft.metrics();
        let metrics = metrics.borrow();
        metrics.state.is_leader()
            && metrics.current_leader == RaftNodeId::try_from(self.inner.node_id).ok()
    }

    /// The active controller as this node knows it.
    pub fn leader_id(&self) -> Option<BrokerId> {
        self.inner
            .raft
            .metrics()
            .borrow()
            .current_leader
            .and_then(|id| BrokerId::try_from(id).ok())
    }

    /// The voters: node id → controller listener address.
    pub fn voters(&self) -> &BTreeMap<RaftNodeId, String> {
        &self.inner.identity.voters
    }

    /// Carries out `request` on the active controller: here when this node is it, else
    /// forwarded to it over the controller listener. `NotController` (retriable) when no
    /// leader is known or it cannot be reached.
    pub async fn request(
        &self,
        request: ControllerRequest,
    ) -> Result<ControllerReply, ControllerError> {
        if self.is_leader() {
            return self.execute(request).await;
        }
        let leader = self
            .leader_id()
            .filter(|l| *l != self.inner.node_id)
            .ok_or(ControllerError::NotController { leader: None })?;
        let not_controller = ControllerError::NotController {
            leader: Some(leader),
        };
        let target = RaftNodeId::try_from(leader).map_err(|_| not_controller.clone())?;
        let address = self.voters().get(&target).cloned().ok_or(not_controller)?;
        let mut peer = {
            let mut idle = self
                .inner
                .forwarders
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            idle.retain(|p| p.target() == target);
            idle.pop()
        }
        .unwrap_or_else(|| Peer::new(self.inner.identity.clone(), target, address));
        let timeout = self.inner.request_timeout + DECISION_WAIT + Duration::from_secs(1);
        let answer = peer.forward(request, timeout).await;
        if !matches!(answer, Err(ControllerError::NotController { leader: None })) {
            self.inner
                .forwarders
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(peer);
        }
        answer
    }

    /// Carries out `request` here (on the active controller; elsewhere it fails with
    /// `NotController`).
    async fn execute(
        &self,
        request: ControllerRequest,
    ) -> Result<ControllerReply, ControllerError> {
        match request {
            ControllerRequest::RegisterBroker(registration) => self
                .register_broker(registration)
                .await
                .map(ControllerReply::BrokerEpoch),
            ControllerRequest::Heartbeat {
                node_id,
                broker_epoch,
            } => self
                .heartbeat(node_id, broker_epoch)
                .await
                .map(ControllerReply::Heartbeat),
            ControllerRequest::CreateTopic {
                name,
                partitions,
                replication_factor,
                assignment,
                configs,
                topic_id,
            } => self
                .create_topic_with_id(
                    &name,
                    partitions,
                    replication_factor,
                    assignment,
                    configs,
                    topic_id,
                )
                .await
                .map(ControllerReply::TopicId),
            ControllerRequest::CreatePartitions {
                name,
                total,
                assignment,
            } => self
                .create_partitions(&name, total, assignment)
                .await
                .map(|()| ControllerReply::Done),
            ControllerRequest::DeleteTopic { name } => {
                self.delete_topic(&name).await.map(ControllerReply::TopicId)
            }
            ControllerRequest::AlterConfigs { name, changes } => self
                .alter_topic_configs(&name, changes)
                .await
                .map(|()| ControllerReply::Done),
            ControllerRequest::AllocateProducerIds { node_id, floor } => self
                .allocate_producer_ids_from(node_id, floor)
                .await
                .map(|ids| ControllerReply::ProducerIds {
                    first: ids.start,
                    size: ids.end - ids.start,
                }),
        }
    }

    /// Deletes a topic (Kafka's `RemoveTopicRecord`). Returns its id.
    pub async fn delete_topic(&self, name: &str) -> Result<Uuid, ControllerError> {
        let _decision = self.decide().await?;
        let topic_id = self
            .image()
            .topic_by_name(name)
            .map(|t| t.topic_id)
            .ok_or_else(|| ControllerError::UnknownTopic(name.to_string()))?;
        self.propose(vec![MetadataRecord::DeleteTopic { topic_id }])
            .await?;
        Ok(topic_id)
    }

    /// Sets (`Some`) or removes (`None`) config overrides of a topic, all in one batch.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        changes: BTreeMap<String, Option<String>>,
    ) -> Result<(), ControllerError> {
        let _decision = self.decide().await?;
        let topic_id = self
            .image()
            .topic_by_name(name)
            .map(|t| t.topic_id)
            .ok_or_else(|| ControllerError::UnknownTopic(name.to_string()))?;
        let records = changes
            .into_iter()
            .map(|(name, value)| MetadataRecord::ConfigChange {
                topic_id,
                name,
                value,
            })
            .collect();
        self.propose(records).await
    }

    /// Waits until this node knows an active controller, at most `timeout`.
    pub async fn wait_for_leader(&self, timeout: Duration) {
        let mut metrics = self.inner.raft.metrics();
        let known = metrics.wait_for(|m| m.current_leader.is_some());
        let _ = tokio::time::timeout(timeout, known).await;
    }

    /// Whether this node had no metadata log on disk when it started (a new node, or one
    /// whose metadata log was lost): its topics on disk are then not known to be deleted.
    pub fn started_empty(&self) -> bool {
        self.inner.started_empty
    }

    /// The metadata image as this node has applied it.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.inner.images.borrow().clone()
    }

    /// A receiver that sees every image this node applies.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.inner.images.clone()
    }

    /// Registers a broker (a new process of it: `incarnation_id` is fresh per start). It
    /// starts fenced and is unfenced by its first heartbeat. Returns its broker epoch.
    pub async fn register_broker(
        &self,
        registration: RegisterBroker,
    ) -> Result<i64, ControllerError> {
        let _decision = self.decide().await?;
        let image = self.image();
        let node_id = registration.node_id;
        if let Some(existing) = image.broker(node_id)
            && existing.registration.incarnation_id != registration.incarnation_id
            && !existing.fenced
            && self
                .heartbeat_age(node_id)
                .is_some_and(|age| age < self.inner.session_timeout)
        {
            return Err(ControllerError::DuplicateBrokerRegistration(node_id));
        }
        self.propose(image.register_records(registration)).await?;
        self.note_heartbeat(node_id);
        self.image()
            .broker(node_id)
            .map(|b| b.broker_epoch)
            .ok_or(ControllerError::BrokerIdNotRegistered(node_id))
    }

    /// A broker's heartbeat: keeps its session alive and unfences it if it was fenced.
    pub async fn heartbeat(
        &self,
        node_id: BrokerId,
        broker_epoch: i64,
    ) -> Result<HeartbeatAnswer, ControllerError> {
        self.ensure_leader()?;
        let image = self.image();
        let broker = image
            .broker(node_id)
            .ok_or(ControllerError::BrokerIdNotRegistered(node_id))?;
        if broker.broker_epoch != broker_epoch {
            return Err(ControllerError::StaleBrokerEpoch {
                node_id,
                request: broker_epoch,
                current: broker.broker_epoch,
            });
        }
        self.note_heartbeat(node_id);
        if broker.fenced {
            let _decision = self.decide().await?;
            let image = self.image();
            // The broker may have registered again while this waited for the lock.
            if image
                .broker(node_id)
                .is_some_and(|b| b.broker_epoch == broker_epoch)
            {
                self.propose(image.unfence_records(node_id)).await?;
            }
        }
        Ok(HeartbeatAnswer {
            fenced: self.image().broker(node_id).is_none_or(|b| b.fenced),
        })
    }

    /// Creates a topic: with `assignment` (one replica list per partition) as given, or
    /// else `partitions` partitions of `replication_factor` replicas placed by Kafka's
    /// round-robin. Returns the topic id.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        assignment: Option<Vec<Vec<BrokerId>>>,
        configs: BTreeMap<String, String>,
    ) -> Result<Uuid, ControllerError> {
        self.create_topic_with_id(
            name,
            partitions,
            replication_factor,
            assignment,
            configs,
            None,
        )
        .await
    }

    /// Like [`Controller::create_topic`], with the topic's id given (or a fresh one).
    pub async fn create_topic_with_id(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        assignment: Option<Vec<Vec<BrokerId>>>,
        configs: BTreeMap<String, String>,
        topic_id: Option<Uuid>,
    ) -> Result<Uuid, ControllerError> {
        let _decision = self.decide().await?;
        let image = self.image();
        if image.topic_by_name(name).is_some() {
            return Err(ControllerError::TopicAlreadyExists(name.to_string()));
        }
        let topic_id = topic_id.unwrap_or_else(Uuid::new_v4);
        let assignment = match assignment {
            Some(assignment) => assignment,
            None => image.assign_replicas(0, partitions, replication_factor, seed(topic_id))?,
        };
        self.propose(image.create_topic_records(name, topic_id, configs, &assignment)?)
            .await?;
        Ok(topic_id)
    }

    /// Grows a topic to `total` partitions (Kafka's CreatePartitions).
    pub async fn create_partitions(
        &self,
        name: &str,
        total: i32,
        assignment: Option<Vec<Vec<BrokerId>>>,
    ) -> Result<(), ControllerError> {
        let _decision = self.decide().await?;
        let image = self.image();
        let topic = image
            .topic_by_name(name)
            .ok_or_else(|| ControllerError::UnknownTopic(name.to_string()))?;
        let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        if total <= current {
            return Err(ControllerError::InvalidPartitions(format!(
                "topic {name} has {current} partitions; the new count must be larger, not {total}"
            )));
        }
        let replication_factor = topic
            .partitions
            .values()
            .next()
            .map_or(1, |p| i32::try_from(p.replicas.len()).unwrap_or(i32::MAX));
        let assignment = match assignment {
            Some(assignment) => assignment,
            None => image.assign_replicas(
                current,
                total - current,
                replication_factor,
                seed(topic.topic_id),
            )?,
        };
        self.propose(image.create_partitions_records(topic.topic_id, &assignment)?)
            .await
    }

    /// A partition leader's ISR change (Kafka's AlterPartition). Returns the partition as
    /// it is afterwards.
    pub async fn alter_partition(
        &self,
        broker: BrokerId,
        topic_id: Uuid,
        partition: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        new_isr: Vec<BrokerId>,
    ) -> Result<PartitionState, ControllerError> {
        let _decision = self.decide().await?;
        let image = self.image();
        if let Some(change) = image.alter_partition(
            broker,
            topic_id,
            partition,
            leader_epoch,
            partition_epoch,
            &new_isr,
        )? {
            self.propose(vec![MetadataRecord::PartitionChange(change)])
                .await?;
        }
        self.image().partition(topic_id, partition).cloned().ok_or(
            ControllerError::UnknownPartition {
                topic_id,
                partition,
            },
        )
    }

    /// Kafka's ElectLeaders for one partition. Returns the partition as it is afterwards.
    pub async fn elect_leader(
        &self,
        topic_id: Uuid,
        partition: i32,
        election: ElectionType,
    ) -> Result<PartitionState, ControllerError> {
        let _decision = self.decide().await?;
        let change = self.image().elect_leader(topic_id, partition, election)?;
        self.propose(vec![MetadataRecord::PartitionChange(change)])
            .await?;
        self.image().partition(topic_id, partition).cloned().ok_or(
            ControllerError::UnknownPartition {
                topic_id,
                partition,
            },
        )
    }

    /// Hands `node_id` the next block of producer ids.
    pub async fn allocate_producer_ids(
        &self,
        node_id: BrokerId,
    ) -> Result<Range<i64>, ControllerError> {
        self.allocate_producer_ids_from(node_id, 0).await
    }

    /// Hands `node_id` the next block of producer ids, starting at `floor` or later.
    pub async fn allocate_producer_ids_from(
        &self,
        node_id: BrokerId,
        floor: i64,
    ) -> Result<Range<i64>, ControllerError> {
        let _decision = self.decide().await?;
        let first = self.image().next_producer_id().max(floor);
        let size = PRODUCER_ID_BLOCK_SIZE;
        self.propose(vec![MetadataRecord::ProducerIdBlock {
            node_id,
            first_producer_id: first,
            size,
        }])
        .await?;
        Ok(first..first + size)
    }

    fn ensure_leader(&self) -> Result<(), ControllerError> {
        if self.is_leader() {
            Ok(())
        } else {
            Err(ControllerError::NotController {
                leader: self.leader_id(),
            })
        }
    }

    /// Takes the decision lock once this node is the leader and its image holds every
    /// record committed before its term. A new leader may not have applied them yet: it
    /// has once it applied an entry of its own term (openraft commits a blank one at
    /// election), since that entry follows all of them. Within the lock, every proposal
    /// is applied before the next decision reads the image.
    async fn decide(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, ControllerError> {
        self.ensure_leader()?;
        let guard = self.inner.decide.lock().await;
        let mut metrics = self.inner.raft.metrics();
        let term = metrics.borrow().current_term;
        let caught_up = metrics.wait_for(|m| {
            m.current_term != term
                || !m.state.is_leader()
                || m.last_applied.is_some_and(|l| l.leader_id.term == term)
        });
        match tokio::time::timeout(DECISION_WAIT, caught_up).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err(ControllerError::Raft("the Raft node has stopped".into())),
            Err(_) => {
                return Err(ControllerError::Raft(
                    "the new leader has not applied the log yet".into(),
                ));
            }
        }
        self.ensure_leader()?;
        Ok(guard)
    }

    /// Proposes `records` as one atomic batch and waits until it is committed and applied.
    async fn propose(&self, records: Vec<MetadataRecord>) -> Result<(), ControllerError> {
        if records.is_empty() {
            return Ok(());
        }
        let write = self.inner.raft.client_write(Proposal { records });
        // A leader cut off from the majority never commits; the caller hears of it in
        // bounded time (the proposal may still commit later if the leader recovers).
        let Ok(written) = tokio::time::timeout(self.inner.request_timeout, write).await else {
            return Err(ControllerError::Raft(
                "the proposal was not committed in time".into(),
            ));
        };
        match written {
            Ok(response) => match response.data {
                Applied::Applied | Applied::Nothing => Ok(()),
                Applied::Rejected { error, .. } => Err(rejection(error)),
            },
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(ControllerError::NotController {
                    leader: forward.leader_id.and_then(|id| BrokerId::try_from(id).ok()),
                })
            }
            Err(e) => Err(ControllerError::Raft(e.to_string())),
        }
    }

    fn note_heartbeat(&self, node_id: BrokerId) {
        self.inner
            .heartbeats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(node_id, Instant::now());
    }

    fn heartbeat_age(&self, node_id: BrokerId) -> Option<Duration> {
        self.inner
            .heartbeats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node_id)
            .map(Instant::elapsed)
    }
}

/// A start for the round-robin assignment that differs between topics (Kafka picks it at
/// random) and is reproducible from the topic id.
fn seed(topic_id: Uuid) -> u64 {
    let (high, low) = topic_id.as_u64_pair();
    high ^ low
}

/// A record refused at apply time, as the error the requester gets.
fn rejection(error: ApplyError) -> ControllerError {
    match error {
        ApplyError::StalePartitionEpoch { expected, current } => {
            ControllerError::InvalidUpdateVersion {
                request: expected,
                current,
            }
        }
        ApplyError::TopicExists(name) => ControllerError::TopicAlreadyExists(name),
        ApplyError::UnknownTopicId(topic_id) => ControllerError::UnknownTopicId(topic_id),
        ApplyError::UnknownPartition {
            topic_id,
            partition,
        } => ControllerError::UnknownPartition {
            topic_id,
            partition,
        },
        other => ControllerError::InvalidRequest(other.to_string()),
    }
}

/// On the active controller, fences the brokers whose last heartbeat is older than the
/// session timeout (a new active controller gives every broker a full session first).
async fn fence_expired_brokers(inner: std::sync::Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(inner) => (inner.session_timeout / 4).max(Duration::from_millis(10)),
        None => return,
    };
    let mut ticks = tokio::time::interval(period);
    let mut was_leader = false;
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let controller = Controller { inner };
        let leader = controller.is_leader();
        if leader != was_leader {
            controller
                .inner
                .heartbeats
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
            was_leader = leader;
        }
        if !leader {
            continue;
        }
        let image = controller.image();
        let expired: Vec<BrokerId> = {
            let mut heartbeats = controller
                .inner
                .heartbeats
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            image
                .live_brokers()
                .map(|b| b.registration.node_id)
                .filter(|id| {
                    now.duration_since(*heartbeats.entry(*id).or_insert(now))
                        > controller.inner.session_timeout
                })
                .collect()
        };
        for node_id in expired {
            let Ok(_decision) = controller.decide().await else {
                break;
            };
            let records = controller.image().fence_records(node_id);
            let moved = records.len().saturating_sub(1);
            match controller.propose(records).await {
                Ok(()) => {
                    tracing::info!(node_id, moved, "fenced a broker whose heartbeats stopped")
                }
                Err(e) => {
                    tracing::warn!(node_id, error = %e, "could not fence a broker whose heartbeats stopped")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
