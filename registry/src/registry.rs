//! [`Registry`]: the operations of the schema registry over its store. Reads take a short
//! read lock on the replayed [`State`]; the hot `/schemas/ids/{id}` lookup does not even do
//! that, it reads the response body precomputed per id from a `DashMap`. The state is what
//! the [`SchemaLog`] says, applied record by record in log order by one path, whoever wrote
//! the record: at open (the replay), by the follower task [`Registry::follow`] starts (records
//! other registries or tools append, as they arrive), and by a writer waiting for its own
//! records. Every change runs under one writer lock: catch up with the log, decide the events
//! from the state, append them, and answer once they are applied (read-your-writes) and
//! durable. Compatibility
//! checks and parses of large schemas are CPU work whose cost a client chooses: they run on
//! the blocking pool, a bounded number at once, each within a budget of comparisons and of
//! memory ([`Options`]), never on the async workers that also serve Kafka.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use serde::Deserialize;

use crate::compat::{Budget, Level};
use crate::error::RegistryError;
use crate::format::{self, Checkable, Format, Previous, Resolved};
use crate::mode::Mode;
use crate::store::{
    Event, LogRecord, SchemaContent, SchemaLog, SchemaReference, State, VersionValue,
};

/// Limits and identity of a registry.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest schema text accepted (42209 above).
    pub max_schema_bytes: usize,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// The Kafka cluster id reported by `/v1/metadata/id`.
    pub kafka_cluster_id: String,
    /// Comparisons of schema nodes one compatibility check (of a registration or of
    /// `/compatibility`) may make, over every version it compares with (42209 above).
    pub max_compatibility_comparisons: u64,
    /// Pairs of schema nodes the memo of one reader/writer check may hold, about 30 bytes
    /// each (42209 above).
    pub max_compatibility_pairs: usize,
    /// Incompatibilities listed per compared version and direction; a message says when
    /// there were more.
    pub max_reported_incompatibilities: usize,
    /// Compatibility checks and parses of large schemas running at once, on the blocking
    /// pool; more wait their turn.
    pub max_concurrent_checks: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_schema_bytes: 1024 * 1024,
            max_body_bytes: 8 * 1024 * 1024,
            kafka_cluster_id: "strand".to_string(),
            max_compatibility_comparisons: 5_000_000,
            // Just under a power-of-two hash table's growth point: about 26 MB at most.
            max_compatibility_pairs: 900_000,
            max_reported_incompatibilities: 100,
            max_concurrent_checks: std::thread::available_parallelism()
                .map(|n| (n.get() / 2).max(1))
                .unwrap_or(1),
        }
    }
}

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
    fn has_contract(&self) -> bool {
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
fn with_contract(
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

/// Adds the data-contract fields of a stored schema to a response body.
fn add_contract(body: &mut serde_json::Value, content: &SchemaContent) {
    if let Some(metadata) = &content.metadata {
        body["metadata"] = metadata.clone();
    }
    if let Some(rule_set) = &content.rule_set {
        body["ruleSet"] = rule_set.clone();
    }
}

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

/// The schema registry.
pub struct Registry {
    log: Arc<dyn SchemaLog>,
    state: RwLock<State>,
    by_id: DashMap<u32, Bytes>,
    graphs: Mutex<HashMap<u32, Arc<Checkable>>>,
    writer: tokio::sync::Mutex<()>,
    /// Permits for work on the blocking pool (checks, large parses).
    checks: Arc<tokio::sync::Semaphore>,
    /// Log position after the last append, for answers that must wait until it is durable.
    appended: AtomicI64,
    /// The log position applied up to. Held while applying, so that the follower and a
    /// writer catching up apply each record once, in order.
    tail: Mutex<i64>,
    /// Identities of the ids this registry is registering, computed by the registration,
    /// so that applying its records does not parse the schema again.
    pending: Mutex<HashMap<u32, String>>,
    options: Options,
}

/// How long a write waits for its records to become readable (on a replicated `_schemas`,
/// for the high watermark to pass them) before answering 50002.
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the follower waits before retrying after a failed read of the log, when no
/// append wakes it sooner.
const FOLLOW_RETRY: Duration = Duration::from_secs(1);

/// Schemas up to this size are parsed on the calling task (a few hundred microseconds at
/// most); larger ones on the blocking pool.
const INLINE_PARSE_BYTES: usize = 16 * 1024;

/// An earlier version a new schema is compared with, as gathered under the state lock.
struct Against {
    version: u32,
    id: u32,
    content: Arc<SchemaContent>,
    /// Its graph when cached, else the referenced schema texts it needs to be parsed.
    graph: Result<Arc<Checkable>, Vec<Resolved>>,
}

/// A check's messages, and the graphs of earlier versions it parsed (to cache).
type Checked = (Vec<String>, Vec<(u32, Arc<Checkable>)>);

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
fn request_resolved(
    state: &State,
    request: &SchemaRequest,
) -> Result<Vec<Resolved>, RegistryError> {
    resolve_references(state, request.references.as_deref().unwrap_or(&[]))
}

/// Subjects may not be empty, hold control characters or be the reserved names.
fn check_subject(subject: &str) -> Result<(), RegistryError> {
    if subject.is_empty()
        || subject.chars().any(char::is_control)
        || subject == "__GLOBAL"
        || subject == "__EMPTY"
    {
        return Err(RegistryError::InvalidSubject);
    }
    Ok(())
}

fn id_body(content: &SchemaContent) -> Bytes {
    let mut v = serde_json::json!({ "schema": content.schema });
    if let Some(t) = &content.schema_type {
        v["schemaType"] = t.clone().into();
    }
    if !content.references.is_empty() {
        v["references"] = serde_json::to_value(&content.references).unwrap_or_default();
    }
    add_contract(&mut v, content);
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

impl Registry {
    /// Opens a registry over `log`, replaying it (blocking). Call [`Registry::follow`] to
    /// keep applying what others append.
    pub fn open(log: Arc<dyn SchemaLog>, options: Options) -> Result<Registry, RegistryError> {
        let registry = Registry {
            log,
            state: RwLock::new(State::default()),
            by_id: DashMap::new(),
            graphs: Mutex::new(HashMap::new()),
            writer: tokio::sync::Mutex::new(()),
            checks: Arc::new(tokio::sync::Semaphore::new(
                options.max_concurrent_checks.max(1),
            )),
            appended: AtomicI64::new(0),
            tail: Mutex::new(0),
            pending: Mutex::new(HashMap::new()),
            options,
        };
        let position = registry.catch_up()?;
        let state = registry.read();
        tracing::info!(
            position,
            subjects = state.subjects.len(),
            ids = state.schemas.len(),
            "schema store replayed"
        );
        drop(state);
        Ok(registry)
    }

    /// Follows the log from here on, in a task: whatever anyone appends (another registry
    /// sharing a replicated `_schemas`, a restore tool, a plain Kafka producer) is applied
    /// as it arrives, in log order. The task ends when the registry is dropped.
    pub fn follow(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let registry = Arc::downgrade(self);
        let mut changes = self.log.subscribe();
        tokio::spawn(async move {
            loop {
                let Some(strong) = registry.upgrade() else {
                    return;
                };
                let caught_up = tokio::task::spawn_blocking(move || strong.catch_up()).await;
                let wait = match caught_up {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "following the schema log");
                        Some(FOLLOW_RETRY)
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "schema log follower stopped");
                        return;
                    }
                };
                let changed = match wait {
                    None => changes.changed().await,
                    Some(wait) => match tokio::time::timeout(wait, changes.changed()).await {
                        Ok(changed) => changed,
                        Err(_) => Ok(()),
                    },
                };
                if changed.is_err() {
                    return;
                }
            }
        })
    }

    /// The options the registry was opened with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-applied in a way reads
        // care about, so a poisoned lock is still read.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies whatever the log holds past what was applied (blocking: it reads the log);
    /// returns the position reached.
    fn catch_up(&self) -> Result<i64, RegistryError> {
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let read = self.log.read_from(*tail)?;
            if !read.records.is_empty() {
                self.apply_records(&read.records);
            }
            if read.next <= *tail {
                return Ok(*tail);
            }
            *tail = read.next;
        }
    }

    /// Applies records in order to the state and to the indexes beside it (the body per id,
    /// the identity of each schema). A record that does not decode is skipped with a
    /// warning, as is one that gives a known id another schema.
    fn apply_records(&self, records: &[LogRecord]) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        for record in records {
            let events = match Event::decode(record) {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(%e, "skipping a schema log record");
                    continue;
                }
            };
            for event in &events {
                let (removed_id, new_id) = match event {
                    Event::VersionGone { subject, version } => (
                        state
                            .subjects
                            .get(subject)
                            .and_then(|vs| vs.get(version))
                            .map(|v| v.id),
                        None,
                    ),
                    Event::SchemaId(content) if !state.schemas.contains_key(&content.id) => {
                        (None, Some(content.id))
                    }
                    _ => (None, None),
                };
                if !state.apply(event) {
                    break;
                }
                match event {
                    Event::SchemaId(content) if new_id.is_some() => {
                        let known = self
                            .pending
                            .lock()
                            .ok()
                            .and_then(|mut p| p.remove(&content.id));
                        let identity = match known {
                            Some(identity) => Some(identity),
                            // Graphs are cached lazily, when a compatibility check first
                            // needs one.
                            None => match self.parse_content(&state, content) {
                                Ok((identity, _)) => Some(identity),
                                Err(e) => {
                                    tracing::warn!(id = content.id, %e, "stored schema does not parse");
                                    None
                                }
                            },
                        };
                        if let Some(identity) = identity {
                            state.identities.entry(identity).or_insert(content.id);
                        }
                    }
                    Event::Version(v) => {
                        if !self.by_id.contains_key(&v.id)
                            && let Some(content) = state.schemas.get(&v.id)
                        {
                            self.by_id.insert(v.id, id_body(content));
                        }
                    }
                    Event::VersionGone { .. } => {
                        if let Some(id) = removed_id.filter(|id| !state.id_in_use(*id)) {
                            self.by_id.remove(&id);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    fn parse_content(
        &self,
        state: &State,
        content: &SchemaContent,
    ) -> Result<(String, Arc<Checkable>), RegistryError> {
        let resolved = resolve_references(state, &content.references)?;
        let parsed = format::parse(
            Format::of_stored(content.schema_type.as_deref()),
            &content.schema,
            &content.references,
            &resolved,
        )?;
        let identity = with_contract(
            &parsed.identity,
            content.metadata.as_ref(),
            content.rule_set.as_ref(),
        );
        Ok((identity, parsed.graph))
    }

    /// The graph of a stored schema, if a compatibility check already parsed it.
    fn cached_graph(&self, id: u32) -> Option<Arc<Checkable>> {
        self.graphs.lock().ok().and_then(|g| g.get(&id).cloned())
    }

    /// Takes the writer lock and catches up with the log, so that a change is decided on
    /// everything appended before it (ids others assigned are not given again).
    async fn write_lock(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, RegistryError> {
        let writer = self.writer.lock().await;
        self.catch_up()?;
        Ok(writer)
    }

    /// Appends events and returns once they are applied, with the log position to make
    /// durable (with [`Registry::durable`], after releasing the writer lock, before
    /// answering). The caller holds the writer lock.
    async fn commit(&self, events: Vec<Event>) -> Result<i64, RegistryError> {
        if events.is_empty() {
            return Ok(self.appended.load(Ordering::Acquire));
        }
        let records: Vec<LogRecord> = events.iter().map(Event::encode).collect();
        let log = self.log.clone();
        let position = tokio::task::spawn_blocking(move || log.append(&records))
            .await
            .map_err(|e| RegistryError::Store(crate::store::StoreError(e.to_string())))??;
        self.appended.fetch_max(position, Ordering::AcqRel);
        self.applied_through(position).await?;
        Ok(position)
    }

    /// Returns once the state has applied the log up to `position`: at once where what was
    /// appended can be read at once (one node), else when the log's readable end (the high
    /// watermark of a replicated `_schemas`) passes it.
    async fn applied_through(&self, position: i64) -> Result<(), RegistryError> {
        let mut changes = self.log.subscribe();
        let deadline = tokio::time::Instant::now() + APPLY_TIMEOUT;
        loop {
            if self.catch_up()? >= position {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(RegistryError::Store(crate::store::StoreError(
                        "the schema log closed".into(),
                    )));
                }
                Err(_) => return Err(RegistryError::Timeout),
            }
        }
    }

    /// Returns once the log is durable up to `position`.
    async fn durable(&self, position: i64) -> Result<(), RegistryError> {
        if position <= 0 {
            return Ok(());
        }
        let log = self.log.clone();
        tokio::task::spawn_blocking(move || log.flush(position))
            .await
            .map_err(|e| RegistryError::Store(crate::store::StoreError(e.to_string())))??;
        Ok(())
    }

    /// The precomputed body of `GET /schemas/ids/{id}`.
    pub fn schema_body_by_id(&self, id: u32) -> Option<Bytes> {
        self.by_id.get(&id).map(|b| b.clone())
    }

    /// The subject versions using a schema id.
    pub fn id_versions(&self, id: u32, deleted: bool) -> Result<Vec<(String, u32)>, RegistryError> {
        let state = self.read();
        if !state.id_in_use(id) {
            return Err(RegistryError::SchemaIdNotFound(id));
        }
        Ok(state.versions_of_id(id, deleted))
    }

    /// The schema text of `content` in Confluent's `format`: `resolved` inlines an Avro
    /// schema's referenced types; any other format, or a schema of another type, is the
    /// stored text, as Confluent answers formats a schema type does not know.
    pub fn formatted(&self, content: &SubjectVersion, format: Option<&str>) -> String {
        self.format_content(&content.content, format)
    }

    fn format_content(&self, content: &SchemaContent, format: Option<&str>) -> String {
        let wanted = format.map(str::trim).unwrap_or("");
        if !wanted.eq_ignore_ascii_case("resolved")
            || content.schema_type.is_some()
            || content.references.is_empty()
        {
            return content.schema.clone();
        }
        let resolved = {
            let state = self.read();
            match resolve_references(&state, &content.references) {
                Ok(resolved) => resolved,
                Err(_) => return content.schema.clone(),
            }
        };
        let texts: Vec<String> = resolved.into_iter().map(|r| r.schema).collect();
        crate::resolved::inline(&content.schema, &texts).unwrap_or_else(|| content.schema.clone())
    }

    /// The body of `GET /schemas/ids/{id}?format=...` (see [`Registry::formatted`]).
    pub fn schema_body_formatted(&self, id: u32, format: &str) -> Option<Bytes> {
        let content = {
            let state = self.read();
            if !state.id_in_use(id) {
                return None;
            }
            state.schemas.get(&id)?.clone()
        };
        let mut shown = (*content).clone();
        shown.schema = self.format_content(&content, Some(format));
        Some(id_body(&shown))
    }

    /// The raw schema text of an id.
    pub fn schema_text_by_id(
        &self,
        id: u32,
        format: Option<&str>,
    ) -> Result<String, RegistryError> {
        let content = {
            let state = self.read();
            match state.schemas.get(&id) {
                Some(content) if state.id_in_use(id) => content.clone(),
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
                name.starts_with(prefix) && filter.keeps(deleted)
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
        for (subject, vs) in state.subjects.iter().filter(|(s, _)| s.starts_with(prefix)) {
            let mut chosen: Vec<(u32, u32)> = vs
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
                        id,
                        content: content.clone(),
                    });
                }
            }
        }
        out
    }

    /// The versions of a subject.
    pub fn versions(&self, subject: &str, filter: LookupFilter) -> Result<Vec<u32>, RegistryError> {
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

    fn find_version(
        state: &State,
        subject: &str,
        spec: VersionSpec,
        deleted: bool,
    ) -> Result<(u32, u32, bool), RegistryError> {
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
        let state = self.read();
        let (version, id, _) = Self::find_version(&state, subject, spec, deleted)?;
        let content = state
            .schemas
            .get(&id)
            .cloned()
            .ok_or(RegistryError::SchemaIdNotFound(id))?;
        Ok(SubjectVersion {
            subject: subject.to_string(),
            version,
            id,
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
                        id: v.id,
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
        let state = self.read();
        let (version, _, _) = Self::find_version(&state, subject, spec, false)?;
        Ok(state.referenced_by(subject, version))
    }

    fn check_request(
        &self,
        subject: &str,
        request: &SchemaRequest,
    ) -> Result<Format, RegistryError> {
        check_subject(subject)?;
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
    async fn parse_request(
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
            request_resolved(&state, &request)?
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
            let existing = state.identities.get(&identity).copied();
            let versions = state.subjects.get(subject);
            if let Some(id) = existing
                && let Some(vs) = versions
                && vs.values().any(|v| v.id == id && !v.deleted)
                && request.version.is_none()
            {
                Err(id)
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
            pending.insert(id, identity);
        }
        let committed = self.commit(events).await;
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&id);
        }
        let position = committed?;
        drop(writer);
        if let Ok(mut graphs) = self.graphs.lock() {
            graphs.entry(id).or_insert(parsed.graph.clone());
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
        existing: Option<u32>,
    ) -> Result<(Vec<Event>, u32, Option<CheckJob>), RegistryError> {
        let versions = state.subjects.get(subject);
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
                if state.schemas.contains_key(&given) {
                    return Err(RegistryError::OperationNotPermitted(format!(
                        "Overwrite new schema with id {given} is not permitted."
                    )));
                }
                given
            }
            (_, Some(known)) => known,
            (None, None) => state.max_id + 1,
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
        if existing.is_none() {
            let references = request.references.clone().unwrap_or_default();
            events.push(Event::SchemaId(SchemaContent {
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
        only: Option<(u32, u32)>,
    ) -> Result<Option<CheckJob>, RegistryError> {
        if level == Level::None {
            return Ok(None);
        }
        let mut chosen: Vec<(u32, u32)> = match only {
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
                .ok_or(RegistryError::SchemaIdNotFound(id))?;
            let graph = match self.cached_graph(id) {
                Some(graph) => Ok(graph),
                None => Err(resolve_references(state, &content.references)?),
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
            (only, request_resolved(&state, request)?)
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

    /// Finds the version of a subject holding this schema.
    pub async fn lookup(
        &self,
        subject: &str,
        request: &SchemaRequest,
        normalize: bool,
        deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
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
            request_resolved(&state, request)?
        };
        let parsed = self.parse_request(format, request, resolved).await?;
        let state = self.read();
        let versions = state
            .subjects
            .get(subject)
            .filter(|vs| deleted || vs.values().any(|v| !v.deleted))
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        let base = parsed.identity(normalize);
        let exact = state
            .identities
            .get(&with_contract(
                base,
                request.metadata.as_ref(),
                request.rule_set.as_ref(),
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
                        state.identities.get(&identity) == Some(&v.id)
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
            id,
            content,
        })
    }

    fn check_writable(state: &State, subject: &str) -> Result<(), RegistryError> {
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
        let writer = self.write_lock().await?;
        let (events, deleted) = {
            let state = self.read();
            Self::check_writable(&state, subject)?;
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
                (events, numbers)
            } else {
                if !any_live {
                    return Err(RegistryError::SubjectSoftDeleted(subject.to_string()));
                }
                let live: Vec<(u32, u32)> = state.live_versions(subject);
                let events = live
                    .iter()
                    .map(|(n, id)| {
                        Event::Version(VersionValue {
                            subject: subject.to_string(),
                            version: *n,
                            id: *id,
                            deleted: true,
                        })
                    })
                    .collect();
                (events, live.into_iter().map(|(n, _)| n).collect())
            }
        };
        let position = self.commit(events).await?;
        drop(writer);
        self.durable(position).await?;
        Ok(deleted)
    }

    /// Deletes one version: soft, or once soft-deleted, permanently.
    pub async fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<u32, RegistryError> {
        let writer = self.write_lock().await?;
        let (event, version) = {
            let state = self.read();
            Self::check_writable(&state, subject)?;
            let include_deleted = permanent || matches!(spec, VersionSpec::Number(_));
            let (version, id, was_deleted) =
                Self::find_version(&state, subject, spec, include_deleted)?;
            if permanent {
                if !was_deleted {
                    return Err(RegistryError::VersionNotSoftDeleted(
                        subject.to_string(),
                        version,
                    ));
                }
                (
                    Event::VersionGone {
                        subject: subject.to_string(),
                        version,
                    },
                    version,
                )
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
                (
                    Event::Version(VersionValue {
                        subject: subject.to_string(),
                        version,
                        id,
                        deleted: true,
                    }),
                    version,
                )
            }
        };
        let position = self.commit(vec![event]).await?;
        drop(writer);
        self.durable(position).await?;
        Ok(version)
    }

    /// The compatibility level of a subject (or the global one).
    pub fn config(
        &self,
        subject: Option<&str>,
        default_to_global: bool,
    ) -> Result<Level, RegistryError> {
        let state = self.read();
        match subject {
            None => Ok(state.global_level.unwrap_or(Level::Backward)),
            Some(s) => match state.subject_levels.get(s) {
                Some(level) => Ok(*level),
                None if default_to_global => Ok(state.global_level.unwrap_or(Level::Backward)),
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
        if let Some(s) = subject {
            check_subject(s)?;
        }
        let level: Level = level
            .parse()
            .map_err(|_| RegistryError::InvalidCompatibilityLevel)?;
        let writer = self.write_lock().await?;
        let position = self
            .commit(vec![Event::Config {
                subject: subject.map(str::to_string),
                level: Some(level.as_str().to_string()),
            }])
            .await?;
        drop(writer);
        self.durable(position).await?;
        Ok(level)
    }

    /// Removes a subject's (or the global) level; returns the level it had.
    pub async fn delete_config(&self, subject: Option<&str>) -> Result<Level, RegistryError> {
        let writer = self.write_lock().await?;
        let previous = {
            let state = self.read();
            match subject {
                None => state.global_level.unwrap_or(Level::Backward),
                Some(s) => *state
                    .subject_levels
                    .get(s)
                    .ok_or_else(|| RegistryError::NoSubjectConfig(s.to_string()))?,
            }
        };
        let position = self
            .commit(vec![Event::Config {
                subject: subject.map(str::to_string),
                level: None,
            }])
            .await?;
        drop(writer);
        self.durable(position).await?;
        Ok(previous)
    }

    /// The mode of a subject (or the global one).
    pub fn mode(
        &self,
        subject: Option<&str>,
        default_to_global: bool,
    ) -> Result<Mode, RegistryError> {
        let state = self.read();
        match subject {
            None => Ok(state.global_mode.unwrap_or(Mode::ReadWrite)),
            Some(s) => match state.subject_modes.get(s) {
                Some(mode) => Ok(*mode),
                None if default_to_global => Ok(state.global_mode.unwrap_or(Mode::ReadWrite)),
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
        if let Some(s) = subject {
            check_subject(s)?;
        }
        let mode: Mode = mode.parse().map_err(|_| RegistryError::InvalidMode)?;
        let writer = self.write_lock().await?;
        if mode == Mode::Import && !force {
            let state = self.read();
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
        let position = self
            .commit(vec![Event::Mode {
                subject: subject.map(str::to_string),
                mode: Some(mode.as_str().to_string()),
            }])
            .await?;
        drop(writer);
        self.durable(position).await?;
        Ok(mode)
    }

    /// Removes a subject's (or the global) mode; returns the mode it had.
    pub async fn delete_mode(&self, subject: Option<&str>) -> Result<Mode, RegistryError> {
        let writer = self.write_lock().await?;
        let previous = {
            let state = self.read();
            match subject {
                None => state.global_mode.unwrap_or(Mode::ReadWrite),
                Some(s) => *state
                    .subject_modes
                    .get(s)
                    .ok_or_else(|| RegistryError::NoSubjectMode(s.to_string()))?,
            }
        };
        let position = self
            .commit(vec![Event::Mode {
                subject: subject.map(str::to_string),
                mode: None,
            }])
            .await?;
        drop(writer);
        self.durable(position).await?;
        Ok(previous)
    }
}

/// The schema texts a list of references needs, transitively, dependencies first, each once.
fn resolve_references(
    state: &State,
    references: &[SchemaReference],
) -> Result<Vec<Resolved>, RegistryError> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for r in references {
        resolve_one(state, r, &mut out, &mut seen, 0)?;
    }
    Ok(out)
}

fn resolve_one(
    state: &State,
    r: &SchemaReference,
    out: &mut Vec<Resolved>,
    seen: &mut Vec<(String, u32)>,
    depth: usize,
) -> Result<(), RegistryError> {
    const MAX_DEPTH: usize = 32;
    if depth > MAX_DEPTH {
        return Err(RegistryError::InvalidSchema(
            "references nest too deeply".into(),
        ));
    }
    let key = (r.subject.clone(), r.version);
    if seen.contains(&key) {
        return Ok(());
    }
    let id = state
        .subjects
        .get(&r.subject)
        .and_then(|vs| vs.get(&r.version))
        .map(|v| v.id)
        .ok_or_else(|| {
            RegistryError::InvalidSchema(format!(
                "reference {:?} to subject '{}' version {} not found",
                r.name, r.subject, r.version
            ))
        })?;
    let content = state
        .schemas
        .get(&id)
        .ok_or(RegistryError::SchemaIdNotFound(id))?;
    seen.push(key);
    for nested in &content.references {
        resolve_one(state, nested, out, seen, depth + 1)?;
    }
    out.push(Resolved {
        name: r.name.clone(),
        schema: content.schema.clone(),
    });
    Ok(())
}
