//! The status a stream is served with: its state, warm-up, what it accepted and
//! rejected, and how fast samples come in, converted from the service's own status.

use serde::Serialize;
use utoipa::ToSchema;

use domain::snapshot::{ModelState, RejectCounts, StreamStatus};

/// Warm-up progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = WarmupProgress)]
pub struct WarmupProgressDoc {
    /// Samples collected.
    pub have: usize,
    /// Samples needed.
    pub need: usize,
}

/// Samples not applied, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = RejectCounts)]
pub struct RejectCountsDoc {
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
    /// On a flat line (a stuck state channel; treated as missing).
    pub flat_line: u64,
    /// Gated as outliers (one-step residual beyond the stream's `outlier_gate` standard
    /// deviations; treated as missing).
    pub outlier: u64,
}

/// Model state of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = ModelState)]
#[serde(rename_all = "snake_case")]
pub enum ModelStateDoc {
    /// Collecting warm-up samples.
    WarmingUp,
    /// Lifting fixed; waiting for enough pairs (mu = 0).
    AwaitingRank,
    /// A model is available.
    Ready,
}

/// `GET /v1/streams/{id}` status.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = StreamStatus)]
pub struct StreamStatusDoc {
    /// Stream id.
    pub id: String,
    /// Model version: increases with every applied batch and every reset.
    pub version: u64,
    /// Model state.
    pub state: ModelStateDoc,
    /// Warm-up progress.
    pub warmup: WarmupProgressDoc,
    /// Samples applied.
    pub samples_accepted: u64,
    /// Samples not applied, by reason.
    pub samples_rejected: RejectCountsDoc,
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
    /// Samples applied per second over the last window of at least a second; 0 once the
    /// stream has been silent for 2 s or three of its sample intervals, whichever is longer.
    pub update_rate_hz: f64,
    /// Exact refactorisations so far.
    pub refactorisations: u64,
    /// The ridge parameter in use (after warm-up).
    pub mu: Option<f64>,
    /// Times the outlier gate reopened after 10 gated samples in a row (the signal changed,
    /// and the gate learnt its scale again).
    pub outlier_gate_reopened: u64,
}

impl From<&StreamStatus> for StreamStatusDoc {
    fn from(s: &StreamStatus) -> Self {
        let r = &s.samples_rejected;
        Self {
            id: s.id.clone(),
            version: s.version,
            state: match s.state {
                ModelState::WarmingUp => ModelStateDoc::WarmingUp,
                ModelState::AwaitingRank => ModelStateDoc::AwaitingRank,
                ModelState::Ready => ModelStateDoc::Ready,
            },
            warmup: WarmupProgressDoc { have: s.warmup.have, need: s.warmup.need },
            samples_accepted: s.samples_accepted,
            samples_rejected: reject_counts(r),
            batches: s.batches,
            pairs: s.pairs,
            gaps: s.gaps,
            last_timestamp: s.last_timestamp,
            last_seq: s.last_seq,
            epoch: s.epoch,
            residual_rms: s.residual_rms.clone(),
            update_rate_hz: s.update_rate.at(std::time::Instant::now()),
            refactorisations: s.refactorisations,
            mu: s.mu,
            outlier_gate_reopened: s.outlier_gate_reopened,
        }
    }
}

fn reject_counts(r: &RejectCounts) -> RejectCountsDoc {
    RejectCountsDoc {
        invalid: r.invalid,
        queue_full: r.queue_full,
        duplicate: r.duplicate,
        out_of_order: r.out_of_order,
        missing_value: r.missing_value,
        flat_line: r.flat_line,
        outlier: r.outlier,
    }
}
