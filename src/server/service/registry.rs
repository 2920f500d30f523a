//! The streams that exist: each a handle to its owner task (bounded command queue, latest
//! snapshot, summary feed). The map is locked only to look up, insert or remove a handle,
//! never across an await.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use koopman::Estimator;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::oneshot;

use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::api::problem::ApiError;
use crate::metrics::Metrics;
use crate::service::command::{Command, ModelSummary};
use crate::service::core::Core;
use crate::service::definition::StreamDefinition;
use crate::service::owner::{Owner, OwnerContext, unix_millis};
use crate::service::snapshot::{StreamSnapshot, StreamStatus};
use crate::service::spectra::Spectra;
use crate::store::StoreError;

/// Summaries buffered for a slow WebSocket reader before it skips ahead.
const SUMMARY_BUFFER: usize = 16;

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
    sender: mpsc::Sender<Command>,
    snapshot: watch::Receiver<Arc<StreamSnapshot>>,
    summaries: broadcast::Sender<Arc<ModelSummary>>,
    owner: Mutex<Option<JoinHandle<()>>>,
    metrics: Arc<Metrics>,
    /// When the oldest change not yet in a stored snapshot was made (Unix ms; 0 = none).
    pub unsaved_since: Arc<AtomicU64>,
}

impl StreamHandle {
    /// The latest published snapshot (never waits on ingest).
    pub fn snapshot(&self) -> Arc<StreamSnapshot> {
        self.snapshot.borrow().clone()
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

    /// A feed of model summaries.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ModelSummary>> {
        self.summaries.subscribe()
    }

    /// Commands waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    async fn stop(&self, delete: bool) {
        // Stop is queued behind everything already accepted, so it all gets applied.
        let _ = self.submit(Command::Stop { delete }).await;
        let owner = self.owner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(owner) = owner
            && let Err(e) = owner.await
        {
            tracing::error!(stream = %self.definition.id, error = %e, "stream owner failed");
        }
    }
}

/// Registry options.
#[derive(Debug, Clone, Copy)]
pub struct RegistryLimits {
    /// Commands per stream queue.
    pub queue_capacity: usize,
    /// Largest number of streams.
    pub max_streams: usize,
}

/// All streams.
pub struct Registry {
    streams: RwLock<HashMap<String, Arc<StreamHandle>>>,
    metrics: Arc<Metrics>,
    limits: RegistryLimits,
    context: OwnerContext,
    spectra: Arc<Spectra>,
}

impl Registry {
    /// An empty registry, with the spectra worker its streams share.
    pub fn new(context: OwnerContext, limits: RegistryLimits) -> Self {
        let spectra = Arc::new(Spectra::start(context.metrics.clone()));
        Self { streams: RwLock::new(HashMap::new()), metrics: context.metrics.clone(), limits, context, spectra }
    }

    fn spawn(&self, definition: Arc<StreamDefinition>, core: Core, unsaved: bool) -> Arc<StreamHandle> {
        let (sender, receiver) = mpsc::channel(self.limits.queue_capacity);
        let (summaries, _) = broadcast::channel(SUMMARY_BUFFER);
        let unsaved_since = Arc::new(AtomicU64::new(if unsaved { unix_millis() } else { 0 }));
        let (owner, snapshot) = Owner::new(
            definition.clone(),
            core,
            self.context.clone(),
            summaries.clone(),
            unsaved_since.clone(),
            self.spectra.clone(),
        );
        let task = tokio::spawn(owner.run(receiver));
        Arc::new(StreamHandle {
            definition,
            edge: EdgeCounters::default(),
            sender,
            snapshot,
            summaries,
            owner: Mutex::new(Some(task)),
            metrics: self.metrics.clone(),
            unsaved_since,
        })
    }

