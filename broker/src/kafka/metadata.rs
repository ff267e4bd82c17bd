//! Metadata: the broker list (every live broker of the metadata image, at its advertised
//! address), the active controller, the cluster id and the asked topics with their partitions, creating missing topics when auto-creation
//! is on and the client allows it: at most `MAX_AUTO_CREATED_PER_REQUEST` per request and
//! none beyond `max.broker.partitions` partitions in the broker. A topic named several times
//! is answered once.

use std::collections::HashSet;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::dispatch::RequestContext;
use super::error::cluster_error;
use crate::Broker;
use crate::topics::{CONSUMER_OFFSETS, Topic};

/// Answers Metadata.
pub(crate) async fn handle(ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    let broker = &ctx.broker;
    let version = ctx.version();
    let allow_create =
        broker.config().auto_create_topics && (version < 4 || req.allow_auto_topic_creation);
    let asked = match req.topics {
        Some(topics) if !(version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    let topics = match asked {
        None => broker
            .topics()
            .topics()
            .iter()
            .map(|t| describe_topic(broker, t))
            .collect(),
        Some(asked) => {
            // Each topic is answered once however often it is named, as Kafka answers the
            // set of names asked.
            let mut seen_names = HashSet::new();
            let mut seen_ids = HashSet::new();
            let mut created = 0;
            let mut out = Vec::new();
            for t in asked {
                match t.name {
                    Some(name) => {
                        if seen_names.insert(name.clone()) {
                            let create = if !allow_create {
                                Create::No
                            } else if created < MAX_AUTO_CREATED_PER_REQUEST {
                                Create::Yes
                            } else {
                                Create::Throttled
                            };
                            let (topic, made) = lookup_by_name(broker, name, create).await;
                            created += usize::from(made);
                            out.push(topic);
                        }
                    }
                    None => {
                        if seen_ids.insert(t.topic_id) {
                            out.push(lookup_by_id(broker, t.topic_id));
                        }
                    }
                }
            }
            out
        }
    };
    broker_metadata(broker).with_topics(topics)
}

/// The broker list, cluster id and controller: the parts every Metadata response shares.
pub(crate) fn broker_metadata(broker: &Broker) -> MetadataResponse {
    let (brokers, controller) = live_brokers(broker);
    MetadataResponse::default()
        .with_brokers(
            brokers
                .into_iter()
                .map(|(id, host, port)| {
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(id))
                        .with_host(StrBytes::from_string(host))
                        .with_port(port)
                })
                .collect(),
        )
        .with_cluster_id(Some(StrBytes::from_string(
            broker.topics().cluster_id().to_string(),
        )))
        .with_controller_id(BrokerId(controller))
}

/// The live (registered, unfenced) brokers as (node id, advertised host, port), and the
/// active controller's id (-1 when none is known), from the metadata image; a broker
/// without a controller (unit tests) is a cluster of itself alone.
pub(crate) fn live_brokers(broker: &Broker) -> (Vec<(i32, String, i32)>, i32) {
    match broker.controller() {
        Some(controller) => {
            let image = controller.image();
            let brokers = image
                .live_brokers()
                .map(|b| {
                    let r = &b.registration;
                    (r.node_id, r.host.clone(), i32::from(r.port))
                })
                .collect();
            (brokers, controller.leader_id().unwrap_or(-1))
        }
        None => {
            let (host, port) = broker.config().advertised();
            let me = broker.node_id();
            (vec![(me, host.to_string(), port)], me)
        }
    }
}

/// Most topics one Metadata request may auto-create; the rest are answered
/// `THROTTLING_QUOTA_EXCEEDED` (retriable, as Kafka answers topic creations beyond its
/// controller mutation quota), so that one request naming hundreds of new topics cannot
/// open thousands of files at once.
const MAX_AUTO_CREATED_PER_REQUEST: usize = 20;

/// Whether a missing topic may be auto-created by this lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    /// Auto-creation is off or the client did not allow it.
    No,
    /// Create it.
    Yes,
    /// Allowed, but this request already created its share.
    Throttled,
}

