//! This node's topics: their partitions' logs and per-topic
//! configs, the ids they are known by, and producer id allocation.
//!
//! Layout in the data directory: each partition's log lives in `<topic>-<partition>/`
//! (Kafka's layout); the metadata lives under `cluster/`: `topics/<topic>.json` (topic
//! id, partition count, config overrides) and `producer-ids`. The cluster id is the
//! node's identity (`meta.properties`, see [`crate::identity`]); `cluster/cluster.json`,
//! where strand kept it before clusters, is only read from there. A topic exists once its JSON file is written (atomically, fsynced);
//! deleting the file first makes deletion safe against a crash halfway.
//!
//! Every method here does blocking file I/O: call it from `spawn_blocking`.

mod config;
mod error;
mod producer_ids;
mod topic;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use uuid::Uuid;

pub(crate) use config::{ConfigType, TOPIC_CONFIGS, config_def, default_value};
pub use config::{TopicConfig, TopicDefaults};
pub use error::TopicStoreError;
pub use producer_ids::ProducerIds;
pub use topic::{MAX_TOPIC_NAME_LEN, Topic, validate_topic_name};

use crate::log::{LogConfig, LogDir, LogError, PartitionLog};

/// Name of the compacted topic holding committed consumer offsets.
pub const CONSUMER_OFFSETS: &str = "__consumer_offsets";
/// Name of the compacted topic holding the schema registry's events.
pub const SCHEMAS: &str = "_schemas";

/// Most partitions one topic may have; a bound on what one request can make us open.
pub const MAX_PARTITIONS: i32 = 10_000;

/// What a topic's JSON file holds.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct TopicFile {
    id: Uuid,
    partitions: i32,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    configs: BTreeMap<String, String>,
    /// Whether the topic is in the metadata log (absent in files older than clusters).
    #[serde(default)]
    managed: bool,
    /// The partitions this node holds, when not all of them (a topic of the cluster whose
    /// replicas are spread over nodes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hosted: Option<Vec<i32>>,
}

/// A topic as the metadata image describes it, for [`TopicStore::apply_topic`].
#[derive(Debug, Clone)]
pub struct TopicSpec<'a> {
    /// The topic's name.
    pub name: &'a str,
    /// Its id in the cluster.
    pub id: Uuid,
    /// How many partitions it has in the cluster.
    pub partition_count: i32,
    /// The partitions whose replicas include this node.
    pub hosted: Vec<i32>,
    /// Its config overrides.
    pub configs: &'a BTreeMap<String, String>,
}

/// All topics of the broker, by name and by id, with their persistence.
#[derive(Debug)]
pub struct TopicStore {
    data_dir: PathBuf,
    topics_dir: PathBuf,
    defaults: TopicDefaults,
    default_partitions: i32,
    cluster_id: String,
    topics: DashMap<String, Arc<Topic>>,
    by_id: DashMap<Uuid, Arc<Topic>>,
    /// Serialises creations, deletions and config changes (rare, and each touches files).
    admin: Mutex<()>,
    producer_ids: ProducerIds,
    /// The data directory's free space, reserve and failures, shared by every log.
    log_dir: Arc<LogDir>,
}

impl TopicStore {
    /// Opens the data directory: loads every topic and opens its partition logs, and
    /// creates the internal topics when missing.
    pub fn open(
        data_dir: &Path,
        cluster_id: String,
        defaults: TopicDefaults,
        default_partitions: i32,
    ) -> Result<TopicStore, TopicStoreError> {
        Self::open_in(
            Arc::new(LogDir::new(data_dir, 0)),
            cluster_id,
            defaults,
            default_partitions,
        )
    }

    /// Like [`TopicStore::open`], in the data directory `log_dir` (with its reserve).
    pub fn open_in(
        log_dir: Arc<LogDir>,
        cluster_id: String,
        defaults: TopicDefaults,
        default_partitions: i32,
    ) -> Result<TopicStore, TopicStoreError> {
        let data_dir = log_dir.path().to_path_buf();
        let data_dir = data_dir.as_path();
        let meta_dir = data_dir.join("cluster");
        let topics_dir = meta_dir.join("topics");
        std::fs::create_dir_all(&topics_dir).map_err(|e| TopicStoreError::io(&topics_dir, e))?;
        let producer_ids = ProducerIds::open(&meta_dir)?;
        let store = TopicStore {
            data_dir: data_dir.to_path_buf(),
            topics_dir,
            defaults,
            default_partitions: default_partitions.max(1),
            cluster_id,
            topics: DashMap::new(),
            by_id: DashMap::new(),
            admin: Mutex::new(()),
            producer_ids,
            log_dir,
        };
        store.load_topics()?;
        for name in [CONSUMER_OFFSETS, SCHEMAS] {
            if store.topic(name).is_none() {
                let config = TopicConfig::from_overrides([("cleanup.policy", "compact")])?;
                store.create_topic_inner(name, 1, config, name == CONSUMER_OFFSETS)?;
            }
        }
        Ok(store)
    }

