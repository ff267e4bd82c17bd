//! Registering a schema under a subject and testing one against it: the request's checks,
//! its parse (off the async workers when large), the id and version it gets, and the
//! compatibility check against earlier versions, run on the blocking pool within a budget.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::Deserialize;

use super::contract::{merge_metadata, merge_rule_sets};
use super::{Registry, VersionSpec, check_subject, resolve_references};
use crate::compat::{Budget, Level};
use crate::context;
use crate::error::RegistryError;
use crate::format::{self, Checkable, Format, Previous, Resolved};
use crate::mode::Mode;
use crate::store::{Event, Gid, SchemaContent, SchemaReference, State, VersionValue};

/// A schema registration or lookup request, as POSTed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SchemaRequest {
    /// The schema text.
    #[serde(default)]
    pub schema: Option<String>,
    /// `AVRO` when absent.
    #[serde(rename = "schemaType", default)]
    pub schema_type: Option<String>,
    /// Named types in other subjects.
    #[serde(default)]
    pub references: Option<Vec<SchemaReference>>,
    /// Explicit id (IMPORT mode).
    #[serde(default)]
    pub id: Option<i64>,
    /// Explicit version (IMPORT mode).
    #[serde(default)]
    pub version: Option<i64>,
    /// Data-contract metadata; when absent, the subject's latest version's is kept.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// Data-contract rules; when absent, the subject's latest version's are kept.
    #[serde(rename = "ruleSet", default)]
    pub rule_set: Option<serde_json::Value>,
}

impl SchemaRequest {
    /// Whether the request names metadata or rules of its own.
    pub(super) fn has_contract(&self) -> bool {
        self.metadata.as_ref().is_some_and(|m| !m.is_null())
            || self.rule_set.as_ref().is_some_and(|r| !r.is_null())
    }
}