/// The topic named `name`, and whether this lookup created it.
async fn lookup_by_name(
    broker: &Arc<Broker>,
    name: TopicName,
    create: Create,
) -> (MetadataResponseTopic, bool) {
    if let Some(topic) = broker.topics().topic(&name) {
        return (describe_topic(broker, &topic), false);
    }
    let error = |code: ResponseError| {
        let topic = MetadataResponseTopic::default()
            .with_name(Some(name.clone()))
            .with_error_code(code.code());
        (topic, false)
    };
    if let Err(e) = crate::topics::validate_topic_name(&name) {
        return error(cluster_error(&e));
    }
    match create {
        Create::No => return error(ResponseError::UnknownTopicOrPartition),
        Create::Throttled => return error(ResponseError::ThrottlingQuotaExceeded),
        Create::Yes => {}
    }
    let limit = broker.config().max_broker_partitions;
    let partitions: usize = broker
        .topics()
        .topics()
        .iter()
        .map(|t| t.partition_count().max(0) as usize)
        .sum();
    if partitions + broker.config().num_partitions.max(1) as usize > limit {
        tracing::warn!(
            topic = %name.as_str(),
            partitions,
            limit,
            "not auto-creating a topic: the broker holds max.broker.partitions partitions"
        );
        return error(ResponseError::PolicyViolation);
    }
    let b = broker.clone();
    let n = name.to_string();
    match tokio::task::spawn_blocking(move || b.get_or_create_topic(&n)).await {
        Ok(Ok(topic)) => (describe_topic(broker, &topic), true),
        Ok(Err(e)) => {
            tracing::warn!(topic = %name.as_str(), "auto-creation failed: {e}");
            error(cluster_error(&e))
        }
        Err(e) => error(super::error::internal_error(&e)),
    }
}

fn lookup_by_id(broker: &Broker, id: Uuid) -> MetadataResponseTopic {
    match broker.topics().topic_by_id(id) {
        Some(topic) => describe_topic(broker, &topic),
        None => MetadataResponseTopic::default()
            .with_name(None)
            .with_topic_id(id)
            .with_error_code(ResponseError::UnknownTopicId.code()),
    }
}

/// A topic as Metadata shows it: for a topic of the cluster, each partition's leader,
/// leader epoch, replicas, ISR and offline replicas from the metadata image; for the
/// node's own topics (and without a controller), every partition led by this broker.
pub(crate) fn describe_topic(broker: &Broker, topic: &Topic) -> MetadataResponseTopic {
    let node = BrokerId(broker.node_id());
    let image = broker.controller().map(|c| c.image());
    let cluster_topic = image
        .as_ref()
        .and_then(|image| image.topic(topic.id()).map(|t| (image, t)));
    let partitions = match cluster_topic {
        Some((image, t)) => t
            .partitions
            .iter()
            .map(|(index, p)| {
                let ids = |ids: &[i32]| ids.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
                let offline: Vec<i32> = p
                    .replicas
                    .iter()
                    .copied()
                    .filter(|b| !image.is_live(*b))
                    .collect();
                let partition = MetadataResponsePartition::default()
                    .with_partition_index(*index)
                    .with_leader_id(BrokerId(p.leader.unwrap_or(-1)))
                    .with_leader_epoch(p.leader_epoch)
                    .with_replica_nodes(ids(&p.replicas))
                    .with_isr_nodes(ids(&p.isr))
                    .with_offline_replicas(ids(&offline));
                if p.leader.is_none() {
                    partition.with_error_code(ResponseError::LeaderNotAvailable.code())
                } else {
                    partition
                }
            })
            .collect(),
        None => (0..topic.partition_count())
            .map(|p| {
                MetadataResponsePartition::default()
                    .with_partition_index(p)
                    .with_leader_id(node)
                    .with_leader_epoch(0)
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![node])
            })
            .collect(),
    };
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(
            topic.name().to_string(),
        ))))
        .with_topic_id(topic.id())
        .with_is_internal(topic.name() == CONSUMER_OFFSETS)
        .with_partitions(partitions)
}
