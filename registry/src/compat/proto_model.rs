//! The Protobuf model the compatibility rules walk: one schema's file as Confluent's checker
//! sees it (the declarations of the `.proto` text, messages and enums in declaration order,
//! each message's fields by number and its oneofs by name), plus every message and enum
//! the file can reach through its imports, by full name, so that a field's type can be
//! followed into another file. It is built from the descriptors `protox` compiled, so type
//! names are already resolved to full names; a proto3 `optional` field is a plain field
//! here (its synthetic oneof is not a oneof the user wrote).

use std::collections::HashMap;

use prost_reflect::{Cardinality, EnumDescriptor, FieldDescriptor, FileDescriptor, Kind};

/// A field's type, with the names of message and enum types resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldType {
    /// A scalar, by its `.proto` keyword (`int32`, `string`, ...).
    Scalar(&'static str),
    /// An enum, by full name.
    Enum(String),
    /// A message, by full name.
    Message(String),
    /// A `map<key, value>`.
    Map(Box<FieldType>, Box<FieldType>),
}

/// A field of a message.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// The field number (Confluent's "tag").
    pub number: u32,
    /// The field name.
    pub name: String,
    /// The field type.
    pub ty: FieldType,
    /// Whether it is a proto2 `required` field.
    pub required: bool,
}

/// A oneof a user wrote, with its fields.
#[derive(Debug, Clone)]
pub(crate) struct Oneof {
    /// The oneof's name.
    pub name: String,
    /// Its fields, in declaration order.
    pub fields: Vec<Field>,
}

/// A message declaration.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// The simple name.
    pub name: String,
    /// The fields outside any oneof, in declaration order.
    pub fields: Vec<Field>,
    /// The oneofs, in declaration order.
    pub oneofs: Vec<Oneof>,
    /// Nested declarations.
    pub types: Types,
}

/// An enum declaration: its constants as (number, name).
#[derive(Debug, Clone)]
pub(crate) struct Enum {
    /// The simple name.
    pub name: String,
    /// The constants, (number, name), in declaration order.
    pub constants: Vec<(i32, String)>,
}

/// The declarations of a scope (a file or a message), in declaration order. Map entry
/// messages are left out: the `map<,>` field stands for them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Types {
    /// Messages.
    pub messages: Vec<Message>,
    /// Enums.
    pub enums: Vec<Enum>,
}

/// What a full type name refers to, in any file the schema reaches.
#[derive(Debug, Clone)]
pub(crate) struct TypeInfo {
    /// The package of the file that declares it.
    pub package: String,
    /// The declaration, when it is a message.
    pub message: Option<Message>,
}

/// One Protobuf schema, ready to compare.
#[derive(Debug, Clone)]
pub(crate) struct Model {
    /// The file's package.
    pub package: String,
    /// Its top-level declarations.
    pub types: Types,
    /// Every message and enum reachable, by full name (no leading dot).
    pub index: HashMap<String, TypeInfo>,
}

impl Model {
    /// The model of `file` and of everything it imports.
    pub(crate) fn build(file: &FileDescriptor) -> Model {
        let mut index = HashMap::new();
        for f in file.parent_pool().files() {
            let package = f.package_name().to_string();
            let types = scope(f.messages(), f.enums());
            register(&types, &package, &package, &mut index);
        }
        Model {
            package: file.package_name().to_string(),
            types: scope(file.messages(), file.enums()),
            index,
        }
    }
}

fn register(types: &Types, prefix: &str, package: &str, index: &mut HashMap<String, TypeInfo>) {
    let qualify = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };
    for m in &types.messages {
        let full = qualify(&m.name);
        register(&m.types, &full, package, index);
        index.insert(
            full,
            TypeInfo {
                package: package.to_string(),
                message: Some(m.clone()),
            },
        );
    }
    for e in &types.enums {
        index.insert(
            qualify(&e.name),
            TypeInfo {
                package: package.to_string(),
                message: None,
            },
        );
    }
}

fn scope(
    messages: impl Iterator<Item = prost_reflect::MessageDescriptor>,
    enums: impl Iterator<Item = EnumDescriptor>,
) -> Types {
    Types {
        messages: messages
            .filter(|m| !m.is_map_entry())
            .map(|m| {
                let mut fields = Vec::new();
                let mut oneofs: Vec<Oneof> = m
                    .oneofs()
                    .filter(|o| !o.is_synthetic())
                    .map(|o| Oneof {
                        name: o.name().to_string(),
                        fields: Vec::new(),
                    })
                    .collect();
                for f in m.fields() {
                    let field = field(&f);
                    match f.containing_oneof().filter(|o| !o.is_synthetic()) {
                        Some(o) => {
                            if let Some(slot) = oneofs.iter_mut().find(|s| s.name == o.name()) {
                                slot.fields.push(field);
                            }
                        }
                        None => fields.push(field),
                    }
                }
                Message {
                    name: m.name().to_string(),
                    fields,
                    oneofs,
                    types: scope(m.child_messages(), m.child_enums()),
                }
            })
            .collect(),
        enums: enums
            .map(|e| Enum {
                name: e.name().to_string(),
                constants: e
                    .values()
                    .map(|v| (v.number(), v.name().to_string()))
                    .collect(),
            })
            .collect(),
    }
}

fn field(f: &FieldDescriptor) -> Field {
    let ty = if f.is_map() {
        match f.kind() {
            Kind::Message(entry) => {
                let key = entry.map_entry_key_field();
                let value = entry.map_entry_value_field();
                FieldType::Map(Box::new(kind(&key.kind())), Box::new(kind(&value.kind())))
            }
            other => kind(&other),
        }
    } else {
        kind(&f.kind())
    };
    Field {
        number: f.number(),
        name: f.name().to_string(),
        ty,
        required: f.cardinality() == Cardinality::Required,
    }
}

fn kind(k: &Kind) -> FieldType {
    FieldType::Scalar(match k {
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 => "int32",
        Kind::Int64 => "int64",
        Kind::Uint32 => "uint32",
        Kind::Uint64 => "uint64",
        Kind::Sint32 => "sint32",
        Kind::Sint64 => "sint64",
        Kind::Fixed32 => "fixed32",
        Kind::Fixed64 => "fixed64",
        Kind::Sfixed32 => "sfixed32",
        Kind::Sfixed64 => "sfixed64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
        Kind::Message(m) => return FieldType::Message(m.full_name().to_string()),
        Kind::Enum(e) => return FieldType::Enum(e.full_name().to_string()),
    })
}
