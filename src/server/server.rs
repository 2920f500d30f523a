//! The service entry point: `run(listener, config, shutdown)` opens the store, serves while
//! it recovers every stream (readiness waits for it), and when `shutdown` resolves stops
//! accepting, finishes in-flight requests, closes WebSockets with a close frame, lets every
//! stream apply what it acknowledged and leave a final snapshot, and returns.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppInner, AppState, HttpSettings, ScrapeHook, SessionTracker};
use crate::config::{Durability, ServiceConfig};
use crate::service::core::Core;
use crate::service::metrics::Metrics;
use crate::service::owner::OwnerContext;
use crate::service::registry::{Registry, RegistryLimits};
use crate::service::shared_log::SharedLog;
use crate::service::snapshot::StreamStatus;
use crate::service::source::AllowedHosts;
use crate::store::recovery::StoredStream;
use crate::store::{Store, StoreError, StoreOptions};
use crate::tls::{ReloadableTls, TlsListener, reload_on_sighup};

/// How long shutdown waits for WebSocket clients to take their close frames.
const SESSION_DRAIN: Duration = Duration::from_secs(5);

/// What the service held when it stopped.
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// Final status of every stream.
    pub streams: Vec<StreamStatus>,
}

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listener failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The store could not be opened or recovered.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The `[auth]` section cannot be used.
    #[error(transparent)]
    Auth(#[from] crate::access::AuthError),
    /// The `[tls]` section cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The cluster's peer TLS settings cannot be used.
    #[error(transparent)]
    PeerTls(#[from] crate::cluster_node::PeerTlsError),
    /// `--cluster` was given and the cluster cannot be joined.
    #[error("cannot join the cluster: {0}")]
    Cluster(#[from] cluster::ClusterError),
    /// The `[cluster]` section cannot be used.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// No token is configured and the address is not loopback.
    #[error(
        "refusing to serve {address} without authentication: configure bearer tokens (auth.tokens or \
         auth.tokens_file), listen on a loopback address, or pass --insecure-no-auth"
    )]
    Insecure {
        /// The address.
        address: std::net::SocketAddr,
    },
}

/// The access policy, and the rule that keeps an unauthenticated server on loopback unless
/// the operator says otherwise, loudly.
fn access_policy(config: &ServiceConfig, address: std::net::SocketAddr) -> Result<api::auth::AccessPolicy, ServeError> {
    let policy = config.auth.policy()?;
    if !policy.enabled() && !address.ip().is_loopback() {
        if !config.auth.insecure_no_auth {
            return Err(ServeError::Insecure { address });
        }
        tracing::warn!(%address, "serving WITHOUT authentication (--insecure-no-auth): anyone who reaches this address can create, read, feed and delete every stream");
    }
    Ok(policy)
}

fn open_store(config: &ServiceConfig) -> Result<Option<Arc<Store>>, StoreError> {
    let options = StoreOptions {
        durability: config.storage.durability,
        group_commit: Duration::from_micros(config.storage.group_commit_us),
        flush_interval: Duration::from_millis(config.storage.flush_interval_ms),
    };
    match config.storage.durability {
        Durability::Memory => Ok(None),
        _ => Store::open(&config.data_dir, options).map(|s| Some(Arc::new(s))),
    }
}

/// Loads every stream from the store into the registry. A stream whose state cannot be
/// rebuilt (damaged records, a definition this version refuses, a size beyond the memory
/// budgets, a failure while replaying) is quarantined with the reason, and every other
/// stream starts. Only a store whose tables cannot be read stops the service.
async fn recover(state: AppState, store: Arc<Store>) -> Result<(), StoreError> {
    let started = Instant::now();
    let loader = store.clone();
    let stored = tokio::task::spawn_blocking(move || loader.load()).await.map_err(|_| StoreError::Closed)??;
    let (mut count, mut quarantined) = (0usize, 0usize);
    for stream in stored {
        let stream = match stream {
            Ok(stream) => stream,
            Err(damaged) => {
                let reason = match damaged.error {
                    StoreError::Corrupt { what, detail, .. } => format!("{what} cannot be read back: {detail}"),
                    other => other.to_string(),
                };
                state.registry.quarantine(damaged.id, reason);
                quarantined += 1;
                continue;
            }
        };
        let id = stream.id.clone();
        match rebuild(&state, stream).await {
            Ok(()) => count += 1,
            Err(reason) => {
                state.registry.quarantine(id, reason);
                quarantined += 1;
            }
        }
    }
    let took = started.elapsed().as_secs_f64();
    state.metrics.recovery_seconds.set(took);
    state.metrics.log_bytes.set(store.log_size());
    tracing::info!(streams = count, quarantined, seconds = took, "recovered from the store");
    Ok(())
}

