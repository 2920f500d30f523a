//! The owner of one stream: a task that takes commands from a bounded queue, applies them
//! to the estimator in order, and publishes immutable snapshots for readers. Nothing else
//! touches the estimator, so no lock is ever held across an await.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use koopman::{EstimatorConfig, Progress};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::metrics::{Metrics, Reason, Transport};
use crate::service::batch::SampleBatch;
use crate::service::core::Core;
use crate::service::definition::StreamDefinition;
use crate::service::snapshot::{ModelSnapshot, ModelState, RejectCounts, StreamSnapshot, StreamStatus, WarmupProgress};
use crate::store::codec::{self, LogEntry, StreamState};
use crate::store::{Store, StoreError, Write};

/// A batch larger than this many multiply-adds is applied with the worker thread marked as
/// blocking, so other tasks move off it.
const BLOCKING_WORK: usize = 2_000_000;
/// Leading modes sent in a WebSocket summary.
const SUMMARY_MODES: usize = 6;

/// What a stream's owner is asked to do.
pub enum Command {
    /// Store the stream's definition (the first command of a new stream).
    Persist {
        /// Where the outcome goes.
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    /// Log, apply and acknowledge a validated batch.
    Ingest {
        /// The batch.
        batch: SampleBatch,
        /// How it arrived (for metrics).
        transport: Transport,
        /// Where the acknowledgement goes (after the batch is stored and applied).
        reply: oneshot::Sender<Result<IngestAck, StoreError>>,
    },
    /// Restart the model (same definition); replies with the new version.
    Reset {
        /// Where the new version goes.
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// Finish the commands queued before this one, then stop: with `delete`, remove the
    /// stream's data; otherwise leave a final snapshot so the log is short.
    Stop {
        /// Remove the stream's data.
        delete: bool,
    },
}

/// What every owner shares.
#[derive(Clone)]
pub struct OwnerContext {
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The store (absent with in-memory durability).
    pub store: Option<Arc<Store>>,
    /// Publish cadence under load.
    pub publish_interval: Duration,
    /// Snapshot after this many samples...
    pub snapshot_every: u64,
    /// ... or this long.
    pub snapshot_interval: Duration,
}

/// The acknowledgement of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IngestAck {
    /// The batch's seq.
    pub seq: u64,
    /// Samples applied.
    pub accepted: usize,
    /// Whether the seq was a retry (acknowledged, not applied again).
    pub duplicate: bool,
    /// Samples skipped because their time stamp was not after the stream's last.
    pub out_of_order: usize,
    /// Samples with a missing value (each breaks the chain of pairs).
    pub missing_value: usize,
    /// Model version after the batch.
    pub version: u64,
}

/// A mode in a summary.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModeBrief {
    /// Frequency in Hz.
    pub frequency_hz: f64,
    /// Damping ratio.
    pub damping_ratio: f64,
}

/// Pushed to WebSocket clients at the eigen cadence.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelSummary {
    /// Always `summary`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Model version the modes belong to.
    pub version: u64,
    /// Samples applied so far.
    pub samples_accepted: u64,
    /// Residual RMS per channel.
    pub residual_rms: Option<Vec<f64>>,
    /// Leading oscillatory modes, least damped first.
    pub modes: Vec<ModeBrief>,
}

/// Samples per second over the last second or so.
struct RateMeter {
    window_start: Instant,
    samples: u64,
    rate: f64,
}

impl RateMeter {
    fn add(&mut self, samples: u64) {
        self.samples += samples;
        let elapsed = self.window_start.elapsed().as_secs_f64();
        if elapsed >= 1.0 {
            self.rate = self.samples as f64 / elapsed;
            self.samples = 0;
            self.window_start = Instant::now();
        }
    }
}

type EigenJob = JoinHandle<(Arc<ModelSnapshot>, Duration)>;

/// Milliseconds since the Unix epoch (for snapshot ages shown in metrics).
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The task that owns a stream.
pub struct Owner {
    definition: Arc<StreamDefinition>,
    config: Arc<EstimatorConfig>,
    core: Core,
    snapshots: watch::Sender<Arc<StreamSnapshot>>,
    summaries: broadcast::Sender<Arc<ModelSummary>>,
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
    eigen_job: Option<EigenJob>,
    rate: RateMeter,
}

