//! One TCP connection to one broker, with pipelined requests.
//!
//! Requests are framed (`i32` length, request header, body) and written in order by a writer
//! task; Kafka answers the requests of a connection in the order it received them, so a
//! reader task pairs each response with the oldest pending request and checks that the
//! correlation ids agree. Many requests can be in flight at once; callers await their own
//! response. On connect the client asks the broker which API versions it supports
//! (`ApiVersions`) and each request then uses the highest version both sides speak.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, Result};

/// Largest response accepted; bigger frames mean a broken stream, not a real response.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
/// Requests queued for writing or awaiting their response on one connection.
const MAX_IN_FLIGHT: usize = 256;

/// The versions of each API this client knows how to fill in, by API key.
pub(crate) fn client_versions(key: ApiKey) -> (i16, i16) {
    match key {
        ApiKey::Produce => (3, 11),
        ApiKey::Fetch => (4, 12),
        ApiKey::ListOffsets => (1, 7),
        ApiKey::Metadata => (1, 12),
        ApiKey::OffsetCommit => (2, 8),
        ApiKey::OffsetFetch => (1, 7),
        ApiKey::FindCoordinator => (0, 5),
        ApiKey::JoinGroup => (0, 9),
        ApiKey::Heartbeat => (0, 4),
        ApiKey::LeaveGroup => (0, 5),
        ApiKey::SyncGroup => (0, 5),
        ApiKey::DescribeGroups => (0, 5),
        ApiKey::ListGroups => (0, 4),
        ApiKey::ApiVersions => (0, 3),
        ApiKey::CreateTopics => (2, 7),
        ApiKey::DeleteTopics => (1, 5),
        ApiKey::DescribeConfigs => (1, 4),
        ApiKey::IncrementalAlterConfigs => (0, 1),
        ApiKey::DeleteGroups => (0, 2),
        ApiKey::InitProducerId => (0, 4),
        _ => (0, -1),
    }
}

struct Outgoing {
    correlation_id: i32,
    frame: Bytes,
    reply: Option<oneshot::Sender<Result<Bytes>>>,
}

type Pending = (i32, oneshot::Sender<Result<Bytes>>);

/// A connection to one broker; cheap to share behind an `Arc`.
pub(crate) struct Connection {
    addr: String,
    client_id: StrBytes,
    tx: mpsc::Sender<Outgoing>,
    next_correlation_id: AtomicI32,
    closed: Arc<AtomicBool>,
    versions: HashMap<i16, (i16, i16)>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Connection {
    /// Connects, starts the I/O tasks and negotiates API versions.
    pub(crate) async fn connect(
        addr: &str,
        client_id: &str,
        timeout: Duration,
    ) -> Result<Arc<Connection>> {
        let unreachable = |message: String| ClientError::Unreachable {
            addr: addr.to_string(),
            message,
        };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| unreachable(format!("no answer within {} ms", timeout.as_millis())))?
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
        let (pending_tx, pending_rx) = mpsc::channel(MAX_IN_FLIGHT);
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(write_loop(
            addr.to_string(),
            BufWriter::new(write),
            rx,
            pending_tx,
            closed.clone(),
        ));
        tokio::spawn(read_loop(
            addr.to_string(),
            read,
            pending_rx,
            closed.clone(),
        ));
        let mut conn = Connection {
            addr: addr.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            tx,
            next_correlation_id: AtomicI32::new(0),
            closed,
            versions: HashMap::new(),
        };
        conn.versions = tokio::time::timeout(timeout, conn.negotiate_versions())
            .await
            .map_err(|_| ClientError::Timeout {
                what: format!("ApiVersions to {addr}"),
                millis: timeout.as_millis() as u64,
            })??;
        Ok(Arc::new(conn))
    }

