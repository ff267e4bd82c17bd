//! One client connection: framing (an `i32` length before every request and response),
//! request header decoding, and answering pipelined requests in order.
//!
//! A reader task reads and decodes frames and queues each request's pending answer on a
//! bounded channel; a runner task runs those answers one after another, in arrival order
//! (so appends happen in the order they were sent), and hands each reply to the writer,
//! which writes the responses in the same order. A reply that only waits (acks=all waiting
//! for its fsync) is awaited by the writer, not the runner, so the requests behind it are
//! appended meanwhile and one fsync covers them all, as a Kafka producer with several
//! requests in flight expects. The bounds mean a client that sends faster than it reads
//! stalls its own reads instead of growing our memory; the frames read ahead also share a
//! byte budget of one `socket.request.max.bytes`. The runner encodes each response and
//! waits while the connection's encoded-but-unsent bytes exceed
//! `connection.queued.max.response.bytes`, so a client that pipelines fetches and never
//! reads mutes its own reads (as Kafka's SocketServer mutes a channel with a response in
//! flight) instead of pinning one response per request; a Fetch response also holds its
//! grant of the process-wide `queued.max.response.bytes` until written. A frame longer than
//! `socket.request.max.bytes`, a header that does not decode, an unknown API key or an
//! unsupported version closes the connection with a log line, as Kafka does; ApiVersions
//! of a too-new version is answered with `UNSUPPORTED_VERSION` so that the client can
//! retry with an older one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::api_versions;
use super::dispatch::{self, Pending, Reply, RequestContext};
use super::response_budget::{Grant, ResponseBudget};
use super::response_buf::ResponseBuf;
use crate::Broker;

/// Requests read ahead of the one being answered, per connection.
const IN_FLIGHT: usize = 16;

/// A request read ahead, with the share of the connection's byte budget its frame holds
/// until it is answered.
type Queued = (ApiKey, i16, i32, Pending, OwnedSemaphorePermit);

/// What the reader decided about one frame.
pub(crate) enum Decoded {
    /// A request to answer.
    Request(Box<(RequestHeader, RequestKind)>),
    /// ApiVersions of a version newer than ours: answer v0 with `UNSUPPORTED_VERSION`.
    ApiVersionsTooNew(i32),
}

/// Why a frame ends the connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The frame is shorter than a request header's fixed part.
    #[error("frame of {0} bytes is too short for a request header")]
    TooShort(usize),
    /// An API key Kafka does not define.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// An API or version strand does not serve.
    #[error("{api:?} version {version} is not supported")]
    UnsupportedVersion {
        /// The API asked for.
        api: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// A Metadata request naming more topics than `MAX_METADATA_TOPICS`.
    #[error("Metadata request naming {0} topics (at most {MAX_METADATA_TOPICS} are served)")]
    TooManyTopics(usize),
    /// The header or the body does not decode.
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed {
        /// The API asked for.
        api: ApiKey,
        /// The version asked for.
        version: i16,
        /// What the decoder said.
        reason: String,
    },
}

/// Decodes one request frame (without its length prefix).
pub(crate) fn decode_request(mut frame: Bytes) -> Result<Decoded, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::TooShort(frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api = ApiKey::try_from(key).map_err(|()| FrameError::UnknownApiKey(key))?;
    if !api_versions::is_supported(api, version) {
        if api == ApiKey::ApiVersions && version > 0 {
            return Ok(Decoded::ApiVersionsTooNew(correlation_id));
        }
        return Err(FrameError::UnsupportedVersion { api, version });
    }
    let malformed = |reason: String| FrameError::Malformed {
        api,
        version,
        reason,
    };
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .map_err(|e| malformed(format!("{e:#}")))?;
    if api == ApiKey::Metadata
        && let Some(topics) = metadata_topic_count(&frame, version)
        && topics > MAX_METADATA_TOPICS
    {
        return Err(FrameError::TooManyTopics(topics));
    }
    let request =
        RequestKind::decode(api, &mut frame, version).map_err(|e| malformed(format!("{e:#}")))?;
    Ok(Decoded::Request(Box::new((header, request))))
}

