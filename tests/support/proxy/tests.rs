//! The proxy against an echo server on loopback: bytes pass intact both ways under load,
//! a cut ends open connections and refuses new ones, a blackhole holds bytes without
//! losing them, a delay holds them back, and faults of one peer spare the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use tokio::net::TcpSocket;

use super::*;

/// How long any one condition in these tests may take to come true.
const WAIT: Duration = Duration::from_secs(10);

/// An echo server counting what reaches it.
struct Echo {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    received: Arc<AtomicU64>,
}

async fn echo() -> Echo {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo = Echo {
        addr: listener.local_addr().unwrap(),
        accepted: Arc::default(),
        open: Arc::default(),
        received: Arc::default(),
    };
    let (accepted, open, received) = (
        echo.accepted.clone(),
        echo.open.clone(),
        echo.received.clone(),
    );
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            open.fetch_add(1, Ordering::SeqCst);
            let (open, received) = (open.clone(), received.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    received.fetch_add(n as u64, Ordering::SeqCst);
                    if stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    echo
}

/// Waits (bounded by [`WAIT`]) until `condition` holds.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {WAIT:?}");
        // Counters of another task have no notification; this only paces the check.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> io::Result<Vec<u8>> {
    stream.write_all(message).await?;
    let mut back = vec![0u8; message.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut back))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no echo"))??;
    Ok(back)
}

/// Whether the connection ends (EOF or an error) within [`WAIT`] with nothing read.
async fn ends(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(WAIT, stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// Deterministic bytes that differ per connection and per position.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_data_intact_both_ways_under_load() {
    let echo = echo().await;
    let proxy = Proxy::start(echo.addr).await.unwrap();
    const CONNECTIONS: u64 = 8;
    const BYTES: usize = 4 << 20;
    let mut clients = Vec::new();
    for seed in 0..CONNECTIONS {
        let addr = proxy.addr();
        clients.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut read, mut write) = stream.into_split();
            let sent = pattern(seed, BYTES);
            let writer = {
                let sent = sent.clone();
                tokio::spawn(async move {
                    for chunk in sent.chunks(7919) {
                        write.write_all(chunk).await.unwrap();
                    }
                    write
                })
            };
            let mut back = vec![0u8; BYTES];
            read.read_exact(&mut back).await.unwrap();
            let _write = writer.await.unwrap();
            assert!(back == sent, "connection {seed}: echoed bytes differ");
        }));
    }
    for client in clients {
        tokio::time::timeout(Duration::from_secs(60), client)
            .await
            .expect("the load finished in time")
            .unwrap();
    }
    assert_eq!(
        echo.received.load(Ordering::SeqCst),
        CONNECTIONS * BYTES as u64
    );
    assert_eq!(
        proxy.bytes_read(Direction::Upstream),
        CONNECTIONS * BYTES as u64
    );
    assert_eq!(
        proxy.bytes_read(Direction::Downstream),
        CONNECTIONS * BYTES as u64
    );
}

#[tokio::test]
async fn eof_is_passed_on_and_the_reply_still_arrives() {
    let echo = echo().await;
    let proxy = Proxy::start(echo.addr).await.unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    stream.write_all(b"last words").await.unwrap();
    stream.shutdown().await.unwrap();
    let mut back = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, b"last words");
    wait_until("the proxied connection ends", || {
        proxy.open_connections() == 0
    })
    .await;
}

