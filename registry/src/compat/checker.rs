//! Avro's reader/writer resolution rules as a compatibility check: can data written with the
//! writer schema be read with the reader schema? This follows the Apache Avro reference
//! checker (`ReaderWriterCompatibilityChecker`, in Java and in the Python `avro` package)
//! rule for rule, including how it memoizes pairs of nodes so that recursive types end (a
//! pair met again while it is still being checked counts as compatible), and reports every
//! incompatibility with its type, a message and a JSON-pointer-like location.
//!
//! The reference checker's memo keeps, for every pair of nodes, its whole result: every
//! incompatibility below the pair with its location string, copied again into every pair
//! above that meets it. On a union of records that refer to each other that is cubic in the
//! schema size (a 57 KB schema needed tens of GB). This checker gets the same verdicts and the
//! same messages in two passes instead:
//!
//! 1. *Verdicts.* An iterative walk (no recursion, so a deep schema cannot overflow a stack)
//!    visits the pairs in the reference checker's order and memoizes, per pair, only whether
//!    it is compatible and the pair and step it was first reached from. The few calls that
//!    met a pair still in progress are remembered, because the reference checker saw
//!    "compatible" there whatever the pair's final verdict. Every visit is charged to a
//!    [`Budget`], so one request can only do a bounded amount of work.
//! 2. *Messages.* Only when the root is incompatible, the incompatibilities are listed by
//!    replaying the rules of the pairs whose results the reference checker would have merged,
//!    depth first, stopping after the requested number; locations are rebuilt from the
//!    first-reached-from chain, since a memoized result carries the location where its pair
//!    was first met.
//!
//! `apache-avro`'s own `schema_compatibility` answers only yes or no, without the location
//! or the rule, and differs from the reference checker on aliases, enum defaults and union
//! cases; the differential test in `tests/interop/registry/` holds this one to the reference,
//! and the property tests below hold it to the unbounded transcription in `oracle.rs`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use super::model::{Field, Graph, Named, Node, NodeId};

/// The rule a reader/writer pair broke, named as in the Avro reference checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IncompatibilityType {
    NameMismatch,
    FixedSizeMismatch,
    MissingEnumSymbols,
    ReaderFieldMissingDefaultValue,
    TypeMismatch,
    MissingUnionBranch,
}

impl IncompatibilityType {
    /// The upper-case name Confluent prints (`READER_FIELD_MISSING_DEFAULT_VALUE`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::NameMismatch => "NAME_MISMATCH",
            Self::FixedSizeMismatch => "FIXED_SIZE_MISMATCH",
            Self::MissingEnumSymbols => "MISSING_ENUM_SYMBOLS",
            Self::ReaderFieldMissingDefaultValue => "READER_FIELD_MISSING_DEFAULT_VALUE",
            Self::TypeMismatch => "TYPE_MISMATCH",
            Self::MissingUnionBranch => "MISSING_UNION_BRANCH",
        }
    }
}

impl fmt::Display for IncompatibilityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Incompatibility {
    pub kind: IncompatibilityType,
    /// What was found: the field name, the missing symbols, the types involved.
    pub message: String,
    /// Where in the reader schema, e.g. `/fields/1/type`.
    pub location: String,
}

/// How much checking one request may do: its time, counted in comparisons (one per pair of
/// schema nodes visited, memoized or not, one per record field and one per enum symbol
/// looked at), shared by every check of the request; and the memory of one check, counted
/// in the pairs of nodes its memo holds (about 30 bytes each).
#[derive(Debug)]
pub(crate) struct Budget {
    left: u64,
    comparisons: u64,
    pairs: usize,
}

impl Budget {
    /// A budget of `comparisons` in all, and `pairs` memoized pairs per check.
    pub(crate) fn new(comparisons: u64, pairs: usize) -> Budget {
        Budget {
            left: comparisons,
            comparisons,
            pairs,
        }
    }

    /// No bound, for tools and tests.
    pub(crate) fn unlimited() -> Budget {
        Budget::new(u64::MAX, usize::MAX)
    }

    /// Spends `units` comparisons, or says the budget ran out.
    pub(crate) fn spend(&mut self, units: u64) -> Result<(), BudgetExhausted> {
        match self.left.checked_sub(units) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.left = 0;
                Err(BudgetExhausted::Comparisons(self.comparisons))
            }
        }
    }
}

/// A check stopped because it needed more than its [`Budget`] allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BudgetExhausted {
    /// The request's comparisons ran out.
    #[error("more than {0} comparisons of schema nodes")]
    Comparisons(u64),
    /// The check's memo would have held more pairs.
    #[error("more than {0} pairs of schema nodes in memory")]
    Pairs(usize),
}

/// What a check found.
#[derive(Debug)]
pub(crate) struct Report {
    /// The incompatibilities, in the reference checker's order, at most the number asked
    /// for (empty when compatible).
    pub incompatibilities: Vec<Incompatibility>,
    /// Whether there were more than those listed.
    pub truncated: bool,
    /// How many pairs of nodes the memo held: the checker's memory is proportional to it.
    pub memo_pairs: usize,
}

