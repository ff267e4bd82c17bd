//! The Kafka protocol client: connections and cluster metadata underneath, the producer,
//! consumer and admin client on top. Wire messages come from `kafka-protocol`; these modules
//! decide what to send, where, and what to do with the answers.

pub(crate) mod admin;
pub(crate) mod assignor;
pub(crate) mod cluster;
pub(crate) mod connection;
pub(crate) mod consumer;
pub(crate) mod group;
pub(crate) mod partitioner;
pub(crate) mod producer;
