//! Confluent's JSON Schema compatibility rules. JSON Schema has no reader/writer resolution
//! of its own, so Confluent diffs an *original* schema against an *update* and classes each
//! difference ([`DiffType`], Confluent's `Difference.Type` names) as compatible or not: the
//! update can read what the original allowed. BACKWARD diffs the old version (original)
//! against the new one (update); FORWARD the new against the old; FULL both. The rules that
//! matter most are the content models: an object is *open* when it allows any additional
//! property (the default), *closed* with `additionalProperties: false`, and *partially open*
//! with a schema for additional properties or `patternProperties`. A property may be added
//! only where the original was closed (or its partial model covers it), and removed only
//! where the update is open (or covers it), since data under an open model may hold any
//! property with any value.

use std::collections::{BTreeSet, HashSet};

use regex::Regex;

use crate::compat::Level;
use crate::compat::TooComplex;
use crate::compat::checker::{Budget, BudgetExhausted};
use crate::compat::json_model::{Additional, Criterion, Kind, Model, NodeId};

/// The kinds of difference, in Confluent's names.
#[allow(clippy::enum_variant_names, non_camel_case_types, missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DiffType {
    SCHEMA_ADDED,
    SCHEMA_REMOVED,
    TYPE_EXTENDED,
    TYPE_NARROWED,
    TYPE_CHANGED,
    MAX_LENGTH_ADDED,
    MAX_LENGTH_REMOVED,
    MAX_LENGTH_INCREASED,
    MAX_LENGTH_DECREASED,
    MIN_LENGTH_ADDED,
    MIN_LENGTH_REMOVED,
    MIN_LENGTH_INCREASED,
    MIN_LENGTH_DECREASED,
    PATTERN_ADDED,
    PATTERN_REMOVED,
    PATTERN_CHANGED,
    MAXIMUM_ADDED,
    MAXIMUM_REMOVED,
    MAXIMUM_INCREASED,
    MAXIMUM_DECREASED,
    MINIMUM_ADDED,
    MINIMUM_REMOVED,
    MINIMUM_INCREASED,
    MINIMUM_DECREASED,
    EXCLUSIVE_MAXIMUM_ADDED,
    EXCLUSIVE_MAXIMUM_REMOVED,
    EXCLUSIVE_MAXIMUM_INCREASED,
    EXCLUSIVE_MAXIMUM_DECREASED,
    EXCLUSIVE_MINIMUM_ADDED,
    EXCLUSIVE_MINIMUM_REMOVED,
    EXCLUSIVE_MINIMUM_INCREASED,
    EXCLUSIVE_MINIMUM_DECREASED,
    MULTIPLE_OF_ADDED,
    MULTIPLE_OF_REMOVED,
    MULTIPLE_OF_EXPANDED,
    MULTIPLE_OF_REDUCED,
    MULTIPLE_OF_CHANGED,
    REQUIRED_ATTRIBUTE_ADDED,
    REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED,
    REQUIRED_ATTRIBUTE_REMOVED,
    MAX_PROPERTIES_ADDED,
    MAX_PROPERTIES_REMOVED,
    MAX_PROPERTIES_INCREASED,
    MAX_PROPERTIES_DECREASED,
    MIN_PROPERTIES_ADDED,
    MIN_PROPERTIES_REMOVED,
    MIN_PROPERTIES_INCREASED,
    MIN_PROPERTIES_DECREASED,
    ADDITIONAL_PROPERTIES_ADDED,
    ADDITIONAL_PROPERTIES_REMOVED,
    ADDITIONAL_PROPERTIES_EXTENDED,
    ADDITIONAL_PROPERTIES_NARROWED,
    DEPENDENCY_ARRAY_ADDED,
    DEPENDENCY_ARRAY_REMOVED,
    DEPENDENCY_ARRAY_EXTENDED,
    DEPENDENCY_ARRAY_NARROWED,
    DEPENDENCY_ARRAY_CHANGED,
    DEPENDENCY_SCHEMA_ADDED,
    DEPENDENCY_SCHEMA_REMOVED,
    REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL,
    REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL,
    OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL,
    PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL,
    REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL,
    REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL,
    OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL,
    PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL,
    PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL,
    PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL,
    PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    MAX_ITEMS_ADDED,
    MAX_ITEMS_REMOVED,
    MAX_ITEMS_INCREASED,
    MAX_ITEMS_DECREASED,
    MIN_ITEMS_ADDED,
    MIN_ITEMS_REMOVED,
    MIN_ITEMS_INCREASED,
    MIN_ITEMS_DECREASED,
    UNIQUE_ITEMS_ADDED,
    UNIQUE_ITEMS_REMOVED,
    ADDITIONAL_ITEMS_ADDED,
    ADDITIONAL_ITEMS_REMOVED,
    ADDITIONAL_ITEMS_EXTENDED,
    ADDITIONAL_ITEMS_NARROWED,
    ITEM_ADDED_TO_OPEN_CONTENT_MODEL,
    ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL,
    ITEM_ADDED_TO_CLOSED_CONTENT_MODEL,
    ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL,
    ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL,
    ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL,
    ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL,
    ENUM_ARRAY_EXTENDED,
    ENUM_ARRAY_NARROWED,
    ENUM_ARRAY_CHANGED,
    COMBINED_TYPE_EXTENDED,
    COMBINED_TYPE_CHANGED,
    PRODUCT_TYPE_EXTENDED,
    PRODUCT_TYPE_NARROWED,
    SUM_TYPE_EXTENDED,
    SUM_TYPE_NARROWED,
    COMBINED_TYPE_SUBSCHEMAS_CHANGED,
    NOT_TYPE_EXTENDED,
    NOT_TYPE_NARROWED,
}

use DiffType::*;