    /// Adds a stream recovered from the store (`unsaved`: its log held entries after the
    /// snapshot).
    pub fn insert_recovered(&self, definition: StreamDefinition, core: Core, unsaved: bool) {
        let handle = self.spawn(Arc::new(definition), core, unsaved);
        let mut streams = self.write();
        streams.insert(handle.definition.id.clone(), handle);
        self.metrics.streams.set(streams.len() as i64);
    }

    /// How long the oldest change not yet in a stored snapshot has waited, in seconds (0
    /// when every stream is saved: an idle stream has nothing to snapshot).
    pub fn oldest_unsaved_age(&self) -> f64 {
        let now = unix_millis();
        self.read()
            .values()
            .map(|h| match h.unsaved_since.load(Ordering::Relaxed) {
                0 => 0,
                since => now.saturating_sub(since),
            })
            .max()
            .unwrap_or(0) as f64
            / 1e3
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<StreamHandle>>> {
        self.streams.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<StreamHandle>>> {
        self.streams.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates a stream, or returns the existing one with the same definition (`false`).
    /// A different definition under the same id is a conflict. A new stream's definition is
    /// stored before this returns.
    pub async fn create(&self, definition: StreamDefinition) -> Result<(Arc<StreamHandle>, bool), ApiError> {
        let handle = {
            let mut streams = self.write();
            if let Some(existing) = streams.get(&definition.id) {
                return if *existing.definition == definition {
                    Ok((existing.clone(), false))
                } else {
                    Err(ApiError::conflict(format!("stream `{}` exists with a different definition", definition.id)))
                };
            }
            if streams.len() >= self.limits.max_streams {
                return Err(ApiError::unavailable(format!(
                    "the stream limit ({}) is reached",
                    self.limits.max_streams
                )));
            }
            let estimator =
                Estimator::new(definition.estimator_config()).map_err(|e| ApiError::invalid(e.to_string()))?;
            let handle = self.spawn(Arc::new(definition), Core::new(estimator), false);
            streams.insert(handle.definition.id.clone(), handle.clone());
            self.metrics.streams.set(streams.len() as i64);
            handle
        };
        // Persist is the owner's first command: batches queued after it wait for it.
        let (reply, persisted) = oneshot::channel();
        let outcome = match handle.submit(Command::Persist { reply }).await {
            Ok(()) => persisted.await.unwrap_or(Err(StoreError::Closed)),
            Err(_) => Err(StoreError::Closed),
        };
        if let Err(e) = outcome {
            self.write().remove(&handle.definition.id);
            handle.stop(false).await;
            return Err(ApiError::storage(&e));
        }
        Ok((handle, true))
    }

    /// The stream with this id.
    pub fn get(&self, id: &str) -> Option<Arc<StreamHandle>> {
        self.read().get(id).cloned()
    }

    /// Every stream, sorted by id.
    pub fn list(&self) -> Vec<Arc<StreamHandle>> {
        let mut all: Vec<_> = self.read().values().cloned().collect();
        all.sort_by(|a, b| a.definition.id.cmp(&b.definition.id));
        all
    }

    /// Removes a stream; its owner finishes what was queued, then stops.
    pub async fn remove(&self, id: &str) -> bool {
        let removed = {
            let mut streams = self.write();
            let removed = streams.remove(id);
            self.metrics.streams.set(streams.len() as i64);
            removed
        };
        match removed {
            Some(handle) => {
                self.metrics.stream_removed(id);
                handle.stop(true).await;
                true
            }
            None => false,
        }
    }

    /// Stops every owner after its queue is drained; returns the final statuses.
    pub async fn shutdown(&self) -> Vec<StreamStatus> {
        let handles: Vec<_> = self.write().drain().map(|(_, h)| h).collect();
        let mut statuses = Vec::with_capacity(handles.len());
        for handle in handles {
            handle.stop(false).await;
            statuses.push(handle.status());
        }
        statuses.sort_by(|a, b| a.id.cmp(&b.id));
        statuses
    }
}
