//! The registry's HTTP API against an in-memory store: Confluent's shapes, status codes and
//! error codes, as a registry-aware client sees them.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use strand_registry::{MemoryLog, Options, Registry, SchemaLog, router};
use tower::ServiceExt;

struct Api {
    app: axum::Router,
}

const CT: &str = "application/vnd.schemaregistry.v1+json";

impl Api {
    fn new() -> Api {
        Api::over(Arc::new(MemoryLog::new()))
    }

    fn over(log: Arc<dyn SchemaLog>) -> Api {
        let registry = Registry::open(log, Options::default()).unwrap();
        Api {
            app: router(Arc::new(registry)),
        }
    }

    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        let (status, text) = self
            .raw(method, uri, body.map(|b| b.to_string()), Some(CT))
            .await;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    async fn raw(
        &self,
        method: &str,
        uri: &str,
        body: Option<String>,
        content_type: Option<&str>,
    ) -> (u16, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status().as_u16();
        if status != 204 {
            assert_eq!(
                response.headers()["content-type"],
                if uri == "/openapi.json" {
                    "application/json"
                } else {
                    CT
                },
                "{method} {uri}"
            );
        }
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    async fn register(&self, subject: &str, schema: &Value) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/subjects/{subject}/versions"),
            Some(json!({"schema": schema.to_string()})),
        )
        .await
    }
}

fn user(fields: Value) -> Value {
    json!({"type": "record", "name": "User", "namespace": "acme", "fields": fields})
}

fn v1() -> Value {
    user(json!([{"name": "id", "type": "long"}]))
}

fn v2() -> Value {
    user(json!([
        {"name": "id", "type": "long"},
        {"name": "email", "type": ["null", "string"], "default": null}
    ]))
}

fn breaking() -> Value {
    user(json!([{"name": "id", "type": "long"}, {"name": "name", "type": "string"}]))
}

