//! A cluster of `strand serve` processes on loopback for tests: N nodes, each with its own
//! data directory, ports and log file, and a fault-injecting [`Proxy`] in front of each
//! node's Kafka listener and controller listener. Every address a node gives out or is
//! given points at the proxies (its advertised Kafka address, the voters in
//! `--controller-quorum-voters`), so every byte between nodes passes a proxy and a test can
//! isolate a node: the proxies tell nodes apart by which process owns the connecting
//! socket (`/proc`), and [`Cluster::isolate`] cuts only node-to-node links, so the test's
//! own clients still reach every node (an isolated leader can then be seen refusing or
//! timing out `acks=all` writes).
//!
//! Nodes are killed (SIGKILL), stopped (SIGTERM) and restarted on the same data directory
//! and ports. Waiting is on conditions read from the nodes (Metadata's brokers, controller,
//! partition leaders) with bounded timeouts. Each node's log goes to `strand.log` in its
//! directory; a cluster dropped without [`Cluster::shutdown`] (a failed test) prints every
//! node's log, and `STRAND_KEEP_CLUSTER=1` keeps the directories for a look afterwards.
//!
//! A `strand` binary without the cluster flags (`--controller-addr`,
//! `--controller-quorum-voters`; `STRAND_BIN` may name an old one) can only run one-node
//! clusters; [`quorum_flags_supported`] says which.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, metadata_request};

use crate::kafka::{KafkaClient, name};
use crate::proxy::{Classifier, Peer, Proxy};
use crate::{Launch, Strand, strand_bin};

/// The longest a node gets to start, and the default bound of the `wait_for_…` helpers.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether this build of `strand serve` takes `--controller-quorum-voters` (read once from
/// its `--help`).
pub fn quorum_flags_supported() -> anyhow::Result<bool> {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    if let Some(supported) = SUPPORTED.get() {
        return Ok(*supported);
    }
    let out = std::process::Command::new(strand_bin()?)
        .args(["serve", "--help"])
        .output()
        .context("running strand serve --help")?;
    let supported = String::from_utf8_lossy(&out.stdout).contains("--controller-quorum-voters");
    Ok(*SUPPORTED.get_or_init(|| supported))
}

/// How to start a [`Cluster`].
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    nodes: usize,
    flags: Vec<String>,
    env: Vec<(String, String)>,
}

impl ClusterBuilder {
    /// Adds `flag value` to every node's command line.
    pub fn flag(mut self, flag: &str, value: &str) -> Self {
        self.flags.push(flag.to_string());
        self.flags.push(value.to_string());
        self
    }

    /// Sets an environment variable of every node.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Starts every node and waits until each printed its listeners.
    pub fn start(self) -> anyhow::Result<Cluster> {
        Cluster::start_from(self)
    }
}

/// One node of a [`Cluster`].
struct Node {
    id: i32,
    dir: PathBuf,
    kafka_proxy: Proxy,
    controller_proxy: Proxy,
    /// The controller listener's port, fixed before the first start because the voter
    /// list (through the proxies) must exist before any node runs.
    controller_port: u16,
    /// The bound ports of the kafka, registry and admin listeners, reused on restart.
    ports: Option<[SocketAddr; 3]>,
    process: Option<Strand>,
}

impl Node {
    fn log_path(&self) -> PathBuf {
        self.dir.join("strand.log")
    }
}

/// Node id by process id, as the proxies' classifier reads it.
type Pids = Arc<Mutex<BTreeMap<u32, i32>>>;

/// N `strand serve` processes forming one cluster (see the module doc).
pub struct Cluster {
    nodes: Vec<Node>,
    builder: ClusterBuilder,
    voters: String,
    pids: Pids,
    /// Set by [`Cluster::shutdown`]; a cluster dropped without it prints the logs.
    clean: bool,
    root: Option<tempfile::TempDir>,
    // Last: the proxies (in `nodes`) run on it and must go first.
    _runtime: tokio::runtime::Runtime,
}

