//! Confluent's Protobuf compatibility rules. As for JSON Schema, Confluent diffs an
//! *original* schema against an *update* and classes each difference ([`DiffType`],
//! Confluent's `Difference.Type` names) as compatible or not; BACKWARD diffs the old version
//! against the new one, FORWARD the new against the old, FULL both. What the rules protect
//! is the binary encoding: fields are matched by number, so renaming a field or an enum
//! constant, adding or removing an optional field, and adding or removing messages other
//! than the ones in use are compatible, while changing a field's kind (scalar, message,
//! map), moving it between incompatible scalar groups (Protobuf's own "compatible types":
//! int32/int64/uint32/uint64/bool and enums, sint32/sint64, string/bytes,
//! fixed32/sfixed32, fixed64/sfixed64, float, double), pointing it at a message of another
//! name or an incompatible shape, changing the package, removing a message, adding or
//! removing a proto2 `required` field, and moving several existing fields into one new
//! oneof (or one into a oneof that already had fields) are not. Enum changes are all
//! compatible: an unknown constant decodes as its number.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::compat::Level;
use crate::compat::TooComplex;
use crate::compat::checker::{Budget, BudgetExhausted};
use crate::compat::proto_model::{Enum, Field, FieldType, Message, Model, Types};

/// The kinds of difference, in Confluent's names.
#[allow(non_camel_case_types, missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DiffType {
    PACKAGE_CHANGED,
    MESSAGE_ADDED,
    MESSAGE_REMOVED,
    MESSAGE_MOVED,
    ENUM_ADDED,
    ENUM_REMOVED,
    ENUM_CONST_ADDED,
    ENUM_CONST_CHANGED,
    ENUM_CONST_REMOVED,
    FIELD_ADDED,
    FIELD_REMOVED,
    FIELD_NAME_CHANGED,
    FIELD_KIND_CHANGED,
    FIELD_SCALAR_KIND_CHANGED,
    FIELD_NAMED_TYPE_CHANGED,
    REQUIRED_FIELD_ADDED,
    REQUIRED_FIELD_REMOVED,
    ONEOF_ADDED,
    ONEOF_REMOVED,
    ONEOF_FIELD_ADDED,
    ONEOF_FIELD_REMOVED,
    MULTIPLE_FIELDS_MOVED_TO_ONEOF,
    FIELD_MOVED_TO_EXISTING_ONEOF,
}

use DiffType::*;

impl DiffType {
    /// Whether Confluent counts the difference as compatible.
    pub(crate) fn compatible(self) -> bool {
        matches!(
            self,
            MESSAGE_ADDED
                | MESSAGE_MOVED
                | ENUM_ADDED
                | ENUM_REMOVED
                | ENUM_CONST_ADDED
                | ENUM_CONST_CHANGED
                | ENUM_CONST_REMOVED
                | FIELD_ADDED
                | FIELD_REMOVED
                | FIELD_NAME_CHANGED
                | ONEOF_ADDED
                | ONEOF_REMOVED
                | ONEOF_FIELD_ADDED
        )
    }

    /// What the difference means, for the verbose message (`%s` is the path).
    fn description(self) -> &'static str {
        match self {
            PACKAGE_CHANGED => "The package at '%s' differs between the two schemas",
            MESSAGE_ADDED => "The message at path '%s' was added",
            MESSAGE_REMOVED => {
                "The message at path '%s' in the old schema is missing in the new one"
            }
            MESSAGE_MOVED => "The message at path '%s' moved",
            ENUM_ADDED => "The enum at path '%s' was added",
            ENUM_REMOVED => "The enum at path '%s' was removed",
            ENUM_CONST_ADDED => "The enum constant at path '%s' was added",
            ENUM_CONST_CHANGED => "The enum constant at path '%s' was renamed",
            ENUM_CONST_REMOVED => "The enum constant at path '%s' was removed",
            FIELD_ADDED => "The field at path '%s' was added",
            FIELD_REMOVED => "The field at path '%s' was removed",
            FIELD_NAME_CHANGED => "The field at path '%s' was renamed",
            FIELD_KIND_CHANGED => {
                "The kind (scalar, message or map) of the field at path '%s' changed"
            }
            FIELD_SCALAR_KIND_CHANGED => {
                "The scalar type of the field at path '%s' changed to one that does not share its wire encoding"
            }
            FIELD_NAMED_TYPE_CHANGED => {
                "The message type of the field at path '%s' changed to another or incompatible one"
            }
            REQUIRED_FIELD_ADDED => "A required field was added at path '%s'",
            REQUIRED_FIELD_REMOVED => "The required field at path '%s' was removed",
            ONEOF_ADDED => "The oneof at path '%s' was added",
            ONEOF_REMOVED => "The oneof at path '%s' was removed",
            ONEOF_FIELD_ADDED => "A field was added to the oneof at path '%s'",
            ONEOF_FIELD_REMOVED => "A field was removed from the oneof at path '%s'",
            MULTIPLE_FIELDS_MOVED_TO_ONEOF => {
                "More than one existing field moved into the oneof at path '%s'"
            }
            FIELD_MOVED_TO_EXISTING_ONEOF => {
                "An existing field moved into the oneof at path '%s', which already had fields"
            }
        }
    }
}

