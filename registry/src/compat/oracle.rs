//! The checker as it was before it was bounded: a direct transcription of the Avro reference
//! checker whose memo keeps, for every pair of nodes, the whole result with every
//! incompatibility and location. Its time and memory grow with the number of messages it
//! copies (cubic on some schemas), so it is kept only as the model the property tests hold
//! the bounded checker in [`super::checker`] to, message for message.

use std::collections::HashMap;

use super::checker::{Incompatibility, IncompatibilityType};
use super::model::{Graph, Node, NodeId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Compatible,
    Incompatible,
    InProgress,
}

#[derive(Debug, Clone)]
struct Outcome {
    state: State,
    incompatibilities: Vec<Incompatibility>,
}

impl Outcome {
    fn compatible() -> Outcome {
        Outcome {
            state: State::Compatible,
            incompatibilities: Vec::new(),
        }
    }

    fn incompatible(kind: IncompatibilityType, message: String, location: &[String]) -> Outcome {
        let joined = location.join("/");
        // The root token is "/" itself, so a joined path starts with "//".
        let location = if location.len() > 1 {
            joined[1..].to_string()
        } else {
            joined
        };
        Outcome {
            state: State::Incompatible,
            incompatibilities: vec![Incompatibility {
                kind,
                message,
                location,
            }],
        }
    }

    fn merge(mut self, that: Outcome) -> Outcome {
        if self.state == State::Compatible {
            self.state = that.state;
        }
        self.incompatibilities.extend(that.incompatibilities);
        self
    }
}

/// Checks whether data written with `writer` can be read with `reader`; returns every
/// incompatibility found (empty when compatible).
pub(crate) fn check(reader: &Graph, writer: &Graph) -> Vec<Incompatibility> {
    let mut checker = Checker {
        reader,
        writer,
        memo: HashMap::new(),
    };
    let outcome = checker.get(reader.root, writer.root, "/", &[]);
    match outcome.state {
        State::Incompatible => outcome.incompatibilities,
        _ => Vec::new(),
    }
}

struct Checker<'a> {
    reader: &'a Graph,
    writer: &'a Graph,
    memo: HashMap<(NodeId, NodeId), Outcome>,
}