fn error_code(body: &Value) -> u64 {
    body["error_code"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn register_then_fetch_by_subject_version_and_id() {
    let api = Api::new();
    let (status, body) = api.register("users-value", &v1()).await;
    assert_eq!((status, &body), (200, &json!({"id": 1})));
    let (status, body) = api
        .call("GET", "/subjects/users-value/versions/1", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["subject"], "users-value");
    assert_eq!(body["version"], 1);
    assert_eq!(body["id"], 1);
    assert!(body.get("schemaType").is_none(), "{body}");
    let schema: Value = serde_json::from_str(body["schema"].as_str().unwrap()).unwrap();
    assert_eq!(schema, v1());
    let (status, body) = api.call("GET", "/schemas/ids/1", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(body["schema"].as_str().unwrap()).unwrap(),
        v1()
    );
    let (_, latest) = api
        .call("GET", "/subjects/users-value/versions/latest", None)
        .await;
    assert_eq!(latest["version"], 1);
    let (_, minus_one) = api
        .call("GET", "/subjects/users-value/versions/-1", None)
        .await;
    assert_eq!(minus_one["version"], 1);
    let (_, versions) = api
        .call("GET", "/subjects/users-value/versions", None)
        .await;
    assert_eq!(versions, json!([1]));
    let (_, subjects) = api.call("GET", "/subjects", None).await;
    assert_eq!(subjects, json!(["users-value"]));
    let (_, raw) = api
        .call("GET", "/subjects/users-value/versions/1/schema", None)
        .await;
    assert_eq!(raw, v1());
    let (_, raw) = api.call("GET", "/schemas/ids/1/schema", None).await;
    assert_eq!(raw, v1());
}

#[tokio::test]
async fn same_schema_gets_same_id_under_any_subject_and_no_new_version() {
    let api = Api::new();
    assert_eq!(api.register("a", &v1()).await.1, json!({"id": 1}));
    // Same schema, different whitespace and key order.
    let reordered = r#"{ "fields": [{"type":"long","name":"id"}], "namespace":"acme", "name":"User", "type":"record" }"#;
    let (_, body) = api
        .call(
            "POST",
            "/subjects/b/versions",
            Some(json!({"schema": reordered})),
        )
        .await;
    assert_eq!(body, json!({"id": 1}));
    assert_eq!(api.register("a", &v1()).await.1, json!({"id": 1}));
    assert_eq!(
        api.call("GET", "/subjects/a/versions", None).await.1,
        json!([1])
    );
    let (_, versions) = api.call("GET", "/schemas/ids/1/versions", None).await;
    assert_eq!(
        versions,
        json!([{"subject": "a", "version": 1}, {"subject": "b", "version": 1}])
    );
    let (_, subjects) = api.call("GET", "/schemas/ids/1/subjects", None).await;
    assert_eq!(subjects, json!(["a", "b"]));
}

#[tokio::test]
async fn backward_accepts_evolution_and_rejects_breaking_change_with_409() {
    let api = Api::new();
    api.register("s", &v1()).await;
    assert_eq!(api.register("s", &v2()).await, (200, json!({"id": 2})));
    let (status, body) = api.register("s", &breaking()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(error_code(&body), 409);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
        "{message}"
    );
    assert!(message.contains("'name'"), "{message}");
    assert_eq!(
        api.call("GET", "/subjects/s/versions", None).await.1,
        json!([1, 2])
    );
}

#[tokio::test]
async fn compatibility_endpoint_reports_verbose_messages() {
    let api = Api::new();
    api.register("s", &v1()).await;
    let req = json!({"schema": breaking().to_string()});
    let (status, body) = api
        .call(
            "POST",
            "/compatibility/subjects/s/versions/latest?verbose=true",
            Some(req.clone()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["is_compatible"], false);
    let messages = body["messages"].as_array().unwrap();
    assert!(
        messages[0].as_str().unwrap().contains("name")
            && messages[0]
                .as_str()
                .unwrap()
                .contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
        "{messages:?}"
    );
    let (_, body) = api
        .call(
            "POST",
            "/compatibility/subjects/s/versions",
            Some(req.clone()),
        )
        .await;
    assert_eq!(body, json!({"is_compatible": false}));
    let ok = json!({"schema": v2().to_string()});
    let (_, body) = api
        .call(
            "POST",
            "/compatibility/subjects/s/versions/1",
            Some(ok.clone()),
        )
        .await;
    assert_eq!(body, json!({"is_compatible": true}));
    let (_, body) = api
        .call(
            "POST",
            "/compatibility/subjects/new/versions",
            Some(ok.clone()),
        )
        .await;
    assert_eq!(body, json!({"is_compatible": true}));
    // As Confluent: nothing to be incompatible with, unless a numbered version is named.
    let (status, body) = api
        .call(
            "POST",
            "/compatibility/subjects/new/versions/latest?verbose=true",
            Some(ok.clone()),
        )
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"is_compatible": true, "messages": []}))
    );
    let (status, body) = api
        .call(
            "POST",
            "/compatibility/subjects/new/versions/1",
            Some(ok.clone()),
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, 40402));
    let (status, body) = api
        .call(
            "POST",
            "/compatibility/subjects/new/versions/latest",
            Some(json!({"schema": "{\"type\": \"nope\"}"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (422, 42201));
    api.call("DELETE", "/subjects/s", None).await;
    let (_, body) = api
        .call(
            "POST",
            "/compatibility/subjects/s/versions/latest",
            Some(req.clone()),
        )
        .await;
    assert_eq!(body, json!({"is_compatible": true}));
    let (status, body) = api
        .call("POST", "/compatibility/subjects/s/versions/1", Some(req))
        .await;
    assert_eq!((status, error_code(&body)), (404, 40402));
}

#[tokio::test]
async fn config_levels_global_and_per_subject() {
    let api = Api::new();
    assert_eq!(
        api.call("GET", "/config", None).await.1,
        json!({"compatibilityLevel": "BACKWARD"})
    );
    let (status, body) = api
        .call("PUT", "/config/s", Some(json!({"compatibility": "NONE"})))
        .await;
    assert_eq!((status, body), (200, json!({"compatibility": "NONE"})));
    api.register("s", &v1()).await;
    assert_eq!(api.register("s", &breaking()).await.0, 200);
    let (status, body) = api.call("GET", "/config/other", None).await;
    assert_eq!((status, error_code(&body)), (404, 40408));
    let (_, body) = api
        .call("GET", "/config/other?defaultToGlobal=true", None)
        .await;
    assert_eq!(body, json!({"compatibilityLevel": "BACKWARD"}));
    let (status, body) = api
        .call("PUT", "/config", Some(json!({"compatibility": "SIDEWAYS"})))
        .await;
    assert_eq!((status, error_code(&body)), (422, 42203));
    let (_, body) = api.call("DELETE", "/config/s", None).await;
    assert_eq!(body, json!({"compatibilityLevel": "NONE"}));
    let (status, body) = api.call("GET", "/config/s", None).await;
    assert_eq!((status, error_code(&body)), (404, 40408));
}

#[tokio::test]
async fn read_only_mode_refuses_registration() {
    let api = Api::new();
    let (_, body) = api
        .call("PUT", "/mode", Some(json!({"mode": "READONLY"})))
        .await;
    assert_eq!(body, json!({"mode": "READONLY"}));
    let (status, body) = api.register("s", &v1()).await;
    assert_eq!((status, error_code(&body)), (422, 42205));
    let (status, body) = api
        .call("PUT", "/mode", Some(json!({"mode": "FAST"})))
        .await;
    assert_eq!((status, error_code(&body)), (422, 42204));
    let (status, body) = api.call("GET", "/mode/s", None).await;
    assert_eq!((status, error_code(&body)), (404, 40409));
    api.call("PUT", "/mode", Some(json!({"mode": "READWRITE"})))
        .await;
    assert_eq!(api.register("s", &v1()).await.0, 200);
}

#[tokio::test]
async fn import_mode_keeps_explicit_ids_and_versions() {
    let api = Api::new();
    api.call("PUT", "/mode", Some(json!({"mode": "IMPORT"})))
        .await;
    let (status, body) = api
        .call(
            "POST",
            "/subjects/s/versions",
            Some(json!({"schema": v1().to_string(), "id": 42, "version": 7})),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({"id": 42})), "{body}");
    let (_, body) = api.call("GET", "/subjects/s/versions/7", None).await;
    assert_eq!(body["id"], 42);
    api.call("PUT", "/mode", Some(json!({"mode": "READWRITE"})))
        .await;
    // New ids continue after the imported ones.
    assert_eq!(api.register("t", &breaking()).await.1, json!({"id": 43}));
    // IMPORT with subjects present needs force.
    let (status, body) = api
        .call("PUT", "/mode", Some(json!({"mode": "IMPORT"})))
        .await;
    assert_eq!((status, error_code(&body)), (422, 42205));
}

#[tokio::test]
async fn soft_then_hard_delete_with_confluent_codes_and_ids_never_reused() {
    let api = Api::new();
    api.register("s", &v1()).await;
    api.register("s", &v2()).await;
    let (status, body) = api
        .call("DELETE", "/subjects/s/versions/1?permanent=true", None)
        .await;
    assert_eq!((status, error_code(&body)), (404, 40407));
    assert_eq!(
        api.call("DELETE", "/subjects/s/versions/1", None).await.1,
        json!(1)
    );
    let (status, body) = api.call("DELETE", "/subjects/s/versions/1", None).await;
    assert_eq!((status, error_code(&body)), (404, 40406));
    assert_eq!(
        body["message"],
        "Subject 's' Version 1 was soft deleted.Set permanent=true to delete permanently"
    );
    let (status, body) = api.call("GET", "/subjects/s/versions/1", None).await;
    assert_eq!((status, error_code(&body)), (404, 40402));
    let (_, body) = api
        .call("GET", "/subjects/s/versions/1?deleted=true", None)
        .await;
    assert_eq!(body["id"], 1);
    let (status, body) = api.call("DELETE", "/subjects/s?permanent=true", None).await;
    assert_eq!((status, error_code(&body)), (404, 40405));
    assert_eq!(api.call("DELETE", "/subjects/s", None).await.1, json!([2]));
    let (status, body) = api.call("DELETE", "/subjects/s", None).await;
    assert_eq!((status, error_code(&body)), (404, 40404));
    assert_eq!(
        body["message"],
        "Subject 's' was soft deleted.Set permanent=true to delete permanently"
    );
    let (status, body) = api.call("GET", "/subjects/s/versions", None).await;
    assert_eq!((status, error_code(&body)), (404, 40401));
    assert_eq!(
        api.call("GET", "/subjects?deleted=true", None).await.1,
        json!(["s"])
    );
    assert_eq!(
        api.call("DELETE", "/subjects/s?permanent=true", None)
            .await
            .1,
        json!([1, 2])
    );
    let (status, body) = api.call("GET", "/schemas/ids/2", None).await;
    assert_eq!((status, error_code(&body)), (404, 40403));
    // A new schema gets a fresh id; the deleted schema its old one.
    assert_eq!(api.register("s", &breaking()).await.1, json!({"id": 3}));
    assert_eq!(api.register("t", &v1()).await.1, json!({"id": 1}));
}

#[tokio::test]
async fn lookup_finds_the_version_or_says_not_found() {
    let api = Api::new();
    api.register("s", &v1()).await;
    let (status, body) = api
        .call(
            "POST",
            "/subjects/s",
            Some(json!({"schema": v1().to_string()})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["version"].clone(), body["id"].clone()),
        (json!(1), json!(1))
    );
    let (status, body) = api
        .call(
            "POST",
            "/subjects/s",
            Some(json!({"schema": v2().to_string()})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, 40403));
    let (status, body) = api
        .call(
            "POST",
            "/subjects/nope",
            Some(json!({"schema": v1().to_string()})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, 40401));
    assert_eq!(body["message"], "Subject 'nope' not found.");
}

#[tokio::test]
async fn references_resolve_other_subjects_and_block_deletion() {
    let api = Api::new();
    let address = json!({"type": "record", "name": "Address", "namespace": "acme",
        "fields": [{"name": "city", "type": "string"}]});
    api.register("address", &address).await;
    let person = json!({"type": "record", "name": "Person", "namespace": "acme",
        "fields": [{"name": "home", "type": "acme.Address"}]});
    let refs = json!([{"name": "acme.Address", "subject": "address", "version": 1}]);
    let (status, body) = api
        .call(
            "POST",
            "/subjects/person/versions",
            Some(json!({"schema": person.to_string(), "references": refs})),
        )
        .await;
    assert_eq!((status, &body), (200, &json!({"id": 2})), "{body}");
    let (_, body) = api.call("GET", "/subjects/person/versions/1", None).await;
    assert_eq!(body["references"], refs);
    let (_, body) = api.call("GET", "/schemas/ids/2", None).await;
    assert_eq!(body["references"], refs);
    let (_, body) = api
        .call("GET", "/subjects/address/versions/1/referencedby", None)
        .await;
    assert_eq!(body, json!([2]));
    let (status, body) = api.call("DELETE", "/subjects/address", None).await;
    assert_eq!((status, error_code(&body)), (422, 42206));
    let unknown = json!([{"name": "acme.Address", "subject": "address", "version": 9}]);
    let (status, body) = api
        .call(
            "POST",
            "/subjects/p2/versions",
            Some(json!({"schema": person.to_string(), "references": unknown})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (422, 42201));
}

#[tokio::test]
async fn bad_input_gets_confluent_errors_and_changes_nothing() {
    let api = Api::new();
    api.register("s", &v1()).await;
    let (status, body) = api
        .raw(
            "POST",
            "/subjects/s/versions",
            Some("{not json".into()),
            Some(CT),
        )
        .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, error_code(&body)), (400, 400));
    let (status, body) = api
        .call(
            "POST",
            "/subjects/s/versions",
            Some(json!({"schema": "{\"type\": \"record\", \"name\": \"R\"}"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (422, 42201));
    assert!(body["message"].as_str().unwrap().len() > 20, "{body}");
    for version in ["abc", "0", "2147483648"] {
        let (status, body) = api
            .call("GET", &format!("/subjects/s/versions/{version}"), None)
            .await;
        assert_eq!((status, error_code(&body)), (422, 42202), "{version}");
    }
    let (status, body) = api
        .raw(
            "POST",
            "/subjects/s/versions",
            Some("{}".into()),
            Some("text/plain"),
        )
        .await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = api.call("GET", "/no/such/route", None).await;
    assert_eq!((status, error_code(&body)), (404, 404));
    let (status, body) = api.call("PATCH", "/subjects", None).await;
    assert_eq!((status, error_code(&body)), (405, 405));
    assert_eq!(
        api.call("GET", "/subjects/s/versions", None).await.1,
        json!([1])
    );
}

#[tokio::test]
async fn oversized_body_is_refused_with_413() {
    let api = Api::new();
    let huge = format!("{{\"schema\": \"{}\"}}", "x".repeat(20 * 1024 * 1024));
    let (status, body) = api
        .raw("POST", "/subjects/s/versions", Some(huge), Some(CT))
        .await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, error_code(&body)), (413, 413));
    let big_schema = format!("\"{}\"", "x".repeat(2 * 1024 * 1024));
    let (status, body) = api
        .call(
            "POST",
            "/subjects/s/versions",
            Some(json!({"schema": big_schema})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (422, 42209));
}

#[tokio::test]
async fn subject_names_with_slash_percent_and_unicode_round_trip() {
    let api = Api::new();
    for (encoded, name) in [
        ("a%2Fb", "a/b"),
        ("100%25", "100%"),
        ("%C3%BCber-value", "über-value"),
    ] {
        let (status, body) = api.register(encoded, &v1()).await;
        assert_eq!(status, 200, "{name}: {body}");
        let (_, body) = api
            .call("GET", &format!("/subjects/{encoded}/versions/1"), None)
            .await;
        assert_eq!(body["subject"], name);
    }
    let (_, subjects) = api.call("GET", "/subjects", None).await;
    assert_eq!(subjects, json!(["100%", "a/b", "über-value"]));
    let (status, body) = api.register("%01bad", &v1()).await;
    assert_eq!((status, error_code(&body)), (422, 42208));
}

#[tokio::test]
async fn restart_replays_subjects_ids_config_and_mode() {
    let log: Arc<dyn SchemaLog> = Arc::new(MemoryLog::new());
    {
        let api = Api::over(log.clone());
        api.register("s", &v1()).await;
        api.register("s", &v2()).await;
        api.register("t", &breaking()).await;
        api.call("DELETE", "/subjects/t", None).await;
        api.call("DELETE", "/subjects/t?permanent=true", None).await;
        api.call("PUT", "/config/s", Some(json!({"compatibility": "FULL"})))
            .await;
        api.call("PUT", "/mode/s", Some(json!({"mode": "READONLY"})))
            .await;
    }
    let api = Api::over(log);
    assert_eq!(
        api.call("GET", "/subjects/s/versions", None).await.1,
        json!([1, 2])
    );
    assert_eq!(api.call("GET", "/schemas/ids/2", None).await.0, 200);
    assert_eq!(api.call("GET", "/subjects", None).await.1, json!(["s"]));
    assert_eq!(
        api.call("GET", "/config/s", None).await.1,
        json!({"compatibilityLevel": "FULL"})
    );
    assert_eq!(
        api.call("GET", "/mode/s", None).await.1,
        json!({"mode": "READONLY"})
    );
    api.call("DELETE", "/mode/s", None).await;
    // id 3 was hard-deleted, and is not reused.
    let fresh =
        user(json!([{"name": "id", "type": "long"}, {"name": "z", "type": "int", "default": 0}]));
    assert_eq!(api.register("u", &fresh).await.1, json!({"id": 4}));
}

#[tokio::test]
async fn root_metadata_types_and_openapi() {
    let api = Api::new();
    assert_eq!(api.call("GET", "/", None).await, (200, json!({})));
    assert_eq!(
        api.call("GET", "/contexts", None).await,
        (200, json!(["."]))
    );
    assert_eq!(
        api.call("GET", "/schemas/types", None).await.1,
        json!(["AVRO", "JSON", "PROTOBUF"])
    );
    let (_, body) = api.call("GET", "/v1/metadata/id", None).await;
    assert_eq!(body["scope"]["clusters"]["kafka-cluster"], "strand");
    let (status, body) = api.call("GET", "/openapi.json", None).await;
    assert_eq!(status, 200);
    for path in [
        "/schemas/ids/{id}",
        "/contexts",
        "/subjects/{subject}/metadata",
    ] {
        assert!(body["paths"][path].is_object(), "{path}");
    }
}

#[tokio::test]
async fn normalize_stores_the_normalized_form_under_the_same_id() {
    let api = Api::new();
    let spaced = "{ \"type\" : \"record\", \"name\" : \"N\", \"fields\" : [ {\"name\":\"a\", \"type\":\"int\"} ] }";
    let (_, body) = api
        .call(
            "POST",
            "/subjects/n/versions?normalize=true",
            Some(json!({"schema": spaced})),
        )
        .await;
    assert_eq!(body, json!({"id": 1}));
    let (_, body) = api.call("GET", "/subjects/n/versions/1", None).await;
    let stored = body["schema"].as_str().unwrap();
    assert!(!stored.contains(' '), "{stored}");
    // The unnormalized text is the same schema.
    let (_, body) = api
        .call(
            "POST",
            "/subjects/m/versions",
            Some(json!({"schema": spaced})),
        )
        .await;
    assert_eq!(body, json!({"id": 1}));
}

#[tokio::test]
async fn transitive_levels_check_every_live_version() {
    let api = Api::new();
    api.call(
        "PUT",
        "/config/t",
        Some(json!({"compatibility": "BACKWARD_TRANSITIVE"})),
    )
    .await;
    let int_field = user(json!([{"name": "n", "type": "int"}]));
    let long_field = user(json!([{"name": "n", "type": "long"}]));
    let float_field = user(json!([{"name": "n", "type": "float"}]));
    assert_eq!(api.register("t", &int_field).await.0, 200);
    assert_eq!(api.register("t", &long_field).await.0, 200);
    assert_eq!(api.register("t", &float_field).await.0, 200);
    // A schema already in the subject is answered with its id, unchecked.
    let (status, body) = api.register("t", &int_field).await;
    assert_eq!(status, 200, "already registered as version 1: {body}");
    let double_to_int = user(json!([{"name": "n", "type": "double"}]));
    assert_eq!(api.register("t", &double_to_int).await.0, 200);
    let back_to_long =
        user(json!([{"name": "n", "type": "long"}, {"name": "x", "type": "int", "default": 0}]));
    // long reads int and long data but not float or double: refused, naming versions 3, 4.
    let (status, body) = api.register("t", &back_to_long).await;
    assert_eq!(status, 409, "{body}");
    let message = body["message"].as_str().unwrap();
    for version in ["oldSchemaVersion: 4", "oldSchemaVersion: 3"] {
        assert!(message.contains(version), "{message}");
    }
    assert!(!message.contains("oldSchemaVersion: 1"), "{message}");
}

#[tokio::test]
async fn forward_messages_say_the_old_schema_is_the_reader() {
    let api = Api::new();
    api.call("PUT", "/config", Some(json!({"compatibility": "FORWARD"})))
        .await;
    api.register("f", &v2()).await;
    let (status, body) = api
        .call(
            "POST",
            "/compatibility/subjects/f/versions/latest?verbose=true",
            Some(json!({"schema": v1().to_string()})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["is_compatible"], true,
        "removing a field with a default"
    );
    let narrowed = user(json!([{"name": "id", "type": "long"}, {"name": "email", "type": "int"}]));
    let (_, body) = api
        .call(
            "POST",
            "/compatibility/subjects/f/versions/latest?verbose=true",
            Some(json!({"schema": narrowed.to_string()})),
        )
        .await;
    assert_eq!(body["is_compatible"], false);
    let first = body["messages"][0].as_str().unwrap();
    assert!(first.contains("MISSING_UNION_BRANCH"), "{first}");
    assert!(first.contains("/fields/1/type"), "{first}");
    assert!(first.contains("The old schema is missing"), "{first}");
    assert!(
        body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "{validateFields: 'false', compatibility: 'FORWARD'}"),
        "{body}"
    );
}

#[tokio::test]
async fn schemas_list_filters_by_prefix_latest_and_deleted() {
    let api = Api::new();
    api.register("app-a", &v1()).await;
    api.register("app-a", &v2()).await;
    api.register("other", &breaking()).await;
    let (_, all) = api.call("GET", "/schemas", None).await;
    assert_eq!(all.as_array().unwrap().len(), 3);
    let (_, latest) = api
        .call("GET", "/schemas?subjectPrefix=app-&latestOnly=true", None)
        .await;
    assert_eq!(latest.as_array().unwrap().len(), 1);
    assert_eq!(latest[0]["version"], 2);
    api.call("DELETE", "/subjects/app-a/versions/1", None).await;
    let (_, live) = api.call("GET", "/schemas?subjectPrefix=app-", None).await;
    assert_eq!(live.as_array().unwrap().len(), 1);
    let (_, with_deleted) = api
        .call("GET", "/schemas?subjectPrefix=app-&deleted=true", None)
        .await;
    assert_eq!(with_deleted.as_array().unwrap().len(), 2);
    let (_, ids) = api.call("GET", "/schemas/ids/1/versions", None).await;
    assert_eq!(ids, json!([]));
    let (_, ids) = api
        .call("GET", "/schemas/ids/1/versions?deleted=true", None)
        .await;
    assert_eq!(ids, json!([{"subject": "app-a", "version": 1}]));
    let (_, subjects) = api.call("GET", "/subjects?subjectPrefix=app", None).await;
    assert_eq!(subjects, json!(["app-a"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_get_distinct_ids_and_shared_schemas_one_id() {
    let api = Arc::new(Api::new());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let own = user(json!([{"name": format!("f{i}"), "type": "int"}]));
            let (s1, own_id) = api.register(&format!("own-{i}"), &own).await;
            let (s2, shared_id) = api.register(&format!("shared-{i}"), &v1()).await;
            assert_eq!((s1, s2), (200, 200));
            (
                own_id["id"].as_u64().unwrap(),
                shared_id["id"].as_u64().unwrap(),
            )
        }));
    }
    let mut own_ids = std::collections::BTreeSet::new();
    let mut shared_ids = std::collections::BTreeSet::new();
    for task in tasks {
        let (own, shared) = task.await.unwrap();
        own_ids.insert(own);
        shared_ids.insert(shared);
    }
    assert_eq!(own_ids.len(), 40);
    assert_eq!(shared_ids.len(), 1);
    assert!(!own_ids.contains(shared_ids.iter().next().unwrap()));
    let (_, subjects) = api.call("GET", "/subjects", None).await;
    assert_eq!(subjects.as_array().unwrap().len(), 80);
}

/// The schema of issue 15's memory blow-up: a union of records `r0 … r(n-1)`, `r0` with one
/// field of type `bottom`, each `r_i` with one field of type `r(i-1)`.
fn record_chain(n: usize, bottom: &str) -> Value {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let ty = if i == 0 {
                json!(bottom)
            } else {
                json!(format!("r{}", i - 1))
            };
            json!({"type": "record", "name": format!("r{i}"), "fields": [{"name": "f", "type": ty}]})
        })
        .collect();
    Value::Array(records)
}