/// Checks whether data written with `writer` can be read with `reader`, charging `budget`;
/// lists at most `max_reported` incompatibilities.
pub(crate) fn check(
    reader: &Graph,
    writer: &Graph,
    budget: &mut Budget,
    max_reported: usize,
) -> Result<Report, BudgetExhausted> {
    let fits = |g: &Graph| u32::try_from(g.nodes.len()).is_ok();
    if !fits(reader) || !fits(writer) {
        return Err(BudgetExhausted::Pairs(budget.pairs));
    }
    let mut checker = Checker {
        reader,
        writer,
        memo: PairMap::default(),
        pairs: Vec::new(),
        in_progress_hits: PairSet::default(),
        stack: Vec::new(),
        field_indexes: HashMap::new(),
        left: budget.left,
        comparisons: budget.comparisons,
        max_pairs: budget.pairs,
        work: 0,
    };
    let compatible = checker.verdicts();
    budget.left = checker.left;
    let memo_pairs = checker.pairs.len();
    if compatible? {
        return Ok(Report {
            incompatibilities: Vec::new(),
            truncated: false,
            memo_pairs,
        });
    }
    let (incompatibilities, truncated) = checker.list(max_reported);
    budget.left = checker.left;
    Ok(Report {
        incompatibilities,
        truncated,
        memo_pairs,
    })
}

/// Index of a pair of nodes in [`Checker::pairs`].
type PairId = u32;

/// The step from a pair to a pair below it, which the location of the lower one adds.
/// `ROOT` starts again at `/`, as the reference checker does for union branches.
type Step = u32;
const ROOT: Step = 0;
const ITEMS: Step = 1;
const VALUES: Step = 2;
/// Field `i` of a record is step `FIELD + i` (`/fields/i/type`).
const FIELD: Step = 3;

fn field_step(i: usize) -> Step {
    FIELD.saturating_add(u32::try_from(i).unwrap_or(u32::MAX))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    InProgress,
    Compatible,
    Incompatible,
}

/// What the memo keeps per pair: 12 bytes, whatever the schema.
#[derive(Debug, Clone, Copy)]
struct Pair {
    /// The pair this one was first reached from (unused when `step` is `ROOT`).
    parent: PairId,
    step: Step,
    verdict: Verdict,
}

/// The children still to visit of a pair being checked.
#[derive(Debug, Clone, Copy)]
enum Walk {
    /// Array items or map values: one child.
    Single { done: bool },
    /// Record fields, reader field `next` onwards.
    Fields { next: u32 },
    /// Every branch of the writer union, each against the whole reader.
    WriterBranches { next: u32 },
    /// Branches of the reader union against the whole writer until one is compatible.
    ReaderBranches { next: u32, found: bool },
}

/// A pair being checked, with the children it has still to visit: 24 bytes, since the
/// stack can be as deep as the pairs are many.
#[derive(Debug)]
struct Frame {
    pair: PairId,
    r: u32,
    w: u32,
    walk: Walk,
    ok: bool,
}

enum Next {
    Call(NodeId, NodeId, Step),
    Finish(bool),
}

enum Visit {
    /// The pair's verdict as the caller sees it.
    Seen(bool),
    /// The pair has children to visit: a frame was pushed.
    Pushed,
}

