//! The registry's state in memory, as the replay of its events: every global schema id ever
//! assigned, the versions of every subject (soft-deleted ones flagged), and the configured
//! compatibility levels and modes. Only [`State::apply`] changes it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::compat::Level;
use crate::mode::Mode;
use crate::store::{Event, SchemaContent};

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VersionState {
    pub id: u32,
    pub deleted: bool,
}

/// The state replayed from the schema log.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Every id ever assigned, with its schema.
    pub schemas: HashMap<u32, Arc<SchemaContent>>,
    /// Identity of a schema (normalized form and references) to its id.
    pub identities: HashMap<String, u32>,
    /// Subject name to its versions.
    pub subjects: BTreeMap<String, BTreeMap<u32, VersionState>>,
    /// The global compatibility level, if set (else the default, BACKWARD).
    pub global_level: Option<Level>,
    /// Per-subject compatibility levels.
    pub subject_levels: HashMap<String, Level>,
    /// The global mode, if set (else READWRITE).
    pub global_mode: Option<Mode>,
    /// Per-subject modes.
    pub subject_modes: HashMap<String, Mode>,
    /// The highest id ever assigned.
    pub max_id: u32,
    /// Id to the subject versions (live or soft-deleted) using it.
    uses: HashMap<u32, BTreeSet<(String, u32)>>,
}

impl State {
    /// Applies one event; false when it is refused (a known schema id given another
    /// schema), and with it the rest of its record. Values that do not parse (written by a
    /// newer version, say) are skipped with a warning rather than failing the whole replay.
    pub(crate) fn apply(&mut self, event: &Event) -> bool {
        match event {
            Event::SchemaId(content) => {
                self.max_id = self.max_id.max(content.id);
                match self.schemas.get(&content.id) {
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
                        self.schemas.insert(content.id, Arc::new(content.clone()));
                    }
                }
            }
            Event::Version(v) => {
                self.max_id = self.max_id.max(v.id);
                let previous = self.subjects.entry(v.subject.clone()).or_default().insert(
                    v.version,
                    VersionState {
                        id: v.id,
                        deleted: v.deleted,
                    },
                );
                if let Some(previous) = previous.filter(|p| p.id != v.id) {
                    self.forget_use(previous.id, &v.subject, v.version);
                }
                self.uses
                    .entry(v.id)
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
            Event::Config { subject, level } => {
                let level = match level.as_deref().map(str::parse::<Level>) {
                    Some(Ok(level)) => Some(level),
                    Some(Err(e)) => {
                        tracing::warn!(%e, "skipping a config record");
                        return true;
                    }
                    None => None,
                };
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

    fn forget_use(&mut self, id: u32, subject: &str, version: u32) {
        if let Some(uses) = self.uses.get_mut(&id) {
            uses.remove(&(subject.to_string(), version));
            if uses.is_empty() {
                self.uses.remove(&id);
            }
        }
    }

    /// The versions of a subject that are not soft-deleted, oldest first.
    pub(crate) fn live_versions(&self, subject: &str) -> Vec<(u32, u32)> {
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
    pub(crate) fn id_in_use(&self, id: u32) -> bool {
        self.uses.contains_key(&id)
    }

    /// Subject versions (live, or all with `deleted`) using this id.
    pub(crate) fn versions_of_id(&self, id: u32, deleted: bool) -> Vec<(String, u32)> {
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

    /// Live subject versions whose schema references `subject` at `version`.
    pub(crate) fn referenced_by(&self, subject: &str, version: u32) -> Vec<u32> {
        let mut ids: Vec<u32> = Vec::new();
        for vs in self.subjects.values() {
            for v in vs.values().filter(|v| !v.deleted) {
                let Some(content) = self.schemas.get(&v.id) else {
                    continue;
                };
                let refers = content
                    .references
                    .iter()
                    .any(|r| r.subject == subject && r.version == version);
                if refers && !ids.contains(&v.id) {
                    ids.push(v.id);
                }
            }
        }
        ids.sort_unstable();
        ids
    }

    /// The compatibility level that applies to a subject.
    pub(crate) fn level_for(&self, subject: &str) -> Level {
        self.subject_levels
            .get(subject)
            .copied()
            .or(self.global_level)
            .unwrap_or(Level::Backward)
    }

    /// The mode that applies to a subject.
    pub(crate) fn mode_for(&self, subject: &str) -> Mode {
        self.subject_modes
            .get(subject)
            .copied()
            .or(self.global_mode)
            .unwrap_or(Mode::ReadWrite)
    }
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
        assert_eq!(state.max_id, 1);
        assert!(!state.id_in_use(1));
        assert!(state.schemas.contains_key(&1));
    }

    #[test]
    fn subject_config_overrides_global_and_falls_back_when_removed() {
        let mut state = State::default();
        assert_eq!(state.level_for("s"), Level::Backward);
        state.apply(&Event::Config {
            subject: None,
            level: Some("FULL".into()),
        });
        state.apply(&Event::Config {
            subject: Some("s".into()),
            level: Some("NONE".into()),
        });
        assert_eq!(state.level_for("s"), Level::None);
        assert_eq!(state.level_for("t"), Level::Full);
        state.apply(&Event::Config {
            subject: Some("s".into()),
            level: None,
        });
        assert_eq!(state.level_for("s"), Level::Full);
    }

    #[test]
    fn an_id_is_in_use_until_its_last_version_is_permanently_deleted() {
        let mut state = State::default();
        state.apply(&version("a", 1, 5, false));
        state.apply(&version("b", 1, 5, false));
        state.apply(&version("b", 1, 5, true));
        assert_eq!(state.versions_of_id(5, false), vec![("a".to_string(), 1)]);
        assert_eq!(state.versions_of_id(5, true).len(), 2);
        state.apply(&Event::VersionGone {
            subject: "a".into(),
            version: 1,
        });
        assert!(state.id_in_use(5), "b's soft-deleted version still uses it");
        state.apply(&Event::VersionGone {
            subject: "b".into(),
            version: 1,
        });
        assert!(!state.id_in_use(5));
        assert!(state.versions_of_id(5, true).is_empty());
    }
}
