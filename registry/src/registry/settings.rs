//! Compatibility levels (`/config`) and modes (`/mode`), global and per subject.

use super::{Registry, check_subject};
use crate::compat::Level;
use crate::context;
use crate::error::RegistryError;
use crate::mode::Mode;
use crate::store::Event;

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
                None if default_to_global => Ok(state.level_for(s)),
                None => Err(RegistryError::NoSubjectConfig(s.to_string())),
            },
        }
    }

    /// Sets the compatibility level of a subject (or the global one).
    pub async fn set_config(
        &self,
        subject: Option<&str>,
        level: &str,
    ) -> Result<Level, RegistryError> {
        let subject = subject.map(context::normalize);
        let subject = subject.as_deref();
        if let Some(s) = subject {
            check_subject(s)?;
        }
        let level: Level = level
            .parse()
            .map_err(|_| RegistryError::InvalidCompatibilityLevel)?;
        self.change(|_| {
            let event = Event::Config {
                subject: subject.map(str::to_string),
                level: Some(level.as_str().to_string()),
            };
            Ok((vec![event], level))
        })
        .await
    }

    /// Removes a subject's (or the global) level; returns the level it had.
    pub async fn delete_config(&self, subject: Option<&str>) -> Result<Level, RegistryError> {
        let subject = subject.map(context::normalize);
        let subject = subject.as_deref();
        self.change(|state| {
            let previous = match subject {
                None => state.global_level.unwrap_or(Level::Backward),
                Some(s) => *state
                    .subject_levels
                    .get(s)
                    .ok_or_else(|| RegistryError::NoSubjectConfig(s.to_string()))?,
            };
            let event = Event::Config {
                subject: subject.map(str::to_string),
                level: None,
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
