//! A topic's name as the wire carries it (topic lookups live in the replica layer).

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::topics::Topic;

/// A topic's name in wire form.
pub(crate) fn wire_name(topic: &Topic) -> TopicName {
    TopicName(StrBytes::from_string(topic.name().to_string()))
}