impl Checker<'_> {
    fn get(&mut self, r: NodeId, w: NodeId, token: &str, location: &[String]) -> Outcome {
        if let Some(known) = self.memo.get(&(r, w)) {
            if known.state == State::InProgress {
                return Outcome::compatible();
            }
            return known.clone();
        }
        self.memo.insert(
            (r, w),
            Outcome {
                state: State::InProgress,
                incompatibilities: Vec::new(),
            },
        );
        let mut here = location.to_vec();
        here.push(token.to_string());
        let outcome = self.calculate(r, w, &here);
        self.memo.insert((r, w), outcome.clone());
        outcome
    }

    fn type_mismatch(&self, r: NodeId, w: NodeId, location: &[String]) -> Outcome {
        let message = format!(
            "reader type: {} not compatible with writer type: {}",
            self.reader.node(r).type_name(),
            self.writer.node(w).type_name()
        );
        Outcome::incompatible(IncompatibilityType::TypeMismatch, message, location)
    }

    fn calculate(&mut self, r: NodeId, w: NodeId, location: &[String]) -> Outcome {
        let (reader, writer) = (self.reader.node(r), self.writer.node(w));
        let result = Outcome::compatible();
        if reader.type_name() == writer.type_name() {
            return match (reader, writer) {
                (Node::Array(ri), Node::Array(wi)) => {
                    let (ri, wi) = (*ri, *wi);
                    result.merge(self.get(ri, wi, "items", location))
                }
                (Node::Map(rv), Node::Map(wv)) => {
                    let (rv, wv) = (*rv, *wv);
                    result.merge(self.get(rv, wv, "values", location))
                }
                (
                    Node::Fixed {
                        named: rn,
                        size: rs,
                    },
                    Node::Fixed {
                        named: wn,
                        size: ws,
                    },
                ) => {
                    let mut result = result.merge(check_names(rn, wn, location));
                    if rs != ws {
                        let mut at = location.to_vec();
                        at.push("size".into());
                        result = result.merge(Outcome::incompatible(
                            IncompatibilityType::FixedSizeMismatch,
                            format!("expected: {ws}, found: {rs}"),
                            &at,
                        ));
                    }
                    result
                }
                (
                    Node::Enum {
                        named: rn,
                        symbols: rs,
                        default,
                    },
                    Node::Enum {
                        named: wn,
                        symbols: ws,
                        ..
                    },
                ) => {
                    let result = result.merge(check_names(rn, wn, location));
                    let missing: Vec<&String> = ws.iter().filter(|s| !rs.contains(s)).collect();
                    let default_covers = default
                        .as_ref()
                        .is_some_and(|d| !d.is_empty() && rs.contains(d));
                    if missing.is_empty() || default_covers {
                        return result;
                    }
                    let mut at = location.to_vec();
                    at.push("symbols".into());
                    let list: Vec<String> = missing.iter().map(|s| format!("'{s}'")).collect();
                    result.merge(Outcome::incompatible(
                        IncompatibilityType::MissingEnumSymbols,
                        format!("[{}]", list.join(", ")),
                        &at,
                    ))
                }
                (Node::Record { named: rn, .. }, Node::Record { named: wn, .. }) => {
                    let result = result.merge(check_names(rn, wn, location));
                    result.merge(self.record_fields(r, w, location))
                }
                (Node::Union(_), Node::Union(wb)) => {
                    let mut result = result;
                    for (i, branch) in wb.clone().into_iter().enumerate() {
                        let outcome = self.get(r, branch, "/", &[]);
                        if outcome.state == State::Incompatible {
                            let mut at = location.to_vec();
                            at.push(i.to_string());
                            let message = format!(
                                "reader union lacking writer type: {}",
                                self.writer.node(branch).type_name().to_uppercase()
                            );
                            result = result.merge(Outcome::incompatible(
                                IncompatibilityType::MissingUnionBranch,
                                message,
                                &at,
                            ));
                        }
                    }
                    result
                }
                // Primitives of the same type.
                _ => result,
            };
        }
        if let Node::Union(branches) = writer {
            let mut result = result;
            for branch in branches.clone() {
                result = result.merge(self.get(r, branch, "/", &[]));
            }
            return result;
        }
        let promotable = matches!(
            (reader, writer),
            (Node::Long, Node::Int)
                | (Node::Float, Node::Int | Node::Long)
                | (Node::Double, Node::Int | Node::Long | Node::Float)
                | (Node::Bytes, Node::String)
                | (Node::String, Node::Bytes)
        );
        if promotable {
            return result;
        }
        if let Node::Union(branches) = reader {
            for branch in branches.clone() {
                if self.get(branch, w, "/", &[]).state == State::Compatible {
                    return result;
                }
            }
            let message = format!("reader union lacking writer type {}", writer.type_name());
            return result.merge(Outcome::incompatible(
                IncompatibilityType::MissingUnionBranch,
                message,
                location,
            ));
        }
        result.merge(self.type_mismatch(r, w, location))
    }

    fn record_fields(&mut self, r: NodeId, w: NodeId, location: &[String]) -> Outcome {
        let (Node::Record { fields: rf, .. }, Node::Record { fields: wf, .. }) =
            (self.reader.node(r), self.writer.node(w))
        else {
            return Outcome::compatible();
        };
        let (rf, wf) = (rf.clone(), wf.clone());
        let mut result = Outcome::compatible();
        for (i, field) in rf.iter().enumerate() {
            let mut at = location.to_vec();
            at.push("fields".into());
            at.push(i.to_string());
            let found = wf.iter().find(|f| f.name == field.name).or_else(|| {
                field
                    .aliases
                    .iter()
                    .find_map(|alias| wf.iter().find(|f| &f.name == alias))
            });
            match found {
                Some(writer_field) => {
                    result = result.merge(self.get(field.ty, writer_field.ty, "type", &at));
                }
                None if field.has_default => {}
                None => {
                    let enum_with_default = matches!(
                        self.reader.node(field.ty),
                        Node::Enum { default: Some(d), .. } if !d.is_empty()
                    );
                    // The reference checker then compares the enum with the whole writer
                    // record, which always fails as a type mismatch; kept for agreement.
                    let outcome = if enum_with_default {
                        self.get(field.ty, w, "type", &at)
                    } else {
                        Outcome::incompatible(
                            IncompatibilityType::ReaderFieldMissingDefaultValue,
                            field.name.clone(),
                            &at,
                        )
                    };
                    result = result.merge(outcome);
                }
            }
        }
        result
    }
}

fn check_names(
    reader: &super::model::Named,
    writer: &super::model::Named,
    location: &[String],
) -> Outcome {
    if reader.name == writer.name || reader.aliases.contains(&writer.fullname) {
        return Outcome::compatible();
    }
    let mut at = location.to_vec();
    at.push("name".into());
    Outcome::incompatible(
        IncompatibilityType::NameMismatch,
        format!("expected: {}", writer.fullname),
        &at,
    )
}
