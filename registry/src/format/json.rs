//! JSON Schema (`schemaType: JSON`): a schema is valid when the `jsonschema` crate compiles
//! it under its draft (4, 6, 7, 2019-09 or 2020-12, from `$schema`; draft 7 when absent, as
//! Confluent assumes), which checks it against the draft's meta-schema and resolves every
//! `$ref`; the validator's message goes into the 42201 body. A `$ref` to another subject
//! names one of the request's `references` by its `name`, taken as a URI (relative names
//! resolve against the schema's `$id`, or Confluent's `mem://input/` base). Nothing is fetched
//! from the network.
//!
//! Identity, as Confluent's: the schema's JSON without insignificant whitespace, key order
//! kept (so a reordered schema is a different schema unless `?normalize=true`); the
//! normalized form sorts object keys and references.

use std::sync::Arc;

use serde_json::Value;

use crate::compat::json_model::Model as JsonModel;
use crate::error::RegistryError;
use crate::format::{Checkable, Format, Parsed, Resolved};
use crate::store::SchemaReference;

/// The JSON Schema model compatibility checks walk.
pub(crate) type Model = JsonModel;

/// The base URI of a schema without an `$id`, as Confluent's.
const DEFAULT_BASE: &str = "mem://input/";

/// Parses JSON Schema `text` whose references resolve to `resolved`.
pub(crate) fn parse(
    text: &str,
    references: &[SchemaReference],
    resolved: &[Resolved],
) -> Result<Parsed, RegistryError> {
    let invalid = |msg: String| RegistryError::InvalidSchema(msg);
    let value: Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("Invalid JSON: {e}")))?;
    if !value.is_object() && !value.is_boolean() {
        return Err(invalid(
            "a JSON Schema must be an object or a boolean".to_string(),
        ));
    }
    let base = base_uri(&value);
    let mut documents = Vec::with_capacity(resolved.len());
    for r in resolved {
        let doc: Value = serde_json::from_str(&r.schema)
            .map_err(|e| invalid(format!("reference {:?} is not JSON: {e}", r.name)))?;
        documents.push((resolve_uri(&base, &r.name), r.name.clone(), doc));
    }
    compile(&value, &base, &documents)?;
    let model = JsonModel::build(&value, &base, &documents).map_err(invalid)?;
    let minified = minify(text);
    let mut normalized = String::with_capacity(minified.len());
    write_sorted(&value, &mut normalized);
    let identity = identity_of(&minified, references);
    let mut sorted_references = references.to_vec();
    sorted_references
        .sort_by(|a, b| (&a.name, &a.subject, a.version).cmp(&(&b.name, &b.subject, b.version)));
    sorted_references.dedup();
    let normalized_identity = identity_of(&normalized, &sorted_references);
    Ok(Parsed {
        format: Format::Json,
        normalized,
        identity,
        normalized_identity,
        graph: Arc::new(Checkable::Json(model)),
    })
}

/// Builds a validator for `value` to prove it valid: meta-schema, keywords, every `$ref`.
fn compile(
    value: &Value,
    base: &str,
    documents: &[(String, String, Value)],
) -> Result<(), RegistryError> {
    let invalid = |msg: String| RegistryError::InvalidSchema(msg);
    let mut registry = jsonschema::Registry::new();
    for (uri, name, doc) in documents {
        registry = registry
            .add(uri.as_str(), doc.clone())
            .map_err(|e| invalid(format!("reference {name:?}: {e}")))?;
    }
    let registry = registry
        .prepare()
        .map_err(|e| invalid(format!("references: {e}")))?;
    let mut options = jsonschema::options()
        .offline()
        .with_base_uri(base.to_string())
        .with_registry(&registry);
    if value.get("$schema").is_none() {
        options = options.with_draft(jsonschema::Draft::Draft7);
    }
    options
        .build(value)
        .map_err(|e| invalid(format!("{e} at '{}'", e.schema_path())))?;
    Ok(())
}

fn identity_of(text: &str, references: &[SchemaReference]) -> String {
    if references.is_empty() {
        format!("JSON|{text}")
    } else {
        let refs = serde_json::to_string(references).unwrap_or_default();
        format!("JSON|{text}|{refs}")
    }
}

/// The base URI relative references resolve against: the root's absolute `$id` (or draft
/// 4's `id`), else Confluent's default.
pub(crate) fn base_uri(value: &Value) -> String {
    let id = value
        .get("$id")
        .or_else(|| value.get("id"))
        .and_then(Value::as_str);
    match id {
        Some(id) if id.contains("://") || id.starts_with("urn:") => {
            id.split('#').next().unwrap_or(id).to_string()
        }
        _ => DEFAULT_BASE.to_string(),
    }
}

