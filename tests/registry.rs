//! The schema registry inside a real `strand serve`, over real HTTP: registration, lookup by
//! id, compatibility enforcement, and (with the durable `_schemas` store) a restart.

use std::io::{Read, Write};
use std::net::SocketAddr;

use anyhow::Context;
use serde_json::{Value, json};
use strand_tests::Strand;

/// One HTTP/1.1 request over a fresh connection; returns status and JSON body.
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(strand_tests::START_TIMEOUT))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .context("no status line")?
        .parse()?;
    let (head, body) = response.split_once("\r\n\r\n").context("no body")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, serde_json::from_str(&body).context("JSON body")?))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

fn user(extra: Value) -> Value {
    let mut fields = vec![json!({"name": "id", "type": "long"})];
    if !extra.is_null() {
        fields.push(extra);
    }
    json!({"type": "record", "name": "User", "namespace": "acme", "fields": fields})
}

fn register(addr: SocketAddr, subject: &str, schema: &Value) -> anyhow::Result<(u16, Value)> {
    request(
        addr,
        "POST",
        &format!("/subjects/{subject}/versions"),
        Some(&json!({"schema": schema.to_string()})),
    )
}

#[test]
fn serve_registers_evolves_and_refuses_incompatible_schema() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let addr = strand.addr("registry")?;
    assert_eq!(
        register(addr, "users-value", &user(Value::Null))?,
        (200, json!({"id": 1}))
    );
    let optional = json!({"name": "email", "type": ["null", "string"], "default": null});
    assert_eq!(
        register(addr, "users-value", &user(optional))?,
        (200, json!({"id": 2}))
    );
    let required = json!({"name": "name", "type": "string"});
    let (status, body) = register(addr, "users-value", &user(required))?;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error_code"], 409);
    let (status, body) = request(addr, "GET", "/schemas/ids/2", None)?;
    assert_eq!(status, 200);
    assert!(body["schema"].as_str().unwrap_or("").contains("email"));
    let (status, body) = request(addr, "GET", "/subjects/users-value/versions", None)?;
    assert_eq!((status, body), (200, json!([1, 2])));
    assert!(strand.terminate()?.success());
    Ok(())
}

#[test]
fn restart_keeps_subjects_versions_ids_config_and_mode() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let addr = strand.addr("registry")?;
    register(addr, "a", &user(Value::Null))?;
    let optional = json!({"name": "email", "type": ["null", "string"], "default": null});
    register(addr, "a", &user(optional.clone()))?;
    register(addr, "b%2Fc", &user(optional))?;
    let gone = json!({"name": "gone", "type": "int", "default": 0});
    assert_eq!(register(addr, "d", &user(gone))?.1, json!({"id": 3}));
    request(addr, "DELETE", "/subjects/d", None)?;
    request(addr, "DELETE", "/subjects/d?permanent=true", None)?;
    request(addr, "DELETE", "/subjects/a/versions/1", None)?;
    request(
        addr,
        "PUT",
        "/config/a",
        Some(&json!({"compatibility": "FULL"})),
    )?;
    request(
        addr,
        "PUT",
        "/config",
        Some(&json!({"compatibility": "NONE"})),
    )?;
    request(
        addr,
        "PUT",
        "/mode/b%2Fc",
        Some(&json!({"mode": "READONLY"})),
    )?;
    let (_, metadata) = request(addr, "GET", "/v1/metadata/id", None)?;
    let cluster = metadata["scope"]["clusters"]["kafka-cluster"].clone();
    assert!(
        cluster.as_str().is_some_and(|id| id.len() > 8),
        "{metadata}"
    );
    assert!(strand.terminate()?.success());

    let strand = Strand::start(dir.path(), &[])?;
    let addr = strand.addr("registry")?;
    assert_eq!(
        request(addr, "GET", "/subjects", None)?.1,
        json!(["a", "b/c"])
    );
    assert_eq!(
        request(addr, "GET", "/subjects/a/versions", None)?.1,
        json!([2])
    );
    assert_eq!(
        request(addr, "GET", "/subjects/a/versions?deleted=true", None)?.1,
        json!([1, 2])
    );
    let (_, v) = request(addr, "GET", "/subjects/b%2Fc/versions/1", None)?;
    assert_eq!(
        (v["subject"].clone(), v["id"].clone()),
        (json!("b/c"), json!(2))
    );
    assert_eq!(request(addr, "GET", "/schemas/ids/1", None)?.0, 200);
    assert_eq!(request(addr, "GET", "/schemas/ids/3", None)?.0, 404);
    assert_eq!(
        request(addr, "GET", "/config/a", None)?.1,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_eq!(
        request(addr, "GET", "/config", None)?.1,
        json!({"compatibilityLevel": "NONE"})
    );
    assert_eq!(
        request(addr, "GET", "/mode/b%2Fc", None)?.1,
        json!({"mode": "READONLY"})
    );
    let (_, metadata) = request(addr, "GET", "/v1/metadata/id", None)?;
    assert_eq!(metadata["scope"]["clusters"]["kafka-cluster"], cluster);
    // Id 3 was permanently deleted and is not given to a new schema.
    let fresh = json!({"name": "fresh", "type": "long", "default": 1});
    assert_eq!(register(addr, "e", &user(fresh))?.1, json!({"id": 4}));
    assert!(strand.terminate()?.success());
    Ok(())
}

