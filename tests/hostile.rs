//! What a hostile client does to a real `strand serve`, from the attack run of issue 15:
//! frames announcing counts their bytes cannot hold, sent to a server whose address space
//! is limited as `prlimit --as` limits it. Each test asserts that the server survives and
//! keeps answering other clients.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use kafka_protocol::messages::ApiVersionsRequest;
use strand_tests::kafka::KafkaClient;
use strand_tests::{Launch, RlimitResource, Strand};

/// Address space given to the server: room for its threads and buffers, far less than the
/// gigabytes a hostile count announces.
const ADDRESS_SPACE: u64 = 4 << 30;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode_request")
}

/// Sends one frame (length prefix added) on a fresh connection and reports whether the
/// server closed it rather than answering.
fn closed_after_frame(addr: std::net::SocketAddr, frame: &[u8]) -> anyhow::Result<bool> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut bytes = (frame.len() as i32).to_be_bytes().to_vec();
    bytes.extend_from_slice(frame);
    stream.write_all(&bytes)?;
    let mut buf = [0u8; 64];
    Ok(matches!(stream.read(&mut buf), Ok(0) | Err(_)))
}

#[test]
fn hostile_counts_under_an_address_space_limit_neither_abort_nor_stop_the_broker()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut strand = Strand::launch(
        dir.path(),
        &[],
        &[],
        Launch::default().limit(RlimitResource::AddressSpace, ADDRESS_SPACE),
    )?;
    let addr = strand.addr("kafka")?;
    let mut hostile = Vec::new();
    for entry in std::fs::read_dir(corpus_dir())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("hostile-") {
            hostile.push((name, std::fs::read(&path)?));
        }
    }
    assert!(
        hostile.iter().any(|(n, _)| n.contains("0x67ffffff")),
        "the reported Fetch v4 frame is in the corpus"
    );
    for (name, frame) in &hostile {
        assert!(closed_after_frame(addr, frame)?, "{name} was answered");
        assert!(strand.is_running(), "strand serve died on {name}");
        let mut client = KafkaClient::connect(addr)?;
        let versions = client.call(0, &ApiVersionsRequest::default())?;
        assert_eq!(versions.error_code, 0, "after {name}");
    }
    Ok(())
}
