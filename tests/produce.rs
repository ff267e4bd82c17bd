//! What the broker makes of a produced batch, against a real `strand serve`: records of
//! every codec are read and checked before anything is stored (Kafka's LogValidator), a
//! topic's `compression.type` recompresses, `message.timestamp.type=LogAppendTime`
//! stamps the broker's clock, and `message.timestamp.before.max.ms` /
//! `after.max.ms` bound producers' timestamps.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use strand_tests::Strand;
use strand_tests::kafka::{
    KafkaClient, batch, create_topic, decode_records, fetch, now_ms, produce, values,
};

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

/// `(baseOffset, codec, recordCount)` of every batch in fetched records.
fn batch_headers(records: &Option<Bytes>) -> Vec<(i64, i16, i32)> {
    let mut out = Vec::new();
    let mut rest = records.clone().unwrap_or_default();
    while rest.len() >= 61 {
        let length = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize;
        let mut base = [0u8; 8];
        base.copy_from_slice(&rest[..8]);
        let attributes = i16::from_be_bytes([rest[21], rest[22]]);
        let count = i32::from_be_bytes([rest[57], rest[58], rest[59], rest[60]]);
        out.push((i64::from_be_bytes(base), attributes & 0x7, count));
        rest = rest.slice((length + 12).min(rest.len())..);
    }
    out
}

/// One topic config's value as DescribeConfigs (v4) reports it.
fn described(client: &mut KafkaClient, topic: &str, key: &str) -> anyhow::Result<Option<String>> {
    let resp = client.call(
        4,
        &DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configuration_keys(None),
        ]),
    )?;
    Ok(resp.results[0]
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .and_then(|c| c.value.as_ref().map(|v| v.to_string())))
}

/// Sets one topic config with IncrementalAlterConfigs (v1); returns the error code.
fn set_config(
    client: &mut KafkaClient,
    topic: &str,
    key: &str,
    value: &str,
) -> anyhow::Result<i16> {
    let resp = client.call(
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(StrBytes::from_string(key.to_string()))
                        .with_config_operation(0)
                        .with_value(Some(StrBytes::from_string(value.to_string()))),
                ]),
        ]),
    )?;
    Ok(resp.responses[0].error_code)
}

#[test]
fn a_zstd_topic_recompresses_other_codecs_keeping_records_and_offsets() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let created = create_topic(
        &mut client,
        "packed",
        1,
        &[
            ("compression.type", "zstd"),
            ("compression.zstd.level", "7"),
        ],
    )?;
    assert_eq!(
        created.topics[0].error_code, 0,
        "{:?}",
        created.topics[0].error_message
    );
    assert_eq!(
        described(&mut client, "packed", "compression.type")?.as_deref(),
        Some("zstd")
    );
    assert_eq!(
        described(&mut client, "packed", "compression.zstd.level")?.as_deref(),
        Some("7")
    );

    let ts = now_ms();
    let sent = [
        batch(
            &[
                (Some(b"k0"), Some(b"gzip-0"), &[("h", b"x")]),
                (None, Some(b"gzip-1"), &[]),
                (Some(b"k2"), None, &[]),
            ],
            Compression::Gzip,
            ts,
        ),
        batch(
            &[
                (Some(b"k3"), Some(b"plain-3"), &[]),
                (None, Some(b"plain-4"), &[]),
            ],
            Compression::None,
            ts + 10,
        ),
        batch(&[(None, Some(b"zstd-5"), &[])], Compression::Zstd, ts + 20),
    ];
    let mut expected = Vec::new();
    for (b, base) in sent.iter().zip([0, 3, 5]) {
        let p = produce(&mut client, "packed", 0, b.clone())?;
        assert_eq!((p.error_code, p.base_offset), (0, base));
        expected.extend(decode_records(b)?);
    }
    let f = fetch(&mut client, "packed", 0, 0, 0)?;
    // (The test encoder puts each record of a non-idempotent batch in a batch of its own.)
    let headers = batch_headers(&f.records);
    assert!(
        headers.iter().all(|(_, codec, _)| *codec == 4),
        "{headers:?}"
    );
    assert_eq!(headers.iter().map(|h| h.2).sum::<i32>(), 6, "{headers:?}");
    let stored = decode_records(&f.records.clone().unwrap_or_default())?;
    assert_eq!(stored.len(), expected.len());
    for (i, (got, want)) in stored.iter().zip(&expected).enumerate() {
        assert_eq!(got.offset, i as i64);
        assert_eq!(
            (&got.key, &got.value, got.timestamp),
            (&want.key, &want.value, want.timestamp)
        );
        assert_eq!(got.headers, want.headers);
    }

    // The topic's codec can change; later batches follow it, earlier ones stay.
    assert_eq!(
        set_config(&mut client, "packed", "compression.type", "uncompressed")?,
        0
    );
    let p = produce(
        &mut client,
        "packed",
        0,
        batch(&[(None, Some(b"lz4-6"), &[])], Compression::Lz4, ts),
    )?;
    assert_eq!((p.error_code, p.base_offset), (0, 6));
    let f = fetch(&mut client, "packed", 0, 6, 0)?;
    assert_eq!(batch_headers(&f.records), vec![(6, 0, 1)]);
    assert_eq!(values(&f.records)?, vec![b"lz4-6".to_vec()]);
    assert_eq!(
        set_config(&mut client, "packed", "compression.type", "brotli")?,
        ResponseError::InvalidConfig.code()
    );
    Ok(())
}