/// Resolves a reference name against `base`, as a URI: absolute names stay as they are, a
/// relative one replaces the base's last path segment.
pub(crate) fn resolve_uri(base: &str, name: &str) -> String {
    if name.contains("://") || name.starts_with("urn:") {
        return name.split('#').next().unwrap_or(name).to_string();
    }
    let name = name.trim_start_matches("./");
    let name = name.split('#').next().unwrap_or(name);
    match base.rfind('/') {
        Some(slash)
            if base[..slash].contains("://") && slash > base.find("://").unwrap_or(0) + 2 =>
        {
            format!("{}{}", &base[..=slash], name)
        }
        _ => format!("{}/{}", base.trim_end_matches('/'), name),
    }
}

/// The JSON text without whitespace outside strings: the registered form's identity.
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Writes `value` as compact JSON with every object's keys sorted (the normalized form).
fn write_sorted(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_sorted(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Parsed {
        parse(text, &[], &[]).unwrap()
    }

    fn message(text: &str) -> String {
        let err = parse(text, &[], &[]).unwrap_err();
        assert_eq!(err.error_code(), 42201);
        err.to_string()
    }

    #[test]
    fn every_supported_draft_parses() {
        for draft in [
            "http://json-schema.org/draft-04/schema#",
            "http://json-schema.org/draft-06/schema#",
            "http://json-schema.org/draft-07/schema#",
            "https://json-schema.org/draft/2019-09/schema",
            "https://json-schema.org/draft/2020-12/schema",
        ] {
            let text = format!(
                r#"{{"$schema":"{draft}","type":"object","properties":{{"a":{{"type":"string"}}}}}}"#
            );
            ok(&text);
        }
    }

    #[test]
    fn invalid_schema_carries_the_validator_message() {
        let m = message(r#"{"type":"object","properties":{"a":{"type":"strin"}}}"#);
        assert!(m.starts_with("Invalid schema: "), "{m}");
        assert!(m.contains("strin"), "{m}");
        let m = message(r#"{"type":"object","minProperties":-1}"#);
        assert!(m.contains("-1"), "{m}");
        message(r#"{"type": "object""#);
        message("42");
    }

    #[test]
    fn unresolved_ref_is_invalid() {
        let m = message(r##"{"properties":{"a":{"$ref":"#/definitions/missing"}}}"##);
        assert!(m.contains("missing"), "{m}");
        message(r#"{"properties":{"a":{"$ref":"other.json"}}}"#);
    }

    #[test]
    fn reference_names_resolve_as_uris() {
        let address = r#"{"type":"object","properties":{"city":{"type":"string"}}}"#;
        let refs = [SchemaReference {
            name: "address.json".into(),
            subject: "address".into(),
            version: 1,
        }];
        let resolved = [Resolved {
            name: "address.json".into(),
            schema: address.into(),
        }];
        let text = r#"{"type":"object","properties":{"home":{"$ref":"address.json"}}}"#;
        parse(text, &refs, &resolved).unwrap();
        let with_id = r#"{"$id":"https://example.com/schemas/user.json","type":"object","properties":{"home":{"$ref":"address.json"}}}"#;
        parse(with_id, &refs, &resolved).unwrap();
    }

    #[test]
    fn key_order_changes_identity_unless_normalized() {
        let a = ok(r#"{"type":"object","properties":{"a":{"type":"string"}}}"#);
        let b = ok(r#"{ "properties": {"a": {"type":"string"}}, "type": "object" }"#);
        let c = ok(r#"{"type": "object",  "properties":{"a":{"type":"string"}}}"#);
        assert_ne!(a.identity, b.identity);
        assert_eq!(a.identity, c.identity);
        assert_eq!(a.normalized_identity, b.normalized_identity);
        assert_eq!(
            b.normalized,
            r#"{"properties":{"a":{"type":"string"}},"type":"object"}"#
        );
    }

    #[test]
    fn resolve_uri_follows_the_base() {
        assert_eq!(resolve_uri(DEFAULT_BASE, "a.json"), "mem://input/a.json");
        assert_eq!(
            resolve_uri("https://x.org/s/user.json", "a.json"),
            "https://x.org/s/a.json"
        );
        assert_eq!(
            resolve_uri(DEFAULT_BASE, "https://y.org/a"),
            "https://y.org/a"
        );
    }
}
