//! JSON input for `strand produce --avro-schema`: each line's JSON is checked against the
//! Avro schema field by field before Avro's own resolution turns it into a value, so that a
//! line that does not fit is refused with the path of the offending field and what was
//! expected in plain words (`field amount_cents: expected a long, got the string "five"`),
//! and a field the schema does not have is refused by name instead of being dropped, as
//! Avro's resolution alone would do.

use std::fmt;

use apache_avro::Schema;
use apache_avro::schema::{Names, ResolvedSchema};
use apache_avro::types::Value;
use serde_json::Value as Json;

/// Why a JSON value does not fit the schema: where, and what was wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FitError {
    /// Dotted field path (`customer.address[2].city`); empty for the value itself.
    pub path: String,
    /// What was wrong, in plain words.
    pub problem: String,
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.problem)
        } else {
            write!(f, "field {}: {}", self.path, self.problem)
        }
    }
}

/// A schema with its named types, ready to check and convert JSON values.
pub(crate) struct JsonSchema {
    schema: Schema,
    names: Names,
}

impl JsonSchema {
    /// Collects the schema's named types (records, enums, fixed) for references.
    pub(crate) fn new(schema: Schema) -> Result<JsonSchema, apache_avro::Error> {
        let names = ResolvedSchema::try_from(&schema)?
            .get_names()
            .iter()
            .map(|(name, schema)| (name.clone(), (*schema).clone()))
            .collect();
        Ok(JsonSchema { schema, names })
    }

    /// Checks `json` against the schema, then converts it with Avro's resolution rules.
    pub(crate) fn to_avro(&self, json: Json) -> Result<Value, FitError> {
        self.check(&json, &self.schema, &mut String::new())?;
        Value::try_from(json)
            .and_then(|v| v.resolve(&self.schema))
            .map_err(|e| FitError {
                path: String::new(),
                problem: format!("does not fit the schema: {e}"),
            })
    }

