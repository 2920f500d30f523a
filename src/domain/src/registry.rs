//! The streams that exist: each a handle to its owner task (bounded command queue, latest
//! snapshot, summary feed). The map is locked only to look up, insert or remove a handle,
//! never across an await.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};

use koopman::Estimator;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::oneshot;

use tokio::sync::{broadcast, mpsc, watch};

use crate::command::{Command, Push};
use crate::core::Core;
use crate::definition::{IDLE_COPY_BYTES, StreamDefinition, fresh_incarnation};
use crate::error::DomainError;
use crate::metrics::Metrics;
use crate::modes::MeterCell;
use crate::owner::{Owner, OwnerContext, unix_millis};
use crate::snapshot::StreamStatus;
use crate::source::{SourceLauncher, SourceMonitor};
use crate::spectra::Spectra;
use meter::Meter;

mod handle;

pub use handle::{EdgeCounters, StreamHandle, SubmitError};

/// Summaries buffered for a slow WebSocket reader before it skips ahead.
const SUMMARY_BUFFER: usize = 16;

/// Registry options.
#[derive(Debug, Clone, Copy)]
pub struct RegistryLimits {
    /// Commands per stream queue.
    pub queue_capacity: usize,
    /// Largest number of streams.
    pub max_streams: usize,
    /// Largest memory estimate of one stream, in bytes.
    pub stream_memory_bytes: u64,
    /// Largest sum of the memory estimates of all streams, in bytes.
    pub total_memory_bytes: u64,
    /// Threads that run the streams' mode-meter refreshes (1 to 64).
    pub spectra_workers: usize,
}

/// A stored stream whose state could not be rebuilt at start-up. Its records stay in the
/// store untouched; it is listed, refuses everything else, and can be deleted.
#[derive(Debug, Clone)]
pub struct Quarantined {
    /// Stream id.
    pub id: String,
    /// Why it could not be rebuilt.
    pub reason: String,
    /// When it was quarantined (Unix ms).
    pub since_ms: u64,
}

/// All streams.
pub struct Registry {
    streams: RwLock<HashMap<String, Arc<StreamHandle>>>,
    quarantined: Mutex<BTreeMap<String, Quarantined>>,
    /// Sum of the memory estimates of the streams held (bytes), changed under the
    /// `streams` write lock.
    memory_in_use: AtomicU64,
    metrics: Arc<Metrics>,
    limits: RegistryLimits,
    context: OwnerContext,
    spectra: Arc<Spectra>,
    launcher: RwLock<Option<Arc<dyn SourceLauncher>>>,
}

impl Registry {
    /// An empty registry, with the spectra worker its streams share.
    pub fn new(context: OwnerContext, limits: RegistryLimits) -> Self {
        let spectra = Arc::new(Spectra::start(context.metrics.clone(), limits.spectra_workers));
        Self {
            streams: RwLock::new(HashMap::new()),
            quarantined: Mutex::new(BTreeMap::new()),
            memory_in_use: AtomicU64::new(0),
            metrics: context.metrics.clone(),
            limits,
            context,
            spectra,
            launcher: RwLock::new(None),
        }
    }

    /// Sets the client that runs streams' external sources (C37.118.2); streams created or
    /// recovered from then on with a source get theirs started.
    pub fn set_source_launcher(&self, launcher: Arc<dyn SourceLauncher>) {
        *self.launcher.write().unwrap_or_else(|e| e.into_inner()) = Some(launcher);
    }

    fn launch_source(&self, handle: &Arc<StreamHandle>) {
        if handle.source.is_none() {
            return;
        }
        let launcher = self.launcher.read().unwrap_or_else(|e| e.into_inner()).clone();
        match launcher {
            Some(launcher) => launcher.launch(handle.clone()),
            None => {
                tracing::warn!(stream = %handle.definition.id, "the stream has a source, but this process runs no source clients")
            }
        }
    }