/// One difference between two schemas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Difference {
    /// What changed.
    pub kind: DiffType,
    /// Where, as `#/Message/field number`.
    pub path: String,
}

impl Difference {
    fn message(&self) -> String {
        format!(
            "{{errorType:\"{:?}\", description:\"{}\"}}",
            self.kind,
            self.kind.description().replacen("%s", &self.path, 1)
        )
    }
}

/// The state a whole comparison shares: the message pairs already compared (so recursive
/// messages end) and the budget.
struct Shared {
    visited: HashSet<(String, String)>,
    budget: Budget,
    exhausted: Option<BudgetExhausted>,
}

struct Ctx<'a> {
    original: &'a Model,
    update: &'a Model,
    path: Vec<String>,
    diffs: Vec<Difference>,
    shared: &'a mut Shared,
}

fn qualify(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn local_name<'n>(full: &'n str, package: &str) -> &'n str {
    if package.is_empty() {
        return full;
    }
    full.strip_prefix(package)
        .and_then(|rest| rest.strip_prefix('.'))
        .unwrap_or(full)
}

#[derive(PartialEq, Eq)]
enum FieldKind {
    Scalar,
    Message,
    Map,
}

/// Protobuf's groups of wire-compatible scalars (enums count as `int32`'s group).
fn scalar_group(ty: &FieldType) -> u8 {
    match ty {
        FieldType::Enum(_) => 0,
        FieldType::Scalar(s) => match *s {
            "int32" | "int64" | "uint32" | "uint64" | "bool" => 0,
            "sint32" | "sint64" => 1,
            "string" | "bytes" => 2,
            "fixed32" | "sfixed32" => 3,
            "fixed64" | "sfixed64" => 4,
            "float" => 5,
            "double" => 6,
            _ => 7,
        },
        _ => 8,
    }
}

impl<'a> Ctx<'a> {
    fn add(&mut self, kind: DiffType) {
        let path = format!("#/{}", self.path.join("/"));
        self.diffs.push(Difference { kind, path });
    }