    fn load_topics(&self) -> Result<(), TopicStoreError> {
        let dir = &self.topics_dir;
        let entries = std::fs::read_dir(dir).map_err(|e| TopicStoreError::io(dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| TopicStoreError::io(dir, e))?;
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let text = std::fs::read(&path).map_err(|e| TopicStoreError::io(&path, e))?;
            let file: TopicFile =
                serde_json::from_slice(&text).map_err(|e| TopicStoreError::Corrupt {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            let corrupt = |reason: String| TopicStoreError::Corrupt {
                path: path.clone(),
                reason,
            };
            validate_topic_name(name).map_err(|e| corrupt(e.to_string()))?;
            if !(1..=MAX_PARTITIONS).contains(&file.partitions) {
                return Err(corrupt(format!("bad partition count {}", file.partitions)));
            }
            let config = TopicConfig::from_overrides(
                file.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .map_err(|e| corrupt(e.to_string()))?;
            let log_config = config.log_config(&self.defaults);
            let hosted: Vec<i32> = match &file.hosted {
                Some(hosted) => hosted
                    .iter()
                    .copied()
                    .filter(|p| (0..file.partitions).contains(p))
                    .collect(),
                None => (0..file.partitions).collect(),
            };
            let logs = self.open_logs(name, &hosted, &log_config, false)?;
            let topic = Arc::new(Topic::new(
                name.to_string(),
                file.id,
                file.internal,
                Vec::new(),
                config,
            ));
            topic.add_partitions(hosted.into_iter().zip(logs).collect());
            topic.set_partition_count(file.partitions);
            if file.managed {
                topic.set_managed();
            }
            tracing::info!(topic = name, partitions = file.partitions, "topic loaded");
            self.by_id.insert(file.id, topic.clone());
            self.topics.insert(name.to_string(), topic);
        }
        Ok(())
    }

    /// The cluster id (the node's `meta.properties`).
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// Broker-wide defaults of topic configs.
    pub fn defaults(&self) -> &TopicDefaults {
        &self.defaults
    }

    /// Partitions of an auto-created topic, and of a created one that asks for -1.
    pub fn default_partitions(&self) -> i32 {
        self.default_partitions
    }

    /// The producer id allocator.
    pub fn producer_ids(&self) -> &ProducerIds {
        &self.producer_ids
    }

    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.get(name).map(|t| t.value().clone())
    }

    /// The topic whose id is `id`.
    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.by_id.get(&id).map(|t| t.value().clone())
    }

    /// Every topic, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self.topics.iter().map(|t| t.value().clone()).collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
    }

    /// Checks what `create_topic` would check, without creating anything.
    pub fn validate_new_topic(&self, name: &str, partitions: i32) -> Result<(), TopicStoreError> {
        let names: Vec<String> = self.topics.iter().map(|t| t.key().clone()).collect();
        check_new_topic(name, partitions, names.iter().map(String::as_str))
    }

