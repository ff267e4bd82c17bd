//! Checking a framed record's payload against its writer schema, for the broker's `deep`
//! schema validation: a [`PayloadSchema`] is compiled once per schema id (the Avro schema
//! graph, an arena whose named-type uses point at their definition) and then walks Avro's
//! binary encoding without building values, refusing bytes that do not decode and bytes
//! left over after the datum. A JSON schema's `deep` check is that the payload is JSON;
//! Protobuf payloads are checked to the id only.

use crate::compat::model::{Graph, Node, NodeId};

/// How deep nested values (records in records, arrays of arrays, recursive types) may go
/// before a payload is refused, so that a hostile payload of a recursive schema cannot
/// exhaust the stack.
const MAX_DEPTH: u32 = 128;

/// A registered schema compiled for checking payloads.
#[derive(Debug)]
pub struct PayloadSchema {
    kind: Kind,
    record_name: Option<String>,
}

#[derive(Debug)]
enum Kind {
    Avro(Graph),
    Json,
    /// Checked to the id only (Protobuf).
    Opaque,
}

impl PayloadSchema {
    pub(crate) fn avro(graph: Graph) -> PayloadSchema {
        let record_name = match graph.node(graph.root) {
            Node::Record { named, .. } | Node::Enum { named, .. } | Node::Fixed { named, .. } => {
                Some(named.fullname.clone())
            }
            _ => None,
        };
        PayloadSchema {
            kind: Kind::Avro(graph),
            record_name,
        }
    }

    pub(crate) fn json(title: Option<String>) -> PayloadSchema {
        PayloadSchema {
            kind: Kind::Json,
            record_name: title,
        }
    }

    pub(crate) fn opaque() -> PayloadSchema {
        PayloadSchema {
            kind: Kind::Opaque,
            record_name: None,
        }
    }

    /// The full name of the schema's top-level named type (an Avro record's
    /// `namespace.name`, a JSON schema's `title`), which `RecordNameStrategy` and
    /// `TopicRecordNameStrategy` use for the subject; `None` for a schema without one.
    pub fn record_name(&self) -> Option<&str> {
        self.record_name.as_deref()
    }

    /// Checks that `payload` (the bytes after the 5-byte framing) is exactly one datum of
    /// this schema; the error says what is wrong and where.
    pub fn check(&self, payload: &[u8]) -> Result<(), String> {
        match &self.kind {
            Kind::Avro(graph) => {
                let mut r = Reader {
                    buf: payload,
                    graph,
                };
                r.datum(graph.root, 0)?;
                if !r.buf.is_empty() {
                    return Err(format!("{} bytes follow the Avro datum", r.buf.len()));
                }
                Ok(())
            }
            Kind::Opaque => Ok(()),
            Kind::Json => serde_json::from_slice::<serde::de::IgnoredAny>(payload)
                .map(|_| ())
                .map_err(|e| format!("not JSON: {e}")),
        }
    }
}

/// A cursor over Avro binary data.
struct Reader<'a, 'g> {
    buf: &'a [u8],
    graph: &'g Graph,
}

impl Reader<'_, '_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], String> {
        if self.buf.len() < n {
            return Err(format!(
                "the payload ends inside {what} ({n} bytes needed, {} left)",
                self.buf.len()
            ));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A zig-zag varint of at most `max_bytes` bytes (5 for int, 10 for long).
    fn varint(&mut self, max_bytes: usize, what: &str) -> Result<i64, String> {
        let mut raw: u64 = 0;
        for i in 0..max_bytes {
            let Some((&b, rest)) = self.buf.split_first() else {
                return Err(format!("the payload ends inside {what}"));
            };
            self.buf = rest;
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                let v = (raw >> 1) as i64 ^ -((raw & 1) as i64);
                if max_bytes == 5 && i32::try_from(v).is_err() {
                    break;
                }
                return Ok(v);
            }
        }
        Err(format!("{what} is not a valid varint"))
    }

    fn long(&mut self) -> Result<i64, String> {
        self.varint(10, "a long")
    }