impl DiffType {
    /// Whether the update still reads what the original allowed (Confluent's
    /// `COMPATIBLE_CHANGES`).
    pub(crate) fn compatible(self) -> bool {
        matches!(
            self,
            SCHEMA_REMOVED
                | TYPE_EXTENDED
                | MAX_LENGTH_INCREASED
                | MAX_LENGTH_REMOVED
                | MIN_LENGTH_DECREASED
                | MIN_LENGTH_REMOVED
                | PATTERN_REMOVED
                | MAXIMUM_INCREASED
                | MAXIMUM_REMOVED
                | MINIMUM_DECREASED
                | MINIMUM_REMOVED
                | EXCLUSIVE_MAXIMUM_INCREASED
                | EXCLUSIVE_MAXIMUM_REMOVED
                | EXCLUSIVE_MINIMUM_DECREASED
                | EXCLUSIVE_MINIMUM_REMOVED
                | MULTIPLE_OF_REDUCED
                | MULTIPLE_OF_REMOVED
                | REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED
                | REQUIRED_ATTRIBUTE_REMOVED
                | DEPENDENCY_ARRAY_NARROWED
                | DEPENDENCY_ARRAY_REMOVED
                | DEPENDENCY_SCHEMA_REMOVED
                | MAX_PROPERTIES_INCREASED
                | MAX_PROPERTIES_REMOVED
                | MIN_PROPERTIES_DECREASED
                | MIN_PROPERTIES_REMOVED
                | ADDITIONAL_PROPERTIES_ADDED
                | ADDITIONAL_PROPERTIES_EXTENDED
                | PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
                | REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL
                | OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL
                | PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL
                | PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL
                | PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                | PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                | MAX_ITEMS_INCREASED
                | MAX_ITEMS_REMOVED
                | MIN_ITEMS_DECREASED
                | MIN_ITEMS_REMOVED
                | UNIQUE_ITEMS_REMOVED
                | ADDITIONAL_ITEMS_ADDED
                | ADDITIONAL_ITEMS_EXTENDED
                | ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
                | ITEM_ADDED_TO_CLOSED_CONTENT_MODEL
                | ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL
                | ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL
                | ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                | ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                | ENUM_ARRAY_EXTENDED
                | COMBINED_TYPE_EXTENDED
                | PRODUCT_TYPE_NARROWED
                | SUM_TYPE_EXTENDED
                | NOT_TYPE_NARROWED
        )
    }

    /// Confluent's description, `%s` standing for the reader and the writer in turn.
    fn description(self, path: &str) -> String {
        match self {
            MAXIMUM_ADDED
            | MINIMUM_ADDED
            | EXCLUSIVE_MAXIMUM_ADDED
            | EXCLUSIVE_MINIMUM_ADDED
            | MULTIPLE_OF_ADDED
            | MAX_LENGTH_ADDED
            | MIN_LENGTH_ADDED
            | PATTERN_ADDED
            | REQUIRED_ATTRIBUTE_ADDED
            | MAX_PROPERTIES_ADDED
            | MIN_PROPERTIES_ADDED
            | DEPENDENCY_ARRAY_ADDED
            | DEPENDENCY_SCHEMA_ADDED
            | MAX_ITEMS_ADDED
            | MIN_ITEMS_ADDED
            | UNIQUE_ITEMS_ADDED
            | ADDITIONAL_ITEMS_REMOVED
            | ADDITIONAL_PROPERTIES_REMOVED => format!(
                "The keyword at path '{path}' in the %s schema is not present in the %s schema"
            ),
            MIN_LENGTH_INCREASED
            | MINIMUM_INCREASED
            | EXCLUSIVE_MINIMUM_INCREASED
            | MIN_PROPERTIES_INCREASED
            | MULTIPLE_OF_EXPANDED
            | MIN_ITEMS_INCREASED => format!(
                "The value at path '{path}' in the %s schema is more than its value in the %s schema"
            ),
            MAX_LENGTH_DECREASED
            | MAXIMUM_DECREASED
            | MAX_ITEMS_DECREASED
            | EXCLUSIVE_MAXIMUM_DECREASED
            | MAX_PROPERTIES_DECREASED => format!(
                "The value at path '{path}' in the %s schema is less than its value in the %s schema"
            ),
            PATTERN_CHANGED | MULTIPLE_OF_CHANGED | DEPENDENCY_ARRAY_CHANGED => {
                format!("The value at path '{path}' is different between the %s and %s schema")
            }
            ADDITIONAL_ITEMS_NARROWED
            | ENUM_ARRAY_NARROWED
            | SUM_TYPE_NARROWED
            | ADDITIONAL_PROPERTIES_NARROWED => format!(
                "An array or combined type at path '{path}' has fewer elements in the %s schema than the %s schema"
            ),
            DEPENDENCY_ARRAY_EXTENDED
            | PRODUCT_TYPE_EXTENDED
            | SUM_TYPE_EXTENDED
            | NOT_TYPE_EXTENDED => format!(
                "An array or combined type at path '{path}' has more elements in the %s schema than the %s schema"
            ),
            TYPE_CHANGED
            | TYPE_NARROWED
            | COMBINED_TYPE_CHANGED
            | COMBINED_TYPE_SUBSCHEMAS_CHANGED
            | ENUM_ARRAY_CHANGED => format!(
                "A type at path '{path}' is different between the %s schema and the %s schema"
            ),
            REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL
            | REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL
            | OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL
            | ITEM_ADDED_TO_OPEN_CONTENT_MODEL => format!(
                "The %s schema has an open content model and has a property or item at path '{path}' which is missing in the %s schema"
            ),
            REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL => format!(
                "The %s schema has an unopen content model and has a required property at path '{path}' which is missing in the %s schema"
            ),
            PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL | ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL => {
                format!(
                    "The %s schema has a closed content model and is missing a property or item present at path '{path}' in the %s schema"
                )
            }
            PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
            | ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL => format!(
                "A property or item is missing in the %s schema but present at path '{path}' in the %s schema and is not covered by its partially open content model"
            ),
            PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
            | ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL => format!(
                "The %s schema has a property or item at path '{path}' which is missing in the %s schema and is not covered by its partially open content model"
            ),
            _ => String::new(),
        }
    }
}

/// One difference found, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Difference {
    pub kind: DiffType,
    pub path: String,
}

impl Difference {
    /// Confluent's message, with the reader and writer named.
    fn message(&self, reader: &str, writer: &str) -> String {
        let description = self
            .kind
            .description(&self.path)
            .replacen("%s", reader, 1)
            .replacen("%s", writer, 1);
        format!(
            "{{errorType:\"{:?}\", description:\"{description}\"}}",
            self.kind
        )
    }
}

/// One side of a comparison: a node of a model.
#[derive(Clone, Copy)]
struct Side<'a> {
    model: &'a Model,
    id: NodeId,
}

impl<'a> Side<'a> {
    fn kind(&self) -> &'a Kind {
        &self.model.nodes[self.id].kind
    }

    fn at(&self, id: NodeId) -> Side<'a> {
        Side {
            model: self.model,
            id: self.model.deref(id),
        }
    }

    fn key(&self) -> (usize, NodeId) {
        (self.model as *const Model as usize, self.id)
    }
}