/// How a pair of nodes is compared, decided by their types as in the reference checker.
enum Rule<'a> {
    /// Same type: array items or map values.
    Single(NodeId, NodeId, Step),
    Fixed(&'a Named, u64, &'a Named, u64),
    Enum {
        reader: &'a Named,
        symbols: &'a [String],
        default: Option<&'a str>,
        writer: &'a Named,
        writer_symbols: &'a [String],
    },
    Record(&'a Named, &'a [Field], &'a Named, &'a [Field]),
    /// Two unions: every writer branch against the reader union.
    Unions(&'a [NodeId]),
    /// Same primitive type, or a promotion.
    Compatible,
    /// A writer union against a reader of another type: every branch.
    WriterUnion(&'a [NodeId]),
    /// A reader union against a writer of another type: the first branch that reads it.
    ReaderUnion(&'a [NodeId]),
    TypeMismatch,
}

/// One piece of a pair's list of incompatibilities, in the order the reference checker
/// merged them: one of its own, or the whole list of a pair below.
enum Entry {
    Own {
        kind: IncompatibilityType,
        message: String,
        extra: Extra,
    },
    Below(PairId, NodeId, NodeId),
}

/// What an incompatibility's location adds to its pair's.
#[derive(Debug, Clone, Copy)]
enum Extra {
    None,
    Token(&'static str),
    Index(usize),
    Field(usize),
}

/// A multiply-rotate hasher for the memo's keys, pairs of node indexes: several times
/// cheaper than the default SipHash, and flooding it needs a schema whose every pair is
/// charged to the budget anyway.
#[derive(Default, Clone, Copy)]
struct PairHasher(u64);

impl Hasher for PairHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u32(u32::from(*b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(n)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type PairMap<V> = HashMap<(u32, u32), V, BuildHasherDefault<PairHasher>>;
type PairSet = HashSet<(PairId, PairId), BuildHasherDefault<PairHasher>>;

/// Records with more writer fields than this get a name index while checked.
const INDEXED_FIELDS: usize = 8;

struct Checker<'a> {
    reader: &'a Graph,
    writer: &'a Graph,
    memo: PairMap<PairId>,
    pairs: Vec<Pair>,
    /// Calls `(caller, callee)` that met the callee still in progress, and so saw it
    /// compatible.
    in_progress_hits: PairSet,
    stack: Vec<Frame>,
    field_indexes: HashMap<NodeId, HashMap<&'a str, usize>>,
    /// What is left of the request's comparisons, and the limits.
    left: u64,
    comparisons: u64,
    max_pairs: usize,
    /// Comparisons charged by the verdict pass: the listing pass may always do as many.
    work: u64,
}

fn key(r: NodeId, w: NodeId) -> (u32, u32) {
    // Both graphs were checked to have fewer than 2^32 nodes.
    (r as u32, w as u32)
}

fn names_match(reader: &Named, writer: &Named) -> bool {
    reader.name == writer.name || reader.aliases.contains(&writer.fullname)
}

fn promotable(reader: &Node, writer: &Node) -> bool {
    matches!(
        (reader, writer),
        (Node::Long, Node::Int)
            | (Node::Float, Node::Int | Node::Long)
            | (Node::Double, Node::Int | Node::Long | Node::Float)
            | (Node::Bytes, Node::String)
            | (Node::String, Node::Bytes)
    )
}

/// The writer symbols the reader lacks, in writer order.
fn missing_symbols<'s>(reader: &[String], writer: &'s [String]) -> Vec<&'s String> {
    if reader.len() <= INDEXED_FIELDS {
        return writer.iter().filter(|s| !reader.contains(s)).collect();
    }
    let known: HashSet<&str> = reader.iter().map(String::as_str).collect();
    writer
        .iter()
        .filter(|s| !known.contains(s.as_str()))
        .collect()
}

impl<'a> Checker<'a> {
    fn rule(&self, r: NodeId, w: NodeId) -> Rule<'a> {
        let (reader, writer): (&'a Node, &'a Node) = (self.reader.node(r), self.writer.node(w));
        if reader.type_name() == writer.type_name() {
            return match (reader, writer) {
                (Node::Array(ri), Node::Array(wi)) => Rule::Single(*ri, *wi, ITEMS),
                (Node::Map(rv), Node::Map(wv)) => Rule::Single(*rv, *wv, VALUES),
                (
                    Node::Fixed {
                        named: rn,
                        size: rs,
                    },
                    Node::Fixed {
                        named: wn,
                        size: ws,
                    },
                ) => Rule::Fixed(rn, *rs, wn, *ws),
                (
                    Node::Enum {
                        named: rn,
                        symbols,
                        default,
                    },
                    Node::Enum {
                        named: wn,
                        symbols: writer_symbols,
                        ..
                    },
                ) => Rule::Enum {
                    reader: rn,
                    symbols,
                    default: default.as_deref(),
                    writer: wn,
                    writer_symbols,
                },
                (
                    Node::Record {
                        named: rn,
                        fields: rf,
                    },
                    Node::Record {
                        named: wn,
                        fields: wf,
                    },
                ) => Rule::Record(rn, rf, wn, wf),
                (Node::Union(_), Node::Union(wb)) => Rule::Unions(wb),
                // Primitives of the same type.
                _ => Rule::Compatible,
            };
        }
        if let Node::Union(branches) = writer {
            return Rule::WriterUnion(branches);
        }
        if promotable(reader, writer) {
            return Rule::Compatible;
        }
        if let Node::Union(branches) = reader {
            return Rule::ReaderUnion(branches);
        }
        Rule::TypeMismatch
    }

    /// The writer field a reader field reads: by name, else by one of its aliases.
    fn writer_field(
        &mut self,
        w: NodeId,
        writer_fields: &'a [Field],
        field: &Field,
    ) -> Option<usize> {
        if writer_fields.len() <= INDEXED_FIELDS {
            return writer_fields
                .iter()
                .position(|f| f.name == field.name)
                .or_else(|| {
                    field
                        .aliases
                        .iter()
                        .find_map(|alias| writer_fields.iter().position(|f| &f.name == alias))
                });
        }
        let index = self.field_indexes.entry(w).or_insert_with(|| {
            let mut index = HashMap::with_capacity(writer_fields.len());
            for (i, f) in writer_fields.iter().enumerate() {
                // The first field of a name wins, as a linear search would find it.
                index.entry(f.name.as_str()).or_insert(i);
            }
            index
        });
        index.get(field.name.as_str()).copied().or_else(|| {
            field
                .aliases
                .iter()
                .find_map(|alias| index.get(alias.as_str()).copied())
        })
    }

    fn charge(&mut self, units: u64) -> Result<(), BudgetExhausted> {
        self.work = self.work.saturating_add(units);
        match self.left.checked_sub(units) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => {
                self.left = 0;
                Err(BudgetExhausted::Comparisons(self.comparisons))
            }
        }
    }

    /// Pass 1: the verdict of every pair reached, in the reference checker's order.
    fn verdicts(&mut self) -> Result<bool, BudgetExhausted> {
        let (root_r, root_w) = (self.reader.root, self.writer.root);
        match self.visit(None, root_r, root_w, ROOT)? {
            Visit::Seen(ok) => return Ok(ok),
            Visit::Pushed => {}
        }
        loop {
            let Some(top) = self.stack.len().checked_sub(1) else {
                // The root's frame always finishes last and returns below.
                return Ok(false);
            };
            match self.advance(top)? {
                Next::Call(r, w, step) => {
                    let caller = self.stack[top].pair;
                    if let Visit::Seen(ok) = self.visit(Some(caller), r, w, step)? {
                        self.feed(ok);
                    }
                }
                Next::Finish(ok) => {
                    let Some(frame) = self.stack.pop() else {
                        return Ok(false);
                    };
                    self.pairs[frame.pair as usize].verdict = if ok {
                        Verdict::Compatible
                    } else {
                        Verdict::Incompatible
                    };
                    if self.stack.is_empty() {
                        return Ok(ok);
                    }
                    self.feed(ok);
                }
            }
        }
    }

    /// One call of the reference checker's `getCompatibility`.
    fn visit(
        &mut self,
        caller: Option<PairId>,
        r: NodeId,
        w: NodeId,
        step: Step,
    ) -> Result<Visit, BudgetExhausted> {
        self.charge(1)?;
        if let Some(&id) = self.memo.get(&key(r, w)) {
            return Ok(Visit::Seen(match self.pairs[id as usize].verdict {
                Verdict::InProgress => {
                    if let Some(caller) = caller {
                        self.in_progress_hits.insert((caller, id));
                    }
                    true
                }
                Verdict::Compatible => true,
                Verdict::Incompatible => false,
            }));
        }
        if self.pairs.len() + self.in_progress_hits.len() >= self.max_pairs {
            return Err(BudgetExhausted::Pairs(self.max_pairs));
        }
        let id = PairId::try_from(self.pairs.len())
            .map_err(|_| BudgetExhausted::Pairs(self.max_pairs))?;
        self.pairs.push(Pair {
            parent: caller.unwrap_or(0),
            step,
            verdict: Verdict::InProgress,
        });
        self.memo.insert(key(r, w), id);
        let (walk, ok) = match self.rule(r, w) {
            Rule::Single(..) => (Walk::Single { done: false }, true),
            Rule::Fixed(rn, rs, wn, ws) => {
                return Ok(self.settle(id, names_match(rn, wn) && rs == ws));
            }
            Rule::Enum {
                reader,
                symbols,
                default,
                writer,
                writer_symbols,
            } => {
                self.charge((symbols.len() + writer_symbols.len()) as u64)?;
                let covered = missing_symbols(symbols, writer_symbols).is_empty()
                    || default.is_some_and(|d| !d.is_empty() && symbols.iter().any(|s| s == d));
                return Ok(self.settle(id, names_match(reader, writer) && covered));
            }
            Rule::Record(rn, _, wn, _) => (Walk::Fields { next: 0 }, names_match(rn, wn)),
            Rule::Unions(_) | Rule::WriterUnion(_) => (Walk::WriterBranches { next: 0 }, true),
            Rule::ReaderUnion(_) => (
                Walk::ReaderBranches {
                    next: 0,
                    found: false,
                },
                false,
            ),
            Rule::Compatible => return Ok(self.settle(id, true)),
            Rule::TypeMismatch => return Ok(self.settle(id, false)),
        };
        self.stack.push(Frame {
            pair: id,
            r: key(r, w).0,
            w: key(r, w).1,
            walk,
            ok,
        });
        Ok(Visit::Pushed)
    }

    fn settle(&mut self, id: PairId, ok: bool) -> Visit {
        self.pairs[id as usize].verdict = if ok {
            Verdict::Compatible
        } else {
            Verdict::Incompatible
        };
        Visit::Seen(ok)
    }

    /// Gives the top frame the verdict its last call saw.
    fn feed(&mut self, ok: bool) {
        let Some(frame) = self.stack.last_mut() else {
            return;
        };
        match &mut frame.walk {
            Walk::ReaderBranches { found, .. } => {
                if ok {
                    *found = true;
                    frame.ok = true;
                }
            }
            _ => frame.ok &= ok,
        }
    }

    /// The top frame's next call, or its verdict when it has none left.
    fn advance(&mut self, top: usize) -> Result<Next, BudgetExhausted> {
        let (r, w) = (self.stack[top].r as NodeId, self.stack[top].w as NodeId);
        let rule = self.rule(r, w);
        match (self.stack[top].walk, rule) {
            (Walk::Single { done }, Rule::Single(ri, wi, step)) => {
                if done {
                    return Ok(Next::Finish(self.stack[top].ok));
                }
                self.stack[top].walk = Walk::Single { done: true };
                Ok(Next::Call(ri, wi, step))
            }
            (Walk::Fields { mut next }, Rule::Record(_, reader_fields, _, writer_fields)) => {
                while let Some(field) = reader_fields.get(next as usize) {
                    let i = next as usize;
                    next = next.saturating_add(1);
                    self.charge(1)?;
                    self.stack[top].walk = Walk::Fields { next };
                    match self.writer_field(w, writer_fields, field) {
                        Some(found) => {
                            return Ok(Next::Call(
                                field.ty,
                                writer_fields[found].ty,
                                field_step(i),
                            ));
                        }
                        None if field.has_default => {}
                        None if self.enum_with_default(field.ty) => {
                            return Ok(Next::Call(field.ty, w, field_step(i)));
                        }
                        None => self.stack[top].ok = false,
                    }
                }
                Ok(Next::Finish(self.stack[top].ok))
            }
            (
                Walk::WriterBranches { next },
                Rule::Unions(branches) | Rule::WriterUnion(branches),
            ) => match branches.get(next as usize) {
                Some(branch) => {
                    self.stack[top].walk = Walk::WriterBranches { next: next + 1 };
                    Ok(Next::Call(r, *branch, ROOT))
                }
                None => Ok(Next::Finish(self.stack[top].ok)),
            },
            (Walk::ReaderBranches { next, found }, Rule::ReaderUnion(branches)) => {
                if found {
                    return Ok(Next::Finish(true));
                }
                match branches.get(next as usize) {
                    Some(branch) => {
                        self.stack[top].walk = Walk::ReaderBranches {
                            next: next + 1,
                            found,
                        };
                        Ok(Next::Call(*branch, w, ROOT))
                    }
                    None => Ok(Next::Finish(false)),
                }
            }
            // A frame is only pushed with the walk of its pair's rule.
            _ => Ok(Next::Finish(self.stack[top].ok)),
        }
    }

    /// A reader field missing from the writer whose type is an enum with a default: the
    /// reference checker then compares the enum with the whole writer record, which always
    /// fails as a type mismatch; kept for agreement.
    fn enum_with_default(&self, ty: NodeId) -> bool {
        matches!(
            self.reader.node(ty),
            Node::Enum { default: Some(d), .. } if !d.is_empty()
        )
    }

    /// What a caller saw of a pair it called, after pass 1.
    fn seen(&self, caller: PairId, r: NodeId, w: NodeId) -> Option<(PairId, bool)> {
        let id = *self.memo.get(&key(r, w))?;
        if self.in_progress_hits.contains(&(caller, id)) {
            return Some((id, true));
        }
        Some((id, self.pairs[id as usize].verdict != Verdict::Incompatible))
    }

    /// The pieces of pair `id`'s list of incompatibilities, from its rule and what its calls
    /// saw in pass 1.
    /// Also returns its cost in comparisons.
    fn entries(&mut self, id: PairId, r: NodeId, w: NodeId) -> (Vec<Entry>, u64) {
        let mut out = Vec::new();
        let cost = match self.rule(r, w) {
            Rule::Record(_, fields, _, _) => fields.len(),
            Rule::Enum {
                symbols,
                writer_symbols,
                ..
            } => symbols.len() + writer_symbols.len(),
            Rule::Unions(branches) | Rule::WriterUnion(branches) | Rule::ReaderUnion(branches) => {
                branches.len()
            }
            _ => 0,
        };
        let cost = 1 + cost as u64;
        let below = |this: &Checker<'a>, out: &mut Vec<Entry>, cr: NodeId, cw: NodeId| {
            if let Some((child, false)) = this.seen(id, cr, cw) {
                out.push(Entry::Below(child, cr, cw));
            }
        };
        let name_mismatch = |out: &mut Vec<Entry>, rn: &Named, wn: &Named| {
            if !names_match(rn, wn) {
                out.push(Entry::Own {
                    kind: IncompatibilityType::NameMismatch,
                    message: format!("expected: {}", wn.fullname),
                    extra: Extra::Token("name"),
                });
            }
        };
        match self.rule(r, w) {
            Rule::Single(ri, wi, _) => {
                below(self, &mut out, ri, wi);
            }
            Rule::Fixed(rn, rs, wn, ws) => {
                name_mismatch(&mut out, rn, wn);
                if rs != ws {
                    out.push(Entry::Own {
                        kind: IncompatibilityType::FixedSizeMismatch,
                        message: format!("expected: {ws}, found: {rs}"),
                        extra: Extra::Token("size"),
                    });
                }
            }
            Rule::Enum {
                reader,
                symbols,
                default,
                writer,
                writer_symbols,
            } => {
                name_mismatch(&mut out, reader, writer);
                let missing = missing_symbols(symbols, writer_symbols);
                let default_covers =
                    default.is_some_and(|d| !d.is_empty() && symbols.iter().any(|s| s == d));
                if !missing.is_empty() && !default_covers {
                    let list: Vec<String> = missing.iter().map(|s| format!("'{s}'")).collect();
                    out.push(Entry::Own {
                        kind: IncompatibilityType::MissingEnumSymbols,
                        message: format!("[{}]", list.join(", ")),
                        extra: Extra::Token("symbols"),
                    });
                }
            }
            Rule::Record(rn, reader_fields, wn, writer_fields) => {
                name_mismatch(&mut out, rn, wn);
                for (i, field) in reader_fields.iter().enumerate() {
                    match self.writer_field(w, writer_fields, field) {
                        Some(found) => {
                            below(self, &mut out, field.ty, writer_fields[found].ty);
                        }
                        None if field.has_default => {}
                        None if self.enum_with_default(field.ty) => {
                            below(self, &mut out, field.ty, w);
                        }
                        None => out.push(Entry::Own {
                            kind: IncompatibilityType::ReaderFieldMissingDefaultValue,
                            message: field.name.clone(),
                            extra: Extra::Field(i),
                        }),
                    }
                }
            }
            Rule::Unions(branches) => {
                for (i, branch) in branches.iter().enumerate() {
                    if matches!(self.seen(id, r, *branch), Some((_, false))) {
                        out.push(Entry::Own {
                            kind: IncompatibilityType::MissingUnionBranch,
                            message: format!(
                                "reader union lacking writer type: {}",
                                self.writer.node(*branch).type_name().to_uppercase()
                            ),
                            extra: Extra::Index(i),
                        });
                    }
                }
            }
            Rule::Compatible => {}
            Rule::WriterUnion(branches) => {
                for branch in branches {
                    below(self, &mut out, r, *branch);
                }
            }
            Rule::ReaderUnion(branches) => {
                let read = branches
                    .iter()
                    .any(|branch| matches!(self.seen(id, *branch, w), Some((_, true))));
                if !read {
                    out.push(Entry::Own {
                        kind: IncompatibilityType::MissingUnionBranch,
                        message: format!(
                            "reader union lacking writer type {}",
                            self.writer.node(w).type_name()
                        ),
                        extra: Extra::None,
                    });
                }
            }
            Rule::TypeMismatch => out.push(Entry::Own {
                kind: IncompatibilityType::TypeMismatch,
                message: format!(
                    "reader type: {} not compatible with writer type: {}",
                    self.reader.node(r).type_name(),
                    self.writer.node(w).type_name()
                ),
                extra: Extra::None,
            }),
        }
        (out, cost)
    }

    /// The location of pair `id` where it was first reached, plus `extra`.
    fn location(&self, id: PairId, extra: Extra) -> String {
        let mut tokens: Vec<String> = match extra {
            Extra::None => Vec::new(),
            Extra::Token(t) => vec![t.to_string()],
            Extra::Index(i) => vec![i.to_string()],
            Extra::Field(i) => vec![i.to_string(), "fields".to_string()],
        };
        let mut at = id;
        loop {
            let pair = self.pairs[at as usize];
            match pair.step {
                ROOT => break,
                ITEMS => tokens.push("items".into()),
                VALUES => tokens.push("values".into()),
                field => {
                    tokens.push("type".into());
                    tokens.push((field - FIELD).to_string());
                    tokens.push("fields".into());
                }
            }
            at = pair.parent;
        }
        tokens.reverse();
        format!("/{}", tokens.join("/"))
    }

    /// Pass 2: the first `max` incompatibilities of the root's list, and whether there were
    /// more. Each pair's list is replayed from its rule only when it is reached, so the work
    /// is bounded by pass 1's.
    fn list(&mut self, max: usize) -> (Vec<Incompatibility>, bool) {
        let mut found = Vec::new();
        // Listing may use what is left of the budget, and at least as much as pass 1 did,
        // which is enough for the first incompatibility: the pairs down to it are distinct.
        let mut allowance = self.left.max(self.work);
        let (root, cost) = self.entries(0, self.reader.root, self.writer.root);
        allowance = allowance.saturating_sub(cost);
        self.left = self.left.saturating_sub(cost);
        let mut stack = vec![(0, root.into_iter())];
        while let Some((id, entries)) = stack.last_mut() {
            let id = *id;
            match entries.next() {
                None => {
                    stack.pop();
                }
                Some(Entry::Own {
                    kind,
                    message,
                    extra,
                }) => {
                    if found.len() == max {
                        return (found, true);
                    }
                    found.push(Incompatibility {
                        kind,
                        message,
                        location: self.location(id, extra),
                    });
                }
                Some(Entry::Below(child, r, w)) => {
                    if allowance == 0 {
                        return (found, true);
                    }
                    let (entries, cost) = self.entries(child, r, w);
                    allowance = allowance.saturating_sub(cost);
                    self.left = self.left.saturating_sub(cost);
                    stack.push((child, entries.into_iter()));
                }
            }
        }
        (found, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn graph(v: &Value) -> Graph {
        Graph::parse(v, &[]).unwrap()
    }

    fn unbounded(reader: &Graph, writer: &Graph) -> Report {
        check(reader, writer, &mut Budget::unlimited(), usize::MAX).unwrap()
    }

    /// The schema: a union of records `r0 … r(n-1)`, `r0` with one field of type
    /// `bottom`, each `r_i` with one field of type `r(i-1)`.
    pub(crate) fn chain(n: usize, bottom: &str) -> Value {
        let records: Vec<Value> = (0..n)
            .map(|i| {
                let ty = if i == 0 {
                    json!(bottom)
                } else {
                    json!(format!("r{}", i - 1))
                };
                json!({"type": "record", "name": format!("r{i}"), "fields": [{"name": "f", "type": ty}]})
            })
            .collect();
        Value::Array(records)
    }

    #[test]
    fn memo_keeps_one_small_entry_per_pair_on_the_record_chain() {
        // 12 bytes per pair whatever the schema (plus 12 in the hash map): the memo holds
        // verdicts, not messages. The old memo held every message below every pair.
        assert!(std::mem::size_of::<Pair>() <= 12);
        assert!(std::mem::size_of::<Frame>() <= 24);
        let n = 800;
        let (int, long) = (graph(&chain(n, "int")), graph(&chain(n, "long")));
        // Reading the long chain with the int one, every reader branch is tried against
        // every writer branch, and each pair is memoized once: n² pairs and a few more.
        let report = unbounded(&int, &long);
        assert_eq!(report.incompatibilities.len(), n);
        assert!(report.memo_pairs <= n * n + 4 * n, "{}", report.memo_pairs);
        // The other way round the diagonal reads, so only pairs (r_j, w_i) with j <= i.
        let report = unbounded(&long, &int);
        assert!(report.incompatibilities.is_empty());
        assert!(
            report.memo_pairs <= n * n / 2 + 4 * n,
            "{}",
            report.memo_pairs
        );
    }

    #[test]
    fn record_chain_reports_each_missing_union_branch_once() {
        let report = unbounded(&graph(&chain(3, "int")), &graph(&chain(3, "long")));
        let found: Vec<(&str, &str, &str)> = report
            .incompatibilities
            .iter()
            .map(|i| (i.kind.name(), i.location.as_str(), i.message.as_str()))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "MISSING_UNION_BRANCH",
                    "/0",
                    "reader union lacking writer type: RECORD"
                ),
                (
                    "MISSING_UNION_BRANCH",
                    "/1",
                    "reader union lacking writer type: RECORD"
                ),
                (
                    "MISSING_UNION_BRANCH",
                    "/2",
                    "reader union lacking writer type: RECORD"
                ),
            ]
        );
    }

    #[test]
    fn budget_stops_the_check_and_says_its_limit() {
        let (int, long) = (graph(&chain(200, "int")), graph(&chain(200, "long")));
        let err = check(&int, &long, &mut Budget::new(1000, usize::MAX), 10).unwrap_err();
        assert_eq!(err, BudgetExhausted::Comparisons(1000));
        assert_eq!(
            err.to_string(),
            "more than 1000 comparisons of schema nodes"
        );
        let err = check(&int, &long, &mut Budget::new(u64::MAX, 500), 10).unwrap_err();
        assert_eq!(err, BudgetExhausted::Pairs(500));
        // The comparisons are the request's: what one check used, the next cannot.
        let mut budget = Budget::new(200_000, 100_000);
        assert!(check(&int, &long, &mut budget, 10).is_ok());
        assert!(check(&int, &long, &mut budget, 10).is_err());
    }

    #[test]
    fn listing_stops_at_the_cap_and_says_so() {
        let report = check(
            &graph(&chain(50, "int")),
            &graph(&chain(50, "long")),
            &mut Budget::unlimited(),
            10,
        )
        .unwrap();
        assert_eq!(report.incompatibilities.len(), 10);
        assert!(report.truncated);
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        // 20 000 nested pairs on a test thread's small stack: the walk is iterative.
        let (int, long) = (graph(&chain(20_000, "int")), graph(&chain(20_000, "long")));
        let (int_root, long_root) = (int.nodes.len() - 2, long.nodes.len() - 2);
        let int = Graph {
            root: int_root,
            ..int
        };
        let long = Graph {
            root: long_root,
            ..long
        };
        let report = unbounded(&int, &long);
        assert_eq!(report.incompatibilities.len(), 1);
        let location = &report.incompatibilities[0].location;
        assert!(
            location.starts_with("/fields/0/type/fields/0/type/"),
            "{location}"
        );
        assert!(location.ends_with("/fields/0/type"), "{location}");
        assert_eq!(
            report.incompatibilities[0].kind,
            IncompatibilityType::TypeMismatch
        );
    }

    mod against_the_oracle {
        //! The bounded checker against the unbounded transcription of the reference checker,
        //! on random schemas drawn from small pools of names so that readers and writers share
        //! named types, recurse, alias and default the way real evolutions do.

        use super::*;
        use crate::compat::oracle;
        use proptest::prelude::*;

        fn xorshift(state: &mut u64) -> u64 {
            *state ^= *state >> 12;
            *state ^= *state << 25;
            *state ^= *state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        /// A random stream; with `mutation`, a given percentage of its draws come from a
        /// second stream, so that the schema drawn is a variation of the one drawn without.
        struct Rng {
            state: u64,
            mutation: Option<(u64, u64)>,
        }

        impl Rng {
            fn next(&mut self) -> u64 {
                let drawn = xorshift(&mut self.state);
                if let Some((state, percent)) = &mut self.mutation
                    && xorshift(state) % 100 < *percent
                {
                    return xorshift(state);
                }
                drawn
            }

            fn below(&mut self, n: u64) -> u64 {
                self.next() % n
            }

            fn chance(&mut self, percent: u64) -> bool {
                self.below(100) < percent
            }
        }

        const NAMES: [&str; 4] = ["A", "B", "C", "D"];
        const FIELDS: [&str; 4] = ["a", "b", "c", "d"];
        const SYMBOLS: [&str; 4] = ["S", "T", "U", "V"];
        const PRIMITIVES: [&str; 8] = [
            "null", "boolean", "int", "long", "float", "double", "bytes", "string",
        ];

        fn pick<'s>(rng: &mut Rng, from: &[&'s str]) -> &'s str {
            from[rng.below(from.len() as u64) as usize]
        }

        fn subset(rng: &mut Rng, from: &[&str]) -> Vec<Value> {
            from.iter()
                .filter(|_| rng.chance(60))
                .map(|s| json!(s))
                .collect()
        }

        fn schema(rng: &mut Rng, depth: u32, defined: &mut Vec<String>) -> Value {
            let leaf = depth == 0 || rng.chance(25);
            let choice = if leaf { rng.below(2) } else { rng.below(9) };
            match choice {
                0 => json!(pick(rng, &PRIMITIVES)),
                1 if !defined.is_empty() => {
                    json!(defined[rng.below(defined.len() as u64) as usize].clone())
                }
                1 => json!(pick(rng, &PRIMITIVES)),
                2 => json!({"type": "array", "items": schema(rng, depth - 1, defined)}),
                3 => json!({"type": "map", "values": schema(rng, depth - 1, defined)}),
                4 => {
                    let n = 1 + rng.below(3);
                    let branches: Vec<Value> =
                        (0..n).map(|_| schema(rng, depth - 1, defined)).collect();
                    Value::Array(branches)
                }
                kind => {
                    let name = pick(rng, &NAMES).to_string();
                    if defined.contains(&name) {
                        return json!(name);
                    }
                    defined.push(name.clone());
                    let mut named = match kind {
                        5 => {
                            let mut e = json!({"type": "enum", "name": name, "symbols": subset(rng, &SYMBOLS)});
                            if rng.chance(30) {
                                e["default"] = json!(pick(rng, &SYMBOLS));
                            }
                            e
                        }
                        6 => json!({"type": "fixed", "name": name, "size": 1 + rng.below(2)}),
                        _ => {
                            let n = rng.below(4);
                            let fields: Vec<Value> = (0..n)
                                .map(|_| {
                                    let mut f = json!({
                                        "name": pick(rng, &FIELDS),
                                        "type": schema(rng, depth - 1, defined),
                                    });
                                    if rng.chance(30) {
                                        f["default"] = Value::Null;
                                    }
                                    if rng.chance(20) {
                                        f["aliases"] = json!([pick(rng, &FIELDS)]);
                                    }
                                    f
                                })
                                .collect();
                            json!({"type": "record", "name": name, "fields": fields})
                        }
                    };
                    if rng.chance(20) {
                        named["aliases"] = json!([pick(rng, &NAMES)]);
                    }
                    named
                }
            }
        }

        fn generated(seed: u64) -> Graph {
            variation(seed, 0, 0)
        }

        /// The schema of `seed`, with `percent` of its random draws changed by `mutation`.
        fn variation(seed: u64, mutation: u64, percent: u64) -> Graph {
            let mut rng = Rng {
                state: seed | 1,
                mutation: (percent > 0).then_some((mutation | 1, percent)),
            };
            let value = schema(&mut rng, 5, &mut Vec::new());
            graph(&value)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn same_incompatibilities_in_the_same_order_as_the_reference(
                seed in any::<u64>(),
                mutation in any::<u64>(),
                percent in 0u64..20,
                reader_first in any::<bool>(),
            ) {
                let (a, b) = (generated(seed), variation(seed, mutation, percent));
                let (reader, writer) = if reader_first { (a, b) } else { (b, a) };
                let expected = oracle::check(&reader, &writer);
                let report = unbounded(&reader, &writer);
                prop_assert_eq!(&report.incompatibilities, &expected);
                prop_assert!(!report.truncated);
                let expected_self = oracle::check(&reader, &reader);
                prop_assert_eq!(unbounded(&reader, &reader).incompatibilities, expected_self);
            }

            #[test]
            fn same_verdicts_and_messages_on_unrelated_schemas(
                reader_seed in any::<u64>(),
                writer_seed in any::<u64>(),
            ) {
                let (reader, writer) = (generated(reader_seed), generated(writer_seed));
                prop_assert_eq!(
                    unbounded(&reader, &writer).incompatibilities,
                    oracle::check(&reader, &writer)
                );
            }

            #[test]
            fn a_capped_list_is_the_start_of_the_full_one(
                seed in any::<u64>(),
                mutation in any::<u64>(),
                percent in 0u64..20,
                cap in 0usize..4,
            ) {
                let (reader, writer) = (variation(seed, mutation, percent), generated(seed));
                let full = unbounded(&reader, &writer).incompatibilities;
                let capped = check(&reader, &writer, &mut Budget::unlimited(), cap).unwrap();
                prop_assert_eq!(&capped.incompatibilities[..], &full[..full.len().min(cap)]);
                prop_assert_eq!(capped.truncated, full.len() > cap);
            }
        }

        #[test]
        fn the_record_chain_agrees_with_the_reference() {
            for n in [1, 2, 5, 12] {
                let (int, long) = (graph(&chain(n, "int")), graph(&chain(n, "long")));
                assert_eq!(
                    unbounded(&int, &long).incompatibilities,
                    oracle::check(&int, &long)
                );
                assert_eq!(
                    unbounded(&long, &int).incompatibilities,
                    oracle::check(&long, &int)
                );
            }
        }
    }
}
