//! `?format=resolved` for Avro: the schema with the named types it takes from its
//! references defined inline, where each is first used, as Avro's own `Schema.toString()`
//! writes a parsed schema and Confluent answers it. A reader that knows nothing of
//! references can then parse the text alone. Types the schema defines itself, or defines
//! earlier, stay references by name.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// Avro's primitive type names, which are never references.
const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// Inlines into `schema` the named types that `references` (schema texts of the referenced
/// versions, transitively) define; `None` when a text is not JSON.
pub(crate) fn inline(schema: &str, references: &[String]) -> Option<String> {
    let mut definitions = HashMap::new();
    for text in references {
        let value: Value = serde_json::from_str(text).ok()?;
        collect(&value, "", &mut definitions);
    }
    let mut value: Value = serde_json::from_str(schema).ok()?;
    let mut defined = HashSet::new();
    walk(&mut value, "", &definitions, &mut defined, 0);
    serde_json::to_string(&value).ok()
}

/// The full name of `name` in namespace `namespace`.
fn full_name(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}.{name}")
    }
}

/// The namespace a named type's definition sets for what it contains.
fn namespace_of(object: &serde_json::Map<String, Value>, enclosing: &str) -> (String, String) {
    let name = object.get("name").and_then(Value::as_str).unwrap_or("");
    let namespace = object
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or(enclosing);
    let full = full_name(name, namespace);
    let inner = full.rsplit_once('.').map(|(ns, _)| ns).unwrap_or("");
    (full.clone(), inner.to_string())
}

/// Every named type a schema defines, by full name, with its definition (made
/// self-standing: its namespace written out).
fn collect(value: &Value, namespace: &str, out: &mut HashMap<String, Value>) {
    match value {
        Value::Array(items) => {
            for item in items {
                collect(item, namespace, out);
            }
        }
        Value::Object(object) => {
            let kind = object.get("type");
            match kind.and_then(Value::as_str) {
                Some("record" | "error" | "enum" | "fixed") => {
                    let (full, inner) = namespace_of(object, namespace);
                    let mut definition = object.clone();
                    if !object.contains_key("namespace") && !inner.is_empty() {
                        definition.insert("namespace".into(), Value::String(inner.clone()));
                    }
                    out.entry(full).or_insert(Value::Object(definition));
                    if let Some(Value::Array(fields)) = object.get("fields") {
                        for field in fields {
                            if let Some(t) = field.get("type") {
                                collect(t, &inner, out);
                            }
                        }
                    }
                }
                Some("array") => {
                    if let Some(items) = object.get("items") {
                        collect(items, namespace, out);
                    }
                }
                Some("map") => {
                    if let Some(values) = object.get("values") {
                        collect(values, namespace, out);
                    }
                }
                _ => {
                    if let Some(inner @ (Value::Object(_) | Value::Array(_))) = kind {
                        collect(inner, namespace, out);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Replaces each first use of a referenced type by its definition, depth first in the
/// order Avro writes a schema.
fn walk(
    value: &mut Value,
    namespace: &str,
    definitions: &HashMap<String, Value>,
    defined: &mut HashSet<String>,
    depth: usize,
) {
    // References nest at most as deep as the registry resolves them; a bound keeps a
    // pathological schema from exhausting the stack.
    if depth > 256 {
        return;
    }
    match value {
        Value::String(name) if !PRIMITIVES.contains(&name.as_str()) => {
            let full = full_name(name, namespace);
            if defined.contains(&full) {
                return;
            }
            if let Some(definition) = definitions.get(&full) {
                *value = definition.clone();
                walk(value, namespace, definitions, defined, depth + 1);
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, namespace, definitions, defined, depth + 1);
            }
        }
        Value::Object(object) => {
            let kind = object
                .get("type")
                .and_then(Value::as_str)
                .map(str::to_string);
            match kind.as_deref() {
                Some("record" | "error" | "enum" | "fixed") => {
                    let (full, inner) = namespace_of(object, namespace);
                    defined.insert(full);
                    if let Some(Value::Array(fields)) = object.get_mut("fields") {
                        for field in fields {
                            if let Some(t) = field.get_mut("type") {
                                walk(t, &inner, definitions, defined, depth + 1);
                            }
                        }
                    }
                }
                Some("array") => {
                    if let Some(items) = object.get_mut("items") {
                        walk(items, namespace, definitions, defined, depth + 1);
                    }
                }
                Some("map") => {
                    if let Some(values) = object.get_mut("values") {
                        walk(values, namespace, definitions, defined, depth + 1);
                    }
                }
                _ => {
                    if let Some(inner) = object.get_mut("type") {
                        walk(inner, namespace, definitions, defined, depth + 1);
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_use_of_a_referenced_type_is_defined_and_later_uses_name_it() {
        let address = r#"{"type":"record","name":"Address","namespace":"a","fields":[{"name":"city","type":"string"}]}"#;
        let user = r#"{"type":"record","name":"User","namespace":"u","fields":[{"name":"home","type":"a.Address"},{"name":"work","type":["null","a.Address"]}]}"#;
        let resolved: Value =
            serde_json::from_str(&inline(user, &[address.to_string()]).unwrap()).unwrap();
        let expected: Value = serde_json::from_str(address).unwrap();
        assert_eq!(resolved["fields"][0]["type"], expected);
        assert_eq!(resolved["fields"][1]["type"][1], "a.Address");
        // The inlined text parses alone.
        apache_avro::Schema::parse_str(&resolved.to_string()).unwrap();
    }

    #[test]
    fn a_schema_without_references_is_unchanged() {
        let text = r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"array","items":"string"}}]}"#;
        let out: Value = serde_json::from_str(&inline(text, &[]).unwrap()).unwrap();
        assert_eq!(out, serde_json::from_str::<Value>(text).unwrap());
    }
}