    async fn negotiate_versions(&self) -> Result<HashMap<i16, (i16, i16)>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strand-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        // A broker that does not know v3 answers in v0, which then tells us what it speaks.
        let response = match self.send(&request, 3).await {
            Ok(r) if r.error_code == 0 => r,
            _ => self.send(&ApiVersionsRequest::default(), 0).await?,
        };
        if let Some(err) =
            ClientError::broker(format!("ApiVersions to {}", self.addr), response.error_code)
        {
            return Err(err);
        }
        Ok(response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect())
    }

    /// The broker's address.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection broke (a new one is needed).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed) || self.tx.is_closed()
    }

    /// The highest version of request `R` both this client and the broker speak.
    pub(crate) fn version<R: Request>(&self) -> Result<i16> {
        let key = ApiKey::try_from(R::KEY)
            .map_err(|_| ClientError::Protocol(format!("unknown API key {}", R::KEY)))?;
        let (min, max) = client_versions(key);
        let (bmin, bmax) = self.versions.get(&R::KEY).copied().unwrap_or((0, -1));
        let version = max.min(bmax);
        if version < min.max(bmin) {
            return Err(ClientError::UnsupportedVersion {
                addr: self.addr.clone(),
                api: format!("{key:?}"),
                min,
                max,
            });
        }
        Ok(version)
    }

    /// Sends a request and awaits its response.
    pub(crate) async fn send<R: Request>(&self, request: &R, version: i16) -> Result<R::Response> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.enqueue(request, version, Some(reply_tx)).await?;
        let mut frame = reply_rx
            .await
            .map_err(|_| self.lost("response dropped"))??;
        let header_version = <R::Response as HeaderVersion>::header_version(version);
        ResponseHeader::decode(&mut frame, header_version).map_err(|e| {
            ClientError::Protocol(format!("response header from {}: {e}", self.addr))
        })?;
        R::Response::decode(&mut frame, version).map_err(|e| {
            ClientError::Protocol(format!(
                "decoding {} v{version} response from {}: {e}",
                std::any::type_name::<R::Response>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("response"),
                self.addr
            ))
        })
    }

    /// Sends a request the broker will not answer (a produce with `acks=0`).
    pub(crate) async fn send_without_response<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<()> {
        self.enqueue(request, version, None).await
    }

    async fn enqueue<R: Request>(
        &self,
        request: &R,
        version: i16,
        reply: Option<oneshot::Sender<Result<Bytes>>>,
    ) -> Result<()> {
        if self.is_closed() {
            return Err(self.lost("connection closed"));
        }
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(self.client_id.clone()));
        let header_version = R::header_version(version);
        let encode = || -> std::result::Result<Bytes, String> {
            let size = header
                .compute_size(header_version)
                .and_then(|h| Ok(h + request.compute_size(version)?))
                .map_err(|e| e.to_string())?;
            let mut buf = BytesMut::with_capacity(size + 4);
            buf.put_i32(size as i32);
            header
                .encode(&mut buf, header_version)
                .and_then(|()| request.encode(&mut buf, version))
                .map_err(|e| e.to_string())?;
            Ok(buf.freeze())
        };
        let frame = encode().map_err(|e| {
            ClientError::Protocol(format!("encoding API {} v{version}: {e}", R::KEY))
        })?;
        self.tx
            .send(Outgoing {
                correlation_id,
                frame,
                reply,
            })
            .await
            .map_err(|_| self.lost("connection closed"))
    }

    fn lost(&self, message: &str) -> ClientError {
        ClientError::ConnectionLost {
            addr: self.addr.clone(),
            message: message.to_string(),
        }
    }
}

async fn write_loop(
    addr: String,
    mut socket: BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    mut rx: mpsc::Receiver<Outgoing>,
    pending: mpsc::Sender<Pending>,
    closed: Arc<AtomicBool>,
) {
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        // Write everything already queued, then flush once.
        while let Some(out) = next.take() {
            if let Some(reply) = out.reply
                && pending.send((out.correlation_id, reply)).await.is_err()
            {
                closed.store(true, Ordering::Relaxed);
                return;
            }
            if let Err(e) = socket.write_all(&out.frame).await {
                tracing::debug!(%addr, error = %e, "write failed");
                closed.store(true, Ordering::Relaxed);
                return;
            }
            next = rx.try_recv().ok();
        }
        if let Err(e) = socket.flush().await {
            tracing::debug!(%addr, error = %e, "flush failed");
            closed.store(true, Ordering::Relaxed);
            return;
        }
    }
}

async fn read_loop(
    addr: String,
    mut socket: tokio::net::tcp::OwnedReadHalf,
    mut pending: mpsc::Receiver<Pending>,
    closed: Arc<AtomicBool>,
) {
    let failure = loop {
        let len = match socket.read_i32().await {
            Ok(len) => len,
            Err(e) => break format!("reading response: {e}"),
        };
        if len < 4 || len as usize > MAX_RESPONSE_BYTES {
            break format!("response frame of {len} bytes");
        }
        let mut buf = BytesMut::zeroed(len as usize);
        if let Err(e) = socket.read_exact(&mut buf).await {
            break format!("reading response body: {e}");
        }
        let frame = buf.freeze();
        let correlation_id = (&frame[..4]).get_i32();
        let Some((expected, reply)) = pending.recv().await else {
            break "response without a request".to_string();
        };
        if expected != correlation_id {
            let _ = reply.send(Err(ClientError::Protocol(format!(
                "broker {addr} answered correlation id {correlation_id}, expected {expected}"
            ))));
            break "correlation ids out of order".to_string();
        }
        let _ = reply.send(Ok(frame));
    };
    tracing::debug!(%addr, %failure, "connection closed");
    closed.store(true, Ordering::Relaxed);
    pending.close();
    while let Ok((_, reply)) = pending.try_recv() {
        let _ = reply.send(Err(ClientError::ConnectionLost {
            addr: addr.clone(),
            message: failure.clone(),
        }));
    }
}
