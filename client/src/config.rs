//! Settings of the producer, consumer and admin client, named and defaulted like the Java
//! client's (`linger.ms` is [`ProducerConfig::linger`], `batch.size` is
//! [`ProducerConfig::batch_size`], …) so that Kafka users find what they expect.

use std::time::Duration;

/// Settings shared by every client: where the cluster is and how patient to be.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of one or more brokers to bootstrap from.
    pub bootstrap_servers: Vec<String>,
    /// Sent with every request, for the broker's logs and quotas.
    pub client_id: String,
    /// How long to wait for a TCP connection.
    pub connect_timeout: Duration,
    /// How long to wait for the response to one request.
    pub request_timeout: Duration,
    /// First pause before retrying a retriable error; doubled up to `retry_backoff_max`.
    pub retry_backoff: Duration,
    /// Longest pause between retries.
    pub retry_backoff_max: Duration,
    /// How long a retriable failure may be retried before it is returned.
    pub retry_timeout: Duration,
    /// Metadata older than this is refreshed before use.
    pub metadata_max_age: Duration,
}

impl ClientConfig {
    /// Settings for the cluster reachable through `bootstrap` (comma-separated `host:port`).
    pub fn new(bootstrap: &str) -> Self {
        ClientConfig {
            bootstrap_servers: bootstrap
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            client_id: "strand-client".to_string(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
            retry_timeout: Duration::from_secs(30),
            metadata_max_age: Duration::from_secs(300),
        }
    }
}

/// How many replicas must have a record before the producer counts it as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=0`: no response is awaited; offsets are unknown (-1).
    None,
    /// `acks=1`: the leader appended it.
    Leader,
    /// `acks=all`: every in-sync replica has it (on strand: it is fsynced).
    All,
}

impl Acks {
    pub(crate) fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Compression codec of produced record batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// No compression.
    None,
    /// gzip.
    Gzip,
    /// Snappy (Kafka's framing).
    Snappy,
    /// LZ4 (frame format).
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    pub(crate) fn codec(self) -> kafka_protocol::records::Compression {
        use kafka_protocol::records::Compression as C;
        match self {
            Compression::None => C::None,
            Compression::Gzip => C::Gzip,
            Compression::Snappy => C::Snappy,
            Compression::Lz4 => C::Lz4,
            Compression::Zstd => C::Zstd,
        }
    }
}

/// Settings of a producer.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Cluster connection settings.
    pub client: ClientConfig,
    /// `acks`: durability required before a record counts as delivered.
    pub acks: Acks,
    /// `linger.ms`: how long a partition's batch may wait for more records.
    pub linger: Duration,
    /// `batch.size`: a partition's batch is sent once it holds this many bytes.
    pub batch_size: usize,
    /// `compression.type`.
    pub compression: Compression,
    /// `enable.idempotence`: producer id and sequence numbers, so retries never duplicate.
    pub enable_idempotence: bool,
    /// `max.in.flight.requests.per.connection`: produce requests awaiting a response, per broker.
    pub max_in_flight_requests_per_connection: usize,
    /// `buffer.memory`: bytes of records waiting to be sent; `send` waits when it is full.
    pub buffer_memory: usize,
    /// `max.request.size`: largest record (and request) the producer sends.
    pub max_request_size: usize,
    /// `delivery.timeout.ms`: how long a record may take, retries included.
    pub delivery_timeout: Duration,
    /// `allow.auto.create.topics`: ask the broker to create unknown topics.
    pub allow_auto_create_topics: bool,
}

impl ProducerConfig {
    /// Producer settings with Kafka's defaults (idempotent, `acks=all`, 5 ms linger).
    pub fn new(bootstrap: &str) -> Self {
        ProducerConfig {
            client: ClientConfig::new(bootstrap),
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 16 * 1024,
            compression: Compression::None,
            enable_idempotence: true,
            max_in_flight_requests_per_connection: 5,
            buffer_memory: 32 * 1024 * 1024,
            max_request_size: 1024 * 1024,
            delivery_timeout: Duration::from_secs(120),
            allow_auto_create_topics: false,
        }
    }
}

/// Where a consumer starts when its group has no committed offset for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// The log start offset.
    Earliest,
    /// The high watermark (only new records).
    Latest,
    /// Fail with an error.
    None,
}

/// The partition assignment strategy of a consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    /// `range`: per topic, consecutive partitions to members in member-id order (eager).
    Range,
    /// `cooperative-sticky`: balanced, keeps partitions where they are, and revokes only
    /// the partitions that move (incremental rebalancing).
    CooperativeSticky,
}

impl Assignor {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }
}

/// Settings of a consumer.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Cluster connection settings.
    pub client: ClientConfig,
    /// `group.id`: needed for `subscribe` and for committing offsets.
    pub group_id: Option<String>,
    /// `auto.offset.reset`.
    pub auto_offset_reset: OffsetReset,
    /// `enable.auto.commit`: commit consumed positions every `auto_commit_interval`.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`.
    pub auto_commit_interval: Duration,
    /// `session.timeout.ms`: a member silent for this long is removed from the group.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`: the group's rebalance timeout.
    pub max_poll_interval: Duration,
    /// `partition.assignment.strategy`, in order of preference.
    pub assignors: Vec<Assignor>,
    /// `fetch.min.bytes`.
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes`.
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    pub max_partition_fetch_bytes: i32,
    /// `fetch.max.wait.ms`.
    pub fetch_max_wait: Duration,
    /// `max.poll.records`: most records one `poll` returns.
    pub max_poll_records: usize,
}

impl ConsumerConfig {
    /// Consumer settings with Kafka's defaults, in group `group_id` if given.
    pub fn new(bootstrap: &str, group_id: Option<&str>) -> Self {
        ConsumerConfig {
            client: ClientConfig::new(bootstrap),
            group_id: group_id.map(String::from),
            auto_offset_reset: OffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            assignors: vec![Assignor::Range, Assignor::CooperativeSticky],
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            max_partition_fetch_bytes: 1024 * 1024,
            fetch_max_wait: Duration::from_millis(500),
            max_poll_records: 500,
        }
    }
}
