//! The schema graph the compatibility checker walks: an arena of nodes built from the schema
//! JSON, where every use of a named type points at the one node that defines it (so that
//! recursive types terminate and a pair of nodes can be memoized by identity, as the Avro
//! reference checker does). Logical types are their underlying type, as in Avro's rules.
//!
//! Names follow the Avro specification: a name without a dot takes the namespace of the most
//! tightly enclosing named type; aliases are kept exactly as written, because the reference
//! checker compares them verbatim against the writer's full name.

use std::collections::HashMap;

use serde_json::Value;

/// Index of a node in a [`Graph`].
pub(crate) type NodeId = usize;

/// One record field as the checker needs it.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub name: String,
    pub aliases: Vec<String>,
    pub has_default: bool,
    pub ty: NodeId,
}

/// The name of a named type: its simple name and full name, and its aliases as written.
#[derive(Debug, Clone)]
pub(crate) struct Named {
    pub name: String,
    pub fullname: String,
    pub aliases: Vec<String>,
}

/// A schema node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array(NodeId),
    Map(NodeId),
    Union(Vec<NodeId>),
    Record {
        named: Named,
        fields: Vec<Field>,
    },
    Enum {
        named: Named,
        symbols: Vec<String>,
        default: Option<String>,
    },
    Fixed {
        named: Named,
        size: u64,
    },
    /// A named type whose definition is still being parsed (patched when it ends).
    Pending,
}

impl Node {
    /// The Avro type name, as the reference checker prints it.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Boolean => "boolean",
            Node::Int => "int",
            Node::Long => "long",
            Node::Float => "float",
            Node::Double => "double",
            Node::Bytes => "bytes",
            Node::String => "string",
            Node::Array(_) => "array",
            Node::Map(_) => "map",
            Node::Union(_) => "union",
            Node::Record { .. } => "record",
            Node::Enum { .. } => "enum",
            Node::Fixed { .. } => "fixed",
            Node::Pending => "record",
        }
    }
}

/// A parsed schema: its nodes and its root.
#[derive(Debug, Clone)]
pub(crate) struct Graph {
    pub nodes: Vec<Node>,
    pub root: NodeId,
}

/// Why a schema could not be turned into a graph.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ModelError(String);

fn err<T>(msg: impl Into<String>) -> Result<T, ModelError> {
    Err(ModelError(msg.into()))
}

struct Builder {
    nodes: Vec<Node>,
    names: HashMap<String, NodeId>,
}

impl Graph {
    /// Builds the graph of `schema`, with the named types of `references` (each a schema JSON
    /// text, dependencies first) available by name.
    pub(crate) fn parse(schema: &Value, references: &[Value]) -> Result<Graph, ModelError> {
        let mut b = Builder {
            nodes: Vec::new(),
            names: HashMap::new(),
        };
        for reference in references {
            b.node(reference, None)?;
        }
        let root = b.node(schema, None)?;
        Ok(Graph {
            nodes: b.nodes,
            root,
        })
    }

    /// The node with this id.
    pub(crate) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }
}

fn full_name(name: &str, namespace: Option<&str>, enclosing: Option<&str>) -> String {
    if name.contains('.') {
        return name.to_string();
    }
    let space = match namespace {
        Some("") => None,
        Some(ns) => Some(ns),
        None => enclosing.filter(|ns| !ns.is_empty()),
    };
    match space {
        Some(ns) => format!("{ns}.{name}"),
        None => name.to_string(),
    }
}

fn space_of(fullname: &str) -> Option<String> {
    fullname.rsplit_once('.').map(|(ns, _)| ns.to_string())
}