/// The state of one comparison: where it is, what it found, and the pairs in progress
/// (a pair met again while in progress is a recursive cycle, taken as compatible).
struct Ctx<'b> {
    path: Vec<String>,
    diffs: Vec<Difference>,
    shared: &'b mut Shared,
}

struct Shared {
    in_progress: HashSet<((usize, NodeId), (usize, NodeId))>,
    budget: Budget,
    exhausted: Option<BudgetExhausted>,
}

fn all_compatible(diffs: &[Difference]) -> bool {
    diffs.iter().all(|d| d.kind.compatible())
}

fn compare_numbers(
    ctx: &mut Ctx<'_>,
    keyword: &str,
    original: Option<f64>,
    update: Option<f64>,
    [added, removed, increased, decreased]: [DiffType; 4],
) {
    match (original, update) {
        (None, Some(_)) => ctx.add_at(keyword, added),
        (Some(_), None) => ctx.add_at(keyword, removed),
        (Some(o), Some(u)) if o < u => ctx.add_at(keyword, increased),
        (Some(o), Some(u)) if o > u => ctx.add_at(keyword, decreased),
        _ => {}
    }
}

impl Ctx<'_> {
    fn path_string(&self) -> String {
        format!("#/{}", self.path.join("/"))
    }

    fn add(&mut self, kind: DiffType) {
        let path = self.path_string();
        self.diffs.push(Difference { kind, path });
    }

    fn add_at(&mut self, keyword: &str, kind: DiffType) {
        self.path.push(keyword.to_string());
        self.add(kind);
        self.path.pop();
    }

    /// A comparison of its own at the same place, whose differences the caller decides on.
    fn sub(&mut self) -> Ctx<'_> {
        Ctx {
            path: self.path.clone(),
            diffs: Vec::new(),
            shared: self.shared,
        }
    }

    fn within(&mut self, segment: &str, f: impl FnOnce(&mut Self)) {
        self.path.push(segment.to_string());
        f(self);
        self.path.pop();
    }

    fn compare_opt(&mut self, original: Option<Side<'_>>, update: Option<Side<'_>>) {
        match (original, update) {
            (None, None) => {}
            (None, Some(_)) => self.add(SCHEMA_ADDED),
            (Some(_), None) => self.add(SCHEMA_REMOVED),
            (Some(o), Some(u)) => self.compare(o, u),
        }
    }

    fn compare(&mut self, original: Side<'_>, update: Side<'_>) {
        if self.shared.exhausted.is_some() {
            return;
        }
        if let Err(e) = self.shared.budget.spend(1) {
            self.shared.exhausted = Some(e);
            return;
        }
        let original = original.at(original.id);
        let update = update.at(update.id);
        match (original.kind(), update.kind()) {
            (
                o,
                Kind::Combined {
                    criterion,
                    subschemas,
                },
            ) if !matches!(o, Kind::Combined { .. }) => {
                if subschemas.len() == 1 {
                    let mut sub = self.sub();
                    sub.compare(original, update.at(subschemas[0]));
                    if all_compatible(&sub.diffs) {
                        let diffs = sub.diffs;
                        self.diffs.extend(diffs);
                        return;
                    }
                } else if matches!(criterion, Criterion::AnyOf | Criterion::OneOf) {
                    for s in subschemas {
                        let mut sub = self.sub();
                        sub.compare(original, update.at(*s));
                        if all_compatible(&sub.diffs) {
                            let diffs = sub.diffs;
                            self.diffs.extend(diffs);
                            self.add(SUM_TYPE_EXTENDED);
                            return;
                        }
                    }
                }
            }
            (Kind::Combined { subschemas, .. }, u)
                if !matches!(u, Kind::Combined { .. }) && subschemas.len() == 1 =>
            {
                let mut sub = self.sub();
                sub.compare(original.at(subschemas[0]), update);
                if all_compatible(&sub.diffs) {
                    let diffs = sub.diffs;
                    self.diffs.extend(diffs);
                    return;
                }
            }
            _ => {}
        }
        if original.kind().class() != update.kind().class() {
            if matches!(original.kind(), Kind::False)
                || matches!(update.kind(), Kind::Empty | Kind::True)
            {
                return;
            }
            self.add(TYPE_CHANGED);
            return;
        }
        let pair = (original.key(), update.key());
        if !self.shared.in_progress.insert(pair) {
            return;
        }
        self.compare_same_class(original, update);
        self.shared.in_progress.remove(&pair);
    }

    fn compare_same_class(&mut self, original: Side<'_>, update: Side<'_>) {
        match (original.kind(), update.kind()) {
            (
                Kind::String {
                    max_length: o_max,
                    min_length: o_min,
                    pattern: o_pattern,
                },
                Kind::String {
                    max_length: u_max,
                    min_length: u_min,
                    pattern: u_pattern,
                },
            ) => {
                compare_numbers(
                    self,
                    "maxLength",
                    *o_max,
                    *u_max,
                    [
                        MAX_LENGTH_ADDED,
                        MAX_LENGTH_REMOVED,
                        MAX_LENGTH_INCREASED,
                        MAX_LENGTH_DECREASED,
                    ],
                );
                compare_numbers(
                    self,
                    "minLength",
                    *o_min,
                    *u_min,
                    [
                        MIN_LENGTH_ADDED,
                        MIN_LENGTH_REMOVED,
                        MIN_LENGTH_INCREASED,
                        MIN_LENGTH_DECREASED,
                    ],
                );
                match (o_pattern, u_pattern) {
                    (None, Some(_)) => self.add_at("pattern", PATTERN_ADDED),
                    (Some(_), None) => self.add_at("pattern", PATTERN_REMOVED),
                    (Some(o), Some(u)) if o != u => self.add_at("pattern", PATTERN_CHANGED),
                    _ => {}
                }
            }
            (
                Kind::Number {
                    integer: o_int,
                    maximum: o_max,
                    minimum: o_min,
                    exclusive_maximum: o_xmax,
                    exclusive_minimum: o_xmin,
                    multiple_of: o_mult,
                },
                Kind::Number {
                    integer: u_int,
                    maximum: u_max,
                    minimum: u_min,
                    exclusive_maximum: u_xmax,
                    exclusive_minimum: u_xmin,
                    multiple_of: u_mult,
                },
            ) => {
                compare_numbers(
                    self,
                    "maximum",
                    *o_max,
                    *u_max,
                    [
                        MAXIMUM_ADDED,
                        MAXIMUM_REMOVED,
                        MAXIMUM_INCREASED,
                        MAXIMUM_DECREASED,
                    ],
                );
                compare_numbers(
                    self,
                    "minimum",
                    *o_min,
                    *u_min,
                    [
                        MINIMUM_ADDED,
                        MINIMUM_REMOVED,
                        MINIMUM_INCREASED,
                        MINIMUM_DECREASED,
                    ],
                );
                compare_numbers(
                    self,
                    "exclusiveMaximum",
                    *o_xmax,
                    *u_xmax,
                    [
                        EXCLUSIVE_MAXIMUM_ADDED,
                        EXCLUSIVE_MAXIMUM_REMOVED,
                        EXCLUSIVE_MAXIMUM_INCREASED,
                        EXCLUSIVE_MAXIMUM_DECREASED,
                    ],
                );
                compare_numbers(
                    self,
                    "exclusiveMinimum",
                    *o_xmin,
                    *u_xmin,
                    [
                        EXCLUSIVE_MINIMUM_ADDED,
                        EXCLUSIVE_MINIMUM_REMOVED,
                        EXCLUSIVE_MINIMUM_INCREASED,
                        EXCLUSIVE_MINIMUM_DECREASED,
                    ],
                );
                match (o_mult, u_mult) {
                    (None, Some(_)) => self.add_at("multipleOf", MULTIPLE_OF_ADDED),
                    (Some(_), None) => self.add_at("multipleOf", MULTIPLE_OF_REMOVED),
                    (Some(o), Some(u)) if o != u => {
                        let divides = |a: f64, b: f64| b != 0.0 && (a / b).fract() == 0.0;
                        if divides(*u, *o) {
                            self.add_at("multipleOf", MULTIPLE_OF_EXPANDED);
                        } else if divides(*o, *u) {
                            self.add_at("multipleOf", MULTIPLE_OF_REDUCED);
                        } else {
                            self.add_at("multipleOf", MULTIPLE_OF_CHANGED);
                        }
                    }
                    _ => {}
                }
                if o_int != u_int {
                    self.add(if *o_int { TYPE_EXTENDED } else { TYPE_NARROWED });
                }
            }
            (Kind::Enum(o), Kind::Enum(u)) => {
                let contains_all = |a: &[serde_json::Value], b: &[serde_json::Value]| {
                    b.iter().all(|v| a.contains(v))
                };
                if !(contains_all(o, u) && contains_all(u, o)) {
                    if contains_all(u, o) {
                        self.add_at("enum", ENUM_ARRAY_EXTENDED);
                    } else if contains_all(o, u) {
                        self.add_at("enum", ENUM_ARRAY_NARROWED);
                    } else {
                        self.add_at("enum", ENUM_ARRAY_CHANGED);
                    }
                }
            }
            (Kind::Const(o), Kind::Const(u)) if o != u => {
                self.add_at("const", ENUM_ARRAY_CHANGED);
            }
            (Kind::Not(o), Kind::Not(u)) => {
                let (o, u) = (original.at(*o), update.at(*u));
                self.within("not", |ctx| {
                    let mut sub = ctx.sub();
                    // What the update excludes must be within what the original excluded.
                    sub.compare(u, o);
                    let compatible = all_compatible(&sub.diffs);
                    ctx.add(if compatible {
                        NOT_TYPE_NARROWED
                    } else {
                        NOT_TYPE_EXTENDED
                    });
                });
            }
            (
                Kind::Combined {
                    criterion: o_crit,
                    subschemas: o_subs,
                },
                Kind::Combined {
                    criterion: u_crit,
                    subschemas: u_subs,
                },
            ) => self.compare_combined(original, update, (*o_crit, o_subs), (*u_crit, u_subs)),
            (Kind::Object(_), Kind::Object(_)) => self.compare_objects(original, update),
            (Kind::Array(_), Kind::Array(_)) => self.compare_arrays(original, update),
            _ => {}
        }
    }

    fn compare_combined(
        &mut self,
        original: Side<'_>,
        update: Side<'_>,
        (o_crit, o_subs): (Criterion, &[NodeId]),
        (u_crit, u_subs): (Criterion, &[NodeId]),
    ) {
        let singleton = |subs: &[NodeId]| subs.len() == 1;
        let change = if o_crit == u_crit {
            None
        } else if u_crit == Criterion::AnyOf
            || (u_crit == Criterion::OneOf && singleton(o_subs))
            || (u_crit == Criterion::AllOf && singleton(o_subs) && singleton(u_subs))
        {
            Some(COMBINED_TYPE_EXTENDED)
        } else {
            Some(COMBINED_TYPE_CHANGED)
        };
        if let Some(change) = change {
            self.add(change);
            if change == COMBINED_TYPE_CHANGED {
                return;
            }
        }
        let (o_len, u_len) = (o_subs.len(), u_subs.len());
        let all = u_crit == Criterion::AllOf;
        if o_len < u_len {
            self.add(if all {
                PRODUCT_TYPE_EXTENDED
            } else {
                SUM_TYPE_EXTENDED
            });
        } else if o_len > u_len {
            self.add(if all {
                PRODUCT_TYPE_NARROWED
            } else {
                SUM_TYPE_NARROWED
            });
        }
        // Which original subschema each update subschema can stand for, with the
        // differences of that pairing.
        let mut edges: Vec<Vec<(usize, Vec<Difference>)>> = vec![Vec::new(); o_len];
        for (i, o) in o_subs.iter().enumerate() {
            let segment = format!("{}/{i}", o_crit.keyword());
            self.path.push(segment);
            for (j, u) in u_subs.iter().enumerate() {
                let mut sub = self.sub();
                sub.compare(original.at(*o), update.at(*u));
                if all_compatible(&sub.diffs) {
                    let diffs = sub.diffs;
                    edges[i].push((j, diffs));
                }
            }
            self.path.pop();
        }
        let matching = maximum_matching(&edges, u_len);
        let mut matched = 0;
        for (j, i) in matching.iter().enumerate() {
            if let Some(i) = i {
                matched += 1;
                if let Some((_, diffs)) = edges[*i].iter().find(|(k, _)| *k == j) {
                    self.diffs.extend(diffs.iter().cloned());
                }
            }
        }
        if matched < o_len.min(u_len) {
            self.add(COMBINED_TYPE_SUBSCHEMAS_CHANGED);
        }
    }

    fn compare_objects(&mut self, original: Side<'_>, update: Side<'_>) {
        let (Kind::Object(o), Kind::Object(u)) = (original.kind(), update.kind()) else {
            return;
        };
        self.within("required", |ctx| {
            for key in o.properties.keys() {
                if let Some(u_id) = u.properties.get(key) {
                    let o_req = o.required.contains(key);
                    let u_req = u.required.contains(key);
                    if o_req && !u_req {
                        ctx.add_at(key, REQUIRED_ATTRIBUTE_REMOVED);
                    } else if !o_req && u_req {
                        let with_default = update.model.nodes[*u_id].has_default;
                        ctx.add_at(
                            key,
                            if with_default {
                                REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED
                            } else {
                                REQUIRED_ATTRIBUTE_ADDED
                            },
                        );
                    }
                }
            }
        });
        let o_open = o.pattern_properties.is_empty() && o.additional == Additional::Permit;
        let u_open = u.pattern_properties.is_empty() && u.additional == Additional::Permit;
        self.within("properties", |ctx| {
            let keys: BTreeSet<&String> = o.properties.keys().chain(u.properties.keys()).collect();
            for key in keys {
                ctx.within(key, |ctx| {
                    match (o.properties.get(key), u.properties.get(key)) {
                        (Some(o_id), None) => {
                            if u_open {
                                ctx.add(PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL);
                            } else if let Some(partial) =
                                partial_schema(&u.pattern_properties, u.additional, key)
                            {
                                let mut sub = ctx.sub();
                                sub.compare(original.at(*o_id), update.at(partial));
                                let compatible = all_compatible(&sub.diffs);
                                let diffs = sub.diffs;
                                ctx.diffs.extend(diffs);
                                ctx.add(if compatible {
                                    PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                                } else {
                                    PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                                });
                            } else if matches!(original.at(*o_id).kind(), Kind::False) {
                                ctx.add(PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL);
                            } else {
                                ctx.add(PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL);
                            }
                        }
                        (None, Some(u_id)) => {
                            let required = u.required.contains(key);
                            let with_default = update.model.nodes[*u_id].has_default;
                            if o_open {
                                ctx.add(if matches!(update.at(*u_id).kind(), Kind::Empty) {
                                    PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
                                } else if required && with_default {
                                    REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL
                                } else if required {
                                    REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL
                                } else {
                                    OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL
                                });
                            } else {
                                if let Some(partial) =
                                    partial_schema(&o.pattern_properties, o.additional, key)
                                {
                                    let mut sub = ctx.sub();
                                    sub.compare(original.at(partial), update.at(*u_id));
                                    let compatible = all_compatible(&sub.diffs);
                                    let diffs = sub.diffs;
                                    ctx.diffs.extend(diffs);
                                    ctx.add(if compatible {
                                        PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                                    } else {
                                        PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                                    });
                                }
                                ctx.add(if required && with_default {
                                    REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL
                                } else if required {
                                    REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL
                                } else {
                                    OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL
                                });
                            }
                        }
                        (Some(o_id), Some(u_id)) => {
                            ctx.compare(original.at(*o_id), update.at(*u_id))
                        }
                        (None, None) => {}
                    }
                });
            }
        });
        self.within("dependencies", |ctx| {
            let keys: BTreeSet<&String> = o
                .property_dependencies
                .keys()
                .chain(u.property_dependencies.keys())
                .collect();
            for key in keys {
                let (od, ud) = (
                    o.property_dependencies.get(key),
                    u.property_dependencies.get(key),
                );
                match (od, ud) {
                    (_, None) => ctx.add_at(key, DEPENDENCY_ARRAY_REMOVED),
                    (None, Some(_)) => ctx.add_at(key, DEPENDENCY_ARRAY_ADDED),
                    (Some(od), Some(ud)) => {
                        let od: BTreeSet<&String> = od.iter().collect();
                        let ud: BTreeSet<&String> = ud.iter().collect();
                        if od != ud {
                            ctx.add_at(
                                key,
                                if ud.is_superset(&od) {
                                    DEPENDENCY_ARRAY_EXTENDED
                                } else if od.is_superset(&ud) {
                                    DEPENDENCY_ARRAY_NARROWED
                                } else {
                                    DEPENDENCY_ARRAY_CHANGED
                                },
                            );
                        }
                    }
                }
            }
            let keys: BTreeSet<&String> = o
                .schema_dependencies
                .keys()
                .chain(u.schema_dependencies.keys())
                .collect();
            for key in keys {
                match (
                    o.schema_dependencies.get(key),
                    u.schema_dependencies.get(key),
                ) {
                    (_, None) => ctx.add_at(key, DEPENDENCY_SCHEMA_REMOVED),
                    (None, Some(_)) => ctx.add_at(key, DEPENDENCY_SCHEMA_ADDED),
                    (Some(os), Some(us)) => {
                        ctx.within(key, |ctx| ctx.compare(original.at(*os), update.at(*us)))
                    }
                }
            }
        });
        self.within("additionalProperties", |ctx| {
            ctx.compare_additional(
                original,
                update,
                o.additional,
                u.additional,
                [
                    ADDITIONAL_PROPERTIES_ADDED,
                    ADDITIONAL_PROPERTIES_REMOVED,
                    ADDITIONAL_PROPERTIES_NARROWED,
                    ADDITIONAL_PROPERTIES_EXTENDED,
                ],
            )
        });
        compare_numbers(
            self,
            "maxProperties",
            o.max_properties,
            u.max_properties,
            [
                MAX_PROPERTIES_ADDED,
                MAX_PROPERTIES_REMOVED,
                MAX_PROPERTIES_INCREASED,
                MAX_PROPERTIES_DECREASED,
            ],
        );
        compare_numbers(
            self,
            "minProperties",
            o.min_properties,
            u.min_properties,
            [
                MIN_PROPERTIES_ADDED,
                MIN_PROPERTIES_REMOVED,
                MIN_PROPERTIES_INCREASED,
                MIN_PROPERTIES_DECREASED,
            ],
        );
    }

    fn compare_additional(
        &mut self,
        original: Side<'_>,
        update: Side<'_>,
        o: Additional,
        u: Additional,
        [added, removed, narrowed, extended]: [DiffType; 4],
    ) {
        if o.permits() != u.permits() {
            self.add(if u.permits() { added } else { removed });
        } else if o.schema().is_none() && u.schema().is_some() {
            self.add(narrowed);
        } else if u.schema().is_none() && o.schema().is_some() {
            self.add(extended);
        } else if let (Some(os), Some(us)) = (o.schema(), u.schema()) {
            self.compare(original.at(os), update.at(us));
        }
    }

    fn compare_arrays(&mut self, original: Side<'_>, update: Side<'_>) {
        let (Kind::Array(o), Kind::Array(u)) = (original.kind(), update.kind()) else {
            return;
        };
        self.within("items", |ctx| {
            ctx.compare_opt(
                o.all_items.map(|i| original.at(i)),
                u.all_items.map(|i| update.at(i)),
            )
        });
        let shared = o.item_schemas.len().min(u.item_schemas.len());
        for index in 0..shared {
            self.within(&format!("items/{index}"), |ctx| {
                ctx.compare(
                    original.at(o.item_schemas[index]),
                    update.at(u.item_schemas[index]),
                )
            });
        }
        let u_open = u.additional_items == Additional::Permit;
        let o_open = o.additional_items == Additional::Permit;
        for index in shared..o.item_schemas.len() {
            let item = original.at(o.item_schemas[index]);
            self.within(&format!("items/{index}"), |ctx| {
                if u_open {
                    ctx.add(ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL);
                } else if let Some(partial) = u.additional_items.schema() {
                    let mut sub = ctx.sub();
                    sub.compare(item, update.at(partial));
                    let compatible = all_compatible(&sub.diffs);
                    let diffs = sub.diffs;
                    ctx.diffs.extend(diffs);
                    ctx.add(if compatible {
                        ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                    } else {
                        ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                    });
                } else if matches!(item.kind(), Kind::False) {
                    ctx.add(ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL);
                } else {
                    ctx.add(ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL);
                }
            });
        }
        for index in shared..u.item_schemas.len() {
            let item = update.at(u.item_schemas[index]);
            self.within(&format!("items/{index}"), |ctx| {
                if o_open {
                    ctx.add(if matches!(item.kind(), Kind::Empty) {
                        ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL
                    } else {
                        ITEM_ADDED_TO_OPEN_CONTENT_MODEL
                    });
                } else if let Some(partial) = o.additional_items.schema() {
                    let mut sub = ctx.sub();
                    sub.compare(original.at(partial), item);
                    let compatible = all_compatible(&sub.diffs);
                    let diffs = sub.diffs;
                    ctx.diffs.extend(diffs);
                    ctx.add(if compatible {
                        ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                    } else {
                        ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL
                    });
                } else {
                    ctx.add(ITEM_ADDED_TO_CLOSED_CONTENT_MODEL);
                }
            });
        }
        self.within("additionalItems", |ctx| {
            // Confluent names this pair the other way round from additionalProperties: an
            // update that stops permitting extra items has ADDITIONAL_ITEMS_REMOVED.
            ctx.compare_additional(
                original,
                update,
                o.additional_items,
                u.additional_items,
                [
                    ADDITIONAL_ITEMS_ADDED,
                    ADDITIONAL_ITEMS_REMOVED,
                    ADDITIONAL_ITEMS_NARROWED,
                    ADDITIONAL_ITEMS_EXTENDED,
                ],
            )
        });
        compare_numbers(
            self,
            "maxItems",
            o.max_items,
            u.max_items,
            [
                MAX_ITEMS_ADDED,
                MAX_ITEMS_REMOVED,
                MAX_ITEMS_INCREASED,
                MAX_ITEMS_DECREASED,
            ],
        );
        compare_numbers(
            self,
            "minItems",
            o.min_items,
            u.min_items,
            [
                MIN_ITEMS_ADDED,
                MIN_ITEMS_REMOVED,
                MIN_ITEMS_INCREASED,
                MIN_ITEMS_DECREASED,
            ],
        );
        if o.unique_items != u.unique_items {
            self.add_at(
                "uniqueItems",
                if o.unique_items {
                    UNIQUE_ITEMS_REMOVED
                } else {
                    UNIQUE_ITEMS_ADDED
                },
            );
        }
    }
}

