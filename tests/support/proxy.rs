//! A fault-injecting TCP proxy for cluster tests: it listens on a loopback port and
//! forwards every connection to a target, and the test can break the link while the
//! processes on both ends keep running. A *cut* resets every open connection and every
//! new one (a crashed peer or a firewall that rejects); a *blackhole* forwards nothing
//! and reads only until its buffers fill, so the sender sees what a partition where
//! packets vanish looks like (writes stall, nothing comes back, no error until its own
//! timeouts fire); a *delay* holds every chunk back for a while; *heal* undoes them.
//!
//! Faults apply to all connections, to one direction (*upstream* is the connecting side
//! towards the target, *downstream* the replies), or only to the connections opened by one
//! [`Peer`], which a [`Classifier`] tells apart (a cluster tells its nodes apart by which
//! process owns the connecting socket, so that a node can be cut off from the other nodes
//! while the test's own clients still reach it). A connection suffers every fault that
//! applies to it. A one-way *cut* does not exist: TCP cannot lose one direction without
//! the connection noticing, so a one-way partition is a one-way blackhole.
//!
//! Bytes are forwarded in order and unchanged, so a blackhole that heals resumes the
//! stream where it stopped, as TCP's retransmission would.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Who opened a proxied connection, as a [`Classifier`] tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Peer {
    /// A cluster node, by node id.
    Node(i32),
    /// Anyone else: the test's own clients, or a connection the classifier cannot place.
    Other,
}

/// Tells who opened a connection from its two ends: the connecting side's address and the
/// proxy's own (local) address. Runs on a blocking thread once per accepted connection.
pub type Classifier = Arc<dyn Fn(SocketAddr, SocketAddr) -> Peer + Send + Sync>;

/// A direction of a proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the connecting side to the target.
    Upstream,
    /// From the target back to the connecting side.
    Downstream,
}

/// What happens to the bytes of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flow {
    /// Forwarded as they come.
    #[default]
    Pass,
    /// Each chunk is forwarded this long after it was read.
    Delay(Duration),
    /// Nothing is forwarded; the proxy stops reading once its buffers are full.
    Blackhole,
}

impl Flow {
    /// The worse of two flows: a blackhole over any delay, the longer delay over a shorter.
    fn worst(self, other: Flow) -> Flow {
        match (self, other) {
            (Flow::Blackhole, _) | (_, Flow::Blackhole) => Flow::Blackhole,
            (Flow::Delay(a), Flow::Delay(b)) => Flow::Delay(a.max(b)),
            (Flow::Delay(d), Flow::Pass) | (Flow::Pass, Flow::Delay(d)) => Flow::Delay(d),
            (Flow::Pass, Flow::Pass) => Flow::Pass,
        }
    }
}

/// The faults of a link: whether it is cut, and the flow of each direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Link {
    cut: bool,
    upstream: Flow,
    downstream: Flow,
}

impl Link {
    fn flow(&self, direction: Direction) -> Flow {
        match direction {
            Direction::Upstream => self.upstream,
            Direction::Downstream => self.downstream,
        }
    }

    fn set_flow(&mut self, direction: Option<Direction>, flow: Flow) {
        if direction != Some(Direction::Downstream) {
            self.upstream = flow;
        }
        if direction != Some(Direction::Upstream) {
            self.downstream = flow;
        }
    }

    fn worst(self, other: Link) -> Link {
        Link {
            cut: self.cut || other.cut,
            upstream: self.upstream.worst(other.upstream),
            downstream: self.downstream.worst(other.downstream),
        }
    }
}

/// Everything the connections of a proxy follow, published on a `watch` channel so that a
/// change reaches every open connection at once.
#[derive(Debug, Clone)]
struct State {
    target: SocketAddr,
    all: Link,
    peers: BTreeMap<Peer, Link>,
}

impl State {
    /// The faults a connection opened by `peer` suffers.
    fn link(&self, peer: Peer) -> Link {
        self.peers
            .get(&peer)
            .map_or(self.all, |link| self.all.worst(*link))
    }
}

/// Counters a test can wait on.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicUsize,
    open: AtomicUsize,
    upstream_read: AtomicU64,
    downstream_read: AtomicU64,
}

/// A running proxy; it stops accepting when dropped, and its open connections end.
pub struct Proxy {
    addr: SocketAddr,
    state: watch::Sender<State>,
    counters: Arc<Counters>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy on a free loopback port forwarding to `target`; every connection is
    /// from [`Peer::Other`].
    pub async fn start(target: SocketAddr) -> io::Result<Proxy> {
        Self::start_with(target, None).await
    }