    fn check(&self, json: &Json, schema: &Schema, path: &mut String) -> Result<(), FitError> {
        let fail = |path: &str, expected: &str| {
            Err(FitError {
                path: path.to_string(),
                problem: format!("expected {expected}, got {}", describe(json)),
            })
        };
        let int_in = |min: i64, max: i64| json.as_i64().is_some_and(|n| (min..=max).contains(&n));
        match schema {
            Schema::Null if json.is_null() => Ok(()),
            Schema::Null => fail(path, "null"),
            Schema::Boolean if json.is_boolean() => Ok(()),
            Schema::Boolean => fail(path, "a boolean"),
            Schema::Int if int_in(i32::MIN.into(), i32::MAX.into()) => Ok(()),
            Schema::Int => fail(path, "an int"),
            Schema::Date if int_in(i32::MIN.into(), i32::MAX.into()) => Ok(()),
            Schema::Date => fail(path, "a date (days since 1970-01-01, an int)"),
            Schema::TimeMillis if int_in(i32::MIN.into(), i32::MAX.into()) => Ok(()),
            Schema::TimeMillis => fail(path, "a time-millis (milliseconds after midnight, an int)"),
            Schema::Long if json.is_i64() => Ok(()),
            Schema::Long => fail(path, "a long"),
            Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos
                if json.is_i64() =>
            {
                Ok(())
            }
            Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => {
                fail(path, &format!("a {} (a long)", type_name(schema)))
            }
            Schema::Float | Schema::Double if json.is_number() => Ok(()),
            Schema::Float => fail(path, "a float"),
            Schema::Double => fail(path, "a double"),
            Schema::String | Schema::Uuid(_) if json.is_string() => Ok(()),
            Schema::String => fail(path, "a string"),
            Schema::Uuid(_) => fail(path, "a uuid (a string)"),
            // Byte-like types have several JSON spellings; Avro's resolution judges them.
            Schema::Bytes
            | Schema::Fixed(_)
            | Schema::Decimal(_)
            | Schema::BigDecimal
            | Schema::Duration(_)
                if json.is_string() || json.is_array() =>
            {
                Ok(())
            }
            Schema::Bytes
            | Schema::Fixed(_)
            | Schema::Decimal(_)
            | Schema::BigDecimal
            | Schema::Duration(_) => fail(path, &format!("{} (a string)", type_name(schema))),
            Schema::Enum(e) => match json.as_str() {
                Some(s) if e.symbols.iter().any(|sym| sym == s) || e.default.is_some() => Ok(()),
                _ => fail(
                    path,
                    &format!(
                        "one of the symbols {} of enum {}",
                        e.symbols.join(", "),
                        e.name.name()
                    ),
                ),
            },
            Schema::Array(a) => {
                let Some(items) = json.as_array() else {
                    return fail(path, "an array");
                };
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.check(item, &a.items, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Schema::Map(m) => {
                let Some(entries) = json.as_object() else {
                    return fail(path, "a map (a JSON object)");
                };
                for (key, value) in entries {
                    let len = path.len();
                    push_field(path, key);
                    self.check(value, &m.types, path)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Schema::Record(r) => {
                let Some(object) = json.as_object() else {
                    return fail(path, &format!("a record {} (a JSON object)", r.name.name()));
                };
                for key in object.keys() {
                    if !r.lookup.contains_key(key) {
                        let len = path.len();
                        push_field(path, key);
                        let error = FitError {
                            path: path.clone(),
                            problem: format!("record {} has no such field", r.name.name()),
                        };
                        path.truncate(len);
                        return Err(error);
                    }
                }
                for field in &r.fields {
                    let len = path.len();
                    push_field(path, &field.name);
                    match object.get(&field.name) {
                        Some(value) => self.check(value, &field.schema, path)?,
                        None if field.default.is_some() => {}
                        None => {
                            return Err(FitError {
                                path: path.clone(),
                                problem: "missing, and the schema gives it no default".into(),
                            });
                        }
                    }
                    path.truncate(len);
                }
                Ok(())
            }
            Schema::Union(u) => {
                let mut errors = Vec::new();
                for variant in u.variants() {
                    match self.check(json, variant, &mut path.clone()) {
                        Ok(()) => return Ok(()),
                        Err(e) => errors.push(e),
                    }
                }
                let non_null: Vec<usize> = u
                    .variants()
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !matches!(v, Schema::Null))
                    .map(|(i, _)| i)
                    .collect();
                // An optional value (`["null", T]`) that is present: T's own error is the
                // precise one (it may point deeper into a record).
                if let [only] = non_null[..]
                    && !json.is_null()
                {
                    return Err(errors.swap_remove(only));
                }
                let names: Vec<String> = u.variants().iter().map(|v| self.name_of(v)).collect();
                fail(path, &format!("one of {}", names.join(", ")))
            }
            Schema::Ref { name } => match self.names.get(name) {
                Some(named) => self.check(json, named, path),
                None => Err(FitError {
                    path: path.clone(),
                    problem: format!("the schema refers to {name}, which it does not define"),
                }),
            },
        }
    }

    /// A schema's name as a reader knows it: `long`, `record Order`, `array`.
    fn name_of(&self, schema: &Schema) -> String {
        match schema {
            Schema::Record(r) => format!("record {}", r.name.name()),
            Schema::Enum(e) => format!("enum {}", e.name.name()),
            Schema::Ref { name } => self
                .names
                .get(name)
                .map_or_else(|| name.name().to_string(), |s| self.name_of(s)),
            other => type_name(other),
        }
    }
}

/// Avro's own name of a type (logical types by their logical name).
fn type_name(schema: &Schema) -> String {
    match schema {
        Schema::Null => "null",
        Schema::Boolean => "boolean",
        Schema::Int => "int",
        Schema::Long => "long",
        Schema::Float => "float",
        Schema::Double => "double",
        Schema::Bytes => "bytes",
        Schema::String => "string",
        Schema::Array(_) => "array",
        Schema::Map(_) => "map",
        Schema::Union(_) => "union",
        Schema::Record(_) => "record",
        Schema::Enum(_) => "enum",
        Schema::Fixed(_) => "fixed",
        Schema::Decimal(_) | Schema::BigDecimal => "decimal",
        Schema::Uuid(_) => "uuid",
        Schema::Date => "date",
        Schema::TimeMillis => "time-millis",
        Schema::TimeMicros => "time-micros",
        Schema::TimestampMillis => "timestamp-millis",
        Schema::TimestampMicros => "timestamp-micros",
        Schema::TimestampNanos => "timestamp-nanos",
        Schema::LocalTimestampMillis => "local-timestamp-millis",
        Schema::LocalTimestampMicros => "local-timestamp-micros",
        Schema::LocalTimestampNanos => "local-timestamp-nanos",
        Schema::Duration(_) => "duration",
        Schema::Ref { .. } => "named type",
    }
    .to_string()
}

fn push_field(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(name);
}

/// A JSON value as a reader would name it: `the string "five"`, `the number 1.5`.
fn describe(json: &Json) -> String {
    match json {
        Json::Null => "null".to_string(),
        Json::Bool(b) => format!("the boolean {b}"),
        Json::Number(n) => format!("the number {n}"),
        Json::String(s) => {
            const MAX: usize = 40;
            let shown: String = s.chars().take(MAX).collect();
            let more = if s.chars().count() > MAX { "…" } else { "" };
            format!("the string {}{more}", Json::String(shown))
        }
        Json::Array(_) => "an array".to_string(),
        Json::Object(_) => "an object".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r#"{"type":"record","name":"Order","fields":[
        {"name":"order_id","type":"string"},
        {"name":"amount_cents","type":"long"},
        {"name":"created_at","type":{"type":"long","logicalType":"timestamp-millis"}},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"customer","type":["null",{"type":"record","name":"Customer","fields":[
            {"name":"id","type":"string"},
            {"name":"tags","type":{"type":"array","items":"string"}}]}]},
        {"name":"status","type":{"type":"enum","name":"Status","symbols":["NEW","PAID"]}}
    ]}"#;

    fn fit(json: &str) -> Result<Value, String> {
        let schema = Schema::parse_str(ORDER).unwrap();
        let json_schema = JsonSchema::new(schema).unwrap();
        json_schema
            .to_avro(serde_json::from_str(json).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_fitting_line_converts_with_defaults_filled_in() {
        let value = fit(
            r#"{"order_id":"o-1","amount_cents":5,"created_at":0,"customer":{"id":"c","tags":[]},"status":"NEW"}"#,
        )
        .unwrap();
        let Value::Record(fields) = value else {
            panic!("not a record: {value:?}")
        };
        assert_eq!(fields[1], ("amount_cents".into(), Value::Long(5)));
        assert_eq!(fields[2], ("created_at".into(), Value::TimestampMillis(0)));
        assert_eq!(fields[3].0, "note");
    }

    #[test]
    fn a_wrong_type_names_the_field_and_the_value_in_plain_words() {
        assert_eq!(
            fit(
                r#"{"order_id":"o-1","amount_cents":"five","created_at":0,"customer":null,"status":"NEW"}"#
            ),
            Err(r#"field amount_cents: expected a long, got the string "five""#.into())
        );
        assert_eq!(
            fit(
                r#"{"order_id":"o-1","amount_cents":5,"created_at":0,"customer":{"id":"c","tags":["a",7]},"status":"NEW"}"#
            ),
            Err("field customer.tags[1]: expected a string, got the number 7".into())
        );
        assert_eq!(
            fit(
                r#"{"order_id":"o-1","amount_cents":5,"created_at":0,"customer":null,"status":"LOST"}"#
            ),
            Err(r#"field status: expected one of the symbols NEW, PAID of enum Status, got the string "LOST""#.into())
        );
        assert_eq!(
            fit("[1]"),
            Err("expected a record Order (a JSON object), got an array".into())
        );
    }

    #[test]
    fn a_field_the_schema_does_not_have_is_refused_by_name() {
        assert_eq!(
            fit(
                r#"{"order_id":"o-1","amount_cents":5,"created_at":0,"customer":null,"status":"NEW","colour":"red"}"#
            ),
            Err("field colour: record Order has no such field".into())
        );
        assert_eq!(
            fit(
                r#"{"order_id":"o-1","amount_cents":5,"created_at":0,"customer":{"id":"c","tags":[],"age":3},"status":"NEW"}"#
            ),
            Err("field customer.age: record Customer has no such field".into())
        );
    }

    #[test]
    fn a_missing_field_without_default_is_named() {
        assert_eq!(
            fit(r#"{"order_id":"o-1","amount_cents":5,"created_at":0,"status":"NEW"}"#),
            Err("field customer: missing, and the schema gives it no default".into())
        );
    }
}
