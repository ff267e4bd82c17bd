//! Reading the topics out of a consumer's subscription (the JoinGroup protocol metadata
//! of protocol type `consumer`), which the coordinator needs for offset retention and
//! OffsetDelete. The assignment itself stays the clients' business.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

/// The protocol type of Kafka consumers.
pub(crate) const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// Highest subscription version this build decodes; newer ones only append fields, so
/// their prefix reads as this version.
const MAX_VERSION: i16 = 3;

/// The topics of a `ConsumerProtocolSubscription` (a version i16, then the struct), or
/// `None` if it cannot be read.
pub(crate) fn topics(metadata: &Bytes) -> Option<Vec<String>> {
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if version < 0 {
        return None;
    }
    let subscription =
        ConsumerProtocolSubscription::decode(&mut buf, version.min(MAX_VERSION)).ok()?;
    Some(subscription.topics.iter().map(|t| t.to_string()).collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    /// A v1 subscription to `topics`, as a Java consumer sends it.
    pub(crate) fn subscription(topics: &[&str]) -> Bytes {
        let sub = ConsumerProtocolSubscription::default().with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.to_string()))
                .collect(),
        );
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(1);
        sub.encode(&mut buf, 1).unwrap();
        buf.freeze()
    }

    #[test]
    fn subscription_topics_are_read_back() {
        assert_eq!(
            topics(&subscription(&["a", "b"])),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(topics(&Bytes::from_static(b"x")), None);
    }
}