/// Most topics one Metadata request may name. Decoding a topic costs some 80 bytes however
/// short its name (5 M empty names in a 10 MB frame decoded to 922 MB), so a longer list is
/// refused before it is decoded; clients that need every topic ask for all of them (a null
/// list) instead.
pub(crate) const MAX_METADATA_TOPICS: usize = 10_000;

/// The number of topics a Metadata request body declares (`None` for all topics or when
/// the count does not even decode, which the decoder then reports).
fn metadata_topic_count(body: &[u8], version: i16) -> Option<usize> {
    if version >= 9 {
        // Flexible versions: a compact array, its length plus one as an unsigned varint.
        let mut n: u64 = 0;
        for (i, b) in body.iter().take(5).enumerate() {
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return (n as usize).checked_sub(1);
            }
        }
        None
    } else {
        let n = i32::from_be_bytes(body.get(..4)?.try_into().ok()?);
        usize::try_from(n).ok()
    }
}

/// Encodes a response frame (length, response header, body) as chunks for one vectored
/// write; the record batches of a Fetch response are referred to, not copied.
pub(crate) fn encode_response(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    response: &ResponseKind,
) -> Result<Vec<Bytes>, String> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api.response_header_version(version);
    let (len, body) = match response {
        ResponseKind::Fetch(fetch) => {
            let shared = fetch
                .responses
                .iter()
                .flat_map(|t| t.partitions.iter())
                .filter_map(|p| p.records.clone())
                .filter(|r| !r.is_empty())
                .collect();
            let mut buf = ResponseBuf::new(shared);
            header
                .encode(&mut buf, header_version)
                .and_then(|()| fetch.encode(&mut buf, version))
                .map_err(|e| format!("{e:#}"))?;
            (buf.len(), buf.into_chunks())
        }
        other => {
            let mut buf = BytesMut::with_capacity(256);
            header
                .encode(&mut buf, header_version)
                .and_then(|()| other.encode(&mut buf, version))
                .map_err(|e| format!("{e:#}"))?;
            (buf.len(), vec![buf.freeze()])
        }
    };
    let len = i32::try_from(len).map_err(|_| "response over 2 GiB".to_string())?;
    let mut chunks = Vec::with_capacity(body.len() + 1);
    chunks.push(Bytes::copy_from_slice(&len.to_be_bytes()));
    chunks.extend(body);
    Ok(chunks)
}

/// Writes every chunk, as few system calls as the socket allows.
async fn write_chunks(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    mut chunks: Vec<Bytes>,
) -> std::io::Result<()> {
    let mut first = 0;
    while first < chunks.len() {
        let slices: Vec<std::io::IoSlice<'_>> = chunks[first..]
            .iter()
            .take(64)
            .map(|c| std::io::IoSlice::new(c))
            .collect();
        let mut written = write.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while written > 0 {
            let chunk = &mut chunks[first];
            if written >= chunk.len() {
                written -= chunk.len();
                first += 1;
            } else {
                bytes::Buf::advance(chunk, written);
                written = 0;
            }
        }
    }
    Ok(())
}