    /// Creates a topic with `partitions` partitions and the given config overrides.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        config: TopicConfig,
    ) -> Result<Arc<Topic>, TopicStoreError> {
        self.create_topic_inner(name, partitions, config, false)
    }

    /// The topic named `name`, created with the default partition count when missing
    /// (auto-creation).
    pub fn get_or_create_topic(&self, name: &str) -> Result<Arc<Topic>, TopicStoreError> {
        if let Some(t) = self.topic(name) {
            return Ok(t);
        }
        match self.create_topic_inner(name, self.default_partitions, TopicConfig::default(), false)
        {
            Err(TopicStoreError::TopicExists(_)) => self
                .topic(name)
                .ok_or_else(|| TopicStoreError::UnknownTopic(name.to_string())),
            other => {
                if other.is_ok() {
                    tracing::info!(topic = name, "topic auto-created");
                }
                other
            }
        }
    }

    fn create_topic_inner(
        &self,
        name: &str,
        partitions: i32,
        config: TopicConfig,
        internal: bool,
    ) -> Result<Arc<Topic>, TopicStoreError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        self.validate_new_topic(name, partitions)?;
        let id = random_uuid();
        let file = TopicFile {
            id,
            partitions,
            internal,
            configs: config.overrides().clone(),
            managed: false,
            hosted: None,
        };
        self.write_topic_file(name, &file)?;
        let log_config = config.log_config(&self.defaults);
        let all: Vec<i32> = (0..partitions).collect();
        let logs = self.open_logs(name, &all, &log_config, true)?;
        let topic = Arc::new(Topic::new(name.to_string(), id, internal, logs, config));
        self.by_id.insert(id, topic.clone());
        self.topics.insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, %id, "topic created");
        Ok(topic)
    }

    /// Deletes a topic: its metadata, then its partition logs.
    pub fn delete_topic(&self, name: &str) -> Result<(), TopicStoreError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let topic = self
            .topic(name)
            .ok_or_else(|| TopicStoreError::UnknownTopic(name.to_string()))?;
        if name == CONSUMER_OFFSETS || name == SCHEMAS {
            return Err(TopicStoreError::InvalidTopic(format!(
                "Topic {name} is used by strand itself and cannot be deleted"
            )));
        }
        self.remove_locked(&topic)
    }

    /// Removes a topic's file, then its logs; the caller holds `admin`.
    fn remove_locked(&self, topic: &Topic) -> Result<(), TopicStoreError> {
        let name = topic.name();
        let path = self.topic_file(name);
        std::fs::remove_file(&path).map_err(|e| TopicStoreError::io(&path, e))?;
        sync_dir(&self.topics_dir)?;
        self.topics.remove(name);
        self.by_id.remove(&topic.id());
        for (p, log) in topic.partitions() {
            let dir = self.log_dir(name, p);
            remove_log(&log, &dir)?;
        }
        tracing::info!(topic = name, "topic deleted");
        Ok(())
    }

    /// Makes this node's copy of a topic of the metadata image match it: creates it with
    /// the image's id (replacing a local topic of that name that the image deleted and
    /// created again), opens the logs of the partitions newly assigned to this node, and
    /// applies config overrides that changed. Returns the topic.
    pub fn apply_topic(&self, spec: &TopicSpec<'_>) -> Result<Arc<Topic>, TopicStoreError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let config = TopicConfig::from_overrides(
            spec.configs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        let log_config = config.log_config(&self.defaults);
        let existing = self.topic(spec.name);
        if let Some(topic) = &existing
            && topic.id() != spec.id
        {
            if !topic.is_managed() {
                return Err(TopicStoreError::InvalidTopic(format!(
                    "the cluster has a topic {} with id {}, and this node a topic of that name from before it joined, with id {}; this node's copy is left alone",
                    spec.name,
                    spec.id,
                    topic.id()
                )));
            }
            self.remove_locked(topic)?;
        }
        let topic = match existing.filter(|t| t.id() == spec.id) {
            Some(topic) => topic,
            None => {
                validate_topic_name(spec.name)?;
                let topic = Arc::new(Topic::new(
                    spec.name.to_string(),
                    spec.id,
                    false,
                    Vec::new(),
                    config.clone(),
                ));
                topic.set_managed();
                topic.set_partition_count(spec.partition_count);
                self.write_topic_file(spec.name, &Self::file_of(&topic, &spec.hosted))?;
                let logs = self.open_logs(spec.name, &spec.hosted, &log_config, true)?;
                topic.add_partitions(spec.hosted.iter().copied().zip(logs).collect());
                self.by_id.insert(spec.id, Arc::clone(&topic));
                self.topics
                    .insert(spec.name.to_string(), Arc::clone(&topic));
                tracing::info!(topic = spec.name, id = %spec.id, partitions = spec.partition_count, hosted = ?spec.hosted, "topic created from the metadata log");
                return Ok(topic);
            }
        };
        let new: Vec<i32> = spec
            .hosted
            .iter()
            .copied()
            .filter(|p| !topic.holds(*p))
            .collect();
        let changed_config = topic.config().overrides() != config.overrides();
        let changed = !new.is_empty()
            || changed_config
            || !topic.is_managed()
            || topic.partition_count() < spec.partition_count;
        if !changed {
            return Ok(topic);
        }
        let mut hosted: Vec<i32> = topic.partitions().into_iter().map(|(p, _)| p).collect();
        hosted.extend(&new);
        hosted.sort_unstable();
        topic.set_managed();
        topic.set_partition_count(spec.partition_count);
        if changed_config {
            for (_, log) in topic.partitions() {
                log.update_config(log_config.clone());
            }
            topic.set_config(config);
        }
        // The file first: a crash between the two opens the new logs at the next start.
        self.write_topic_file(spec.name, &Self::file_of(&topic, &hosted))?;
        let logs = self.open_logs(spec.name, &new, &log_config, false)?;
        topic.add_partitions(new.into_iter().zip(logs).collect());
        Ok(topic)
    }

    /// Removes a topic the metadata log deleted (or its copy on this node).
    pub fn remove_topic(&self, name: &str) -> Result<(), TopicStoreError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        match self.topic(name) {
            Some(topic) => self.remove_locked(&topic),
            None => Ok(()),
        }
    }

    /// What a topic's file says of `topic`, holding `hosted`.
    fn file_of(topic: &Topic, hosted: &[i32]) -> TopicFile {
        let count = topic.partition_count();
        let all = hosted.len() == usize::try_from(count).unwrap_or(0);
        TopicFile {
            id: topic.id(),
            partitions: count,
            internal: topic.is_internal(),
            configs: topic.config().overrides().clone(),
            managed: topic.is_managed(),
            hosted: (!all).then(|| hosted.to_vec()),
        }
    }

    /// Raises a topic's partition count to `count`; with `validate_only` only checks.
    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicStoreError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let topic = self
            .topic(name)
            .ok_or_else(|| TopicStoreError::UnknownTopic(name.to_string()))?;
        let current = topic.partition_count();
        check_partition_growth(current, count)?;
        if validate_only {
            return Ok(());
        }
        let config = topic.config();
        let hosted: Vec<i32> = (0..count).collect();
        let file = TopicFile {
            partitions: count,
            hosted: None,
            ..Self::file_of(&topic, &hosted)
        };
        self.write_topic_file(name, &file)?;
        let log_config = config.log_config(&self.defaults);
        let new: Vec<i32> = (current..count).collect();
        let logs = self.open_logs(name, &new, &log_config, true)?;
        topic.add_partitions(new.into_iter().zip(logs).collect());
        tracing::info!(topic = name, partitions = count, "partitions added");
        Ok(())
    }

    /// Replaces a topic's config overrides (persisted, then applied to its logs).
    pub fn set_topic_config(&self, name: &str, config: TopicConfig) -> Result<(), TopicStoreError> {
        let _admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        let topic = self
            .topic(name)
            .ok_or_else(|| TopicStoreError::UnknownTopic(name.to_string()))?;
        let hosted: Vec<i32> = topic.partitions().into_iter().map(|(p, _)| p).collect();
        let file = TopicFile {
            configs: config.overrides().clone(),
            ..Self::file_of(&topic, &hosted)
        };
        self.write_topic_file(name, &file)?;
        let log_config = config.log_config(&self.defaults);
        for (_, log) in topic.partitions() {
            log.update_config(log_config.clone());
        }
        topic.set_config(config);
        Ok(())
    }

    /// The data directory: free space, reserve, and the storage failures seen in it.
    pub fn storage(&self) -> &Arc<LogDir> {
        &self.log_dir
    }

    fn topic_file(&self, name: &str) -> PathBuf {
        self.topics_dir.join(format!("{name}.json"))
    }

    fn log_dir(&self, name: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{name}-{partition}"))
    }

    fn write_topic_file(&self, name: &str, file: &TopicFile) -> Result<(), TopicStoreError> {
        let path = self.topic_file(name);
        let json = serde_json::to_vec_pretty(file).map_err(|e| TopicStoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomically(&path, &json)
    }

    /// Opens the logs of `partitions`, several at a time: opening (or creating) a log waits
    /// on the disk for fsyncs, so a topic of 1 000 partitions opened one by one took seconds
    /// on a busy disk; the file system serves concurrent fsyncs of different files together.
    fn open_logs(
        &self,
        name: &str,
        partitions: &[i32],
        config: &LogConfig,
        fresh: bool,
    ) -> Result<Vec<Arc<PartitionLog>>, TopicStoreError> {
        crate::parallel::map_bounded(partitions, OPEN_THREADS, |&p| {
            self.open_log(name, p, config, fresh)
        })
        .into_iter()
        .collect()
    }

    /// Opens partition `partition`'s log; `fresh` removes a leftover directory of a topic
    /// of the same name deleted before a crash finished removing it.
    fn open_log(
        &self,
        name: &str,
        partition: i32,
        config: &LogConfig,
        fresh: bool,
    ) -> Result<Arc<PartitionLog>, TopicStoreError> {
        let dir = self.log_dir(name, partition);
        if fresh && dir.exists() {
            tracing::warn!(dir = %dir.display(), "removing a leftover log directory of a deleted topic");
            std::fs::remove_dir_all(&dir).map_err(|e| TopicStoreError::io(&dir, e))?;
        }
        Ok(Arc::new(PartitionLog::open_in(
            &self.log_dir,
            &dir,
            config.clone(),
            may_use_reserve(name),
        )?))
    }
}