#[tokio::test]
async fn record_chain_of_800_is_checked_with_its_reasons_and_registered() {
    let api = Api::new();
    let (int, long) = (record_chain(800, "int"), record_chain(800, "long"));
    assert_eq!(api.register("chain", &int).await, (200, json!({"id": 1})));
    let check = |schema: &Value| json!({"schema": schema.to_string()});
    let latest = "/compatibility/subjects/chain/versions/latest?verbose=true";

    // BACKWARD: the long chain reads the int chain's data (int promotes to long).
    let (status, body) = api.call("POST", latest, Some(check(&long))).await;
    assert_eq!(
        (status, &body["is_compatible"]),
        (200, &json!(true)),
        "{body}"
    );

    // FORWARD: the int chain cannot read longs, so no reader branch reads any writer
    // branch. 800 reasons exist; the first 100 are listed, then a note, then the version.
    api.call(
        "PUT",
        "/config/chain",
        Some(json!({"compatibility": "FORWARD"})),
    )
    .await;
    let (status, body) = api.call("POST", latest, Some(check(&long))).await;
    assert_eq!(
        (status, &body["is_compatible"]),
        (200, &json!(false)),
        "{body}"
    );
    let messages: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(
        messages[0],
        "{errorType:'MISSING_UNION_BRANCH', description:'The old schema is missing a type inside a union field at path '/0' in the new schema', additionalInfo:'reader union lacking writer type: RECORD'}"
    );
    assert!(messages[99].contains("at path '/99'"), "{}", messages[99]);
    assert_eq!(
        messages[100],
        "{truncated: 'only the first 100 incompatibilities are listed'}"
    );
    assert_eq!(messages[101], "{oldSchemaVersion: 1}");
    assert_eq!(messages.len(), 104);

    let (status, body) = api.register("chain", &long).await;
    assert_eq!((status, error_code(&body)), (409, 409), "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("MISSING_UNION_BRANCH") && message.contains("at path '/0'"),
        "{}",
        &message[..400]
    );

    api.call("DELETE", "/config/chain", None).await;
    assert_eq!(api.register("chain", &long).await, (200, json!({"id": 2})));
}

