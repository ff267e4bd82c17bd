//! Protocol Buffers (`schemaType: PROTOBUF`): a schema is the text of one `.proto` file,
//! compiled by `protox` (a pure-Rust protoc) with nothing read from disk. Its imports
//! resolve to the request's `references`, each reference's `name` being the import path it
//! answers (`import "address.proto";` needs a reference named `address.proto`), and the
//! well-known types (`google/protobuf/*.proto`) are always there, as in Confluent. A file
//! that does not parse, an unresolved import or an import cycle is 42201 with protox's
//! message and the file, line and column it points at.
//!
//! Identity, as Confluent's canonical string: the compiled file descriptor (comments,
//! whitespace and how a type name is spelled do not count), plus the references. The
//! normalized identity also ignores the order of imports and references. The text stored
//! is the text given (the first one registered, for an identity already known).

use std::collections::HashMap;
use std::sync::Arc;

use miette::Diagnostic;
use prost::Message as _;
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::compat::proto_model::Model as ProtoModel;
use crate::error::RegistryError;
use crate::format::{Checkable, Format, Parsed, Resolved};
use crate::store::SchemaReference;

/// The Protobuf model compatibility checks walk.
pub(crate) type Model = ProtoModel;

/// The name the schema being parsed has among its imports (Confluent's default name).
const MAIN: &str = "default.proto";

