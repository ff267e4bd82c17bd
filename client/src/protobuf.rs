//! Protobuf messages framed the Confluent way: byte 0 is the magic byte `0`, bytes 1–4 the
//! schema id (big-endian), then the *message indexes* saying which message of the schema's
//! file the payload is (the path of positions from the file's top-level messages down
//! through nested ones, written as a zigzag varint count and zigzag varint indexes, with
//! the single byte `0` standing for `[0]`, the first top-level message), then the
//! message's Protobuf encoding. This is what Confluent's `KafkaProtobufSerializer` writes.
//!
//! [`ProtobufSerializer`] holds the `.proto` text of a schema (and of the files it
//! imports), compiled with `protox` to know the message indexes; it registers the imported
//! files first, each under the subject named by its import path (Confluent's default
//! reference subject naming; the well-known `google/protobuf/*` files are never
//! registered), then the schema with references to them under `<topic>-value` (or `-key`).
//! It encodes `prost` messages ([`ProtobufSerializer::serialize`]) and `prost-reflect`
//! dynamic messages. [`ProtobufDeserializer`] decodes a frame into a `prost` message, or,
//! fetching the writer's schema and its references from the registry, into a dynamic one.

use std::collections::HashMap;

use dashmap::DashMap;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FileDescriptor, MessageDescriptor, ReflectMessage,
};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

use crate::avro::{MAGIC_BYTE, split_frame};
use crate::error::{ClientError, Result};
use crate::registry::{RegistryClient, SchemaReference};

/// The name the schema's own file has among its imports.
const MAIN: &str = "default.proto";

fn invalid(context: impl Into<String>, message: impl std::fmt::Display) -> ClientError {
    ClientError::Protobuf {
        context: context.into(),
        message: message.to_string(),
    }
}

struct Sources(HashMap<String, String>);

impl FileResolver for Sources {
    fn open_file(&self, name: &str) -> std::result::Result<File, protox::Error> {
        match self.0.get(name) {
            Some(source) => open_source(name, source),
            None => Err(protox::Error::file_not_found(name)),
        }
    }
}

/// Opens `source` as `.proto` text or, failing that, as the other form Confluent accepts: a
/// base64-encoded `FileDescriptorProto`, which confluent-kafka's Python and Go serializers
/// register (for the schema and for each imported file).
fn open_source(name: &str, source: &str) -> std::result::Result<File, protox::Error> {
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

/// Compiles `text` (as `default.proto`) with `imports` (import path, text).
fn compile(text: &str, imports: &[(String, String)]) -> Result<FileDescriptor> {
    let mut files: HashMap<String, String> = imports.iter().cloned().collect();
    files.insert(MAIN.to_string(), text.to_string());
    let mut resolver = ChainFileResolver::new();
    resolver.add(Sources(files));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler
        .open_file(MAIN)
        .map_err(|e| invalid("compiling the schema", e))?;
    compiler
        .descriptor_pool()
        .get_file_by_name(MAIN)
        .ok_or_else(|| invalid("compiling the schema", "the schema did not compile"))
}

/// The message indexes of `message` within its file.
pub fn message_indexes(message: &MessageDescriptor) -> Vec<i32> {
    let mut path = Vec::new();
    let mut current = Some(message.clone());
    while let Some(m) = current {
        let parent = m.parent_message();
        let position = match &parent {
            Some(p) => p.child_messages().position(|c| c == m),
            None => m.parent_file().messages().position(|c| c == m),
        };
        path.push(position.unwrap_or(0) as i32);
        current = parent;
    }
    path.reverse();
    path
}

/// The message `indexes` point at in `file`.
fn message_at(file: &FileDescriptor, indexes: &[i32]) -> Option<MessageDescriptor> {
    let (first, rest) = indexes.split_first().unwrap_or((&0, &[]));
    let mut m = file.messages().nth(usize::try_from(*first).ok()?)?;
    for i in rest {
        let child = m.child_messages().nth(usize::try_from(*i).ok()?)?;
        m = child;
    }
    Some(m)
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        if v < 0x80 {
            out.push(v as u8);
            return;
        }
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
}

fn get_varint(bytes: &mut &[u8]) -> Option<i64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first()?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(((v >> 1) as i64) ^ -((v & 1) as i64));
        }
    }
    None
}

