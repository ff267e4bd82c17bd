//! The JSON Schema model the compatibility rules walk, shaped as Confluent's checker sees a
//! schema (the everit loader's schema classes), because its rules are stated on that shape:
//! `true`/`{}` is the empty schema, `false` the false schema; `type` picks a typed schema
//! (an array of types is an `anyOf` of typed schemas; a schema without `type` takes the type
//! its keywords imply); `enum`, `const`, `not` and each of `allOf`/`anyOf`/`oneOf` are
//! schemas of their own; and a schema with several of these is the `allOf` of them. A `$ref`
//! points at the node of its target, so recursive schemas are finite graphs.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

/// Index of a node in a [`Model`].
pub(crate) type NodeId = usize;

/// What a content model allows beyond the listed properties or items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Additional {
    /// Anything (`true` or absent).
    Permit,
    /// Nothing (`false`).
    Forbid,
    /// What a schema allows.
    Schema(NodeId),
}

impl Additional {
    pub(crate) fn permits(self) -> bool {
        self != Additional::Forbid
    }

    pub(crate) fn schema(self) -> Option<NodeId> {
        match self {
            Additional::Schema(id) => Some(id),
            _ => None,
        }
    }
}

/// How a combined schema combines its subschemas.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Criterion {
    AllOf,
    AnyOf,
    OneOf,
}

impl Criterion {
    pub(crate) fn keyword(self) -> &'static str {
        match self {
            Criterion::AllOf => "allOf",
            Criterion::AnyOf => "anyOf",
            Criterion::OneOf => "oneOf",
        }
    }
}

/// An object schema's keywords.
#[derive(Debug, Clone)]
pub(crate) struct ObjectKeywords {
    pub properties: BTreeMap<String, NodeId>,
    pub required: Vec<String>,
    pub additional: Additional,
    pub pattern_properties: Vec<(String, NodeId)>,
    pub property_dependencies: BTreeMap<String, Vec<String>>,
    pub schema_dependencies: BTreeMap<String, NodeId>,
    pub max_properties: Option<f64>,
    pub min_properties: Option<f64>,
}

/// An array schema's keywords.
#[derive(Debug, Clone)]
pub(crate) struct ArrayKeywords {
    pub all_items: Option<NodeId>,
    pub item_schemas: Vec<NodeId>,
    pub additional_items: Additional,
    pub max_items: Option<f64>,
    pub min_items: Option<f64>,
    pub unique_items: bool,
}

/// A schema node, one kind per everit schema class.
#[derive(Debug, Clone)]
pub(crate) enum Kind {
    /// `{}`: anything.
    Empty,
    /// `true`: anything (its own class in everit, compared as such).
    True,
    /// `false`: nothing.
    False,
    Boolean,
    Null,
    Number {
        integer: bool,
        maximum: Option<f64>,
        minimum: Option<f64>,
        exclusive_maximum: Option<f64>,
        exclusive_minimum: Option<f64>,
        multiple_of: Option<f64>,
    },
    String {
        max_length: Option<f64>,
        min_length: Option<f64>,
        pattern: Option<String>,
    },
    Enum(Vec<Value>),
    Const(Value),
    Object(Box<ObjectKeywords>),
    Array(Box<ArrayKeywords>),
    Combined {
        criterion: Criterion,
        subschemas: Vec<NodeId>,
    },
    Not(NodeId),
    /// A `$ref`, pointing at its target.
    Ref(NodeId),
    /// A `$ref` target still being built (patched when it is).
    Pending,
}

impl Kind {
    /// Which everit class the node is: two nodes of different classes are different types.
    pub(crate) fn class(&self) -> u8 {
        match self {
            Kind::Empty => 0,
            Kind::True => 1,
            Kind::False => 2,
            Kind::Boolean => 3,
            Kind::Null => 4,
            Kind::Number { .. } => 5,
            Kind::String { .. } => 6,
            Kind::Enum(_) => 7,
            Kind::Const(_) => 8,
            Kind::Object(_) => 9,
            Kind::Array(_) => 10,
            Kind::Combined { .. } => 11,
            Kind::Not(_) => 12,
            Kind::Ref(_) => 13,
            Kind::Pending => 14,
        }
    }
}

/// One node with the annotations the rules read.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    /// Whether the schema has a `default`.
    pub has_default: bool,
}

