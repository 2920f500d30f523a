//! What readers see of a stream: its status and the latest published model, immutable and
//! shared, so reading never waits on ingest. Modes are computed once per published model,
//! on the cadence or on the first request, off the async reactor.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use koopman::spectrum::{self, Mode};
use koopman::{EstimatorConfig, LinearModel, NumericalError};

/// A stream silent this long (or for three of its own sample intervals, if longer) is
/// reported as receiving nothing.
pub const SILENT_AFTER: Duration = Duration::from_secs(2);

/// Samples applied per second, as the owner measured it when it last applied a batch.
/// The owner publishes only when something happens, so a reader asks it at the time of
/// reading: a stream that stopped must not show its last rate for ever.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IngestRate {
    /// Samples per second over the last measured window (about a second).
    pub per_second: f64,
    /// When the last batch was applied (none yet: nothing applied).
    pub last_batch_at: Option<Instant>,
}

impl IngestRate {
    /// The rate a reader sees at `now`: the measured one, or 0 once the stream has been
    /// silent for [`SILENT_AFTER`] or three of its sample intervals, whichever is longer.
    pub fn at(&self, now: Instant) -> f64 {
        let Some(last) = self.last_batch_at else { return 0.0 };
        let intervals = if self.per_second > 0.0 { 3.0 / self.per_second } else { 0.0 };
        let silent_after = SILENT_AFTER.max(Duration::from_secs_f64(intervals.min(3600.0)));
        if now.saturating_duration_since(last) > silent_after { 0.0 } else { self.per_second }
    }
}

/// Warm-up progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmupProgress {
    /// Samples collected.
    pub have: usize,
    /// Samples needed.
    pub need: usize,
}

/// Samples not applied, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RejectCounts {
    /// In batches that failed validation (422) or were too large (413).
    pub invalid: u64,
    /// In batches refused because the queue was full (429).
    pub queue_full: u64,
    /// In retried batches (acknowledged, not applied again).
    pub duplicate: u64,
    /// With a time stamp not after the stream's last one (skipped).
    pub out_of_order: u64,
    /// With a missing value (each breaks the chain of pairs).
    pub missing_value: u64,
    /// On a flat line: a state channel stuck at one value for the stream's `flat_line`
    /// samples or more (treated as missing).
    pub flat_line: u64,
    /// Gated as outliers: the one-step residual beyond the stream's `outlier_gate`
    /// standard deviations on some state channel (treated as missing).
    pub outlier: u64,
}

/// Model state of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelState {
    /// Collecting warm-up samples.
    WarmingUp,
    /// Lifting fixed; waiting for enough pairs (mu = 0).
    AwaitingRank,
    /// A model is available.
    Ready,
}

/// `GET /v1/streams/{id}` status.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStatus {
    /// Stream id.
    pub id: String,
    /// Model version: increases with every applied batch and every reset.
    pub version: u64,
    /// Model state.
    pub state: ModelState,
    /// Warm-up progress.
    pub warmup: WarmupProgress,
    /// Samples applied.
    pub samples_accepted: u64,
    /// Samples not applied, by reason.
    pub samples_rejected: RejectCounts,
    /// Batches applied.
    pub batches: u64,
    /// Pairs formed.
    pub pairs: u64,
    /// Chain breaks (missing values, time gaps).
    pub gaps: u64,
    /// Time stamp of the last sample.
    pub last_timestamp: Option<f64>,
    /// Highest applied seq (of the current producer epoch).
    pub last_seq: Option<u64>,
    /// The producer epoch in force (0 until a producer sends one).
    pub epoch: u64,
    /// One-step residual RMS per channel (data units).
    pub residual_rms: Option<Vec<f64>>,
    /// Samples applied per second, recently: [`IngestRate::at`] the time of reading.
    pub update_rate: IngestRate,
    /// Exact refactorisations so far.
    pub refactorisations: u64,
    /// The ridge parameter in use (after warm-up).
    pub mu: Option<f64>,
    /// Times the outlier gate reopened after gating samples in a row (the signal changed).
    pub outlier_gate_reopened: u64,
}

/// A published model.
pub struct ModelSnapshot {
    /// Model version.
    pub version: u64,
    /// Sample time.
    pub ts: f64,
    /// A, B, C and the lifting.
    pub model: LinearModel,
    /// Raw recent states, oldest first (the start of a prediction).
    pub recent_states: Vec<f64>,
    /// Time stamp of the newest of them.
    pub last_timestamp: Option<f64>,
    /// The estimator configuration.
    pub config: Arc<EstimatorConfig>,
    /// mu in use.
    pub mu: f64,
    /// Pairs weighing on the model.
    pub pairs: u64,
    /// Residual RMS per channel.
    pub residual_rms: Option<Vec<f64>>,
    modes: OnceLock<Result<Arc<Vec<Mode>>, NumericalError>>,
}

impl ModelSnapshot {
    /// A snapshot whose modes are not computed yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        version: u64,
        ts: f64,
        model: LinearModel,
        recent_states: Vec<f64>,
        last_timestamp: Option<f64>,
        config: Arc<EstimatorConfig>,
        mu: f64,
        pairs: u64,
        residual_rms: Option<Vec<f64>>,
    ) -> Self {
        Self {
            version,
            ts,
            model,
            recent_states,
            last_timestamp,
            config,
            mu,
            pairs,
            residual_rms,
            modes: OnceLock::new(),
        }
    }

    /// The modes, computed on first use (O(N^3): call off the async reactor).
    pub fn modes(&self) -> Result<Arc<Vec<Mode>>, NumericalError> {
        self.modes
            .get_or_init(|| spectrum::modes(self.model.a.as_ref(), self.model.c.as_ref(), self.ts).map(Arc::new))
            .clone()
    }

    /// Whether the modes are already computed.
    pub fn has_modes(&self) -> bool {
        self.modes.get().is_some()
    }
}

/// What the owner publishes after it changes the stream.
#[derive(Clone)]
pub struct StreamSnapshot {
    /// Status (without the rejections counted at the edge).
    pub status: StreamStatus,
    /// The latest published model.
    pub model: Option<Arc<ModelSnapshot>>,
}
