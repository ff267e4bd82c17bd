//! A direct serde-to-Avro-binary encoder for the producer's hot path.
//!
//! apache-avro's schema-aware serializer looks every record field up by name in a hash map,
//! which costs more than the encoding itself. This encoder walks the writer schema alongside
//! serde's calls instead: struct fields must arrive in the schema's order (as they do for a
//! type derived from, or written to match, the schema) and are checked by name. Anything it
//! does not handle — a field out of order, an ambiguous union, a decimal — is reported as
//! `Unsupported`, and the caller falls back to apache-avro, which also produces the precise
//! error for a value that does not fit its schema.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, UuidSchema};
use serde::ser::{self, Serialize};

/// Why the fast path gave up; the caller then uses apache-avro.
#[derive(Debug)]
pub(crate) struct Unsupported;

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not handled by the direct encoder")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Unsupported
    }
}

type Names<'s> = HashMap<Name, &'s Schema>;

/// Encodes `value` with `schema` onto `out`.
pub(crate) fn encode<T: Serialize + ?Sized>(
    value: &T,
    schema: &Schema,
    names: &Names<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Unsupported> {
    value.serialize(Encoder { out, schema, names })
}

struct Encoder<'a, 's> {
    out: &'a mut Vec<u8>,
    schema: &'a Schema,
    names: &'a Names<'s>,
}

fn zigzag(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn is_long(schema: &Schema) -> bool {
    matches!(
        schema,
        Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos
    )
}

fn is_int(schema: &Schema) -> bool {
    matches!(schema, Schema::Int | Schema::Date | Schema::TimeMillis)
}

fn is_string(schema: &Schema) -> bool {
    matches!(schema, Schema::String | Schema::Uuid(UuidSchema::String))
}

impl<'a, 's> Encoder<'a, 's> {
    /// The schema behind a named reference.
    fn resolved(&self) -> Result<&'a Schema, Unsupported>
    where
        's: 'a,
    {
        match self.schema {
            Schema::Ref { name } => self.names.get(name).copied().ok_or(Unsupported),
            other => Ok(other),
        }
    }

    /// For a union, writes the index of the only branch `fits` accepts and returns it.
    fn branch(&mut self, fits: impl Fn(&Schema) -> bool) -> Result<&'a Schema, Unsupported>
    where
        's: 'a,
    {
        let schema = self.resolved()?;
        let Schema::Union(union) = schema else {
            return if fits(schema) {
                Ok(schema)
            } else {
                Err(Unsupported)
            };
        };
        let mut found = None;
        for (i, branch) in union.variants().iter().enumerate() {
            let branch = match branch {
                Schema::Ref { name } => self.names.get(name).copied().ok_or(Unsupported)?,
                b => b,
            };
            if fits(branch) {
                if found.is_some() {
                    return Err(Unsupported);
                }
                found = Some((i, branch));
            }
        }
        let (i, branch) = found.ok_or(Unsupported)?;
        zigzag(self.out, i as i64);
        Ok(branch)
    }

    fn long(mut self, v: i64) -> Result<(), Unsupported>
    where
        's: 'a,
    {
        let schema = self.branch(|s| is_long(s) || is_int(s))?;
        if is_int(schema) && i32::try_from(v).is_err() {
            return Err(Unsupported);
        }
        zigzag(self.out, v);
        Ok(())
    }

    fn with_schema(&mut self, schema: &'a Schema) -> Encoder<'_, 's> {
        Encoder {
            out: self.out,
            schema,
            names: self.names,
        }
    }
}

impl<'a, 's: 'a> ser::Serializer for Encoder<'a, 's> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Blocks<'a, 's>;
    type SerializeTuple = ser::Impossible<(), Unsupported>;
    type SerializeTupleStruct = ser::Impossible<(), Unsupported>;
    type SerializeTupleVariant = ser::Impossible<(), Unsupported>;
    type SerializeMap = Blocks<'a, 's>;
    type SerializeStruct = Fields<'a, 's>;
    type SerializeStructVariant = ser::Impossible<(), Unsupported>;

    fn serialize_bool(mut self, v: bool) -> Result<(), Unsupported> {
        self.branch(|s| matches!(s, Schema::Boolean))?;
        self.out.push(u8::from(v));
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        self.long(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        self.long(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        self.long(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        self.long(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.long(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.long(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.long(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        self.long(i64::try_from(v).map_err(|_| Unsupported)?)
    }
    fn serialize_f32(mut self, v: f32) -> Result<(), Unsupported> {
        match self.branch(|s| matches!(s, Schema::Float | Schema::Double))? {
            Schema::Float => self.out.extend_from_slice(&v.to_le_bytes()),
            _ => self.out.extend_from_slice(&f64::from(v).to_le_bytes()),
        }
        Ok(())
    }
    fn serialize_f64(mut self, v: f64) -> Result<(), Unsupported> {
        self.branch(|s| matches!(s, Schema::Double))?;
        self.out.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(mut self, v: &str) -> Result<(), Unsupported> {
        let schema = self.branch(|s| is_string(s) || matches!(s, Schema::Enum(_)))?;
        if let Schema::Enum(e) = schema {
            let i = e.symbols.iter().position(|s| s == v).ok_or(Unsupported)?;
            zigzag(self.out, i as i64);
            return Ok(());
        }
        zigzag(self.out, v.len() as i64);
        self.out.extend_from_slice(v.as_bytes());
        Ok(())
    }
    fn serialize_bytes(mut self, v: &[u8]) -> Result<(), Unsupported> {
        match self.branch(|s| matches!(s, Schema::Bytes | Schema::Fixed(_)))? {
            Schema::Fixed(f) if f.size == v.len() => {}
            Schema::Fixed(_) => return Err(Unsupported),
            _ => zigzag(self.out, v.len() as i64),
        }
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(mut self) -> Result<(), Unsupported> {
        self.branch(|s| matches!(s, Schema::Null))?;
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(mut self, value: &T) -> Result<(), Unsupported> {
        // Only the common `["null", T]` shape: the value goes to the one non-null branch.
        let schema = self.branch(|s| !matches!(s, Schema::Null))?;
        value.serialize(self.with_schema(schema))
    }
    fn serialize_unit(mut self) -> Result<(), Unsupported> {
        self.branch(|s| matches!(s, Schema::Null))?;
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }
    fn serialize_seq(mut self, len: Option<usize>) -> Result<Blocks<'a, 's>, Unsupported> {
        let len = len.ok_or(Unsupported)?;
        let Schema::Array(array) = self.branch(|s| matches!(s, Schema::Array(_)))? else {
            return Err(Unsupported);
        };
        if len > 0 {
            zigzag(self.out, len as i64);
        }
        Ok(Blocks {
            out: self.out,
            items: &array.items,
            names: self.names,
        })
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }
    fn serialize_map(mut self, len: Option<usize>) -> Result<Blocks<'a, 's>, Unsupported> {
        let len = len.ok_or(Unsupported)?;
        let Schema::Map(map) = self.branch(|s| matches!(s, Schema::Map(_)))? else {
            return Err(Unsupported);
        };
        if len > 0 {
            zigzag(self.out, len as i64);
        }
        Ok(Blocks {
            out: self.out,
            items: &map.types,
            names: self.names,
        })
    }
    fn serialize_struct(
        mut self,
        _: &'static str,
        _: usize,
    ) -> Result<Fields<'a, 's>, Unsupported> {
        let Schema::Record(record) = self.branch(|s| matches!(s, Schema::Record(_)))? else {
            return Err(Unsupported);
        };
        Ok(Fields {
            out: self.out,
            fields: &record.fields,
            next: 0,
            names: self.names,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}

/// Array items or map entries, written as one block followed by the zero-count terminator.
struct Blocks<'a, 's> {
    out: &'a mut Vec<u8>,
    items: &'a Schema,
    names: &'a Names<'s>,
}

impl<'a, 's: 'a> Blocks<'a, 's> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        value.serialize(Encoder {
            out: self.out,
            schema: self.items,
            names: self.names,
        })
    }
}

impl<'a, 's: 'a> ser::SerializeSeq for Blocks<'a, 's> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.item(value)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.out.push(0);
        Ok(())
    }
}

impl<'a, 's: 'a> ser::SerializeMap for Blocks<'a, 's> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        key.serialize(Encoder {
            out: self.out,
            schema: &Schema::String,
            names: self.names,
        })
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.item(value)
    }
    fn end(self) -> Result<(), Unsupported> {
        self.out.push(0);
        Ok(())
    }
}

/// Record fields, which must come in schema order.
struct Fields<'a, 's> {
    out: &'a mut Vec<u8>,
    fields: &'a [apache_avro::schema::RecordField],
    next: usize,
    names: &'a Names<'s>,
}

impl<'a, 's: 'a> ser::SerializeStruct for Fields<'a, 's> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        let field = self.fields.get(self.next).ok_or(Unsupported)?;
        if field.name != key {
            return Err(Unsupported);
        }
        self.next += 1;
        value.serialize(Encoder {
            out: self.out,
            schema: &field.schema,
            names: self.names,
        })
    }
    fn end(self) -> Result<(), Unsupported> {
        if self.next == self.fields.len() {
            Ok(())
        } else {
            Err(Unsupported)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as Map;

    use apache_avro::AvroSchema;
    use apache_avro::schema::ResolvedSchema;
    use serde::Serialize;

    use super::*;

    #[derive(Serialize, AvroSchema, Clone)]
    #[avro(namespace = "t")]
    enum Side {
        Buy,
        Sell,
    }

    #[derive(Serialize, AvroSchema, Clone)]
    #[avro(namespace = "t")]
    struct Leg {
        venue: String,
        qty: i32,
    }

    #[derive(Serialize, AvroSchema, Clone)]
    #[avro(namespace = "t")]
    struct Trade {
        id: i64,
        price: f64,
        fee: f32,
        ok: bool,
        note: Option<String>,
        side: Side,
        legs: Vec<Leg>,
        tags: Map<String, i64>,
        first: Leg,
        maybe_leg: Option<Leg>,
    }

    fn reference(value: &Trade, schema: &Schema) -> Vec<u8> {
        let resolved = ResolvedSchema::new(schema).unwrap();
        let mut out = Vec::new();
        apache_avro::write_avro_datum_ref(schema, resolved.get_names(), value, &mut out).unwrap();
        out
    }

    #[test]
    fn encodes_byte_for_byte_like_apache_avro() {
        let schema = Trade::get_schema();
        let resolved = ResolvedSchema::new(&schema).unwrap();
        for i in 0..50i64 {
            let trade = Trade {
                id: i * 1_000_003 - 25_000_000,
                price: i as f64 / 3.0,
                fee: 0.25,
                ok: i % 2 == 0,
                note: (i % 3 == 0).then(|| format!("n{i}")),
                side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
                legs: (0..(i % 4))
                    .map(|j| Leg {
                        venue: format!("v{j}"),
                        qty: j as i32 - 2,
                    })
                    .collect(),
                tags: (0..(i % 3)).map(|j| (format!("k{j}"), j * i)).collect(),
                first: Leg {
                    venue: "x".into(),
                    qty: i32::MIN,
                },
                maybe_leg: (i % 2 == 1).then(|| Leg {
                    venue: "m".into(),
                    qty: 1,
                }),
            };
            let mut fast = Vec::new();
            encode(&trade, &schema, resolved.get_names(), &mut fast).unwrap();
            assert_eq!(fast, reference(&trade, &schema), "trade {i}");
        }
    }

    #[test]
    fn out_of_order_or_mismatched_values_are_left_to_apache_avro() {
        #[derive(Serialize)]
        struct Swapped {
            b: i64,
            a: i64,
        }
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"b","type":"long"}]}"#,
        )
        .unwrap();
        let names = HashMap::new();
        let mut out = Vec::new();
        assert!(encode(&Swapped { b: 1, a: 2 }, &schema, &names, &mut out).is_err());
        assert!(encode("text", &schema, &names, &mut out).is_err());
        assert!(encode(&(i64::MAX), &Schema::Int, &names, &mut out).is_err());
    }
}
