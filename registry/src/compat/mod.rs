//! Compatibility levels and how a new schema is checked against the versions already in a
//! subject. BACKWARD means consumers using the new schema can read data written with the
//! old one (the new schema is the *reader*); FORWARD means consumers still on the old schema
//! can read data written with the new one (the new schema is the *writer*); FULL is both.
//! The plain levels compare with the latest version only, the `_TRANSITIVE` ones with every
//! version. Avro's reader/writer rules are in [`checker`]; Confluent's JSON Schema rules
//! in [`json_diff`], over the model in [`json_model`]; Confluent's Protobuf rules in
//! [`proto_diff`], over [`proto_model`].

pub(crate) mod checker;
pub(crate) mod json_diff;
pub(crate) mod json_model;
pub(crate) mod model;
#[cfg(test)]
mod oracle;
pub(crate) mod proto_diff;
pub(crate) mod proto_model;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub(crate) use checker::{Budget, Incompatibility, IncompatibilityType};
pub(crate) use model::Graph;

/// A subject's compatibility level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    /// No check.
    None,
    /// The new schema reads data written with the latest version.
    Backward,
    /// The new schema reads data written with every version.
    BackwardTransitive,
    /// The latest version reads data written with the new schema.
    Forward,
    /// Every version reads data written with the new schema.
    ForwardTransitive,
    /// Backward and forward with the latest version.
    Full,
    /// Backward and forward with every version.
    FullTransitive,
}

/// The error of a compatibility level that is not one of the seven.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown compatibility level {0:?}")]
pub struct UnknownLevel(pub String);

impl Level {
    /// The name on the wire (`BACKWARD_TRANSITIVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn backward(self) -> bool {
        matches!(
            self,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        )
    }

    /// Whether every earlier version is checked, not only the latest.
    pub(crate) fn transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Level {
    type Err = UnknownLevel;

    fn from_str(s: &str) -> Result<Level, UnknownLevel> {
        Ok(match s.to_ascii_uppercase().as_str() {
            "NONE" => Level::None,
            "BACKWARD" => Level::Backward,
            "BACKWARD_TRANSITIVE" => Level::BackwardTransitive,
            "FORWARD" => Level::Forward,
            "FORWARD_TRANSITIVE" => Level::ForwardTransitive,
            "FULL" => Level::Full,
            "FULL_TRANSITIVE" => Level::FullTransitive,
            _ => return Err(UnknownLevel(s.to_string())),
        })
    }
}

/// An earlier version the new schema is checked against.
pub(crate) struct Previous<'a> {
    pub version: u32,
    pub schema_text: &'a str,
    pub graph: &'a Graph,
}

/// A compatibility check that needed more than its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooComplex {
    /// The version being compared when the budget ran out.
    pub version: u32,
    /// Which bound it hit.
    pub bound: checker::BudgetExhausted,
}

