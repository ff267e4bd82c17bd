//! Configs (`/config`: the compatibility level and the data-contract defaults and overrides)
//! and modes (`/mode`), global, per context (`:.ctx:`) and per subject.

use serde::Deserialize;

use super::{Registry, check_subject};
use crate::compat::Level;
use crate::context;
use crate::error::RegistryError;
use crate::mode::Mode;
use crate::store::{Contract, Event};

/// A `PUT /config` body: the fields to set, each optional.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConfigUpdate {
    /// The compatibility level (`compatibilityLevel` is accepted too).
    #[serde(alias = "compatibilityLevel", default)]
    pub compatibility: Option<String>,
    /// Metadata a registration gets under what it names.
    #[serde(rename = "defaultMetadata", default)]
    pub default_metadata: Option<serde_json::Value>,
    /// Metadata a registration gets over what it names.
    #[serde(rename = "overrideMetadata", default)]
    pub override_metadata: Option<serde_json::Value>,
    /// Rules a registration gets under what it names.
    #[serde(rename = "defaultRuleSet", default)]
    pub default_rule_set: Option<serde_json::Value>,
    /// Rules a registration gets over what it names.
    #[serde(rename = "overrideRuleSet", default)]
    pub override_rule_set: Option<serde_json::Value>,
}

impl Registry {
    /// The compatibility level of a subject (or the global one).
    pub fn config(
        &self,
        subject: Option<&str>,
        default_to_global: bool,
    ) -> Result<Level, RegistryError> {
        let subject = subject.map(context::normalize);
        let subject = subject.as_deref();
        let state = self.read();
        match subject {
            None => Ok(state.global_level.unwrap_or(Level::Backward)),
            Some(s) => match state.subject_levels.get(s) {
                Some(level) => Ok(*level),
                None if default_to_global || state.subject_contracts.contains_key(s) => {
                    Ok(state.level_for(s))
                }
                None => Err(RegistryError::NoSubjectConfig(s.to_string())),
            },
        }
    }

    /// The `defaultMetadata`, `overrideMetadata`, `defaultRuleSet` and `overrideRuleSet` of a
    /// subject's config (or the global one; with `default_to_global`, of the config that
    /// applies to the subject), as the fields of Confluent's config JSON.
    pub fn config_contract(
        &self,
        subject: Option<&str>,
        default_to_global: bool,
    ) -> serde_json::Map<String, serde_json::Value> {
        let subject = subject.map(context::normalize);
        let state = self.read();
        let contract = match subject.as_deref() {
            None => state.global_contract.as_ref(),
            Some(s) if default_to_global => state.contract_for(s),
            Some(s) => state.subject_contracts.get(s),
        };
        match contract.map(serde_json::to_value) {
            Some(Ok(serde_json::Value::Object(fields))) => fields,
            _ => serde_json::Map::new(),
        }
    }

    /// Updates the config of a subject (or the global one) as Confluent's `PUT /config`
    /// does: the fields given replace those set, the others stay. Returns the level that
    /// applies after it.
    pub async fn set_config(
        &self,
        subject: Option<&str>,
        update: &ConfigUpdate,
    ) -> Result<Level, RegistryError> {
        let subject = subject.map(context::normalize);
        let subject = subject.as_deref();
        if let Some(s) = subject {
            check_subject(s)?;
        }
        let given = Contract {
            default_metadata: update.default_metadata.clone(),
            override_metadata: update.override_metadata.clone(),
            default_rule_set: update.default_rule_set.clone(),
            override_rule_set: update.override_rule_set.clone(),
        };
        let level: Option<Level> = match update.compatibility.as_deref() {
            Some(level) => Some(
                level
                    .parse()
                    .map_err(|_| RegistryError::InvalidCompatibilityLevel)?,
            ),
            None if given.is_empty() => return Err(RegistryError::InvalidCompatibilityLevel),
            None => None,
        };
        self.change(|state| {
            let (old_level, old) = match subject {
                None => (state.global_level, state.global_contract.clone()),
                Some(s) => (
                    state.subject_levels.get(s).copied(),
                    state.subject_contracts.get(s).cloned(),
                ),
            };
            let old = old.unwrap_or_default();
            let contract = Contract {
                default_metadata: given.default_metadata.or(old.default_metadata),
                override_metadata: given.override_metadata.or(old.override_metadata),
                default_rule_set: given.default_rule_set.or(old.default_rule_set),
                override_rule_set: given.override_rule_set.or(old.override_rule_set),
            };
            let level = level.or(old_level);
            let applies = match subject {
                None => level.unwrap_or(Level::Backward),
                Some(s) => level.unwrap_or_else(|| state.level_for(s)),
            };
            let event = Event::Config {
                subject: subject.map(str::to_string),
                level: level.map(|l| l.as_str().to_string()),
                contract,
            };
            Ok((vec![event], applies))
        })
        .await
    }