impl Cluster {
    /// A cluster of `nodes` nodes with default settings.
    pub fn builder(nodes: usize) -> ClusterBuilder {
        ClusterBuilder {
            nodes,
            flags: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Starts a cluster of `nodes` nodes with default settings.
    pub fn start(nodes: usize) -> anyhow::Result<Cluster> {
        Self::builder(nodes).start()
    }

    fn start_from(builder: ClusterBuilder) -> anyhow::Result<Cluster> {
        if builder.nodes == 0 {
            bail!("a cluster needs at least one node");
        }
        if builder.nodes > 1 && !quorum_flags_supported()? {
            bail!("strand serve has no --controller-quorum-voters yet: only one-node clusters");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("cluster-proxy")
            .build()
            .context("starting the proxies' runtime")?;
        let root = tempfile::Builder::new()
            .prefix("strand-cluster-")
            .tempdir()?;
        let pids: Pids = Arc::default();
        let classifier: Classifier = {
            let pids = pids.clone();
            Arc::new(move |from, local| socket_owner(from, local, &pids))
        };
        // Until a node has started, its proxies point at a port nothing listens on.
        let nowhere = SocketAddr::from(([127, 0, 0, 1], 1));
        let mut nodes = Vec::new();
        for id in 1..=builder.nodes as i32 {
            let dir = root.path().join(format!("node-{id}"));
            std::fs::create_dir_all(&dir)?;
            let controller_port = free_port()?;
            let (kafka_proxy, controller_proxy) = runtime.block_on(async {
                let controller = SocketAddr::from(([127, 0, 0, 1], controller_port));
                anyhow::Ok((
                    Proxy::start_with(nowhere, Some(classifier.clone())).await?,
                    Proxy::start_with(controller, Some(classifier.clone())).await?,
                ))
            })?;
            nodes.push(Node {
                id,
                dir,
                kafka_proxy,
                controller_proxy,
                controller_port,
                ports: None,
                process: None,
            });
        }
        let voters = nodes
            .iter()
            .map(|n| format!("{}@{}", n.id, n.controller_proxy.addr()))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            nodes,
            builder,
            voters,
            pids,
            clean: false,
            root: Some(root),
            _runtime: runtime,
        };
        let ids = cluster.node_ids();
        // Every process first, then wait: a node may wait for a quorum before it binds.
        for &id in &ids {
            cluster.spawn(id)?;
        }
        for &id in &ids {
            cluster.wait_started(id)?;
        }
        Ok(cluster)
    }

    /// The node ids, 1 to N.
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The node ids of the nodes running now.
    pub fn running(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|n| n.process.is_some())
            .map(|n| n.id)
            .collect()
    }

    fn node(&self, id: i32) -> anyhow::Result<&Node> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .with_context(|| format!("no node {id}"))
    }

    fn node_mut(&mut self, id: i32) -> anyhow::Result<&mut Node> {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .with_context(|| format!("no node {id}"))
    }

