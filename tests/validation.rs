//! Broker-side schema validation against a real `strand serve` (one start): a topic with
//! `value.schema.validation` takes only records framed with a schema id its subject has,
//! (`deep`) whose Avro payload decodes against that schema; everything else is refused
//! whole with `INVALID_RECORD`, each bad record named in `record_errors`, and nothing of
//! it is stored.

use std::io::{Read, Write};
use std::net::SocketAddr;

use anyhow::Context;
use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use apache_avro::writer::datum::GenericDatumWriter;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use serde_json::{Value, json};
use strand_tests::Strand;
use strand_tests::kafka::{KafkaClient, batch, create_topic, now_ms, produce};

const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
    {"name":"id","type":"long"},{"name":"item","type":"string"}]}"#;
const OTHER: &str = r#"{"type":"record","name":"Other","fields":[{"name":"x","type":"int"}]}"#;

/// Registers `schema` under `subject` over the registry's REST API; returns its id.
fn register(addr: SocketAddr, subject: &str, schema: &str) -> anyhow::Result<u32> {
    let body = json!({ "schema": schema }).to_string();
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(strand_tests::START_TIMEOUT))?;
    write!(
        stream,
        "POST /subjects/{subject}/versions HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (_, body) = response.split_once("\r\n\r\n").context("no body")?;
    let start = body.find('{').context("no JSON")?;
    let end = body.rfind('}').context("no JSON")?;
    let v: Value = serde_json::from_str(&body[start..=end])?;
    Ok(v["id"].as_u64().with_context(|| format!("no id in {v}"))? as u32)
}

fn framed(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn order(id: i64) -> anyhow::Result<Vec<u8>> {
    let schema = Schema::parse_str(ORDER)?;
    let value = Avro::Record(vec![
        ("id".into(), Avro::Long(id)),
        ("item".into(), Avro::String("book".into())),
    ]);
    let mut out = Vec::new();
    GenericDatumWriter::builder(&schema)
        .build()?
        .write_value_ref(&mut out, &value)?;
    Ok(out)
}

fn alter(client: &mut KafkaClient, topic: &str, name: &str, value: &str) -> anyhow::Result<i16> {
    let resp = client.call(
        1,
        &IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_string(topic.to_string()))
                .with_configs(vec![
                    AlterableConfig::default()
                        .with_name(StrBytes::from_string(name.to_string()))
                        .with_config_operation(0)
                        .with_value(Some(StrBytes::from_string(value.to_string()))),
                ]),
        ]),
    )?;
    Ok(resp.responses[0].error_code)
}

#[test]
fn validated_topics_take_only_records_their_subject_can_decode() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let registry = strand.addr("registry")?;
    let mut client = KafkaClient::connect(strand.addr("kafka")?)?;
    create_topic(
        &mut client,
        "orders",
        1,
        &[("value.schema.validation", "deep")],
    )?;

    // Registered a moment ago, accepted at once.
    let id = register(registry, "orders-value", ORDER)?;
    let other = register(registry, "other-value", OTHER)?;
    let good = framed(id, &order(1)?);
    let send = |client: &mut KafkaClient, values: &[Option<&[u8]>], c: Compression| {
        let records: Vec<_> = values
            .iter()
            .map(|v| (Some(&b"k"[..]), *v, &[][..]))
            .collect();
        produce(client, "orders", 0, batch(&records, c, now_ms()))
    };
    let p = send(&mut client, &[Some(&good), None], Compression::None)?;
    assert_eq!(p.error_code, 0, "{:?}", p.error_message);
    assert_eq!(p.base_offset, 0);

    let mut truncated = good.clone();
    truncated.pop();
    let mut over_long = good.clone();
    over_long.push(0);
    let unknown = framed(999_999, &order(2)?);
    let elsewhere = framed(other, &order(3)?);
    let cases: [(&[u8], String); 5] = [
        (
            b"a plain string",
            "the value is not framed with a schema id".into(),
        ),
        (
            &unknown,
            "schema id 999999 is not registered under subject orders-value".into(),
        ),
        (
            &elsewhere,
            format!("schema id {other} is not registered under subject orders-value"),
        ),
        (
            &truncated,
            format!("the value does not decode with schema id {id}"),
        ),
        (&over_long, "1 bytes follow the Avro datum".into()),
    ];
    for (bad, reason) in &cases {
        let p = send(&mut client, &[Some(&good), Some(bad)], Compression::Gzip)?;
        assert_eq!(
            p.error_code,
            ResponseError::InvalidRecord.code(),
            "{reason}"
        );
        assert_eq!(p.record_errors.len(), 1, "{reason}");
        assert_eq!(p.record_errors[0].batch_index, 1);
        let message = p.error_message.map(|m| m.to_string()).unwrap_or_default();
        assert!(message.starts_with("record 1: "), "{message}");
        assert!(
            message.contains(reason.as_str()),
            "{message} lacks {reason}"
        );
    }
    // Nothing of a refused batch was stored: offsets go on without a gap.
    let p = send(&mut client, &[Some(&good)], Compression::Zstd)?;
    assert_eq!((p.error_code, p.base_offset), (0, 2));

    // A value that is neither a level nor a strategy is INVALID_CONFIG.
    let code = alter(&mut client, "orders", "value.schema.validation", "strict")?;
    assert_eq!(code, ResponseError::InvalidConfig.code());
    let code = alter(
        &mut client,
        "orders",
        "confluent.value.subject.name.strategy",
        "Mine",
    )?;
    assert_eq!(code, ResponseError::InvalidConfig.code());

    // Turned on later, in Confluent Server's dialect, for a topic whose subject has no
    // schemas: every framed record is refused with that reason.
    create_topic(&mut client, "bare", 1, &[])?;
    let bare = |client: &mut KafkaClient| {
        produce(
            client,
            "bare",
            0,
            batch(&[(None, Some(&good), &[])], Compression::None, now_ms()),
        )
    };
    assert_eq!(bare(&mut client)?.error_code, 0);
    assert_eq!(
        alter(
            &mut client,
            "bare",
            "confluent.value.schema.validation",
            "true"
        )?,
        0
    );
    let p = bare(&mut client)?;
    assert_eq!(p.error_code, ResponseError::InvalidRecord.code());
    let message = p.error_message.map(|m| m.to_string()).unwrap_or_default();
    assert!(
        message.contains("under subject bare-value (the subject has no schemas)"),
        "{message}"
    );
    Ok(())
}
