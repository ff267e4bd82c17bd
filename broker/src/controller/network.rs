//! The controller quorum's network: openraft's RPCs (append entries, vote, install
//! snapshot) between the voters, over TCP on the controller listener (`--controller-addr`).
//!
//! Framing: every message is a 4-byte big-endian length and that many bytes of JSON; a
//! frame above [`MAX_FRAME_BYTES`] is refused. A connection opens with a handshake that
//! carries the cluster id and both node ids, so that a node of another cluster, a node
//! reached at the wrong address, or a second process using this node's id is refused
//! with a message that says so. After the handshake the connection carries one request
//! and its response at a time and is reused for the next. Whatever arrives malformed (bad
//! length, bad JSON, a request before the handshake) closes that connection with a log
//! line before anything reaches Raft, so it changes no state.
//!
//! Besides Raft's RPCs, the listener carries forwarded controller requests
//! ([`ControllerRequest`]: broker registration and heartbeats, topic changes, producer-id
//! blocks): a node that is not the active controller sends them to the one that is, as a
//! Kafka broker forwards its requests to the active controller, and relays the answer.
//!
//! The voter list is Kafka's `controller.quorum.voters`: `1@host:port,2@host:port,…`.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    Infallible, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::store::{RaftNodeId, TypeConfig};
use super::{ControllerError, ControllerReply, ControllerRequest};

/// What answers a forwarded request on the active controller.
pub type Forwarder = Arc<
    dyn Fn(
            ControllerRequest,
        )
            -> Pin<Box<dyn Future<Output = Result<ControllerReply, ControllerError>> + Send>>
        + Send
        + Sync,
>;

/// The largest frame either side accepts; above it the connection is closed.
pub const MAX_FRAME_BYTES: usize = 32 << 20;

/// How long a connection attempt to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

// ---- the voter list ----

/// Why a `controller.quorum.voters` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VotersError {
    /// The list is empty.
    #[error("controller.quorum.voters is empty: expected id@host:port[,id@host:port…]")]
    Empty,
    /// An entry is not `id@host:port`.
    #[error("controller.quorum.voters entry '{0}' is not id@host:port")]
    Malformed(String),
    /// The id is not a node id.
    #[error("controller.quorum.voters entry '{0}': the node id must be a non-negative integer")]
    BadId(String),
    /// The address has no valid port.
    #[error(
        "controller.quorum.voters entry '{0}': expected host:port with a port between 1 and 65535"
    )]
    BadAddress(String),
    /// A node id appears twice.
    #[error("controller.quorum.voters names node {0} twice")]
    DuplicateId(RaftNodeId),
    /// An address appears twice.
    #[error("controller.quorum.voters gives address {0} to two nodes")]
    DuplicateAddress(String),
}

/// Parses `1@host:port,2@host:port,3@host:port` into node id → address.
pub fn parse_voters(voters: &str) -> Result<BTreeMap<RaftNodeId, String>, VotersError> {
    let mut parsed = BTreeMap::new();
    for entry in voters.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, address) = entry
            .split_once('@')
            .ok_or_else(|| VotersError::Malformed(entry.to_string()))?;
        let id: RaftNodeId = id
            .trim()
            .parse()
            .map_err(|_| VotersError::BadId(entry.to_string()))?;
        let address = address.trim();
        let port = address
            .rsplit_once(':')
            .map(|(host, port)| (host, port.parse::<u16>()));
        match port {
            Some((host, Ok(port))) if !host.is_empty() && port != 0 => {}
            _ => return Err(VotersError::BadAddress(entry.to_string())),
        }
        if parsed.values().any(|a| a == address) {
            return Err(VotersError::DuplicateAddress(address.to_string()));
        }
        if parsed.insert(id, address.to_string()).is_some() {
            return Err(VotersError::DuplicateId(id));
        }
    }
    if parsed.is_empty() {
        return Err(VotersError::Empty);
    }
    Ok(parsed)
}

// ---- the wire ----

/// Who a node is, as the handshake tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The cluster id all voters share.
    pub cluster_id: String,
    /// This node's id.
    pub node_id: RaftNodeId,
    /// The voters as this node was configured: every voter must be given the same list.
    pub voters: BTreeMap<RaftNodeId, String>,
}