/// The schema's own file and its references' files, by import path.
struct Sources {
    files: HashMap<String, String>,
}

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        match self.files.get(name) {
            Some(source) => open_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Opens `source` as `.proto` text or, failing that, as the other form Confluent accepts: a
/// base64-encoded `FileDescriptorProto`, which confluent-kafka's Python and Go serializers
/// register (for the schema and for each imported file).
fn open_source(name: &str, source: &str) -> Result<File, protox::Error> {
    use base64::Engine as _;
    use prost::Message as _;
    File::from_source(name, source).or_else(|text_error| {
        let descriptor = base64::engine::general_purpose::STANDARD
            .decode(source.trim())
            .ok()
            .and_then(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok());
        match descriptor {
            // A descriptor names its file; plain text that happens to be base64 does not.
            Some(mut descriptor) if descriptor.name.is_some() => {
                descriptor.name = Some(name.to_string());
                Ok(File::from_file_descriptor_proto(descriptor))
            }
            _ => Err(text_error),
        }
    })
}

/// Compiles `text` with its references' files; the descriptor pool holds it and everything
/// it imports.
pub(crate) fn compile(
    text: &str,
    resolved: &[Resolved],
) -> Result<prost_reflect::FileDescriptor, RegistryError> {
    let mut files: HashMap<&str, &str> = HashMap::with_capacity(resolved.len() + 1);
    for r in resolved {
        files.insert(r.name.as_str(), r.schema.as_str());
    }
    files.insert(MAIN, text);
    let mut resolver = ChainFileResolver::new();
    resolver.add(Sources {
        files: files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    });
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler
        .open_file(MAIN)
        .map_err(|e| RegistryError::InvalidSchema(describe(&e, &files)))?;
    let pool = compiler.descriptor_pool();
    pool.get_file_by_name(MAIN)
        .ok_or_else(|| RegistryError::InvalidSchema("the schema did not compile".to_string()))
}

/// Parses `.proto` text whose imports resolve to `resolved`.
pub(crate) fn parse(
    text: &str,
    references: &[SchemaReference],
    resolved: &[Resolved],
) -> Result<Parsed, RegistryError> {
    let file = compile(text, resolved)?;
    let model = ProtoModel::build(&file);
    let mut proto = file.file_descriptor_proto().clone();
    proto.source_code_info = None;
    let canonical = encode_hex(&proto.encode_to_vec());
    let identity = identity_of(&canonical, references);
    proto.dependency.sort();
    proto.public_dependency.clear();
    proto.weak_dependency.clear();
    let normalized_canonical = encode_hex(&proto.encode_to_vec());
    let mut sorted_references = references.to_vec();
    sorted_references
        .sort_by(|a, b| (&a.name, &a.subject, a.version).cmp(&(&b.name, &b.subject, b.version)));
    sorted_references.dedup();
    let normalized_identity = identity_of(&normalized_canonical, &sorted_references);
    Ok(Parsed {
        format: Format::Protobuf,
        normalized: text.to_string(),
        identity,
        normalized_identity,
        graph: Arc::new(Checkable::Protobuf(model)),
    })
}

/// The schema as Confluent's `?format=serialized` returns it: its `FileDescriptorProto`,
/// base64-encoded.
pub(crate) fn serialized(text: &str, resolved: &[Resolved]) -> Result<String, RegistryError> {
    let file = compile(text, resolved)?;
    let mut proto = file.file_descriptor_proto().clone();
    proto.source_code_info = None;
    Ok(base64(&proto.encode_to_vec()))
}

fn identity_of(canonical: &str, references: &[SchemaReference]) -> String {
    if references.is_empty() {
        format!("PROTOBUF|{canonical}")
    } else {
        let refs = serde_json::to_string(references).unwrap_or_default();
        format!("PROTOBUF|{canonical}|{refs}")
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// protox's error with the file, line and column it points at.
fn describe(e: &protox::Error, files: &HashMap<&str, &str>) -> String {
    let file = e.file().unwrap_or(MAIN);
    let offset = e
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset());
    let mut message = e.to_string();
    if let Some(related) = e.related().and_then(|mut r| r.next()) {
        message = format!("{message}: {related}");
    }
    match (offset, files.get(file)) {
        (Some(offset), Some(source)) => {
            let before = &source[..offset.min(source.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
            format!("{file}:{line}:{column}: {message}")
        }
        _ => format!("{file}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Parsed {
        parse(text, &[], &[]).unwrap()
    }

    fn message(text: &str, refs: &[(&str, &str)]) -> String {
        let references: Vec<SchemaReference> = refs
            .iter()
            .map(|(name, _)| SchemaReference {
                name: name.to_string(),
                subject: name.to_string(),
                version: 1,
            })
            .collect();
        let resolved: Vec<Resolved> = refs
            .iter()
            .map(|(name, schema)| Resolved {
                name: name.to_string(),
                schema: schema.to_string(),
            })
            .collect();
        let err = parse(text, &references, &resolved).unwrap_err();
        assert_eq!(err.error_code(), 42201);
        err.to_string()
    }

    #[test]
    fn a_base64_file_descriptor_is_the_same_schema_as_its_text() {
        // What confluent-kafka's Python serializer registers: the schema and its import as
        // base64 `FileDescriptorProto`s; both must compile and keep the text's identity.
        let address = "syntax = \"proto3\";\npackage shop;\nmessage Address { string city = 1; }\n";
        let order = "syntax = \"proto3\";\npackage shop;\nimport \"address.proto\";\nmessage Order { Address to = 1; }\n";
        let refs = [SchemaReference {
            name: "address.proto".to_string(),
            subject: "address.proto".to_string(),
            version: 1,
        }];
        let as_text = [Resolved {
            name: "address.proto".to_string(),
            schema: address.to_string(),
        }];
        let as_base64 = [Resolved {
            name: "address.proto".to_string(),
            schema: serialized(address, &[]).unwrap(),
        }];
        let from_text = parse(order, &refs, &as_text).unwrap();
        let encoded = serialized(order, &as_text).unwrap();
        let from_base64 = parse(&encoded, &refs, &as_base64).unwrap();
        assert_eq!(from_text.identity, from_base64.identity);
        // Text that is not a .proto and not a descriptor is still refused with the parser's error.
        assert!(message("Zm9vYmFy", &[]).contains("default.proto"));
    }

    #[test]
    fn proto3_with_well_known_types_parses() {
        ok(r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
message Order {
  string id = 1;
  google.protobuf.Timestamp at = 2;
  map<string, int64> counts = 3;
  oneof payment { string card = 4; string iban = 5; }
}"#);
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let m = message(
            "syntax = \"proto3\";\nmessage A {\n  string a = 1\n}\n",
            &[],
        );
        assert!(m.contains("default.proto:"), "{m}");
        assert!(m.contains(":4:") || m.contains(":3:"), "{m}");
    }

    #[test]
    fn unresolved_import_is_invalid() {
        let m = message(
            "syntax = \"proto3\";\nimport \"missing.proto\";\nmessage A { string a = 1; }\n",
            &[],
        );
        assert!(m.contains("missing.proto"), "{m}");
        assert!(m.contains(":2:"), "{m}");
    }

    #[test]
    fn unknown_type_is_invalid() {
        let m = message("syntax = \"proto3\";\nmessage A {\n  Nope a = 1;\n}\n", &[]);
        assert!(m.contains("Nope"), "{m}");
    }

    #[test]
    fn import_cycle_is_invalid() {
        let a = "syntax = \"proto3\";\nimport \"b.proto\";\nmessage A { string x = 1; }\n";
        let b = "syntax = \"proto3\";\nimport \"a.proto\";\nmessage B { string x = 1; }\n";
        let m = message(
            "syntax = \"proto3\";\nimport \"a.proto\";\nmessage C { A a = 1; }\n",
            &[("a.proto", a), ("b.proto", b)],
        );
        assert!(m.contains("cycle"), "{m}");
    }

    #[test]
    fn references_resolve_imports() {
        let address = "syntax = \"proto3\";\npackage geo;\nmessage Address { string city = 1; }\n";
        let refs = [SchemaReference {
            name: "geo/address.proto".into(),
            subject: "address".into(),
            version: 1,
        }];
        let resolved = [Resolved {
            name: "geo/address.proto".into(),
            schema: address.into(),
        }];
        let text = "syntax = \"proto3\";\nimport \"geo/address.proto\";\nmessage User { geo.Address home = 1; }\n";
        parse(text, &refs, &resolved).unwrap();
    }

    #[test]
    fn comments_and_whitespace_do_not_change_identity() {
        let a = ok("syntax = \"proto3\";\nmessage A { string a = 1; }\n");
        let b =
            ok("// a comment\nsyntax = \"proto3\";\n\nmessage A {\n  string a = 1;  // why\n}\n");
        let c = ok("syntax = \"proto3\";\nmessage A { string b = 1; }\n");
        assert_eq!(a.identity, b.identity);
        assert_ne!(a.identity, c.identity);
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