    /// Checks a definition's memory estimate against the per-stream budget and, with what
    /// the streams already hold, the total one; returns what this node counts for it. Call
    /// with the `streams` write lock held.
    ///
    /// In a cluster the node creating a stream holds an idle copy (the owner, which may be
    /// another node, counts the full estimate when it takes the stream), so the total
    /// budget is checked against [`IDLE_COPY_BYTES`]: otherwise every node would count
    /// every stream of the cluster in full, and adding nodes would add no room.
    fn check_budget(&self, definition: &StreamDefinition) -> Result<u64, DomainError> {
        let full = definition.memory_bytes();
        let bytes = if self.context.shared.is_some() { IDLE_COPY_BYTES.min(full) } else { full };
        let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
        // Whichever node owns the stream holds all of it: the per-stream budget is checked
        // against the full estimate.
        if full > self.limits.stream_memory_bytes {
            return Err(DomainError::over_budget(format!(
                "stream `{}` would hold about {:.1} MiB (dictionary `{}` on {} channels, warm-up {}, window {:?}); \
                 the per-stream budget (limits.stream_memory_bytes) is {:.1} MiB",
                definition.id,
                mib(full),
                definition.dictionary,
                definition.n_states() + definition.n_inputs(),
                definition.warmup,
                definition.window,
                mib(self.limits.stream_memory_bytes)
            )));
        }
        let in_use = self.memory_in_use.load(Ordering::Relaxed);
        if in_use.saturating_add(bytes) > self.limits.total_memory_bytes {
            return Err(DomainError::over_budget(format!(
                "stream `{}` would hold about {:.1} MiB and the streams already hold {:.1} MiB; \
                 the total budget (limits.total_memory_bytes) is {:.1} MiB",
                definition.id,
                mib(bytes),
                mib(in_use),
                mib(self.limits.total_memory_bytes)
            )));
        }
        Ok(bytes)
    }

    /// Sets a stored stream aside: it is listed with the reason and can be deleted.
    pub fn quarantine(&self, id: String, reason: String) {
        tracing::error!(stream = %id, %reason, "stream quarantined: its stored state cannot be rebuilt; \
            its records are kept untouched, every other stream starts; DELETE it to remove it");
        let entry = Quarantined { id: id.clone(), reason, since_ms: unix_millis() };
        self.quarantined.lock().unwrap_or_else(|e| e.into_inner()).insert(id, entry);
    }

