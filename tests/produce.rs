//! What the broker makes of a produced batch, against a real `strand serve`: records of
//! every codec are read and checked before anything is stored (Kafka's LogValidator), a
//! topic's `compression.type` recompresses, `message.timestamp.type=LogAppendTime`
//! stamps the broker's clock, and `message.timestamp.before.max.ms` /
//! `after.max.ms` bound producers' timestamps.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::records::Compression;
use strand_tests::Strand;
use strand_tests::kafka::{KafkaClient, batch, create_topic, fetch, now_ms, produce, values};

/// Incompressible bytes (xorshift), the same on every run.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// A well-formed batch header with a correct CRC32C whose records are `body`, marked as
/// compressed with codec `codec` (attributes bits 0-2).
fn batch_with_body(codec: i16, body: &[u8]) -> Bytes {
    let template = batch(&[(None, Some(b"x"), &[])], Compression::None, now_ms());
    let mut b = template[..61].to_vec();
    b.extend_from_slice(body);
    let length = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    b[21..23].copy_from_slice(&codec.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

#[test]
fn random_bytes_as_gzip_or_zstd_records_are_corrupt_message_and_not_stored() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    create_topic(&mut client, "bad-codec", 1, &[])?;
    for (codec, name) in [(1, "gzip"), (2, "snappy"), (3, "lz4"), (4, "zstd")] {
        let p = produce(
            &mut client,
            "bad-codec",
            0,
            batch_with_body(codec, &noise(200)),
        )?;
        assert_eq!(p.error_code, ResponseError::CorruptMessage.code(), "{name}");
        let message = p.error_message.map(|m| m.to_string()).unwrap_or_default();
        assert!(message.contains(name), "{name}: {message:?}");
    }
    let p = produce(
        &mut client,
        "bad-codec",
        0,
        batch(&[(None, Some(b"fine"), &[])], Compression::Zstd, now_ms()),
    )?;
    assert_eq!(p.error_code, 0);
    assert_eq!(
        p.base_offset, 0,
        "nothing of the refused batches was stored"
    );
    let f = fetch(&mut client, "bad-codec", 0, 0, 0)?;
    assert_eq!(f.high_watermark, 1);
    assert_eq!(values(&f.records)?, vec![b"fine".to_vec()]);
    Ok(())
}
