//! The controller quorum: the cluster's metadata (broker registrations and fencing, topics
//! and their configs, each partition's replicas, leader, leader epoch and ISR, producer-id
//! blocks) as a log of [`MetadataRecord`]s that every node applies, in order, into a
//! [`MetadataImage`], as Kafka's KRaft does. The records and the image are here; the broker
//! layer does not use them yet.

mod error;
mod image;
mod records;

pub use error::ControllerError;
pub use image::{
    ApplyError, BrokerState, ElectionType, MetadataImage, PartitionState, TopicImage,
    UNCLEAN_LEADER_ELECTION,
};
pub use records::{
    BrokerId, LeaderChange, MetadataRecord, PartitionChange, PartitionRecord, RegisterBroker, Roles,
};