/// Appends the message-index array for `indexes` (`[0]` is the single byte `0`).
pub fn write_message_indexes(out: &mut Vec<u8>, indexes: &[i32]) {
    if indexes == [0] {
        out.push(0);
        return;
    }
    put_varint(out, indexes.len() as i64);
    for i in indexes {
        put_varint(out, i64::from(*i));
    }
}

/// Splits a Confluent Protobuf frame into schema id, message indexes and payload.
pub fn split_protobuf_frame(bytes: &[u8]) -> Result<(u32, Vec<i32>, &[u8])> {
    let (id, mut body) = split_frame(bytes)?;
    let bad = || invalid(format!("record with schema id {id}"), "bad message indexes");
    let count = get_varint(&mut body).ok_or_else(bad)?;
    if count == 0 {
        return Ok((id, vec![0], body));
    }
    // A count beyond what the bytes could hold is damage, not a reason to allocate.
    if count < 0 || count as usize > body.len() {
        return Err(bad());
    }
    let mut indexes = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let i = get_varint(&mut body).ok_or_else(bad)?;
        indexes.push(i32::try_from(i).map_err(|_| bad())?);
    }
    Ok((id, indexes, body))
}

/// How a [`ProtobufSerializer`] finds its subject and schema id.
#[derive(Debug, Clone)]
pub struct ProtobufSerializerConfig {
    /// Serialize keys (`<topic>-key`) rather than values (`<topic>-value`).
    pub is_key: bool,
    /// Register the schema (and its imports) when missing (`true`), or only look it up.
    pub auto_register: bool,
}

impl Default for ProtobufSerializerConfig {
    fn default() -> Self {
        ProtobufSerializerConfig {
            is_key: false,
            auto_register: true,
        }
    }
}

/// Serializes Protobuf messages, Confluent-framed, for one schema.
pub struct ProtobufSerializer {
    registry: RegistryClient,
    schema_text: String,
    imports: Vec<(String, String)>,
    file: FileDescriptor,
    config: ProtobufSerializerConfig,
    ids: DashMap<String, u32>,
}

impl std::fmt::Debug for ProtobufSerializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtobufSerializer")
            .field("schema", &self.schema_text)
            .field("config", &self.config)
            .finish()
    }
}

impl ProtobufSerializer {
    /// A serializer for the `.proto` text `schema`, whose imports are `imports` (import
    /// path, `.proto` text; the well-known types need not be given). Fails if it does not
    /// compile.
    pub fn new(
        registry: RegistryClient,
        schema: &str,
        imports: &[(&str, &str)],
        config: ProtobufSerializerConfig,
    ) -> Result<Self> {
        let imports: Vec<(String, String)> = imports
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        let file = compile(schema, &imports)?;
        Ok(ProtobufSerializer {
            registry,
            schema_text: schema.to_string(),
            imports,
            file,
            config,
            ids: DashMap::new(),
        })
    }

    /// The message `full_name` (`package.Message`) of the schema.
    pub fn message(&self, full_name: &str) -> Result<MessageDescriptor> {
        self.file
            .messages()
            .flat_map(|m| std::iter::once(m.clone()).chain(nested(&m)))
            .find(|m| m.full_name() == full_name)
            .ok_or_else(|| {
                invalid(
                    "choosing the message",
                    format!("the schema declares no message {full_name}"),
                )
            })
    }