    fn length(&mut self, what: &str) -> Result<usize, String> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| format!("{what} has a negative length {n}"))
    }

    fn datum(&mut self, node: NodeId, depth: u32) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
        }
        let graph = self.graph;
        match graph.node(node) {
            Node::Null => Ok(()),
            Node::Boolean => match self.take(1, "a boolean")?[0] {
                0 | 1 => Ok(()),
                b => Err(format!("a boolean is {b}, not 0 or 1")),
            },
            Node::Int => self.varint(5, "an int").map(|_| ()),
            Node::Long => self.long().map(|_| ()),
            Node::Float => self.take(4, "a float").map(|_| ()),
            Node::Double => self.take(8, "a double").map(|_| ()),
            Node::Bytes => {
                let n = self.length("bytes")?;
                self.take(n, "bytes").map(|_| ())
            }
            Node::String => {
                let n = self.length("a string")?;
                let s = self.take(n, "a string")?;
                std::str::from_utf8(s)
                    .map(|_| ())
                    .map_err(|_| "a string is not UTF-8".to_string())
            }
            Node::Fixed { named, size } => {
                let n = usize::try_from(*size).unwrap_or(usize::MAX);
                self.take(n, &format!("fixed {}", named.fullname))
                    .map(|_| ())
            }
            Node::Enum { named, symbols, .. } => {
                let i = self.varint(5, "an enum index")?;
                if i < 0 || i as usize >= symbols.len() {
                    return Err(format!(
                        "enum {} has no symbol {i} (it has {})",
                        named.fullname,
                        symbols.len()
                    ));
                }
                Ok(())
            }
            Node::Union(branches) => {
                let i = self.varint(5, "a union index")?;
                match usize::try_from(i).ok().and_then(|i| branches.get(i)) {
                    Some(&branch) => self.datum(branch, depth + 1),
                    None => Err(format!(
                        "a union has no branch {i} (it has {})",
                        branches.len()
                    )),
                }
            }
            Node::Record { fields, .. } => {
                for field in fields {
                    self.datum(field.ty, depth + 1)
                        .map_err(|e| format!("field {}: {e}", field.name))?;
                }
                Ok(())
            }
            Node::Array(items) => self.blocks(&[*items], depth),
            Node::Map(values) => self.blocks(&[usize::MAX, *values], depth),
            Node::Pending => Err("the schema has an unresolved named type".into()),
        }
    }

    /// Array and map blocks: a count, (for a negative count) a byte size, and the items;
    /// a zero count ends them. `usize::MAX` in `items` stands for a map's string key.
    fn blocks(&mut self, items: &[NodeId], depth: u32) -> Result<(), String> {
        loop {
            let mut count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                count = count.checked_neg().ok_or("a block count overflows")?;
                self.long()?; // the block's size in bytes
            }
            for _ in 0..count {
                for &item in items {
                    if item == usize::MAX {
                        let n = self.length("a map key")?;
                        let key = self.take(n, "a map key")?;
                        std::str::from_utf8(key).map_err(|_| "a map key is not UTF-8")?;
                    } else {
                        self.datum(item, depth + 1)?;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::Schema;
    use apache_avro::types::Value;
    use apache_avro::writer::datum::GenericDatumWriter;

    const ORDER: &str = r#"{"type":"record","name":"Order","namespace":"shop","fields":[
        {"name":"id","type":"long"},
        {"name":"item","type":"string"},
        {"name":"tags","type":{"type":"array","items":"string"}},
        {"name":"extra","type":{"type":"map","values":"int"}},
        {"name":"note","type":["null","string"],"default":null},
        {"name":"kind","type":{"type":"enum","name":"Kind","symbols":["A","B"]}},
        {"name":"hash","type":{"type":"fixed","name":"Hash","size":4}},
        {"name":"next","type":["null","Order"],"default":null}]}"#;

    fn compiled() -> PayloadSchema {
        let value: serde_json::Value = serde_json::from_str(ORDER).unwrap();
        PayloadSchema::avro(Graph::parse(&value, &[]).unwrap())
    }

    fn order(next: Option<Value>) -> Value {
        Value::Record(vec![
            ("id".into(), Value::Long(-7)),
            ("item".into(), Value::String("book".into())),
            (
                "tags".into(),
                Value::Array(vec![Value::String("a".into()), Value::String("bb".into())]),
            ),
            (
                "extra".into(),
                Value::Map([("x".to_string(), Value::Int(3))].into_iter().collect()),
            ),
            (
                "note".into(),
                Value::Union(1, Box::new(Value::String("hi".into()))),
            ),
            ("kind".into(), Value::Enum(1, "B".into())),
            ("hash".into(), Value::Fixed(4, vec![1, 2, 3, 4])),
            (
                "next".into(),
                match next {
                    Some(v) => Value::Union(1, Box::new(v)),
                    None => Value::Union(0, Box::new(Value::Null)),
                },
            ),
        ])
    }

    fn encoded() -> Vec<u8> {
        let schema = Schema::parse_str(ORDER).unwrap();
        let mut out = Vec::new();
        GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value_ref(&mut out, &order(Some(order(None))))
            .unwrap();
        out
    }

    #[test]
    fn a_datum_the_avro_library_wrote_decodes_and_names_its_record() {
        let s = compiled();
        assert_eq!(s.record_name(), Some("shop.Order"));
        assert_eq!(s.check(&encoded()), Ok(()));
    }

    #[test]
    fn truncated_and_overlong_payloads_are_refused() {
        let s = compiled();
        let data = encoded();
        for cut in 0..data.len() {
            assert!(s.check(&data[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = data.clone();
        long.push(0);
        assert_eq!(s.check(&long), Err("1 bytes follow the Avro datum".into()));
    }

    #[test]
    fn a_bad_enum_index_or_union_branch_is_refused() {
        let value: serde_json::Value =
            serde_json::from_str(r#"["null",{"type":"enum","name":"E","symbols":["X"]}]"#).unwrap();
        let s = PayloadSchema::avro(Graph::parse(&value, &[]).unwrap());
        assert!(s.check(&[2, 0]).is_ok());
        assert!(s.check(&[2, 2]).unwrap_err().contains("no symbol 1"));
        assert!(s.check(&[4]).unwrap_err().contains("no branch 2"));
    }

    #[test]
    fn hostile_recursion_is_refused_not_a_stack_overflow() {
        let value: serde_json::Value = serde_json::from_str(
            r#"{"type":"record","name":"L","fields":[{"name":"n","type":["null","L"]}]}"#,
        )
        .unwrap();
        let s = PayloadSchema::avro(Graph::parse(&value, &[]).unwrap());
        let deep = vec![2u8; 100_000];
        assert!(s.check(&deep).unwrap_err().contains("nest deeper"));
    }
}
