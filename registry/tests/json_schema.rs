//! JSON Schema (`schemaType: JSON`) through the registry's HTTP API against an in-memory
//! store: registration and the `schemaType` Confluent returns, validation errors, `$ref` to
//! references, normalization, and Confluent's JSON Schema compatibility rules at every level
//! (each case fails if its rule were wrong in either direction).

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use strand_registry::{MemoryLog, Options, Registry, SchemaLog, router};
use tower::ServiceExt;

const CT: &str = "application/vnd.schemaregistry.v1+json";

struct Api {
    app: axum::Router,
}

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

    /// Registers a JSON schema (given as JSON or as text).
    async fn register(&self, subject: &str, schema: &Value) -> (u16, Value) {
        self.register_with(subject, schema, json!([])).await
    }

    async fn register_with(
        &self,
        subject: &str,
        schema: &Value,
        references: Value,
    ) -> (u16, Value) {
        self.call(
            "POST",
            &format!("/subjects/{subject}/versions"),
            Some(json!({"schema": text(schema), "schemaType": "JSON", "references": references})),
        )
        .await
    }

    async fn set_level(&self, subject: &str, level: &str) {
        let (status, _) = self
            .call(
                "PUT",
                &format!("/config/{subject}"),
                Some(json!({"compatibility": level})),
            )
            .await;
        assert_eq!(status, 200);
    }

    /// Messages of `/compatibility` of `schema` against the latest version, verbose.
    async fn check(&self, subject: &str, schema: &Value) -> (bool, Vec<String>) {
        let (status, body) = self
            .call(
                "POST",
                &format!("/compatibility/subjects/{subject}/versions/latest?verbose=true"),
                Some(json!({"schema": text(schema), "schemaType": "JSON"})),
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

fn text(schema: &Value) -> String {
    match schema {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn error_code(body: &Value) -> u64 {
    body["error_code"].as_u64().unwrap_or(0)
}

fn object(properties: Value, extra: Value) -> Value {
    let mut o = json!({"type": "object", "properties": properties});
    for (k, v) in extra.as_object().unwrap() {
        o[k] = v.clone();
    }
    o
}

#[tokio::test]
async fn json_schema_registers_and_is_returned_with_its_schema_type() {
    let api = Api::new();
    assert_eq!(
        api.call("GET", "/schemas/types", None).await.1,
        json!(["AVRO", "JSON", "PROTOBUF"])
    );
    let schema = object(json!({"a": {"type": "string"}}), json!({}));
    assert_eq!(api.register("j", &schema).await, (200, json!({"id": 1})));
    let (_, by_id) = api.call("GET", "/schemas/ids/1", None).await;
    assert_eq!(by_id["schemaType"], "JSON");
    assert_eq!(by_id["schema"], schema.to_string());
    let (_, version) = api.call("GET", "/subjects/j/versions/1", None).await;
    assert_eq!(version["schemaType"], "JSON");
    assert_eq!(version["version"], 1);
    // Lookup finds it only as JSON.
    let (status, found) = api
        .call(
            "POST",
            "/subjects/j",
            Some(json!({"schema": schema.to_string(), "schemaType": "JSON"})),
        )
        .await;
    assert_eq!((status, found["id"].clone()), (200, json!(1)));
    // Avro versions leave schemaType out, as Confluent does.
    api.call(
        "POST",
        "/subjects/a/versions",
        Some(json!({"schema": "\"string\""})),
    )
    .await;
    let (_, avro) = api.call("GET", "/subjects/a/versions/1", None).await;
    assert!(avro.get("schemaType").is_none(), "{avro}");
    // A JSON schema whose text equals an Avro one is still another schema.
    let (_, avro_like) = api.register("k", &json!({"type": "string"})).await;
    let (_, avro_id) = api
        .call(
            "POST",
            "/subjects/k2/versions",
            Some(json!({"schema": "{\"type\":\"string\"}"})),
        )
        .await;
    assert_ne!(avro_like["id"], avro_id["id"]);
}

#[tokio::test]
async fn unknown_types_are_refused_with_42201_and_nothing_stored() {
    let api = Api::new();
    for t in ["XML", "THRIFT"] {
        let (status, body) = api
            .call(
                "POST",
                "/subjects/p/versions",
                Some(json!({"schema": "syntax = \"proto3\";", "schemaType": t})),
            )
            .await;
        assert_eq!((status, error_code(&body)), (422, 42201), "{body}");
        assert!(body["message"].as_str().unwrap().contains(t), "{body}");
    }
    assert_eq!(api.call("GET", "/subjects", None).await.1, json!([]));
}

#[tokio::test]
async fn invalid_json_schema_is_42201_with_the_validator_message() {
    let api = Api::new();
    for (bad, says) in [
        (
            json!({"type": "object", "properties": {"a": {"type": "strng"}}}),
            "strng",
        ),
        (json!({"type": "string", "maxLength": -1}), "-1"),
        (json!("{\"type\": "), "Invalid JSON"),
        (
            json!({"properties": {"a": {"$ref": "#/definitions/nope"}}}),
            "nope",
        ),
        (
            json!({"properties": {"a": {"$ref": "missing.json"}}}),
            "missing.json",
        ),
    ] {
        let (status, body) = api.register("bad", &bad).await;
        assert_eq!((status, error_code(&body)), (422, 42201), "{bad}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.starts_with("Invalid schema"), "{message}");
        assert!(message.contains(says), "{bad}: {message}");
    }
    assert_eq!(api.call("GET", "/subjects", None).await.1, json!([]));
}

#[tokio::test]
async fn every_draft_is_accepted() {
    let api = Api::new();
    for (i, draft) in [
        "http://json-schema.org/draft-04/schema#",
        "http://json-schema.org/draft-06/schema#",
        "http://json-schema.org/draft-07/schema#",
        "https://json-schema.org/draft/2019-09/schema",
        "https://json-schema.org/draft/2020-12/schema",
    ]
    .iter()
    .enumerate()
    {
        let schema =
            json!({"$schema": draft, "type": "object", "properties": {"n": {"type": "integer"}}});
        let (status, body) = api.register(&format!("d{i}"), &schema).await;
        assert_eq!(status, 200, "{draft}: {body}");
    }
}

#[tokio::test]
async fn refs_resolve_to_referenced_subject_versions_by_name() {
    let api = Api::new();
    let address = object(
        json!({"city": {"type": "string"}}),
        json!({"additionalProperties": false}),
    );
    assert_eq!(api.register("address", &address).await.0, 200);
    let user = object(json!({"home": {"$ref": "address.json"}}), json!({}));
    let refs = json!([{"name": "address.json", "subject": "address", "version": 1}]);
    let (status, body) = api.register_with("user", &user, refs.clone()).await;
    assert_eq!(status, 200, "{body}");
    let (_, version) = api.call("GET", "/subjects/user/versions/1", None).await;
    assert_eq!(version["references"], refs);
    // A reference to a version that does not exist, or a $ref no reference names, is 42201.
    let (status, body) = api
        .register_with(
            "user2",
            &user,
            json!([{"name": "address.json", "subject": "address", "version": 9}]),
        )
        .await;
    assert_eq!((status, error_code(&body)), (422, 42201));
    let (status, _) = api.register("user3", &user).await;
    assert_eq!(status, 422);
    // The referenced subject version cannot be deleted while referenced.
    let (status, body) = api
        .call("DELETE", "/subjects/address/versions/1", None)
        .await;
    assert_eq!((status, error_code(&body)), (422, 42206));
    // Compatibility follows the reference: the referenced type is compared.
    api.set_level("user", "BACKWARD").await;
    let narrowed_address = object(
        json!({"city": {"type": "string"}, "zip": {"type": "string"}}),
        json!({"additionalProperties": false, "required": ["zip"]}),
    );
    assert_eq!(api.register("address", &narrowed_address).await.0, 409);
}

#[tokio::test]
async fn normalize_sorts_keys_so_reordered_schemas_share_an_id() {
    let api = Api::new();
    let a = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}";
    let b = "{ \"properties\": {\"a\": {\"type\": \"string\"}}, \"type\": \"object\" }";
    let spaced = "{\"type\": \"object\",\n \"properties\": {\"a\": {\"type\": \"string\"}}}";
    api.set_level("n", "NONE").await;
    api.set_level("m", "NONE").await;
    assert_eq!(api.register("n", &json!(a)).await.1, json!({"id": 1}));
    // Whitespace alone is the same schema; key order is not, unless normalized.
    assert_eq!(api.register("n", &json!(spaced)).await.1, json!({"id": 1}));
    assert_eq!(api.register("n", &json!(b)).await.1, json!({"id": 2}));
    // Normalized, `a` is stored with sorted keys, which is `b` without its spaces: id 2.
    let (_, body) = api
        .call(
            "POST",
            "/subjects/m/versions?normalize=true",
            Some(json!({"schema": a, "schemaType": "JSON"})),
        )
        .await;
    assert_eq!(body, json!({"id": 2}));
    // The id's schema is the text first registered under it.
    let (_, stored) = api.call("GET", "/subjects/m/versions/1", None).await;
    assert_eq!(stored["schema"], b);
    // A new schema registered normalized is stored in its normalized form.
    let c = "{\"type\":\"object\",\"properties\":{\"c\":{\"type\":\"string\"}}}";
    let (_, body) = api
        .call(
            "POST",
            "/subjects/m/versions?normalize=true",
            Some(json!({"schema": c, "schemaType": "JSON"})),
        )
        .await;
    let (_, stored) = api
        .call("GET", &format!("/schemas/ids/{}", body["id"]), None)
        .await;
    assert_eq!(
        stored["schema"],
        "{\"properties\":{\"c\":{\"type\":\"string\"}},\"type\":\"object\"}"
    );
    let (status, found) = api
        .call(
            "POST",
            "/subjects/m?normalize=true",
            Some(json!({"schema": spaced, "schemaType": "JSON"})),
        )
        .await;
    assert_eq!((status, found["id"].clone()), (200, json!(2)));
    let (status, body) = api
        .call(
            "POST",
            "/subjects/m",
            Some(json!({"schema": spaced, "schemaType": "JSON"})),
        )
        .await;
    assert_eq!((status, error_code(&body)), (404, 40403));
}

/// One rule: the old and new schema, and whether BACKWARD and FORWARD accept the change,
/// with the errorType each rejection names.
struct Case {
    rule: &'static str,
    old: Value,
    new: Value,
    backward: Option<&'static str>,
    forward: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let closed = json!({"additionalProperties": false});
    let s = json!({"type": "string"});
    let i = json!({"type": "integer"});
    vec![
        Case {
            rule: "optional property added to an open model",
            old: object(json!({"a": s}), json!({})),
            new: object(json!({"a": s, "b": i}), json!({})),
            backward: Some("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"),
            forward: None,
        },
        Case {
            rule: "required property added to an open model",
            old: object(json!({"a": s}), json!({})),
            new: object(json!({"a": s, "b": i}), json!({"required": ["b"]})),
            backward: Some("REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"),
            forward: None,
        },
        Case {
            rule: "optional property added to a closed model",
            old: object(json!({"a": s}), closed.clone()),
            new: object(json!({"a": s, "b": i}), closed.clone()),
            backward: None,
            forward: Some("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"),
        },
        Case {
            rule: "required property added to a closed model",
            old: object(json!({"a": s}), closed.clone()),
            new: object(
                json!({"a": s, "b": i}),
                json!({"additionalProperties": false, "required": ["b"]}),
            ),
            backward: Some("REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL"),
            forward: Some("PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"),
        },
        Case {
            rule: "property removed from an open model",
            old: object(json!({"a": s, "b": i}), json!({})),
            new: object(json!({"a": s}), json!({})),
            backward: None,
            forward: Some("OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL"),
        },
        Case {
            rule: "property covered by a partially open model",
            old: object(
                json!({"a": s}),
                json!({"additionalProperties": {"type": "integer"}}),
            ),
            new: object(
                json!({"a": s, "b": i}),
                json!({"additionalProperties": {"type": "integer"}}),
            ),
            backward: None,
            forward: None,
        },
        Case {
            rule: "property not covered by a partially open model",
            old: object(
                json!({"a": s}),
                json!({"patternProperties": {"^b": {"type": "integer"}}}),
            ),
            new: object(
                json!({"a": s, "b": s}),
                json!({"patternProperties": {"^b": {"type": "integer"}}}),
            ),
            backward: Some("PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"),
            forward: Some("PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL"),
        },
        Case {
            rule: "model closed",
            old: object(json!({"a": s}), json!({})),
            new: object(json!({"a": s}), closed.clone()),
            backward: Some("ADDITIONAL_PROPERTIES_REMOVED"),
            forward: None,
        },
        Case {
            rule: "integer widened to number",
            old: object(json!({"n": i}), closed.clone()),
            new: object(json!({"n": {"type": "number"}}), closed.clone()),
            backward: None,
            forward: Some("TYPE_NARROWED"),
        },
        Case {
            rule: "type changed",
            old: object(json!({"n": i}), closed.clone()),
            new: object(json!({"n": s}), closed.clone()),
            backward: Some("TYPE_CHANGED"),
            forward: Some("TYPE_CHANGED"),
        },
        Case {
            rule: "null added to a type",
            old: object(json!({"n": s}), closed.clone()),
            new: object(json!({"n": {"type": ["string", "null"]}}), closed.clone()),
            backward: None,
            forward: Some("TYPE_CHANGED"),
        },
        Case {
            rule: "enum extended",
            old: object(json!({"e": {"enum": ["A", "B"]}}), closed.clone()),
            new: object(json!({"e": {"enum": ["A", "B", "C"]}}), closed.clone()),
            backward: None,
            forward: Some("ENUM_ARRAY_NARROWED"),
        },
        Case {
            rule: "enum changed",
            old: object(json!({"e": {"enum": ["A", "B"]}}), closed.clone()),
            new: object(json!({"e": {"enum": ["A", "C"]}}), closed.clone()),
            backward: Some("ENUM_ARRAY_CHANGED"),
            forward: Some("ENUM_ARRAY_CHANGED"),
        },
        Case {
            rule: "required added to an existing property",
            old: object(json!({"a": s}), closed.clone()),
            new: object(
                json!({"a": s}),
                json!({"additionalProperties": false, "required": ["a"]}),
            ),
            backward: Some("REQUIRED_ATTRIBUTE_ADDED"),
            forward: None,
        },
        Case {
            rule: "required added to a property with a default",
            old: object(
                json!({"a": {"type": "string", "default": "x"}}),
                closed.clone(),
            ),
            new: object(
                json!({"a": {"type": "string", "default": "x"}}),
                json!({"additionalProperties": false, "required": ["a"]}),
            ),
            backward: None,
            forward: None,
        },
        Case {
            rule: "maxLength decreased",
            old: object(
                json!({"a": {"type": "string", "maxLength": 10}}),
                closed.clone(),
            ),
            new: object(
                json!({"a": {"type": "string", "maxLength": 5}}),
                closed.clone(),
            ),
            backward: Some("MAX_LENGTH_DECREASED"),
            forward: None,
        },
        Case {
            rule: "minimum added",
            old: object(json!({"n": i}), closed.clone()),
            new: object(
                json!({"n": {"type": "integer", "minimum": 0}}),
                closed.clone(),
            ),
            backward: Some("MINIMUM_ADDED"),
            forward: None,
        },
        Case {
            rule: "maxItems increased",
            old: object(
                json!({"l": {"type": "array", "items": s, "maxItems": 3}}),
                closed.clone(),
            ),
            new: object(
                json!({"l": {"type": "array", "items": s, "maxItems": 5}}),
                closed.clone(),
            ),
            backward: None,
            forward: Some("MAX_ITEMS_DECREASED"),
        },
        Case {
            rule: "oneOf gains a branch",
            old: json!({"oneOf": [s, i]}),
            new: json!({"oneOf": [s, i, {"type": "boolean"}]}),
            backward: None,
            forward: Some("SUM_TYPE_NARROWED"),
        },
        Case {
            rule: "oneOf branch replaced",
            old: json!({"oneOf": [s, i]}),
            new: json!({"oneOf": [s, {"type": "boolean"}]}),
            backward: Some("COMBINED_TYPE_SUBSCHEMAS_CHANGED"),
            forward: Some("COMBINED_TYPE_SUBSCHEMAS_CHANGED"),
        },
        Case {
            rule: "allOf gains a constraint",
            old: json!({"allOf": [s]}),
            new: json!({"allOf": [s, {"maxLength": 3}]}),
            backward: Some("PRODUCT_TYPE_EXTENDED"),
            forward: None,
        },
        Case {
            rule: "anyOf turned allOf",
            old: json!({"anyOf": [s, i]}),
            new: json!({"allOf": [s, i]}),
            backward: Some("COMBINED_TYPE_CHANGED"),
            forward: None,
        },
    ]
}

#[tokio::test]
async fn each_rule_decides_backward_forward_and_full() {
    for case in cases() {
        for (level, expected) in [
            ("BACKWARD", vec![case.backward]),
            ("FORWARD", vec![case.forward]),
            ("FULL", vec![case.forward, case.backward]),
        ] {
            let api = Api::new();
            api.set_level("s", level).await;
            let (status, body) = api.register("s", &case.old).await;
            assert_eq!(status, 200, "{}: {body}", case.rule);
            let expected: Vec<&str> = expected.into_iter().flatten().collect();
            let (compatible, messages) = api.check("s", &case.new).await;
            assert_eq!(
                compatible,
                expected.is_empty(),
                "{} under {level}: {messages:?}",
                case.rule
            );
            for error_type in &expected {
                assert!(
                    messages
                        .iter()
                        .any(|m| m.contains(&format!("errorType:\"{error_type}\""))),
                    "{} under {level}: expected {error_type} in {messages:?}",
                    case.rule
                );
            }
            let (status, body) = api.register("s", &case.new).await;
            if expected.is_empty() {
                assert_eq!(status, 200, "{} under {level}: {body}", case.rule);
            } else {
                assert_eq!(status, 409, "{} under {level}: {body}", case.rule);
                let message = body["message"].as_str().unwrap();
                assert!(message.contains(expected[0]), "{message}");
                assert!(
                    message.contains(&format!("compatibility: '{level}'")),
                    "{message}"
                );
            }
        }
    }
}

#[tokio::test]
async fn messages_name_the_reader_and_writer_as_confluent_does() {
    let api = Api::new();
    let old = object(json!({"a": {"type": "string"}}), json!({}));
    api.register("s", &old).await;
    let (_, messages) = api
        .check(
            "s",
            &object(
                json!({"a": {"type": "string"}, "b": {"type": "string"}}),
                json!({}),
            ),
        )
        .await;
    assert_eq!(
        messages[0],
        "{errorType:\"OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL\", description:\"The new schema has an open content model and has a property or item at path '#/properties/b' which is missing in the old schema\"}"
    );
    assert_eq!(messages[1], "{oldSchemaVersion: 1}");
    assert_eq!(messages[2], format!("{{oldSchema: '{old}'}}"));
    api.set_level("s", "FORWARD").await;
    let (_, messages) = api
        .check(
            "s",
            &object(
                json!({"a": {"type": "string"}, "b": {"type": "string"}}),
                json!({}),
            ),
        )
        .await;
    assert!(messages.is_empty(), "{messages:?}");
    let (_, messages) = api
        .check("s", &object(json!({"a": {"type": "integer"}}), json!({})))
        .await;
    assert!(
        messages[0]
            .contains("'#/properties/a' is different between the old schema and the new schema"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn transitive_levels_compare_with_every_version() {
    let e = |values: Value| {
        object(
            json!({"e": {"enum": values}}),
            json!({"additionalProperties": false}),
        )
    };
    for (level, new, accepted) in [
        // [C, D] reads [C] data but not v1's [A, B].
        ("BACKWARD", e(json!(["C", "D"])), true),
        ("BACKWARD_TRANSITIVE", e(json!(["C", "D"])), false),
        // [C]'s data is read by [C, D] readers, not by v1's [A, B] readers.
        ("FORWARD", e(json!(["C"])), true),
        ("FORWARD_TRANSITIVE", e(json!(["C"])), false),
    ] {
        let api = Api::new();
        api.set_level("s", "NONE").await;
        api.register("s", &e(json!(["A", "B"]))).await;
        let v2 = if level.starts_with("BACKWARD") {
            e(json!(["C"]))
        } else {
            e(json!(["C", "D"]))
        };
        api.register("s", &v2).await;
        api.set_level("s", level).await;
        let (status, body) = api.register("s", &new).await;
        assert_eq!(status == 200, accepted, "{level}: {body}");
        if !accepted {
            assert!(
                body["message"]
                    .as_str()
                    .unwrap()
                    .contains("{oldSchemaVersion: 1}"),
                "{body}"
            );
        }
    }
    for (level, accepted) in [("FULL", true), ("FULL_TRANSITIVE", false)] {
        let api = Api::new();
        api.set_level("s", "NONE").await;
        api.register("s", &e(json!(["A", "B"]))).await;
        api.register("s", &e(json!(["C", "D"]))).await;
        api.set_level("s", level).await;
        let (status, body) = api.register("s", &e(json!(["D", "C"]))).await;
        assert_eq!(status == 200, accepted, "{level}: {body}");
    }
}

#[tokio::test]
async fn a_json_version_after_an_avro_one_is_incompatible_by_type() {
    let api = Api::new();
    api.call(
        "POST",
        "/subjects/x/versions",
        Some(json!({"schema": "\"string\""})),
    )
    .await;
    let (status, body) = api.register("x", &json!({"type": "string"})).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Incompatible because of different schema type"),
        "{body}"
    );
}

#[tokio::test]
async fn restart_replays_json_schemas_with_their_type() {
    let log: Arc<dyn SchemaLog> = Arc::new(MemoryLog::new());
    let schema = object(json!({"a": {"type": "string"}}), json!({}));
    {
        let api = Api::over(log.clone());
        api.register("j", &schema).await;
    }
    let api = Api::over(log);
    let (_, body) = api.call("GET", "/schemas/ids/1", None).await;
    assert_eq!(body["schemaType"], "JSON");
    // Same schema, same id; and the replayed version is still checked by JSON's rules.
    assert_eq!(api.register("j", &schema).await.1, json!({"id": 1}));
    let (status, body) = api
        .register(
            "j",
            &object(
                json!({"a": {"type": "string"}, "b": {"type": "string"}}),
                json!({}),
            ),
        )
        .await;
    assert_eq!(status, 409, "{body}");
}
