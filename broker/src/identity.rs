//! The node's identity on disk: `meta.properties` in the data directory, in Kafka's format
//! (`version=1`, `cluster.id=…`, `node.id=…`), written at the first start and checked at
//! every later one, so that a data directory is never served by another node id or
//! joined to another cluster by mistake.
//!
//! The cluster id of a new directory is, in order: the one a data directory of strand
//! before clusters holds (`cluster/cluster.json`), so that an old single node keeps its
//! id; the configured one (`--cluster-id`); else a new one from the caller (random for a
//! node alone, derived from the voter list when there are several, so that the nodes of a
//! new cluster agree on it without being told).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The identity file's name, as Kafka names it.
pub const META_PROPERTIES: &str = "meta.properties";

/// What `meta.properties` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    /// The cluster this directory belongs to.
    pub cluster_id: String,
    /// The node this directory belongs to (`node.id`).
    pub node_id: i32,
}

/// Why the data directory's identity was refused or could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The directory belongs to another node.
    #[error(
        "{path}: this data directory belongs to node.id {found}, but this node is configured with node.id {configured}; start it with --node-id {found} or give it another data directory"
    )]
    WrongNode {
        /// The identity file.
        path: PathBuf,
        /// The node id in the file.
        found: i32,
        /// The configured node id.
        configured: i32,
    },
    /// The directory belongs to another cluster.
    #[error(
        "{path}: this data directory belongs to cluster.id {found}, but this node is configured with cluster.id {configured}; a node cannot move to another cluster with its data"
    )]
    WrongCluster {
        /// The identity file (or the legacy `cluster/cluster.json`).
        path: PathBuf,
        /// The cluster id in the file.
        found: String,
        /// The configured cluster id.
        configured: String,
    },
    /// The file is not a `meta.properties` strand can read.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Reads the identity of `data_dir`, or writes it when the directory has none: see the
/// module doc for where a new directory's cluster id comes from. Refuses a directory of
/// another node id, or of another cluster id than `configured_cluster` when one is given.
pub fn open_identity(
    data_dir: &Path,
    node_id: i32,
    configured_cluster: Option<&str>,
    new_cluster_id: impl FnOnce() -> String,
) -> Result<MetaProperties, IdentityError> {
    let path = data_dir.join(META_PROPERTIES);
    let io = |path: &Path, source| IdentityError::Io {
        path: path.to_path_buf(),
        source,
    };
    let check_cluster = |found: &str, path: &Path| match configured_cluster {
        Some(configured) if configured != found => Err(IdentityError::WrongCluster {
            path: path.to_path_buf(),
            found: found.to_string(),
            configured: configured.to_string(),
        }),
        _ => Ok(()),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let found = parse(&text).map_err(|reason| IdentityError::Corrupt {
                path: path.clone(),
                reason,
            })?;
            if found.node_id != node_id {
                return Err(IdentityError::WrongNode {
                    path,
                    found: found.node_id,
                    configured: node_id,
                });
            }
            check_cluster(&found.cluster_id, &path)?;
            Ok(found)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let legacy = data_dir.join("cluster").join("cluster.json");
            let cluster_id = match std::fs::read(&legacy) {
                Ok(bytes) => {
                    let id =
                        legacy_cluster_id(&bytes).map_err(|reason| IdentityError::Corrupt {
                            path: legacy.clone(),
                            reason,
                        })?;
                    check_cluster(&id, &legacy)?;
                    id
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match configured_cluster {
                    Some(id) => id.to_string(),
                    None => new_cluster_id(),
                },
                Err(e) => return Err(io(&legacy, e)),
            };
            if !valid_cluster_id(&cluster_id) {
                return Err(IdentityError::Corrupt {
                    path,
                    reason: format!(
                        "cluster id '{cluster_id}' must be 1 to 255 letters, digits, '-' or '_'"
                    ),
                });
            }
            let identity = MetaProperties {
                cluster_id,
                node_id,
            };
            std::fs::create_dir_all(data_dir).map_err(|e| io(data_dir, e))?;
            write_atomically(&path, render(&identity).as_bytes()).map_err(|e| io(&path, e))?;
            tracing::info!(cluster_id = %identity.cluster_id, node_id, "data directory formatted");
            Ok(identity)
        }
        Err(e) => Err(io(&path, e)),
    }
}

