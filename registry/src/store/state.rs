//! The registry's state in memory, as the replay of its events: every global schema id ever
//! assigned, the versions of every subject (soft-deleted ones flagged), and the configured
//! compatibility levels and modes. Only [`State::apply`] changes it.
//!
//! Schema ids are numbered per context (see `context.rs`): a stored schema is known by its
//! [`Gid`], the context's number here and the id within it. Subjects are kept by their
//! qualified name (`:.ctx:s`, or `s` in the default context).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::compat::Level;
use crate::context::{self, DEFAULT_CONTEXT};
use crate::mode::Mode;
use crate::store::{Contract, Event, SchemaContent};

/// A schema id in its context: the context's number in this state (0 the default context,
/// others in order of first appearance in the log) and the id clients see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Gid {
    pub context: u32,
    pub id: u32,
}

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VersionState {
    pub id: Gid,
    pub deleted: bool,
}

/// The state replayed from the schema log.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Every id ever assigned, with its schema.
    pub schemas: HashMap<Gid, Arc<SchemaContent>>,
    /// Identity of a schema (normalized form and references) in a context to its id.
    pub identities: HashMap<(u32, String), Gid>,
    /// Subject name to its versions.
    pub subjects: BTreeMap<String, BTreeMap<u32, VersionState>>,
    /// The global compatibility level, if set (else the default, BACKWARD).
    pub global_level: Option<Level>,
    /// Per-subject compatibility levels.
    pub subject_levels: HashMap<String, Level>,
    /// The global config's metadata and rules, if it names any.
    pub global_contract: Option<Contract>,
    /// Per-subject (and per-context, `:.ctx:`) configs' metadata and rules.
    pub subject_contracts: HashMap<String, Contract>,
    /// The global mode, if set (else READWRITE).
    pub global_mode: Option<Mode>,
    /// Per-subject modes.
    pub subject_modes: HashMap<String, Mode>,
    /// The highest id ever assigned, per context.
    max_ids: HashMap<u32, u32>,
    /// Id to the subject versions (live or soft-deleted) using it.
    uses: HashMap<Gid, BTreeSet<(String, u32)>>,
    /// The contexts other than the default one, numbered from 1 in this order.
    contexts: Vec<String>,
}

impl State {
    /// Applies one event; false when it is refused (a known schema id given another
    /// schema), and with it the rest of its record. Values that do not parse (written by a
    /// newer version, say) are skipped with a warning rather than failing the whole replay.
    pub(crate) fn apply(&mut self, event: &Event) -> bool {
        match event {
            Event::SchemaId(content) => {
                let gid = self.gid_interning(&content.context, content.id);
                self.note_id(gid);
                match self.schemas.get(&gid) {
                    // Records are applied once each, but the same schema may come again
                    // (Confluent repeats it with every version using it).
                    Some(known) if known.schema == content.schema => {}
                    // As Confluent: an id already standing for another schema keeps it.
                    Some(_) => {
                        tracing::warn!(
                            id = content.id,
                            "skipping a record that gives a known schema id another schema"
                        );
                        return false;
                    }
                    None => {
                        self.schemas.insert(gid, Arc::new(content.clone()));
                    }
                }
            }
            Event::Version(v) => {
                let gid = self.gid_interning(context::context_of(&v.subject), v.id);
                self.note_id(gid);
                let previous = self.subjects.entry(v.subject.clone()).or_default().insert(
                    v.version,
                    VersionState {
                        id: gid,
                        deleted: v.deleted,
                    },
                );
                if let Some(previous) = previous.filter(|p| p.id != gid) {
                    self.forget_use(previous.id, &v.subject, v.version);
                }
                self.uses
                    .entry(gid)
                    .or_default()
                    .insert((v.subject.clone(), v.version));
            }
            Event::SubjectDeleted { subject, version } => {
                if let Some(versions) = self.subjects.get_mut(subject) {
                    for (_, v) in versions.range_mut(..=*version) {
                        v.deleted = true;
                    }
                }
            }
            Event::VersionGone { subject, version } => {
                let Some(versions) = self.subjects.get_mut(subject) else {
                    return true;
                };
                let gone = versions.remove(version);
                if versions.is_empty() {
                    self.subjects.remove(subject);
                }
                if let Some(gone) = gone {
                    self.forget_use(gone.id, subject, *version);
                }
            }
            Event::Config {
                subject,
                level,
                contract,
            } => {
                let level = match level.as_deref().map(str::parse::<Level>) {
                    Some(Ok(level)) => Some(level),
                    Some(Err(e)) => {
                        tracing::warn!(%e, "skipping a config record");
                        return true;
                    }
                    None => None,
                };
                match (subject, contract.is_empty()) {
                    (None, true) => self.global_contract = None,
                    (None, false) => self.global_contract = Some(contract.clone()),
                    (Some(s), true) => {
                        self.subject_contracts.remove(s);
                    }
                    (Some(s), false) => {
                        self.subject_contracts.insert(s.clone(), contract.clone());
                    }
                }
                match (subject, level) {
                    (None, level) => self.global_level = level,
                    (Some(s), Some(level)) => {
                        self.subject_levels.insert(s.clone(), level);
                    }
                    (Some(s), None) => {
                        self.subject_levels.remove(s);
                    }
                }
            }
            Event::Context { context } => {
                self.gid_interning(context, 0);
            }
            Event::Mode { subject, mode } => {
                let mode = match mode.as_deref().map(str::parse::<Mode>) {
                    Some(Ok(mode)) => Some(mode),
                    Some(Err(e)) => {
                        tracing::warn!(%e, "skipping a mode record");
                        return true;
                    }
                    None => None,
                };
                match (subject, mode) {
                    (None, mode) => self.global_mode = mode,
                    (Some(s), Some(mode)) => {
                        self.subject_modes.insert(s.clone(), mode);
                    }
                    (Some(s), None) => {
                        self.subject_modes.remove(s);
                    }
                }
            }
        }
        true
    }

