//! A minimal blocking Kafka protocol client for tests: frames requests encoded with the
//! `kafka-protocol` crate over a plain TCP connection and decodes the responses, so that
//! tests speak to `strand serve` exactly as a client library would.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, ProduceRequest,
    RequestHeader, ResponseHeader, TopicName, fetch_response, produce_response,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// How long a test waits for any one response.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// One connection to a Kafka broker.
pub struct KafkaClient {
    stream: TcpStream,
    next_correlation: i32,
    pending: std::collections::VecDeque<(i16, i16, i32)>,
}

impl KafkaClient {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> anyhow::Result<KafkaClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(RESPONSE_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(KafkaClient {
            stream,
            next_correlation: 1,
            pending: Default::default(),
        })
    }

    /// The underlying socket, for sending raw bytes.
    pub fn stream(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Sends a request of `version` without waiting; returns its correlation id.
    pub fn send<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<i32> {
        let correlation_id = self.next_correlation;
        self.next_correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("strand-tests")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, R::header_version(version))?;
        request.encode(&mut buf, version)?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream.write_all(&buf)?;
        self.pending.push_back((R::KEY, version, correlation_id));
        Ok(correlation_id)
    }

    /// Reads one response frame: its correlation id and body (after the header).
    pub fn receive_frame(&mut self, header_version: i16) -> anyhow::Result<(i32, Bytes)> {
        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .context("reading a response length")?;
        let len = i32::from_be_bytes(len);
        if len < 0 {
            bail!("negative response length {len}");
        }
        let mut body = vec![0u8; len as usize];
        self.stream.read_exact(&mut body)?;
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, header_version)?;
        Ok((header.correlation_id, body))
    }

    /// Reads the response to the oldest request sent, checking it answers that request.
    pub fn receive<R: Request>(&mut self) -> anyhow::Result<R::Response> {
        let (key, version, expected) = self.pending.pop_front().context("nothing pending")?;
        if key != R::KEY {
            bail!(
                "the oldest pending request has API key {key}, not {}",
                R::KEY
            );
        }
        let (correlation_id, mut body) =
            self.receive_frame(<R::Response as HeaderVersion>::header_version(version))?;
        if correlation_id != expected {
            bail!("response correlation id {correlation_id}, expected {expected}");
        }
        let response = R::Response::decode(&mut body, version)?;
        if body.has_remaining() {
            bail!("{} bytes left after the response", body.remaining());
        }
        Ok(response)
    }

    /// Sends a request and waits for its response.
    pub fn call<R: Request>(&mut self, version: i16, request: &R) -> anyhow::Result<R::Response> {
        self.send(version, request)?;
        self.receive::<R>()
    }

    /// Forgets the oldest pending request (one answered by nothing, like acks=0 Produce).
    pub fn forget_oldest(&mut self) {
        self.pending.pop_front();
    }
}

/// The API key of a request type.
pub fn api_key<R: Request>() -> ApiKey {
    ApiKey::try_from(R::KEY).unwrap_or(ApiKey::ApiVersions)
}

/// A record for [`batch`]: key, value and headers.
pub type TestRecord<'a> = (
    Option<&'a [u8]>,
    Option<&'a [u8]>,
    &'a [(&'a str, &'a [u8])],
);

/// Encodes records as one RecordBatch v2 with `compression`, timestamps `timestamp + i`.
pub fn batch(records: &[TestRecord<'_>], compression: Compression, timestamp: i64) -> Bytes {
    batch_with_producer(records, compression, timestamp, -1, -1, -1)
}

/// Like [`batch`], for an idempotent producer (id, epoch, base sequence).
pub fn batch_with_producer(
    records: &[TestRecord<'_>],
    compression: Compression,
    timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (k, v, h))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if base_sequence < 0 {
                -1
            } else {
                base_sequence + i as i32
            },
            timestamp: timestamp + i as i64,
            key: k.map(Bytes::copy_from_slice),
            value: v.map(Bytes::copy_from_slice),
            headers: h
                .iter()
                .map(|(n, v)| {
                    (
                        StrBytes::from_string(n.to_string()),
                        Some(Bytes::copy_from_slice(v)),
                    )
                })
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    if let Err(e) = RecordBatchEncoder::encode(&mut buf, &records, &options) {
        panic!("encoding a test batch: {e:#}");
    }
    buf.freeze()
}

/// Decodes every record of a fetched records field.
pub fn decode_records(records: &Bytes) -> anyhow::Result<Vec<Record>> {
    let mut buf = records.clone();
    let mut out = Vec::new();
    while buf.has_remaining() {
        let set = RecordBatchDecoder::decode(&mut buf)?;
        out.extend(set.records);
    }
    Ok(out)
}

/// A topic name in wire form.
pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Creates a topic (CreateTopics v7, replication factor -1) with config overrides.
pub fn create_topic(
    client: &mut KafkaClient,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> anyhow::Result<CreateTopicsResponse> {
    create_replicated_topic(client, topic, partitions, -1, configs)
}

/// Creates a topic (CreateTopics v7) with `replication_factor` (-1: the broker's default)
/// and config overrides.
pub fn create_replicated_topic(
    client: &mut KafkaClient,
    topic: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(&str, &str)],
) -> anyhow::Result<CreateTopicsResponse> {
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(name(topic))
                .with_num_partitions(partitions)
                .with_replication_factor(replication_factor)
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                .with_value(Some(StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                ),
        ]);
    client.call(7, &req)
}

/// A Produce request of one batch to one partition.
pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

/// Produces one batch with acks=all (Produce v9) and returns the partition's answer.
pub fn produce(
    client: &mut KafkaClient,
    topic: &str,
    partition: i32,
    records: Bytes,
) -> anyhow::Result<produce_response::PartitionProduceResponse> {
    let resp = client.call(9, &produce_request(topic, partition, records, -1))?;
    Ok(resp.responses[0].partition_responses[0].clone())
}

/// A Fetch request (min_bytes 1) for one partition from `offset`.
pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 * 1024 * 1024)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1024 * 1024),
                ]),
        ])
}

/// Fetches (v12) one partition from `offset` and returns its data.
pub fn fetch(
    client: &mut KafkaClient,
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
) -> anyhow::Result<fetch_response::PartitionData> {
    let resp = client.call(12, &fetch_request(topic, partition, offset, max_wait_ms))?;
    assert_eq!(resp.session_id, 0, "fetch sessions are declined");
    Ok(resp.responses[0].partitions[0].clone())
}

/// The values of every record in a fetched records field.
pub fn values(records: &Option<Bytes>) -> anyhow::Result<Vec<Vec<u8>>> {
    let records = records.clone().unwrap_or_default();
    Ok(decode_records(&records)?
        .into_iter()
        .map(|r| r.value.map(|v| v.to_vec()).unwrap_or_default())
        .collect())
}

/// Now in milliseconds since the epoch: the timestamp test batches carry, so that the
/// broker's retention (7 days by default) never deletes them mid-test.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