/// A parsed JSON schema: an arena of nodes and its root.
#[derive(Debug)]
pub(crate) struct Model {
    pub nodes: Vec<Node>,
    pub root: NodeId,
}

const OBJECT_KEYWORDS: &[&str] = &[
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "dependencies",
    "dependentRequired",
    "dependentSchemas",
    "minProperties",
    "maxProperties",
    "propertyNames",
];
const ARRAY_KEYWORDS: &[&str] = &[
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
];
const STRING_KEYWORDS: &[&str] = &["minLength", "maxLength", "pattern", "format"];
const NUMBER_KEYWORDS: &[&str] = &[
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];

/// Nesting the builder follows before it calls a schema too deep (the validator has
/// accepted it, so this only bounds the stack).
const MAX_DEPTH: usize = 128;

struct Builder<'a> {
    nodes: Vec<Node>,
    /// Documents by URI: the root first (its base URI), then the references.
    documents: Vec<(String, &'a Value)>,
    /// Reference names as written, to their document.
    names: HashMap<&'a str, usize>,
    /// `$ref` targets already built, by (document, JSON pointer).
    targets: HashMap<(usize, String), NodeId>,
}

impl Model {
    /// Builds the model of `root` (whose base URI is `base`), with `documents` the referenced
    /// schemas as (URI, reference name, schema).
    pub(crate) fn build(
        root: &Value,
        base: &str,
        documents: &[(String, String, Value)],
    ) -> Result<Model, String> {
        let mut builder = Builder {
            nodes: Vec::new(),
            documents: vec![(base.to_string(), root)],
            names: HashMap::new(),
            targets: HashMap::new(),
        };
        for (uri, name, doc) in documents {
            builder.names.insert(name.as_str(), builder.documents.len());
            builder.documents.push((uri.clone(), doc));
        }
        let root_id = builder.target(0, String::new(), 0)?;
        Ok(Model {
            nodes: builder.nodes,
            root: root_id,
        })
    }

    /// The node a chain of `$ref`s ends at.
    pub(crate) fn deref(&self, mut id: NodeId) -> NodeId {
        for _ in 0..self.nodes.len() {
            match self.nodes[id].kind {
                Kind::Ref(target) => id = target,
                _ => return id,
            }
        }
        id
    }
}

fn number(value: Option<&Value>) -> Option<f64> {
    value.and_then(Value::as_f64)
}

impl<'a> Builder<'a> {
    fn push(&mut self, kind: Kind, has_default: bool) -> NodeId {
        self.nodes.push(Node { kind, has_default });
        self.nodes.len() - 1
    }

    /// The node of the schema at `pointer` in document `doc`, built once.
    fn target(&mut self, doc: usize, pointer: String, depth: usize) -> Result<NodeId, String> {
        if let Some(id) = self.targets.get(&(doc, pointer.clone())) {
            return Ok(*id);
        }
        let document = self.documents[doc].1;
        let value = if pointer.is_empty() {
            Some(document)
        } else {
            document.pointer(&pointer)
        };
        let Some(value) = value else {
            return Err(format!("$ref target '#{pointer}' not found"));
        };
        let id = self.push(Kind::Pending, false);
        self.targets.insert((doc, pointer), id);
        let built = self.schema(doc, value, depth + 1)?;
        self.nodes[id] = self.nodes[built].clone();
        Ok(id)
    }

    /// The node a `$ref` in document `doc` points at.
    fn reference(&mut self, doc: usize, reference: &str, depth: usize) -> Result<NodeId, String> {
        let (uri, fragment) = match reference.split_once('#') {
            Some((uri, fragment)) => (uri, fragment),
            None => (reference, ""),
        };
        let target_doc = if uri.is_empty() {
            doc
        } else if let Some(i) = self.names.get(uri) {
            *i
        } else {
            let resolved = crate::format::json::resolve_uri(&self.documents[doc].0, uri);
            match self.documents.iter().position(|(u, _)| *u == resolved) {
                Some(i) => i,
                None => {
                    // The validator resolved it (an `$id` inside a document, an anchor): its
                    // shape is not followed, so it compares as the empty schema.
                    return Ok(self.push(Kind::Empty, false));
                }
            }
        };
        if !fragment.is_empty() && !fragment.starts_with('/') {
            return Ok(self.push(Kind::Empty, false));
        }
        let pointer = percent_decode(fragment);
        let target = self.target(target_doc, pointer, depth)?;
        Ok(self.push(Kind::Ref(target), false))
    }

