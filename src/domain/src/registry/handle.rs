//! A stream's handle, as the API and the registry see it: its definition, the bounded
//! queue to its owner task, its latest snapshot, its push feed and its edge counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::command::{Command, Push};
use crate::definition::StreamDefinition;
use crate::metrics::Metrics;
use crate::modes::MeterCell;
use crate::recent::RecentSamples;
use crate::snapshot::{ModelState, StreamSnapshot, StreamStatus};
use crate::source::SourceMonitor;

/// Rejections counted at the edge, before a batch reaches the owner.
#[derive(Debug, Default)]
pub struct EdgeCounters {
    /// Samples in invalid or too-large batches.
    pub invalid: AtomicU64,
    /// Samples in batches refused with a full queue.
    pub queue_full: AtomicU64,
}

/// Why a command could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is full (HTTP answers 429).
    Full,
    /// The stream was deleted or the service is stopping.
    Closed,
}

/// A stream as the API sees it.
pub struct StreamHandle {
    /// The canonical definition.
    pub definition: Arc<StreamDefinition>,
    /// Edge rejections.
    pub edge: EdgeCounters,
    /// The mode meter and the view of its latest refresh.
    pub meter: Arc<MeterCell>,
    pub(super) sender: mpsc::Sender<Command>,
    pub(super) snapshot: watch::Receiver<Arc<StreamSnapshot>>,
    pub(super) summaries: broadcast::Sender<Arc<Push>>,
    pub(super) owner: Mutex<Option<JoinHandle<()>>>,
    pub(super) metrics: Arc<Metrics>,
    /// When the oldest change not yet in a stored snapshot was made (Unix ms; 0 = none).
    pub unsaved_since: Arc<AtomicU64>,
    /// The memory this stream was counted for in the registry's budget (given back, the
    /// same number, when it is removed).
    pub(super) memory_bytes: u64,
    /// Set once the stream is deleted and its owner has finished, so that connections to
    /// it (WebSockets) close at once instead of at their next frame.
    pub(super) deleted: watch::Sender<bool>,
    /// The external source feeding the stream, with its status (none: HTTP and WebSocket
    /// only).
    pub source: Option<Arc<SourceMonitor>>,
    /// The last measured samples.
    pub recent: Arc<RecentSamples>,
}

impl StreamHandle {
    /// The latest published snapshot (never waits on ingest).
    pub fn snapshot(&self) -> Arc<StreamSnapshot> {
        self.snapshot.borrow().clone()
    }

    /// The latest snapshot with the model of the status's version: when the published model
    /// is older (models are built on demand), the owner is asked to publish the current
    /// one, after the commands queued before, so a reader sees every batch acknowledged
    /// before it asked. A stream still warming up has no model to ask for.
    pub async fn snapshot_with_model(&self) -> Arc<StreamSnapshot> {
        let snapshot = self.snapshot();
        let current = match &snapshot.model {
            Some(model) => model.version == snapshot.status.version,
            None => snapshot.status.state == ModelState::WarmingUp,
        };
        if current {
            return snapshot;
        }
        let (reply, published) = oneshot::channel();
        if self.submit(Command::PublishModel { reply }).await.is_ok() {
            let _ = published.await;
        }
        self.snapshot()
    }

    /// Status with the edge rejections included.
    pub fn status(&self) -> StreamStatus {
        let mut status = self.snapshot().status.clone();
        status.samples_rejected.invalid += self.edge.invalid.load(Ordering::Relaxed);
        status.samples_rejected.queue_full += self.edge.queue_full.load(Ordering::Relaxed);
        status
    }

    /// Queues a command without waiting.
    pub fn try_submit(&self, command: Command) -> Result<(), SubmitError> {
        self.metrics.queue_depth.inc();
        self.sender.try_send(command).map_err(|e| {
            self.metrics.queue_depth.dec();
            match e {
                mpsc::error::TrySendError::Full(_) => SubmitError::Full,
                mpsc::error::TrySendError::Closed(_) => SubmitError::Closed,
            }
        })
    }

    /// Queues a command, waiting for room (backpressure).
    pub async fn submit(&self, command: Command) -> Result<(), SubmitError> {
        self.metrics.queue_depth.inc();
        self.sender.send(command).await.map_err(|_| {
            self.metrics.queue_depth.dec();
            SubmitError::Closed
        })
    }

    /// A feed of what the stream pushes: summaries, alarm and change notices. In a cluster
    /// every copy of the stream on a node shares one feed, so a subscriber keeps receiving
    /// when the node takes or hands off the stream.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Push>> {
        self.summaries.subscribe()
    }

    /// Hands this copy's subscribers a push computed elsewhere: in a cluster, by the node
    /// that owns the stream (this node's copy is idle and computes none).
    pub fn deliver(&self, push: Push) {
        let _ = self.summaries.send(Arc::new(push));
    }

    /// Becomes true when the stream has been deleted (its owner has applied everything
    /// queued before and stopped).
    pub fn deleted(&self) -> watch::Receiver<bool> {
        self.deleted.subscribe()
    }

    /// Commands waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    pub(super) async fn stop(&self, delete: bool) {
        self.stop_as(delete, delete).await;
    }

    /// Stops the owner: `delete` removes the stream's data, `gone` tells its connections
    /// that the stream no longer exists (a clustered node removes its copy of a stream
    /// another node deleted without deleting anything itself).
    pub(super) async fn stop_as(&self, delete: bool, gone: bool) {
        // The source's client stops first, so nothing new is queued behind the stop.
        if let Some(source) = &self.source {
            source.stop();
        }
        // Stop is queued behind everything already accepted, so it all gets applied.
        let _ = self.submit(Command::Stop { delete }).await;
        let owner = self.owner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(owner) = owner
            && let Err(e) = owner.await
        {
            tracing::error!(stream = %self.definition.id, error = %e, "stream owner failed");
        }
        if gone {
            self.deleted.send_replace(true);
        }
    }
}
