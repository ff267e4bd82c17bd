use std::sync::Arc;

use openraft::{Config, Vote};
use tempfile::TempDir;
use tokio::io::AsyncReadExt;

use super::*;
use crate::controller::store;

#[test]
fn voters_parse_in_kafkas_format() {
    let voters = parse_voters("1@localhost:9093, 2@10.0.0.2:9093,3@[::1]:9094").unwrap();
    assert_eq!(voters.len(), 3);
    assert_eq!(voters[&3], "[::1]:9094");
}

#[test]
fn malformed_voter_lists_are_refused_with_the_culprit_named() {
    assert_eq!(parse_voters(""), Err(VotersError::Empty));
    assert_eq!(
        parse_voters("1localhost:9093"),
        Err(VotersError::Malformed("1localhost:9093".into()))
    );
    assert_eq!(
        parse_voters("x@h:1"),
        Err(VotersError::BadId("x@h:1".into()))
    );
    assert_eq!(
        parse_voters("-1@h:1"),
        Err(VotersError::BadId("-1@h:1".into()))
    );
    assert_eq!(
        parse_voters("1@h"),
        Err(VotersError::BadAddress("1@h".into()))
    );
    assert_eq!(
        parse_voters("1@h:0"),
        Err(VotersError::BadAddress("1@h:0".into()))
    );
    assert_eq!(
        parse_voters("1@h:70000"),
        Err(VotersError::BadAddress("1@h:70000".into()))
    );
    assert_eq!(
        parse_voters("1@a:1,1@b:1"),
        Err(VotersError::DuplicateId(1))
    );
    assert_eq!(
        parse_voters("1@a:1,2@a:1"),
        Err(VotersError::DuplicateAddress("a:1".into()))
    );
    let message = parse_voters("1@h").unwrap_err().to_string();
    assert!(
        message.contains("1@h") && message.contains("host:port"),
        "{message}"
    );
}

struct Node {
    _dir: TempDir,
    raft: Raft<TypeConfig>,
    address: String,
    voters: BTreeMap<RaftNodeId, String>,
}

/// Node 1 of cluster "c1", voters 1 and 2, serving its controller listener.
async fn node() -> Node {
    let dir = TempDir::new().unwrap();
    let (log, machine) = store::open(dir.path()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let voters = BTreeMap::from([(1, address.clone()), (2, "127.0.0.1:1".to_string())]);
    let identity = Identity {
        cluster_id: "c1".into(),
        node_id: 1,
        voters: voters.clone(),
    };
    let config = Arc::new(Config::default().validate().unwrap());
    let raft = Raft::new(1, config, Network::new(identity.clone()), log, machine)
        .await
        .unwrap();
    let forward: Forwarder =
        Arc::new(|_| Box::pin(async { Err(ControllerError::NotController { leader: None }) }));
    tokio::spawn(serve(listener, raft.clone(), identity, forward));
    Node {
        _dir: dir,
        raft,
        address,
        voters,
    }
}

impl Node {
    fn peer(&self, cluster_id: &str, from: RaftNodeId, to: RaftNodeId) -> Peer {
        let identity = Identity {
            cluster_id: cluster_id.into(),
            node_id: from,
            voters: self.voters.clone(),
        };
        Peer {
            identity,
            target: to,
            address: self.address.clone(),
            connection: None,
        }
    }
}

async fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .is_ok()
}

fn term(raft: &Raft<TypeConfig>) -> u64 {
    raft.metrics().borrow().current_term
}

#[tokio::test]
async fn a_vote_travels_over_one_reused_connection() {
    let node = node().await;
    let mut peer = node.peer("c1", 2, 1);
    let option = RPCOption::new(Duration::from_secs(5));
    let response = peer
        .vote(VoteRequest::new(Vote::new(5, 2), None), option.clone())
        .await
        .unwrap();
    assert_eq!(response.vote, Vote::new(5, 2));
    let local = peer.connection.as_ref().unwrap().local_addr().unwrap();
    let option = RPCOption::new(Duration::from_secs(5));
    peer.vote(VoteRequest::new(Vote::new(6, 2), None), option)
        .await
        .unwrap();
    assert_eq!(
        peer.connection.as_ref().unwrap().local_addr().unwrap(),
        local,
        "the connection is reused"
    );
}

#[tokio::test]
async fn a_node_of_another_cluster_or_voter_list_is_refused_with_a_clear_message() {
    let node = node().await;
    let error = node.peer("other", 2, 1).connect().await.unwrap_err();
    assert!(
        error.to_string().contains("belongs to cluster other"),
        "{error}"
    );
    let error = node.peer("c1", 2, 3).connect().await.unwrap_err();
    assert!(
        error.to_string().contains("this is node 1, not node 3"),
        "{error}"
    );
    let error = node.peer("c1", 1, 1).connect().await.unwrap_err();
    assert!(
        error.to_string().contains("another process uses node id 1"),
        "{error}"
    );
    let error = node.peer("c1", 9, 1).connect().await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("not in this node's controller.quorum.voters"),
        "{error}"
    );
    let mut disagreeing = node.peer("c1", 2, 1);
    disagreeing.identity.voters.insert(3, "127.0.0.1:2".into());
    let error = disagreeing.connect().await.unwrap_err().to_string();
    assert!(
        error.contains("every voter must be given the same list")
            && error.contains("3@127.0.0.1:2"),
        "{error}"
    );
}

#[tokio::test]
async fn malformed_and_oversized_frames_close_the_connection_and_change_nothing() {
    let node = node().await;
    let before = term(&node.raft);

    // Garbage where the handshake belongs.
    let mut stream = TcpStream::connect(&node.address).await.unwrap();
    stream
        .write_all(&[0, 0, 0, 5, b'{', b'x', b'y', b'z', b'}'])
        .await
        .unwrap();
    assert!(closed_by_server(&mut stream).await);

    // A frame announcing more than the bound.
    let mut stream = TcpStream::connect(&node.address).await.unwrap();
    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert!(closed_by_server(&mut stream).await);

    // A vote without the handshake: refused before it reaches Raft.
    let mut stream = TcpStream::connect(&node.address).await.unwrap();
    write_frame(
        &mut stream,
        &Request::Vote(VoteRequest::new(Vote::new(9, 2), None)),
    )
    .await
    .unwrap();
    assert!(closed_by_server(&mut stream).await);

    // After a good handshake, a malformed request.
    let mut good = node.peer("c1", 2, 1).connect().await.unwrap();
    good.write_all(&[0, 0, 0, 2, b'[', b']']).await.unwrap();
    assert!(closed_by_server(&mut good).await);

    assert_eq!(
        term(&node.raft),
        before,
        "no malformed message reached Raft"
    );
    assert_eq!(node.raft.metrics().borrow().vote, Vote::default());
}
