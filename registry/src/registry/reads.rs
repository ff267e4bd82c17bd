//! The read side of the registry: subjects, versions and schemas by id, each answered from
//! the replayed state under a short read lock (or, for `/schemas/ids/{id}`, from the body
//! precomputed per id), and the lookup of which version holds a given schema.

use std::sync::Arc;

use bytes::Bytes;

use super::register::request_resolved;
use super::{Registry, SchemaRequest, add_contract, id_body, resolve_references, with_contract};
use crate::context;
use crate::error::RegistryError;
use crate::format::Format;
use crate::store::{Gid, SchemaContent, State};

/// Which subjects or versions a listing shows, as Confluent's `deleted` and `deletedOnly`
/// query parameters choose (`deletedOnly` wins when both are given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupFilter {
    /// Live ones only (the default).
    Default,
    /// Live and soft-deleted ones (`deleted=true`).
    IncludeDeleted,
    /// Soft-deleted ones only (`deletedOnly=true`).
    DeletedOnly,
}

impl LookupFilter {
    /// Whether an item, soft-deleted or not, is listed.
    pub fn keeps(self, deleted: bool) -> bool {
        match self {
            LookupFilter::Default => !deleted,
            LookupFilter::IncludeDeleted => true,
            LookupFilter::DeletedOnly => deleted,
        }
    }
}

/// A version given in a path: a number, or the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSpec {
    /// The latest version.
    Latest,
    /// A version number (1 or more).
    Number(u32),
}

impl VersionSpec {
    /// Parses `latest`, `-1` or a number in [1, 2^31-1]; anything else is 42202.
    pub fn parse(text: &str) -> Result<VersionSpec, RegistryError> {
        if text == "latest" || text == "-1" {
            return Ok(VersionSpec::Latest);
        }
        match text.parse::<i64>() {
            Ok(n) if (1..=i64::from(i32::MAX)).contains(&n) => Ok(VersionSpec::Number(n as u32)),
            _ => Err(RegistryError::InvalidVersion(text.to_string())),
        }
    }
}

/// One subject version with its schema.
#[derive(Debug, Clone)]
pub struct SubjectVersion {
    /// The subject.
    pub subject: String,
    /// The version.
    pub version: u32,
    /// Its global schema id.
    pub id: u32,
    pub(crate) content: Arc<SchemaContent>,
}

impl SubjectVersion {
    /// The schema text.
    pub fn schema(&self) -> &str {
        &self.content.schema
    }

    /// Confluent's JSON of a subject version.
    pub fn to_json(&self) -> serde_json::Value {
        self.to_json_with(&self.content.schema)
    }

    /// Confluent's JSON of a subject version, its schema shown as `schema`.
    pub fn to_json_with(&self, schema: &str) -> serde_json::Value {
        let mut v = serde_json::json!({
            "subject": self.subject,
            "version": self.version,
            "id": self.id,
            "schema": schema,
        });
        if let Some(t) = &self.content.schema_type {
            v["schemaType"] = t.clone().into();
        }
        if !self.content.references.is_empty() {
            v["references"] = serde_json::to_value(&self.content.references).unwrap_or_default();
        }
        add_contract(&mut v, &self.content);
        v
    }
}

impl Registry {
    /// Schema id `id` of the context of `subject` (Confluent's `?subject=` on `/schemas/ids`),
    /// of the default context without one.
    fn id_in_context(&self, subject: Option<&str>, id: u32) -> Option<Gid> {
        match subject.map(context::context_of) {
            None | Some(context::DEFAULT_CONTEXT) => Some(Gid { context: 0, id }),
            Some(context) => self.read().gid(context, id),
        }
    }

    /// The precomputed body of `GET /schemas/ids/{id}`, the id taken in the context of
    /// `subject`.
    pub fn schema_body_by_id(&self, subject: Option<&str>, id: u32) -> Option<Bytes> {
        let gid = self.id_in_context(subject, id)?;
        self.by_id.get(&gid).map(|b| b.clone())
    }

    /// The subject versions using a schema id of the context of `subject`.
    pub fn id_versions(
        &self,
        subject: Option<&str>,
        id: u32,
        deleted: bool,
    ) -> Result<Vec<(String, u32)>, RegistryError> {
        let gid = self
            .id_in_context(subject, id)
            .ok_or(RegistryError::SchemaIdNotFound(id))?;
        let state = self.read();
        if !state.id_in_use(gid) {
            return Err(RegistryError::SchemaIdNotFound(id));
        }
        Ok(state.versions_of_id(gid, deleted))
    }

    /// The contexts holding subjects, `.` always, sorted (`GET /contexts`).
    pub fn contexts(&self) -> Vec<String> {
        self.read().context_names()
    }

    /// The schema text of `content` in Confluent's `format`: `resolved` inlines an Avro
    /// schema's referenced types, `serialized` gives a Protobuf schema's base64
    /// `FileDescriptorProto`; any other format, or a schema of another type, is the
    /// stored text, as Confluent answers formats a schema type does not know.
    pub fn formatted(&self, content: &SubjectVersion, format: Option<&str>) -> String {
        self.format_content(&content.content, format)
    }

