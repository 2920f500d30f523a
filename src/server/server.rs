//! The service entry point: `run(listener, config, shutdown)` serves until `shutdown`
//! resolves, then stops accepting, finishes in-flight requests, closes WebSockets with a
//! close frame, lets every stream apply what it acknowledged, and returns.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppInner, SessionTracker};
use crate::config::ServiceConfig;
use crate::metrics::Metrics;
use crate::service::registry::{Registry, RegistryLimits};
use crate::service::snapshot::StreamStatus;

/// How long shutdown waits for WebSocket clients to take their close frames.
const SESSION_DRAIN: Duration = Duration::from_secs(5);

/// What the service held when it stopped.
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// Final status of every stream.
    pub streams: Vec<StreamStatus>,
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn run(listener: TcpListener, config: ServiceConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<ShutdownReport> {
    let metrics = Arc::new(Metrics::new(config.metrics.per_stream_labels));
    let limits = RegistryLimits {
        queue_capacity: config.limits.queue_capacity,
        max_streams: config.limits.max_streams,
        publish_interval: Duration::from_millis(config.streams.publish_interval_ms),
    };
    let (stopping, stopping_rx) = watch::channel(false);
    let state = Arc::new(AppInner {
        registry: Registry::new(metrics.clone(), limits),
        metrics,
        config,
        ready: AtomicBool::new(false),
        shutdown: stopping_rx,
        websockets: SessionTracker::default(),
    });
    let app = api::router(state.clone());
    let address = listener.local_addr()?;
    state.ready.store(true, Ordering::Release);
    tracing::info!(%address, "koopstream listening");
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections; finishing requests and sessions");
        // Open WebSocket sessions see this and send their close frames.
        let _ = stopping.send(true);
    };
    // Small acknowledgements must not wait for Nagle's algorithm.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot disable Nagle's algorithm");
        }
    });
    axum::serve(listener, app).with_graceful_shutdown(signal).await?;
    if tokio::time::timeout(SESSION_DRAIN, state.websockets.wait_idle()).await.is_err() {
        tracing::warn!("some WebSocket sessions did not close in time");
    }
    let streams = state.registry.shutdown().await;
    tracing::info!(streams = streams.len(), "stopped");
    Ok(ShutdownReport { streams })
}