#[tokio::test]
async fn record_chain_of_2500_hits_the_check_bound_with_42209_and_registers_nothing() {
    // 2 500 records (190 KB) need about 3 million pairs of nodes; 10 000 (710 KB) would
    // need 50 million and are refused the same way, only later (see docs/registry.md).
    let api = Api::new();
    let (int, long) = (record_chain(2_500, "int"), record_chain(2_500, "long"));
    assert_eq!(api.register("big", &int).await, (200, json!({"id": 1})));
    let (status, body) = api
        .call(
            "POST",
            "/compatibility/subjects/big/versions/latest",
            Some(json!({"schema": long.to_string()})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (422, 42209), "{body}");
    assert_eq!(
        body["message"],
        "Schema is too complex to check for compatibility: comparing it with version 1 of \
         subject 'big' needs more than 900000 pairs of schema nodes in memory, the limit of \
         one request"
    );
    let (status, body) = api.register("big", &long).await;
    assert_eq!((status, error_code(&body)), (422, 42209), "{body}");
    let (_, versions) = api.call("GET", "/subjects/big/versions", None).await;
    assert_eq!(versions, json!([1]));
}

#[tokio::test]
async fn comparison_budget_is_shared_by_the_versions_of_a_transitive_check() {
    // Each version alone fits the comparisons of one request (about 15 000 here); all
    // three do not.
    let log: Arc<dyn SchemaLog> = Arc::new(MemoryLog::new());
    let options = Options {
        max_compatibility_comparisons: 30_000,
        ..Options::default()
    };
    let api = Api {
        app: router(Arc::new(Registry::open(log, options).unwrap())),
    };
    api.call("PUT", "/config", Some(json!({"compatibility": "NONE"})))
        .await;
    for bottom in ["long", "float", "double"] {
        let (status, _) = api.register("t", &record_chain(100, bottom)).await;
        assert_eq!(status, 200);
    }
    let int = json!({"schema": record_chain(100, "int").to_string()});
    for (level, expected) in [("FORWARD", 200), ("FORWARD_TRANSITIVE", 422)] {
        api.call("PUT", "/config/t", Some(json!({"compatibility": level})))
            .await;
        let (status, body) = api
            .call(
                "POST",
                "/compatibility/subjects/t/versions",
                Some(int.clone()),
            )
            .await;
        assert_eq!(status, expected, "{level}: {body}");
    }
}

#[tokio::test]
async fn deleted_only_lists_just_the_soft_deleted_subjects_and_versions() {
    let api = Api::new();
    api.register("live", &v1()).await;
    api.register("gone", &v1()).await;
    api.register("half", &v1()).await;
    api.register("half", &v2()).await;
    api.call("DELETE", "/subjects/gone", None).await;
    api.call("DELETE", "/subjects/half/versions/1", None).await;
    let list = |query: &'static str| {
        let api = &api;
        async move { api.call("GET", &format!("/subjects{query}"), None).await }
    };
    assert_eq!(list("").await, (200, json!(["half", "live"])));
    assert_eq!(
        list("?deleted=true").await,
        (200, json!(["gone", "half", "live"]))
    );
    // A subject is soft-deleted when it has no live version left.
    assert_eq!(list("?deletedOnly=true").await, (200, json!(["gone"])));
    assert_eq!(
        list("?deleted=true&deletedOnly=true").await,
        (200, json!(["gone"]))
    );
    assert_eq!(
        list("?deletedOnly=true&subjectPrefix=l").await,
        (200, json!([]))
    );
    let versions = |query: &'static str| {
        let api = &api;
        async move {
            api.call("GET", &format!("/subjects/half/versions{query}"), None)
                .await
        }
    };
    assert_eq!(versions("").await, (200, json!([2])));
    assert_eq!(versions("?deleted=true").await, (200, json!([1, 2])));
    assert_eq!(versions("?deletedOnly=true").await, (200, json!([1])));
    let (status, body) = api
        .call("GET", "/subjects/live/versions?deletedOnly=true", None)
        .await;
    assert_eq!((status, error_code(&body)), (404, 40401));
}