    pub(super) fn format_content(&self, content: &SchemaContent, format: Option<&str>) -> String {
        let wanted = format.map(str::trim).unwrap_or("");
        if wanted.eq_ignore_ascii_case("serialized")
            && content.schema_type.as_deref() == Some(Format::Protobuf.as_str())
        {
            return self
                .protobuf_serialized(content)
                .unwrap_or_else(|| content.schema.clone());
        }
        if !wanted.eq_ignore_ascii_case("resolved")
            || content.schema_type.is_some()
            || content.references.is_empty()
        {
            return content.schema.clone();
        }
        let resolved = {
            let state = self.read();
            match resolve_references(&state, &content.context, &content.references) {
                Ok(resolved) => resolved,
                Err(_) => return content.schema.clone(),
            }
        };
        let texts: Vec<String> = resolved.into_iter().map(|r| r.schema).collect();
        crate::resolved::inline(&content.schema, &texts).unwrap_or_else(|| content.schema.clone())
    }

    /// A Protobuf schema as `?format=serialized` answers it (base64 `FileDescriptorProto`).
    fn protobuf_serialized(&self, content: &SchemaContent) -> Option<String> {
        let resolved =
            resolve_references(&self.read(), &content.context, &content.references).ok()?;
        crate::format::protobuf::serialized(&content.schema, &resolved).ok()
    }

    /// The body of `GET /schemas/ids/{id}?format=...` (see [`Registry::formatted`]).
    pub fn schema_body_formatted(
        &self,
        subject: Option<&str>,
        id: u32,
        format: &str,
    ) -> Option<Bytes> {
        let gid = self.id_in_context(subject, id)?;
        let content = {
            let state = self.read();
            if !state.id_in_use(gid) {
                return None;
            }
            state.schemas.get(&gid)?.clone()
        };
        let mut shown = (*content).clone();
        shown.schema = self.format_content(&content, Some(format));
        Some(id_body(&shown))
    }

    /// The raw schema text of an id.
    pub fn schema_text_by_id(
        &self,
        subject: Option<&str>,
        id: u32,
        format: Option<&str>,
    ) -> Result<String, RegistryError> {
        let gid = self
            .id_in_context(subject, id)
            .ok_or(RegistryError::SchemaIdNotFound(id))?;
        let content = {
            let state = self.read();
            match state.schemas.get(&gid) {
                Some(content) if state.id_in_use(gid) => content.clone(),
                _ => return Err(RegistryError::SchemaIdNotFound(id)),
            }
        };
        Ok(self.format_content(&content, format))
    }

