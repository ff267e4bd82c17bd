//! Turning a submitted schema text into what the registry needs: validation by `apache-avro`
//! (whose message goes into the 42201 body), its normalized form (the JSON `apache-avro`
//! writes back, independent of whitespace, key order and JSON escapes, but keeping defaults,
//! aliases and docs, which matter to compatibility), the identity that decides whether two
//! registrations are the same schema, and the graph the compatibility checker walks.

use std::sync::Arc;

use apache_avro::Schema;
use serde_json::Value;

use crate::compat::Graph;
use crate::error::RegistryError;
use crate::store::SchemaReference;

/// A schema that parsed, with its referenced schemas resolved.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// `apache-avro`'s JSON of the schema.
    pub normalized: String,
    /// Normalized form plus references: equal identities get the same id.
    pub identity: String,
    /// The graph for compatibility checks.
    pub graph: Arc<Graph>,
}

/// Parses `text` whose references resolve to `resolved` (schema texts of the referenced
/// subject versions, transitively, dependencies first).
pub(crate) fn parse(
    text: &str,
    references: &[SchemaReference],
    resolved: &[String],
) -> Result<Parsed, RegistryError> {
    let invalid = |msg: String| RegistryError::InvalidSchema(msg);
    let (schema, _) =
        Schema::parse_str_with_list(text, resolved).map_err(|e| invalid(e.to_string()))?;
    let normalized =
        serde_json::to_string(&schema).map_err(|e| invalid(format!("cannot normalize: {e}")))?;
    let value: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut reference_values = Vec::with_capacity(resolved.len());
    for r in resolved {
        reference_values
            .push(serde_json::from_str::<Value>(r).map_err(|e| invalid(e.to_string()))?);
    }
    let graph = Graph::parse(&value, &reference_values).map_err(|e| invalid(e.to_string()))?;
    let identity = if references.is_empty() {
        normalized.clone()
    } else {
        let refs = serde_json::to_string(references).unwrap_or_default();
        format!("{normalized}|{refs}")
    };
    Ok(Parsed {
        normalized,
        identity,
        graph: Arc::new(graph),
    })
}

/// Checks the `schemaType` of a request: only Avro is served.
pub(crate) fn check_type(schema_type: Option<&str>) -> Result<(), RegistryError> {
    match schema_type {
        None | Some("AVRO") => Ok(()),
        Some(other) => Err(RegistryError::InvalidSchema(format!(
            "schema type {other} is not supported; this registry serves AVRO"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_key_order_do_not_change_identity() {
        let a = parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
            &[],
            &[],
        )
        .unwrap();
        let b = parse(
            r#"{ "fields": [ {"type": "int", "name": "a"} ], "name": "R", "type": "record" }"#,
            &[],
            &[],
        )
        .unwrap();
        assert_eq!(a.identity, b.identity);
    }

    #[test]
    fn a_default_changes_identity() {
        let a = parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
            &[],
            &[],
        )
        .unwrap();
        let b = parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":1}]}"#,
            &[],
            &[],
        )
        .unwrap();
        assert_ne!(a.identity, b.identity);
    }

    #[test]
    fn invalid_avro_carries_the_parser_message() {
        let err = parse(r#"{"type":"record","name":"R"}"#, &[], &[]).unwrap_err();
        assert_eq!(err.error_code(), 42201);
        assert!(err.to_string().len() > "Invalid schema: ".len(), "{err}");
    }

    #[test]
    fn references_resolve_named_types() {
        let address = r#"{"type":"record","name":"Address","namespace":"a","fields":[{"name":"city","type":"string"}]}"#;
        let refs = [SchemaReference {
            name: "a.Address".into(),
            subject: "address".into(),
            version: 1,
        }];
        let parsed = parse(
            r#"{"type":"record","name":"User","fields":[{"name":"home","type":"a.Address"}]}"#,
            &refs,
            &[address.to_string()],
        )
        .unwrap();
        assert!(parsed.identity.contains("address"));
        assert!(
            parse(
                r#"{"type":"record","name":"User","fields":[{"name":"home","type":"a.Address"}]}"#,
                &[],
                &[]
            )
            .is_err()
        );
    }
}