/// JSON with every object's keys sorted, so that equal metadata is one text.
fn canonical_json(value: &serde_json::Value) -> String {
    fn sorted(value: &serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                serde_json::Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// The identity of a schema with its data contract: as Confluent, the same schema text
/// with other metadata or rules is another schema, with its own id.
pub(super) fn with_contract(
    identity: &str,
    metadata: Option<&serde_json::Value>,
    rule_set: Option<&serde_json::Value>,
) -> String {
    let metadata = metadata.filter(|m| !m.is_null());
    let rule_set = rule_set.filter(|r| !r.is_null());
    if metadata.is_none() && rule_set.is_none() {
        return identity.to_string();
    }
    format!(
        "{identity}|metadata={}|ruleSet={}",
        metadata.map(canonical_json).unwrap_or_default(),
        rule_set.map(canonical_json).unwrap_or_default()
    )
}

/// Schemas up to this size are parsed on the calling task (a few hundred microseconds at
/// most); larger ones on the blocking pool.
const INLINE_PARSE_BYTES: usize = 16 * 1024;

/// An earlier version a new schema is compared with, as gathered under the state lock.
struct Against {
    version: u32,
    id: Gid,
    content: Arc<SchemaContent>,
    /// Its graph when cached, else the referenced schema texts it needs to be parsed.
    graph: Result<Arc<Checkable>, Vec<Resolved>>,
}

/// A check's messages, and the graphs of earlier versions it parsed (to cache).
type Checked = (Vec<String>, Vec<(Gid, Arc<Checkable>)>);

/// Everything a compatibility check needs, owned, so that it runs on the blocking pool.
struct CheckJob {
    subject: String,
    level: Level,
    against: Vec<Against>,
    max_comparisons: u64,
    max_pairs: usize,
    max_reported: usize,
}

impl CheckJob {
    /// Checks `new` (blocking); returns the messages and the graphs it had to parse.
    fn run(self, new: &Checkable) -> Result<Checked, RegistryError> {
        let mut parsed = Vec::new();
        let mut graphs = Vec::with_capacity(self.against.len());
        for old in &self.against {
            let graph = match &old.graph {
                Ok(graph) => graph.clone(),
                Err(resolved) => {
                    let content = &old.content;
                    let graph = format::parse(
                        Format::of_stored(content.schema_type.as_deref()),
                        &content.schema,
                        &content.references,
                        resolved,
                    )?
                    .graph;
                    parsed.push((old.id, graph.clone()));
                    graph
                }
            };
            graphs.push(graph);
        }
        let previous: Vec<Previous<'_>> = self
            .against
            .iter()
            .zip(&graphs)
            .map(|(old, graph)| Previous {
                version: old.version,
                schema_text: &old.content.schema,
                graph,
            })
            .collect();
        let mut budget = Budget::new(self.max_comparisons, self.max_pairs);
        let messages =
            format::check_level(self.level, new, &previous, &mut budget, self.max_reported)
                .map_err(|e| RegistryError::CompatibilityCheckTooLarge {
                    subject: self.subject.clone(),
                    version: e.version,
                    bound: e.bound.to_string(),
                })?;
        Ok((messages, parsed))
    }
}

/// The schema texts a request's references need.
pub(super) fn request_resolved(
    state: &State,
    subject: &str,
    request: &SchemaRequest,
) -> Result<Vec<Resolved>, RegistryError> {
    resolve_references(
        state,
        context::context_of(subject),
        request.references.as_deref().unwrap_or(&[]),
    )
}

impl Registry {
    pub(super) fn check_request(
        &self,
        subject: &str,
        request: &SchemaRequest,
    ) -> Result<Format, RegistryError> {
        check_subject(subject)?;
        if context::QualifiedSubject::parse(subject).subject.is_empty() {
            return Err(RegistryError::InvalidSubject);
        }
        let format = Format::of_request(request.schema_type.as_deref())?;
        let text = request.schema.as_deref().unwrap_or("");
        if text.len() > self.options.max_schema_bytes {
            return Err(RegistryError::SchemaTooLarge {
                size: text.len(),
                limit: self.options.max_schema_bytes,
            });
        }
        if text.trim().is_empty() {
            return Err(RegistryError::InvalidSchema("the schema is empty".into()));
        }
        Ok(format)
    }

    /// Parses a request's schema whose references resolve to `resolved`: on the calling task
    /// when it is small, on the blocking pool when it is large enough to hold a worker.
    pub(super) async fn parse_request(
        &self,
        format: Format,
        request: &SchemaRequest,
        resolved: Vec<Resolved>,
    ) -> Result<format::Parsed, RegistryError> {
        let text = request.schema.clone().unwrap_or_default();
        let references = request.references.clone().unwrap_or_default();
        if text.len() <= INLINE_PARSE_BYTES {
            return format::parse(format, &text, &references, &resolved);
        }
        self.off_workers(move || format::parse(format, &text, &references, &resolved))
            .await?
    }

    /// Runs CPU-heavy schema work on the blocking pool, at most
    /// [`Options::max_concurrent_checks`] at once, so that it never holds an async worker
    /// (and with it the Kafka listener) and cannot take every core.
    async fn off_workers<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, RegistryError> {
        // The permit moves into the task: a request given up by its client still holds it
        // until its work ends, so abandoned checks cannot pile up beyond the bound.
        let permit = self
            .checks
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RegistryError::Timeout)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| RegistryError::Store(crate::store::StoreError(e.to_string())))
    }

    /// Registers a schema under a subject and returns its global id.
    pub async fn register(
        &self,
        subject: &str,
        request: &SchemaRequest,
        normalize: bool,
    ) -> Result<u32, RegistryError> {
        let subject = &context::normalize(subject);
        let format = self.check_request(subject, request)?;
        let writer = self.write_lock().await?;
        let mut request = request.clone();
        let resolved = {
            let state = self.read();
            Self::check_writable(&state, subject)?;
            // As Confluent: a registration naming no metadata or rules keeps the latest
            // version's (outside IMPORT mode).
            if state.mode_for(subject) != Mode::Import
                && let Some((_, id)) = state.live_versions(subject).last()
                && let Some(latest) = state.schemas.get(id)
            {
                if request.metadata.as_ref().is_none_or(|m| m.is_null()) {
                    request.metadata = latest.metadata.clone();
                }
                if request.rule_set.as_ref().is_none_or(|r| r.is_null()) {
                    request.rule_set = latest.rule_set.clone();
                }
            }
            // As Confluent: the config's default metadata and rules go under what the
            // registration names (or kept), its overrides over it.
            if let Some(contract) = state.contract_for(subject) {
                request.metadata = merge_metadata(
                    merge_metadata(
                        contract.default_metadata.as_ref(),
                        request.metadata.as_ref(),
                    )
                    .as_ref(),
                    contract.override_metadata.as_ref(),
                );
                request.rule_set = merge_rule_sets(
                    merge_rule_sets(
                        contract.default_rule_set.as_ref(),
                        request.rule_set.as_ref(),
                    )
                    .as_ref(),
                    contract.override_rule_set.as_ref(),
                );
            }
            request_resolved(&state, subject, &request)?
        };
        let request = &request;
        // Only the follower changes the state meanwhile, applying what others appended (the
        // one writer of a `_schemas` is its leader's registry); what follows reads it again.
        let parsed = self.parse_request(format, request, resolved).await?;
        let decided = {
            let state = self.read();
            let mode = state.mode_for(subject);
            let identity = with_contract(
                parsed.identity(normalize),
                request.metadata.as_ref(),
                request.rule_set.as_ref(),
            );
            let existing = state
                .context_number(context::context_of(subject))
                .and_then(|n| state.identities.get(&(n, identity)).copied());
            let versions = state.subjects.get(subject);
            if let Some(id) = existing
                && let Some(vs) = versions
                && vs.values().any(|v| v.id == id && !v.deleted)
                && request.version.is_none()
            {
                Err(id.id)
            } else {
                Ok(self.decide_registration(
                    &state, subject, request, normalize, mode, &parsed, existing,
                )?)
            }
        };
        let (events, id, check) = match decided {
            Ok(decided) => decided,
            Err(known) => {
                // Already registered: answer once whatever was appended so far is durable,
                // so this answer cannot get ahead of the registration that created it.
                drop(writer);
                self.durable(self.appended.load(Ordering::Acquire)).await?;
                return Ok(known);
            }
        };
        if let Some(check) = check {
            let messages = self.run_check(check, parsed.graph.clone()).await?;
            if !messages.is_empty() {
                return Err(RegistryError::Incompatible {
                    subject: subject.to_string(),
                    messages,
                });
            }
        }
        if let Ok(mut pending) = self.pending.lock() {
            let identity = with_contract(
                parsed.identity(normalize),
                request.metadata.as_ref(),
                request.rule_set.as_ref(),
            );
            pending.insert((context::context_of(subject).to_string(), id), identity);
        }
        let committed = self.commit(events).await;
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&(context::context_of(subject).to_string(), id));
        }
        let position = committed?;
        drop(writer);
        let gid = self.read().gid(context::context_of(subject), id);
        if let Some(gid) = gid
            && let Ok(mut graphs) = self.graphs.lock()
        {
            graphs.entry(gid).or_insert(parsed.graph.clone());
        }
        self.durable(position).await?;
        Ok(id)
    }

    /// The events of a new registration, after the mode, id and version checks, and the
    /// compatibility check still to run (none in IMPORT mode).
    #[allow(clippy::too_many_arguments)]
    fn decide_registration(
        &self,
        state: &State,
        subject: &str,
        request: &SchemaRequest,
        normalize: bool,
        mode: Mode,
        parsed: &format::Parsed,
        existing: Option<Gid>,
    ) -> Result<(Vec<Event>, u32, Option<CheckJob>), RegistryError> {
        let versions = state.subjects.get(subject);
        let context = context::context_of(subject);
        let existing = existing.map(|gid| gid.id);
        let import = mode == Mode::Import;
        let id = match (request.id, existing) {
            (Some(given), _) if given <= 0 || given > i64::from(i32::MAX) => {
                return Err(RegistryError::InvalidSchema(format!(
                    "invalid schema id {given}"
                )));
            }
            (Some(given), Some(known)) if given as u32 != known => {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Overwrite new schema with id {given} is not permitted."
                )));
            }
            (Some(given), None) if !import => {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Subject {subject} is not in import mode; an id ({given}) may be given only in IMPORT mode"
                )));
            }
            (Some(given), None) => {
                let given = given as u32;
                if state
                    .gid(context, given)
                    .is_some_and(|gid| state.schemas.contains_key(&gid))
                {
                    return Err(RegistryError::OperationNotPermitted(format!(
                        "Overwrite new schema with id {given} is not permitted."
                    )));
                }
                given
            }
            (_, Some(known)) => known,
            (None, None) => state.max_id(context) + 1,
        };
        let max_version = versions
            .and_then(|vs| vs.keys().next_back().copied())
            .unwrap_or(0);
        let version = match request.version {
            Some(v) if !import => {
                return Err(RegistryError::OperationNotPermitted(format!(
                    "Subject {subject} is not in import mode; a version ({v}) may be given only in IMPORT mode"
                )));
            }
            Some(v) if v <= 0 || v > i64::from(i32::MAX) => {
                return Err(RegistryError::InvalidVersion(v.to_string()));
            }
            Some(v) => {
                let v = v as u32;
                if versions.is_some_and(|vs| vs.contains_key(&v)) {
                    return Err(RegistryError::OperationNotPermitted(format!(
                        "Subject {subject} already has a version {v}"
                    )));
                }
                v
            }
            None => max_version + 1,
        };
        let check = if import {
            None
        } else {
            self.check_job(state, subject, state.level_for(subject), None)?
        };
        let mut events = Vec::new();
        if state.context_number(context).is_none() {
            events.push(Event::Context {
                context: context.to_string(),
            });
        }
        if existing.is_none() {
            let references = request.references.clone().unwrap_or_default();
            events.push(Event::SchemaId(SchemaContent {
                context: context.to_string(),
                id,
                schema: if normalize {
                    parsed.normalized.clone()
                } else {
                    request.schema.clone().unwrap_or_default()
                },
                schema_type: parsed.format.schema_type(),
                references,
                metadata: request.metadata.clone().filter(|m| !m.is_null()),
                rule_set: request.rule_set.clone().filter(|r| !r.is_null()),
            }));
        }
        events.push(Event::Version(VersionValue {
            subject: subject.to_string(),
            version,
            id,
            deleted: false,
        }));
        Ok((events, id, check))
    }

    /// The check of a new schema against the versions of `subject` that `level` compares it
    /// with (or just `only`), gathered under the state lock to run without it; none when
    /// nothing is to be compared.
    fn check_job(
        &self,
        state: &State,
        subject: &str,
        level: Level,
        only: Option<(u32, Gid)>,
    ) -> Result<Option<CheckJob>, RegistryError> {
        if level == Level::None {
            return Ok(None);
        }
        let mut chosen: Vec<(u32, Gid)> = match only {
            Some(one) => vec![one],
            None => state.live_versions(subject),
        };
        chosen.reverse();
        if !level.transitive() {
            chosen.truncate(1);
        }
        if chosen.is_empty() {
            return Ok(None);
        }
        let mut against = Vec::with_capacity(chosen.len());
        for (version, id) in chosen {
            let content = state
                .schemas
                .get(&id)
                .cloned()
                .ok_or(RegistryError::SchemaIdNotFound(id.id))?;
            let graph = match self.cached_graph(id) {
                Some(graph) => Ok(graph),
                None => Err(resolve_references(
                    state,
                    &content.context,
                    &content.references,
                )?),
            };
            against.push(Against {
                version,
                id,
                content,
                graph,
            });
        }
        Ok(Some(CheckJob {
            subject: subject.to_string(),
            level,
            against,
            max_comparisons: self.options.max_compatibility_comparisons,
            max_pairs: self.options.max_compatibility_pairs,
            max_reported: self.options.max_reported_incompatibilities,
        }))
    }

    /// Runs a compatibility check off the async workers; returns Confluent's messages, empty
    /// when compatible, and keeps the graphs of earlier versions it had to parse.
    async fn run_check(
        &self,
        check: CheckJob,
        new: Arc<Checkable>,
    ) -> Result<Vec<String>, RegistryError> {
        let (messages, parsed) = self.off_workers(move || check.run(&new)).await??;
        if let Ok(mut graphs) = self.graphs.lock() {
            for (id, graph) in parsed {
                graphs.entry(id).or_insert(graph);
            }
        }
        Ok(messages)
    }

    /// Tests a schema against a subject (all versions the level asks for, or one version);
    /// returns the messages, empty when compatible.
    pub async fn test_compatibility(
        &self,
        subject: &str,
        spec: Option<VersionSpec>,
        request: &SchemaRequest,
        _normalize: bool,
    ) -> Result<Vec<String>, RegistryError> {
        let subject = &context::normalize(subject);
        let format = self.check_request(subject, request)?;
        let (only, resolved) = {
            let state = self.read();
            // As Confluent: the latest version of a subject with no live version is nothing
            // to be incompatible with; a numbered one that does not exist is 40402.
            let only = match spec {
                Some(spec) => match Self::find_version(&state, subject, spec, false) {
                    Ok((version, id, _)) => Some(Some((version, id))),
                    Err(RegistryError::SubjectNotFound(_)) => match spec {
                        VersionSpec::Latest => Some(None),
                        VersionSpec::Number(n) => return Err(RegistryError::VersionNotFound(n)),
                    },
                    Err(e) => return Err(e),
                },
                None => None,
            };
            (only, request_resolved(&state, subject, request)?)
        };
        // The schema must be valid even when there is nothing to compare it with.
        let parsed = self.parse_request(format, request, resolved).await?;
        let only = match only {
            Some(None) => return Ok(Vec::new()),
            Some(one) => one,
            None => None,
        };
        let check = {
            let state = self.read();
            self.check_job(&state, subject, state.level_for(subject), only)?
        };
        match check {
            Some(check) => self.run_check(check, parsed.graph).await,
            None => Ok(Vec::new()),
        }
    }
}
