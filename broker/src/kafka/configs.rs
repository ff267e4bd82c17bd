//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics, and a read-only
//! view of the broker's settings.
//!
//! A topic config shows its override with source `DYNAMIC_TOPIC_CONFIG` or the broker
//! default with source `DEFAULT_CONFIG`. AlterConfigs replaces all of a topic's overrides;
//! IncrementalAlterConfigs sets, deletes, appends to or subtracts from single ones. Every
//! value is validated (`INVALID_CONFIG` with a message) before anything is stored.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, alter_configs_response,
    incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use super::dispatch::RequestContext;
use super::error::{cluster_error, internal_error};
use crate::Broker;
use crate::topics::{ConfigType, TOPIC_CONFIGS, TopicConfig, TopicStoreError, config_def};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

type Failure = (ResponseError, String);

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Answers DescribeConfigs.
pub(crate) fn handle_describe(
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let broker = &ctx.broker;
    let version = ctx.version();
    let (synonyms, documentation) = (req.include_synonyms, req.include_documentation);
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let wanted = |name: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
            };
            let entries = match r.resource_type {
                TOPIC => describe_topic(
                    broker,
                    &r.resource_name,
                    &wanted,
                    (synonyms, documentation),
                    version,
                ),
                BROKER => describe_broker(broker, &r.resource_name, &wanted, version),
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                )),
            };
            match entries {
                Ok(configs) => result.with_configs(configs),
                Err((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(s(message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entry(
    name: &str,
    value: String,
    source: i8,
    kind: ConfigType,
    read_only: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(s(name))
        .with_value(Some(s(value)))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_config_type(if version >= 3 { kind as i8 } else { 0 })
}

fn describe_topic(
    broker: &Broker,
    name: &StrBytes,
    wanted: &dyn Fn(&str) -> bool,
    (include_synonyms, include_documentation): (bool, bool),
    version: i16,
) -> Result<Vec<DescribeConfigsResourceResult>, Failure> {
    let topic = broker.topics().topic(name).ok_or((
        ResponseError::UnknownTopicOrPartition,
        format!("Topic {} does not exist", name.as_str()),
    ))?;
    let config = topic.config();
    let defaults = broker.topics().defaults();
    Ok(TOPIC_CONFIGS
        .iter()
        .filter(|def| wanted(def.name))
        .map(|def| {
            let (value, overridden) = config.value(def.name, defaults);
            let source = if overridden {
                DYNAMIC_TOPIC_CONFIG
            } else {
                DEFAULT_CONFIG
            };
            let mut e = entry(
                def.name,
                value.clone(),
                source,
                def.config_type(),
                false,
                version,
            );
            if include_synonyms {
                let mut synonyms = Vec::new();
                if overridden {
                    synonyms.push(
                        DescribeConfigsSynonym::default()
                            .with_name(s(def.name))
                            .with_value(Some(s(value)))
                            .with_source(DYNAMIC_TOPIC_CONFIG),
                    );
                }
                synonyms.push(
                    DescribeConfigsSynonym::default()
                        .with_name(s(def.name))
                        .with_value(Some(s(crate::topics::default_value(def.name, defaults))))
                        .with_source(DEFAULT_CONFIG),
                );
                e.synonyms = synonyms;
            }
            if include_documentation && version >= 3 {
                e.documentation = Some(s(def.doc));
            }
            e
        })
        .collect())
}

fn describe_broker(
    broker: &Broker,
    name: &StrBytes,
    wanted: &dyn Fn(&str) -> bool,
    version: i16,
) -> Result<Vec<DescribeConfigsResourceResult>, Failure> {
    let node = broker.node_id();
    if !name.is_empty() && name.as_str() != node.to_string() {
        return Err((
            ResponseError::InvalidRequest,
            format!(
                "Unexpected broker id, expected {node} or empty string, but received {}",
                name.as_str()
            ),
        ));
    }
    let c = broker.config();
    let d = broker.topics().defaults();
    let settings: Vec<(&str, String, ConfigType)> = vec![
        ("node.id", node.to_string(), ConfigType::Int),
        ("broker.id", node.to_string(), ConfigType::Int),
        (
            "advertised.listeners",
            format!("PLAINTEXT://{}", c.advertised_addr),
            ConfigType::List,
        ),
        (
            "auto.create.topics.enable",
            c.auto_create_topics.to_string(),
            ConfigType::Boolean,
        ),
        (
            "num.partitions",
            c.num_partitions.to_string(),
            ConfigType::Int,
        ),
        ("default.replication.factor", "1".into(), ConfigType::Int),
        (
            "message.max.bytes",
            d.max_message_bytes.to_string(),
            ConfigType::Int,
        ),
        (
            "log.segment.bytes",
            d.log.segment_bytes.to_string(),
            ConfigType::Int,
        ),
        (
            "log.retention.ms",
            d.log.retention_ms.to_string(),
            ConfigType::Long,
        ),
        (
            "log.retention.bytes",
            d.log.retention_bytes.to_string(),
            ConfigType::Long,
        ),
        (
            "log.flush.interval.ms",
            c.flush_interval_ms.to_string(),
            ConfigType::Long,
        ),
        (
            "log.cleaner.backoff.ms",
            c.cleaner_interval_ms.to_string(),
            ConfigType::Long,
        ),
        (
            "socket.request.max.bytes",
            c.socket_request_max_bytes.to_string(),
            ConfigType::Int,
        ),
    ];
    Ok(settings
        .into_iter()
        .filter(|(n, _, _)| wanted(n))
        .map(|(n, v, kind)| entry(n, v, STATIC_BROKER_CONFIG, kind, true, version))
        .collect())
}

/// Checks a resource is an existing topic; anything else cannot be altered here.
fn alterable_topic(
    broker: &Broker,
    resource_type: i8,
    name: &StrBytes,
) -> Result<std::sync::Arc<crate::topics::Topic>, Failure> {
    match resource_type {
        TOPIC => broker.topics().topic(name).ok_or((
            ResponseError::UnknownTopicOrPartition,
            format!("Topic {} does not exist", name.as_str()),
        )),
        BROKER => Err((
            ResponseError::InvalidRequest,
            "strand's broker settings are static: set them with `strand serve` flags".into(),
        )),
        other => Err((
            ResponseError::InvalidRequest,
            format!("Unsupported resource type {other}"),
        )),
    }
}

fn failure(e: &TopicStoreError) -> Failure {
    (cluster_error(e), e.to_string())
}

/// Answers AlterConfigs: a topic's overrides become exactly the given ones.
pub(crate) async fn handle_alter(
    ctx: &RequestContext,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let broker = ctx.broker.clone();
    let result = tokio::task::spawn_blocking(move || {
        req.resources
            .into_iter()
            .map(|r| {
                let outcome =
                    alterable_topic(&broker, r.resource_type, &r.resource_name).and_then(|topic| {
                        let config =
                            TopicConfig::from_overrides(r.configs.iter().filter_map(|c| {
                                c.value.as_ref().map(|v| (c.name.as_str(), v.as_str()))
                            }))
                            .map_err(|e| failure(&e))?;
                        if req.validate_only {
                            return Ok(());
                        }
                        broker
                            .set_topic_config(topic.name(), config)
                            .map_err(|e| failure(&e))
                    });
                let resp = alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name);
                match outcome {
                    Ok(()) => resp,
                    Err((code, message)) => resp
                        .with_error_code(code.code())
                        .with_error_message(Some(s(message))),
                }
            })
            .collect()
    })
    .await;
    match result {
        Ok(responses) => AlterConfigsResponse::default().with_responses(responses),
        Err(e) => {
            internal_error(&e);
            AlterConfigsResponse::default()
        }
    }
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// Answers IncrementalAlterConfigs: each named override is set, deleted, appended to or
/// subtracted from; the others stay.
pub(crate) async fn handle_incremental(
    ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let broker = ctx.broker.clone();
    let result = tokio::task::spawn_blocking(move || {
        req.resources
            .into_iter()
            .map(|r| {
                let outcome = alterable_topic(&broker, r.resource_type, &r.resource_name)
                    .and_then(|topic| {
                        let mut config = topic.config();
                        let defaults = broker.topics().defaults();
                        for c in &r.configs {
                            let name = c.name.as_str();
                            let value = c.value.as_ref().map(|v| v.as_str());
                            let list = |config: &TopicConfig| -> Vec<String> {
                                config
                                    .value(name, defaults)
                                    .0
                                    .split(',')
                                    .map(|p| p.trim().to_string())
                                    .filter(|p| !p.is_empty())
                                    .collect()
                            };
                            let is_list = config_def(name)
                                .is_some_and(|d| d.config_type() == ConfigType::List);
                            let result = match c.config_operation {
                                SET => config.set(name, Some(value.unwrap_or_default())),
                                DELETE => config.set(name, None),
                                APPEND | SUBTRACT if !is_list => {
                                    Err(TopicStoreError::InvalidConfig(format!(
                                        "Config value append/subtract is not allowed for config key {name}"
                                    )))
                                }
                                APPEND => {
                                    let mut items = list(&config);
                                    for v in value.unwrap_or_default().split(',') {
                                        let v = v.trim().to_string();
                                        if !v.is_empty() && !items.contains(&v) {
                                            items.push(v);
                                        }
                                    }
                                    config.set(name, Some(&items.join(",")))
                                }
                                SUBTRACT => {
                                    let drop: Vec<&str> =
                                        value.unwrap_or_default().split(',').map(str::trim).collect();
                                    let items: Vec<String> = list(&config)
                                        .into_iter()
                                        .filter(|i| !drop.contains(&i.as_str()))
                                        .collect();
                                    config.set(name, Some(&items.join(",")))
                                }
                                other => Err(TopicStoreError::InvalidRequest(format!(
                                    "Unknown config operation {other}"
                                ))),
                            };
                            result.map_err(|e| failure(&e))?;
                        }
                        if req.validate_only {
                            return Ok(());
                        }
                        broker
                            .set_topic_config(topic.name(), config)
                            .map_err(|e| failure(&e))
                    });
                let resp =
                    incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name);
                match outcome {
                    Ok(()) => resp,
                    Err((code, message)) => resp
                        .with_error_code(code.code())
                        .with_error_message(Some(s(message))),
                }
            })
            .collect()
    })
    .await;
    match result {
        Ok(responses) => IncrementalAlterConfigsResponse::default().with_responses(responses),
        Err(e) => {
            internal_error(&e);
            IncrementalAlterConfigsResponse::default()
        }
    }
}
