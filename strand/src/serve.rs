//! `strand serve`: opens the data directory (checking that it belongs to this node and
//! cluster), binds every listener, starts this node's controller quorum member (combined
//! mode: every node is a broker and a controller voter; with no voter list, a cluster of
//! this node alone), registers the broker with the active controller and serves Kafka
//! once it is unfenced, until SIGINT or SIGTERM; then shuts down cleanly.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::StatusCode;
use axum::routing::get;
use strand_broker::controller::{Controller, ControllerConfig, parse_voters};
use strand_broker::identity::{cluster_id_from_voters, open_identity, random_cluster_id};
use strand_broker::{Broker, BrokerConfig, GroupConfig, LogConfig, TopicDefaults};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ServeConfig;

/// Runs `strand serve` to completion.
pub fn run(config: ServeConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strand")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    // Installed before the listeners are printed, so a SIGTERM sent as soon as a script sees
    // them is a clean shutdown rather than the default kill.
    let signalled = wait_for_signal()?;
    tokio::pin!(signalled);
    let _lock = lock_data_dir(&config)?;
    let node_id = config.node_id;
    let raft_id = u64::try_from(node_id)
        .map_err(|_| anyhow::anyhow!("node.id {node_id} is negative; node ids start at 0"))?;
    let configured_voters = match &config.controller_quorum_voters {
        Some(voters) => Some(parse_voters(voters)?),
        None => None,
    };
    if let Some(voters) = &configured_voters
        && !voters.contains_key(&raft_id)
    {
        anyhow::bail!(
            "node.id {node_id} is not in controller.quorum.voters ({}): every node is a controller voter, so the list must name this node",
            voters_text(voters)
        );
    }
    let identity = open_identity(
        &config.data_dir,
        node_id,
        config.cluster_id.as_deref(),
        || match &configured_voters {
            Some(voters) if voters.len() > 1 => cluster_id_from_voters(voters),
            _ => random_cluster_id(),
        },
    )?;
    tracing::info!(
        data_dir = %config.data_dir.display(),
        cluster_id = %identity.cluster_id,
        node_id,
        "data directory open"
    );

    let admin = bind("admin", config.admin_addr).await?;
    // Before the Kafka listener, so that whoever waits for the kafka, registry and admin
    // lines has seen this one too.
    let controller_listener = bind("controller", config.controller_addr).await?;
    let kafka = bind("kafka", config.kafka_addr).await?;
    let registry = bind("registry", config.registry_addr).await?;
    let controller_bound = controller_listener
        .local_addr()
        .context("reading the controller address")?;
    let voters = match configured_voters {
        // The voter list may name a proxy or a NAT address in front of this listener, so
        // its entry for this node is not compared with the bound address.
        Some(voters) => voters,
        None => BTreeMap::from([(raft_id, controller_bound.to_string())]),
    };

    let advertised = match &config.advertised_kafka_addr {
        Some(addr) => addr.clone(),
        None => kafka
            .local_addr()
            .context("reading the kafka address")?
            .to_string(),
    };
    let broker_config = broker_config(&config, identity.cluster_id.clone(), advertised);
    let (host, port) = broker_config.advertised();
    let advertised = (
        host.to_string(),
        u16::try_from(port).context("the advertised Kafka port")?,
    );
    let broker = tokio::task::spawn_blocking(move || Broker::open(broker_config))
        .await
        .context("opening the broker")?
        .context("opening the broker's data")?;
    let broker = Arc::new(broker);

    let mut controller_config =
        ControllerConfig::new(node_id, identity.cluster_id.clone(), &config.data_dir);
    controller_config.voters = voters;
    let controller = Controller::start(controller_config, controller_listener)
        .await
        .context("starting the controller")?;
    broker.attach_controller(controller.clone());

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (unfenced_tx, mut unfenced) = watch::channel(false);
    let incarnation_id = uuid::Uuid::new_v4();
    let lifecycle = tokio::spawn(strand_broker::lifecycle::run(
        controller.clone(),
        node_id,
        incarnation_id,
        advertised,
        unfenced_tx,
        shutdown_rx.clone(),
    ));
    let admin_task = tokio::spawn(serve_admin(admin, broker.clone(), shutdown_rx.clone()));
    let registry_task = tokio::spawn(serve_registry(
        registry,
        broker.clone(),
        broker.topics().cluster_id().to_string(),
        shutdown_rx.clone(),
    ));
    let background = tokio::spawn(broker.clone().run_background(shutdown_rx.clone()));

    let publisher = tokio::spawn(strand_broker::publisher::run(
        broker.clone(),
        controller.clone(),
        incarnation_id,
        shutdown_rx.clone(),
    ));

    // Kafka is served once the controller lists this broker, so that the first Metadata
    // a client gets names it, and once this node applied the metadata image, so that the
    // topics it names exist here (connections made meanwhile wait in the listen backlog).
    let mut published = broker.published();
    let serving = tokio::select! {
        _ = async {
            let _ = unfenced.wait_for(|unfenced| *unfenced).await;
            let _ = published.wait_for(|image| image.is_some()).await;
        } => true,
        _ = &mut signalled => false,
    };
    let kafka_task = serving.then(|| {
        tracing::info!(node_id, "broker unfenced: serving Kafka");
        tokio::spawn(strand_broker::kafka::serve(
            broker.clone(),
            kafka,
            shutdown_rx.clone(),
        ))
    });
    if serving {
        signalled.await;
    }
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    admin_task.await.context("admin server task")??;
    registry_task.await.context("registry server task")??;
    if let Some(kafka_task) = kafka_task {
        kafka_task.await.context("kafka server task")?;
    }
    background.await.context("background task")?;
    lifecycle.await.context("broker lifecycle task")?;
    publisher.await.context("metadata publisher task")?;
    controller.shutdown().await;
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.close_all())
        .await
        .context("closing the logs")?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// The broker's settings from `strand serve`'s configuration.