#[tokio::test]
async fn listings_page_with_offset_and_limit_and_filter_ids_by_subject() {
    let api = Api::new();
    for subject in ["a", "b", "c"] {
        api.register(subject, &v1()).await;
        api.register(subject, &v2()).await;
    }
    let get = |uri: &'static str| {
        let api = &api;
        async move { api.call("GET", uri, None).await }
    };
    assert_eq!(get("/subjects?offset=1").await, (200, json!(["b", "c"])));
    assert_eq!(get("/subjects?offset=1&limit=1").await, (200, json!(["b"])));
    assert_eq!(
        get("/subjects?limit=-1").await,
        (200, json!(["a", "b", "c"]))
    );
    assert_eq!(get("/subjects?limit=0").await, (200, json!([])));
    assert_eq!(get("/subjects?offset=5").await, (200, json!([])));
    assert_eq!(
        get("/subjects/b/versions?offset=1").await,
        (200, json!([2]))
    );
    let (_, body) = get("/schemas?latestOnly=true&offset=2").await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["subject"], "c");
    assert_eq!(
        get("/schemas/ids/1/versions?limit=2").await,
        (
            200,
            json!([{"subject": "a", "version": 1}, {"subject": "b", "version": 1}])
        )
    );
    assert_eq!(
        get("/schemas/ids/1/versions?subject=b").await,
        (200, json!([{"subject": "b", "version": 1}]))
    );
    assert_eq!(
        get("/schemas/ids/2/subjects?subject=c").await,
        (200, json!(["c"]))
    );
    assert_eq!(
        get("/schemas/ids/2/subjects?offset=1&limit=1").await,
        (200, json!(["b"]))
    );
    let (status, body) = get("/subjects?limit=many").await;
    assert_eq!((status, error_code(&body)), (404, 404));
}

