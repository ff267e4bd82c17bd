//! A minimal blocking Kafka protocol client for tests: frames requests encoded with the
//! `kafka-protocol` crate over a plain TCP connection and decodes the responses, so that
//! tests speak to `strand serve` exactly as a client library would.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
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