    fn sub(&mut self, path: Vec<String>) -> Ctx<'_> {
        Ctx {
            original: self.original,
            update: self.update,
            path,
            diffs: Vec::new(),
            shared: self.shared,
        }
    }

    fn compare_types(&mut self, o: &Types, u: &Types, o_prefix: &str, u_prefix: &str) {
        let o_messages: HashMap<&str, (usize, &Message)> = o
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.as_str(), (i, m)))
            .collect();
        let u_messages: HashMap<&str, (usize, &Message)> = u
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.as_str(), (i, m)))
            .collect();
        let names: BTreeSet<&str> = o_messages
            .keys()
            .chain(u_messages.keys())
            .copied()
            .collect();
        for name in names {
            self.path.push(name.to_string());
            match (o_messages.get(name), u_messages.get(name)) {
                (Some(_), None) => self.add(MESSAGE_REMOVED),
                (None, Some(_)) => self.add(MESSAGE_ADDED),
                (Some((oi, om)), Some((ui, um))) => {
                    self.compare_message(
                        &qualify(o_prefix, name),
                        &qualify(u_prefix, name),
                        om,
                        um,
                    );
                    if oi != ui {
                        self.add(MESSAGE_MOVED);
                    }
                }
                (None, None) => {}
            }
            self.path.pop();
        }
        let o_enums: HashMap<&str, &Enum> = o.enums.iter().map(|e| (e.name.as_str(), e)).collect();
        let u_enums: HashMap<&str, &Enum> = u.enums.iter().map(|e| (e.name.as_str(), e)).collect();
        let names: BTreeSet<&str> = o_enums.keys().chain(u_enums.keys()).copied().collect();
        for name in names {
            self.path.push(name.to_string());
            match (o_enums.get(name), u_enums.get(name)) {
                (Some(_), None) => self.add(ENUM_REMOVED),
                (None, Some(_)) => self.add(ENUM_ADDED),
                (Some(oe), Some(ue)) => self.compare_enum(oe, ue),
                (None, None) => {}
            }
            self.path.pop();
        }
    }

    fn compare_enum(&mut self, o: &Enum, u: &Enum) {
        let ob: HashMap<i32, &str> = o.constants.iter().map(|(n, s)| (*n, s.as_str())).collect();
        let ub: HashMap<i32, &str> = u.constants.iter().map(|(n, s)| (*n, s.as_str())).collect();
        let numbers: BTreeSet<i32> = ob.keys().chain(ub.keys()).copied().collect();
        for n in numbers {
            self.path.push(n.to_string());
            match (ob.get(&n), ub.get(&n)) {
                (Some(_), None) => self.add(ENUM_CONST_REMOVED),
                (None, Some(_)) => self.add(ENUM_CONST_ADDED),
                (Some(a), Some(b)) if a != b => self.add(ENUM_CONST_CHANGED),
                _ => {}
            }
            self.path.pop();
        }
    }

    fn compare_message(&mut self, o_full: &str, u_full: &str, o: &Message, u: &Message) {
        if self.shared.exhausted.is_some() {
            return;
        }
        if let Err(e) = self
            .shared
            .budget
            .spend(1 + (o.fields.len() + u.fields.len()) as u64)
        {
            self.shared.exhausted = Some(e);
            return;
        }
        if self
            .shared
            .visited
            .insert((o_full.to_string(), u_full.to_string()))
        {
            self.compare_fields(o, u);
        }
        self.compare_types(&o.types, &u.types, o_full, u_full);
    }

    fn compare_fields(&mut self, o: &Message, u: &Message) {
        let mut o_top: HashMap<u32, &Field> = o.fields.iter().map(|f| (f.number, f)).collect();
        let u_top: HashMap<u32, &Field> = u.fields.iter().map(|f| (f.number, f)).collect();
        let mut o_all = o_top.clone();
        let mut u_all = u_top.clone();
        let mut o_oneof_of: HashMap<u32, &str> = HashMap::new();
        let mut u_oneof_of: HashMap<u32, &str> = HashMap::new();
        let mut o_in_oneofs: HashSet<u32> = HashSet::new();
        for oneof in &o.oneofs {
            for f in &oneof.fields {
                o_in_oneofs.insert(f.number);
                o_all.insert(f.number, f);
                o_oneof_of.insert(f.number, &oneof.name);
            }
        }
        for oneof in &u.oneofs {
            self.path.push(oneof.name.clone());
            let mut moved = 0;
            let mut existing = 0;
            for f in &oneof.fields {
                u_all.insert(f.number, f);
                u_oneof_of.insert(f.number, &oneof.name);
                // A top-level field that moved into a oneof is not a removed field.
                if o_top.remove(&f.number).is_some() {
                    moved += 1;
                } else if o_in_oneofs.contains(&f.number) {
                    existing += 1;
                }
            }
            if moved > 1 {
                self.add(MULTIPLE_FIELDS_MOVED_TO_ONEOF);
            } else if moved == 1 && existing > 0 {
                self.add(FIELD_MOVED_TO_EXISTING_ONEOF);
            }
            self.path.pop();
        }
        let o_oneofs: HashMap<&str, _> = o.oneofs.iter().map(|x| (x.name.as_str(), x)).collect();
        let u_oneofs: HashMap<&str, _> = u.oneofs.iter().map(|x| (x.name.as_str(), x)).collect();
        let names: BTreeSet<&str> = o_oneofs.keys().chain(u_oneofs.keys()).copied().collect();
        for name in names {
            self.path.push(name.to_string());
            match (o_oneofs.get(name), u_oneofs.get(name)) {
                (Some(_), None) => self.add(ONEOF_REMOVED),
                (None, Some(_)) => self.add(ONEOF_ADDED),
                (Some(oo), Some(uo)) => {
                    let ob: HashMap<u32, &Field> =
                        oo.fields.iter().map(|f| (f.number, f)).collect();
                    let ub: HashMap<u32, &Field> =
                        uo.fields.iter().map(|f| (f.number, f)).collect();
                    let numbers: BTreeSet<u32> = ob.keys().chain(ub.keys()).copied().collect();
                    for n in numbers {
                        self.path.push(n.to_string());
                        match (ob.get(&n), ub.get(&n)) {
                            // A field that left the oneof but lives on elsewhere was
                            // relocated, not removed.
                            (Some(_), None) if !u_all.contains_key(&n) => {
                                self.add(ONEOF_FIELD_REMOVED)
                            }
                            (None, Some(_)) => self.add(ONEOF_FIELD_ADDED),
                            (Some(a), Some(b)) => self.compare_field(a, b),
                            _ => {}
                        }
                        self.path.pop();
                    }
                }
                (None, None) => {}
            }
            self.path.pop();
        }
        let numbers: BTreeSet<u32> = o_top.keys().chain(u_top.keys()).copied().collect();
        for n in numbers {
            self.path.push(n.to_string());
            match (o_top.get(&n), u_top.get(&n)) {
                (Some(f), None) if f.required => self.add(REQUIRED_FIELD_REMOVED),
                (Some(_), None) => self.add(FIELD_REMOVED),
                (None, Some(f)) if f.required => self.add(REQUIRED_FIELD_ADDED),
                (None, Some(_)) => self.add(FIELD_ADDED),
                (Some(a), Some(b)) => self.compare_field(a, b),
                (None, None) => {}
            }
            self.path.pop();
        }
        // Fields whose oneof membership changed are compared by number across the message.
        let common: BTreeSet<u32> = o_all
            .keys()
            .filter(|n| u_all.contains_key(n))
            .copied()
            .collect();
        for n in common {
            let (oo, uo) = (o_oneof_of.get(&n), u_oneof_of.get(&n));
            let top_in_both = oo.is_none() && uo.is_none();
            let same_oneof = oo.is_some() && oo == uo;
            if top_in_both || same_oneof {
                continue;
            }
            if let (Some(a), Some(b)) = (o_all.get(&n), u_all.get(&n)) {
                self.path.push(n.to_string());
                self.compare_field(a, b);
                self.path.pop();
            }
        }
    }

    fn compare_field(&mut self, o: &Field, u: &Field) {
        if o.name != u.name {
            self.add(FIELD_NAME_CHANGED);
        }
        self.compare_field_types(&o.ty, &u.ty);
    }

    fn kind(&self, ty: &FieldType) -> FieldKind {
        match ty {
            FieldType::Scalar(_) | FieldType::Enum(_) => FieldKind::Scalar,
            FieldType::Map(..) => FieldKind::Map,
            FieldType::Message(_) => FieldKind::Message,
        }
    }

    fn compare_field_types(&mut self, o: &FieldType, u: &FieldType) {
        if self.kind(o) != self.kind(u) {
            self.add(FIELD_KIND_CHANGED);
            return;
        }
        match (o, u) {
            (FieldType::Map(ok, ov), FieldType::Map(uk, uv)) => {
                self.compare_field_types(ok, uk);
                self.compare_field_types(ov, uv);
            }
            (FieldType::Message(on), FieldType::Message(un)) => self.compare_message_types(on, un),
            _ => {
                if scalar_group(o) != scalar_group(u) {
                    self.add(FIELD_SCALAR_KIND_CHANGED);
                }
            }
        }
    }

    fn compare_message_types(&mut self, o_full: &str, u_full: &str) {
        let (o_info, u_info) = match (
            self.original.index.get(o_full),
            self.update.index.get(u_full),
        ) {
            (Some(o), Some(u)) => (o, u),
            _ => {
                if o_full != u_full {
                    self.add(FIELD_NAMED_TYPE_CHANGED);
                }
                return;
            }
        };
        let o_local = local_name(o_full, &o_info.package);
        let u_local = local_name(u_full, &u_info.package);
        if o_local != u_local {
            self.add(FIELD_NAMED_TYPE_CHANGED);
            return;
        }
        let (Some(om), Some(um)) = (o_info.message.as_ref(), u_info.message.as_ref()) else {
            return;
        };
        let mut sub = self.sub(vec![o_local.to_string()]);
        sub.compare_message(o_full, u_full, om, um);
        let diffs = sub.diffs;
        let compatible = diffs.iter().all(|d| d.kind.compatible());
        self.diffs.extend(diffs);
        if !compatible {
            self.add(FIELD_NAMED_TYPE_CHANGED);
        }
    }
}

