//! Reads `[{"reader": schema, "writer": schema}, ...]` as JSON on stdin and prints, for each,
//! the incompatibilities strand's checker finds as `[[type, location, message], ...]`. The
//! differential test in `tests/interop/registry/` compares this with the Avro reference.

use std::io::Read;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let checks: Vec<serde_json::Value> = serde_json::from_str(&input)?;
    let mut results = Vec::with_capacity(checks.len());
    for check in &checks {
        let result = strand_registry::check_reader_writer(&check["reader"], &check["writer"]);
        results.push(match result {
            Ok(found) => serde_json::json!({ "incompatibilities": found }),
            Err(e) => serde_json::json!({ "error": e }),
        });
    }
    println!("{}", serde_json::to_string(&results)?);
    Ok(())
}
