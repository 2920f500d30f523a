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
use domain::source::SourceLauncher;

mod client;
mod feeder;
mod link;
mod mapping;

pub use client::ClientSettings;
pub use mapping::{FrameMap, MapError, MissingReason};

/// Starts source clients on the current Tokio runtime.
pub struct Launcher {
    metrics: Arc<Metrics>,
    settings: ClientSettings,
}

impl Launcher {
    /// A launcher whose clients report to `metrics`.
    pub fn new(metrics: Arc<Metrics>, settings: ClientSettings) -> Self {
        Self { metrics, settings }
    }
}

impl SourceLauncher for Launcher {
    fn launch(&self, handle: Arc<StreamHandle>) {
        let Some(monitor) = handle.source.clone() else {
            return;
        };
        tokio::spawn(client::run(handle, monitor, self.metrics.clone(), self.settings));
    }
}

/// Milliseconds since the Unix epoch (for error times).
fn unix_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