/// Serves one connection until the client closes it or breaks the protocol.
pub(crate) async fn run(
    broker: Arc<Broker>,
    budget: Arc<ResponseBudget>,
    stream: TcpStream,
    peer: SocketAddr,
    _slot: super::listener::Slot,
) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let (tx, rx) = mpsc::channel::<Queued>(IN_FLIGHT);
    let (answers_tx, mut answers) = mpsc::channel::<Answer>(IN_FLIGHT);
    let max_frame = broker.config().socket_request_max_bytes;
    let unsent_limit = broker.config().connection_queued_max_response_bytes;
    let idle = Duration::from_millis(broker.config().connections_max_idle_ms.max(1));
    let reader = tokio::spawn(read_requests(
        broker, budget, read, peer, max_frame, idle, tx,
    ));
    let runner = tokio::spawn(run_requests(rx, answers_tx, unsent_limit));
    while let Some(answer) = answers.recv().await {
        // Held until the frame is written: see `Held`.
        let (frame, _held) = match answer {
            Answer::Frame(frame, held) => (frame, held),
            Answer::Later(api, version, correlation_id, mut later, budget) => {
                let reply = loop {
                    match later.await {
                        Reply::Later(next) => later = next,
                        other => break other,
                    }
                };
                match encode_reply(api, version, correlation_id, reply) {
                    Ok(Some((frame, grant))) => (frame, (Some(budget), None, grant)),
                    Ok(None) => continue,
                    Err(why) => {
                        close(&peer, &why);
                        break;
                    }
                }
            }
            Answer::Close(why) => {
                close(&peer, &why);
                break;
            }
        };
        match tokio::time::timeout(idle, write_chunks(&mut write, frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(%peer, "write failed: {e}");
                break;
            }
            Err(_) => {
                close(&peer, "the client read nothing for connections.max.idle.ms");
                break;
            }
        }
    }
    reader.abort();
    runner.abort();
    let _ = write.shutdown().await;
}

fn close(peer: &SocketAddr, why: &str) {
    tracing::info!(%peer, "closing connection: {why}");
}

/// What a response holds until its last byte is written: the request's share of the
/// read-ahead budget, the response's share of the connection's unsent bytes and, for a
/// Fetch, its grant of the process's response budget.
type Held = (
    Option<OwnedSemaphorePermit>,
    Option<OwnedSemaphorePermit>,
    Option<Grant>,
);

/// What the runner hands the writer, in request order.
enum Answer {
    /// An encoded response frame.
    Frame(Vec<Bytes>, Held),
    /// A reply still waiting (acks=all for its fsync), encoded once it resolves.
    Later(ApiKey, i16, i32, Pending, OwnedSemaphorePermit),
    /// Close the connection, saying why.
    Close(String),
}

/// An encoded response frame and the budget grant its batches hold.
type Encoded = (Vec<Bytes>, Option<Grant>);

/// Encodes a reply: `Ok(None)` when nothing is sent, the frame and the budget grant it
/// holds otherwise, `Err` to close the connection (a Later reply is not expected here).
fn encode_reply(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    reply: Reply,
) -> Result<Option<Encoded>, String> {
    let (response, grant) = match reply {
        Reply::Response(r) => (r, None),
        Reply::Budgeted(r, grant) => (r, Some(grant)),
        Reply::None => return Ok(None),
        Reply::Close(why) => return Err(why),
        Reply::Later(_) => return Err("a waiting reply reached the encoder".to_string()),
    };
    match encode_response(api, version, correlation_id, &response) {
        Ok(frame) => Ok(Some((frame, grant))),
        Err(e) => {
            tracing::error!(?api, version, "cannot encode response: {e}");
            Err(format!("cannot encode a {api:?} v{version} response"))
        }
    }
}

