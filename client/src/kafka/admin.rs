//! The admin client: topics (create, delete, describe), topic configs, consumer groups and
//! their committed offsets and lag. Topic changes go to the controller, which metadata names.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest, ListGroupsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::config::{ClientConfig, ConsumerConfig};
use crate::error::{ClientError, Result};
use crate::kafka::cluster::Cluster;
use crate::kafka::consumer::{TopicPartition, list_offsets};
use crate::kafka::group::Group;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Number of partitions.
    pub partitions: i32,
    /// Replication factor (-1: the broker's default).
    pub replication_factor: i16,
    /// Topic configs, e.g. `cleanup.policy=compact`.
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and the broker's default replication factor.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor: -1,
            configs: BTreeMap::new(),
        }
    }

    /// Sets a topic config.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(key.into(), value.into());
        self
    }
}

/// A topic as described by metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// Name.
    pub name: String,
    /// Partition ids with their leader broker id.
    pub partitions: Vec<(i32, i32)>,
    /// Whether it is an internal topic (`__consumer_offsets`, …).
    pub internal: bool,
}

/// A group's committed offset of one partition, and how far it lags the high watermark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// Committed offset.
    pub committed: i64,
    /// High watermark (end offset).
    pub end_offset: i64,
    /// `end_offset - committed`.
    pub lag: i64,
}

/// Administers topics and inspects groups.
pub struct AdminClient {
    cluster: Arc<Cluster>,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient").finish()
    }
}

impl AdminClient {
    /// Connects to the cluster.
    pub async fn new(config: ClientConfig) -> Result<AdminClient> {
        let cluster = Cluster::new(config)?;
        cluster
            .retry("bootstrap metadata", || cluster.refresh(&[]))
            .await?;
        Ok(AdminClient { cluster })
    }

    /// Creates topics; an existing topic is an error (`TOPIC_ALREADY_EXISTS`).
    pub async fn create_topics(&self, topics: &[NewTopic]) -> Result<()> {
        let timeout_ms = self.cluster.config.request_timeout.as_millis() as i32;
        let request: Vec<CreatableTopic> = topics
            .iter()
            .map(|t| {
                CreatableTopic::default()
                    .with_name(TopicName(s(&t.name)))
                    .with_num_partitions(t.partitions)
                    .with_replication_factor(t.replication_factor)
                    .with_configs(
                        t.configs
                            .iter()
                            .map(|(k, v)| {
                                CreatableTopicConfig::default()
                                    .with_name(s(k))
                                    .with_value(Some(s(v)))
                            })
                            .collect(),
                    )
            })
            .collect();
        let cluster = &self.cluster;
        let response = cluster
            .retry("CreateTopics", || async {
                let conn = cluster.controller().await?;
                let (r, _) = cluster
                    .send(&conn, |_| {
                        CreateTopicsRequest::default()
                            .with_topics(request.clone())
                            .with_timeout_ms(timeout_ms)
                    })
                    .await?;
                // NOT_CONTROLLER is retriable: look the controller up again.
                for t in &r.topics {
                    if let Some(e) =
                        ClientError::broker(format!("create topic {}", t.name.0), t.error_code)
                        && e.is_retriable()
                    {
                        return Err(e);
                    }
                }
                Ok(r)
            })
            .await?;
        for t in &response.topics {
            let context = match &t.error_message {
                Some(m) => format!("create topic {} ({m})", t.name.0),
                None => format!("create topic {}", t.name.0),
            };
            if let Some(e) = ClientError::broker(context, t.error_code) {
                return Err(e);
            }
        }
        // Brokers learn of a new topic a moment after the controller; wait until metadata
        // shows it, so a producer started right after does not see an unknown topic.
        cluster.invalidate();
        for t in topics {
            cluster
                .retry("metadata of new topic", || async {
                    cluster.topic(&t.name, false).await.map_err(|e| match e {
                        ClientError::UnknownTopic(_) => ClientError::Broker {
                            context: format!("metadata of new topic {}", t.name),
                            error: kafka_protocol::error::ResponseError::UnknownTopicOrPartition,
                        },
                        other => other,
                    })
                })
                .await?;
        }
        Ok(())
    }

