//! The configuration of `strand serve`: every setting comes from a flag, a `STRAND_…`
//! environment variable, the TOML file given by `--config`, or its default, in that order
//! of precedence.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Declares each setting once; generates the flags (with their environment variables),
/// the TOML file's shape and the resolved configuration from that one list.
macro_rules! settings {
    ($( $(#[doc = $doc:literal])+ $name:ident : $ty:ty = $default:expr, env = $env:literal; )*) => {
        /// Flags of `strand serve`; each also reads its `STRAND_…` environment variable.
        #[derive(Debug, clap::Args)]
        pub struct ServeArgs {
            /// TOML file with settings (keys are the flag names with `_` for `-`).
            #[arg(long, env = "STRAND_CONFIG")]
            pub config: Option<PathBuf>,
            /// Address advertised to Kafka clients in metadata [default: the listener's bound address].
            #[arg(long, env = "STRAND_ADVERTISED_KAFKA_ADDR")]
            pub advertised_kafka_addr: Option<String>,
            /// The controller quorum's voters, `id@host:port,…` with each voter's controller listener (`controller.quorum.voters`); every node is given the same list [default: this node alone, at its --controller-addr].
            #[arg(long, env = "STRAND_CONTROLLER_QUORUM_VOTERS")]
            pub controller_quorum_voters: Option<String>,
            /// The cluster id a new data directory is formatted with; a directory of another cluster is refused [default: the directory's; for a new one, random alone or derived from --controller-quorum-voters].
            #[arg(long, env = "STRAND_CLUSTER_ID")]
            pub cluster_id: Option<String>,
            $(
                $(#[doc = $doc])+
                #[arg(long, env = $env)]
                pub $name: Option<$ty>,
            )*
        }

        /// The TOML file's shape: every key optional, unknown keys refused.
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct FileSettings {
            advertised_kafka_addr: Option<String>,
            controller_quorum_voters: Option<String>,
            cluster_id: Option<String>,
            $( $name: Option<$ty>, )*
        }

        /// The resolved configuration of `strand serve`.
        // `rest_addr` and `grpc_addr` are reserved until those servers exist.
        #[allow(dead_code)]
        #[derive(Debug, Clone)]
        pub struct ServeConfig {
            /// Address advertised to Kafka clients, when not the listener's own.
            pub advertised_kafka_addr: Option<String>,
            /// `controller.quorum.voters`, when given.
            pub controller_quorum_voters: Option<String>,
            /// The cluster id to format a new data directory with, when given.
            pub cluster_id: Option<String>,
            $( $(#[doc = $doc])+ pub $name: $ty, )*
        }

        impl ServeConfig {
            /// Merges flags and environment (already folded together by clap), the file
            /// and the defaults.
            pub fn resolve(args: ServeArgs) -> anyhow::Result<ServeConfig> {
                let file = match &args.config {
                    Some(path) => load_file(path)?,
                    None => FileSettings::default(),
                };
                Ok(ServeConfig {
                    advertised_kafka_addr: args.advertised_kafka_addr.or(file.advertised_kafka_addr),
                    controller_quorum_voters: args
                        .controller_quorum_voters
                        .or(file.controller_quorum_voters),
                    cluster_id: args.cluster_id.or(file.cluster_id),
                    $( $name: args.$name.or(file.$name).unwrap_or_else(|| $default), )*
                })
            }
        }
    };
}

settings! {
    /// Directory holding topics, committed offsets and schemas [default: ./strand-data].
    data_dir: PathBuf = PathBuf::from("./strand-data"), env = "STRAND_DATA_DIR";
    /// This node's id (`node.id`), the broker id clients see in Metadata [default: 1].
    node_id: i32 = 1, env = "STRAND_NODE_ID";
    /// Kafka protocol listener; port 0 binds a free port [default: 127.0.0.1:9092].
    kafka_addr: SocketAddr = ([127, 0, 0, 1], 9092).into(), env = "STRAND_KAFKA_ADDR";
    /// Controller listener: the controller quorum's Raft traffic and forwarded controller requests; port 0 binds a free port [default: 127.0.0.1:9093].
    controller_addr: SocketAddr = ([127, 0, 0, 1], 9093).into(), env = "STRAND_CONTROLLER_ADDR";
    /// Schema registry HTTP listener [default: 127.0.0.1:8081].
    registry_addr: SocketAddr = ([127, 0, 0, 1], 8081).into(), env = "STRAND_REGISTRY_ADDR";
    /// Admin HTTP listener serving /health and /ready (/metrics: not yet) [default: 127.0.0.1:9644].
    admin_addr: SocketAddr = ([127, 0, 0, 1], 9644).into(), env = "STRAND_ADMIN_ADDR";
    /// REST proxy listener (reserved: no REST proxy is served yet) [default: 127.0.0.1:8082].
    rest_addr: SocketAddr = ([127, 0, 0, 1], 8082).into(), env = "STRAND_REST_ADDR";
    /// gRPC listener (reserved: no gRPC service is served yet) [default: 127.0.0.1:50051].
    grpc_addr: SocketAddr = ([127, 0, 0, 1], 50051).into(), env = "STRAND_GRPC_ADDR";
    /// Create a topic when a client first asks for it, as Kafka does [default: true].
    auto_create_topics: bool = true, env = "STRAND_AUTO_CREATE_TOPICS";
    /// Partitions of an auto-created topic [default: 1].
    num_partitions: i32 = 1, env = "STRAND_NUM_PARTITIONS";
    /// Auto-creation of topics stops once the broker holds this many partitions (`max.broker.partitions`) [default: 10000].
    max_broker_partitions: usize = 10_000, env = "STRAND_MAX_BROKER_PARTITIONS";
    /// Replicas of a topic created without a replication factor, and of auto-created topics (`default.replication.factor`) [default: 1].
    default_replication_factor: i32 = 1, env = "STRAND_DEFAULT_REPLICATION_FACTOR";
    /// Default of the topic config `min.insync.replicas`: the in-sync replicas an acks=all write needs (`min.insync.replicas`) [default: 1].
    min_insync_replicas: i32 = 1, env = "STRAND_MIN_INSYNC_REPLICAS";
    /// A follower that has not caught up with the leader for this many milliseconds leaves the ISR (`replica.lag.time.max.ms`) [default: 30000].
    replica_lag_time_max_ms: u64 = 30_000, env = "STRAND_REPLICA_LAG_TIME_MAX_MS";
    /// Default `segment.bytes` of new topics [default: 1073741824].
    log_segment_bytes: u64 = 1024 * 1024 * 1024, env = "STRAND_LOG_SEGMENT_BYTES";
    /// Default `retention.ms` of new topics; -1 keeps forever [default: 604800000].
    log_retention_ms: i64 = 7 * 24 * 60 * 60 * 1000, env = "STRAND_LOG_RETENTION_MS";
    /// Default `retention.bytes` of new topics; -1 is no limit [default: -1].
    log_retention_bytes: i64 = -1, env = "STRAND_LOG_RETENTION_BYTES";
    /// fsync every log at least this often in milliseconds; acks=all always waits for its own fsync [default: 1000].
    log_flush_interval_ms: u64 = 1000, env = "STRAND_LOG_FLUSH_INTERVAL_MS";
    /// Answer acks=all only once the batch is fsynced; false answers it from the page cache, as a single Kafka broker does [default: true].
    acks_all_fsync: bool = true, env = "STRAND_ACKS_ALL_FSYNC";
    /// Free bytes kept for the internal topics (`__consumer_offsets`, `_schemas`): with less free on the data directory's file system, appends to other topics are refused with KAFKA_STORAGE_ERROR and /health reports it; 0 keeps no reserve [default: 67108864].
    log_dir_reserve_bytes: u64 = 64 * 1024 * 1024, env = "STRAND_LOG_DIR_RESERVE_BYTES";
    /// How often retention and compaction run, in milliseconds [default: 30000].
    log_cleaner_interval_ms: u64 = 30_000, env = "STRAND_LOG_CLEANER_INTERVAL_MS";
    /// Largest record batch a producer may send (`message.max.bytes`) [default: 1048588].
    message_max_bytes: i32 = 1_048_588, env = "STRAND_MESSAGE_MAX_BYTES";
    /// Largest request frame accepted before allocation (`socket.request.max.bytes`) [default: 104857600].
    socket_request_max_bytes: u32 = 104_857_600, env = "STRAND_SOCKET_REQUEST_MAX_BYTES";
    /// Bytes of Fetch responses built but not yet sent that the whole process may hold; a fetch reads only what is free (`queued.max.response.bytes`) [default: 134217728].
    queued_max_response_bytes: usize = 128 * 1024 * 1024, env = "STRAND_QUEUED_MAX_RESPONSE_BYTES";
    /// A connection stops reading requests while its unsent responses exceed this many bytes (`connection.queued.max.response.bytes`) [default: 16777216].
    connection_queued_max_response_bytes: usize = 16 * 1024 * 1024, env = "STRAND_CONNECTION_QUEUED_MAX_RESPONSE_BYTES";
    /// Kafka connections open at once; more are closed as they are accepted (`max.connections`) [default: 2147483647].
    max_connections: usize = i32::MAX as usize, env = "STRAND_MAX_CONNECTIONS";
    /// Kafka connections open at once from one client address (`max.connections.per.ip`) [default: 2147483647].
    max_connections_per_ip: usize = i32::MAX as usize, env = "STRAND_MAX_CONNECTIONS_PER_IP";
    /// Close a Kafka connection that sent no request and took no response bytes for this many milliseconds (`connections.max.idle.ms`) [default: 600000].
    connections_max_idle_ms: u64 = 600_000, env = "STRAND_CONNECTIONS_MAX_IDLE_MS";
    /// How long the first rebalance of an empty consumer group waits for more members (`group.initial.rebalance.delay.ms`) [default: 3000].
    group_initial_rebalance_delay_ms: u64 = 3000, env = "STRAND_GROUP_INITIAL_REBALANCE_DELAY_MS";
    /// Smallest session timeout a consumer may ask for (`group.min.session.timeout.ms`) [default: 6000].
    group_min_session_timeout_ms: u64 = 6000, env = "STRAND_GROUP_MIN_SESSION_TIMEOUT_MS";
    /// Largest session timeout a consumer may ask for (`group.max.session.timeout.ms`) [default: 1800000].
    group_max_session_timeout_ms: u64 = 1_800_000, env = "STRAND_GROUP_MAX_SESSION_TIMEOUT_MS";
    /// Most members of one consumer group (`group.max.size`) [default: 1000].
    group_max_size: usize = 1000, env = "STRAND_GROUP_MAX_SIZE";
    /// Committed offsets of a group empty this long expire (`offsets.retention.minutes`) [default: 10080].
    offsets_retention_minutes: u64 = 7 * 24 * 60, env = "STRAND_OFFSETS_RETENTION_MINUTES";
    /// How often expired offsets are removed, in milliseconds (`offsets.retention.check.interval.ms`) [default: 600000].
    offsets_retention_check_interval_ms: u64 = 600_000, env = "STRAND_OFFSETS_RETENTION_CHECK_INTERVAL_MS";
}

fn load_file(path: &Path) -> anyhow::Result<FileSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn resolve(argv: &[&str]) -> anyhow::Result<ServeConfig> {
        let cli = Cli::try_parse_from(std::iter::once("strand").chain(argv.iter().copied()))?;
        ServeConfig::resolve(cli.args)
    }

    #[test]
    fn defaults_match_the_design_table() -> anyhow::Result<()> {
        let c = resolve(&[])?;
        assert_eq!(c.data_dir, PathBuf::from("./strand-data"));
        assert_eq!(c.kafka_addr.to_string(), "127.0.0.1:9092");
        assert_eq!(c.registry_addr.to_string(), "127.0.0.1:8081");
        assert_eq!(c.admin_addr.to_string(), "127.0.0.1:9644");
        assert_eq!(c.rest_addr.to_string(), "127.0.0.1:8082");
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(c.advertised_kafka_addr, None);
        assert_eq!(c.controller_addr.to_string(), "127.0.0.1:9093");
        assert_eq!(c.controller_quorum_voters, None);
        assert_eq!(
            (
                c.default_replication_factor,
                c.min_insync_replicas,
                c.replica_lag_time_max_ms
            ),
            (1, 1, 30_000),
            "Kafka's defaults"
        );
        Ok(())
    }

    #[test]
    fn flag_beats_file_and_file_beats_default() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("strand.toml");
        std::fs::write(
            &file,
            "kafka_addr = \"127.0.0.1:19092\"\nregistry_addr = \"127.0.0.1:18081\"\nnum_partitions = 3\n",
        )?;
        let file_arg = file.to_string_lossy().into_owned();
        let c = resolve(&["--config", &file_arg, "--kafka-addr", "127.0.0.1:29092"])?;
        assert_eq!(c.kafka_addr.to_string(), "127.0.0.1:29092");
        assert_eq!(c.registry_addr.to_string(), "127.0.0.1:18081");
        assert_eq!(c.num_partitions, 3);
        assert_eq!(c.admin_addr.to_string(), "127.0.0.1:9644");
        Ok(())
    }

    #[test]
    fn cluster_settings_come_from_flags_and_the_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("strand.toml");
        std::fs::write(
            &file,
            "controller_quorum_voters = \"1@h:1,2@h:2\"\nmin_insync_replicas = 2\ncluster_id = \"c\"\n",
        )?;
        let file_arg = file.to_string_lossy().into_owned();
        let c = resolve(&[
            "--config",
            &file_arg,
            "--controller-addr",
            "127.0.0.1:0",
            "--default-replication-factor",
            "3",
            "--replica-lag-time-max-ms",
            "500",
        ])?;
        assert_eq!(c.controller_quorum_voters.as_deref(), Some("1@h:1,2@h:2"));
        assert_eq!(c.cluster_id.as_deref(), Some("c"));
        assert_eq!(c.controller_addr.port(), 0);
        assert_eq!(
            (
                c.default_replication_factor,
                c.min_insync_replicas,
                c.replica_lag_time_max_ms
            ),
            (3, 2, 500)
        );
        Ok(())
    }

    #[test]
    fn unknown_file_key_is_refused_with_its_name() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("strand.toml");
        std::fs::write(&file, "kafka_adr = \"127.0.0.1:1\"\n")?;
        let file_arg = file.to_string_lossy().into_owned();
        let err = match resolve(&["--config", &file_arg]) {
            Ok(_) => anyhow::bail!("a misspelt key was accepted"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("kafka_adr"), "{err}");
        Ok(())
    }
}