/// Runs each request's handler in arrival order, encodes the replies and passes them on,
/// in order. While the connection's encoded-but-unsent responses exceed `unsent_limit`
/// bytes it waits, running nothing more: the requests queue up behind it, the reader stops
/// reading, and a client that sends without reading holds at most that much (plus one
/// response) instead of one response per request it pipelined.
async fn run_requests(
    mut rx: mpsc::Receiver<Queued>,
    answers: mpsc::Sender<Answer>,
    unsent_limit: usize,
) {
    let unsent_limit = unsent_limit.clamp(1, u32::MAX as usize);
    let unsent = Arc::new(Semaphore::new(unsent_limit));
    while let Some((api, version, correlation_id, pending, budget)) = rx.recv().await {
        let answer = match pending.await {
            Reply::Later(later) => Answer::Later(api, version, correlation_id, later, budget),
            reply => match encode_reply(api, version, correlation_id, reply) {
                Ok(None) => continue,
                Ok(Some((frame, grant))) => {
                    let len: usize = frame.iter().map(Bytes::len).sum();
                    let share = len.clamp(1, unsent_limit) as u32;
                    let Ok(permit) = unsent.clone().acquire_many_owned(share).await else {
                        return;
                    };
                    Answer::Frame(frame, (Some(budget), Some(permit), grant))
                }
                Err(why) => Answer::Close(why),
            },
        };
        let close = matches!(answer, Answer::Close(_));
        if answers.send(answer).await.is_err() || close {
            return;
        }
    }
}