/// A new random cluster id: 16 random bytes in URL-safe base64, Kafka's form.
pub fn random_cluster_id() -> String {
    base64_url(crate::topics::random_uuid().as_bytes())
}

/// The cluster id the nodes of a new cluster derive from their voter list (every node
/// must be given the same list, so they agree): two 64-bit FNV-1a hashes of the list.
pub fn cluster_id_from_voters(voters: &BTreeMap<u64, String>) -> String {
    let text: String = voters
        .iter()
        .map(|(id, address)| format!("{id}@{address},"))
        .collect();
    let fnv = |seed: u64| {
        text.bytes().fold(seed, |hash, b| {
            (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_be_bytes());
    bytes[8..].copy_from_slice(&fnv(0x8422_2325_cbf2_9ce4).to_be_bytes());
    base64_url(&bytes)
}

fn valid_cluster_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn legacy_cluster_id(bytes: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct ClusterFile {
        cluster_id: String,
    }
    serde_json::from_slice::<ClusterFile>(bytes)
        .map(|f| f.cluster_id)
        .map_err(|e| e.to_string())
}

fn parse(text: &str) -> Result<MetaProperties, String> {
    let mut keys = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line '{line}' is not key=value"))?;
        keys.insert(key.trim(), value.trim());
    }
    match keys.get("version") {
        Some(&"1") => {}
        Some(other) => return Err(format!("version {other} is not supported (expected 1)")),
        None => return Err("no version".into()),
    }
    let cluster_id = keys
        .get("cluster.id")
        .filter(|id| !id.is_empty())
        .ok_or("no cluster.id")?
        .to_string();
    let node_id = keys
        .get("node.id")
        .ok_or("no node.id")?
        .parse::<i32>()
        .map_err(|e| format!("node.id: {e}"))?;
    Ok(MetaProperties {
        cluster_id,
        node_id,
    })
}

fn render(identity: &MetaProperties) -> String {
    format!(
        "#\n#Written by strand; do not edit.\ncluster.id={}\nnode.id={}\nversion=1\n",
        identity.cluster_id, identity.node_id
    )
}

fn write_atomically(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("properties.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(content)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// URL-safe base64 without padding, the form of Kafka's cluster ids.
pub(crate) fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_id_is_22_url_safe_characters() {
        let id = random_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(valid_cluster_id(&id));
        assert_eq!(base64_url(b"Man"), "TWFu");
    }

    #[test]
    fn first_start_writes_kafkas_format_and_later_starts_check_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = open_identity(dir.path(), 3, None, || "abc".into()).unwrap();
        assert_eq!(first.cluster_id, "abc");
        let text = std::fs::read_to_string(dir.path().join(META_PROPERTIES)).unwrap();
        assert!(text.contains("version=1\n") && text.contains("cluster.id=abc\n"));
        assert!(text.contains("node.id=3\n"));
        let again = open_identity(dir.path(), 3, Some("abc"), || unreachable!()).unwrap();
        assert_eq!(again, first);

        let wrong_node = open_identity(dir.path(), 4, None, || unreachable!()).unwrap_err();
        let message = wrong_node.to_string();
        assert!(
            message.contains("node.id 3") && message.contains("node.id 4"),
            "{message}"
        );
        let wrong_cluster = open_identity(dir.path(), 3, Some("xyz"), || unreachable!());
        let message = wrong_cluster.unwrap_err().to_string();
        assert!(
            message.contains("abc") && message.contains("xyz"),
            "{message}"
        );
    }

    #[test]
    fn an_old_single_node_directory_keeps_its_cluster_id() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cluster")).unwrap();
        std::fs::write(
            dir.path().join("cluster/cluster.json"),
            br#"{"cluster_id":"old-id_1"}"#,
        )
        .unwrap();
        let identity = open_identity(dir.path(), 1, None, || "new".into()).unwrap();
        assert_eq!(identity.cluster_id, "old-id_1");
    }

    #[test]
    fn voters_give_every_node_the_same_cluster_id() {
        let voters = BTreeMap::from([(1, "h:1".to_string()), (2, "h:2".to_string())]);
        let id = cluster_id_from_voters(&voters);
        assert_eq!(id, cluster_id_from_voters(&voters.clone()));
        assert!(valid_cluster_id(&id));
        let other = BTreeMap::from([(1, "h:1".to_string()), (2, "h:3".to_string())]);
        assert_ne!(id, cluster_id_from_voters(&other));
    }
}
