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

//!
//! The operations live by concern: `reads.rs` answers lookups, `register.rs` registers and
//! tests schemas (parsing and compatibility checks), `delete.rs` soft- and hard-deletes,
//! `settings.rs` keeps compatibility levels and modes; this file holds the log-following
//! core and [`Registry::change`], the one path by which a decided change is appended.

mod contract;
mod delete;
mod reads;
mod register;
mod settings;
mod validation;

use std::collections::{HashMap, HashSet};

use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;

use crate::context;
use crate::error::RegistryError;
use crate::format::{self, Checkable, Format, Resolved};
use crate::payload::PayloadSchema;
use crate::store::{Event, Gid, LogRecord, SchemaContent, SchemaLog, SchemaReference, State};

pub use reads::{LookupFilter, SubjectVersion, VersionSpec};
pub use register::SchemaRequest;
use register::with_contract;
pub use settings::ConfigUpdate;

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

/// Adds the data-contract fields of a stored schema to a response body.
fn add_contract(body: &mut serde_json::Value, content: &SchemaContent) {
    if let Some(metadata) = &content.metadata {
        body["metadata"] = metadata.clone();
    }
    if let Some(rule_set) = &content.rule_set {
        body["ruleSet"] = rule_set.clone();
    }
}

/// The schema registry.
pub struct Registry {
    log: Arc<dyn SchemaLog>,
    state: RwLock<State>,
    by_id: DashMap<Gid, Bytes>,
    graphs: Mutex<HashMap<Gid, Arc<Checkable>>>,
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
    pending: Mutex<HashMap<(String, u32), String>>,
    /// The ids each subject's live versions use, replaced whole after applied records
    /// change versions, so that the broker's schema validation reads it without a lock.
    index: ArcSwap<validation::SchemaIndex>,
    /// Default-context schemas compiled for checking payloads, by id (an id never changes
    /// its schema).
    payloads: DashMap<u32, Arc<PayloadSchema>>,
    options: Options,
}

/// How long a write waits for its records to become readable (on a replicated `_schemas`,
/// for the high watermark to pass them) before answering 50002.
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the follower waits before retrying after a failed read of the log, when no
/// append wakes it sooner.
const FOLLOW_RETRY: Duration = Duration::from_secs(1);

/// Subjects may not be empty, hold control characters or be the reserved names.
/// A qualified name may name a context alone (`:.ctx:`, for its config and mode); the
/// reserved names are refused in any context.
fn check_subject(subject: &str) -> Result<(), RegistryError> {
    let within = context::QualifiedSubject::parse(subject).subject;
    if subject.is_empty()
        || subject.chars().any(char::is_control)
        || within == "__GLOBAL"
        || within == "__EMPTY"
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
            index: ArcSwap::from_pointee(validation::SchemaIndex::default()),
            payloads: DashMap::new(),
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
        let mut touched: HashSet<String> = HashSet::new();
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
                    Event::SchemaId(content)
                        if state
                            .gid(&content.context, content.id)
                            .is_none_or(|gid| !state.schemas.contains_key(&gid)) =>
                    {
                        (None, Some(content.id))
                    }
                    _ => (None, None),
                };
                if !state.apply(event) {
                    break;
                }
                match event {
                    Event::Version(v) => {
                        touched.insert(v.subject.clone());
                    }
                    Event::VersionGone { subject, .. } | Event::SubjectDeleted { subject, .. } => {
                        touched.insert(subject.clone());
                    }
                    _ => {}
                }
                match event {
                    Event::SchemaId(content) if new_id.is_some() => {
                        let known = self
                            .pending
                            .lock()
                            .ok()
                            .and_then(|mut p| p.remove(&(content.context.clone(), content.id)));
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
                        if let Some(identity) = identity
                            && let Some(gid) = state.gid(&content.context, content.id)
                        {
                            state
                                .identities
                                .entry((gid.context, identity))
                                .or_insert(gid);
                        }
                    }
                    Event::Version(v) => {
                        if let Some(gid) = state.gid(context::context_of(&v.subject), v.id)
                            && !self.by_id.contains_key(&gid)
                            && let Some(content) = state.schemas.get(&gid)
                        {
                            self.by_id.insert(gid, id_body(content));
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
        if !touched.is_empty() {
            self.publish_index(&state, &touched);
        }
    }

    fn parse_content(
        &self,
        state: &State,
        content: &SchemaContent,
    ) -> Result<(String, Arc<Checkable>), RegistryError> {
        let resolved = resolve_references(state, &content.context, &content.references)?;
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
    fn cached_graph(&self, id: Gid) -> Option<Arc<Checkable>> {
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
        let records: Vec<LogRecord> = {
            // A version is written with its schema, as Confluent's SCHEMA records are: from
            // this change's own SCHEMA_ID record, else from the state.
            let state = self.read();
            events
                .iter()
                .map(|event| {
                    let content = match event {
                        Event::Version(v) => {
                            let context = context::context_of(&v.subject);
                            let fresh = events.iter().find_map(|e| match e {
                                Event::SchemaId(c) if c.id == v.id && c.context == context => {
                                    Some(c)
                                }
                                _ => None,
                            });
                            fresh.or_else(|| {
                                let gid = state.gid(context, v.id)?;
                                state.schemas.get(&gid).map(|c| c.as_ref())
                            })
                        }
                        _ => None,
                    };
                    event.encode_with(content)
                })
                .collect()
        };
        let log = self.log.clone();
        let position = tokio::task::spawn_blocking(move || log.append(&records))
            .await
            .map_err(|e| RegistryError::Store(crate::store::StoreError(e.to_string())))??;
        self.appended.fetch_max(position, Ordering::AcqRel);
        self.applied_through(position).await?;
        Ok(position)
    }

    /// Makes one change: under the writer lock and caught up with the log, `decide` reads
    /// the state and returns the events to append (none to change nothing) with the answer,
    /// which is returned once the events are applied and durable. Every write but a
    /// registration (which parses and checks between deciding and appending) goes here.
    async fn change<T>(
        &self,
        decide: impl FnOnce(&State) -> Result<(Vec<Event>, T), RegistryError>,
    ) -> Result<T, RegistryError> {
        let writer = self.write_lock().await?;
        let (events, answer) = decide(&self.read())?;
        let position = self.commit(events).await?;
        // The next writer may append while this one waits for its fsync (group commit).
        drop(writer);
        self.durable(position).await?;
        Ok(answer)
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
}

/// The schema texts a list of references needs, transitively, dependencies first, each once.
/// `context` is the referencing schema's: an unqualified reference names a subject there.
fn resolve_references(
    state: &State,
    context: &str,
    references: &[SchemaReference],
) -> Result<Vec<Resolved>, RegistryError> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    let referrer = context::qualify(context, "");
    for r in references {
        resolve_one(state, &referrer, r, &mut out, &mut seen, 0)?;
    }
    Ok(out)
}

fn resolve_one(
    state: &State,
    referrer: &str,
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
    let subject = context::qualify_reference(referrer, &r.subject);
    let key = (subject.clone(), r.version);
    if seen.contains(&key) {
        return Ok(());
    }
    let id = state
        .subjects
        .get(&subject)
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
        .ok_or(RegistryError::SchemaIdNotFound(id.id))?;
    seen.push(key);
    for nested in &content.references {
        resolve_one(state, &subject, nested, out, seen, depth + 1)?;
    }
    out.push(Resolved {
        name: r.name.clone(),
        schema: content.schema.clone(),
    });
    Ok(())
}
