//! The owner of one stream: a task that takes commands from a bounded queue, applies them
//! to the estimator in order, and publishes immutable snapshots for readers. Nothing else
//! touches the estimator, so no lock is ever held across an await.
//!
//! Batches that wait in the queue together are logged together: one store commit (one
//! transaction) holds all their log entries, then each is applied and acknowledged in
//! order. A stream fed faster than one commit per batch thus needs fewer commits, while
//! every batch is still stored before it is applied and applied before it is acknowledged.
//!
//! In a cluster (`OwnerContext::shared`) the owner of every node's copy sends ingested
//! batches and resets to the cluster's log instead, and acknowledges them once the log
//! holds them; only on the stream's owner node is it fed the log back, in order, as
//! `Apply` and `ApplyReset` commands, and asked for its state (`Export`) for snapshots.

mod publish;
mod rate;
mod shared;

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use koopman::EstimatorConfig;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::batch::SampleBatch;
use crate::command::{Command, IngestAck, Push};
use crate::core::Core;
use crate::definition::StreamDefinition;
use crate::error::DomainError;
use crate::journal::{Journal, LogEntry, StreamState, Write};
use crate::metrics::{Metrics, Reason, Transport};
use crate::modes::MeterCell;
use crate::shared_log::SharedLog;
use crate::snapshot::{ModelSnapshot, StreamSnapshot};
use crate::spectra::Spectra;
use crate::watermark::{Admission, digest};

use publish::placeholder_status;

/// A batch larger than this many multiply-adds is applied with the worker thread marked as
/// blocking, so other tasks move off it.
const BLOCKING_WORK: usize = 2_000_000;
/// Most batches logged in one commit: the queue's default capacity.
const MAX_GROUP: usize = 64;
/// Most samples logged in one commit (bounds the transaction and the wait of the group's
/// first acknowledgement for the last one's commit).
const MAX_GROUP_ROWS: usize = 65_536;

/// What every owner shares.
#[derive(Clone)]
pub struct OwnerContext {
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The store (absent with in-memory durability).
    pub store: Option<Arc<dyn Journal>>,
    /// Publish cadence under load.
    pub publish_interval: Duration,
    /// Snapshot after this many samples...
    pub snapshot_every: u64,
    /// ... or this long.
    pub snapshot_interval: Duration,
    /// The cluster's shared log (absent on a single node). With it, an ingested batch is
    /// appended to the log and acknowledged once the log holds it; it is applied when the
    /// stream's owner node replays it (`Command::Apply`), and definitions live in the
    /// cluster. `store` is then absent: the log and the cluster's snapshots are the state.
    pub shared: Option<Arc<dyn SharedLog>>,
}

/// An ingest command taken from the queue.
struct Queued {
    batch: SampleBatch,
    /// The batch's digest, computed once for logging and applying alike.
    digest: u64,
    transport: Transport,
    reply: oneshot::Sender<Result<IngestAck, DomainError>>,
}

impl Queued {
    fn new(batch: SampleBatch, transport: Transport, reply: oneshot::Sender<Result<IngestAck, DomainError>>) -> Self {
        Self { digest: digest(&batch), batch, transport, reply }
    }
}

/// Milliseconds since the Unix epoch (for snapshot ages shown in metrics).
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// How soon a refresh that found the previous one still queued is tried again.
const REFRESH_RETRY: Duration = Duration::from_millis(20);

/// The task that owns a stream.
pub struct Owner {
    definition: Arc<StreamDefinition>,
    config: Arc<EstimatorConfig>,
    core: Core,
    snapshots: watch::Sender<Arc<StreamSnapshot>>,
    summaries: broadcast::Sender<Arc<Push>>,
    metrics: Arc<Metrics>,
    context: OwnerContext,
    since_snapshot: u64,
    last_snapshot: Instant,
    snapshot_busy: Arc<AtomicBool>,
    /// When the oldest change not yet in a snapshot was made (Unix ms; 0 = all saved).
    unsaved_since: Arc<AtomicU64>,
    /// The version, shared with snapshot tasks so they know whether they caught up.
    version_now: Arc<AtomicU64>,
    publish_interval: Duration,
    last_publish: Instant,
    published: Option<Arc<ModelSnapshot>>,
    since_eigen: u64,
    spectra: Arc<Spectra>,
    /// Set while this stream's refresh waits for the spectra worker.
    spectra_queued: Arc<AtomicBool>,
    meter: Arc<MeterCell>,
    rate: rate::RateMeter,
}

