//! Merging data contracts as Confluent does when a config names `defaultMetadata`,
//! `overrideMetadata`, `defaultRuleSet` or `overrideRuleSet`: a registration's metadata is
//! the config's default merged under what the registration names (or its subject's latest
//! version had), then the override merged over that; rules the same way.

use serde_json::{Map, Value};

/// `over` merged over `under`: `properties` key by key (`over` wins), `tags` path by path
/// (the union of both lists), `sensitive` the union; either alone is itself.
pub(crate) fn merge_metadata(under: Option<&Value>, over: Option<&Value>) -> Option<Value> {
    let (under, over) = match (
        under.filter(|v| !v.is_null()),
        over.filter(|v| !v.is_null()),
    ) {
        (None, None) => return None,
        (Some(one), None) | (None, Some(one)) => return Some(one.clone()),
        (Some(under), Some(over)) => (under, over),
    };
    let field = |v: &Value, name: &str| v.get(name).cloned();
    let mut merged = Map::new();
    let properties = merge_objects(
        field(under, "properties"),
        field(over, "properties"),
        |_, b| b,
    );
    if let Some(p) = properties {
        merged.insert("properties".into(), p);
    }
    let tags = merge_objects(field(under, "tags"), field(over, "tags"), union);
    if let Some(t) = tags {
        merged.insert("tags".into(), t);
    }
    match (field(under, "sensitive"), field(over, "sensitive")) {
        (Some(a), Some(b)) => {
            merged.insert("sensitive".into(), union(a, b));
        }
        (Some(one), None) | (None, Some(one)) => {
            merged.insert("sensitive".into(), one);
        }
        (None, None) => {}
    }
    Some(Value::Object(merged))
}

/// `over` merged over `under`, list by list (`domainRules`, `migrationRules`,
/// `encodingRules`): `under`'s rules that `over` does not name again, then `over`'s.
pub(crate) fn merge_rule_sets(under: Option<&Value>, over: Option<&Value>) -> Option<Value> {
    let (under, over) = match (
        under.filter(|v| !v.is_null()),
        over.filter(|v| !v.is_null()),
    ) {
        (None, None) => return None,
        (Some(one), None) | (None, Some(one)) => return Some(one.clone()),
        (Some(under), Some(over)) => (under, over),
    };
    let mut merged = Map::new();
    for list in ["migrationRules", "domainRules", "encodingRules"] {
        let old = under.get(list).and_then(Value::as_array);
        let new = over.get(list).and_then(Value::as_array);
        let rules: Vec<Value> = match (old, new) {
            (None, None) => continue,
            (Some(one), None) | (None, Some(one)) => one.clone(),
            (Some(old), Some(new)) => {
                let name = |r: &Value| r.get("name").cloned();
                let renamed: Vec<Option<Value>> = new.iter().map(name).collect();
                old.iter()
                    .filter(|r| !renamed.contains(&name(r)))
                    .chain(new)
                    .cloned()
                    .collect()
            }
        };
        merged.insert(list.into(), Value::Array(rules));
    }
    Some(Value::Object(merged))
}

fn merge_objects(
    under: Option<Value>,
    over: Option<Value>,
    both: impl Fn(Value, Value) -> Value,
) -> Option<Value> {
    match (under, over) {
        (Some(Value::Object(mut under)), Some(Value::Object(over))) => {
            for (key, value) in over {
                let value = match under.remove(&key) {
                    Some(old) => both(old, value),
                    None => value,
                };
                under.insert(key, value);
            }
            Some(Value::Object(under))
        }
        (Some(one), None) | (None, Some(one)) => Some(one),
        (_, over) => over,
    }
}

/// The items of two JSON lists, each once, in first-seen order.
fn union(a: Value, b: Value) -> Value {
    let mut items: Vec<Value> = Vec::new();
    for item in [a, b]
        .into_iter()
        .filter_map(|v| v.as_array().cloned())
        .flatten()
    {
        if !items.contains(&item) {
            items.push(item);
        }
    }
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn override_properties_win_and_tags_and_sensitive_unite() {
        let default = json!({"properties": {"owner": "team-a", "tier": "1"}, "tags": {"$.ssn": ["PII"]}, "sensitive": ["k"]});
        let given = json!({"properties": {"owner": "team-b"}, "tags": {"$.ssn": ["SECRET"]}});
        let merged = merge_metadata(Some(&default), Some(&given)).unwrap();
        assert_eq!(
            merged,
            json!({"properties": {"owner": "team-b", "tier": "1"}, "tags": {"$.ssn": ["PII", "SECRET"]}, "sensitive": ["k"]})
        );
        assert_eq!(merge_metadata(None, Some(&given)), Some(given.clone()));
        assert_eq!(merge_metadata(None, None), None);
    }

    #[test]
    fn rules_named_again_are_replaced_and_kept_in_order() {
        let default = json!({"domainRules": [{"name": "a", "kind": "CONDITION"}, {"name": "b", "kind": "CONDITION"}]});
        let given = json!({"domainRules": [{"name": "a", "kind": "TRANSFORM"}], "migrationRules": [{"name": "m"}]});
        assert_eq!(
            merge_rule_sets(Some(&default), Some(&given)).unwrap(),
            json!({"domainRules": [{"name": "b", "kind": "CONDITION"}, {"name": "a", "kind": "TRANSFORM"}], "migrationRules": [{"name": "m"}]})
        );
    }
}
