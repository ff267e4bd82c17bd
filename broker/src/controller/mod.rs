//! The controller quorum: the cluster's metadata (broker registrations and fencing, topics
//! and their configs, each partition's replicas, leader, leader epoch and ISR, producer-id
//! blocks) as a log of [`MetadataRecord`]s that every node applies, in order, into a
//! [`MetadataImage`], as Kafka's KRaft does. [`store`] keeps that log, the Raft vote and
//! snapshots of the image on disk for openraft; [`network`] carries openraft's RPCs between
//! the voters (`controller.quorum.voters`) over the controller listener. The broker layer does not use any of it yet.

mod error;
mod image;
pub mod network;
mod records;
pub mod store;

pub use error::ControllerError;
pub use image::{
    ApplyError, BrokerState, ElectionType, MetadataImage, PartitionState, TopicImage,
    UNCLEAN_LEADER_ELECTION,
};
pub use records::{
    BrokerId, LeaderChange, MetadataRecord, PartitionChange, PartitionRecord, RegisterBroker, Roles,
};
