//! Topic administration as the broker carries it out: on a node of a cluster (a controller
//! attached) every change is a proposal to the active controller, and the call returns
//! once this node applied the resulting metadata image, so the caller's next request here
//! sees its change; without a controller (unit tests) the node's own topic store changes.
//!
//! Each function blocks (the topic store does file I/O, and the controller is waited on
//! through the runtime): call them from `spawn_blocking`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::Broker;
use crate::controller::{ControllerReply, ControllerRequest, MetadataImage};
use crate::publisher::{node_local, partition_count};
use crate::topics::{Topic, TopicConfig, TopicStoreError, check_new_topic, check_partition_growth};

/// How long a change waits to be applied on this node once the controller committed it.
const APPLY_WAIT: Duration = Duration::from_secs(30);

/// A created topic, as CreateTopics answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTopic {
    /// The topic's id (nil for a validation only).
    pub id: Uuid,
    /// Its partition count.
    pub partitions: i32,
    /// Its replication factor.
    pub replication_factor: i32,
}

/// A topic to create, as CreateTopics or auto-creation asks for it.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// The name.
    pub name: String,
    /// Partitions, or -1 for `num.partitions` (ignored with an assignment).
    pub partitions: i32,
    /// Replicas per partition, or -1 for `default.replication.factor` (ignored with an
    /// assignment).
    pub replication_factor: i32,
    /// An explicit replica list per partition.
    pub assignment: Option<Vec<Vec<i32>>>,
    /// Config overrides (validated).
    pub config: TopicConfig,
}

impl Broker {
    /// Creates a topic (or, with `validate_only`, checks that it could be created).
    pub fn create_topic(
        &self,
        topic: NewTopic,
        validate_only: bool,
    ) -> Result<CreatedTopic, TopicStoreError> {
        let partitions = match (&topic.assignment, topic.partitions) {
            (Some(a), _) => i32::try_from(a.len()).unwrap_or(i32::MAX),
            (None, -1) => self.topics().default_partitions(),
            (None, n) => n,
        };
        let replication_factor = match (&topic.assignment, topic.replication_factor) {
            (Some(a), _) => a
                .first()
                .map_or(0, |r| i32::try_from(r.len()).unwrap_or(i32::MAX)),
            (None, -1) => self.config().default_replication_factor,
            (None, n) => n,
        };
        let Some(controller) = self.controller() else {
            if replication_factor != 1 {
                return Err(rf_unreachable(replication_factor, 1));
            }
            if let Some(a) = &topic.assignment
                && let Some((p, _)) = a
                    .iter()
                    .enumerate()
                    .find(|(_, r)| r.as_slice() != [self.node_id()])
            {
                return Err(TopicStoreError::InvalidReplicaAssignment(format!(
                    "Partition {p} may only be assigned to broker {}",
                    self.node_id()
                )));
            }
            self.topics().validate_new_topic(&topic.name, partitions)?;
            if validate_only {
                return Ok(CreatedTopic {
                    id: Uuid::nil(),
                    partitions,
                    replication_factor,
                });
            }
            let created = self
                .topics()
                .create_topic(&topic.name, partitions, topic.config)?;
            return Ok(CreatedTopic {
                id: created.id(),
                partitions,
                replication_factor,
            });
        };
        let image = controller.image();
        let local = self.topics().topics();
        let existing = image
            .topics()
            .map(|t| t.name.as_str())
            .chain(local.iter().map(|t| t.name()).filter(|n| node_local(n)));
        check_new_topic(&topic.name, partitions, existing)?;
        let live = image.live_brokers().count();
        if replication_factor < 1 || usize::try_from(replication_factor).unwrap_or(0) > live {
            return Err(rf_unreachable(replication_factor, live));
        }
        if validate_only {
            return Ok(CreatedTopic {
                id: Uuid::nil(),
                partitions,
                replication_factor,
            });
        }
        let request = ControllerRequest::CreateTopic {
            name: topic.name.clone(),
            partitions,
            replication_factor,
            assignment: topic.assignment,
            configs: topic.config.overrides().clone(),
            topic_id: None,
        };
        let id = match block_on(controller.request(request))? {
            ControllerReply::TopicId(id) => id,
            other => {
                return Err(TopicStoreError::InvalidRequest(format!(
                    "unexpected controller answer {other:?}"
                )));
            }
        };
        self.await_applied(move |image| image.topic(id).is_some())?;
        tracing::info!(topic = %topic.name, %id, partitions, replication_factor, "topic created");
        Ok(CreatedTopic {
            id,
            partitions,
            replication_factor,
        })
    }