/// Kafka's checks of a new topic's name and partition count against the names of the
/// topics that exist (on this node, or in the cluster's metadata image).
pub(crate) fn check_new_topic<'a>(
    name: &str,
    partitions: i32,
    existing: impl IntoIterator<Item = &'a str>,
) -> Result<(), TopicStoreError> {
    validate_topic_name(name)?;
    let existing: Vec<&str> = existing.into_iter().collect();
    if existing.contains(&name) {
        return Err(TopicStoreError::TopicExists(name.to_string()));
    }
    // Kafka's metric names turn '.' into '_', so names differing only there collide.
    let unified = name.replace('.', "_");
    if let Some(other) = existing.iter().find(|o| o.replace('.', "_") == unified) {
        return Err(TopicStoreError::InvalidTopic(format!(
            "Topic '{name}' collides with existing topic: {other}"
        )));
    }
    if partitions < 1 {
        return Err(TopicStoreError::InvalidPartitions(
            "Number of partitions must be larger than 0.".into(),
        ));
    }
    if partitions > MAX_PARTITIONS {
        return Err(TopicStoreError::InvalidPartitions(format!(
            "Number of partitions {partitions} is larger than the {MAX_PARTITIONS} strand allows per topic."
        )));
    }
    Ok(())
}

/// Kafka's checks of CreatePartitions raising a topic from `current` to `count` partitions.
pub(crate) fn check_partition_growth(current: i32, count: i32) -> Result<(), TopicStoreError> {
    if count < current {
        return Err(TopicStoreError::InvalidPartitions(format!(
            "Topic currently has {current} partitions, which is higher than the requested {count}."
        )));
    }
    if count == current {
        return Err(TopicStoreError::InvalidPartitions(format!(
            "Topic already has {current} partitions."
        )));
    }
    if count > MAX_PARTITIONS {
        return Err(TopicStoreError::InvalidPartitions(format!(
            "Number of partitions {count} is larger than the {MAX_PARTITIONS} strand allows per topic."
        )));
    }
    Ok(())
}

