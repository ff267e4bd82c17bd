//! The consumer-group coordinator (Kafka's classic group protocol) and committed offsets.
//!
//! Consumers that share a *group id* split a topic's partitions among themselves: each
//! joins the group (JoinGroup), one of them — the *leader* — computes an assignment with
//! a client-side *assignor* (range, roundrobin, cooperative-sticky: the broker never
//! looks inside one), the coordinator hands each member its share (SyncGroup), and the
//! members prove they are alive with heartbeats within their *session timeout*. Every
//! change of membership is a *rebalance* and starts a new *generation*. Progress is
//! kept as *committed offsets* per group and partition, persisted in the compacted
//! `__consumer_offsets` topic and replayed into memory at start.
//!
//! This layer knows groups, not sockets or API versions: `kafka::groups` translates
//! requests into calls on [`GroupCoordinator`]. Open `coordinator` for the rebalance
//! state machine and its timers, `state` for one group's data, `member` for a member,
//! `offsets` for commits, fetches, deletion and retention, and `store` for the record
//! format in `__consumer_offsets`.

mod config;
mod coordinator;
mod error;
mod member;
mod offsets;
mod state;
mod store;
mod subscription;

pub use config::GroupConfig;
pub use coordinator::{GroupCoordinator, JoinRequest, LeavingMember, SyncRequest};
pub use error::GroupError;
pub use offsets::{CommitRequest, FetchedOffset, OffsetToCommit};
pub use state::GroupState;

#[cfg(test)]
mod tests;