    fn schema(&mut self, doc: usize, value: &Value, depth: usize) -> Result<NodeId, String> {
        if depth > MAX_DEPTH {
            return Err("the schema nests too deeply".to_string());
        }
        let map = match value {
            Value::Bool(true) => return Ok(self.push(Kind::True, false)),
            Value::Bool(false) => return Ok(self.push(Kind::False, false)),
            Value::Object(map) => map,
            _ => return Ok(self.push(Kind::Empty, false)),
        };
        let has_default = map.contains_key("default");
        if let Some(Value::String(reference)) = map.get("$ref") {
            let id = self.reference(doc, reference, depth)?;
            self.nodes[id].has_default |= has_default;
            return Ok(id);
        }
        let mut parts = Vec::new();
        if let Some(Value::Array(values)) = map.get("enum") {
            parts.push(self.push(Kind::Enum(values.clone()), has_default));
        }
        for criterion in [Criterion::AllOf, Criterion::AnyOf, Criterion::OneOf] {
            if let Some(Value::Array(subs)) = map.get(criterion.keyword()) {
                let subschemas = self.distinct(doc, subs, depth)?;
                parts.push(self.push(
                    Kind::Combined {
                        criterion,
                        subschemas,
                    },
                    has_default,
                ));
            }
        }
        if let Some(not) = map.get("not") {
            let inner = self.schema(doc, not, depth + 1)?;
            parts.push(self.push(Kind::Not(inner), has_default));
        }
        if let Some(value) = map.get("const") {
            parts.push(self.push(Kind::Const(value.clone()), has_default));
        }
        match map.get("type") {
            Some(Value::String(t)) => {
                if let Some(id) = self.typed(doc, map, t, has_default, depth)? {
                    parts.push(id);
                }
            }
            Some(Value::Array(types)) => {
                let mut subschemas = Vec::new();
                for t in types.iter().filter_map(Value::as_str) {
                    if let Some(id) = self.typed(doc, map, t, has_default, depth)? {
                        subschemas.push(id);
                    }
                }
                parts.push(self.push(
                    Kind::Combined {
                        criterion: Criterion::AnyOf,
                        subschemas,
                    },
                    has_default,
                ));
            }
            _ => {
                let has = |keywords: &[&str]| keywords.iter().any(|k| map.contains_key(*k));
                for (keywords, t) in [
                    (OBJECT_KEYWORDS, "object"),
                    (ARRAY_KEYWORDS, "array"),
                    (STRING_KEYWORDS, "string"),
                    (NUMBER_KEYWORDS, "number"),
                ] {
                    if has(keywords)
                        && let Some(id) = self.typed(doc, map, t, has_default, depth)?
                    {
                        parts.push(id);
                    }
                }
            }
        }
        Ok(match parts.len() {
            0 => self.push(Kind::Empty, has_default),
            1 => parts[0],
            _ => self.push(
                Kind::Combined {
                    criterion: Criterion::AllOf,
                    subschemas: parts,
                },
                has_default,
            ),
        })
    }

    /// Subschemas of a combined schema, duplicates (by their JSON) dropped as Confluent does.
    fn distinct(
        &mut self,
        doc: usize,
        subs: &[Value],
        depth: usize,
    ) -> Result<Vec<NodeId>, String> {
        let mut seen: Vec<&Value> = Vec::new();
        let mut ids = Vec::new();
        for sub in subs {
            if seen.contains(&sub) {
                continue;
            }
            seen.push(sub);
            ids.push(self.schema(doc, sub, depth + 1)?);
        }
        Ok(ids)
    }

    fn additional(
        &mut self,
        doc: usize,
        value: Option<&Value>,
        depth: usize,
    ) -> Result<Additional, String> {
        Ok(match value {
            None | Some(Value::Bool(true)) => Additional::Permit,
            Some(Value::Bool(false)) => Additional::Forbid,
            Some(v) => Additional::Schema(self.schema(doc, v, depth + 1)?),
        })
    }