/// Rebuilds one stored stream and registers it, or says why it cannot be. Everything that
/// sizes memory is validated and budgeted before the estimator is built.
async fn rebuild(state: &AppState, stream: StoredStream) -> Result<(), String> {
    let definition = crate::store::definition::decode_definition(&stream.definition)
        .map_err(|e| format!("its stored definition cannot be read: {e}"))?;
    let config = definition.estimator_config();
    config.validate().map_err(|e| format!("its stored definition is refused by this version: {e}"))?;
    let reserved = state.registry.reserve_recovered(&definition)?;
    let ts = definition.ts;
    let flat_line = definition.flat_line;
    let outlier_gate = definition.outlier_gate;
    let unsaved = !stream.log.is_empty();
    let built = tokio::task::spawn_blocking(move || -> Result<(Core, Option<meter::Meter>), String> {
        let (core, meter) = match stream.snapshot {
            Some(mut snapshot) => {
                let meter = snapshot.meter.take();
                let core = Core::from_state(config, snapshot)
                    .map_err(|e| format!("its snapshot does not fit its definition: {e}"))?;
                (core, meter)
            }
            None => (
                Core::new(koopman::Estimator::new(config).map_err(|e| format!("its definition is refused: {e}"))?),
                None,
            ),
        };
        let mut core = core.with_flat_line(flat_line).with_outlier_gate(outlier_gate);
        for (_, entry) in &stream.log {
            core.replay(entry, ts);
        }
        Ok((core, meter))
    })
    .await;
    let (core, meter) = match built {
        Ok(Ok(built)) => built,
        Ok(Err(reason)) => {
            state.registry.release(reserved);
            return Err(reason);
        }
        Err(join) => {
            state.registry.release(reserved);
            return Err(format!("rebuilding its state failed: {join}"));
        }
    };
    state.registry.insert_recovered(definition, core, meter, unsaved, reserved);
    Ok(())
}

/// Reads the store's figures into the metrics when Prometheus scrapes.
fn store_gauges(store: Arc<Store>) -> ScrapeHook {
    Box::new(move |metrics, registry| {
        for seconds in store.stats().drain() {
            metrics.commit_seconds.observe(seconds);
        }
        metrics.log_bytes.set(store.log_size());
        metrics.snapshot_age_seconds.set(registry.oldest_unsaved_age());
    })
}

/// Joins the cluster when the configuration names one; `None` runs the node alone.
async fn join_cluster(
    config: &ServiceConfig,
    address: std::net::SocketAddr,
    tls: bool,
) -> Result<Option<cluster::Cluster>, ServeError> {
    let given = config.cluster.node_id.is_some();
    let Some(cluster_config) = config.cluster.resolve(crate::cluster_node::generated_node_id)? else { return Ok(None) };
    let node = cluster_config.node_id().clone();
    if !given {
        tracing::info!(%node, "no cluster.node_id given: this node's id is generated");
    }
    let advertise = config.cluster.advertise.clone().unwrap_or_else(|| {
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{address}")
    });
    let cluster = crate::cluster_node::connect(cluster_config, advertise.clone()).await?;
    tracing::info!(%node, url = %cluster.config().url(), %advertise, "joined the cluster");
    Ok(Some(cluster))
}