fn aliases(obj: &serde_json::Map<String, Value>) -> Vec<String> {
    match obj.get("aliases") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|a| a.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

impl Builder {
    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn primitive(name: &str) -> Option<Node> {
        Some(match name {
            "null" => Node::Null,
            "boolean" => Node::Boolean,
            "int" => Node::Int,
            "long" => Node::Long,
            "float" => Node::Float,
            "double" => Node::Double,
            "bytes" => Node::Bytes,
            "string" => Node::String,
            _ => return None,
        })
    }

    fn reference(&mut self, name: &str, enclosing: Option<&str>) -> Result<NodeId, ModelError> {
        if let Some(node) = Self::primitive(name) {
            return Ok(self.push(node));
        }
        let full = full_name(name, None, enclosing);
        if let Some(id) = self.names.get(&full).or_else(|| self.names.get(name)) {
            return Ok(*id);
        }
        err(format!("unknown type name {full:?}"))
    }

    fn node(&mut self, value: &Value, enclosing: Option<&str>) -> Result<NodeId, ModelError> {
        match value {
            Value::String(name) => self.reference(name, enclosing),
            Value::Array(branches) => {
                let mut ids = Vec::with_capacity(branches.len());
                for branch in branches {
                    ids.push(self.node(branch, enclosing)?);
                }
                Ok(self.push(Node::Union(ids)))
            }
            Value::Object(obj) => self.complex(obj, enclosing),
            other => err(format!("not a schema: {other}")),
        }
    }

    fn complex(
        &mut self,
        obj: &serde_json::Map<String, Value>,
        enclosing: Option<&str>,
    ) -> Result<NodeId, ModelError> {
        let ty = match obj.get("type") {
            Some(Value::String(ty)) => ty.as_str(),
            Some(nested @ (Value::Object(_) | Value::Array(_))) => {
                return self.node(nested, enclosing);
            }
            _ => return err("a schema object needs a \"type\""),
        };
        match ty {
            "array" => {
                let items = obj
                    .get("items")
                    .ok_or_else(|| ModelError("array without items".into()))?;
                let items = self.node(items, enclosing)?;
                Ok(self.push(Node::Array(items)))
            }
            "map" => {
                let values = obj
                    .get("values")
                    .ok_or_else(|| ModelError("map without values".into()))?;
                let values = self.node(values, enclosing)?;
                Ok(self.push(Node::Map(values)))
            }
            "record" | "error" | "enum" | "fixed" => self.named(ty, obj, enclosing),
            other => self.reference(other, enclosing),
        }
    }

    fn named(
        &mut self,
        ty: &str,
        obj: &serde_json::Map<String, Value>,
        enclosing: Option<&str>,
    ) -> Result<NodeId, ModelError> {
        let Some(name) = obj.get("name").and_then(Value::as_str) else {
            return err(format!("a {ty} needs a \"name\""));
        };
        let namespace = obj.get("namespace").and_then(Value::as_str);
        let fullname = full_name(name, namespace, enclosing);
        let named = Named {
            name: name.rsplit('.').next().unwrap_or(name).to_string(),
            fullname: fullname.clone(),
            aliases: aliases(obj),
        };
        if self.names.contains_key(&fullname) {
            return err(format!("the name {fullname:?} is defined twice"));
        }
        let id = self.push(Node::Pending);
        self.names.insert(fullname.clone(), id);
        let node = match ty {
            "enum" => {
                let symbols = match obj.get("symbols") {
                    Some(Value::Array(s)) => s
                        .iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect(),
                    _ => return err(format!("enum {fullname:?} needs \"symbols\"")),
                };
                let default = obj
                    .get("default")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                Node::Enum {
                    named,
                    symbols,
                    default,
                }
            }
            "fixed" => {
                let Some(size) = obj.get("size").and_then(Value::as_u64) else {
                    return err(format!("fixed {fullname:?} needs a \"size\""));
                };
                Node::Fixed { named, size }
            }
            _ => {
                let Some(Value::Array(raw_fields)) = obj.get("fields") else {
                    return err(format!("record {fullname:?} needs \"fields\""));
                };
                let space = space_of(&fullname);
                let mut fields = Vec::with_capacity(raw_fields.len());
                for raw in raw_fields {
                    let Value::Object(f) = raw else {
                        return err(format!("record {fullname:?}: a field is not an object"));
                    };
                    let Some(fname) = f.get("name").and_then(Value::as_str) else {
                        return err(format!("record {fullname:?}: a field has no name"));
                    };
                    let Some(fty) = f.get("type") else {
                        return err(format!("field {fname:?} has no type"));
                    };
                    let ty = self.node(fty, space.as_deref())?;
                    fields.push(Field {
                        name: fname.to_string(),
                        aliases: aliases(f),
                        has_default: f.contains_key("default"),
                        ty,
                    });
                }
                Node::Record { named, fields }
            }
        };
        self.nodes[id] = node;
        Ok(id)
    }
}
