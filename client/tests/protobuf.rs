//! The Protobuf serializer and deserializer against strand's real registry (in-process over
//! HTTP): Confluent's framing with message indexes, imports registered as references under
//! their import paths, and the round trip through `prost` and dynamic messages.

use std::sync::Arc;

use prost_reflect::{DynamicMessage, ReflectMessage, Value};
use strand_client::{
    ProtobufDeserializer, ProtobufSerializer, ProtobufSerializerConfig, RegistryClient,
    RegistryConfig, split_protobuf_frame,
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

const ADDRESS: &str = "syntax = \"proto3\";\npackage geo;\nmessage Address { string city = 1; }\n";
const ORDER: &str = "syntax = \"proto3\";\npackage shop;\nimport \"geo/address.proto\";\nmessage Header { string source = 1; }\nmessage Order {\n  string id = 1;\n  int64 amount_cents = 2;\n  geo.Address ship_to = 3;\n  message Line { string sku = 1; }\n}\n";

#[derive(Clone, PartialEq, prost::Message)]
struct Address {
    #[prost(string, tag = "1")]
    city: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Order {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(int64, tag = "2")]
    amount_cents: i64,
    #[prost(message, optional, tag = "3")]
    ship_to: Option<Address>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Line {
    #[prost(string, tag = "1")]
    sku: String,
}

#[tokio::test]
async fn prost_messages_round_trip_with_message_indexes_and_a_reference() {
    let client = registry().await;
    let serializer = ProtobufSerializer::new(
        client.clone(),
        ORDER,
        &[("geo/address.proto", ADDRESS)],
        ProtobufSerializerConfig::default(),
    )
    .unwrap();
    let order = Order {
        id: "o-1".into(),
        amount_cents: 1250,
        ship_to: Some(Address {
            city: "Lisbon".into(),
        }),
    };
    let bytes = serializer
        .serialize("orders", "shop.Order", &order)
        .await
        .unwrap();
    // The import was registered first (id 1) under its import path, the schema second.
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, 2]);
    // Order is the second top-level message: indexes [1] = count 1, index 1, zigzagged.
    assert_eq!(&bytes[5..7], &[2, 2]);
    let (id, indexes, _) = split_protobuf_frame(&bytes).unwrap();
    assert_eq!((id, indexes), (2, vec![1]));
    assert_eq!(
        client.latest_version("geo/address.proto").await.unwrap().id,
        1
    );
    let latest = client.latest_version("orders-value").await.unwrap();
    assert_eq!(latest.schema_type.as_deref(), Some("PROTOBUF"));
    assert_eq!(latest.references[0].subject, "geo/address.proto");

    let deserializer = ProtobufDeserializer::new(client.clone());
    let (id, back): (u32, Order) = deserializer.deserialize(&bytes).unwrap();
    assert_eq!((id, back), (2, order));
    let (_, dynamic) = deserializer.deserialize_dynamic(&bytes).await.unwrap();
    assert_eq!(dynamic.descriptor().full_name(), "shop.Order");
    assert_eq!(
        dynamic.get_field_by_name("amount_cents").unwrap().as_ref(),
        &Value::I64(1250)
    );

    // A nested message gets a path of indexes; the first message gets the single 0.
    let line = serializer
        .serialize("orders", "shop.Order.Line", &Line { sku: "s".into() })
        .await
        .unwrap();
    assert_eq!(&line[5..8], &[4, 2, 0]);
    let header = serializer
        .serialize_dynamic(
            "orders",
            &DynamicMessage::new(serializer.message("shop.Header").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(header[5..], [0]);
    let (_, dynamic) = deserializer.deserialize_dynamic(&line).await.unwrap();
    assert_eq!(dynamic.descriptor().full_name(), "shop.Order.Line");
}

#[tokio::test]
async fn a_schema_that_does_not_compile_or_an_unknown_message_is_refused() {
    let client = registry().await;
    let err = ProtobufSerializer::new(
        client.clone(),
        ORDER,
        &[],
        ProtobufSerializerConfig::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("geo/address.proto"), "{err}");
    let serializer = ProtobufSerializer::new(
        client.clone(),
        ADDRESS,
        &[],
        ProtobufSerializerConfig::default(),
    )
    .unwrap();
    let err = serializer
        .serialize("t", "geo.Nope", &Address::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("geo.Nope"), "{err}");
    assert!(client.subjects().await.unwrap().is_empty());
}
