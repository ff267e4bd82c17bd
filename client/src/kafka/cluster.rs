//! What the client knows about the cluster — brokers, topics, partition leaders — and the
//! connections to its brokers.
//!
//! Metadata comes from `Metadata` requests: at bootstrap, when it is older than
//! `metadata_max_age`, and whenever a request fails with an error that means the client's
//! view is stale (`NOT_LEADER_OR_FOLLOWER`, `UNKNOWN_TOPIC_OR_PARTITION`, a broken
//! connection). Each broker gets one connection, reopened on the next use after it breaks.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::{Request, StrBytes};

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::kafka::connection::Connection;

/// A partition's leader as last seen in metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionInfo {
    pub(crate) partition: i32,
    pub(crate) leader: i32,
    pub(crate) leader_epoch: i32,
    pub(crate) error_code: i16,
}

/// A topic as last seen in metadata; partitions are indexed by partition id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicInfo {
    pub(crate) partitions: Vec<PartitionInfo>,
    pub(crate) is_internal: bool,
}

#[derive(Default)]
struct Metadata {
    brokers: HashMap<i32, String>,
    controller: Option<i32>,
    topics: HashMap<String, TopicInfo>,
    refreshed: Option<Instant>,
}

/// Shared view of the cluster and its connections.
pub(crate) struct Cluster {
    pub(crate) config: ClientConfig,
    metadata: RwLock<Metadata>,
    connections: tokio::sync::Mutex<HashMap<String, Arc<Connection>>>,
}

impl Cluster {
    /// A cluster reachable through the bootstrap servers (nothing is dialled yet).
    pub(crate) fn new(config: ClientConfig) -> Result<Arc<Cluster>> {
        if config.bootstrap_servers.is_empty() {
            return Err(ClientError::Config(
                "bootstrap_servers must name at least one broker".into(),
            ));
        }
        Ok(Arc::new(Cluster {
            config,
            metadata: RwLock::new(Metadata::default()),
            connections: tokio::sync::Mutex::new(HashMap::new()),
        }))
    }

    /// The connection to `addr`, opened (or reopened) if needed.
    pub(crate) async fn connection_to(&self, addr: &str) -> Result<Arc<Connection>> {
        let mut connections = self.connections.lock().await;
        if let Some(conn) = connections.get(addr)
            && !conn.is_closed()
        {
            return Ok(conn.clone());
        }
        let conn =
            Connection::connect(addr, &self.config.client_id, self.config.connect_timeout).await?;
        connections.insert(addr.to_string(), conn.clone());
        Ok(conn)
    }

    /// The connection to broker `id`.
    pub(crate) async fn broker(&self, id: i32) -> Result<Arc<Connection>> {
        let addr = self.read().brokers.get(&id).cloned();
        match addr {
            Some(addr) => self.connection_to(&addr).await,
            None => {
                self.refresh(&[]).await?;
                let addr =
                    self.read()
                        .brokers
                        .get(&id)
                        .cloned()
                        .ok_or_else(|| ClientError::Broker {
                            context: format!("broker {id}"),
                            error: kafka_protocol::error::ResponseError::BrokerNotAvailable,
                        })?;
                self.connection_to(&addr).await
            }
        }
    }

    /// A connection to any broker: a known one, else a bootstrap server.
    pub(crate) async fn any_broker(&self) -> Result<Arc<Connection>> {
        let mut candidates: Vec<String> = self.read().brokers.values().cloned().collect();
        candidates.sort();
        candidates.extend(self.config.bootstrap_servers.iter().cloned());
        let mut last = None;
        for addr in candidates {
            match self.connection_to(&addr).await {
                Ok(conn) => return Ok(conn),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Config("no brokers known".into())))
    }

    /// The controller (where topic administration goes), or any broker when unknown.
    pub(crate) async fn controller(&self) -> Result<Arc<Connection>> {
        if self.read().controller.is_none() {
            self.refresh(&[]).await?;
        }
        let controller = self.read().controller;
        match controller {
            Some(id) => self.broker(id).await,
            None => self.any_broker().await,
        }
    }