#[tokio::test]
async fn octet_stream_bodies_are_read_as_json_as_confluent_does() {
    let api = Api::new();
    let body = json!({"schema": v1().to_string()}).to_string();
    let (status, text) = api
        .raw(
            "POST",
            "/subjects/s/versions",
            Some(body.clone()),
            Some("application/octet-stream"),
        )
        .await;
    assert_eq!((status, text.as_str()), (200, r#"{"id":1}"#));
    let (status, text) = api
        .raw(
            "POST",
            "/subjects/s",
            Some(body),
            Some("application/octet-stream"),
        )
        .await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test]
async fn accept_is_negotiated_as_confluent_does() {
    let api = Api::new();
    api.register("s", &v1()).await;
    let get = |accept: &'static str| {
        let app = api.app.clone();
        async move {
            let request = Request::builder()
                .uri("/subjects/s/versions")
                .header("accept", accept)
                .body(Body::empty())
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_string();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                content_type,
                serde_json::from_slice::<Value>(&bytes).unwrap(),
            )
        }
    };
    assert_eq!(
        get("application/json").await,
        (200, "application/json".into(), json!([1]))
    );
    assert_eq!(
        get("application/vnd.schemaregistry+json").await,
        (
            200,
            "application/vnd.schemaregistry+json".into(),
            json!([1])
        )
    );
    assert_eq!(get("*/*").await, (200, CT.into(), json!([1])));
    let (status, content_type, body) = get("application/vnd.schemaregistry.v2+json").await;
    assert_eq!((status, content_type.as_str()), (406, CT));
    assert_eq!(
        body,
        json!({"error_code": 406, "message": "HTTP 406 Not Acceptable"})
    );
}

/// A record as Confluent's registry writes it to `_schemas`.
fn confluent_record(key: Value, value: Option<Value>) -> strand_registry::LogRecord {
    strand_registry::LogRecord {
        key: key.to_string().into_bytes(),
        value: value.map(|v| v.to_string().into_bytes()),
    }
}

