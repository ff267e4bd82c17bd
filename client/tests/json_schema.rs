//! The JSON Schema serializer and deserializer against strand's real registry (in-process
//! over HTTP): Confluent's framing, validation before anything is sent, and the round trip.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use strand_client::{
    ClientError, JsonDeserializer, JsonSerializer, JsonSerializerConfig, RegistryClient,
    RegistryConfig,
};
use strand_registry::{MemoryLog, Options, Registry, router};

async fn registry() -> RegistryClient {
    let registry = Registry::open(Arc::new(MemoryLog::new()), Options::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router(Arc::new(registry)))
            .await
            .unwrap();
    });
    RegistryClient::new(RegistryConfig::new(format!("http://{addr}"))).unwrap()
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: String,
    amount_cents: i64,
}

const ORDER: &str = r#"{"type":"object","properties":{"id":{"type":"string"},"amount_cents":{"type":"integer","minimum":0}},"required":["id","amount_cents"],"additionalProperties":false}"#;

#[tokio::test]
async fn values_round_trip_framed_with_a_json_schema_id() {
    let client = registry().await;
    let serializer =
        JsonSerializer::new(client.clone(), ORDER, JsonSerializerConfig::default()).unwrap();
    let order = Order {
        id: "o-1".into(),
        amount_cents: 1250,
    };
    let bytes = serializer.serialize("orders", &order).await.unwrap();
    // Confluent's frame: magic 0, id 1 big-endian, then the JSON text.
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, 1]);
    let body: serde_json::Value = serde_json::from_slice(&bytes[5..]).unwrap();
    assert_eq!(body, json!({"id": "o-1", "amount_cents": 1250}));
    // Registered as JSON under <topic>-value.
    let latest = client.latest_version("orders-value").await.unwrap();
    assert_eq!(latest.id, 1);
    let (_, schema_type) = client.schema_with_type_by_id(1).await.unwrap();
    assert_eq!(schema_type.as_deref(), Some("JSON"));

    let deserializer = JsonDeserializer::new(client.clone());
    let back: Order = deserializer.deserialize(&bytes).await.unwrap();
    assert_eq!(back, order);
}

#[tokio::test]
async fn a_value_that_does_not_match_is_refused_before_anything_is_registered() {
    let client = registry().await;
    let serializer =
        JsonSerializer::new(client.clone(), ORDER, JsonSerializerConfig::default()).unwrap();
    let err = serializer
        .serialize_value("orders", &json!({"id": "o-2", "amount_cents": -5}))
        .await
        .unwrap_err();
    match &err {
        ClientError::JsonSchema { message, .. } => {
            assert!(message.contains("amount_cents"), "{message}")
        }
        other => panic!("expected a JSON Schema error, got {other:?}"),
    }
    assert!(client.subjects().await.unwrap().is_empty());
    let err = serializer
        .serialize_value(
            "orders",
            &json!({"id": "o-3", "amount_cents": 1, "extra": true}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::JsonSchema { .. }), "{err:?}");
}

#[tokio::test]
async fn keys_use_the_key_subject_and_an_invalid_schema_is_refused_up_front() {
    let client = registry().await;
    let key = JsonSerializer::new(
        client.clone(),
        r#"{"type":"string"}"#,
        JsonSerializerConfig {
            is_key: true,
            ..Default::default()
        },
    )
    .unwrap();
    key.serialize("orders", &"k-1").await.unwrap();
    assert_eq!(
        client.subjects().await.unwrap(),
        vec!["orders-key".to_string()]
    );
    let err = JsonSerializer::new(
        client.clone(),
        r#"{"type":"strng"}"#,
        JsonSerializerConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ClientError::JsonSchema { .. }), "{err:?}");
    // Without auto-registration a missing schema is the registry's 40401.
    let lookup_only = JsonSerializer::new(
        client.clone(),
        ORDER,
        JsonSerializerConfig {
            auto_register: false,
            ..Default::default()
        },
    )
    .unwrap();
    let err = lookup_only
        .serialize_value("other", &json!({"id": "x", "amount_cents": 1}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::Registry { code: 40401, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_deserializer_refuses_avro_ids_and_records_that_do_not_match() {
    let client = registry().await;
    let avro_id = client.register("avro-value", "\"string\"").await.unwrap();
    let deserializer = JsonDeserializer::new(client.clone());
    let mut framed = vec![0];
    framed.extend_from_slice(&avro_id.to_be_bytes());
    framed.extend_from_slice(b"\"hello\"");
    let err = deserializer.deserialize_value(&framed).await.unwrap_err();
    assert!(err.to_string().contains("not JSON"), "{err}");

    let json_id = client
        .register_typed("orders-value", ORDER, Some("JSON"))
        .await
        .unwrap();
    let mut framed = vec![0];
    framed.extend_from_slice(&json_id.to_be_bytes());
    framed.extend_from_slice(br#"{"id": 7}"#);
    let err = deserializer.deserialize_value(&framed).await.unwrap_err();
    assert!(matches!(err, ClientError::JsonSchema { .. }), "{err:?}");
    let lenient = JsonDeserializer::without_validation(client);
    assert_eq!(
        lenient.deserialize_value(&framed).await.unwrap(),
        (json_id, json!({"id": 7}))
    );
    assert!(matches!(
        deserializer.deserialize_value(&[1, 0, 0, 0, 1]).await,
        Err(ClientError::UnknownMagicByte(1))
    ));
}

#[tokio::test]
async fn an_incompatible_schema_is_the_registrys_409() {
    let client = registry().await;
    let v1 = JsonSerializer::new(client.clone(), ORDER, JsonSerializerConfig::default()).unwrap();
    v1.serialize(
        "orders",
        &Order {
            id: "a".into(),
            amount_cents: 1,
        },
    )
    .await
    .unwrap();
    // Making amount_cents a string breaks BACKWARD.
    let v2 = JsonSerializer::new(
        client,
        r#"{"type":"object","properties":{"id":{"type":"string"},"amount_cents":{"type":"string"}},"required":["id","amount_cents"],"additionalProperties":false}"#,
        JsonSerializerConfig::default(),
    )
    .unwrap();
    let err = v2
        .serialize_value("orders", &json!({"id": "b", "amount_cents": "1"}))
        .await
        .unwrap_err();
    match err {
        ClientError::Registry { code, message, .. } => {
            assert_eq!(code, 409);
            assert!(message.contains("TYPE_CHANGED"), "{message}");
        }
        other => panic!("expected 409, got {other:?}"),
    }
}
