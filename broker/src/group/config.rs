//! Settings of the group coordinator, named after the Kafka broker configs they mirror.

use std::time::Duration;

/// How the group coordinator behaves: timeouts, limits and offset retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group
    /// waits for more members, extended by the same delay (up to the rebalance timeout)
    /// each time one more joins. Kafka's default is 3000 ms; so is ours.
    pub initial_rebalance_delay: Duration,
    /// `group.min.session.timeout.ms`: smallest session timeout a member may ask for.
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms`: largest session timeout a member may ask for.
    pub max_session_timeout: Duration,
    /// `group.max.size`: most members (and, separately, members still waiting for their
    /// member id) one group holds. Kafka leaves this unbounded; we do not.
    pub max_size: usize,
    /// Most groups the coordinator keeps in memory at once.
    pub max_groups: usize,
    /// `offset.metadata.max.bytes`: largest metadata string a commit may carry.
    pub offset_metadata_max_bytes: usize,
    /// Largest protocol metadata (subscription) or assignment one member may send.
    pub member_metadata_max_bytes: usize,
    /// `offsets.retention.minutes`: committed offsets of a group that has been empty
    /// this long (or of a standalone consumer that has not committed for this long) expire.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are removed.
    pub offsets_retention_check_interval: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            initial_rebalance_delay: Duration::from_millis(3000),
            min_session_timeout: Duration::from_millis(6000),
            max_session_timeout: Duration::from_millis(1_800_000),
            max_size: 1000,
            max_groups: 100_000,
            offset_metadata_max_bytes: 4096,
            member_metadata_max_bytes: 1024 * 1024,
            offsets_retention: Duration::from_secs(7 * 24 * 60 * 60),
            offsets_retention_check_interval: Duration::from_secs(600),
        }
    }
}