impl Owner {
    /// An owner of a stream in state `core` (new or recovered), with the watch it
    /// publishes to; `unsaved_since` tracks changes not yet in a stored snapshot.
    pub fn new(
        definition: Arc<StreamDefinition>,
        core: Core,
        context: OwnerContext,
        summaries: broadcast::Sender<Arc<ModelSummary>>,
        unsaved_since: Arc<AtomicU64>,
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
            eigen_job: None,
            rate: RateMeter { window_start: Instant::now(), samples: 0, rate: 0.0 },
        };
        owner.publish();
        let receiver = owner.snapshots.subscribe();
        (owner, receiver)
    }

    /// Runs until stopped or until every sender is gone.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { break };
                    self.metrics.queue_depth.dec();
                    match command {
                        Command::Persist { reply } => {
                            let _ = reply.send(self.persist_definition().await);
                        }
                        Command::Ingest { batch, transport, reply } => {
                            let ack = self.ingest(&batch, transport).await;
                            self.maybe_publish(commands.is_empty());
                            self.maybe_snapshot();
                            // The client may have gone; the batch is applied either way.
                            let _ = reply.send(ack);
                        }
                        Command::Reset { reply } => {
                            let logged = self.log(codec::encode_entry(&LogEntry::Reset)).await;
                            if logged.is_ok() {
                                self.core.reset();
                                self.since_snapshot += 1;
                                self.changed();
                                self.publish();
                            }
                            let _ = reply.send(logged.map(|()| self.core.version));
                        }
                        Command::Stop { delete } => {
                            self.finish(delete).await;
                            break;
                        }
                    }
                }
                finished = async { self.eigen_job.as_mut().expect("guarded").await }, if self.eigen_job.is_some() => {
                    self.eigen_job = None;
                    if let Ok((snapshot, took)) = finished {
                        self.metrics.eigen_seconds.observe(took.as_secs_f64());
                        self.send_summary(&snapshot);
                    }
                }
            }
        }
        // Leave readers the final state.
        self.publish();
    }

    async fn persist_definition(&self) -> Result<(), StoreError> {
        let Some(store) = &self.context.store else { return Ok(()) };
        let definition = serde_json::to_vec(&*self.definition).expect("a definition serialises");
        store.commit(vec![Write::PutStream { id: self.definition.id.clone(), definition }]).await
    }

    /// Appends an entry for the next version; nothing is applied unless this succeeds.
    async fn log(&self, entry: Vec<u8>) -> Result<(), StoreError> {
        let Some(store) = &self.context.store else { return Ok(()) };
        store.commit(vec![Write::Append { id: self.definition.id.clone(), index: self.core.version + 1, entry }]).await
    }

    async fn ingest(&mut self, batch: &SampleBatch, transport: Transport) -> Result<IngestAck, StoreError> {
        if !self.core.is_duplicate(batch.seq) {
            // Stored first, then applied: a batch is acknowledged only once it is durable,
            // and a store failure leaves the model untouched.
            self.log(codec::encode_batch(batch)).await?;
        }
        let started = Instant::now();
        let n_regressor = self.config.n_regressor();
        let work = batch.rows.saturating_mul(n_regressor * n_regressor * 5);
        let ts = self.definition.ts;
        let core = &mut self.core;
        let ack = if work > BLOCKING_WORK && is_multi_thread() {
            tokio::task::block_in_place(|| core.apply(batch, ts))
        } else {
            core.apply(batch, ts)
        };
        let took = started.elapsed().as_secs_f64();
        if ack.duplicate {
            self.metrics.rejected(transport, Reason::Duplicate, batch.rows as u64);
            return Ok(ack);
        }
        self.metrics.accepted(transport, ack.accepted as u64);
        self.metrics.rejected(transport, Reason::OutOfOrder, ack.out_of_order as u64);
        self.metrics.rejected(transport, Reason::MissingValue, ack.missing_value as u64);
        self.metrics.batch_seconds.observe(took);
        if ack.accepted > 0 {
            self.metrics.update_seconds.observe(took / ack.accepted as f64);
        }
        let residual = self.core.estimator.residual_rms().map(|r| r.iter().sum::<f64>() / r.len() as f64);
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
        let state = self.core.to_state();
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
        let Some(store) = self.context.store.clone() else { return };
        // Let a snapshot in flight land first, so the final one is the newest.
        while self.snapshot_busy.load(Ordering::Acquire) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let id = self.definition.id.clone();
        let result = if delete {
            store.commit(vec![Write::DeleteStream { id: id.clone() }]).await
        } else if self.since_snapshot > 0 {
            write_snapshot(&store, id.clone(), self.core.to_state()).await
        } else {
            Ok(())
        };
        match result {
            Ok(()) => self.unsaved_since.store(0, Ordering::Release),
            Err(e) => tracing::error!(stream = %id, error = %e, delete, "final store write failed"),
        }
    }

    /// Publishes when the queue is idle or the interval has passed; starts the eigen job
    /// when the cadence is due.
    fn maybe_publish(&mut self, idle: bool) {
        let eigen_due = self.since_eigen >= self.definition.eigen_every && self.eigen_job.is_none();
        if idle || eigen_due || self.last_publish.elapsed() >= self.publish_interval {
            self.publish();
        }
        if eigen_due && let Some(snapshot) = self.published.clone() {
            self.since_eigen = 0;
            self.eigen_job = Some(tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let _ = snapshot.modes();
                (snapshot, started.elapsed())
            }));
        }
    }

    fn publish(&mut self) {
        self.last_publish = Instant::now();
        let core = &self.core;
        let current = self.published.as_ref().filter(|p| p.version == core.version).cloned();
        let model = current.or_else(|| {
            let linear = core.estimator.linear_model()?;
            Some(Arc::new(ModelSnapshot::new(
                core.version,
                self.definition.ts,
                linear,
                core.estimator.recent_states(),
                core.last_t,
                self.config.clone(),
                core.estimator.mu().unwrap_or_default(),
                core.estimator.pairs_in_model(),
                core.estimator.residual_rms().map(<[f64]>::to_vec),
            )))
        });
        self.published = model.clone();
        let status = self.status();
        self.snapshots.send_replace(Arc::new(StreamSnapshot { status, model }));
    }

    fn status(&self) -> StreamStatus {
        let core = &self.core;
        let counters = core.estimator.counters();
        let (state, warmup) = match core.estimator.progress() {
            Progress::WarmingUp { have, need } => (ModelState::WarmingUp, WarmupProgress { have, need }),
            Progress::AwaitingRank => {
                (ModelState::AwaitingRank, WarmupProgress { have: self.config.warmup, need: self.config.warmup })
            }
            Progress::Ready => {
                (ModelState::Ready, WarmupProgress { have: self.config.warmup, need: self.config.warmup })
            }
        };
        StreamStatus {
            id: self.definition.id.clone(),
            version: core.version,
            state,
            warmup,
            samples_accepted: core.samples,
            samples_rejected: core.rejects,
            batches: core.batches,
            pairs: counters.pairs,
            gaps: counters.gaps,
            last_timestamp: core.last_t,
            last_seq: core.last_seq,
            residual_rms: core.estimator.residual_rms().map(<[f64]>::to_vec),
            update_rate_hz: self.rate.rate,
            refactorisations: counters.refactorisations,
            mu: core.estimator.mu(),
        }
    }

    fn send_summary(&self, snapshot: &ModelSnapshot) {
        let Ok(modes) = snapshot.modes() else { return };
        let briefs: Vec<ModeBrief> = modes
            .iter()
            .filter(|m| m.eigenvalue.im > 0.0 && !m.flags.ambiguous())
            .filter_map(|m| m.continuous)
            .take(SUMMARY_MODES)
            .map(|c| ModeBrief { frequency_hz: c.frequency_hz, damping_ratio: c.damping_ratio })
            .collect();
        let pairs: Vec<(f64, f64)> = briefs.iter().map(|b| (b.frequency_hz, b.damping_ratio)).collect();
        self.metrics.stream_modes(&self.definition.id, &pairs);
        let summary = ModelSummary {
            kind: "summary",
            version: snapshot.version,
            samples_accepted: self.core.samples,
            residual_rms: snapshot.residual_rms.clone(),
            modes: briefs,
        };
        // No subscriber is fine: summaries are only for connected WebSocket clients.
        let _ = self.summaries.send(Arc::new(summary));
    }
}

async fn write_snapshot(store: &Store, id: String, state: StreamState) -> Result<(), StoreError> {
    let version = state.version;
    let bytes = tokio::task::spawn_blocking(move || codec::encode_snapshot(&state)).await.map_err(|e| {
        StoreError::Write { path: store.path().to_owned(), detail: format!("snapshot encoding failed: {e}") }
    })?;
    store.commit(vec![Write::Snapshot { id, version, bytes }]).await
}

fn is_multi_thread() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

fn placeholder_status() -> StreamStatus {
    StreamStatus {
        id: String::new(),
        version: 0,
        state: ModelState::WarmingUp,
        warmup: WarmupProgress { have: 0, need: 0 },
        samples_accepted: 0,
        samples_rejected: RejectCounts::default(),
        batches: 0,
        pairs: 0,
        gaps: 0,
        last_timestamp: None,
        last_seq: None,
        residual_rms: None,
        update_rate_hz: 0.0,
        refactorisations: 0,
        mu: None,
    }
}