fn broker_config(
    config: &ServeConfig,
    cluster_id: String,
    advertised_addr: String,
) -> BrokerConfig {
    let log = LogConfig {
        segment_bytes: config.log_segment_bytes,
        retention_ms: config.log_retention_ms,
        retention_bytes: config.log_retention_bytes,
        ..LogConfig::default()
    };
    BrokerConfig {
        node_id: config.node_id,
        cluster_id,
        default_replication_factor: config.default_replication_factor,
        min_insync_replicas: config.min_insync_replicas,
        replica_lag_time_max_ms: config.replica_lag_time_max_ms,
        data_dir: config.data_dir.clone(),
        advertised_addr,
        auto_create_topics: config.auto_create_topics,
        num_partitions: config.num_partitions,
        max_broker_partitions: config.max_broker_partitions,
        topic_defaults: TopicDefaults {
            log,
            max_message_bytes: config.message_max_bytes,
        },
        flush_interval_ms: config.log_flush_interval_ms,
        acks_all_fsync: config.acks_all_fsync,
        cleaner_interval_ms: config.log_cleaner_interval_ms,
        socket_request_max_bytes: config.socket_request_max_bytes,
        log_dir_reserve_bytes: config.log_dir_reserve_bytes,
        queued_max_response_bytes: config.queued_max_response_bytes,
        connection_queued_max_response_bytes: config.connection_queued_max_response_bytes,
        max_connections: config.max_connections,
        max_connections_per_ip: config.max_connections_per_ip,
        connections_max_idle_ms: config.connections_max_idle_ms,
        groups: GroupConfig {
            initial_rebalance_delay: Duration::from_millis(config.group_initial_rebalance_delay_ms),
            min_session_timeout: Duration::from_millis(config.group_min_session_timeout_ms),
            max_session_timeout: Duration::from_millis(config.group_max_session_timeout_ms),
            max_size: config.group_max_size,
            offsets_retention: Duration::from_secs(
                config.offsets_retention_minutes.saturating_mul(60),
            ),
            offsets_retention_check_interval: Duration::from_millis(
                config.offsets_retention_check_interval_ms.max(1),
            ),
            ..GroupConfig::default()
        },
    }
}

/// `1@host:port,2@host:port` for messages.
fn voters_text(voters: &BTreeMap<u64, String>) -> String {
    voters
        .iter()
        .map(|(id, address)| format!("{id}@{address}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Creates the data directory if needed and takes an exclusive lock on it, so that two
/// processes never write the same logs.
fn lock_data_dir(config: &ServeConfig) -> anyhow::Result<File> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    let path = dir.join(".lock");
    let file = File::create(&path).with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "data directory {} is in use by another strand process (lock {})",
            dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// Binds a listener and prints its bound address on a line of its own, so that scripts
/// starting strand with port 0 can find it.
async fn bind(name: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the {name} listener to {addr}"))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    println!("{name} listening on {bound}");
    tracing::info!(%bound, "{name} listening");
    Ok(listener)
}

/// Serves `/health` and `/ready`: both answer 503 with one line per problem while the
/// broker's storage fails (a data directory short of space, partitions whose writes fail
/// or that went offline), so that a monitor sees a full disk, and 200 again once writes
/// succeed.
async fn serve_admin(
    listener: TcpListener,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let health = broker.clone();
    let app = axum::Router::new()
        .route("/health", get(move || answer(health.clone(), "ok")))
        .route("/ready", get(move || answer(broker.clone(), "ready")));
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
        .context("admin server")
}

async fn answer(broker: Arc<Broker>, fine: &'static str) -> (StatusCode, String) {
    let problems = broker.storage_problems();
    if problems.is_empty() {
        (StatusCode::OK, format!("{fine}\n"))
    } else {
        let mut body = String::from("storage failing\n");
        for p in problems {
            body.push_str(&p);
            body.push('\n');
        }
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

/// Serves the schema registry, its state replayed from (and kept in) `_schemas`, which it
/// follows while it runs, and gives the broker's schema validation its state.
async fn serve_registry(
    listener: TcpListener,
    broker: Arc<Broker>,
    kafka_cluster_id: String,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let log = Arc::new(crate::schemas_log::SchemasLog(broker.schemas_log()));
    let options = strand_registry::Options {
        kafka_cluster_id,
        ..strand_registry::Options::default()
    };
    let registry =
        tokio::task::spawn_blocking(move || strand_registry::Registry::open(log, options))
            .await
            .context("opening the schema registry")?
            .inspect_err(|e| tracing::error!(error = %e, "schema registry not served"))
            .context("replaying _schemas")?;
    let registry = Arc::new(registry);
    // Records others append to `_schemas` (another node's registry, a restore tool) are
    // served as they arrive, not only after a restart.
    let _follower = registry.follow();
    // Topics with schema validation check produced records against this registry's state.
    broker
        .replicas()
        .attach_schema_lookup(Arc::new(crate::schema_lookup::RegistryLookup(
            registry.clone(),
        )));
    let app = strand_registry::router(registry);
    // Small JSON answers on keep-alive connections: without TCP_NODELAY, Nagle's algorithm
    // and delayed ACKs add tens of milliseconds to some of them.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%e, "setting TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await
        .context("registry server")
}

fn wait_for_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
