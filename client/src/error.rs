//! The one error type of the client, [`ClientError`], and Kafka's classification of which
//! failures are worth retrying.
//!
//! Every variant is `Clone` so that one failed batch can report the same error to each of
//! its records' delivery results; underlying library errors are kept as their messages.

use kafka_protocol::error::ResponseError;

/// Everything that can go wrong in the client, typed so callers can react to each case.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A configuration value is missing or out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// No TCP connection could be made to a broker.
    #[error("cannot connect to broker {addr}: {message}")]
    Unreachable {
        /// Address dialled.
        addr: String,
        /// Why the connection failed.
        message: String,
    },
    /// An established broker connection broke before the response arrived.
    #[error("connection to broker {addr} lost: {message}")]
    ConnectionLost {
        /// Address of the broker.
        addr: String,
        /// What happened to the connection.
        message: String,
    },
    /// A request got no response within its timeout.
    #[error("{what} timed out after {millis} ms")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long was waited.
        millis: u64,
    },
    /// The broker answered with a Kafka error code.
    #[error("{context}: broker error {error} (code {code})", code = error.code())]
    Broker {
        /// Which request and resource the error is about.
        context: String,
        /// The Kafka error.
        error: ResponseError,
    },
    /// The topic does not exist (and was not auto-created).
    #[error("topic {0} does not exist")]
    UnknownTopic(String),
    /// The partition does not exist in the topic.
    #[error("topic {topic} has no partition {partition}")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// Requested partition.
        partition: i32,
    },
    /// A record is larger than the producer may send in one request.
    #[error("record of {size} bytes exceeds max_request_size of {max} bytes")]
    RecordTooLarge {
        /// Encoded size of the record.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// The broker does not support a version of an API this client can speak.
    #[error("broker {addr} supports no usable version of {api} (client speaks {min}..={max})")]
    UnsupportedVersion {
        /// Broker address.
        addr: String,
        /// The Kafka API.
        api: String,
        /// Lowest version the client speaks.
        min: i16,
        /// Highest version the client speaks.
        max: i16,
    },
    /// The broker sent bytes this client could not decode or did not expect.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The schema registry could not be reached.
    #[error("schema registry {url} unreachable: {message}")]
    RegistryUnreachable {
        /// The URL requested.
        url: String,
        /// The transport error.
        message: String,
    },
    /// The schema registry answered with an error body.
    #[error("schema registry error {code} (HTTP {status}): {message}")]
    Registry {
        /// HTTP status.
        status: u16,
        /// Confluent error code (`40401` subject not found, `409` incompatible, …).
        code: i32,
        /// The registry's message.
        message: String,
    },
    /// A framed record did not start with the Confluent magic byte 0.
    #[error("unknown magic byte {0:#04x}: the bytes are not Confluent-framed Avro")]
    UnknownMagicByte(u8),
    /// A framed record was shorter than the 5-byte Confluent header.
    #[error("framed record of {0} bytes is shorter than the 5-byte schema id header")]
    TruncatedFrame(usize),
    /// The registry does not know the schema id a record was framed with.
    #[error("schema id {0} is not known to the schema registry")]
    UnknownSchemaId(u32),
    /// The subject has no registered schema (needed by `use_latest_version`).
    #[error("subject {0} has no registered schema")]
    UnknownSubject(String),
    /// A schema could not be parsed, or a value does not fit its schema.
    #[error("avro: {context}: {message}")]
    Avro {
        /// What was being done.
        context: String,
        /// The Avro library's explanation.
        message: String,
    },
    /// A JSON Schema could not be compiled, or a value does not validate against it.
    #[error("json schema: {context}: {message}")]
    JsonSchema {
        /// What was being done.
        context: String,
        /// The validator's explanation.
        message: String,
    },
    /// A Protobuf schema did not compile, or a message could not be framed or decoded.
    #[error("protobuf: {context}: {message}")]
    Protobuf {
        /// What was being done.
        context: String,
        /// What went wrong.
        message: String,
    },
    /// The producer, consumer or connection was closed.
    #[error("{0} is closed")]
    Closed(&'static str),
}

impl ClientError {
    /// Whether Kafka classifies this failure as transient, so retrying may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ClientError::Broker { error, .. } => error.is_retriable(),
            ClientError::Unreachable { .. }
            | ClientError::ConnectionLost { .. }
            | ClientError::Timeout { .. } => true,
            _ => false,
        }
    }

    /// The Kafka error code, when the broker returned one.
    pub fn kafka_error(&self) -> Option<ResponseError> {
        match self {
            ClientError::Broker { error, .. } => Some(*error),
            _ => None,
        }
    }

    pub(crate) fn broker(context: impl Into<String>, code: i16) -> Option<ClientError> {
        ResponseError::try_from_code(code).map(|error| ClientError::Broker {
            context: context.into(),
            error,
        })
    }

    pub(crate) fn avro(context: impl Into<String>, err: impl std::fmt::Display) -> ClientError {
        ClientError::Avro {
            context: context.into(),
            message: err.to_string(),
        }
    }
}

/// Result alias used throughout the client.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