/// Every difference from `original` to `update`.
pub(crate) fn compare(
    original: &Model,
    update: &Model,
    budget: &mut Budget,
) -> Result<Vec<Difference>, BudgetExhausted> {
    let mut shared = Shared {
        visited: HashSet::new(),
        budget: std::mem::replace(budget, Budget::unlimited()),
        exhausted: None,
    };
    let mut ctx = Ctx {
        original,
        update,
        path: Vec::new(),
        diffs: Vec::new(),
        shared: &mut shared,
    };
    if original.package != update.package {
        ctx.add(PACKAGE_CHANGED);
    }
    ctx.compare_types(
        &original.types,
        &update.types,
        &original.package,
        &update.package,
    );
    let diffs = ctx.diffs;
    *budget = shared.budget;
    match shared.exhausted {
        Some(e) => Err(e),
        None => Ok(diffs),
    }
}

/// An earlier version the new schema is checked against.
pub(crate) struct Previous<'a> {
    pub version: u32,
    pub schema_text: &'a str,
    pub model: &'a Model,
}

/// Checks `new` against `previous` (newest first) under `level`; Confluent's verbose
/// messages for the first version found incompatible, empty when compatible.
pub(crate) fn check_level(
    level: Level,
    new: &Model,
    previous: &[Previous<'_>],
    budget: &mut Budget,
    max_reported: usize,
) -> Result<Vec<String>, TooComplex> {
    let count = if level.transitive() {
        previous.len()
    } else {
        previous.len().min(1)
    };
    for old in &previous[..count] {
        let too_complex = |bound| TooComplex {
            version: old.version,
            bound,
        };
        let mut messages = Vec::new();
        let mut report = |diffs: Vec<Difference>| {
            let incompatible: Vec<&Difference> =
                diffs.iter().filter(|d| !d.kind.compatible()).collect();
            for d in incompatible.iter().take(max_reported) {
                messages.push(d.message());
            }
            if incompatible.len() > max_reported {
                messages.push(format!(
                    "{{truncated: 'only the first {max_reported} incompatibilities are listed'}}"
                ));
            }
        };
        if level.backward() {
            report(compare(old.model, new, budget).map_err(too_complex)?);
        }
        if level.forward() {
            report(compare(new, old.model, budget).map_err(too_complex)?);
        }
        if !messages.is_empty() {
            messages.push(format!("{{oldSchemaVersion: {}}}", old.version));
            messages.push(format!("{{oldSchema: '{}'}}", old.schema_text));
            messages.push(format!(
                "{{validateFields: 'false', compatibility: '{level}'}}"
            ));
            return Ok(messages);
        }
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Resolved;
    use crate::format::protobuf::compile;
    use proptest::prelude::*;

    fn model(text: &str) -> Model {
        Model::build(&compile(text, &[]).unwrap())
    }

    fn model_with(text: &str, refs: &[(&str, &str)]) -> Model {
        let resolved: Vec<Resolved> = refs
            .iter()
            .map(|(name, schema)| Resolved {
                name: name.to_string(),
                schema: schema.to_string(),
            })
            .collect();
        Model::build(&compile(text, &resolved).unwrap())
    }

    /// The incompatible differences from `old` to `new` (BACKWARD's direction).
    fn incompatible(old: &str, new: &str) -> Vec<(DiffType, String)> {
        diff(&model(old), &model(new))
    }

    fn diff(old: &Model, new: &Model) -> Vec<(DiffType, String)> {
        compare(old, new, &mut Budget::unlimited())
            .unwrap()
            .into_iter()
            .filter(|d| !d.kind.compatible())
            .map(|d| (d.kind, d.path))
            .collect()
    }

    fn p3(body: &str) -> String {
        format!("syntax = \"proto3\";\npackage t;\n{body}\n")
    }

    fn p2(body: &str) -> String {
        format!("syntax = \"proto2\";\npackage t;\n{body}\n")
    }

    #[test]
    fn renaming_adding_and_removing_optional_fields_is_compatible() {
        let old = p3("message M { string a = 1; int32 b = 2; }");
        assert!(
            incompatible(&old, &p3("message M { string renamed = 1; int32 b = 2; }")).is_empty()
        );
        assert!(incompatible(&old, &p3("message M { string a = 1; }")).is_empty());
        assert!(
            incompatible(
                &old,
                &p3("message M { string a = 1; int32 b = 2; bool c = 3; }")
            )
            .is_empty()
        );
        assert!(incompatible(&old, &p3("message M { reserved 2; string a = 1; }")).is_empty());
    }

    #[test]
    fn scalar_changes_within_a_wire_group_are_compatible() {
        for (from, to) in [
            ("int32", "int64"),
            ("uint64", "bool"),
            ("sint32", "sint64"),
            ("string", "bytes"),
            ("fixed32", "sfixed32"),
            ("fixed64", "sfixed64"),
        ] {
            let old = p3(&format!("message M {{ {from} a = 1; }}"));
            let new = p3(&format!("message M {{ {to} a = 1; }}"));
            assert!(incompatible(&old, &new).is_empty(), "{from} -> {to}");
        }
    }

    #[test]
    fn scalar_changes_across_wire_groups_are_incompatible() {
        for (from, to) in [
            ("int32", "sint32"),
            ("int32", "string"),
            ("fixed32", "fixed64"),
            ("float", "double"),
            ("int64", "fixed64"),
        ] {
            let old = p3(&format!("message M {{ {from} a = 1; }}"));
            let new = p3(&format!("message M {{ {to} a = 1; }}"));
            assert_eq!(
                incompatible(&old, &new),
                vec![(FIELD_SCALAR_KIND_CHANGED, "#/M/1".to_string())],
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn enum_counts_as_an_int32_scalar() {
        let old = p3("enum E { A = 0; } message M { int32 a = 1; }");
        let new = p3("enum E { A = 0; } message M { E a = 1; }");
        assert!(incompatible(&old, &new).is_empty());
        let new = p3("enum E { A = 0; } message M { sint32 a = 1; }");
        assert!(!incompatible(&old, &new).is_empty());
    }

    #[test]
    fn enum_changes_are_compatible() {
        let old = p3("enum E { A = 0; B = 1; } message M { E e = 1; }");
        let new = p3("enum E { A = 0; RENAMED = 1; C = 2; } message M { E e = 1; }");
        assert!(incompatible(&old, &new).is_empty());
        let new = p3("enum E { A = 0; } message M { E e = 1; }");
        assert!(incompatible(&old, &new).is_empty());
    }

    #[test]
    fn changing_a_fields_kind_is_incompatible() {
        let old = p3("message N { string x = 1; } message M { string a = 1; }");
        let new = p3("message N { string x = 1; } message M { N a = 1; }");
        assert_eq!(
            incompatible(&old, &new),
            vec![(FIELD_KIND_CHANGED, "#/M/1".to_string())]
        );
        let new = p3("message N { string x = 1; } message M { map<string, string> a = 1; }");
        assert_eq!(
            incompatible(&old, &new),
            vec![(FIELD_KIND_CHANGED, "#/M/1".to_string())]
        );
    }

    #[test]
    fn map_value_type_changes_are_checked() {
        let old = p3("message M { map<string, int32> a = 1; }");
        assert!(incompatible(&old, &p3("message M { map<string, int64> a = 1; }")).is_empty());
        assert!(!incompatible(&old, &p3("message M { map<string, string> a = 1; }")).is_empty());
    }

    #[test]
    fn pointing_a_field_at_another_message_is_incompatible() {
        let old =
            p3("message A { string x = 1; } message B { string x = 1; } message M { A f = 1; }");
        let new =
            p3("message A { string x = 1; } message B { string x = 1; } message M { B f = 1; }");
        assert_eq!(
            incompatible(&old, &new),
            vec![(FIELD_NAMED_TYPE_CHANGED, "#/M/1".to_string())]
        );
    }

    #[test]
    fn incompatible_change_inside_a_field_message_is_reported() {
        let old = p3("message M { message Inner { int32 x = 1; } Inner f = 1; }");
        let new = p3("message M { message Inner { string x = 1; } Inner f = 1; }");
        let found = incompatible(&old, &new);
        assert!(
            found.contains(&(FIELD_SCALAR_KIND_CHANGED, "#/M.Inner/1".to_string())),
            "{found:?}"
        );
        assert!(
            found.contains(&(FIELD_NAMED_TYPE_CHANGED, "#/M/1".to_string())),
            "{found:?}"
        );
    }

    #[test]
    fn recursive_messages_terminate() {
        let old = p3("message Node { string v = 1; repeated Node children = 2; }");
        let new = p3("message Node { string value = 1; repeated Node children = 2; }");
        assert!(incompatible(&old, &new).is_empty());
    }

    #[test]
    fn changing_the_package_is_incompatible() {
        let old = "syntax = \"proto3\";\npackage a;\nmessage M { string x = 1; }\n";
        let new = "syntax = \"proto3\";\npackage b;\nmessage M { string x = 1; }\n";
        assert_eq!(
            incompatible(old, new),
            vec![(PACKAGE_CHANGED, "#/".to_string())]
        );
    }

    #[test]
    fn removing_or_renaming_a_message_is_backward_incompatible_only() {
        let old = p3("message A { string x = 1; } message B { string x = 1; }");
        let new = p3("message A { string x = 1; }");
        assert_eq!(
            incompatible(&old, &new),
            vec![(MESSAGE_REMOVED, "#/B".to_string())]
        );
        // FORWARD compares the other way round: the old schema gained nothing it lacks.
        assert!(incompatible(&new, &old).is_empty());
        let renamed = p3("message A { string x = 1; } message C { string x = 1; }");
        assert!(!incompatible(&old, &renamed).is_empty());
    }

    #[test]
    fn reordering_messages_is_compatible() {
        let old = p3("message A { string x = 1; } message B { string x = 1; }");
        let new = p3("message B { string x = 1; } message A { string x = 1; }");
        assert!(incompatible(&old, &new).is_empty());
    }

    #[test]
    fn adding_or_removing_a_required_field_is_incompatible() {
        let old = p2("message M { optional string a = 1; }");
        let new = p2("message M { optional string a = 1; required int32 b = 2; }");
        assert_eq!(
            incompatible(&old, &new),
            vec![(REQUIRED_FIELD_ADDED, "#/M/2".to_string())]
        );
        assert_eq!(
            incompatible(&new, &old),
            vec![(REQUIRED_FIELD_REMOVED, "#/M/2".to_string())]
        );
        let optional = p2("message M { optional string a = 1; optional int32 b = 2; }");
        assert!(incompatible(&optional, &old).is_empty());
    }

    #[test]
    fn moving_one_field_into_a_new_oneof_is_compatible() {
        let old = p3("message M { string a = 1; int32 b = 2; }");
        let new = p3("message M { oneof choice { string a = 1; bool c = 3; } int32 b = 2; }");
        assert!(incompatible(&old, &new).is_empty());
    }

    #[test]
    fn moving_several_fields_into_one_oneof_is_incompatible() {
        let old = p3("message M { string a = 1; int32 b = 2; }");
        let new = p3("message M { oneof choice { string a = 1; int32 b = 2; } }");
        assert_eq!(
            incompatible(&old, &new),
            vec![(MULTIPLE_FIELDS_MOVED_TO_ONEOF, "#/M/choice".to_string())]
        );
    }

    #[test]
    fn moving_a_field_into_an_existing_oneof_is_incompatible() {
        let old = p3("message M { string a = 1; oneof choice { int32 b = 2; } }");
        let new = p3("message M { oneof choice { string a = 1; int32 b = 2; } }");
        assert_eq!(
            incompatible(&old, &new),
            vec![(FIELD_MOVED_TO_EXISTING_ONEOF, "#/M/choice".to_string())]
        );
    }

    #[test]
    fn oneof_fields_added_relocated_or_removed() {
        let old = p3("message M { oneof choice { string a = 1; int32 b = 2; } }");
        let added = p3("message M { oneof choice { string a = 1; int32 b = 2; bool c = 3; } }");
        assert!(incompatible(&old, &added).is_empty());
        let relocated = p3("message M { int32 b = 2; oneof choice { string a = 1; } }");
        assert!(incompatible(&old, &relocated).is_empty());
        let removed = p3("message M { oneof choice { string a = 1; } }");
        assert_eq!(
            incompatible(&old, &removed),
            vec![(ONEOF_FIELD_REMOVED, "#/M/choice/2".to_string())]
        );
        let retyped = p3("message M { int64 b = 2; oneof other { sint32 a = 1; } }");
        assert!(
            incompatible(&old, &retyped)
                .contains(&(FIELD_SCALAR_KIND_CHANGED, "#/M/1".to_string()))
        );
    }

    #[test]
    fn proto3_optional_is_not_a_oneof() {
        let old = p3("message M { string a = 1; }");
        let new = p3("message M { optional string a = 1; }");
        assert!(incompatible(&old, &new).is_empty());
    }

    #[test]
    fn types_from_a_referenced_file_are_compared() {
        let v1 = "syntax = \"proto3\";\npackage geo;\nmessage Address { string city = 1; }\n";
        let v2 = "syntax = \"proto3\";\npackage geo;\nmessage Address { int64 city = 1; }\n";
        let text = "syntax = \"proto3\";\npackage t;\nimport \"geo.proto\";\nmessage User { geo.Address home = 1; }\n";
        let old = model_with(text, &[("geo.proto", v1)]);
        let new = model_with(text, &[("geo.proto", v2)]);
        let found = diff(&old, &new);
        assert!(
            found.contains(&(FIELD_NAMED_TYPE_CHANGED, "#/User/1".to_string())),
            "{found:?}"
        );
        assert!(diff(&old, &old).is_empty());
    }

    #[test]
    fn check_level_follows_the_levels() {
        let v1 = model(&p3(
            "message A { string x = 1; } message B { string x = 1; }",
        ));
        let v2 = model(&p3("message A { string x = 1; }"));
        let prev = [Previous {
            version: 1,
            schema_text: "v1",
            model: &v1,
        }];
        let run = |level| check_level(level, &v2, &prev, &mut Budget::unlimited(), 100).unwrap();
        let backward = run(Level::Backward);
        assert_eq!(
            backward[0],
            "{errorType:\"MESSAGE_REMOVED\", description:\"The message at path '#/B' in the old schema is missing in the new one\"}"
        );
        assert_eq!(backward[1], "{oldSchemaVersion: 1}");
        assert!(run(Level::Forward).is_empty());
        assert!(!run(Level::Full).is_empty());
        assert!(run(Level::None).is_empty());
    }

    #[test]
    fn transitive_levels_check_every_version() {
        let v1 = model(&p3("message M { sint32 a = 1; }"));
        let v2 = model(&p3("message M { sint64 a = 1; }"));
        let v3 = model(&p3("message M { sint64 a = 1; string b = 2; }"));
        let prev = [
            Previous {
                version: 2,
                schema_text: "v2",
                model: &v2,
            },
            Previous {
                version: 1,
                schema_text: "v1",
                model: &v1,
            },
        ];
        let new = model(&p3("message M { int64 a = 1; string b = 2; }"));
        let run = |level, new: &Model| {
            check_level(level, new, &prev, &mut Budget::unlimited(), 100).unwrap()
        };
        assert!(!run(Level::Backward, &new).is_empty());
        assert!(run(Level::BackwardTransitive, &v3).is_empty());
        let v4 = model(&p3("message M { int32 a = 1; }"));
        let prev_only_v1 = [Previous {
            version: 1,
            schema_text: "v1",
            model: &v1,
        }];
        assert!(
            !check_level(
                Level::ForwardTransitive,
                &v4,
                &prev_only_v1,
                &mut Budget::unlimited(),
                100
            )
            .unwrap()
            .is_empty()
        );
    }

    const SCALARS: [&str; 15] = [
        "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32",
        "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
    ];

    /// The reference model: Protobuf's language guide's table of scalar types that decode
    /// each other's bytes, written out as pairs rather than groups.
    fn wire_compatible(a: &str, b: &str) -> bool {
        let varint = ["int32", "int64", "uint32", "uint64", "bool"];
        a == b
            || (varint.contains(&a) && varint.contains(&b))
            || matches!(
                (a, b),
                ("sint32", "sint64")
                    | ("sint64", "sint32")
                    | ("string", "bytes")
                    | ("bytes", "string")
                    | ("fixed32", "sfixed32")
                    | ("sfixed32", "fixed32")
                    | ("fixed64", "sfixed64")
                    | ("sfixed64", "fixed64")
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Changing any field's scalar type and renaming fields: incompatible in both
        /// directions exactly when the reference table says the encodings differ.
        #[test]
        fn scalar_changes_match_the_reference_table(
            types in proptest::collection::vec(0..SCALARS.len(), 1..6),
            changed in 0usize..6,
            to in 0..SCALARS.len(),
            rename in any::<bool>(),
        ) {
            let changed = changed % types.len();
            let fields = |names: &str, swap: bool| -> String {
                types.iter().enumerate().map(|(i, t)| {
                    let ty = if swap && i == changed { SCALARS[to] } else { SCALARS[*t] };
                    format!("{ty} {names}{i} = {};", i + 1)
                }).collect::<Vec<_>>().join(" ")
            };
            let old = p3(&format!("message M {{ {} }}", fields("f", false)));
            let new = p3(&format!("message M {{ {} }}", fields(if rename { "g" } else { "f" }, true)));
            let expected = !wire_compatible(SCALARS[types[changed]], SCALARS[to]);
            prop_assert_eq!(!incompatible(&old, &new).is_empty(), expected);
            prop_assert_eq!(!incompatible(&new, &old).is_empty(), expected);
        }
    }
}