async fn read_requests(
    broker: Arc<Broker>,
    responses: Arc<ResponseBudget>,
    read: tokio::net::tcp::OwnedReadHalf,
    peer: SocketAddr,
    max_frame: u32,
    idle: Duration,
    tx: mpsc::Sender<Queued>,
) {
    // Frames read ahead hold at most one largest frame's worth of bytes (as Kafka, which
    // reads one request per connection at a time, would for a single request).
    let budget = Arc::new(Semaphore::new(max_frame.max(8) as usize));
    // Small: an idle connection holds this buffer, and large frames bypass it.
    let mut read = BufReader::with_capacity(4 * 1024, read);
    loop {
        let len = match tokio::time::timeout(idle, read.read_i32()).await {
            Err(_) => {
                tracing::info!(%peer, "closing connection idle for connections.max.idle.ms");
                return;
            }
            Ok(Ok(len)) => len,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return,
            Ok(Err(e)) => {
                tracing::debug!(%peer, "read failed: {e}");
                return;
            }
        };
        if len < 0 || len as u32 > max_frame {
            tracing::warn!(%peer, len, max = max_frame, "closing connection: frame size outside [0, socket.request.max.bytes]");
            return;
        }
        let Ok(permit) = budget.clone().acquire_many_owned(len.max(1) as u32).await else {
            return;
        };
        let frame = match read_frame(&mut read, len as usize).await {
            Ok(frame) => frame,
            Err(e) => {
                tracing::info!(%peer, len, "connection closed in the middle of a request: {e}");
                return;
            }
        };
        let item = match decode_request(frame) {
            Ok(Decoded::Request(decoded)) => {
                let (header, request) = *decoded;
                let api = match ApiKey::try_from(header.request_api_key) {
                    Ok(api) => api,
                    Err(()) => return,
                };
                let version = header.request_api_version;
                let correlation_id = header.correlation_id;
                let ctx = RequestContext {
                    broker: broker.clone(),
                    budget: responses.clone(),
                    header,
                    peer,
                };
                (
                    api,
                    version,
                    correlation_id,
                    dispatch::dispatch(ctx, request),
                )
            }
            Ok(Decoded::ApiVersionsTooNew(correlation_id)) => {
                let response = api_versions::unsupported_version();
                let pending: Pending = Box::pin(async move { Reply::Response(response) });
                (ApiKey::ApiVersions, 0, correlation_id, pending)
            }
            Err(e) => {
                tracing::warn!(%peer, "closing connection: {e}");
                return;
            }
        };
        let (api, version, correlation_id, pending) = item;
        if tx
            .send((api, version, correlation_id, pending, permit))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Frames up to this size get their whole buffer at once; longer ones grow as their bytes
/// arrive, so that a client announcing a large frame and sending nothing holds little.
const EAGER_FRAME: usize = 1024 * 1024;

async fn read_frame<R: tokio::io::AsyncRead + Unpin>(
    read: &mut R,
    len: usize,
) -> std::io::Result<Bytes> {
    if crate::log::pooled(len) {
        // Large produce requests arrive one after another: a pooled buffer spares each a
        // fresh allocation the kernel must zero page by page.
        let mut buf = crate::log::BUFFERS.take(len);
        read.read_exact(buf.as_mut_slice()).await?;
        return Ok(buf.freeze(len));
    }
    let mut frame = BytesMut::with_capacity(len.min(EAGER_FRAME));
    while frame.len() < len {
        let want = len - frame.len();
        if frame.capacity() == frame.len() {
            frame.reserve(want.min(frame.len().max(EAGER_FRAME)));
        }
        let n = (&mut *read).take(want as u64).read_buf(&mut frame).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(frame.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A frame with a valid fixed header for `api`/`version` and then `body`.
    fn frame(api: i16, version: i16, body: &[u8]) -> Bytes {
        let mut f = Vec::new();
        f.extend_from_slice(&api.to_be_bytes());
        f.extend_from_slice(&version.to_be_bytes());
        f.extend_from_slice(&1i32.to_be_bytes());
        f.extend_from_slice(body);
        Bytes::from(f)
    }

    #[test]
    fn huge_array_count_is_refused_without_allocating_it() {
        // Metadata v12 (flexible): client id null, no tagged fields, then a compact array
        // announcing 2^31 topics in a frame of a few bytes.
        let body = [0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00];
        assert!(decode_request(frame(3, 12, &body)).is_err());
        // Metadata v1 (classic array): length i32::MAX.
        let body = [0xff, 0xff, 0x7f, 0xff, 0xff, 0xff];
        assert!(decode_request(frame(3, 1, &body)).is_err());
    }

    #[test]
    fn unknown_key_and_unsupported_version_are_errors_but_new_api_versions_is_answered() {
        assert!(matches!(
            decode_request(frame(0x7f00, 0, &[])),
            Err(FrameError::UnknownApiKey(_))
        ));
        assert!(matches!(
            decode_request(frame(3, 99, &[])),
            Err(FrameError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            decode_request(frame(18, 99, &[])),
            Ok(Decoded::ApiVersionsTooNew(1))
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(b"abc")),
            Err(FrameError::TooShort(3))
        ));
    }

    #[test]
    fn metadata_naming_too_many_topics_is_refused_before_decoding() {
        // Metadata v1: 5 M empty topic names, the 10 MB request of the attack run.
        let mut body = 5_000_000i32.to_be_bytes().to_vec();
        body.resize(4 + 2 * 5_000_000, 0);
        assert!(matches!(
            decode_request(frame(3, 1, &[[0xff, 0xff].as_slice(), &body].concat())),
            Err(FrameError::TooManyTopics(5_000_000))
        ));
        // Metadata v12 (flexible): the same count as a compact array.
        let mut body = vec![0xff, 0xff, 0x00];
        body.extend_from_slice(&[0xc1, 0x96, 0xb1, 0x02]); // 5_000_001
        body.resize(body.len() + 2 * 5_000_000, 0);
        assert!(matches!(
            decode_request(frame(3, 12, &body)),
            Err(FrameError::TooManyTopics(5_000_000))
        ));
        // A list at the limit is decoded.
        let mut body = vec![0xff, 0xff];
        body.extend_from_slice(&(MAX_METADATA_TOPICS as i32).to_be_bytes());
        for _ in 0..MAX_METADATA_TOPICS {
            body.extend_from_slice(&[0, 1, b'a']);
        }
        assert!(matches!(
            decode_request(frame(3, 1, &body)),
            Ok(Decoded::Request(_))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn random_frames_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_request(Bytes::from(bytes));
        }

        #[test]
        fn random_bodies_of_served_requests_never_panic(
            which in 0..api_versions::SUPPORTED.len(),
            version_pick in any::<u16>(),
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let (api, min, max) = api_versions::SUPPORTED[which];
            let version = min + (version_pick % (max - min + 1) as u16) as i16;
            let _ = decode_request(frame(api as i16, version, &body));
        }
    }
}