    /// Registers (or looks up) `text` under `subject`, the imports it has among the
    /// serializer's first (each under its import path); returns its id and version.
    async fn register_file(
        &self,
        subject: &str,
        text: &str,
        file: &FileDescriptor,
        depth: usize,
    ) -> Result<(u32, i32)> {
        if depth > 32 {
            return Err(invalid("registering imports", "imports nest too deeply"));
        }
        let mut references = Vec::new();
        for (name, import_text) in &self.imports {
            if !file.dependencies().any(|d| d.name() == name) {
                continue;
            }
            let Some(import_file) = file.parent_pool().get_file_by_name(name) else {
                continue;
            };
            let (_, version) =
                Box::pin(self.register_file(name, import_text, &import_file, depth + 1)).await?;
            references.push(SchemaReference {
                name: name.clone(),
                subject: name.clone(),
                version,
            });
        }
        if self.config.auto_register {
            self.registry
                .register_with_references(subject, text, Some("PROTOBUF"), &references)
                .await?;
        }
        let found = self
            .registry
            .lookup_with_references(subject, text, Some("PROTOBUF"), &references)
            .await?;
        Ok((found.id, found.version))
    }

    /// The schema id for `topic`, registering (or looking up) the schema on first use.
    pub async fn schema_id(&self, topic: &str) -> Result<u32> {
        if let Some(id) = self.ids.get(topic) {
            return Ok(*id);
        }
        let subject = format!(
            "{topic}-{}",
            if self.config.is_key { "key" } else { "value" }
        );
        let (id, _) = self
            .register_file(&subject, &self.schema_text, &self.file, 0)
            .await?;
        self.ids.insert(topic.to_string(), id);
        Ok(id)
    }

    /// Frames `message`, a `prost` message of the schema's type `full_name`, for `topic`.
    pub async fn serialize<M: prost::Message>(
        &self,
        topic: &str,
        full_name: &str,
        message: &M,
    ) -> Result<Vec<u8>> {
        let descriptor = self.message(full_name)?;
        let id = self.schema_id(topic).await?;
        let mut out = Vec::with_capacity(8 + message.encoded_len());
        out.push(MAGIC_BYTE);
        out.extend_from_slice(&id.to_be_bytes());
        write_message_indexes(&mut out, &message_indexes(&descriptor));
        message
            .encode(&mut out)
            .map_err(|e| invalid("encoding the message", e))?;
        Ok(out)
    }

    /// Frames a dynamic message of one of the schema's types for `topic`.
    pub async fn serialize_dynamic(
        &self,
        topic: &str,
        message: &DynamicMessage,
    ) -> Result<Vec<u8>> {
        let full_name = message.descriptor().full_name().to_string();
        self.serialize(topic, &full_name, message).await
    }
}

fn nested(m: &MessageDescriptor) -> Vec<MessageDescriptor> {
    let mut out = Vec::new();
    for c in m.child_messages() {
        out.push(c.clone());
        out.extend(nested(&c));
    }
    out
}

/// Deserializes Confluent-framed Protobuf records.
pub struct ProtobufDeserializer {
    registry: RegistryClient,
    files: DashMap<u32, FileDescriptor>,
}

impl std::fmt::Debug for ProtobufDeserializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtobufDeserializer").finish()
    }
}

impl ProtobufDeserializer {
    /// A deserializer that fetches writers' schemas from `registry` when it needs them.
    pub fn new(registry: RegistryClient) -> Self {
        ProtobufDeserializer {
            registry,
            files: DashMap::new(),
        }
    }

    /// Decodes a framed record into the `prost` message `M`; returns the schema id too.
    pub fn deserialize<M: prost::Message + Default>(&self, bytes: &[u8]) -> Result<(u32, M)> {
        let (id, _, payload) = split_protobuf_frame(bytes)?;
        let message =
            M::decode(payload).map_err(|e| invalid(format!("record with schema id {id}"), e))?;
        Ok((id, message))
    }