#[tokio::test]
async fn cut_ends_open_connections_and_refuses_new_ones_until_healed() {
    let echo = echo().await;
    let proxy = Proxy::start(echo.addr).await.unwrap();
    let mut before = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut before, b"hello").await.unwrap(), b"hello");

    proxy.cut();
    assert!(
        ends(&mut before).await,
        "an open connection survived the cut"
    );
    wait_until("the target's side of the cut connection ends", || {
        echo.open.load(Ordering::SeqCst) == 0
    })
    .await;
    // The proxy's listener still accepts (as a host that rejects does), but the connection
    // is reset at once and never reaches the target.
    if let Ok(mut during) = TcpStream::connect(proxy.addr()).await {
        let _ = during.write_all(b"anyone?").await;
        assert!(ends(&mut during).await, "a new connection passed the cut");
    }
    wait_until("the refused connection is gone", || {
        proxy.open_connections() == 0
    })
    .await;
    assert_eq!(echo.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(echo.received.load(Ordering::SeqCst), 5);

    proxy.heal();
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut after, b"again").await.unwrap(), b"again");
    assert_eq!(echo.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn blackhole_holds_bytes_and_new_connections_and_heal_resumes_them() {
    let echo = echo().await;
    let proxy = Proxy::start(echo.addr).await.unwrap();
    let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut open, b"ping").await.unwrap(), b"ping");

    proxy.blackhole();
    open.write_all(b"into the void").await.unwrap();
    wait_until("the proxy read the bytes", || {
        proxy.bytes_read(Direction::Upstream) == 4 + 13
    })
    .await;
    let mut later = TcpStream::connect(proxy.addr()).await.unwrap();
    later.write_all(b"knock").await.unwrap();
    wait_until("the proxy accepted the new connection", || {
        proxy.accepted() == 2
    })
    .await;
    // Read and accepted, yet nothing reached the target: the proxy holds the bytes of
    // the open connection and has not connected the new one.
    assert_eq!(echo.received.load(Ordering::SeqCst), 4);
    assert_eq!(echo.accepted.load(Ordering::SeqCst), 1);

    proxy.heal();
    let mut back = [0u8; 13];
    tokio::time::timeout(WAIT, open.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"into the void");
    let mut back = [0u8; 5];
    tokio::time::timeout(WAIT, later.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"knock");
    assert_eq!(echo.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn blackhole_of_one_direction_lets_the_other_pass() {
    let echo = echo().await;
    let proxy = Proxy::start(echo.addr).await.unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    proxy.direction(Direction::Downstream).blackhole();
    stream.write_all(b"one way").await.unwrap();
    wait_until("the request reached the target", || {
        echo.received.load(Ordering::SeqCst) == 7
    })
    .await;
    wait_until("the proxy read the echo", || {
        proxy.bytes_read(Direction::Downstream) == 7
    })
    .await;
    // The echo sits in the proxy: the client has nothing to read yet.
    let mut probe = [0u8; 7];
    assert!(
        stream.try_read(&mut probe).is_err(),
        "bytes passed a blackholed direction"
    );
    proxy.direction(Direction::Downstream).heal();
    tokio::time::timeout(WAIT, stream.read_exact(&mut probe))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&probe, b"one way");
}

#[tokio::test]
async fn delay_holds_each_direction_back() {
    let echo = echo().await;
    let proxy = Proxy::start(echo.addr).await.unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let delay = Duration::from_millis(150);
    proxy.delay(delay);
    let started = Instant::now();
    assert_eq!(round_trip(&mut stream, b"slow").await.unwrap(), b"slow");
    // A lower bound only: the bytes cannot come back before both delays passed.
    assert!(started.elapsed() >= 2 * delay, "{:?}", started.elapsed());
    proxy.heal();
    assert_eq!(round_trip(&mut stream, b"fast").await.unwrap(), b"fast");
}

#[tokio::test]
async fn faults_of_one_peer_spare_the_others() {
    let echo = echo().await;
    let peers: Arc<Mutex<HashMap<SocketAddr, Peer>>> = Arc::default();
    let classify = {
        let peers = peers.clone();
        Arc::new(move |from: SocketAddr, _local: SocketAddr| {
            peers
                .lock()
                .unwrap()
                .get(&from)
                .copied()
                .unwrap_or(Peer::Other)
        })
    };
    let proxy = Proxy::start_with(echo.addr, Some(classify)).await.unwrap();
    // A connection from a socket bound first, so the classifier knows its address.
    let connect_as = |peer: Peer| {
        let (peers, addr) = (peers.clone(), proxy.addr());
        async move {
            let socket = TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            peers
                .lock()
                .unwrap()
                .insert(socket.local_addr().unwrap(), peer);
            socket.connect(addr).await.unwrap()
        }
    };
    let mut node = connect_as(Peer::Node(2)).await;
    let mut client = connect_as(Peer::Other).await;
    assert_eq!(round_trip(&mut node, b"n").await.unwrap(), b"n");
    assert_eq!(round_trip(&mut client, b"c").await.unwrap(), b"c");

    proxy.peer(Peer::Node(2)).cut();
    assert!(ends(&mut node).await, "the cut peer's connection survived");
    assert_eq!(round_trip(&mut client, b"still").await.unwrap(), b"still");
    let mut node_again = connect_as(Peer::Node(2)).await;
    let _ = node_again.write_all(b"x").await;
    assert!(ends(&mut node_again).await, "the cut peer got through");
    let mut other_node = connect_as(Peer::Node(3)).await;
    assert_eq!(round_trip(&mut other_node, b"3").await.unwrap(), b"3");

    proxy.peer(Peer::Node(2)).heal();
    let mut node_healed = connect_as(Peer::Node(2)).await;
    assert_eq!(
        round_trip(&mut node_healed, b"back").await.unwrap(),
        b"back"
    );
}
