//! Avro: validation by `apache-avro` (whose message goes into the 42201 body), its normalized
//! form (the JSON `apache-avro` writes back, independent of whitespace, key order and JSON
//! escapes, but keeping defaults, aliases and docs, which matter to compatibility), the
//! identity that decides whether two registrations are the same schema, and the graph the
//! compatibility checker in `compat/` walks.

use std::sync::Arc;

use apache_avro::Schema;
use serde_json::Value;

use crate::compat::Graph;
use crate::error::RegistryError;
use crate::format::{Checkable, Format, Parsed, Resolved};
use crate::store::SchemaReference;

/// Parses Avro `text` whose references resolve to `resolved`.
pub(crate) fn parse(
    text: &str,
    references: &[SchemaReference],
    resolved: &[Resolved],
) -> Result<Parsed, RegistryError> {
    let invalid = |msg: String| RegistryError::InvalidSchema(msg);
    let texts: Vec<String> = resolved.iter().map(|r| r.schema.clone()).collect();
    let (schema, _) =
        Schema::parse_str_with_list(text, &texts).map_err(|e| invalid(e.to_string()))?;
    let normalized =
        serde_json::to_string(&schema).map_err(|e| invalid(format!("cannot normalize: {e}")))?;
    let value: Value = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut reference_values = Vec::with_capacity(texts.len());
    for r in &texts {
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
        format: Format::Avro,
        normalized,
        normalized_identity: identity.clone(),
        identity,
        graph: Arc::new(Checkable::Avro(graph)),
    })
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
            &[Resolved {
                name: "a.Address".into(),
                schema: address.to_string(),
            }],
        )
        .unwrap();
        assert!(parsed.identity.contains("address"));
        assert!(matches!(*parsed.graph, Checkable::Avro(_)));
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