/// `1@host:port,2@host:port` for messages.
fn voters_text(voters: &BTreeMap<RaftNodeId, String>) -> String {
    voters
        .iter()
        .map(|(id, address)| format!("{id}@{address}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(Debug, Serialize, Deserialize)]
enum Request {
    Hello {
        cluster_id: String,
        from: RaftNodeId,
        to: RaftNodeId,
        voters: BTreeMap<RaftNodeId, String>,
    },
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<RaftNodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    Forward(ControllerRequest),
}

#[derive(Debug, Serialize, Deserialize)]
enum Response {
    Hello(Result<(), String>),
    AppendEntries(Result<AppendEntriesResponse<RaftNodeId>, RaftError<RaftNodeId>>),
    Vote(Result<VoteResponse<RaftNodeId>, RaftError<RaftNodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<RaftNodeId>, RaftError<RaftNodeId, InstallSnapshotError>>,
    ),
    Forward(Result<ControllerReply, ControllerError>),
}

/// What went wrong on a controller connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The socket failed or closed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// A frame announced more than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    TooLarge(usize),
    /// A frame is not a message of this protocol.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The peer refused the handshake, or answered out of turn.
    #[error("refused: {0}")]
    Refused(String),
}

async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &impl Serialize,
) -> Result<(), FrameError> {
    let bytes = serde_json::to_vec(message).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if bytes.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(bytes.len()));
    }
    let mut frame = Vec::with_capacity(4 + bytes.len());
    frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    frame.extend_from_slice(&bytes);
    writer.write_all(&frame).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one frame; `Ok(None)` is a clean close between frames.
async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    reader: &mut R,
) -> Result<Option<T>, FrameError> {
    let mut length = [0u8; 4];
    match reader.read_exact(&mut length).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let length = u32::from_be_bytes(length) as usize;
    if length > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge(length));
    }
    let mut bytes = vec![0u8; length];
    reader.read_exact(&mut bytes).await?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| FrameError::Malformed(e.to_string()))
}

// ---- the server ----

/// Serves the controller listener: answers the voters' Raft RPCs with `raft` and forwarded
/// controller requests with `forward`. Runs until its task is aborted, which also closes
/// every connection it accepted.
pub async fn serve(
    listener: TcpListener,
    raft: Raft<TypeConfig>,
    identity: Identity,
    forward: Forwarder,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "controller listener: accept failed");
                // Out of file descriptors and the like: give the process a moment rather
                // than spin on the error.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (raft, identity, forward) = (raft.clone(), identity.clone(), forward.clone());
        connections.spawn(async move {
            if let Err(e) = serve_connection(stream, &raft, &identity, &forward).await {
                match e {
                    FrameError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
                    e => tracing::warn!(%peer, error = %e, "controller connection closed"),
                }
            }
        });
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    raft: &Raft<TypeConfig>,
    identity: &Identity,
    forward: &Forwarder,
) -> Result<(), FrameError> {
    let _ = stream.set_nodelay(true);
    let Some(hello) = read_frame::<_, Request>(&mut stream).await? else {
        return Ok(());
    };
    let Request::Hello {
        cluster_id,
        from,
        to,
        voters,
    } = hello
    else {
        return Err(FrameError::Malformed(
            "the first message must be the handshake".into(),
        ));
    };
    let refusal = if cluster_id != identity.cluster_id {
        Some(format!(
            "node {from} belongs to cluster {cluster_id}, this node to cluster {}",
            identity.cluster_id
        ))
    } else if to != identity.node_id {
        Some(format!(
            "this is node {}, not node {to}: check controller.quorum.voters",
            identity.node_id
        ))
    } else if from == identity.node_id {
        Some(format!(
            "another process uses node id {from}: node ids must be unique"
        ))
    } else if !identity.voters.contains_key(&from) {
        Some(format!(
            "node {from} is not in this node's controller.quorum.voters"
        ))
    } else if voters != identity.voters {
        Some(format!(
            "node {from} has controller.quorum.voters {}, this node {}: every voter must be given the same list",
            voters_text(&voters),
            voters_text(&identity.voters)
        ))
    } else {
        None
    };
    write_frame(
        &mut stream,
        &Response::Hello(refusal.clone().map_or(Ok(()), Err)),
    )
    .await?;
    if let Some(refusal) = refusal {
        return Err(FrameError::Refused(refusal));
    }
    while let Some(request) = read_frame::<_, Request>(&mut stream).await? {
        let response = match request {
            Request::Hello { .. } => {
                return Err(FrameError::Malformed("a second handshake".into()));
            }
            Request::AppendEntries(rpc) => Response::AppendEntries(raft.append_entries(rpc).await),
            Request::Vote(rpc) => Response::Vote(raft.vote(rpc).await),
            Request::InstallSnapshot(rpc) => {
                Response::InstallSnapshot(raft.install_snapshot(rpc).await)
            }
            Request::Forward(request) => Response::Forward(forward(request).await),
        };
        write_frame(&mut stream, &response).await?;
    }
    Ok(())
}

// ---- the client ----

/// Makes openraft's clients to the other voters.
#[derive(Clone)]
pub struct Network {
    identity: Identity,
}

impl Network {
    /// A factory for the node `identity`.
    pub fn new(identity: Identity) -> Self {
        Self { identity }
    }
}