    /// The number of a context, if the state has seen it.
    pub(crate) fn context_number(&self, name: &str) -> Option<u32> {
        if name == DEFAULT_CONTEXT {
            return Some(0);
        }
        self.contexts
            .iter()
            .position(|c| c == name)
            .map(|ix| ix as u32 + 1)
    }

    /// The id `id` of the context `name`, if the state has seen that context.
    pub(crate) fn gid(&self, name: &str, id: u32) -> Option<Gid> {
        self.context_number(name).map(|context| Gid { context, id })
    }

    fn gid_interning(&mut self, name: &str, id: u32) -> Gid {
        let context = match self.context_number(name) {
            Some(n) => n,
            None => {
                self.contexts.push(name.to_string());
                self.contexts.len() as u32
            }
        };
        Gid { context, id }
    }

    fn note_id(&mut self, gid: Gid) {
        let max = self.max_ids.entry(gid.context).or_default();
        *max = (*max).max(gid.id);
    }

    /// The highest id ever assigned in a context (0 when none).
    pub(crate) fn max_id(&self, context: &str) -> u32 {
        self.context_number(context)
            .and_then(|n| self.max_ids.get(&n).copied())
            .unwrap_or(0)
    }

    /// The contexts holding a subject, the default one always, sorted.
    pub(crate) fn context_names(&self) -> Vec<String> {
        let mut names: BTreeSet<&str> = BTreeSet::from([DEFAULT_CONTEXT]);
        for subject in self.subjects.keys() {
            names.insert(context::context_of(subject));
        }
        names.into_iter().map(str::to_string).collect()
    }

    fn forget_use(&mut self, id: Gid, subject: &str, version: u32) {
        if let Some(uses) = self.uses.get_mut(&id) {
            uses.remove(&(subject.to_string(), version));
            if uses.is_empty() {
                self.uses.remove(&id);
            }
        }
    }

