//! The metadata publisher, as Kafka's `BrokerMetadataPublisher`: it follows the metadata
//! images this node's controller member applies and makes the node match each one: the
//! topics of the image exist here with the image's ids and configs, each holding the logs
//! of the partitions whose replicas include this node; topics the image deleted are removed.
//!
//! Applying starts once the image holds this process's own broker registration, unfenced: the
//! metadata log is applied in order, so from then on the image holds every record written
//! before this start, and a topic created through the log that the image lacks was really
//! deleted (rather than not replayed yet).
//!
//! A data directory older than clusters (or whose metadata log was lost) holds topics
//! that are in no metadata log; the publisher bootstraps them into it once (same name, same id, every partition on this node
//! alone), so they keep their data and become the cluster's. The internal topics
//! (`__consumer_offsets`, `_schemas`) stay this node's own for now: their writers (group
//! coordinator, registry) append locally.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;
use uuid::Uuid;

use crate::Broker;
use crate::controller::{
    Controller, ControllerError, ControllerRequest, MetadataImage, TopicImage,
};
use crate::replica::PartitionState as ReplicaState;
use crate::topics::{CONSUMER_OFFSETS, SCHEMAS, TopicSpec};

/// Whether a topic is one of the node's own internal topics, never in the metadata log.
pub(crate) fn node_local(name: &str) -> bool {
    name == CONSUMER_OFFSETS || name == SCHEMAS
}

/// Applies every image this node's controller member applies, until `shutdown` turns
/// true. `incarnation_id` is this process's broker registration.
pub async fn run(
    broker: Arc<Broker>,
    controller: Controller,
    incarnation_id: Uuid,
    mut shutdown: watch::Receiver<bool>,
) {
    let node = broker.node_id();
    let mut images = controller.subscribe();
    loop {
        // Unfenced too: the unfencing gives this broker back the partitions it leads
        // (in the same commit), so the first image published has them led.
        let caught_up = images
            .borrow_and_update()
            .broker(node)
            .is_some_and(|b| b.registration.incarnation_id == incarnation_id && !b.fenced);
        if caught_up {
            break;
        }
        tokio::select! {
            changed = images.changed() => if changed.is_err() { return },
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
    }
    tracing::debug!(
        node,
        "metadata image caught up with this broker's registration"
    );
    if controller.started_empty() {
        // No metadata log on disk at start: whatever this node's topics were in, it is not
        // this log, so they are bootstrapped into it rather than taken as deleted.
        for topic in broker.topics().topics() {
            if topic.is_managed() && !node_local(topic.name()) {
                topic.clear_managed();
            }
        }
    }
    broker.replicas().set_managed();
    bootstrap(&broker, &controller).await;
    loop {
        let image = images.borrow_and_update().clone();
        let b = broker.clone();
        let i = image.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || apply(&b, &i)).await {
            tracing::error!("applying the metadata image failed: {e}");
        }
        broker.publish(image);
        tokio::select! {
            changed = images.changed() => if changed.is_err() { return },
            _ = crate::shutdown::stopped(&mut shutdown) => return,
        }
    }
}

/// Makes this node's topics match `image` (blocking).
fn apply(broker: &Broker, image: &MetadataImage) {
    let node = broker.node_id();
    let store = broker.topics();
    for topic in image.topics() {
        let hosted: Vec<i32> = topic
            .partitions
            .iter()
            .filter(|(_, p)| p.is_replica(node))
            .map(|(index, _)| *index)
            .collect();
        let spec = TopicSpec {
            name: &topic.name,
            id: topic.topic_id,
            partition_count: partition_count(topic),
            hosted,
            configs: &topic.configs,
        };
        let local = match store.apply_topic(&spec) {
            Ok(local) => local,
            Err(e) => {
                tracing::error!(topic = %topic.name, "applying the topic from the metadata log failed: {e}");
                continue;
            }
        };
        for (index, p) in &topic.partitions {
            let Some(log) = local.partition(*index).filter(|_| p.is_replica(node)) else {
                continue;
            };
            let leader_addr = p
                .leader
                .and_then(|l| image.broker(l))
                .map(|b| (b.registration.host.clone(), b.registration.port));
            let state = ReplicaState {
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
            };
            broker
                .replicas()
                .apply_partition_state(&local, *index, log, state, leader_addr);
        }
    }
    for topic in store.topics() {
        if node_local(topic.name()) || !topic.is_managed() {
            // This node's own (internal, or from before clusters and not bootstrapped yet):
            // led here alone.
            for (index, log) in topic.partitions() {
                let state = ReplicaState {
                    leader: Some(node),
                    leader_epoch: 0,
                    partition_epoch: 0,
                    replicas: vec![node],
                    isr: vec![node],
                };
                broker
                    .replicas()
                    .apply_partition_state(&topic, index, log, state, None);
            }
            continue;
        }
        if topic.is_managed() && image.topic(topic.id()).is_none() {
            for (index, _) in topic.partitions() {
                broker.replicas().remove_partition(topic.id(), index);
            }
            match store.remove_topic(topic.name()) {
                Ok(()) => tracing::info!(
                    topic = topic.name(),
                    "topic deleted through the metadata log"
                ),
                Err(e) => {
                    tracing::error!(topic = topic.name(), "removing a deleted topic failed: {e}")
                }
            }
        }
    }
}

/// How often a bootstrap proposal is retried while the quorum has no leader.
const BOOTSTRAP_TRIES: u32 = 600;
/// The pause between those tries (a retry backoff, not a synchronisation).
const BOOTSTRAP_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// How long a bootstrapped topic is waited for in this node's image.
const BOOTSTRAP_APPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A topic's partition count in the image.
pub(crate) fn partition_count(topic: &TopicImage) -> i32 {
    i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX)
}

/// Proposes this node's topics from before clusters into the metadata log, each with its
/// id and every partition on this node.
async fn bootstrap(broker: &Broker, controller: &Controller) {
    let node = broker.node_id();
    for topic in broker.topics().topics() {
        if topic.is_managed() || node_local(topic.name()) {
            continue;
        }
        if controller
            .image()
            .topic_by_name(topic.name())
            .is_some_and(|t| t.topic_id == topic.id())
        {
            continue;
        }
        let count = topic.partition_count();
        let configs: BTreeMap<String, String> = topic.config().overrides().clone();
        let request = ControllerRequest::CreateTopic {
            name: topic.name().to_string(),
            partitions: count,
            replication_factor: 1,
            assignment: Some(vec![vec![node]; usize::try_from(count).unwrap_or(0)]),
            configs,
            topic_id: Some(topic.id()),
        };
        let mut tries = 0;
        loop {
            match controller.request(request.clone()).await {
                Ok(_) => {
                    tracing::info!(
                        topic = topic.name(),
                        id = %topic.id(),
                        "topic from before clusters bootstrapped into the metadata log"
                    );
                    // Applied here before clients are served, so they find it led.
                    let id = topic.id();
                    let mut images = controller.subscribe();
                    let applied = images.wait_for(|image| image.topic(id).is_some());
                    let _ = tokio::time::timeout(BOOTSTRAP_APPLY_WAIT, applied).await;
                }
                // The quorum is electing: the bootstrap waits for it.
                Err(ControllerError::NotController { .. }) if tries < BOOTSTRAP_TRIES => {
                    tries += 1;
                    tokio::time::sleep(BOOTSTRAP_RETRY).await;
                    continue;
                }
                Err(e) => tracing::error!(
                    topic = topic.name(),
                    "bootstrapping the topic into the metadata log failed: {e}"
                ),
            }
            break;
        }
    }
}
