//! koopstream as a PDC client: for every stream whose definition names a C37.118.2 source,
//! a task that subscribes to the PMU or PDC and feeds each data frame into the stream as a
//! sample, logged and acknowledged by the stream's owner like an HTTP batch.
//!
//! Modules: `link` (TCP or UDP, frames in and commands out), `mapping` (a data frame to
//! one sample: channels resolved against the configuration, STAT to missing values, angle
//! unwrapping), `feeder` (batching, seq, backpressure), `client` (the session and its
//! reconnection loop).

use std::sync::Arc;

use domain::metrics::Metrics;
use domain::registry::StreamHandle;
use domain::source::{AllowedHosts, SourceLauncher, SourceSpec};

mod client;
mod feeder;
mod link;
mod mapping;

pub use client::ClientSettings;
pub use mapping::{FrameMap, MapError, MissingReason};

/// Starts source clients on the current Tokio runtime.
pub struct Launcher {
    metrics: Arc<Metrics>,
    allowed: AllowedHosts,
    settings: ClientSettings,
}

impl Launcher {
    /// A launcher whose clients report to `metrics` and connect only to `allowed` hosts.
    pub fn new(metrics: Arc<Metrics>, allowed: AllowedHosts, settings: ClientSettings) -> Self {
        Self { metrics, allowed, settings }
    }
}

impl SourceLauncher for Launcher {
    fn launch(&self, handle: Arc<StreamHandle>) {
        let Some(monitor) = handle.source.clone() else {
            return;
        };
        // A stored stream whose host the configuration no longer allows keeps its data but
        // is not connected; its status says why.
        let SourceSpec::C37118(spec) = &monitor.spec;
        if !self.allowed.allows(&spec.address) {
            let message = format!("`{}` is not in sources.allowed_hosts; the source is not started", spec.address);
            tracing::warn!(stream = %handle.definition.id, %message, "source not started");
            monitor.update(|s| s.last_error = Some((message, unix_millis())));
            return;
        }
        tokio::spawn(client::run(handle, monitor, self.metrics.clone(), self.settings));
    }
}

/// Milliseconds since the Unix epoch (for error times).
fn unix_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