    /// Decodes a framed record into a dynamic message of the writer's schema, fetched (with
    /// its references) from the registry; returns the schema id too.
    pub async fn deserialize_dynamic(&self, bytes: &[u8]) -> Result<(u32, DynamicMessage)> {
        let (id, indexes, payload) = split_protobuf_frame(bytes)?;
        let file = self.file(id).await?;
        let descriptor = message_at(&file, &indexes).ok_or_else(|| {
            invalid(
                format!("record with schema id {id}"),
                format!("message indexes {indexes:?} name no message of the schema"),
            )
        })?;
        let message = DynamicMessage::decode(descriptor, payload)
            .map_err(|e| invalid(format!("record with schema id {id}"), e))?;
        Ok((id, message))
    }

    /// The compiled schema of `id`.
    pub async fn file(&self, id: u32) -> Result<FileDescriptor> {
        if let Some(file) = self.files.get(&id) {
            return Ok(file.clone());
        }
        let found = self.registry.schema_by_id_full(id).await?;
        if found.schema_type.as_deref() != Some("PROTOBUF") {
            return Err(invalid(
                format!("schema id {id}"),
                format!(
                    "is a {} schema, not PROTOBUF",
                    found.schema_type.as_deref().unwrap_or("AVRO")
                ),
            ));
        }
        let mut imports = Vec::new();
        let mut pending = found.references.clone();
        let mut seen = std::collections::HashSet::new();
        while let Some(r) = pending.pop() {
            if !seen.insert((r.subject.clone(), r.version)) || seen.len() > 256 {
                continue;
            }
            let version = self
                .registry
                .version(&r.subject, &r.version.to_string())
                .await?;
            pending.extend(version.references.iter().cloned());
            imports.push((r.name.clone(), version.schema.clone()));
        }
        let file = compile(&found.schema, &imports)?;
        self.files.insert(id, file.clone());
        Ok(file)
    }
}

/// A descriptor pool holding `text` and its imports, for tools that turn JSON into
/// messages (`DynamicMessage::deserialize`).
pub fn compile_schema(text: &str, imports: &[(&str, &str)]) -> Result<DescriptorPool> {
    let imports: Vec<(String, String)> = imports
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    Ok(compile(text, &imports)?.parent_pool().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_message_is_the_single_zero_byte() {
        let mut out = Vec::new();
        write_message_indexes(&mut out, &[0]);
        assert_eq!(out, [0]);
        let mut out = Vec::new();
        write_message_indexes(&mut out, &[1]);
        assert_eq!(out, [2, 2]);
        let mut out = Vec::new();
        write_message_indexes(&mut out, &[0, 2]);
        assert_eq!(out, [4, 0, 4]);
    }

    #[test]
    fn frames_split_back_into_id_indexes_and_payload() {
        for indexes in [vec![0], vec![1], vec![2, 0, 70]] {
            let mut frame = vec![0, 0, 0, 1, 7];
            write_message_indexes(&mut frame, &indexes);
            frame.extend_from_slice(b"payload");
            let (id, got, payload) = split_protobuf_frame(&frame).unwrap();
            assert_eq!((id, got, payload), (263, indexes, &b"payload"[..]));
        }
        // A count larger than the bytes left is refused, not allocated.
        assert!(split_protobuf_frame(&[0, 0, 0, 0, 1, 0xfe, 0xff, 0x0f]).is_err());
    }

    #[test]
    fn indexes_follow_declaration_order_and_nesting() {
        let file = compile(
            "syntax = \"proto3\";\npackage p;\nmessage A { message In { string x = 1; } }\nmessage B { message X {} message Y { message Z {} } }\n",
            &[],
        )
        .unwrap();
        let pool = file.parent_pool();
        let at = |name: &str| message_indexes(&pool.get_message_by_name(name).unwrap());
        assert_eq!(at("p.A"), vec![0]);
        assert_eq!(at("p.B"), vec![1]);
        assert_eq!(at("p.A.In"), vec![0, 0]);
        assert_eq!(at("p.B.Y.Z"), vec![1, 1, 0]);
        assert_eq!(
            message_at(&file, &[1, 1, 0]).unwrap().full_name(),
            "p.B.Y.Z"
        );
        assert!(message_at(&file, &[5]).is_none());
    }
}