/// Whether a topic's appends may use the log dir's reserve: the internal topics, whose
/// small writes (offset commits, schema registrations) must go on when the disk fills.
fn may_use_reserve(topic: &str) -> bool {
    matches!(topic, CONSUMER_OFFSETS | SCHEMAS | "__transaction_state")
}

/// Threads opening one topic's partition logs at once.
const OPEN_THREADS: usize = 16;

/// Closes a partition log and removes its directory.
fn remove_log(log: &PartitionLog, dir: &Path) -> Result<(), TopicStoreError> {
    match log.delete() {
        Ok(()) => Ok(()),
        Err(LogError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            tracing::error!(dir = %dir.display(), "removing a deleted topic's log failed: {e}");
            Err(e.into())
        }
    }
}

/// Writes a file so that after a crash it holds either the old or the new content.
pub(crate) fn write_atomically(path: &Path, content: &[u8]) -> Result<(), TopicStoreError> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| TopicStoreError::io(&tmp, e))?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(|e| TopicStoreError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TopicStoreError::io(path, e))?;
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), TopicStoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TopicStoreError::io(dir, e))
}

/// A random (version 4) UUID, from the operating system's random source.
pub(crate) fn random_uuid() -> Uuid {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if filled.is_err() {
        // Without a random source, time and address still make a unique-enough id.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = (nanos ^ (&bytes as *const _ as u128)).to_le_bytes();
    }
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}