/// The schema a partially open object model gives `key`: the first pattern property
/// matching it, else the schema of additional properties.
fn partial_schema(
    patterns: &[(String, NodeId)],
    additional: Additional,
    key: &str,
) -> Option<NodeId> {
    for (pattern, id) in patterns {
        if Regex::new(pattern).is_ok_and(|re| re.is_match(key)) {
            return Some(*id);
        }
    }
    additional.schema()
}

/// A maximum matching of the bipartite graph `edges` (original index to the update indexes
/// it may pair with), by augmenting paths; returns, per update index, its original.
fn maximum_matching(edges: &[Vec<(usize, Vec<Difference>)>], right: usize) -> Vec<Option<usize>> {
    fn augment(
        i: usize,
        edges: &[Vec<(usize, Vec<Difference>)>],
        seen: &mut [bool],
        owner: &mut [Option<usize>],
    ) -> bool {
        for (j, _) in &edges[i] {
            if seen[*j] {
                continue;
            }
            seen[*j] = true;
            if owner[*j].is_none_or(|k| augment(k, edges, seen, owner)) {
                owner[*j] = Some(i);
                return true;
            }
        }
        false
    }
    let mut owner = vec![None; right];
    for i in 0..edges.len() {
        let mut seen = vec![false; right];
        augment(i, edges, &mut seen, &mut owner);
    }
    owner
}