    fn spawn(&mut self, id: i32) -> anyhow::Result<()> {
        let with_quorum = quorum_flags_supported()?;
        let voters = self.voters.clone();
        let builder = self.builder.clone();
        let pids = self.pids.clone();
        let node = self.node_mut(id)?;
        if node.process.is_some() {
            bail!("node {id} is running");
        }
        let mut args: Vec<String> = vec![
            "--node-id".into(),
            id.to_string(),
            "--advertised-kafka-addr".into(),
            node.kafka_proxy.addr().to_string(),
        ];
        if with_quorum {
            args.extend([
                "--controller-addr".into(),
                format!("127.0.0.1:{}", node.controller_port),
                "--controller-quorum-voters".into(),
                voters,
            ]);
        }
        if let Some([kafka, registry, admin]) = node.ports {
            args.extend([
                "--kafka-addr".into(),
                kafka.to_string(),
                "--registry-addr".into(),
                registry.to_string(),
                "--admin-addr".into(),
                admin.to_string(),
            ]);
        }
        args.extend(builder.flags.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = builder
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let log = node.log_path();
        append_line(
            &log,
            &format!("==== node {id}: strand serve {}", args.join(" ")),
        );
        let strand = Strand::spawn(
            &node.dir.join("data"),
            &args,
            &env,
            Launch::default().log_to(&log),
        )
        .with_context(|| format!("starting node {id}"))?;
        pids.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(strand.pid(), id);
        node.process = Some(strand);
        Ok(())
    }

    fn wait_started(&mut self, id: i32) -> anyhow::Result<()> {
        let node = self.node_mut(id)?;
        let strand = node.process.as_mut().context("not running")?;
        strand
            .wait_started()
            .with_context(|| format!("node {id} did not start"))?;
        let kafka = strand.addr("kafka")?;
        let ports = [kafka, strand.addr("registry")?, strand.addr("admin")?];
        if let Ok(controller) = strand.addr("controller") {
            node.controller_proxy.set_target(controller);
        }
        node.kafka_proxy.set_target(kafka);
        node.ports = Some(ports);
        Ok(())
    }

    fn forget_pid(&self, pid: u32) {
        self.pids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
    }

    /// Kills node `id` with SIGKILL, as a crash would.
    pub fn kill(&mut self, id: i32) -> anyhow::Result<()> {
        let strand = self.node_mut(id)?.process.take().context("not running")?;
        let pid = strand.pid();
        strand.kill()?;
        self.forget_pid(pid);
        Ok(())
    }

    /// Stops node `id` with SIGTERM and returns its exit status.
    pub fn stop(&mut self, id: i32) -> anyhow::Result<ExitStatus> {
        let strand = self.node_mut(id)?.process.take().context("not running")?;
        let pid = strand.pid();
        let status = strand.terminate()?;
        self.forget_pid(pid);
        Ok(status)
    }

    /// Starts a stopped or killed node again on its data directory and ports.
    pub fn restart(&mut self, id: i32) -> anyhow::Result<()> {
        self.spawn(id)?;
        self.wait_started(id)
    }

    /// Cuts node `id` off from every other node, both ways, on the Kafka and controller
    /// listeners: open connections between them are reset and new ones refused. The
    /// test's own clients still reach every node.
    pub fn isolate(&self, id: i32) -> anyhow::Result<()> {
        self.cut_off(id, |faults| faults.cut())
    }

    /// Like [`Cluster::isolate`], but the links go silent instead of failing: nothing is
    /// forwarded and nothing is refused, as when packets vanish.
    pub fn isolate_silently(&self, id: i32) -> anyhow::Result<()> {
        self.cut_off(id, |faults| faults.blackhole())
    }

    /// Undoes [`Cluster::isolate`] or [`Cluster::isolate_silently`] of node `id`.
    pub fn heal(&self, id: i32) -> anyhow::Result<()> {
        self.cut_off(id, |faults| faults.heal())
    }

    fn cut_off(
        &self,
        id: i32,
        apply: impl Fn(&crate::proxy::PeerFaults<'_>),
    ) -> anyhow::Result<()> {
        self.node(id)?;
        for node in &self.nodes {
            let peers: Vec<i32> = if node.id == id {
                self.node_ids().into_iter().filter(|&o| o != id).collect()
            } else {
                vec![id]
            };
            for peer in peers {
                apply(&node.kafka_proxy.peer(Peer::Node(peer)));
                apply(&node.controller_proxy.peer(Peer::Node(peer)));
            }
        }
        Ok(())
    }

    /// The proxy in front of node `id`'s Kafka listener (its advertised address).
    pub fn kafka_proxy(&self, id: i32) -> anyhow::Result<&Proxy> {
        Ok(&self.node(id)?.kafka_proxy)
    }

    /// The proxy in front of node `id`'s controller listener (its voter address).
    pub fn controller_proxy(&self, id: i32) -> anyhow::Result<&Proxy> {
        Ok(&self.node(id)?.controller_proxy)
    }

    /// Node `id`'s Kafka address as clients see it (through its proxy).
    pub fn kafka_addr(&self, id: i32) -> anyhow::Result<SocketAddr> {
        Ok(self.node(id)?.kafka_proxy.addr())
    }

    /// Node `id`'s own Kafka listener, past its proxy and the faults.
    pub fn direct_kafka_addr(&self, id: i32) -> anyhow::Result<SocketAddr> {
        self.listener(id, 0)
    }

    /// Node `id`'s schema registry.
    pub fn registry_addr(&self, id: i32) -> anyhow::Result<SocketAddr> {
        self.listener(id, 1)
    }

    /// Node `id`'s admin listener (/health, /ready).
    pub fn admin_addr(&self, id: i32) -> anyhow::Result<SocketAddr> {
        self.listener(id, 2)
    }

    fn listener(&self, id: i32, which: usize) -> anyhow::Result<SocketAddr> {
        let ports = self
            .node(id)?
            .ports
            .with_context(|| format!("node {id} never started"))?;
        Ok(ports[which])
    }

    /// Every node's Kafka address as clients see it, comma-separated
    /// (`bootstrap.servers`).
    pub fn bootstrap_servers(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.kafka_proxy.addr().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A Kafka connection to node `id` through its proxy, as a client would have.
    pub fn client(&self, id: i32) -> anyhow::Result<KafkaClient> {
        KafkaClient::connect(self.kafka_addr(id)?)
    }

    /// Node `id`'s Metadata (v12, on a fresh direct connection) for `topics`, or for every
    /// topic when `None`; nothing is auto-created.
    pub fn metadata(&self, id: i32, topics: Option<&[&str]>) -> anyhow::Result<MetadataResponse> {
        let mut client = KafkaClient::connect(self.direct_kafka_addr(id)?)?;
        let request = MetadataRequest::default()
            .with_topics(topics.map(|topics| {
                topics
                    .iter()
                    .map(|t| {
                        metadata_request::MetadataRequestTopic::default().with_name(Some(name(t)))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        client.call(12, &request)
    }

    /// Calls `check` until it returns `Some` (bounded by `timeout`); an error counts as
    /// "not yet" (a node restarting refuses connections) and the last one is reported if
    /// time runs out.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Cluster) -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + timeout;
        let mut last = String::from("never true");
        loop {
            match check(self) {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(e) => last = format!("{e:#}"),
            }
            if Instant::now() >= deadline {
                bail!("{what}: not within {timeout:?} (last: {last})");
            }
            // Another process's state has no notification to wait on; this paces the asking.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until node `id`'s Metadata lists exactly the brokers `expected` (sorted ids).
    pub fn wait_for_brokers(&self, id: i32, expected: &[i32]) -> anyhow::Result<()> {
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        self.wait_for(
            &format!("node {id} lists brokers {expected:?}"),
            CLUSTER_TIMEOUT,
            |c| {
                let brokers = broker_ids(&c.metadata(id, Some(&[]))?);
                Ok((brokers == expected).then_some(()))
            },
        )
    }

    /// Waits until node `id`'s Metadata names a controller, and returns its id.
    pub fn wait_for_controller(&self, id: i32) -> anyhow::Result<i32> {
        self.wait_for(
            &format!("node {id} names a controller"),
            CLUSTER_TIMEOUT,
            |c| {
                let controller = c.metadata(id, Some(&[]))?.controller_id.0;
                Ok((controller >= 0).then_some(controller))
            },
        )
    }

    /// Waits until every running node lists every running node as a broker and all name
    /// the same controller, and returns its id.
    pub fn wait_for_agreement(&self) -> anyhow::Result<i32> {
        let running = self.running();
        self.wait_for(
            &format!("nodes {running:?} agree on brokers and controller"),
            CLUSTER_TIMEOUT,
            |c| {
                let mut controllers = Vec::new();
                for &id in &running {
                    let metadata = c.metadata(id, Some(&[]))?;
                    if broker_ids(&metadata) != running {
                        return Ok(None);
                    }
                    controllers.push(metadata.controller_id.0);
                }
                let first = controllers[0];
                Ok((first >= 0 && controllers.iter().all(|&c| c == first)).then_some(first))
            },
        )
    }

    /// Waits until node `id`'s Metadata gives `topic`'s `partition` a leader, and returns
    /// the leader's id.
    pub fn wait_for_leader(&self, id: i32, topic: &str, partition: i32) -> anyhow::Result<i32> {
        self.wait_for(
            &format!("node {id} names a leader of {topic}-{partition}"),
            CLUSTER_TIMEOUT,
            |c| {
                Ok(leader_of(
                    &c.metadata(id, Some(&[topic]))?,
                    topic,
                    partition,
                ))
            },
        )
    }

    /// What node `id`'s Metadata says of `topic`'s `partition` (None: it does not know it).
    pub fn partition(
        &self,
        id: i32,
        topic: &str,
        partition: i32,
    ) -> anyhow::Result<Option<PartitionInfo>> {
        Ok(partition_info(
            &self.metadata(id, Some(&[topic]))?,
            topic,
            partition,
        ))
    }

    /// Waits until node `id`'s Metadata gives `topic`'s `partition` exactly the in-sync
    /// replicas `expected` (in any order), and returns what it says of the partition.
    pub fn wait_for_isr(
        &self,
        id: i32,
        topic: &str,
        partition: i32,
        expected: &[i32],
    ) -> anyhow::Result<PartitionInfo> {
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        self.wait_for(
            &format!("node {id} gives {topic}-{partition} the ISR {expected:?}"),
            CLUSTER_TIMEOUT,
            |c| {
                Ok(c.partition(id, topic, partition)?.filter(|p| {
                    let mut isr = p.isr.clone();
                    isr.sort_unstable();
                    isr == expected
                }))
            },
        )
    }

    /// Prints the end of every node's log to stderr (the test's output).
    pub fn print_logs(&self) {
        const LINES: usize = 300;
        for node in &self.nodes {
            let path = node.log_path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let skip = lines.len().saturating_sub(LINES);
            eprintln!(
                "===== node {} log ({}, last {} of {} lines) =====",
                node.id,
                path.display(),
                lines.len() - skip,
                lines.len()
            );
            for line in &lines[skip..] {
                eprintln!("{line}");
            }
        }
    }

    /// Stops every running node with SIGTERM and checks each exits cleanly; the logs are
    /// then not printed.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        for id in self.running() {
            let status = self.stop(id)?;
            if !status.success() {
                bail!("node {id} exited with {status} on SIGTERM");
            }
        }
        self.clean = true;
        Ok(())
    }

    /// Node `id`'s data directory.
    pub fn data_dir(&self, id: i32) -> anyhow::Result<PathBuf> {
        Ok(self.node(id)?.dir.join("data"))
    }

    /// The directory holding every node's directory.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_ref().map(|r| r.path())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(strand) = node.process.take() {
                let _ = strand.kill();
            }
        }
        if !self.clean {
            self.print_logs();
        }
        if std::env::var_os("STRAND_KEEP_CLUSTER").is_some_and(|v| v == "1")
            && let Some(root) = self.root.take()
        {
            eprintln!("cluster kept in {}", root.keep().display());
        }
    }
}

/// The ids of the brokers a Metadata response lists, sorted.
pub fn broker_ids(metadata: &MetadataResponse) -> Vec<i32> {
    let mut ids: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    ids.sort_unstable();
    ids
}

/// The leader a Metadata response gives `topic`'s `partition`, if it has one.
pub fn leader_of(metadata: &MetadataResponse, topic: &str, partition: i32) -> Option<i32> {
    partition_info(metadata, topic, partition)
        .map(|p| p.leader)
        .filter(|&leader| leader >= 0)
}

/// A partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The leader's node id, -1 when it has none.
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// The replicas on brokers that are not live.
    pub offline: Vec<i32>,
}

/// What a Metadata response says of `topic`'s `partition`, if it knows it.
pub fn partition_info(
    metadata: &MetadataResponse,
    topic: &str,
    partition: i32,
) -> Option<PartitionInfo> {
    let ids = |v: &[kafka_protocol::messages::BrokerId]| v.iter().map(|b| b.0).collect();
    metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic) && t.error_code == 0)?
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .map(|p| PartitionInfo {
            leader: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            replicas: ids(&p.replica_nodes),
            isr: ids(&p.isr_nodes),
            offline: ids(&p.offline_replicas),
        })
}

/// A port free now on loopback (another process may take it before it is bound again).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn append_line(path: &Path, line: &str) {
    use std::io::Write;
    if let Ok(mut file) = std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(file, "{line}");
    }
}

