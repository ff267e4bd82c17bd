//! Topic administration: CreateTopics, DeleteTopics and CreatePartitions.
//!
//! One broker means a replication factor of 1 (or -1, "the default"); replica
//! assignments may only name this broker. Each topic of a request succeeds or fails on
//! its own, with Kafka's error code and a message saying why.

use std::collections::HashSet;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::dispatch::RequestContext;
use super::error::{cluster_error, internal_error};
use crate::topics::{TOPIC_CONFIGS, TopicConfig, TopicStoreError};
use crate::{Broker, CreatedTopic, NewTopic};

/// A per-topic failure: Kafka's code and a message.
type Failure = (ResponseError, String);

fn failure(e: &TopicStoreError) -> Failure {
    (cluster_error(e), e.to_string())
}

fn msg(s: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(s))
}

/// Answers CreateTopics.
pub(crate) async fn handle_create(
    ctx: &RequestContext,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let broker = ctx.broker.clone();
    let version = ctx.version();
    let result = tokio::task::spawn_blocking(move || create_topics(&broker, req, version)).await;
    match result {
        Ok(topics) => CreateTopicsResponse::default().with_topics(topics),
        Err(e) => {
            internal_error(&e);
            CreateTopicsResponse::default()
        }
    }
}

fn create_topics(
    broker: &Broker,
    req: CreateTopicsRequest,
    version: i16,
) -> Vec<CreatableTopicResult> {
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> = req
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.to_string()))
        .map(|t| t.name.to_string())
        .collect();
    let cluster = broker.topics();
    req.topics
        .into_iter()
        .map(|t| {
            let name = t.name.to_string();
            let outcome = (|| -> Result<CreatedTopic, Failure> {
                if duplicates.contains(&name) {
                    return Err((
                        ResponseError::InvalidRequest,
                        format!("Create topics request contains multiple entries for topic {name}"),
                    ));
                }
                let assignment = if t.assignments.is_empty() {
                    None
                } else {
                    if t.num_partitions != -1 || t.replication_factor != -1 {
                        return Err((
                            ResponseError::InvalidRequest,
                            "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                        ));
                    }
                    let mut assignments: Vec<_> = t.assignments.iter().collect();
                    assignments.sort_by_key(|a| a.partition_index);
                    if assignments
                        .iter()
                        .enumerate()
                        .any(|(i, a)| i32::try_from(i).ok() != Some(a.partition_index))
                    {
                        return Err((
                            ResponseError::InvalidReplicaAssignment,
                            "Partitions should be a consecutive 0-based integer sequence".into(),
                        ));
                    }
                    Some(
                        assignments
                            .iter()
                            .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                            .collect(),
                    )
                };
                let config = TopicConfig::from_overrides(t.configs.iter().filter_map(|c| {
                    c.value.as_ref().map(|v| (c.name.as_str(), v.as_str()))
                }))
                .map_err(|e| failure(&e))?;
                let new = NewTopic {
                    name: name.clone(),
                    partitions: t.num_partitions,
                    replication_factor: i32::from(t.replication_factor),
                    assignment,
                    config,
                };
                broker
                    .create_topic(new, req.validate_only)
                    .map_err(|e| failure(&e))
            })();
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            let created = match outcome {
                Ok(ok) => ok,
                Err((code, message)) => {
                    return result
                        .with_error_code(code.code())
                        .with_error_message(msg(message))
                        .with_num_partitions(-1)
                        .with_replication_factor(-1);
                }
            };
            let config = TopicConfig::from_overrides(t.configs.iter().filter_map(|c| {
                c.value.as_ref().map(|v| (c.name.as_str(), v.as_str()))
            }))
            .unwrap_or_default();
            let configs = (version >= 5).then(|| {
                TOPIC_CONFIGS
                    .iter()
                    .map(|def| {
                        let (value, overridden) = config.value(def.name, cluster.defaults());
                        CreatableTopicConfigs::default()
                            .with_name(StrBytes::from_static_str(def.name))
                            .with_value(Some(StrBytes::from_string(value)))
                            .with_config_source(if overridden { 1 } else { 5 })
                    })
                    .collect()
            });
            result
                .with_topic_id(created.id)
                .with_num_partitions(created.partitions)
                .with_replication_factor(i16::try_from(created.replication_factor).unwrap_or(-1))
                .with_configs(configs)
        })
        .collect()
}

/// Answers DeleteTopics.
pub(crate) async fn handle_delete(
    ctx: &RequestContext,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let broker = ctx.broker.clone();
    let version = ctx.version();
    let result = tokio::task::spawn_blocking(move || {
        let asked: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
            req.topics
                .into_iter()
                .map(|t| (t.name, t.topic_id))
                .collect()
        } else {
            req.topic_names
                .into_iter()
                .map(|n| (Some(n), uuid::Uuid::nil()))
                .collect()
        };
        asked
            .into_iter()
            .map(|(name, id)| {
                let topic = match &name {
                    Some(n) => broker
                        .topics()
                        .topic(n)
                        .ok_or(ResponseError::UnknownTopicOrPartition),
                    None => broker
                        .topics()
                        .topic_by_id(id)
                        .ok_or(ResponseError::UnknownTopicId),
                };
                let result = DeletableTopicResult::default()
                    .with_name(name.clone())
                    .with_topic_id(id);
                let topic = match topic {
                    Ok(t) => t,
                    Err(code) => return result.with_error_code(code.code()),
                };
                let result = result
                    .with_name(Some(super::lookup::wire_name(&topic)))
                    .with_topic_id(if version >= 6 {
                        topic.id()
                    } else {
                        uuid::Uuid::nil()
                    });
                match broker.delete_topic(topic.name()) {
                    Ok(_) => result,
                    Err(e) => {
                        let (code, message) = failure(&e);
                        result
                            .with_error_code(code.code())
                            .with_error_message(if version >= 5 { msg(message) } else { None })
                    }
                }
            })
            .collect::<Vec<DeletableTopicResult>>()
    })
    .await;
    match result {
        Ok(responses) => {
            let deleted: Vec<String> = responses
                .iter()
                .filter(|r| r.error_code == 0)
                .filter_map(|r| r.name.as_ref().map(|n| n.to_string()))
                .collect();
            ctx.broker.groups().delete_topic_offsets(&deleted).await;
            DeleteTopicsResponse::default().with_responses(responses)
        }
        Err(e) => {
            internal_error(&e);
            DeleteTopicsResponse::default()
        }
    }
}

/// Answers CreatePartitions.
pub(crate) async fn handle_create_partitions(
    ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let broker = ctx.broker.clone();
    let result = tokio::task::spawn_blocking(move || {
        req.topics
            .into_iter()
            .map(|t| {
                let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
                // An empty list is what clients send for "no assignment".
                let assignment = t.assignments.as_ref().filter(|a| !a.is_empty()).map(|a| {
                    a.iter()
                        .map(|a| a.broker_ids.iter().map(|b| b.0).collect())
                        .collect()
                });
                match broker.create_partitions(&t.name, t.count, assignment, req.validate_only) {
                    Ok(()) => result,
                    Err(e) => {
                        let (code, message) = failure(&e);
                        result
                            .with_error_code(code.code())
                            .with_error_message(msg(message))
                    }
                }
            })
            .collect()
    })
    .await;
    match result {
        Ok(results) => CreatePartitionsResponse::default().with_results(results),
        Err(e) => {
            internal_error(&e);
            CreatePartitionsResponse::default()
        }
    }
}