    /// The typed schema `t` made of `map`'s keywords for that type.
    fn typed(
        &mut self,
        doc: usize,
        map: &serde_json::Map<String, Value>,
        t: &str,
        has_default: bool,
        depth: usize,
    ) -> Result<Option<NodeId>, String> {
        let kind = match t {
            "boolean" => Kind::Boolean,
            "null" => Kind::Null,
            "integer" | "number" => {
                let mut maximum = number(map.get("maximum"));
                let mut minimum = number(map.get("minimum"));
                // Draft 4 states exclusivity as a flag on the bound.
                let exclusive = |key: &str, bound: &mut Option<f64>| match map.get(key) {
                    Some(Value::Bool(true)) => bound.take(),
                    other => number(other),
                };
                let exclusive_maximum = exclusive("exclusiveMaximum", &mut maximum);
                let exclusive_minimum = exclusive("exclusiveMinimum", &mut minimum);
                Kind::Number {
                    integer: t == "integer",
                    maximum,
                    minimum,
                    exclusive_maximum,
                    exclusive_minimum,
                    multiple_of: number(map.get("multipleOf")),
                }
            }
            "string" => Kind::String {
                max_length: number(map.get("maxLength")),
                min_length: number(map.get("minLength")),
                pattern: map
                    .get("pattern")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            },
            "object" => {
                let mut o = ObjectKeywords {
                    properties: BTreeMap::new(),
                    required: Vec::new(),
                    additional: Additional::Permit,
                    pattern_properties: Vec::new(),
                    property_dependencies: BTreeMap::new(),
                    schema_dependencies: BTreeMap::new(),
                    max_properties: None,
                    min_properties: None,
                };
                if let Some(Value::Object(props)) = map.get("properties") {
                    for (name, schema) in props {
                        let id = self.schema(doc, schema, depth + 1)?;
                        o.properties.insert(name.clone(), id);
                    }
                }
                if let Some(Value::Array(required)) = map.get("required") {
                    o.required = required
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect();
                }
                o.additional = self.additional(doc, map.get("additionalProperties"), depth)?;
                if let Some(Value::Object(patterns)) = map.get("patternProperties") {
                    for (pattern, schema) in patterns {
                        let id = self.schema(doc, schema, depth + 1)?;
                        o.pattern_properties.push((pattern.clone(), id));
                    }
                }
                for key in ["dependencies", "dependentRequired", "dependentSchemas"] {
                    if let Some(Value::Object(deps)) = map.get(key) {
                        for (name, dep) in deps {
                            match dep {
                                Value::Array(names) => {
                                    o.property_dependencies.insert(
                                        name.clone(),
                                        names
                                            .iter()
                                            .filter_map(Value::as_str)
                                            .map(str::to_string)
                                            .collect(),
                                    );
                                }
                                schema => {
                                    let id = self.schema(doc, schema, depth + 1)?;
                                    o.schema_dependencies.insert(name.clone(), id);
                                }
                            }
                        }
                    }
                }
                o.max_properties = number(map.get("maxProperties"));
                o.min_properties = number(map.get("minProperties"));
                Kind::Object(Box::new(o))
            }
            "array" => {
                let mut a = ArrayKeywords {
                    all_items: None,
                    item_schemas: Vec::new(),
                    additional_items: Additional::Permit,
                    max_items: None,
                    min_items: None,
                    unique_items: false,
                };
                let tuple = map.get("prefixItems").or(match map.get("items") {
                    Some(items @ Value::Array(_)) => Some(items),
                    _ => None,
                });
                if let Some(Value::Array(items)) = tuple {
                    for item in items {
                        let id = self.schema(doc, item, depth + 1)?;
                        a.item_schemas.push(id);
                    }
                    let additional = if map.contains_key("prefixItems") {
                        map.get("items")
                    } else {
                        map.get("additionalItems")
                    };
                    a.additional_items = self.additional(doc, additional, depth)?;
                } else {
                    if let Some(items) = map.get("items") {
                        a.all_items = Some(self.schema(doc, items, depth + 1)?);
                    }
                    a.additional_items = Additional::Permit;
                }
                a.max_items = number(map.get("maxItems"));
                a.min_items = number(map.get("minItems"));
                a.unique_items = map.get("uniqueItems") == Some(&Value::Bool(true));
                Kind::Array(Box::new(a))
            }
            _ => return Ok(None),
        };
        Ok(Some(self.push(kind, has_default)))
    }
}

/// Decodes a JSON pointer written in a URI fragment (`%25` and the like).
fn percent_decode(fragment: &str) -> String {
    let bytes = fragment.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