/// Which node opened the connection from `from` to `to` (a proxy's address): the socket
/// is found in `/proc/net/tcp` by its two ends, and its inode among the open files of each
/// node's process.
fn socket_owner(from: SocketAddr, to: SocketAddr, pids: &Pids) -> Peer {
    let (SocketAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
        return Peer::Other;
    };
    let Some(inode) = socket_inode(from, to) else {
        return Peer::Other;
    };
    let link = format!("socket:[{inode}]");
    let pids: Vec<(u32, i32)> = pids
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(&pid, &id)| (pid, id))
        .collect();
    for (pid, id) in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == link.as_str())
            {
                return Peer::Node(id);
            }
        }
    }
    Peer::Other
}

/// The inode of the socket whose local end is `local` and remote end `remote`.
fn socket_inode(local: SocketAddrV4, remote: SocketAddrV4) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (l, r, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
        (proc_addr(l)? == local && proc_addr(r)? == remote)
            .then(|| inode.parse().ok())
            .flatten()
            .filter(|&inode| inode != 0)
    })
}

/// Parses `/proc/net/tcp`'s `0100007F:1F90`: the address as the kernel's 32-bit word in
/// host byte order, then the port, both in hex.
fn proc_addr(text: &str) -> Option<SocketAddrV4> {
    let (ip, port) = text.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::from(ip.to_ne_bytes()), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_addresses_parse_in_host_byte_order() {
        assert_eq!(
            proc_addr("0100007F:1F90"),
            Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080))
        );
        assert_eq!(proc_addr("nonsense"), None);
    }

    #[test]
    fn socket_owner_finds_the_process_holding_the_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, from) = listener.accept().unwrap();
        assert_eq!(from, client.local_addr().unwrap());
        let pids: Pids = Arc::default();
        let to = listener.local_addr().unwrap();
        assert_eq!(socket_owner(from, to, &pids), Peer::Other);
        pids.lock().unwrap().insert(std::process::id(), 7);
        assert_eq!(socket_owner(from, to, &pids), Peer::Node(7));
    }

    #[test]
    fn socket_owner_tells_another_process_from_this_one() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = listener.local_addr().unwrap();
        // bash connects and then blocks reading the socket until it closes.
        let mut child = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "exec 3<>/dev/tcp/127.0.0.1/{}; read -u 3",
                to.port()
            ))
            .spawn()
            .unwrap();
        let (server, from) = listener.accept().unwrap();
        let pids: Pids = Arc::default();
        pids.lock().unwrap().insert(std::process::id(), 1);
        assert_eq!(socket_owner(from, to, &pids), Peer::Other);
        pids.lock().unwrap().insert(child.id(), 2);
        assert_eq!(socket_owner(from, to, &pids), Peer::Node(2));
        drop(server);
        child.wait().unwrap();
    }
}