    /// Sends `request` to the connection and awaits the response, within the request timeout.
    pub(crate) async fn send<R: Request>(
        &self,
        conn: &Connection,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(R::Response, i16)> {
        let version = conn.version::<R>()?;
        let request = build(version);
        let timeout = self.config.request_timeout;
        match tokio::time::timeout(timeout, conn.send(&request, version)).await {
            Ok(response) => Ok((response?, version)),
            Err(_) => Err(ClientError::Timeout {
                what: format!("API {} request to {}", R::KEY, conn.addr()),
                millis: timeout.as_millis() as u64,
            }),
        }
    }

    /// Refreshes metadata for `topics` (all known topics when empty, plus brokers).
    pub(crate) async fn refresh(&self, topics: &[String]) -> Result<MetadataResponse> {
        self.refresh_with(topics, false).await
    }

    /// Like [`Cluster::refresh`], asking the broker to create missing topics if `create`.
    pub(crate) async fn refresh_with(
        &self,
        topics: &[String],
        create: bool,
    ) -> Result<MetadataResponse> {
        let conn = self.any_broker().await?;
        let (response, _) = self
            .send(&conn, |version| {
                let request = MetadataRequest::default().with_topics(Some(
                    topics
                        .iter()
                        .map(|t| {
                            MetadataRequestTopic::default()
                                .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                        })
                        .collect(),
                ));
                if version >= 4 {
                    request.with_allow_auto_topic_creation(create)
                } else {
                    request
                }
            })
            .await?;
        self.apply(&response);
        Ok(response)
    }

    fn apply(&self, response: &MetadataResponse) {
        let mut meta = self.metadata.write().unwrap_or_else(|e| e.into_inner());
        for broker in &response.brokers {
            meta.brokers
                .insert(*broker.node_id, format!("{}:{}", broker.host, broker.port));
        }
        meta.controller = (*response.controller_id >= 0).then_some(*response.controller_id);
        for topic in &response.topics {
            let Some(name) = &topic.name else { continue };
            if topic.error_code != 0 {
                meta.topics.remove(name.as_str());
                continue;
            }
            let mut partitions: Vec<PartitionInfo> = topic
                .partitions
                .iter()
                .map(|p| PartitionInfo {
                    partition: p.partition_index,
                    leader: *p.leader_id,
                    leader_epoch: p.leader_epoch,
                    error_code: p.error_code,
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            meta.topics.insert(
                name.to_string(),
                TopicInfo {
                    partitions,
                    is_internal: topic.is_internal,
                },
            );
        }
        meta.refreshed = Some(Instant::now());
    }

    /// The topic's metadata, fetched if unknown or stale; `UnknownTopic` if it doesn't exist.
    pub(crate) async fn topic(&self, topic: &str, create: bool) -> Result<TopicInfo> {
        let fresh = self
            .read()
            .refreshed
            .is_some_and(|t| t.elapsed() < self.config.metadata_max_age);
        if fresh && let Some(info) = self.read().topics.get(topic) {
            return Ok(info.clone());
        }
        let deadline = Instant::now() + self.config.retry_timeout;
        let mut backoff = Backoff::new(&self.config);
        loop {
            let response = self.refresh_with(&[topic.to_string()], create).await?;
            let code = response
                .topics
                .iter()
                .find(|t| t.name.as_deref().map(|n| n.as_str()) == Some(topic))
                .map(|t| t.error_code)
                .unwrap_or(3);
            match ClientError::broker(format!("metadata of topic {topic}"), code) {
                None => {
                    if let Some(info) = self.read().topics.get(topic)
                        && !info.partitions.is_empty()
                    {
                        return Ok(info.clone());
                    }
                }
                // Unknown topic: an error straight away unless we asked to create it, in
                // which case metadata may lag the creation briefly.
                Some(ClientError::Broker { error, .. })
                    if error == kafka_protocol::error::ResponseError::UnknownTopicOrPartition
                        && !create =>
                {
                    return Err(ClientError::UnknownTopic(topic.to_string()));
                }
                Some(err) if !err.is_retriable() => return Err(err),
                Some(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(ClientError::UnknownTopic(topic.to_string()));
            }
            backoff.wait().await;
        }
    }

    /// The topic's partition count; answered from cached metadata on the hot path.
    pub(crate) async fn partition_count(&self, topic: &str, create: bool) -> Result<i32> {
        {
            let meta = self.read();
            let fresh = meta
                .refreshed
                .is_some_and(|t| t.elapsed() < self.config.metadata_max_age);
            if fresh && let Some(info) = meta.topics.get(topic) {
                return Ok(info.partitions.len() as i32);
            }
        }
        Ok(self.topic(topic, create).await?.partitions.len() as i32)
    }

    /// The current leader of a partition, if metadata names one.
    pub(crate) fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.read()
            .topics
            .get(topic)
            .and_then(|t| t.partitions.get(partition as usize))
            .map(|p| p.leader)
            .filter(|l| *l >= 0)
    }

    /// Forgets a topic's leaders so the next use refreshes them.
    pub(crate) fn invalidate(&self) {
        self.metadata
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .refreshed = None;
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Metadata> {
        self.metadata.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends the request `build` makes to any broker, retrying retriable errors as [`Cluster::retry`]
    /// does; for requests any broker answers (metadata, admin).
    pub(crate) async fn call_any<R: Request>(
        &self,
        what: &str,
        build: impl Fn(i16) -> R,
    ) -> Result<R::Response> {
        let (response, _) = self
            .retry(what, || async {
                let conn = self.any_broker().await?;
                self.send(&conn, &build).await
            })
            .await?;
        Ok(response)
    }

    /// Runs `op` until it succeeds, fails with a non-retriable error, or the retry timeout
    /// passes, backing off between attempts and refreshing metadata after each failure.
    pub(crate) async fn retry<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let deadline = Instant::now() + self.config.retry_timeout;
        let mut backoff = Backoff::new(&self.config);
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(e) if e.is_retriable() && Instant::now() < deadline => {
                    tracing::debug!(what, error = %e, "retrying");
                    self.invalidate();
                    backoff.wait().await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Exponential backoff between retries: `retry_backoff`, doubling up to `retry_backoff_max`.
pub(crate) struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub(crate) fn new(config: &ClientConfig) -> Backoff {
        Backoff {
            next: config.retry_backoff,
            max: config.retry_backoff_max,
        }
    }

    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.max);
    }
}