#[test]
fn a_log_append_time_topic_stamps_and_answers_the_brokers_clock() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let created = create_topic(
        &mut client,
        "appended",
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )?;
    assert_eq!(
        created.topics[0].error_code, 0,
        "{:?}",
        created.topics[0].error_message
    );
    create_topic(&mut client, "created", 1, &[])?;
    let day_ago = now_ms() - 86_400_000;
    let before = now_ms();
    for codec in [Compression::None, Compression::Zstd] {
        let p = produce(
            &mut client,
            "appended",
            0,
            batch(&[(None, Some(b"v"), &[])], codec, day_ago),
        )?;
        assert_eq!(p.error_code, 0);
        assert!(
            (before..=now_ms()).contains(&p.log_append_time_ms),
            "log_append_time_ms {} is not the broker's clock",
            p.log_append_time_ms
        );
        let f = fetch(&mut client, "appended", 0, p.base_offset, 0)?;
        let stored = f.records.clone().unwrap_or_default();
        let attributes = i16::from_be_bytes([stored[21], stored[22]]);
        let max_timestamp = i64::from_be_bytes(stored[35..43].try_into()?);
        assert_ne!(attributes & 0x8, 0, "the LogAppendTime bit is set");
        assert_eq!(max_timestamp, p.log_append_time_ms);
        assert_eq!(values(&f.records)?, vec![b"v".to_vec()]);
    }
    let p = produce(
        &mut client,
        "created",
        0,
        batch(&[(None, Some(b"v"), &[])], Compression::None, day_ago),
    )?;
    assert_eq!((p.error_code, p.log_append_time_ms), (0, -1));
    let f = fetch(&mut client, "created", 0, 0, 0)?;
    assert_eq!(
        decode_records(&f.records.unwrap_or_default())?[0].timestamp,
        day_ago
    );
    Ok(())
}

#[test]
fn a_timestamp_older_than_before_max_ms_is_invalid_timestamp() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    let created = create_topic(
        &mut client,
        "recent",
        1,
        &[
            ("message.timestamp.before.max.ms", "3600000"),
            ("message.timestamp.after.max.ms", "3600000"),
        ],
    )?;
    assert_eq!(
        created.topics[0].error_code, 0,
        "{:?}",
        created.topics[0].error_message
    );
    for (ts, codec) in [
        (now_ms() - 2 * 86_400_000, Compression::None),
        (now_ms() - 2 * 86_400_000, Compression::Gzip),
        (now_ms() + 2 * 86_400_000, Compression::None),
    ] {
        let p = produce(
            &mut client,
            "recent",
            0,
            batch(&[(None, Some(b"old"), &[])], codec, ts),
        )?;
        assert_eq!(
            p.error_code,
            ResponseError::InvalidTimestamp.code(),
            "{ts} {codec:?}"
        );
        let message = p.error_message.map(|m| m.to_string()).unwrap_or_default();
        assert!(message.contains("out of range"), "{message}");
    }
    let p = produce(
        &mut client,
        "recent",
        0,
        batch(&[(None, Some(b"now"), &[])], Compression::None, now_ms()),
    )?;
    assert_eq!(
        (p.error_code, p.base_offset),
        (0, 0),
        "nothing of the refused batches was stored"
    );
    Ok(())
}