    /// Like [`Proxy::start`], telling connections apart with `classifier`.
    pub async fn start_with(
        target: SocketAddr,
        classifier: Option<Classifier>,
    ) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (state, _) = watch::channel(State {
            target,
            all: Link::default(),
            peers: BTreeMap::new(),
        });
        let counters = Arc::new(Counters::default());
        let accept = tokio::spawn(accept_loop(
            listener,
            state.clone(),
            classifier,
            counters.clone(),
        ));
        Ok(Proxy {
            addr,
            state,
            counters,
            accept,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address new connections are forwarded to.
    pub fn target(&self) -> SocketAddr {
        self.state.borrow().target
    }

    /// Forwards new connections to `target` from now on (a restarted process on new ports).
    pub fn set_target(&self, target: SocketAddr) {
        self.state.send_modify(|s| s.target = target);
    }

    /// Resets every open connection and every new one until healed.
    pub fn cut(&self) {
        self.state.send_modify(|s| s.all.cut = true);
    }

    /// Forwards nothing in either direction until healed.
    pub fn blackhole(&self) {
        self.state
            .send_modify(|s| s.all.set_flow(None, Flow::Blackhole));
    }

    /// Holds every chunk in either direction back by `delay`.
    pub fn delay(&self, delay: Duration) {
        self.state
            .send_modify(|s| s.all.set_flow(None, Flow::Delay(delay)));
    }

    /// Undoes [`Proxy::cut`], [`Proxy::blackhole`] and [`Proxy::delay`] and the faults of
    /// each direction (not those set for one peer).
    pub fn heal(&self) {
        self.state.send_modify(|s| s.all = Link::default());
    }

    /// The faults of one direction of every connection.
    pub fn direction(&self, direction: Direction) -> DirectionFaults<'_> {
        DirectionFaults {
            proxy: self,
            direction,
        }
    }

    /// The faults of the connections opened by `peer`.
    pub fn peer(&self, peer: Peer) -> PeerFaults<'_> {
        PeerFaults { proxy: self, peer }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.counters.accepted.load(Ordering::SeqCst)
    }

    /// Connections open now (accepted and not yet ended).
    pub fn open_connections(&self) -> usize {
        self.counters.open.load(Ordering::SeqCst)
    }

    /// Bytes read so far in `direction` (forwarded or still held).
    pub fn bytes_read(&self, direction: Direction) -> u64 {
        match direction {
            Direction::Upstream => self.counters.upstream_read.load(Ordering::SeqCst),
            Direction::Downstream => self.counters.downstream_read.load(Ordering::SeqCst),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Open connections see the cut and end; the channel closing would end them too.
        self.state.send_modify(|s| s.all.cut = true);
    }
}

/// The faults of one direction of a proxy's connections.
pub struct DirectionFaults<'a> {
    proxy: &'a Proxy,
    direction: Direction,
}

impl DirectionFaults<'_> {
    /// Forwards nothing in this direction until healed.
    pub fn blackhole(&self) {
        self.set(Flow::Blackhole);
    }

    /// Holds every chunk in this direction back by `delay`.
    pub fn delay(&self, delay: Duration) {
        self.set(Flow::Delay(delay));
    }

    /// Forwards this direction freely again.
    pub fn heal(&self) {
        self.set(Flow::Pass);
    }

    fn set(&self, flow: Flow) {
        let direction = self.direction;
        self.proxy
            .state
            .send_modify(|s| s.all.set_flow(Some(direction), flow));
    }
}

/// The faults of the connections one peer opens through a proxy.
pub struct PeerFaults<'a> {
    proxy: &'a Proxy,
    peer: Peer,
}

