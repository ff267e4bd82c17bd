//! Protobuf (`schemaType: PROTOBUF`) through the registry's HTTP API against an in-memory
//! store: registration and the `schemaType` Confluent returns, parse errors naming file and
//! line, imports resolved through references across two subjects, the well-known types,
//! identity and `?normalize=true`, `?format=serialized`, and Confluent's Protobuf
//! compatibility rules as `/compatibility` and registration apply them.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use strand_registry::{MemoryLog, Options, Registry, router};
use tower::ServiceExt;

const CT: &str = "application/vnd.schemaregistry.v1+json";

struct Api {
    app: axum::Router,
}

impl Api {
    fn new() -> Api {
        let registry = Registry::open(Arc::new(MemoryLog::new()), Options::default()).unwrap();
        Api {
            app: router(Arc::new(registry)),
        }
    }

    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", CT);
        if body.is_none() {
            req = req.header("content-length", "0");
        }
        let req = req
            .body(
                body.map(|b| Body::from(b.to_string()))
                    .unwrap_or_else(Body::empty),
            )
            .unwrap();
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn register(&self, subject: &str, schema: &str, references: Value) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/subjects/{subject}/versions"),
            Some(json!({"schema": schema, "schemaType": "PROTOBUF", "references": references})),
        )
        .await
    }

    async fn check(&self, subject: &str, schema: &str) -> (bool, Vec<String>) {
        let (status, body) = self
            .call(
                "POST",
                &format!("/compatibility/subjects/{subject}/versions/latest?verbose=true"),
                Some(json!({"schema": schema, "schemaType": "PROTOBUF"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let messages = body["messages"]
            .as_array()
            .map(|m| m.iter().map(|s| s.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        (body["is_compatible"].as_bool().unwrap(), messages)
    }
}

const ADDRESS: &str =
    "syntax = \"proto3\";\npackage geo;\n\nmessage Address {\n  string city = 1;\n}\n";
const USER: &str = "syntax = \"proto3\";\npackage people;\n\nimport \"geo/address.proto\";\nimport \"google/protobuf/timestamp.proto\";\n\nmessage User {\n  string name = 1;\n  geo.Address home = 2;\n  google.protobuf.Timestamp born = 3;\n}\n";

#[tokio::test]
async fn protobuf_registers_with_references_and_well_known_types() {
    let api = Api::new();
    assert_eq!(
        api.register("address", ADDRESS, json!([])).await,
        (200, json!({"id": 1}))
    );
    let refs = json!([{"name": "geo/address.proto", "subject": "address", "version": 1}]);
    assert_eq!(
        api.register("user", USER, refs.clone()).await,
        (200, json!({"id": 2}))
    );
    let (_, by_id) = api.call("GET", "/schemas/ids/2", None).await;
    assert_eq!(by_id["schemaType"], "PROTOBUF");
    assert_eq!(by_id["schema"], USER);
    assert_eq!(by_id["references"], refs);
    let (_, version) = api.call("GET", "/subjects/user/versions/1", None).await;
    assert_eq!(version["schemaType"], "PROTOBUF");
    // The same schema with other comments and spacing is the same schema.
    let respaced = USER.replace("\n\n", "\n// a comment\n\n");
    assert_eq!(
        api.register("user", &respaced, refs.clone()).await,
        (200, json!({"id": 2}))
    );
    let (status, found) = api
        .call(
            "POST",
            "/subjects/user",
            Some(json!({"schema": respaced, "schemaType": "PROTOBUF", "references": refs})),
        )
        .await;
    assert_eq!((status, found["id"].clone()), (200, json!(2)), "{found}");
    assert_eq!(
        api.call("GET", "/subjects/user/versions", None).await.1,
        json!([1])
    );
}

#[tokio::test]
async fn serialized_format_is_a_base64_file_descriptor() {
    let api = Api::new();
    api.register("address", ADDRESS, json!([])).await;
    let (_, body) = api
        .call("GET", "/schemas/ids/1?format=serialized", None)
        .await;
    let serialized = body["schema"].as_str().unwrap();
    assert_ne!(serialized, ADDRESS);
    // FileDescriptorProto field 1 (name) is "default.proto": 0x0a 0x0d "default.proto".
    assert!(
        serialized.starts_with("Cg1kZWZhdWx0LnByb3Rv"),
        "{serialized}"
    );
}

#[tokio::test]
async fn bad_protobuf_is_42201_naming_file_and_line_and_nothing_is_stored() {
    let api = Api::new();
    for (bad, refs, says) in [
        (
            "syntax = \"proto3\";\nmessage A {\n  strin a = 1;\n}\n",
            json!([]),
            "default.proto:3:",
        ),
        (
            "syntax = \"proto3\";\nmessage A {\n  string a = 1\n}\n",
            json!([]),
            "default.proto:4:",
        ),
        (
            "syntax = \"proto3\";\nimport \"nowhere.proto\";\nmessage A { string a = 1; }\n",
            json!([]),
            "nowhere.proto",
        ),
    ] {
        let (status, body) = api.register("bad", bad, refs).await;
        assert_eq!(
            (status, body["error_code"].as_u64()),
            (422, Some(42201)),
            "{body}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(says), "{message}");
    }
    assert_eq!(api.call("GET", "/subjects", None).await.1, json!([]));
}

#[tokio::test]
async fn compatibility_follows_confluents_protobuf_rules() {
    let api = Api::new();
    let v1 = "syntax = \"proto3\";\npackage shop;\nmessage Order {\n  string id = 1;\n  int32 qty = 2;\n}\nmessage Audit { string who = 1; }\n";
    api.register("orders", v1, json!([])).await;
    // Renamed field, wider varint, removed field, added field: compatible.
    let ok = "syntax = \"proto3\";\npackage shop;\nmessage Order {\n  string order_id = 1;\n  int64 qty = 2;\n  bool gift = 3;\n}\nmessage Audit { string who = 1; }\n";
    assert_eq!(api.check("orders", ok).await, (true, vec![]));
    // A scalar of another wire group.
    let retyped = v1.replace("int32 qty", "string qty");
    let (compatible, messages) = api.check("orders", &retyped).await;
    assert!(!compatible);
    assert!(
        messages[0].contains("FIELD_SCALAR_KIND_CHANGED") && messages[0].contains("#/Order/2"),
        "{messages:?}"
    );
    // A removed message is not backward compatible, but is forward compatible.
    let without_audit = "syntax = \"proto3\";\npackage shop;\nmessage Order {\n  string id = 1;\n  int32 qty = 2;\n}\n";
    let (compatible, messages) = api.check("orders", without_audit).await;
    assert!(
        !compatible && messages[0].contains("MESSAGE_REMOVED"),
        "{messages:?}"
    );
    let (status, body) = api.register("orders", without_audit, json!([])).await;
    assert_eq!(
        (status, body["error_code"].clone()),
        (409, json!(409)),
        "{body}"
    );
    let (status, _) = api
        .call(
            "PUT",
            "/config/orders",
            Some(json!({"compatibility": "FORWARD"})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(api.check("orders", without_audit).await, (true, vec![]));
    // A package change breaks both.
    let (compatible, _) = api
        .check("orders", &v1.replace("package shop", "package store"))
        .await;
    assert!(!compatible);
    // A schema of another type is incompatible.
    let (status, body) = api
        .call(
            "POST",
            "/compatibility/subjects/orders/versions/latest",
            Some(json!({"schema": "{\"type\":\"string\"}"})),
        )
        .await;
    assert_eq!((status, body["is_compatible"].clone()), (200, json!(false)));
}
