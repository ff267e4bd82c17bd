//! Errors of the group coordinator. Each variant is one of Kafka's group error codes
//! (named the same), so the protocol layer maps them one to one.

/// Everything the group coordinator can refuse or fail at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The group id is empty where a group id is required.
    #[error("the group id is not valid")]
    InvalidGroupId,
    /// The member id is not (or no longer) a member of the group.
    #[error("the member is not known to the group (or was removed)")]
    UnknownMemberId,
    /// The generation in the request is not the group's current generation.
    #[error("the generation is not the group's current generation")]
    IllegalGeneration,
    /// The group is rebalancing; the member must rejoin.
    #[error("the group is rebalancing, rejoin is needed")]
    RebalanceInProgress,
    /// A new member must rejoin with the member id it is given here (JoinGroup v4+).
    #[error("member id {member_id} assigned; rejoin with it")]
    MemberIdRequired {
        /// The member id to join with.
        member_id: String,
    },
    /// Another member now holds this `group.instance.id`.
    #[error("another member with the same group.instance.id has joined")]
    FencedInstanceId,
    /// The group already holds `group.max.size` members.
    #[error("the group has reached its maximum size of {max} members")]
    GroupMaxSizeReached {
        /// The configured maximum.
        max: usize,
    },
    /// The group still has members.
    #[error("the group is not empty")]
    NonEmptyGroup,
    /// No group by that id exists.
    #[error("the group does not exist")]
    GroupIdNotFound,
    /// The protocol type or protocols do not match the group's.
    #[error("the member's protocol type or protocols are incompatible with the group's")]
    InconsistentGroupProtocol,
    /// The session timeout is outside the broker's allowed range.
    #[error("session timeout {asked_ms} ms is outside [{min_ms}, {max_ms}] ms")]
    InvalidSessionTimeout {
        /// What the member asked for.
        asked_ms: i32,
        /// `group.min.session.timeout.ms`.
        min_ms: u128,
        /// `group.max.session.timeout.ms`.
        max_ms: u128,
    },
    /// A commit's metadata string is longer than `offset.metadata.max.bytes`.
    #[error("offset metadata of {size} bytes exceeds the limit of {max} bytes")]
    OffsetMetadataTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A member's protocol metadata or assignment is larger than allowed.
    #[error("member {what} of {size} bytes exceeds the limit of {max} bytes")]
    MemberMetadataTooLarge {
        /// Which blob: "metadata" or "assignment".
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The group is subscribed to the topic whose offsets were to be deleted.
    #[error("the group is subscribed to the topic")]
    GroupSubscribedToTopic,
    /// The group is being deleted or unloaded, or the coordinator holds too many groups.
    #[error("the coordinator is not available for this group: {reason}")]
    CoordinatorNotAvailable {
        /// Why.
        reason: &'static str,
    },
    /// Writing to or reading from `__consumer_offsets` failed.
    #[error("__consumer_offsets: {0}")]
    Storage(String),
    /// A record in `__consumer_offsets` could not be decoded.
    #[error("__consumer_offsets record at offset {offset}: {reason}")]
    CorruptRecord {
        /// Offset of the record in the log.
        offset: i64,
        /// What was wrong.
        reason: String,
    },
}
