//! Finding the topic a request names, by name or (in newer versions) by topic id.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::Broker;
use crate::topics::Topic;

/// The topic named `name`, or with id `id` when `by_id`; the error is the code Kafka
/// answers for an unknown one.
pub(crate) fn topic(
    broker: &Broker,
    name: &TopicName,
    id: Uuid,
    by_id: bool,
) -> Result<Arc<Topic>, ResponseError> {
    if by_id {
        broker
            .topics()
            .topic_by_id(id)
            .ok_or(ResponseError::UnknownTopicId)
    } else {
        broker
            .topics()
            .topic(name)
            .ok_or(ResponseError::UnknownTopicOrPartition)
    }
}

/// A topic's name in wire form.
pub(crate) fn wire_name(topic: &Topic) -> TopicName {
    TopicName(StrBytes::from_string(topic.name().to_string()))
}