#[test]
fn registration_answered_is_kept_after_a_crash() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let addr = strand.addr("registry")?;
    for i in 0..20 {
        let field = json!({"name": format!("f{i}"), "type": "int", "default": i});
        assert_eq!(register(addr, "crash", &user(field))?.0, 200);
    }
    strand.kill()?;
    let strand = Strand::start(dir.path(), &[])?;
    let addr = strand.addr("registry")?;
    let (status, versions) = request(addr, "GET", "/subjects/crash/versions", None)?;
    assert_eq!(status, 200);
    assert_eq!(versions.as_array().map(Vec::len), Some(20));
    assert_eq!(request(addr, "GET", "/schemas/ids/20", None)?.0, 200);
    Ok(())
}

/// Calls `path` until it answers `want`, for at most ten seconds.
fn eventually(addr: SocketAddr, path: &str, want: (u16, Value)) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = request(addr, "GET", path, None)?;
        if got == want {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{path}: still {got:?}, want {want:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn records_produced_into_schemas_by_a_kafka_client_are_served_at_once() -> anyhow::Result<()> {
    use strand_tests::kafka::{KafkaClient, batch, produce};
    let dir = tempfile::tempdir()?;
    let strand = Strand::start(dir.path(), &[])?;
    let addr = strand.addr("registry")?;
    assert_eq!(
        register(addr, "mine", &user(Value::Null))?,
        (200, json!({"id": 1}))
    );
    // A restore tool (or another Confluent registry) writes Confluent's records into
    // `_schemas` with a plain Kafka producer.
    let theirs = user(json!({"name": "n", "type": "int", "default": 0}));
    let key = json!({"keytype": "SCHEMA", "subject": "restored-value", "version": 1, "magic": 1})
        .to_string();
    let value = json!({"subject": "restored-value", "version": 1, "id": 100,
                       "schema": theirs.to_string(), "deleted": false})
    .to_string();
    let mut kafka = KafkaClient::connect(strand.addr("kafka")?)?;
    let records = batch(
        &[(Some(key.as_bytes()), Some(value.as_bytes()), &[])],
        kafka_protocol::records::Compression::None,
        strand_tests::kafka::now_ms(),
    );
    let answer = produce(&mut kafka, "_schemas", 0, records)?;
    assert_eq!(answer.error_code, 0, "{answer:?}");
    eventually(addr, "/subjects/restored-value/versions", (200, json!([1])))?;
    let (status, body) = request(addr, "GET", "/schemas/ids/100", None)?;
    assert_eq!(status, 200);
    assert_eq!(body["schema"], theirs.to_string());
    let (_, body) = request(
        addr,
        "GET",
        "/subjects/restored-value/versions/latest",
        None,
    )?;
    assert_eq!(body["id"], 100);
    // The next registration here gets an id past the restored one.
    let more = user(json!({"name": "m", "type": "long", "default": 0}));
    assert_eq!(register(addr, "more", &more)?, (200, json!({"id": 101})));
    // And a restart replays both writers' records alike.
    assert!(strand.terminate()?.success());
    let strand = Strand::start(dir.path(), &[])?;
    let addr = strand.addr("registry")?;
    let (_, subjects) = request(addr, "GET", "/subjects", None)?;
    assert_eq!(subjects, json!(["mine", "more", "restored-value"]));
    assert_eq!(request(addr, "GET", "/schemas/ids/100", None)?.0, 200);
    assert!(strand.terminate()?.success());
    Ok(())
}