/// One connection to one voter, re-established when it breaks.
pub struct Peer {
    identity: Identity,
    target: RaftNodeId,
    address: String,
    connection: Option<TcpStream>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: RaftNodeId, node: &BasicNode) -> Peer {
        Peer {
            identity: self.identity.clone(),
            target,
            address: node.addr.clone(),
            connection: None,
        }
    }
}

type RpcResult<T, E> = Result<T, RPCError<RaftNodeId, BasicNode, RaftError<RaftNodeId, E>>>;

impl Peer {
    async fn connect(&self) -> Result<TcpStream, FrameError> {
        let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.address))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("connecting to {}", self.address),
                )
            })??;
        let _ = stream.set_nodelay(true);
        let hello = Request::Hello {
            cluster_id: self.identity.cluster_id.clone(),
            from: self.identity.node_id,
            to: self.target,
            voters: self.identity.voters.clone(),
        };
        write_frame(&mut stream, &hello).await?;
        match read_frame::<_, Response>(&mut stream).await? {
            Some(Response::Hello(Ok(()))) => Ok(stream),
            Some(Response::Hello(Err(refusal))) => {
                tracing::error!(target_node = self.target, address = %self.address, %refusal, "controller peer refused the handshake");
                Err(FrameError::Refused(refusal))
            }
            _ => Err(FrameError::Malformed("no handshake answer".into())),
        }
    }

    /// Sends `request` and reads its response, on the kept connection when there is one.
    async fn call(&mut self, request: Request, timeout: Duration) -> Result<Response, FrameError> {
        let exchange = async {
            let mut stream = match self.connection.take() {
                Some(stream) => stream,
                None => self.connect().await?,
            };
            write_frame(&mut stream, &request).await?;
            let response = read_frame::<_, Response>(&mut stream)
                .await?
                .ok_or_else(|| FrameError::Io(io::ErrorKind::UnexpectedEof.into()))?;
            self.connection = Some(stream);
            Ok(response)
        };
        tokio::time::timeout(timeout, exchange).await.map_err(|_| {
            FrameError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "controller RPC timed out",
            ))
        })?
    }

    /// A peer connection to `target` at `address`, for forwarding controller requests.
    pub(crate) fn new(identity: Identity, target: RaftNodeId, address: String) -> Peer {
        Peer {
            identity,
            target,
            address,
            connection: None,
        }
    }

    /// The node this peer reaches.
    pub(crate) fn target(&self) -> RaftNodeId {
        self.target
    }

    /// Forwards a controller request to this peer (the active controller) and returns its
    /// answer; a connection that fails answers `NotController` with no known leader, so
    /// that the caller retries once the leader is known again.
    pub(crate) async fn forward(
        &mut self,
        request: ControllerRequest,
        timeout: Duration,
    ) -> Result<ControllerReply, ControllerError> {
        match self.call(Request::Forward(request), timeout).await {
            Ok(Response::Forward(answer)) => answer,
            Ok(_) => {
                self.connection = None;
                Err(ControllerError::Raft(format!(
                    "node {} answered a forwarded request out of turn",
                    self.target
                )))
            }
            Err(e) => {
                tracing::debug!(target_node = self.target, error = %e, "forwarding to the active controller failed");
                Err(ControllerError::NotController { leader: None })
            }
        }
    }

    fn unreachable<E: std::error::Error>(
        e: FrameError,
    ) -> RPCError<RaftNodeId, BasicNode, RaftError<RaftNodeId, E>> {
        match e {
            FrameError::Io(ref io) if io.kind() == io::ErrorKind::TimedOut => {
                RPCError::Network(NetworkError::new(&e))
            }
            e => RPCError::Unreachable(Unreachable::new(&e)),
        }
    }

    fn unexpected<E: std::error::Error>()
    -> RPCError<RaftNodeId, BasicNode, RaftError<RaftNodeId, E>> {
        RPCError::Unreachable(Unreachable::new(&FrameError::Malformed(
            "a response of the wrong kind".into(),
        )))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<RaftNodeId>, Infallible> {
        match self
            .call(Request::AppendEntries(rpc), option.hard_ttl())
            .await
            .map_err(Self::unreachable)?
        {
            Response::AppendEntries(result) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(Self::unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<RaftNodeId>, InstallSnapshotError> {
        match self
            .call(Request::InstallSnapshot(rpc), option.hard_ttl())
            .await
            .map_err(Self::unreachable)?
        {
            Response::InstallSnapshot(result) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(Self::unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<RaftNodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<RaftNodeId>, Infallible> {
        match self
            .call(Request::Vote(rpc), option.hard_ttl())
            .await
            .map_err(Self::unreachable)?
        {
            Response::Vote(result) => {
                result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            _ => Err(Self::unexpected()),
        }
    }
}

#[cfg(test)]
mod tests;