impl Owner {
    /// An owner of a stream in state `core` (new or recovered), with the watch it
    /// publishes to; `unsaved_since` tracks changes not yet in a stored snapshot; summaries
    /// are computed by `spectra`.
    pub fn new(
        definition: Arc<StreamDefinition>,
        core: Core,
        context: OwnerContext,
        summaries: broadcast::Sender<Arc<Push>>,
        unsaved_since: Arc<AtomicU64>,
        spectra: Arc<Spectra>,
        meter: Arc<MeterCell>,
    ) -> (Self, watch::Receiver<Arc<StreamSnapshot>>) {
        let config = Arc::new(definition.estimator_config());
        let version_now = Arc::new(AtomicU64::new(core.version));
        let mut owner = Self {
            definition,
            config,
            core,
            snapshots: watch::Sender::new(Arc::new(StreamSnapshot { status: placeholder_status(), model: None })),
            summaries,
            metrics: context.metrics.clone(),
            publish_interval: context.publish_interval,
            since_snapshot: 0,
            last_snapshot: Instant::now(),
            snapshot_busy: Arc::new(AtomicBool::new(false)),
            unsaved_since,
            version_now,
            context,
            last_publish: Instant::now(),
            published: None,
            since_eigen: 0,
            spectra,
            spectra_queued: Arc::new(AtomicBool::new(false)),
            meter,
            rate: rate::RateMeter::new(),
        };
        owner.publish_model();
        let receiver = owner.snapshots.subscribe();
        (owner, receiver)
    }

