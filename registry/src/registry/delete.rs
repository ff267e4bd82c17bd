//! Deleting subjects and versions as Confluent does: a soft delete hides, a permanent one
//! (only of what is soft-deleted already) forgets; neither may remove a version another
//! schema references.

use super::{Registry, VersionSpec};
use crate::context;
use crate::error::RegistryError;
use crate::store::{Event, State, VersionValue};

impl Registry {
    /// Refuses a change to a subject in READONLY mode (or under a read-only global mode).
    pub(super) fn check_writable(state: &State, subject: &str) -> Result<(), RegistryError> {
        if state.mode_for(subject).read_only() {
            return Err(RegistryError::OperationNotPermitted(format!(
                "Subject {subject} is in read-only mode"
            )));
        }
        Ok(())
    }

    /// Deletes a subject: soft (its versions are hidden) or, once soft-deleted, permanently.
    pub async fn delete_subject(
        &self,
        subject: &str,
        permanent: bool,
    ) -> Result<Vec<u32>, RegistryError> {
        let subject = &context::normalize(subject);
        self.change(|state| {
            Self::check_writable(state, subject)?;
            let versions = state
                .subjects
                .get(subject)
                .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
            let any_live = versions.values().any(|v| !v.deleted);
            for (n, v) in versions {
                if !v.deleted && !state.referenced_by(subject, *n).is_empty() {
                    return Err(RegistryError::ReferenceExists(subject.to_string(), *n));
                }
            }
            if permanent {
                if any_live {
                    return Err(RegistryError::SubjectNotSoftDeleted(subject.to_string()));
                }
                let numbers: Vec<u32> = versions.keys().copied().collect();
                let events = numbers
                    .iter()
                    .map(|n| Event::VersionGone {
                        subject: subject.to_string(),
                        version: *n,
                    })
                    .collect();
                Ok((events, numbers))
            } else {
                if !any_live {
                    return Err(RegistryError::SubjectSoftDeleted(subject.to_string()));
                }
                let live = state.live_versions(subject);
                let events = live
                    .iter()
                    .map(|(n, id)| {
                        Event::Version(VersionValue {
                            subject: subject.to_string(),
                            version: *n,
                            id: id.id,
                            deleted: true,
                        })
                    })
                    .collect();
                Ok((events, live.into_iter().map(|(n, _)| n).collect()))
            }
        })
        .await
    }

    /// Deletes one version: soft, or once soft-deleted, permanently.
    pub async fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<u32, RegistryError> {
        let subject = &context::normalize(subject);
        self.change(|state| {
            Self::check_writable(state, subject)?;
            let include_deleted = permanent || matches!(spec, VersionSpec::Number(_));
            let (version, id, was_deleted) =
                Self::find_version(state, subject, spec, include_deleted)?;
            if permanent {
                if !was_deleted {
                    return Err(RegistryError::VersionNotSoftDeleted(
                        subject.to_string(),
                        version,
                    ));
                }
                Ok((
                    vec![Event::VersionGone {
                        subject: subject.to_string(),
                        version,
                    }],
                    version,
                ))
            } else {
                if was_deleted {
                    return Err(RegistryError::VersionSoftDeleted(
                        subject.to_string(),
                        version,
                    ));
                }
                if !state.referenced_by(subject, version).is_empty() {
                    return Err(RegistryError::ReferenceExists(subject.to_string(), version));
                }
                Ok((
                    vec![Event::Version(VersionValue {
                        subject: subject.to_string(),
                        version,
                        id: id.id,
                        deleted: true,
                    })],
                    version,
                ))
            }
        })
        .await
    }
}