/// The differences between `original` and `update` (each incompatible one is what makes
/// the update unable to read what the original allowed).
pub(crate) fn compare(
    original: &Model,
    update: &Model,
    budget: &mut Budget,
) -> Result<Vec<Difference>, BudgetExhausted> {
    let mut shared = Shared {
        in_progress: HashSet::new(),
        budget: std::mem::replace(budget, Budget::unlimited()),
        exhausted: None,
    };
    let mut ctx = Ctx {
        path: Vec::new(),
        diffs: Vec::new(),
        shared: &mut shared,
    };
    ctx.compare(
        Side {
            model: original,
            id: original.root,
        },
        Side {
            model: update,
            id: update.root,
        },
    );
    let diffs = ctx.diffs;
    *budget = shared.budget;
    match shared.exhausted {
        Some(e) => Err(e),
        None => Ok(diffs),
    }
}

/// An earlier version a new JSON schema is checked against.
pub(crate) struct Previous<'a> {
    pub version: u32,
    pub schema_text: &'a str,
    pub model: &'a Model,
}

/// Checks `new` against `previous` (newest first) under `level` as Confluent does: per
/// version, FORWARD's messages (the old schema reading) then BACKWARD's (the new one
/// reading), each with the old version and schema; a transitive check stops at the first
/// incompatible version.
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
        let mut report = |diffs: Vec<Difference>, reader: &str, writer: &str| {
            let incompatible: Vec<&Difference> =
                diffs.iter().filter(|d| !d.kind.compatible()).collect();
            for d in incompatible.iter().take(max_reported) {
                messages.push(d.message(reader, writer));
            }
            if incompatible.len() > max_reported {
                messages.push(format!(
                    "{{truncated: 'only the first {max_reported} incompatibilities are listed'}}"
                ));
            }
        };
        if level.forward() {
            report(
                compare(new, old.model, budget).map_err(too_complex)?,
                "old",
                "new",
            );
        }
        if level.backward() {
            report(
                compare(old.model, new, budget).map_err(too_complex)?,
                "new",
                "old",
            );
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
    use serde_json::{Value, json};

    fn model(v: Value) -> Model {
        Model::build(&v, "mem://input/", &[]).unwrap()
    }

    /// The incompatible differences of reading `original`'s data with `update`.
    fn incompatible(original: Value, update: Value) -> Vec<(DiffType, String)> {
        compare(&model(original), &model(update), &mut Budget::unlimited())
            .unwrap()
            .into_iter()
            .filter(|d| !d.kind.compatible())
            .map(|d| (d.kind, d.path))
            .collect()
    }

    fn kinds(original: Value, update: Value) -> Vec<DiffType> {
        incompatible(original, update)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    fn object(properties: Value, extra: Value) -> Value {
        let mut o = json!({"type": "object", "properties": properties});
        if let (Some(o), Some(extra)) = (o.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                o.insert(k.clone(), v.clone());
            }
        }
        o
    }

    #[test]
    fn property_added_to_open_model_is_incompatible_and_to_closed_is_not() {
        let open = object(json!({"a": {"type": "string"}}), json!({}));
        let open_added = object(
            json!({"a": {"type": "string"}, "b": {"type": "integer"}}),
            json!({}),
        );
        assert_eq!(
            incompatible(open.clone(), open_added.clone()),
            vec![(
                OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL,
                "#/properties/b".to_string()
            )]
        );
        let closed = object(
            json!({"a": {"type": "string"}}),
            json!({"additionalProperties": false}),
        );
        let closed_added = object(
            json!({"a": {"type": "string"}, "b": {"type": "integer"}}),
            json!({"additionalProperties": false}),
        );
        assert!(kinds(closed.clone(), closed_added.clone()).is_empty());
        let required_added = object(
            json!({"a": {"type": "string"}, "b": {"type": "integer"}}),
            json!({"additionalProperties": false, "required": ["b"]}),
        );
        assert_eq!(
            kinds(closed.clone(), required_added),
            vec![REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL]
        );
        // Removing: fine into an open model, not from a closed one.
        assert!(kinds(open_added, open).is_empty());
        assert_eq!(
            kinds(closed_added, closed),
            vec![PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL]
        );
    }

    #[test]
    fn partially_open_model_covers_matching_properties() {
        let partial = object(
            json!({"a": {"type": "string"}}),
            json!({"additionalProperties": {"type": "string"}}),
        );
        let added_string = object(
            json!({"a": {"type": "string"}, "b": {"type": "string"}}),
            json!({"additionalProperties": {"type": "string"}}),
        );
        let added_int = object(
            json!({"a": {"type": "string"}, "b": {"type": "integer"}}),
            json!({"additionalProperties": {"type": "string"}}),
        );
        assert!(kinds(partial.clone(), added_string).is_empty());
        assert!(
            kinds(partial, added_int)
                .contains(&PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL)
        );
    }

    #[test]
    fn types_widen_one_way() {
        let int = json!({"type": "integer"});
        let num = json!({"type": "number"});
        assert!(kinds(int.clone(), num.clone()).is_empty());
        assert_eq!(kinds(num, int), vec![TYPE_NARROWED]);
        assert_eq!(
            kinds(json!({"type": "string"}), json!({"type": "boolean"})),
            vec![TYPE_CHANGED]
        );
        // A union gaining a branch reads the old data; losing one does not.
        let s = json!({"type": "string"});
        let sn = json!({"type": ["string", "null"]});
        assert!(kinds(s.clone(), sn.clone()).is_empty());
        assert_eq!(kinds(sn, s), vec![TYPE_CHANGED]);
    }

    #[test]
    fn bounds_may_only_loosen() {
        let s = |extra: Value| object(json!({"a": extra}), json!({"additionalProperties": false}));
        assert!(
            kinds(
                s(json!({"type": "string", "maxLength": 5})),
                s(json!({"type": "string", "maxLength": 10}))
            )
            .is_empty()
        );
        assert_eq!(
            incompatible(
                s(json!({"type": "string", "maxLength": 10})),
                s(json!({"type": "string", "maxLength": 5}))
            ),
            vec![(MAX_LENGTH_DECREASED, "#/properties/a/maxLength".to_string())]
        );
        assert_eq!(
            kinds(
                s(json!({"type": "integer"})),
                s(json!({"type": "integer", "minimum": 0}))
            ),
            vec![MINIMUM_ADDED]
        );
        assert!(
            kinds(
                s(json!({"type": "integer", "minimum": 0})),
                s(json!({"type": "integer", "minimum": -5}))
            )
            .is_empty()
        );
        assert_eq!(
            kinds(
                s(json!({"type": "array", "items": {"type": "string"}})),
                s(json!({"type": "array", "items": {"type": "string"}, "maxItems": 3}))
            ),
            vec![MAX_ITEMS_ADDED]
        );
    }

    #[test]
    fn enums_may_only_grow() {
        let e = |values: Value| json!({"enum": values});
        assert!(kinds(e(json!(["a", "b"])), e(json!(["a", "b", "c"]))).is_empty());
        assert_eq!(
            kinds(e(json!(["a", "b"])), e(json!(["a"]))),
            vec![ENUM_ARRAY_NARROWED]
        );
        assert_eq!(
            kinds(e(json!(["a", "b"])), e(json!(["a", "c"]))),
            vec![ENUM_ARRAY_CHANGED]
        );
    }

    #[test]
    fn required_may_be_dropped_and_added_only_with_default() {
        let base = |required: Value, b: Value| {
            object(
                json!({"a": {"type": "string"}, "b": b}),
                json!({"required": required, "additionalProperties": false}),
            )
        };
        let plain = json!({"type": "string"});
        let with_default = json!({"type": "string", "default": "x"});
        assert!(
            kinds(
                base(json!(["a", "b"]), plain.clone()),
                base(json!(["a"]), plain.clone())
            )
            .is_empty()
        );
        assert_eq!(
            incompatible(
                base(json!(["a"]), plain.clone()),
                base(json!(["a", "b"]), plain)
            ),
            vec![(REQUIRED_ATTRIBUTE_ADDED, "#/required/b".to_string())]
        );
        assert!(
            kinds(
                base(json!(["a"]), with_default.clone()),
                base(json!(["a", "b"]), with_default)
            )
            .is_empty()
        );
    }

    #[test]
    fn closing_an_open_model_is_incompatible() {
        let open = object(json!({"a": {"type": "string"}}), json!({}));
        let closed = object(
            json!({"a": {"type": "string"}}),
            json!({"additionalProperties": false}),
        );
        assert_eq!(
            kinds(open.clone(), closed.clone()),
            vec![ADDITIONAL_PROPERTIES_REMOVED]
        );
        assert!(kinds(closed, open).is_empty());
    }

    #[test]
    fn combined_schemas_match_subschemas() {
        let one = |subs: Value| json!({"oneOf": subs});
        let s = json!({"type": "string"});
        let i = json!({"type": "integer"});
        let b = json!({"type": "boolean"});
        assert!(kinds(one(json!([s, i])), one(json!([s, i, b]))).is_empty());
        assert_eq!(
            kinds(one(json!([s, i, b])), one(json!([s, i]))),
            vec![SUM_TYPE_NARROWED]
        );
        assert_eq!(
            kinds(one(json!([s, i])), one(json!([s, b]))),
            vec![COMBINED_TYPE_SUBSCHEMAS_CHANGED]
        );
        // oneOf to anyOf extends; anyOf to allOf changes.
        assert!(kinds(one(json!([s, i])), json!({"anyOf": [s, i]})).is_empty());
        assert_eq!(
            kinds(json!({"anyOf": [s, i]}), json!({"allOf": [s, i]})),
            vec![COMBINED_TYPE_CHANGED]
        );
        // allOf gaining a member constrains more.
        assert_eq!(
            kinds(
                json!({"allOf": [s]}),
                json!({"allOf": [s, {"maxLength": 3}]})
            ),
            vec![PRODUCT_TYPE_EXTENDED]
        );
    }

    #[test]
    fn references_and_recursion_are_followed() {
        let tree = |leaf: &str| {
            json!({
                "definitions": {"node": {"type": "object", "properties": {
                    "value": {"type": leaf},
                    "children": {"type": "array", "items": {"$ref": "#/definitions/node"}}
                }}},
                "$ref": "#/definitions/node"
            })
        };
        assert!(kinds(tree("integer"), tree("integer")).is_empty());
        assert!(kinds(tree("integer"), tree("number")).is_empty());
        assert_eq!(
            incompatible(tree("number"), tree("integer")),
            vec![(TYPE_NARROWED, "#/properties/value".to_string())]
        );
    }

    #[test]
    fn messages_have_confluents_shape() {
        let old = model(object(json!({"a": {"type": "string"}}), json!({})));
        let new = model(object(
            json!({"a": {"type": "string"}, "b": {"type": "string"}}),
            json!({}),
        ));
        let prev = [Previous {
            version: 1,
            schema_text: "{}",
            model: &old,
        }];
        let m = check_level(Level::Backward, &new, &prev, &mut Budget::unlimited(), 100).unwrap();
        assert_eq!(
            m[0],
            "{errorType:\"OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL\", description:\"The new schema has an open content model and has a property or item at path '#/properties/b' which is missing in the old schema\"}"
        );
        assert_eq!(m[1], "{oldSchemaVersion: 1}");
        assert_eq!(m[3], "{validateFields: 'false', compatibility: 'BACKWARD'}");
        assert!(
            check_level(Level::Forward, &new, &prev, &mut Budget::unlimited(), 100)
                .unwrap()
                .is_empty()
        );
        let m = check_level(
            Level::Full,
            &old,
            &[Previous {
                version: 2,
                schema_text: "{}",
                model: &new,
            }],
            &mut Budget::unlimited(),
            100,
        )
        .unwrap();
        assert!(
            m[0].contains("The old schema has an open content model"),
            "{m:?}"
        );
    }

    #[test]
    fn budget_bounds_combined_cross_products() {
        // Nested anyOfs multiply the pairs compared.
        let mut v = json!({"type": "string"});
        for _ in 0..8 {
            v = json!({"anyOf": [v.clone(), {"anyOf": [v.clone(), {"type": "null"}]}, {"type": "integer"}]});
        }
        let m = model(v);
        let err = compare(&m, &m, &mut Budget::new(10_000, usize::MAX)).unwrap_err();
        assert_eq!(err, BudgetExhausted::Comparisons(10_000));
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;
    use serde_json::{Value, json};

    /// A chain of `n` definitions, each an object whose `next` is the following one.
    fn chain(n: usize, leaf: &str) -> Value {
        let mut defs = serde_json::Map::new();
        for i in 0..n {
            let next = if i + 1 < n {
                json!({"$ref": format!("#/definitions/d{}", i + 1)})
            } else {
                json!({"type": leaf})
            };
            defs.insert(
                format!("d{i}"),
                json!({"type": "object", "properties": {"next": next}}),
            );
        }
        json!({"definitions": defs, "$ref": "#/definitions/d0"})
    }

    #[test]
    fn the_deepest_accepted_chain_is_compared_on_a_small_stack() {
        // Deeper than the model allows is refused when parsed, not overflowed when compared.
        assert!(Model::build(&chain(200, "string"), "mem://input/", &[]).is_err());
        let old = Model::build(&chain(60, "integer"), "mem://input/", &[]).unwrap();
        let new = Model::build(&chain(60, "string"), "mem://input/", &[]).unwrap();
        let diffs = std::thread::Builder::new()
            .stack_size(512 * 1024)
            .spawn(move || compare(&old, &new, &mut Budget::unlimited()).unwrap())
            .unwrap()
            .join()
            .unwrap();
        assert!(diffs.iter().any(|d| d.kind == TYPE_CHANGED), "{diffs:?}");
    }
}