    /// The quarantined stream with this id.
    pub fn quarantined(&self, id: &str) -> Option<Quarantined> {
        self.quarantined.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// Every quarantined stream, sorted by id.
    pub fn list_quarantined(&self) -> Vec<Quarantined> {
        self.quarantined.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Deletes a quarantined stream and its records from the store. `Ok(false)` when no
    /// stream with this id is quarantined.
    pub async fn remove_quarantined(&self, id: &str) -> Result<bool, DomainError> {
        if self.quarantined(id).is_none() {
            return Ok(false);
        }
        if let Some(store) = &self.context.store {
            store.commit(vec![crate::journal::Write::DeleteStream { id: id.to_owned() }]).await?;
        }
        Ok(self.quarantined.lock().unwrap_or_else(|e| e.into_inner()).remove(id).is_some())
    }

    fn spawn(
        &self,
        definition: Arc<StreamDefinition>,
        core: Core,
        meter: Option<Meter>,
        unsaved: bool,
        memory_bytes: u64,
        summaries: Option<broadcast::Sender<Arc<Push>>>,
    ) -> Arc<StreamHandle> {
        let (sender, receiver) = mpsc::channel(self.limits.queue_capacity);
        let summaries = summaries.unwrap_or_else(|| broadcast::channel(SUMMARY_BUFFER).0);
        let unsaved_since = Arc::new(AtomicU64::new(if unsaved { unix_millis() } else { 0 }));
        let meter = Arc::new(match meter {
            Some(meter) => MeterCell::restore(&definition.mode_meter(), meter, core.version),
            None => MeterCell::new(&definition.mode_meter()),
        });
        let recent = core.recent.clone();
        let (owner, snapshot) = Owner::new(
            definition.clone(),
            core,
            self.context.clone(),
            summaries.clone(),
            unsaved_since.clone(),
            self.spectra.clone(),
            meter.clone(),
        );
        let task = tokio::spawn(owner.run(receiver));
        let definition_source = definition.source.clone().map(|spec| Arc::new(SourceMonitor::new(spec)));
        Arc::new(StreamHandle {
            definition,
            edge: EdgeCounters::default(),
            meter,
            sender,
            snapshot,
            summaries,
            owner: Mutex::new(Some(task)),
            metrics: self.metrics.clone(),
            unsaved_since,
            memory_bytes,
            deleted: watch::channel(false).0,
            source: definition_source,
            recent,
        })
    }

    /// Reserves the memory a recovered stream will hold before its state is rebuilt, so a
    /// stored definition beyond the budgets is quarantined instead of allocated. The
    /// reservation is kept by `insert_recovered` or given back by `release`.
    pub fn reserve_recovered(&self, definition: &StreamDefinition) -> Result<u64, String> {
        let _streams = self.write();
        let bytes = self.check_budget(definition).map_err(|e| e.detail().to_owned())?;
        self.memory_in_use.fetch_add(bytes, Ordering::Relaxed);
        self.memory_changed();
        Ok(bytes)
    }

    /// Gives back a reservation of `reserve_recovered` whose stream was not inserted.
    pub fn release(&self, bytes: u64) {
        self.memory_in_use.fetch_sub(bytes, Ordering::Relaxed);
        self.memory_changed();
    }

    /// Adds a stream recovered from the store (`unsaved`: its log held entries after the
    /// snapshot), whose memory `reserve_recovered` already counted (`memory_bytes`), with
    /// the mode meter its snapshot kept.
    pub fn insert_recovered(
        &self,
        mut definition: StreamDefinition,
        core: Core,
        meter: Option<Meter>,
        unsaved: bool,
        memory_bytes: u64,
    ) {
        // Stored before incarnations existed: one for this run (validators change once).
        if definition.incarnation == 0 {
            definition.incarnation = fresh_incarnation();
        }
        let handle = self.spawn(Arc::new(definition), core, meter, unsaved, memory_bytes, None);
        {
            let mut streams = self.write();
            streams.insert(handle.definition.id.clone(), handle.clone());
            self.metrics.streams.set(streams.len() as i64);
        }
        self.launch_source(&handle);
    }

    /// Shows the count in the metrics.
    fn memory_changed(&self) {
        self.metrics.memory_estimate_bytes.set(i64::try_from(self.memory_in_use()).unwrap_or(i64::MAX));
    }

    /// Sum of the memory estimates of the streams held, in bytes.
    pub fn memory_in_use(&self) -> u64 {
        self.memory_in_use.load(Ordering::Relaxed)
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
    pub async fn create(&self, mut definition: StreamDefinition) -> Result<(Arc<StreamHandle>, bool), DomainError> {
        let handle = {
            let mut streams = self.write();
            if let Some(existing) = streams.get(&definition.id) {
                return if existing.definition.same_as(&definition) {
                    Ok((existing.clone(), false))
                } else {
                    Err(DomainError::conflict(format!("stream `{}` exists with a different definition", definition.id)))
                };
            }
            if let Some(q) = self.quarantined(&definition.id) {
                return Err(DomainError::quarantined(&q.id, &q.reason));
            }
            if streams.len() >= self.limits.max_streams {
                return Err(DomainError::limit_reached(format!(
                    "the stream limit ({}) is reached",
                    self.limits.max_streams
                )));
            }
            // The budget is checked before the estimator allocates anything.
            let bytes = self.check_budget(&definition)?;
            definition.incarnation = fresh_incarnation();
            let estimator =
                Estimator::new(definition.estimator_config()).map_err(|e| DomainError::invalid(e.to_string()))?;
            self.memory_in_use.fetch_add(bytes, Ordering::Relaxed);
            self.memory_changed();
            let core =
                Core::new(estimator).with_flat_line(definition.flat_line).with_outlier_gate(definition.outlier_gate);
            let handle = self.spawn(Arc::new(definition), core, None, false, bytes, None);
            streams.insert(handle.definition.id.clone(), handle.clone());
            self.metrics.streams.set(streams.len() as i64);
            handle
        };
        // Persist is the owner's first command: batches queued after it wait for it.
        let (reply, persisted) = oneshot::channel();
        let outcome = match handle.submit(Command::Persist { reply }).await {
            Ok(()) => persisted.await.unwrap_or(Err(DomainError::new(
                crate::error::ErrorKind::Unavailable,
                "the stream stopped before its definition was stored",
            ))),
            Err(_) => Err(DomainError::new(
                crate::error::ErrorKind::Unavailable,
                "the stream stopped before its definition was stored",
            )),
        };
        if let Err(e) = outcome {
            if self.write().remove(&handle.definition.id).is_some() {
                self.memory_in_use.fetch_sub(handle.memory_bytes, Ordering::Relaxed);
                self.memory_changed();
            }
            handle.stop(false).await;
            return Err(e);
        }
        // In a cluster the stream's source runs on its owner node only (`install`).
        if self.context.shared.is_none() {
            self.launch_source(&handle);
        }
        Ok((handle, true))
    }

    /// A clustered node's copy of a stream: inserts it, or replaces the one held (whose
    /// owner finishes what was queued to it, then stops without a final write). The node
    /// that holds the stream's lease installs it with its restored state and `owned`, which
    /// starts its source; every other node holds an idle copy whose owner only appends
    /// ingested batches to the shared log. The definition came from the cluster, which
    /// accepted it, so only the memory is counted (in full for the live copy,
    /// [`IDLE_COPY_BYTES`] for an idle one), not checked.
    pub async fn install(
        &self,
        definition: StreamDefinition,
        core: Core,
        meter: Option<Meter>,
        owned: bool,
    ) -> Arc<StreamHandle> {
        let bytes = if owned { definition.memory_bytes() } else { IDLE_COPY_BYTES.min(definition.memory_bytes()) };
        let mut definition = definition;
        if definition.incarnation == 0 {
            definition.incarnation = fresh_incarnation();
        }
        // The copy it replaces (same incarnation) passes on its subscribers' feed.
        let feed = self
            .get(&definition.id)
            .filter(|held| held.definition.incarnation == definition.incarnation)
            .map(|held| held.summaries.clone());
        let handle = self.spawn(Arc::new(definition), core, meter, false, bytes, feed);
        let replaced = {
            let mut streams = self.write();
            self.memory_in_use.fetch_add(bytes, Ordering::Relaxed);
            self.memory_changed();
            let replaced = streams.insert(handle.definition.id.clone(), handle.clone());
            if let Some(old) = &replaced {
                self.memory_in_use.fetch_sub(old.memory_bytes, Ordering::Relaxed);
                self.memory_changed();
            }
            self.metrics.streams.set(streams.len() as i64);
            replaced
        };
        if let Some(old) = replaced {
            old.stop_as(false, false).await;
        }
        if owned {
            self.launch_source(&handle);
        }
        handle
    }

    /// Removes a clustered node's copy of a stream that was deleted elsewhere: its owner
    /// stops, its connections close, and nothing is deleted from the cluster again.
    pub async fn remove_copy(&self, id: &str) -> bool {
        match self.take(id) {
            Some(handle) => {
                self.metrics.stream_removed(id);
                handle.stop_as(false, true).await;
                true
            }
            None => false,
        }
    }

    /// Takes a stream out of the map, giving back the memory it was counted for.
    fn take(&self, id: &str) -> Option<Arc<StreamHandle>> {
        let mut streams = self.write();
        let removed = streams.remove(id);
        if let Some(handle) = &removed {
            self.memory_in_use.fetch_sub(handle.memory_bytes, Ordering::Relaxed);
            self.memory_changed();
        }
        self.metrics.streams.set(streams.len() as i64);
        removed
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

    /// Removes a stream; its owner finishes what was queued, then stops. In a cluster the
    /// definition is removed from the cluster first, so a delete that cannot reach it
    /// fails (unavailable) and changes nothing; every node then drops its copy.
    pub async fn remove(&self, id: &str) -> Result<bool, DomainError> {
        if let Some(shared) = &self.context.shared {
            if self.get(id).is_none() {
                return Ok(false);
            }
            shared.undefine(id).await?;
            // The node's own watch may have dropped the copy already.
            self.remove_copy(id).await;
            return Ok(true);
        }
        match self.take(id) {
            Some(handle) => {
                self.metrics.stream_removed(id);
                handle.stop(true).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Stops every owner after its queue is drained; returns the final statuses.
    pub async fn shutdown(&self) -> Vec<StreamStatus> {
        let handles: Vec<_> = self.write().drain().map(|(_, h)| h).collect();
        // Every source stops before any owner does, so none feeds a stream that is stopping.
        for source in handles.iter().filter_map(|h| h.source.as_ref()) {
            source.stop();
        }
        let mut statuses = Vec::with_capacity(handles.len());
        for handle in handles {
            handle.stop(false).await;
            statuses.push(handle.status());
        }
        statuses.sort_by(|a, b| a.id.cmp(&b.id));
        statuses
    }
}