impl PeerFaults<'_> {
    /// Resets this peer's open connections and its new ones until healed.
    pub fn cut(&self) {
        self.modify(|link| link.cut = true);
    }

    /// Forwards nothing of this peer's connections, either way, until healed.
    pub fn blackhole(&self) {
        self.modify(|link| link.set_flow(None, Flow::Blackhole));
    }

    /// Holds every chunk of this peer's connections back by `delay`.
    pub fn delay(&self, delay: Duration) {
        self.modify(|link| link.set_flow(None, Flow::Delay(delay)));
    }

    /// Forwards this peer's connections freely again (faults of all connections stay).
    pub fn heal(&self) {
        let peer = self.peer;
        self.proxy.state.send_modify(|s| {
            s.peers.remove(&peer);
        });
    }

    fn modify(&self, change: impl FnOnce(&mut Link)) {
        let peer = self.peer;
        self.proxy
            .state
            .send_modify(|s| change(s.peers.entry(peer).or_default()));
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: watch::Sender<State>,
    classifier: Option<Classifier>,
    counters: Arc<Counters>,
) {
    loop {
        let (client, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("proxy {:?}: accept failed: {e}", listener.local_addr());
                // Out of descriptors: let connections end rather than spin on the error.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        counters.accepted.fetch_add(1, Ordering::SeqCst);
        counters.open.fetch_add(1, Ordering::SeqCst);
        let open = OpenGuard(counters.clone());
        let (state, classifier, counters) =
            (state.subscribe(), classifier.clone(), counters.clone());
        tokio::spawn(async move {
            let _open = open;
            let peer = match (classifier, client.local_addr()) {
                (Some(classify), Ok(local)) => {
                    tokio::task::spawn_blocking(move || classify(from, local))
                        .await
                        .unwrap_or(Peer::Other)
                }
                _ => Peer::Other,
            };
            serve_connection(client, peer, state, counters).await;
        });
    }
}

/// Counts a connection open until dropped.
struct OpenGuard(Arc<Counters>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve_connection(
    client: TcpStream,
    peer: Peer,
    mut state: watch::Receiver<State>,
    counters: Arc<Counters>,
) {
    // A new connection through a blackholed upstream waits here, unanswered, as a SYN that
    // vanishes would; it reaches the target once healed (unless its opener gave up).
    let ready = state
        .wait_for(|s| {
            let link = s.link(peer);
            link.cut || link.upstream != Flow::Blackhole
        })
        .await
        .map(|s| (s.link(peer).cut, s.target));
    let target = match ready {
        Ok((false, target)) => target,
        _ => return reset(&client),
    };
    let server = tokio::select! {
        connected = TcpStream::connect(target) => connected,
        _ = cut(&mut state, peer) => return reset(&client),
    };
    let Ok(server) = server else {
        return reset(&client);
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pump(
            client_read,
            server_write,
            Direction::Upstream,
            peer,
            state.clone(),
            &counters.upstream_read,
        ),
        pump(
            server_read,
            client_write,
            Direction::Downstream,
            peer,
            state,
            &counters.downstream_read,
        ),
    );
}

/// Resolves once the connections of `peer` are cut (or the proxy is gone).
async fn cut(state: &mut watch::Receiver<State>, peer: Peer) {
    let _ = state.wait_for(|s| s.link(peer).cut).await;
}

/// Closes a socket with a reset rather than a FIN, so that the other end sees the
/// connection fail instead of end cleanly.
fn reset(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Forwards one direction until its source ends (then half-closes the destination) or the
/// link is cut (then resets both sockets).
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: Direction,
    peer: Peer,
    mut state: watch::Receiver<State>,
    read_counter: &AtomicU64,
) {
    // Bounded: a blackholed or delayed direction stops reading once this is full, and the
    // sender's own socket buffers fill behind it.
    let (tx, mut chunks) = mpsc::channel::<(Instant, Bytes)>(64);
    let mut flows = state.clone();
    let source = &mut from;
    let reading = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match source.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            read_counter.fetch_add(n as u64, Ordering::SeqCst);
            let chunk = Bytes::copy_from_slice(&buf[..n]);
            if tx.send((Instant::now(), chunk)).await.is_err() {
                break;
            }
        }
        // Dropping the sender here ends the writer once it has forwarded what is queued.
    };
    let destination = &mut to;
    let writing = async move {
        while let Some((read_at, chunk)) = chunks.recv().await {
            let flow = match flows
                .wait_for(|s| s.link(peer).flow(direction) != Flow::Blackhole)
                .await
            {
                Ok(s) => s.link(peer).flow(direction),
                Err(_) => return,
            };
            if let Flow::Delay(delay) = flow {
                tokio::time::sleep_until(read_at + delay).await;
            }
            if destination.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = destination.shutdown().await;
    };
    let was_cut = tokio::select! {
        _ = async { tokio::join!(reading, writing) } => false,
        _ = cut(&mut state, peer) => true,
    };
    if was_cut {
        reset(from.as_ref());
        reset(to.as_ref());
    }
}

#[cfg(test)]
mod tests;