    /// Deletes topics by name.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<()> {
        let cluster = &self.cluster;
        let timeout_ms = cluster.config.request_timeout.as_millis() as i32;
        let response = cluster
            .retry("DeleteTopics", || async {
                let conn = cluster.controller().await?;
                let (r, _) = cluster
                    .send(&conn, |v| {
                        let request = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
                        if v >= 6 {
                            request.with_topics(
                                names
                                    .iter()
                                    .map(|n| {
                                        DeleteTopicState::default().with_name(Some(TopicName(s(n))))
                                    })
                                    .collect(),
                            )
                        } else {
                            request
                                .with_topic_names(names.iter().map(|n| TopicName(s(n))).collect())
                        }
                    })
                    .await?;
                Ok(r)
            })
            .await?;
        for t in &response.responses {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            if let Some(e) = ClientError::broker(format!("delete topic {name}"), t.error_code) {
                return Err(e);
            }
        }
        cluster.invalidate();
        Ok(())
    }

    /// Describes a topic: its partitions and their leaders.
    pub async fn describe_topic(&self, name: &str) -> Result<TopicDescription> {
        self.cluster.invalidate();
        let info = self.cluster.topic(name, false).await?;
        Ok(TopicDescription {
            name: name.to_string(),
            partitions: info
                .partitions
                .iter()
                .map(|p| (p.partition, p.leader))
                .collect(),
            internal: info.is_internal,
        })
    }

    /// The topic's configs, name to value.
    pub async fn describe_topic_configs(&self, name: &str) -> Result<BTreeMap<String, String>> {
        let cluster = &self.cluster;
        let (response, _) = cluster
            .retry("DescribeConfigs", || async {
                let conn = cluster.any_broker().await?;
                cluster
                    .send(&conn, |_| {
                        DescribeConfigsRequest::default().with_resources(vec![
                            DescribeConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(s(name))
                                .with_configuration_keys(None),
                        ])
                    })
                    .await
            })
            .await?;
        let mut out = BTreeMap::new();
        for result in &response.results {
            if let Some(e) =
                ClientError::broker(format!("describe configs of {name}"), result.error_code)
            {
                return Err(e);
            }
            for c in &result.configs {
                if let Some(v) = &c.value {
                    out.insert(c.name.to_string(), v.to_string());
                }
            }
        }
        Ok(out)
    }

    /// Ids of the consumer groups the cluster knows.
    pub async fn list_groups(&self) -> Result<Vec<String>> {
        let cluster = &self.cluster;
        let (response, _) = cluster
            .retry("ListGroups", || async {
                let conn = cluster.any_broker().await?;
                cluster.send(&conn, |_| ListGroupsRequest::default()).await
            })
            .await?;
        if let Some(e) = ClientError::broker("ListGroups", response.error_code) {
            return Err(e);
        }
        let mut groups: Vec<String> = response
            .groups
            .iter()
            .map(|g| g.group_id.0.to_string())
            .collect();
        groups.sort();
        Ok(groups)
    }

    /// The group's committed offsets on `topic` with the lag of each partition.
    pub async fn group_lag(&self, group_id: &str, topic: &str) -> Result<Vec<PartitionLag>> {
        let info = self.cluster.topic(topic, false).await?;
        let partitions: Vec<TopicPartition> = info
            .partitions
            .iter()
            .map(|p| TopicPartition::new(topic, p.partition))
            .collect();
        let mut group = Group::new(
            self.cluster.clone(),
            ConsumerConfig {
                client: self.cluster.config.clone(),
                ..ConsumerConfig::new("", Some(group_id))
            },
            group_id.to_string(),
        );
        let committed = group.committed(&partitions).await?;
        let ends: HashMap<TopicPartition, i64> = list_offsets(&self.cluster, &partitions, -1)
            .await?
            .into_iter()
            .collect();
        let mut out: Vec<PartitionLag> = committed
            .into_iter()
            .map(|(tp, committed)| {
                let end_offset = ends.get(&tp).copied().unwrap_or(committed);
                PartitionLag {
                    lag: (end_offset - committed).max(0),
                    partition: tp,
                    committed,
                    end_offset,
                }
            })
            .collect();
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(out)
    }
}