/// Calls `uri` until it answers `want`, for at most ten seconds.
async fn eventually(api: &Api, uri: &str, want: (u16, Value)) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = api.call("GET", uri, None).await;
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{uri}: still {got:?}, want {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_another_registry_appends_are_served_while_running() {
    let log = Arc::new(MemoryLog::new());
    let registry = Arc::new(Registry::open(log.clone(), Options::default()).unwrap());
    let _follower = registry.follow();
    let api = Api {
        app: router(registry),
    };
    assert_eq!(api.register("mine", &v1()).await.1, json!({"id": 1}));
    // Another registry (Confluent's record format) registers id 7 under "theirs", twice,
    // then soft-deletes the subject up to version 1 and sets its level.
    let schema = user(json!([{"name": "id", "type": "long"}, {"name": "n", "type": "int"}]));
    log.append(&[
        confluent_record(
            json!({"keytype": "SCHEMA", "subject": "theirs", "version": 1, "magic": 1}),
            Some(json!({"subject": "theirs", "version": 1, "id": 7,
                        "schema": schema.to_string(), "deleted": false})),
        ),
        confluent_record(json!({"keytype": "NOOP", "magic": 0}), None),
        confluent_record(
            json!({"keytype": "CONFIG", "subject": "theirs", "magic": 0}),
            Some(json!({"compatibilityLevel": "NONE"})),
        ),
    ])
    .unwrap();
    eventually(&api, "/subjects/theirs/versions", (200, json!([1]))).await;
    let (status, body) = api.call("GET", "/schemas/ids/7", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["schema"], schema.to_string());
    assert_eq!(
        api.call("GET", "/config/theirs", None).await.1,
        json!({"compatibilityLevel": "NONE"})
    );
    // The same schema registered here is the id the other registry gave it...
    assert_eq!(api.register("also", &schema).await.1, json!({"id": 7}));
    // ...and a new one gets an id past every id seen, never one already given.
    assert_eq!(api.register("new", &breaking()).await.1, json!({"id": 8}));
    log.append(&[confluent_record(
        json!({"keytype": "DELETE_SUBJECT", "subject": "theirs", "magic": 0}),
        Some(json!({"subject": "theirs", "version": 1})),
    )])
    .unwrap();
    eventually(
        &api,
        "/subjects/theirs/versions",
        (
            404,
            json!({"error_code": 40401, "message": "Subject 'theirs' not found."}),
        ),
    )
    .await;
    assert_eq!(
        api.call("GET", "/subjects?deleted=true", None).await.1,
        json!(["also", "mine", "new", "theirs"])
    );
}

#[tokio::test]
async fn a_record_giving_a_known_id_another_schema_is_skipped() {
    let log = Arc::new(MemoryLog::new());
    let registry = Arc::new(Registry::open(log.clone(), Options::default()).unwrap());
    let api = Api {
        app: router(registry),
    };
    assert_eq!(api.register("mine", &v1()).await.1, json!({"id": 1}));
    log.append(&[confluent_record(
        json!({"keytype": "SCHEMA", "subject": "theirs", "version": 1, "magic": 1}),
        Some(json!({"subject": "theirs", "version": 1, "id": 1,
                    "schema": breaking().to_string(), "deleted": false})),
    )])
    .unwrap();
    // A write catches up with the log before it decides, so the record is applied (and
    // refused) by the time this registration answers.
    assert_eq!(api.register("other", &v2()).await.1, json!({"id": 2}));
    assert_eq!(
        api.call("GET", "/subjects", None).await.1,
        json!(["mine", "other"])
    );
    let (_, body) = api.call("GET", "/schemas/ids/1", None).await;
    assert_eq!(body["schema"], v1().to_string());
}

#[tokio::test]
async fn metadata_and_rule_set_are_versioned_inherited_and_served() {
    let api = Api::new();
    let contract = |owner: &str| {
        json!({
            "schema": v1().to_string(),
            "metadata": {"tags": {"id": ["PII"]}, "properties": {"owner": owner, "app": "shop"},
                         "sensitive": ["id"]},
            "ruleSet": {"domainRules": [{"name": "checkId", "kind": "CONDITION", "mode": "WRITE",
                                         "type": "CEL", "expr": "message.id > 0"}]}
        })
    };
    assert_eq!(api.register("plain", &v1()).await.1, json!({"id": 1}));
    // The same schema text with a data contract is another schema, with its own id...
    let (status, body) = api
        .call("POST", "/subjects/s/versions", Some(contract("alice")))
        .await;
    assert_eq!((status, body), (200, json!({"id": 2})));
    // ...registering it again is the same version...
    let (_, body) = api
        .call("POST", "/subjects/s/versions", Some(contract("alice")))
        .await;
    assert_eq!(body, json!({"id": 2}));
    // ...and other metadata on the same text makes a new version.
    let (_, body) = api
        .call("POST", "/subjects/s/versions", Some(contract("bob")))
        .await;
    assert_eq!(body, json!({"id": 3}));
    assert_eq!(
        api.call("GET", "/subjects/s/versions", None).await.1,
        json!([1, 2])
    );
    let (_, latest) = api.call("GET", "/subjects/s/versions/latest", None).await;
    assert_eq!(latest["metadata"], contract("bob")["metadata"]);
    assert_eq!(latest["ruleSet"], contract("bob")["ruleSet"]);
    let (_, by_id) = api.call("GET", "/schemas/ids/2", None).await;
    assert_eq!(by_id["metadata"]["properties"]["owner"], "alice");
    assert_eq!(by_id["ruleSet"], contract("alice")["ruleSet"]);
    assert!(
        api.call("GET", "/schemas/ids/1", None)
            .await
            .1
            .get("metadata")
            .is_none()
    );
    // A registration naming no contract keeps the latest version's: no new version.
    assert_eq!(api.register("s", &v1()).await.1, json!({"id": 3}));
    // Lookup without a contract finds the latest version holding the schema.
    let (status, found) = api
        .call(
            "POST",
            "/subjects/s",
            Some(json!({"schema": v1().to_string()})),
        )
        .await;
    assert_eq!(
        (status, found["version"].clone(), found["id"].clone()),
        (200, json!(2), json!(3))
    );
    // The latest version with given metadata properties.
    let (status, found) = api
        .call("GET", "/subjects/s/metadata?key=owner&value=alice", None)
        .await;
    assert_eq!((status, found["version"].clone()), (200, json!(1)));
    let (_, found) = api
        .call("GET", "/subjects/s/metadata?key=app&value=shop", None)
        .await;
    assert_eq!(found["version"], 2);
    let (status, body) = api
        .call("GET", "/subjects/s/metadata?key=owner&value=carol", None)
        .await;
    assert_eq!((status, error_code(&body)), (404, 40403));
    let (status, body) = api
        .call("GET", "/subjects/nope/metadata?key=owner&value=alice", None)
        .await;
    assert_eq!((status, error_code(&body)), (404, 40401));
}

#[tokio::test]
async fn data_contract_survives_a_restart() {
    let log: Arc<dyn SchemaLog> = Arc::new(MemoryLog::new());
    let body = json!({"schema": v1().to_string(),
                      "metadata": {"properties": {"owner": "alice"}}});
    {
        let api = Api::over(log.clone());
        assert_eq!(
            api.call("POST", "/subjects/s/versions", Some(body.clone()))
                .await
                .1,
            json!({"id": 1})
        );
    }
    let api = Api::over(log);
    let (_, latest) = api.call("GET", "/subjects/s/versions/1", None).await;
    assert_eq!(latest["metadata"], body["metadata"]);
    // The restarted registry knows the schema with its contract: same id, no new version.
    assert_eq!(
        api.call("POST", "/subjects/s/versions", Some(body)).await.1,
        json!({"id": 1})
    );
    assert_eq!(
        api.call("GET", "/subjects/s/versions", None).await.1,
        json!([1])
    );
}

#[tokio::test]
async fn format_resolved_inlines_referenced_avro_types_and_other_formats_serve_the_text() {
    let api = Api::new();
    let address = json!({"type": "record", "name": "Address", "namespace": "acme",
        "fields": [{"name": "city", "type": "string"}]});
    api.register("address", &address).await;
    let person = json!({"type": "record", "name": "Person", "namespace": "acme",
        "fields": [{"name": "home", "type": "acme.Address"},
                   {"name": "work", "type": ["null", "Address"], "default": null}]});
    let refs = json!([{"name": "acme.Address", "subject": "address", "version": 1}]);
    let (_, body) = api
        .call(
            "POST",
            "/subjects/person/versions",
            Some(json!({"schema": person.to_string(), "references": refs})),
        )
        .await;
    assert_eq!(body, json!({"id": 2}));
    let mut inlined = person.clone();
    inlined["fields"][0]["type"] = address.clone();
    for uri in [
        "/schemas/ids/2?format=resolved",
        "/subjects/person/versions/1?format=resolved",
        "/subjects/person/versions/latest?format=resolved",
    ] {
        let (status, body) = api.call("GET", uri, None).await;
        assert_eq!(status, 200, "{uri}");
        let schema: Value = serde_json::from_str(body["schema"].as_str().unwrap()).unwrap();
        assert_eq!(schema, inlined, "{uri}");
        assert_eq!(body["references"], refs, "{uri}");
    }
    for uri in [
        "/schemas/ids/2/schema?format=resolved",
        "/subjects/person/versions/1/schema?format=resolved",
    ] {
        assert_eq!(
            api.call("GET", uri, None).await,
            (200, inlined.clone()),
            "{uri}"
        );
    }
    // Formats Avro does not have, and the default, serve the stored text.
    for uri in [
        "/schemas/ids/2?format=serialized",
        "/schemas/ids/2?format=default",
        "/schemas/ids/2",
    ] {
        let (status, body) = api.call("GET", uri, None).await;
        assert_eq!(
            (status, body["schema"].as_str()),
            (200, Some(person.to_string().as_str())),
            "{uri}"
        );
    }
    let (status, body) = api
        .call("GET", "/schemas/ids/9?format=resolved", None)
        .await;
    assert_eq!((status, error_code(&body)), (404, 40403));
}

#[tokio::test]
async fn contexts_number_ids_apart_and_keep_their_own_subjects_config_and_mode() {
    let log: Arc<dyn SchemaLog> = Arc::new(MemoryLog::new());
    {
        let api = Api::over(log.clone());
        assert_eq!(api.register("orders", &v1()).await.1, json!({"id": 1}));
        // The same schema in another context is that context's id 1, not the default's.
        assert_eq!(
            api.register(":.staging:orders", &v1()).await.1,
            json!({"id": 1})
        );
        assert_eq!(
            api.register(":.staging:orders", &v2()).await.1,
            json!({"id": 2})
        );
        // `:.:s` is the default context's `s`.
        assert_eq!(
            api.call("GET", "/subjects/:.:orders/versions", None)
                .await
                .1,
            json!([1])
        );
        // A context's level applies to its subjects only.
        api.call(
            "PUT",
            "/config/:.staging:",
            Some(json!({"compatibility": "NONE"})),
        )
        .await;
        assert_eq!(
            api.register(":.staging:orders", &breaking()).await.0,
            200,
            "NONE in .staging"
        );
        assert_eq!(api.register("orders", &breaking()).await.0, 409);
        api.call("PUT", "/mode/:.staging:", Some(json!({"mode": "READONLY"})))
            .await;
    }
    let api = Api::over(log);
    assert_eq!(
        api.call("GET", "/contexts", None).await.1,
        json!([".", ".staging"])
    );
    assert_eq!(
        api.call("GET", "/subjects", None).await.1,
        json!([":.staging:orders", "orders"])
    );
    assert_eq!(
        api.call("GET", "/subjects?subjectPrefix=:.staging:", None)
            .await
            .1,
        json!([":.staging:orders"])
    );
    assert_eq!(
        api.call("GET", "/subjects/:.staging:orders/versions", None)
            .await
            .1,
        json!([1, 2, 3])
    );
    let (_, latest) = api
        .call("GET", "/subjects/:.staging:orders/versions/latest", None)
        .await;
    assert_eq!(
        (latest["subject"].clone(), latest["id"].clone()),
        (json!(":.staging:orders"), json!(3))
    );
    // Id 3 exists only in .staging: looked up there by naming a subject of it.
    assert_eq!(api.call("GET", "/schemas/ids/3", None).await.0, 404);
    let (status, body) = api
        .call("GET", "/schemas/ids/3?subject=:.staging:orders", None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["schema"], breaking().to_string());
    assert_eq!(
        api.call(
            "GET",
            "/schemas/ids/2/subjects?subject=:.staging:orders",
            None
        )
        .await
        .1,
        json!([":.staging:orders"])
    );
    // A context alone chooses the id's context and keeps every subject using it.
    assert_eq!(
        api.call("GET", "/schemas/ids/2/versions?subject=:.staging:", None)
            .await
            .1,
        json!([{"subject": ":.staging:orders", "version": 2}])
    );
    assert_eq!(
        api.call("GET", "/config/:.staging:", None).await.1,
        json!({"compatibilityLevel": "NONE"})
    );
    assert_eq!(
        api.call("GET", "/config/:.staging:orders?defaultToGlobal=true", None)
            .await
            .1,
        json!({"compatibilityLevel": "NONE"}),
        "defaultToGlobal falls back to the subject's context first"
    );
    let (status, body) = api.register(":.staging:orders", &v1()).await;
    assert_eq!((status, error_code(&body)), (422, 42205), "{body}");
    // The default context is untouched by .staging's mode and ids.
    let fresh =
        user(json!([{"name": "id", "type": "long"}, {"name": "z", "type": "int", "default": 0}]));
    assert_eq!(api.register("orders", &fresh).await.1, json!({"id": 2}));
}

#[tokio::test]
async fn config_default_and_override_contracts_merge_into_registrations() {
    let log: Arc<dyn SchemaLog> = Arc::new(MemoryLog::new());
    let rule = json!({"name": "checkId", "kind": "CONDITION", "mode": "WRITE", "type": "CEL", "expr": "message.id > 0"});
    {
        let api = Api::over(log.clone());
        let (status, body) = api
            .call(
                "PUT",
                "/config",
                Some(json!({
                    "defaultMetadata": {"properties": {"owner": "team-a", "tier": "bronze"}},
                    "overrideRuleSet": {"domainRules": [rule]},
                })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        // A PUT naming only the level keeps the contract set before it.
        api.call("PUT", "/config", Some(json!({"compatibility": "FULL"})))
            .await;
        api.call(
            "PUT",
            "/config/gold",
            Some(json!({"overrideMetadata": {"properties": {"tier": "gold"}}})),
        )
        .await;
    }
    let api = Api::over(log);
    let (_, global) = api.call("GET", "/config", None).await;
    assert_eq!(global["compatibilityLevel"], "FULL");
    assert_eq!(global["defaultMetadata"]["properties"]["owner"], "team-a");
    assert_eq!(
        global["overrideRuleSet"]["domainRules"][0]["name"],
        "checkId"
    );

    // Under the global config: its default metadata under the registration's own, its rule
    // set over it.
    let (status, body) = api
        .call(
            "POST",
            "/subjects/plain/versions",
            Some(
                json!({"schema": v1().to_string(), "metadata": {"properties": {"tier": "silver"}}}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, latest) = api
        .call("GET", "/subjects/plain/versions/latest", None)
        .await;
    assert_eq!(
        latest["metadata"],
        json!({"properties": {"owner": "team-a", "tier": "silver"}})
    );
    assert_eq!(latest["ruleSet"], json!({"domainRules": [rule]}));

    // A subject's own config wins: its override over what the registration names.
    api.call(
        "POST",
        "/subjects/gold/versions",
        Some(json!({"schema": v1().to_string(), "metadata": {"properties": {"tier": "silver", "x": "1"}}})),
    )
    .await;
    let (_, latest) = api
        .call("GET", "/subjects/gold/versions/latest", None)
        .await;
    assert_eq!(
        latest["metadata"],
        json!({"properties": {"tier": "gold", "x": "1"}})
    );
    assert_eq!(
        api.call("GET", "/config/gold", None).await.1,
        json!({"compatibilityLevel": "FULL", "overrideMetadata": {"properties": {"tier": "gold"}}})
    );
    assert_eq!(api.call("DELETE", "/config/gold", None).await.0, 200);
    assert_eq!(api.call("GET", "/config/gold", None).await.0, 404);
}
