//! Reads `[{"reader": schema, "writer": schema}, ...]` as JSON on stdin and prints, for each,
//! the incompatibilities strand's checker finds as `[[type, location, message], ...]`, and
//! for comparison the yes/no of `apache-avro`'s own `schema_compatibility` (which strand
//! does not use). The differential test in `tests/interop/registry/` compares both with the
//! Avro reference checker.

use std::io::Read;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let checks: Vec<serde_json::Value> = serde_json::from_str(&input)?;
    let mut results = Vec::with_capacity(checks.len());
    for check in &checks {
        let result = strand_registry::check_reader_writer(&check["reader"], &check["writer"]);
        let apache = match (
            apache_avro::Schema::parse(&check["reader"]),
            apache_avro::Schema::parse(&check["writer"]),
        ) {
            (Ok(reader), Ok(writer)) => serde_json::json!(
                apache_avro::schema_compatibility::SchemaCompatibility::can_read(&writer, &reader)
                    .is_ok()
            ),
            _ => serde_json::Value::Null,
        };
        results.push(match result {
            Ok(found) => serde_json::json!({ "incompatibilities": found, "apache_avro": apache }),
            Err(e) => serde_json::json!({ "error": e }),
        });
    }
    println!("{}", serde_json::to_string(&results)?);
    Ok(())
}