    /// The versions of a subject that are not soft-deleted, oldest first.
    pub(crate) fn live_versions(&self, subject: &str) -> Vec<(u32, Gid)> {
        self.subjects
            .get(subject)
            .map(|vs| {
                vs.iter()
                    .filter(|(_, v)| !v.deleted)
                    .map(|(n, v)| (*n, v.id))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether some subject version (live or soft-deleted) uses this id.
    pub(crate) fn id_in_use(&self, id: Gid) -> bool {
        self.uses.contains_key(&id)
    }

    /// Subject versions (live, or all with `deleted`) using this id.
    pub(crate) fn versions_of_id(&self, id: Gid, deleted: bool) -> Vec<(String, u32)> {
        let Some(uses) = self.uses.get(&id) else {
            return Vec::new();
        };
        uses.iter()
            .filter(|(subject, version)| {
                deleted
                    || self
                        .subjects
                        .get(subject)
                        .and_then(|vs| vs.get(version))
                        .is_some_and(|v| !v.deleted)
            })
            .cloned()
            .collect()
    }

    /// Live subject versions whose schema references `subject` at `version` (an
    /// unqualified reference naming a subject of the referrer's context).
    pub(crate) fn referenced_by(&self, subject: &str, version: u32) -> Vec<Gid> {
        let mut ids: Vec<Gid> = Vec::new();
        for (referrer, vs) in &self.subjects {
            for v in vs.values().filter(|v| !v.deleted) {
                let Some(content) = self.schemas.get(&v.id) else {
                    continue;
                };
                let refers = content.references.iter().any(|r| {
                    r.version == version
                        && context::qualify_reference(referrer, &r.subject) == subject
                });
                if refers && !ids.contains(&v.id) {
                    ids.push(v.id);
                }
            }
        }
        ids.sort_unstable();
        ids
    }

    /// The compatibility level that applies to a subject: its own, else its context's
    /// (set on `:.ctx:`), else the global one.
    pub(crate) fn level_for(&self, subject: &str) -> Level {
        self.subject_levels
            .get(subject)
            .or_else(|| self.subject_levels.get(&context_key(subject)))
            .copied()
            .or(self.global_level)
            .unwrap_or(Level::Backward)
    }

    /// The metadata and rules of the config that applies to a subject: its own config's if
    /// that names any, else its context's, else the global one's.
    pub(crate) fn contract_for(&self, subject: &str) -> Option<&Contract> {
        self.subject_contracts
            .get(subject)
            .or_else(|| self.subject_contracts.get(&context_key(subject)))
            .or(self.global_contract.as_ref())
    }

    /// The mode that applies to a subject: its own, else its context's, else the global one.
    pub(crate) fn mode_for(&self, subject: &str) -> Mode {
        self.subject_modes
            .get(subject)
            .or_else(|| self.subject_modes.get(&context_key(subject)))
            .copied()
            .or(self.global_mode)
            .unwrap_or(Mode::ReadWrite)
    }
}

/// The name under which a subject's context keeps its config and mode (`:.ctx:`); in the
/// default context, the empty name, which no subject has, so that the global one applies.
fn context_key(subject: &str) -> String {
    context::qualify(context::context_of(subject), "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::VersionValue;

    fn version(subject: &str, version: u32, id: u32, deleted: bool) -> Event {
        Event::Version(VersionValue {
            subject: subject.into(),
            version,
            id,
            deleted,
        })
    }

    #[test]
    fn replay_keeps_ids_after_hard_delete() {
        let mut state = State::default();
        for event in [
            Event::SchemaId(SchemaContent {
                context: ".".into(),
                id: 1,
                schema: "\"int\"".into(),
                schema_type: None,
                references: vec![],
                metadata: None,
                rule_set: None,
            }),
            version("s", 1, 1, false),
            version("s", 1, 1, true),
            Event::VersionGone {
                subject: "s".into(),
                version: 1,
            },
        ] {
            state.apply(&event);
        }
        assert!(state.subjects.is_empty());
        assert_eq!(state.max_id("."), 1);
        let gid = Gid { context: 0, id: 1 };
        assert!(!state.id_in_use(gid));
        assert!(state.schemas.contains_key(&gid));
    }

    #[test]
    fn subject_config_overrides_global_and_falls_back_when_removed() {
        let mut state = State::default();
        assert_eq!(state.level_for("s"), Level::Backward);
        state.apply(&Event::Config {
            subject: None,
            level: Some("FULL".into()),
            contract: Contract::default(),
        });
        state.apply(&Event::Config {
            subject: Some("s".into()),
            level: Some("NONE".into()),
            contract: Contract::default(),
        });
        assert_eq!(state.level_for("s"), Level::None);
        assert_eq!(state.level_for("t"), Level::Full);
        state.apply(&Event::Config {
            subject: Some("s".into()),
            level: None,
            contract: Contract::default(),
        });
        assert_eq!(state.level_for("s"), Level::Full);
    }

    #[test]
    fn an_id_is_in_use_until_its_last_version_is_permanently_deleted() {
        let mut state = State::default();
        state.apply(&version("a", 1, 5, false));
        state.apply(&version("b", 1, 5, false));
        state.apply(&version("b", 1, 5, true));
        let five = Gid { context: 0, id: 5 };
        assert_eq!(
            state.versions_of_id(five, false),
            vec![("a".to_string(), 1)]
        );
        assert_eq!(state.versions_of_id(five, true).len(), 2);
        state.apply(&Event::VersionGone {
            subject: "a".into(),
            version: 1,
        });
        assert!(
            state.id_in_use(five),
            "b's soft-deleted version still uses it"
        );
        state.apply(&Event::VersionGone {
            subject: "b".into(),
            version: 1,
        });
        assert!(!state.id_in_use(five));
        assert!(state.versions_of_id(five, true).is_empty());
    }
}