/// How this node reaches the others' APIs: over TLS with `cluster.peer_ca` when given,
/// which a node serving HTTPS needs (its peers serve HTTPS too).
fn peer_client(config: &ServiceConfig, tls: bool) -> Result<crate::cluster_node::PeerClient, ServeError> {
    use crate::cluster_node::{PeerClient, PeerTlsError};
    let section = &config.cluster;
    let identity = match (&section.peer_cert, &section.peer_key) {
        (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
        (None, None) => None,
        (Some(_), None) => {
            return Err(
                PeerTlsError { key: "cluster.peer_key", reason: "a certificate needs its private key".into() }.into()
            );
        }
        (None, Some(_)) => {
            return Err(PeerTlsError {
                key: "cluster.peer_cert",
                reason: "a private key needs its certificate".into(),
            }
            .into());
        }
    };
    match &section.peer_ca {
        Some(ca) => Ok(PeerClient::with_tls(ca, identity)?),
        None if section.url.is_some() && tls => Err(PeerTlsError {
            key: "cluster.peer_ca",
            reason: "this node serves HTTPS, so its peers do: the CA that issued their certificates is needed to \
                     forward reads to them"
                .into(),
        }
        .into()),
        None if identity.is_some() => Err(PeerTlsError {
            key: "cluster.peer_ca",
            reason: "a peer certificate is only used with a peer CA".into(),
        }
        .into()),
        None => Ok(PeerClient::plain()),
    }
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: ServiceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ShutdownReport, ServeError> {
    let access = access_policy(&config, listener.local_addr()?)?;
    let tls = match config.tls.enabled()? {
        true => {
            let tls = ReloadableTls::new(config.tls.clone())?;
            reload_on_sighup(tls.clone())?;
            Some(tls)
        }
        false => None,
    };
    let metrics = Arc::new(Metrics::new(config.metrics.per_stream_labels));
    let address = listener.local_addr()?;
    // Checked before joining, so a node that could not forward reads does not join.
    let peers = peer_client(&config, tls.is_some())?;
    let cluster = join_cluster(&config, address, tls.is_some()).await?;
    // In a cluster the log and the cluster's snapshots are the state: no embedded store.
    let store = match cluster {
        Some(_) => None,
        None => {
            let config = config.clone();
            tokio::task::spawn_blocking(move || open_store(&config)).await.map_err(|_| StoreError::Closed)??
        }
    };
    let context = OwnerContext {
        metrics: metrics.clone(),
        store: store.clone().map(|s| s as Arc<dyn crate::service::journal::Journal>),
        publish_interval: Duration::from_millis(config.streams.publish_interval_ms),
        snapshot_every: config.storage.snapshot_every_samples,
        snapshot_interval: Duration::from_secs(config.storage.snapshot_interval_s),
        shared: cluster.clone().map(|c| Arc::new(crate::cluster_node::JetStreamLog::new(c)) as Arc<dyn SharedLog>),
    };
    let limits = RegistryLimits {
        queue_capacity: config.limits.queue_capacity,
        max_streams: config.limits.max_streams,
        stream_memory_bytes: config.limits.stream_memory_bytes,
        total_memory_bytes: config.limits.total_memory_bytes,
        spectra_workers: config.streams.spectra_workers,
    };
    let settings = HttpSettings {
        max_body_bytes: config.limits.max_body_bytes,
        max_batch_samples: config.limits.max_batch_samples,
        request_timeout_ms: config.limits.request_timeout_ms,
        concurrency: config.limits.concurrency,
        max_horizon: config.limits.max_horizon,
        max_event_streams: config.limits.max_event_streams,
        eigen_every: config.streams.eigen_every,
        source_hosts: AllowedHosts::new(config.sources.allowed_hosts.clone()),
    };
    let (stopping, stopping_rx) = watch::channel(false);
    let state = Arc::new(AppInner {
        registry: Registry::new(context, limits),
        metrics,
        settings,
        before_scrape: store.clone().map(store_gauges),
        ready: AtomicBool::new(false),
        shutdown: stopping_rx,
        websockets: SessionTracker::default(),
        event_streams: Arc::new(tokio::sync::Semaphore::new(config.limits.max_event_streams)),
        access,
    });
    // Streams with a C37.118.2 source get their client when created or recovered.
    let launcher = pdc::Launcher::new(
        state.metrics.clone(),
        AllowedHosts::new(config.sources.allowed_hosts.clone()),
        pdc::ClientSettings { max_batch: config.limits.max_batch_samples.min(256), ..pdc::ClientSettings::default() },
    );
    state.registry.set_source_launcher(Arc::new(launcher));
    let (node, app) = match cluster {
        Some(cluster) => {
            let (node, forwarder) = crate::cluster_node::Node::start(
                cluster,
                state.clone(),
                peers,
                config.limits.max_body_bytes,
                config.cluster.snapshot_every_batches,
                std::time::Duration::from_secs(config.cluster.snapshot_every_s),
                std::time::Duration::from_secs(config.cluster.compact_every_s),
            );
            let app = api::router(state.clone())
                .layer(axum::middleware::from_fn_with_state(forwarder, crate::cluster_node::forward));
            (Some(node), app)
        }
        None => (None, api::router(state.clone())),
    };
    tracing::info!(%address, tls = tls.is_some(), "koopstream listening");
    let (failed, mut failure) = watch::channel(None::<StoreError>);
    match store.clone() {
        Some(store) => {
            let state = state.clone();
            tokio::spawn(async move {
                match recover(state.clone(), store).await {
                    Ok(()) => state.ready.store(true, Ordering::Release),
                    Err(e) => {
                        tracing::error!(error = %e, "recovery failed; stopping");
                        let _ = failed.send(Some(e));
                    }
                }
            });
        }
        None => state.ready.store(true, Ordering::Release),
    }
    let mut recovery_failed = failure.clone();
    let signal = async move {
        let failed = async {
            // A finished recovery drops its sender: only a reported failure stops the server.
            if recovery_failed.wait_for(Option::is_some).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = shutdown => {}
            _ = failed => {}
        }
        tracing::info!("shutting down: no new connections; finishing requests and sessions");
        // Open WebSocket sessions see this and send their close frames.
        let _ = stopping.send(true);
    };
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    match tls {
        Some(tls) => {
            // Through `tap_io` (a no-op here: the handshake task already set TCP_NODELAY)
            // because that is what gives axum the peer address of a custom listener.
            let listener = axum::serve::ListenerExt::tap_io(TlsListener::new(listener, tls)?, |_| {});
            axum::serve(listener, app).with_graceful_shutdown(signal).await?
        }
        None => {
            // Small acknowledgements must not wait for Nagle's algorithm.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::warn!(error = %e, "cannot disable Nagle's algorithm");
                }
            });
            axum::serve(listener, app).with_graceful_shutdown(signal).await?
        }
    }
    if tokio::time::timeout(SESSION_DRAIN, state.websockets.wait_idle()).await.is_err() {
        tracing::warn!("some WebSocket sessions did not close in time");
    }
    if let Some(node) = node {
        node.stop().await;
    }
    let streams = state.registry.shutdown().await;
    if let Some(store) = store {
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }
    if let Some(error) = failure.borrow_and_update().clone() {
        return Err(error.into());
    }
    tracing::info!(streams = streams.len(), "stopped");
    Ok(ShutdownReport { streams })
}