    /// Subjects with a live version (or any, with `deleted`), filtered by prefix.
    pub fn subjects(&self, prefix: &str, filter: LookupFilter) -> Vec<String> {
        let state = self.read();
        state
            .subjects
            .iter()
            .filter(|(name, vs)| {
                // A subject is soft-deleted when none of its versions is live.
                let deleted = !vs.values().any(|v| !v.deleted);
                context::matches_prefix(name, prefix) && filter.keeps(deleted)
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Every subject version (latest only with `latest_only`).
    pub fn all_versions(
        &self,
        prefix: &str,
        deleted: bool,
        latest_only: bool,
    ) -> Vec<SubjectVersion> {
        let state = self.read();
        let mut out = Vec::new();
        let in_prefix = |(s, _): &(&String, _)| context::matches_prefix(s, prefix);
        for (subject, vs) in state.subjects.iter().filter(in_prefix) {
            let mut chosen: Vec<(u32, Gid)> = vs
                .iter()
                .filter(|(_, v)| deleted || !v.deleted)
                .map(|(n, v)| (*n, v.id))
                .collect();
            if latest_only {
                chosen = chosen.pop().into_iter().collect();
            }
            for (version, id) in chosen {
                if let Some(content) = state.schemas.get(&id) {
                    out.push(SubjectVersion {
                        subject: subject.clone(),
                        version,
                        id: id.id,
                        content: content.clone(),
                    });
                }
            }
        }
        out
    }

    /// The versions of a subject.
    pub fn versions(&self, subject: &str, filter: LookupFilter) -> Result<Vec<u32>, RegistryError> {
        let subject = &context::normalize(subject);
        let state = self.read();
        let versions: Vec<u32> = state
            .subjects
            .get(subject)
            .map(|vs| {
                vs.iter()
                    .filter(|(_, v)| filter.keeps(v.deleted))
                    .map(|(n, _)| *n)
                    .collect()
            })
            .unwrap_or_default();
        if versions.is_empty() {
            return Err(RegistryError::SubjectNotFound(subject.to_string()));
        }
        Ok(versions)
    }

    pub(super) fn find_version(
        state: &State,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<(u32, Gid, bool), RegistryError> {
        let versions = state
            .subjects
            .get(subject)
            .filter(|vs| deleted || vs.values().any(|v| !v.deleted))
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        match spec {
            VersionSpec::Latest => versions
                .iter()
                .rev()
                .find(|(_, v)| deleted || !v.deleted)
                .map(|(n, v)| (*n, v.id, v.deleted))
                .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string())),
            VersionSpec::Number(n) => match versions.get(&n) {
                Some(v) if deleted || !v.deleted => Ok((n, v.id, v.deleted)),
                _ => Err(RegistryError::VersionNotFound(n)),
            },
        }
    }

    /// One version of a subject.
    pub fn version(
        &self,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let subject = &context::normalize(subject);
        let state = self.read();
        let (version, id, _) = Self::find_version(&state, subject, spec, deleted)?;
        let content = state
            .schemas
            .get(&id)
            .cloned()
            .ok_or(RegistryError::SchemaIdNotFound(id.id))?;
        Ok(SubjectVersion {
            subject: subject.to_string(),
            version,
            id: id.id,
            content,
        })
    }

    /// The latest version of a subject whose metadata properties hold every `(key, value)`
    /// pair (Confluent's `GET /subjects/{s}/metadata`): 40401 without such a subject, 40403
    /// when no version matches.
    pub fn latest_with_metadata(
        &self,
        subject: &str,
        pairs: &[(&str, &str)],
        deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let subject = &context::normalize(subject);
        let state = self.read();
        let versions = state
            .subjects
            .get(subject)
            .filter(|vs| deleted || vs.values().any(|v| !v.deleted))
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        versions
            .iter()
            .rev()
            .filter(|(_, v)| deleted || !v.deleted)
            .find_map(|(n, v)| {
                let content = state.schemas.get(&v.id)?;
                let properties = content.metadata.as_ref()?.get("properties")?;
                pairs
                    .iter()
                    .all(|(key, value)| {
                        properties.get(*key).and_then(|p| p.as_str()) == Some(*value)
                    })
                    .then(|| SubjectVersion {
                        subject: subject.to_string(),
                        version: *n,
                        id: v.id.id,
                        content: content.clone(),
                    })
            })
            .ok_or(RegistryError::SchemaNotFound)
    }

    /// Ids of the schemas referencing a subject version.
    pub fn referenced_by(
        &self,
        subject: &str,
        spec: VersionSpec,
    ) -> Result<Vec<u32>, RegistryError> {
        let subject = &context::normalize(subject);
        let state = self.read();
        let (version, _, _) = Self::find_version(&state, subject, spec, false)?;
        Ok(state
            .referenced_by(subject, version)
            .into_iter()
            .map(|gid| gid.id)
            .collect())
    }

    /// Finds the version of a subject holding this schema.
    pub async fn lookup(
        &self,
        subject: &str,
        request: &SchemaRequest,
        normalize: bool,
        deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let subject = &context::normalize(subject);
        let format = self.check_request(subject, request)?;
        let resolved = {
            let state = self.read();
            if !state
                .subjects
                .get(subject)
                .is_some_and(|vs| deleted || vs.values().any(|v| !v.deleted))
            {
                return Err(RegistryError::SubjectNotFound(subject.to_string()));
            }
            request_resolved(&state, subject, request)?
        };
        let parsed = self.parse_request(format, request, resolved).await?;
        let state = self.read();
        let versions = state
            .subjects
            .get(subject)
            .filter(|vs| deleted || vs.values().any(|v| !v.deleted))
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        let base = parsed.identity(normalize);
        let in_context = state
            .context_number(context::context_of(subject))
            .unwrap_or_default();
        let exact = state
            .identities
            .get(&(
                in_context,
                with_contract(base, request.metadata.as_ref(), request.rule_set.as_ref()),
            ))
            .copied()
            .and_then(|id| {
                versions
                    .iter()
                    .find(|(_, v)| v.id == id && (deleted || !v.deleted))
                    .map(|(n, _)| (*n, id))
            });
        // As Confluent: a schema looked up without metadata or rules matches the latest
        // version holding that schema whatever its data contract.
        let found = match exact {
            Some(found) => Some(found),
            None if !request.has_contract() => versions
                .iter()
                .rev()
                .filter(|(_, v)| deleted || !v.deleted)
                .find(|(_, v)| {
                    state.schemas.get(&v.id).is_some_and(|content| {
                        let identity = with_contract(
                            base,
                            content.metadata.as_ref(),
                            content.rule_set.as_ref(),
                        );
                        state.identities.get(&(in_context, identity)) == Some(&v.id)
                    })
                })
                .map(|(n, v)| (*n, v.id)),
            None => None,
        };
        let (version, id) = found.ok_or(RegistryError::SchemaNotFound)?;
        let version = &version;
        let content = state
            .schemas
            .get(&id)
            .cloned()
            .ok_or(RegistryError::SchemaNotFound)?;
        Ok(SubjectVersion {
            subject: subject.to_string(),
            version: *version,
            id: id.id,
            content,
        })
    }
}