    /// The topic named `name`, created with the defaults when missing (auto-creation).
    pub fn get_or_create_topic(&self, name: &str) -> Result<Arc<Topic>, TopicStoreError> {
        if self.controller().is_none() {
            return self.topics().get_or_create_topic(name);
        }
        if let Some(topic) = self.topics().topic(name) {
            return Ok(topic);
        }
        let new = NewTopic {
            name: name.to_string(),
            partitions: -1,
            replication_factor: -1,
            assignment: None,
            config: TopicConfig::default(),
        };
        match self.create_topic(new, false) {
            Ok(_) => tracing::info!(topic = name, "topic auto-created"),
            // Another client's request created it meanwhile: wait until it is applied here.
            Err(TopicStoreError::TopicExists(_)) => {
                let taken = name.to_string();
                self.await_applied(move |image| image.topic_by_name(&taken).is_some())?;
            }
            Err(TopicStoreError::Controller(e))
                if e.response_error() == kafka_protocol::ResponseError::TopicAlreadyExists =>
            {
                let taken = name.to_string();
                self.await_applied(move |image| image.topic_by_name(&taken).is_some())?;
            }
            Err(e) => return Err(e),
        }
        self.topics()
            .topic(name)
            .ok_or_else(|| TopicStoreError::UnknownTopic(name.to_string()))
    }

    /// Deletes the topic named `name`; returns its id.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, TopicStoreError> {
        let controller = match self.controller() {
            Some(c) if !node_local(name) => c,
            _ => {
                let id = self
                    .topics()
                    .topic(name)
                    .map(|t| t.id())
                    .ok_or_else(|| TopicStoreError::UnknownTopic(name.to_string()))?;
                self.topics().delete_topic(name)?;
                return Ok(id);
            }
        };
        let id = match block_on(controller.request(ControllerRequest::DeleteTopic {
            name: name.to_string(),
        }))? {
            ControllerReply::TopicId(id) => id,
            other => {
                return Err(TopicStoreError::InvalidRequest(format!(
                    "unexpected controller answer {other:?}"
                )));
            }
        };
        self.await_applied(move |image| image.topic(id).is_none())?;
        tracing::info!(topic = name, %id, "topic deleted");
        Ok(id)
    }

    /// Raises a topic's partition count to `count`, the new partitions on the brokers of
    /// `assignment` when given; with `validate_only` only checks.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignment: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), TopicStoreError> {
        let controller = match self.controller() {
            Some(c) if !node_local(name) => c,
            _ => {
                if let Some(a) = &assignment
                    && a.iter().any(|r| r.as_slice() != [self.node_id()])
                {
                    return Err(TopicStoreError::InvalidReplicaAssignment(format!(
                        "New partitions may only be assigned to broker {}",
                        self.node_id()
                    )));
                }
                return self.topics().create_partitions(name, count, validate_only);
            }
        };
        let image = controller.image();
        let topic = image
            .topic_by_name(name)
            .ok_or_else(|| TopicStoreError::UnknownTopic(name.to_string()))?;
        let current = partition_count(topic);
        check_partition_growth(current, count)?;
        if let Some(a) = &assignment
            && i32::try_from(a.len()).ok() != Some(count - current)
        {
            return Err(TopicStoreError::InvalidRequest(format!(
                "Increasing the number of partitions by {} but {} assignments provided.",
                count - current,
                a.len()
            )));
        }
        if validate_only {
            return Ok(());
        }
        let id = topic.topic_id;
        block_on(controller.request(ControllerRequest::CreatePartitions {
            name: name.to_string(),
            total: count,
            assignment,
        }))?;
        self.await_applied(move |image| {
            image.topic(id).is_some_and(|t| partition_count(t) >= count)
        })?;
        tracing::info!(topic = name, partitions = count, "partitions added");
        Ok(())
    }

    /// Replaces a topic's config overrides with `config`.
    pub fn set_topic_config(&self, name: &str, config: TopicConfig) -> Result<(), TopicStoreError> {
        let controller = match self.controller() {
            Some(c) if !node_local(name) => c,
            _ => return self.topics().set_topic_config(name, config),
        };
        let image = controller.image();
        let topic = image
            .topic_by_name(name)
            .ok_or_else(|| TopicStoreError::UnknownTopic(name.to_string()))?;
        let wanted = config.overrides().clone();
        let mut changes: BTreeMap<String, Option<String>> = topic
            .configs
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .map(|k| (k.clone(), None))
            .collect();
        for (k, v) in &wanted {
            if topic.configs.get(k) != Some(v) {
                changes.insert(k.clone(), Some(v.clone()));
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        let id = topic.topic_id;
        block_on(controller.request(ControllerRequest::AlterConfigs {
            name: name.to_string(),
            changes,
        }))?;
        self.await_applied(move |image| image.topic(id).is_some_and(|t| t.configs == wanted))
    }

    /// Waits until this node applied an image where `done` holds.
    fn await_applied(&self, done: impl Fn(&MetadataImage) -> bool) -> Result<(), TopicStoreError> {
        match block_on(self.wait_published(APPLY_WAIT, done)) {
            Some(_) => Ok(()),
            None => Err(TopicStoreError::NotApplied(APPLY_WAIT.as_millis() as u64)),
        }
    }
}

/// Kafka's message for a replication factor the live brokers cannot reach.
fn rf_unreachable(replication_factor: i32, live: usize) -> TopicStoreError {
    TopicStoreError::InvalidReplicationFactor(format!(
        "Unable to replicate the partition {replication_factor} time(s): The target replication factor of {replication_factor} cannot be reached because only {live} broker(s) are registered."
    ))
}

/// Runs `future` to completion from a blocking thread of the runtime.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(future)
}