    /// Runs until stopped or until every sender is gone.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        // A command taken from the queue while gathering a group of batches, handled next.
        let mut deferred = None;
        loop {
            let command = match deferred.take() {
                Some(command) => command,
                None => {
                    // A refresh that came due while the previous one was still queued is
                    // retried shortly even if no command arrives, so the meter always ends
                    // up analysing the latest model.
                    let received = if self.refresh_pending() {
                        match tokio::time::timeout(REFRESH_RETRY, commands.recv()).await {
                            Ok(received) => received,
                            Err(_) => {
                                self.maybe_publish(true);
                                continue;
                            }
                        }
                    } else {
                        commands.recv().await
                    };
                    match received {
                        Some(command) => {
                            self.metrics.queue_depth.dec();
                            command
                        }
                        None => break,
                    }
                }
            };
            match command {
                Command::Persist { reply } => {
                    let _ = reply.send(self.persist_definition().await);
                }
                Command::Ingest { batch, transport, reply } if self.context.shared.is_some() => {
                    self.send_to_shared_log(batch, transport, reply).await;
                }
                Command::Reset { watermarks, reply } if self.context.shared.is_some() => {
                    let _ = reply.send(self.reset_through_shared_log(watermarks).await);
                }
                Command::ApplyReset { watermarks, reply } => {
                    self.reset(watermarks);
                    let _ = reply.send(self.core.version);
                }
                Command::Apply { batch, transport, reply } => {
                    // One at a time: the owner node sends the next batch of the log only
                    // after this one's outcome, so there is never a group to gather.
                    let group = vec![Queued::new(batch, transport, reply)];
                    self.ingest_group(group, &commands, false).await;
                }
                Command::Export { reply } => {
                    let _ = reply.send(self.state());
                }
                Command::PublishModel { reply } => {
                    self.publish_model();
                    let _ = reply.send(());
                }
                Command::Ingest { batch, transport, reply } => {
                    let mut rows = batch.rows;
                    let mut group = vec![Queued::new(batch, transport, reply)];
                    while group.len() < MAX_GROUP && rows < MAX_GROUP_ROWS {
                        match commands.try_recv() {
                            Ok(Command::Ingest { batch, transport, reply }) => {
                                self.metrics.queue_depth.dec();
                                rows += batch.rows;
                                group.push(Queued::new(batch, transport, reply));
                            }
                            Ok(other) => {
                                self.metrics.queue_depth.dec();
                                deferred = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.ingest_group(group, &commands, deferred.is_some()).await;
                }
                Command::Reset { watermarks, reply } => {
                    let entry = self.context.store.as_ref().map(|j| j.encode_entry(&LogEntry::Reset { watermarks }));
                    let logged = self.log(entry.map(|e| vec![(self.core.version + 1, e)]).unwrap_or_default()).await;
                    if logged.is_ok() {
                        self.reset(watermarks);
                    }
                    let _ = reply.send(logged.map(|()| self.core.version));
                }
                Command::Stop { delete } => {
                    self.finish(delete).await;
                    break;
                }
            }
        }
        // Leave readers the final state.
        self.publish_model();
    }

    async fn persist_definition(&self) -> Result<(), DomainError> {
        if let Some(shared) = &self.context.shared {
            return shared.define(&self.definition).await;
        }
        let Some(store) = &self.context.store else { return Ok(()) };
        let definition = store.encode_definition(&self.definition);
        store.commit(vec![Write::PutStream { id: self.definition.id.clone(), definition }]).await
    }

    /// Restarts the model (a reset already logged) and publishes it.
    fn reset(&mut self, watermarks: bool) {
        self.core.reset(watermarks);
        tracing::info!(stream = %self.definition.id, watermarks, "stream reset");
        self.since_snapshot += 1;
        self.changed();
        self.publish_model();
    }

    /// Appends log entries at their indices (the versions they produce) in one commit;
    /// nothing is applied unless this succeeds.
    async fn log(&self, entries: Vec<(u64, Vec<u8>)>) -> Result<(), DomainError> {
        let Some(store) = &self.context.store else { return Ok(()) };
        if entries.is_empty() {
            return Ok(());
        }
        let id = &self.definition.id;
        store
            .commit(entries.into_iter().map(|(index, entry)| Write::Append { id: id.clone(), index, entry }).collect())
            .await
    }

    /// The log entries of the batches of a group that will be applied (not retries, not
    /// conflicts), at the versions they will produce: the watermark is advanced over the
    /// group exactly as `Core::apply` will advance it when it applies them in order.
    fn entries(&self, group: &[Queued]) -> Vec<(u64, Vec<u8>)> {
        let Some(journal) = &self.context.store else { return Vec::new() };
        let (mut watermark, mut index) = (self.core.watermark.clone(), self.core.version);
        let mut entries = Vec::with_capacity(group.len());
        for queued in group {
            if watermark.admit(&queued.batch, queued.digest) != Admission::New {
                continue;
            }
            watermark.record(&queued.batch, queued.digest);
            index += 1;
            entries.push((index, journal.encode_batch(&queued.batch)));
        }
        entries
    }

    /// Logs a group of batches in one commit, then applies and acknowledges each in order;
    /// the last acknowledgement waits for the publication when the queue is idle. When the
    /// commit fails, nothing of it was stored, and each batch is tried alone, as if it had
    /// come alone.
    async fn ingest_group(&mut self, group: Vec<Queued>, commands: &mpsc::Receiver<Command>, deferred: bool) {
        if let Err(e) = self.log(self.entries(&group)).await {
            if group.len() == 1 {
                let _ = group.into_iter().next().map(|queued| queued.reply.send(Err(e)));
                return;
            }
            for queued in group {
                let logged = self.log(self.entries(std::slice::from_ref(&queued))).await;
                let ack = logged.and_then(|()| self.apply(&queued));
                self.maybe_publish(commands.is_empty() && !deferred);
                self.maybe_snapshot();
                let _ = queued.reply.send(ack);
            }
            return;
        }
        let last = group.len() - 1;
        for (i, queued) in group.into_iter().enumerate() {
            let ack = self.apply(&queued);
            if i == last {
                self.maybe_publish(commands.is_empty() && !deferred);
                self.maybe_snapshot();
            }
            // The client may have gone; the batch is applied either way.
            let _ = queued.reply.send(ack);
        }
    }

    /// Applies a logged batch (or acknowledges a retry, or refuses a conflict) and counts it.
    fn apply(&mut self, queued: &Queued) -> Result<IngestAck, DomainError> {
        let (batch, digest, transport) = (&queued.batch, queued.digest, queued.transport);
        let started = Instant::now();
        let n_regressor = self.config.n_regressor();
        let work = batch.rows.saturating_mul(n_regressor * n_regressor * 5);
        let ts = self.definition.ts;
        let core = &mut self.core;
        let ack = if work > BLOCKING_WORK && is_multi_thread() {
            tokio::task::block_in_place(|| core.apply_digested(batch, digest, ts))
        } else {
            core.apply_digested(batch, digest, ts)
        };
        let took = started.elapsed().as_secs_f64();
        let ack = match ack {
            Ok(ack) => ack,
            Err(e) => {
                self.metrics.rejected(transport, Reason::SeqConflict, batch.rows as u64);
                tracing::warn!(stream = %self.definition.id, seq = batch.seq, error = %e, "batch refused");
                return Err(e);
            }
        };
        if ack.duplicate {
            self.metrics.rejected(transport, Reason::Duplicate, batch.rows as u64);
            return Ok(ack);
        }
        self.metrics.accepted(transport, ack.accepted as u64);
        self.metrics.rejected(transport, Reason::OutOfOrder, ack.out_of_order as u64);
        self.metrics.rejected(transport, Reason::MissingValue, ack.missing_value as u64);
        self.metrics.rejected(transport, Reason::FlatLine, ack.flat_line as u64);
        self.metrics.rejected(transport, Reason::Outlier, ack.outlier as u64);
        self.metrics.batch_seconds.observe(took);
        if ack.accepted > 0 {
            self.metrics.update_seconds.observe(took / ack.accepted as f64);
        }
        let residual = self.core.estimator.mean_residual_rms();
        self.metrics.stream_update(&self.definition.id, ack.accepted as u64, residual);
        self.rate.add(ack.accepted as u64);
        self.since_eigen += ack.accepted as u64;
        self.since_snapshot += ack.accepted as u64 + 1;
        self.changed();
        Ok(ack)
    }

    /// Records a change that the next snapshot must carry.
    fn changed(&self) {
        self.version_now.store(self.core.version, Ordering::Release);
        if self.context.store.is_some() {
            let _ = self.unsaved_since.compare_exchange(0, unix_millis(), Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Starts a snapshot when one is due; encoding and writing happen off this task.
    fn maybe_snapshot(&mut self) {
        let due = self.since_snapshot >= self.context.snapshot_every
            || (self.since_snapshot > 0 && self.last_snapshot.elapsed() >= self.context.snapshot_interval);
        let Some(store) = self.context.store.clone() else { return };
        if !due || self.snapshot_busy.swap(true, Ordering::AcqRel) {
            return;
        }
        self.since_snapshot = 0;
        self.last_snapshot = Instant::now();
        let state = self.state();
        let (id, busy, unsaved, version_now, metrics) = (
            self.definition.id.clone(),
            self.snapshot_busy.clone(),
            self.unsaved_since.clone(),
            self.version_now.clone(),
            self.metrics.clone(),
        );
        tokio::spawn(async move {
            let started = Instant::now();
            let started_ms = unix_millis();
            let version = state.version;
            let result = write_snapshot(&store, id.clone(), state).await;
            match result {
                Ok(()) => {
                    metrics.snapshot_seconds.observe(started.elapsed().as_secs_f64());
                    // Changes made while the snapshot was written are still unsaved.
                    let caught_up = version_now.load(Ordering::Acquire) == version;
                    unsaved.store(if caught_up { 0 } else { started_ms }, Ordering::Release);
                }
                Err(e) => tracing::error!(stream = %id, error = %e, "snapshot failed"),
            }
            busy.store(false, Ordering::Release);
        });
    }

    /// On stop: delete the stream's data, or leave a final snapshot.
    async fn finish(&mut self, delete: bool) {
        if self.context.shared.is_some() {
            // In a cluster the owner node writes the snapshots, and `Registry::remove`
            // removed a deleted stream's definition before stopping its owner.
            return;
        }
        let Some(store) = self.context.store.clone() else { return };
        // Let a snapshot in flight land first, so the final one is the newest.
        while self.snapshot_busy.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let id = self.definition.id.clone();
        let result = if delete {
            store.commit(vec![Write::DeleteStream { id: id.clone() }]).await
        } else if self.since_snapshot > 0 {
            write_snapshot(&store, id.clone(), self.state()).await
        } else {
            Ok(())
        };
        match result {
            Ok(()) => self.unsaved_since.store(0, Ordering::Release),
            Err(e) => tracing::error!(stream = %id, error = %e, delete, "final store write failed"),
        }
    }

    /// What a snapshot keeps: the core's state and the mode meter's.
    fn state(&self) -> StreamState {
        let mut state = self.core.to_state();
        state.meter = Some(self.meter.meter().clone());
        state
    }
}

async fn write_snapshot(store: &Arc<dyn Journal>, id: String, state: StreamState) -> Result<(), DomainError> {
    let version = state.version;
    let journal = store.clone();
    let bytes = tokio::task::spawn_blocking(move || journal.encode_snapshot(&state))
        .await
        .map_err(|e| DomainError::storage(false, format!("snapshot encoding failed: {e}")))?;
    store.commit(vec![Write::Snapshot { id, version, bytes }]).await
}

fn is_multi_thread() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}
