//! The admin client: topics (create, delete, describe), topic configs, consumer groups and
//! their committed offsets and lag. Topic changes go to the controller, which metadata names.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, DeleteGroupsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
    DescribeGroupsRequest, GroupId, IncrementalAlterConfigsRequest, ListGroupsRequest,
    MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::config::{ClientConfig, ConsumerConfig};
use crate::error::{ClientError, Result};
use crate::kafka::cluster::Cluster;
use crate::kafka::consumer::{TopicPartition, list_offsets};
use crate::kafka::group::{Group, decode_assignment};

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

/// The offsets bounding one partition's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// Partition id.
    pub partition: i32,
    /// First offset still in the log.
    pub log_start_offset: i64,
    /// Offset the next record will get (high watermark).
    pub high_watermark: i64,
}

/// A consumer group as its coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty` or `Dead`.
    pub state: String,
    /// `consumer` for Kafka consumer groups.
    pub protocol_type: String,
    /// The chosen assignor (`range`, `cooperative-sticky`, …), empty when no generation.
    pub protocol: String,
    /// Current members.
    pub members: Vec<GroupMember>,
}

/// One member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id given by the coordinator.
    pub member_id: String,
    /// The member's `client.id`.
    pub client_id: String,
    /// Host the member connected from.
    pub client_host: String,
    /// Partitions assigned to it (empty while a rebalance is under way).
    pub assignment: Vec<TopicPartition>,
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
        let response = self
            .cluster
            .call_any("DescribeConfigs", |_| {
                DescribeConfigsRequest::default().with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s(name))
                        .with_configuration_keys(None),
                ])
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

    /// The log start offset and high watermark of each of the topic's partitions.
    pub async fn partition_offsets(&self, topic: &str) -> Result<Vec<PartitionOffsets>> {
        let info = self.cluster.topic(topic, false).await?;
        let partitions: Vec<TopicPartition> = info
            .partitions
            .iter()
            .map(|p| TopicPartition::new(topic, p.partition))
            .collect();
        // ListOffsets' special timestamps: -2 the earliest offset, -1 the latest.
        let starts: HashMap<TopicPartition, i64> = list_offsets(&self.cluster, &partitions, -2)
            .await?
            .into_iter()
            .collect();
        let ends: HashMap<TopicPartition, i64> = list_offsets(&self.cluster, &partitions, -1)
            .await?
            .into_iter()
            .collect();
        Ok(partitions
            .iter()
            .map(|tp| PartitionOffsets {
                partition: tp.partition,
                log_start_offset: starts.get(tp).copied().unwrap_or(0),
                high_watermark: ends.get(tp).copied().unwrap_or(0),
            })
            .collect())
    }

    /// Every topic the cluster has (internal ones included), sorted by name.
    pub async fn list_topics(&self) -> Result<Vec<TopicDescription>> {
        // `None` asks for all topics; an empty list would ask for none.
        let response = self
            .cluster
            .call_any("Metadata", |_| MetadataRequest::default().with_topics(None))
            .await?;
        let mut topics = Vec::new();
        for t in &response.topics {
            let Some(name) = &t.name else { continue };
            if let Some(e) =
                ClientError::broker(format!("metadata of topic {}", name.0), t.error_code)
            {
                return Err(e);
            }
            let mut partitions: Vec<(i32, i32)> = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, *p.leader_id))
                .collect();
            partitions.sort();
            topics.push(TopicDescription {
                name: name.0.to_string(),
                partitions,
                internal: t.is_internal,
            });
        }
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Changes topic configs: `Some(value)` sets an override, `None` removes it (back to the
    /// broker's default). Other configs of the topic are left as they are.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        changes: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        let configs: Vec<AlterableConfig> = changes
            .iter()
            .map(|(k, v)| {
                AlterableConfig::default()
                    .with_name(s(k))
                    // Kafka's OpType: 0 SET, 1 DELETE.
                    .with_config_operation(if v.is_some() { 0 } else { 1 })
                    .with_value(v.as_deref().map(s))
            })
            .collect();
        let response = self
            .cluster
            .call_any("IncrementalAlterConfigs", |_| {
                IncrementalAlterConfigsRequest::default().with_resources(vec![
                    AlterConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s(name))
                        .with_configs(configs.clone()),
                ])
            })
            .await?;
        for r in &response.responses {
            let context = match &r.error_message {
                Some(m) => format!("alter configs of {name} ({m})"),
                None => format!("alter configs of {name}"),
            };
            if let Some(e) = ClientError::broker(context, r.error_code) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Ids of the consumer groups the cluster knows.
    pub async fn list_groups(&self) -> Result<Vec<String>> {
        let response = self
            .cluster
            .call_any("ListGroups", |_| ListGroupsRequest::default())
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
        let committed = self.group(group_id).committed(&partitions).await?;
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

    /// Describes a group: its state, assignor and members with their assignments.
    pub async fn describe_group(&self, group_id: &str) -> Result<GroupDescription> {
        let mut group = self.group(group_id);
        let conn = group.coordinator().await?;
        let cluster = &self.cluster;
        let (response, _) = cluster
            .retry("DescribeGroups", || async {
                cluster
                    .send(&conn, |_| {
                        DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group_id))])
                    })
                    .await
            })
            .await?;
        let g = response.groups.first().ok_or_else(|| {
            ClientError::Protocol(format!("DescribeGroups answered nothing for {group_id}"))
        })?;
        if let Some(e) = ClientError::broker(format!("describe group {group_id}"), g.error_code) {
            return Err(e);
        }
        let mut members = Vec::new();
        for m in &g.members {
            let assignment = if g.protocol_type.as_str() == "consumer" {
                decode_assignment(m.member_assignment.clone())?
            } else {
                Vec::new()
            };
            members.push(GroupMember {
                member_id: m.member_id.to_string(),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment,
            });
        }
        members.sort_by(|a, b| a.member_id.cmp(&b.member_id));
        Ok(GroupDescription {
            group_id: group_id.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members,
        })
    }

    /// Every committed offset of the group, on every existing topic, with its lag.
    pub async fn group_offsets(&self, group_id: &str) -> Result<Vec<PartitionLag>> {
        let committed = self.group(group_id).committed_all().await?;
        let mut by_topic: BTreeMap<String, Vec<TopicPartition>> = BTreeMap::new();
        for tp in committed.keys() {
            by_topic
                .entry(tp.topic.clone())
                .or_default()
                .push(tp.clone());
        }
        let mut out = Vec::new();
        for (topic, partitions) in by_topic {
            // Offsets of a deleted topic linger in the group; there is no lag to show.
            let ends: HashMap<TopicPartition, i64> =
                match list_offsets(&self.cluster, &partitions, -1).await {
                    Ok(ends) => ends.into_iter().collect(),
                    Err(ClientError::UnknownTopic(_)) => continue,
                    Err(e) => return Err(e),
                };
            tracing::debug!(%topic, partitions = partitions.len(), "group offsets");
            for tp in partitions {
                let committed = committed[&tp];
                let end_offset = ends.get(&tp).copied().unwrap_or(committed);
                out.push(PartitionLag {
                    lag: (end_offset - committed).max(0),
                    partition: tp,
                    committed,
                    end_offset,
                });
            }
        }
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        Ok(out)
    }

    /// Deletes groups with no members, and their committed offsets.
    pub async fn delete_groups(&self, group_ids: &[&str]) -> Result<()> {
        for group_id in group_ids {
            let conn = self.group(group_id).coordinator().await?;
            let cluster = &self.cluster;
            let (response, _) = cluster
                .retry("DeleteGroups", || async {
                    cluster
                        .send(&conn, |_| {
                            DeleteGroupsRequest::default()
                                .with_groups_names(vec![GroupId(s(group_id))])
                        })
                        .await
                })
                .await?;
            for r in &response.results {
                if let Some(e) =
                    ClientError::broker(format!("delete group {}", r.group_id.0), r.error_code)
                {
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn group(&self, group_id: &str) -> Group {
        Group::new(
            self.cluster.clone(),
            ConsumerConfig {
                client: self.cluster.config.clone(),
                ..ConsumerConfig::new("", Some(group_id))
            },
            group_id.to_string(),
        )
    }
}