    /// Removes a subject's (or the global) config; returns the level it had.
    pub async fn delete_config(&self, subject: Option<&str>) -> Result<Level, RegistryError> {
        let subject = subject.map(context::normalize);
        let subject = subject.as_deref();
        self.change(|state| {
            let previous = match subject {
                None => state.global_level.unwrap_or(Level::Backward),
                Some(s) => match state.subject_levels.get(s) {
                    Some(level) => *level,
                    None if state.subject_contracts.contains_key(s) => state.level_for(s),
                    None => return Err(RegistryError::NoSubjectConfig(s.to_string())),
                },
            };
            let event = Event::Config {
                subject: subject.map(str::to_string),
                level: None,
                contract: Contract::default(),
            };
            Ok((vec![event], previous))
        })
        .await
    }

    /// The mode of a subject (or the global one).
    pub fn mode(
        &self,
        subject: Option<&str>,
        default_to_global: bool,
    ) -> Result<Mode, RegistryError> {
        let subject = subject.map(context::normalize);
        let subject = subject.as_deref();
        let state = self.read();
        match subject {
            None => Ok(state.global_mode.unwrap_or(Mode::ReadWrite)),
            Some(s) => match state.subject_modes.get(s) {
                Some(mode) => Ok(*mode),
                None if default_to_global => Ok(state.mode_for(s)),
                None => Err(RegistryError::NoSubjectMode(s.to_string())),
            },
        }
    }

    /// Sets the mode of a subject (or the global one). IMPORT is refused while schemas exist
    /// unless `force`.
    pub async fn set_mode(
        &self,
        subject: Option<&str>,
        mode: &str,
        force: bool,
    ) -> Result<Mode, RegistryError> {
        let subject = subject.map(context::normalize);
        let subject = subject.as_deref();
        if let Some(s) = subject {
            check_subject(s)?;
        }
        let mode: Mode = mode.parse().map_err(|_| RegistryError::InvalidMode)?;
        self.change(|state| {
            if mode == Mode::Import && !force {
                let existing = match subject {
                    None => !state.subjects.is_empty(),
                    Some(s) => state.subjects.contains_key(s),
                };
                if existing {
                    return Err(RegistryError::OperationNotPermitted(
                        "Cannot import since found existing subjects".into(),
                    ));
                }
            }
            let event = Event::Mode {
                subject: subject.map(str::to_string),
                mode: Some(mode.as_str().to_string()),
            };
            Ok((vec![event], mode))
        })
        .await
    }

    /// Removes a subject's (or the global) mode; returns the mode it had.
    pub async fn delete_mode(&self, subject: Option<&str>) -> Result<Mode, RegistryError> {
        let subject = subject.map(context::normalize);
        let subject = subject.as_deref();
        self.change(|state| {
            let previous = match subject {
                None => state.global_mode.unwrap_or(Mode::ReadWrite),
                Some(s) => *state
                    .subject_modes
                    .get(s)
                    .ok_or_else(|| RegistryError::NoSubjectMode(s.to_string()))?,
            };
            let event = Event::Mode {
                subject: subject.map(str::to_string),
                mode: None,
            };
            Ok((vec![event], previous))
        })
        .await
    }
}