/// Checks `new` against `previous` (newest first) under `level`, within `budget`; returns
/// Confluent's verbose messages, empty when compatible, listing at most `max_reported`
/// incompatibilities per version and direction. Only the versions the level asks for are
/// compared.
pub(crate) fn check_level(
    level: Level,
    new: &Graph,
    previous: &[Previous<'_>],
    budget: &mut Budget,
    max_reported: usize,
) -> Result<Vec<String>, TooComplex> {
    let mut messages = Vec::new();
    let count = if level.transitive() {
        previous.len()
    } else {
        previous.len().min(1)
    };
    for old in &previous[..count] {
        let mut found = Vec::new();
        let mut run = |reader: &Graph, writer: &Graph, direction: Direction| {
            let report = checker::check(reader, writer, budget, max_reported).map_err(|bound| {
                TooComplex {
                    version: old.version,
                    bound,
                }
            })?;
            tracing::debug!(
                version = old.version,
                pairs = report.memo_pairs,
                incompatibilities = report.incompatibilities.len(),
                "compatibility checked"
            );
            for i in &report.incompatibilities {
                found.push(describe(i, direction));
            }
            if report.truncated {
                found.push(format!(
                    "{{truncated: 'only the first {max_reported} incompatibilities are listed'}}"
                ));
            }
            Ok(())
        };
        if level.backward() {
            run(new, old.graph, Direction::Backward)?;
        }
        if level.forward() {
            run(old.graph, new, Direction::Forward)?;
        }
        if !found.is_empty() {
            messages.extend(found);
            messages.push(format!("{{oldSchemaVersion: {}}}", old.version));
            messages.push(format!("{{oldSchema: '{}'}}", old.schema_text));
            messages.push(format!(
                "{{validateFields: 'false', compatibility: '{level}'}}"
            ));
        }
    }
    Ok(messages)
}

#[derive(Clone, Copy)]
enum Direction {
    /// The new schema is the reader.
    Backward,
    /// The new schema is the writer.
    Forward,
}

/// Confluent's wording of one incompatibility: the rule, where, and what, saying which of the
/// two schemas (new or old) was the reader.
fn describe(i: &Incompatibility, direction: Direction) -> String {
    let (reader, writer) = match direction {
        Direction::Backward => ("new", "old"),
        Direction::Forward => ("old", "new"),
    };
    let loc = &i.location;
    let description = match i.kind {
        IncompatibilityType::NameMismatch => {
            format!("The name of the schema has changed (path '{loc}')")
        }
        IncompatibilityType::FixedSizeMismatch => format!(
            "The size of FIXED type field at path '{loc}' in the {reader} schema does not match with the {writer} schema"
        ),
        IncompatibilityType::MissingEnumSymbols => format!(
            "The {reader} schema is missing enum symbols '{}' at path '{loc}' in the {writer} schema",
            i.message
        ),
        IncompatibilityType::ReaderFieldMissingDefaultValue => format!(
            "The field '{}' at path '{loc}' in the {reader} schema has no default value and is missing in the {writer} schema",
            i.message
        ),
        IncompatibilityType::TypeMismatch => format!(
            "The type (path '{loc}') of a field in the {reader} schema does not match with the {writer} schema"
        ),
        IncompatibilityType::MissingUnionBranch => format!(
            "The {reader} schema is missing a type inside a union field at path '{loc}' in the {writer} schema"
        ),
    };
    format!(
        "{{errorType:'{}', description:'{}', additionalInfo:'{}'}}",
        i.kind, description, i.message
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn graph(v: serde_json::Value) -> Graph {
        Graph::parse(&v, &[]).unwrap()
    }

    fn kinds(reader: serde_json::Value, writer: serde_json::Value) -> Vec<IncompatibilityType> {
        checker::check(
            &graph(reader),
            &graph(writer),
            &mut Budget::unlimited(),
            usize::MAX,
        )
        .unwrap()
        .incompatibilities
        .into_iter()
        .map(|i| i.kind)
        .collect()
    }

    fn check_level(level: Level, new: &Graph, previous: &[Previous<'_>]) -> Vec<String> {
        super::check_level(level, new, previous, &mut Budget::unlimited(), 100).unwrap()
    }

    fn record(fields: serde_json::Value) -> serde_json::Value {
        json!({"type": "record", "name": "R", "fields": fields})
    }

    #[test]
    fn backward_rejects_added_field_without_default() {
        let old = graph(record(json!([{"name": "a", "type": "int"}])));
        let new = graph(record(
            json!([{"name": "a", "type": "int"}, {"name": "b", "type": "string"}]),
        ));
        let prev = [Previous {
            version: 1,
            schema_text: "{}",
            graph: &old,
        }];
        let messages = check_level(Level::Backward, &new, &prev);
        assert!(
            messages[0].contains("READER_FIELD_MISSING_DEFAULT_VALUE"),
            "{messages:?}"
        );
        assert!(messages[0].contains("'b'"), "{messages:?}");
        assert!(messages[0].contains("/fields/1"), "{messages:?}");
        assert!(check_level(Level::Forward, &new, &prev).is_empty());
        assert!(check_level(Level::None, &new, &prev).is_empty());
    }

    #[test]
    fn backward_accepts_added_field_with_default() {
        let old = graph(record(json!([{"name": "a", "type": "int"}])));
        let new = graph(record(json!([
            {"name": "a", "type": "int"},
            {"name": "b", "type": ["null", "string"], "default": null}
        ])));
        let prev = [Previous {
            version: 1,
            schema_text: "{}",
            graph: &old,
        }];
        assert!(check_level(Level::Full, &new, &prev).is_empty());
    }

    #[test]
    fn promotions_go_one_way_only() {
        for (reader, writer) in [
            ("long", "int"),
            ("float", "int"),
            ("float", "long"),
            ("double", "float"),
            ("string", "bytes"),
            ("bytes", "string"),
        ] {
            assert!(
                kinds(json!(reader), json!(writer)).is_empty(),
                "{reader} <- {writer}"
            );
        }
        for (reader, writer) in [("int", "long"), ("long", "float"), ("float", "double")] {
            assert_eq!(
                kinds(json!(reader), json!(writer)),
                vec![IncompatibilityType::TypeMismatch]
            );
        }
    }

    #[test]
    fn enum_missing_symbols_unless_reader_default() {
        let old = json!({"type": "enum", "name": "E", "symbols": ["A", "B", "C"]});
        let new = json!({"type": "enum", "name": "E", "symbols": ["A", "B"]});
        assert_eq!(
            kinds(new.clone(), old.clone()),
            vec![IncompatibilityType::MissingEnumSymbols]
        );
        let with_default =
            json!({"type": "enum", "name": "E", "symbols": ["A", "B"], "default": "A"});
        assert!(kinds(with_default, old).is_empty());
    }

    #[test]
    fn union_reader_must_cover_every_writer_branch() {
        assert!(kinds(json!(["null", "string"]), json!("string")).is_empty());
        assert_eq!(
            kinds(json!(["null", "string"]), json!(["null", "int"])),
            vec![IncompatibilityType::MissingUnionBranch]
        );
        assert_eq!(
            kinds(json!("string"), json!(["null", "string"])),
            vec![IncompatibilityType::TypeMismatch]
        );
    }

    #[test]
    fn record_name_change_needs_alias() {
        let writer = json!({"type": "record", "name": "Old", "namespace": "n", "fields": []});
        let renamed = json!({"type": "record", "name": "New", "namespace": "n", "fields": []});
        assert_eq!(
            kinds(renamed, writer.clone()),
            vec![IncompatibilityType::NameMismatch]
        );
        let aliased = json!({"type": "record", "name": "New", "namespace": "n",
            "aliases": ["n.Old"], "fields": []});
        assert!(kinds(aliased, writer).is_empty());
    }

    #[test]
    fn field_alias_matches_renamed_writer_field() {
        let writer = record(json!([{"name": "old", "type": "int"}]));
        let reader = record(json!([{"name": "new", "type": "int", "aliases": ["old"]}]));
        assert!(kinds(reader, writer).is_empty());
    }

    #[test]
    fn recursive_records_terminate() {
        let list = json!({"type": "record", "name": "L", "fields": [
            {"name": "v", "type": "int"},
            {"name": "next", "type": ["null", "L"]}
        ]});
        assert!(kinds(list.clone(), list).is_empty());
    }

    #[test]
    fn fixed_size_must_match() {
        let a = json!({"type": "fixed", "name": "F", "size": 4});
        let b = json!({"type": "fixed", "name": "F", "size": 8});
        assert_eq!(kinds(a, b), vec![IncompatibilityType::FixedSizeMismatch]);
    }

    #[test]
    fn transitive_checks_every_version() {
        let v1 = graph(record(json!([{"name": "a", "type": "int"}])));
        let v2 = graph(record(json!([{"name": "a", "type": "long"}])));
        let v3 = graph(record(json!([{"name": "a", "type": "int"}])));
        let prev = [
            Previous {
                version: 2,
                schema_text: "{}",
                graph: &v2,
            },
            Previous {
                version: 1,
                schema_text: "{}",
                graph: &v1,
            },
        ];
        assert!(!check_level(Level::Backward, &v3, &prev).is_empty());
        assert!(check_level(Level::Forward, &v3, &prev).is_empty());
        assert!(check_level(Level::ForwardTransitive, &v3, &prev).is_empty());
        assert!(!check_level(Level::BackwardTransitive, &v3, &prev).is_empty());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const PRIMS: [&str; 7] = [
            "boolean", "int", "long", "float", "double", "bytes", "string",
        ];

        /// The promotions of the Avro specification, as a table: the model.
        fn reads(reader: &str, writer: &str) -> bool {
            reader == writer
                || matches!(
                    (reader, writer),
                    ("long", "int")
                        | ("float", "int" | "long")
                        | ("double", "int" | "long" | "float")
                        | ("string", "bytes")
                        | ("bytes", "string")
                )
        }

        fn prim() -> impl Strategy<Value = &'static str> {
            proptest::sample::select(PRIMS.to_vec())
        }

        fn branches() -> impl Strategy<Value = Vec<&'static str>> {
            proptest::sample::subsequence(PRIMS.to_vec(), 1..=4)
        }

        fn schema() -> impl Strategy<Value = serde_json::Value> {
            let leaf = prop_oneof![
                prim().prop_map(|p| json!(p)),
                branches().prop_map(|b| json!(b)),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    inner
                        .clone()
                        .prop_map(|i| json!({"type": "array", "items": i})),
                    inner
                        .clone()
                        .prop_map(|v| json!({"type": "map", "values": v})),
                    (proptest::collection::vec(inner, 1..4), any::<u64>()).prop_map(
                        |(types, n)| {
                            let fields: Vec<_> = types
                                .into_iter()
                                .enumerate()
                                .map(|(i, t)| json!({"name": format!("f{i}"), "type": t}))
                                .collect();
                            json!({"type": "record", "name": format!("R{n}"), "fields": fields})
                        }
                    ),
                ]
            })
        }

        proptest! {
            #[test]
            fn every_schema_reads_its_own_data(s in schema()) {
                prop_assert!(kinds(s.clone(), s).is_empty());
            }

            #[test]
            fn primitives_and_unions_follow_the_promotion_table(
                reader in branches(),
                writer in branches(),
                reader_union in any::<bool>(),
                writer_union in any::<bool>(),
            ) {
                let r = if reader_union { json!(reader) } else { json!(reader[0]) };
                let w = if writer_union { json!(writer) } else { json!(writer[0]) };
                let rs: Vec<&str> = if reader_union { reader.clone() } else { vec![reader[0]] };
                let ws: Vec<&str> = if writer_union { writer.clone() } else { vec![writer[0]] };
                let expected = ws.iter().all(|w| rs.iter().any(|r| reads(r, w)));
                prop_assert_eq!(kinds(r, w).is_empty(), expected);
            }

            #[test]
            fn optional_field_with_default_keeps_full_compatibility(s in schema()) {
                let old = json!({"type": "record", "name": "Top", "fields": [{"name": "x", "type": s}]});
                let mut new = old.clone();
                new["fields"].as_array_mut().unwrap().push(
                    json!({"name": "added", "type": ["null", "string"], "default": null}),
                );
                prop_assert!(kinds(new.clone(), old.clone()).is_empty());
                prop_assert!(kinds(old, new).is_empty());
            }
        }
    }
}
