//! What an owner shows its readers: the model snapshot and the status it publishes (when
//! the queue is idle or the publish interval has passed), and the modal refresh it queues on
//! the spectra worker when the eigen cadence comes due.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use koopman::Progress;

use crate::snapshot::{
    IngestRate, ModelSnapshot, ModelState, RejectCounts, StreamSnapshot, StreamStatus, WarmupProgress,
};
use crate::spectra;

use super::Owner;

impl Owner {
    /// Whether a refresh is due but could not be queued yet (one was still waiting).
    pub(super) fn refresh_pending(&self) -> bool {
        self.since_eigen >= self.definition.eigen_every && self.published.is_some()
    }

    /// Publishes the status when the queue is idle or the interval has passed, and the
    /// model too when the stream's refresh (mode meter, summary, mode gauges) comes due; the
    /// refresh is queued on the spectra worker unless one is still queued. It takes the
    /// model just published and copies of the estimator's statistics (P, G, the residual
    /// ring: copies only; the arithmetic runs on the worker).
    ///
    /// Otherwise the model is built only when a reader asks for it (`PublishModel`): building
    /// it copies the operator (N'^2 values), which after every batch was about a quarter of
    /// the server's CPU at 200 streams (BENCHMARKS.md).
    pub(super) fn maybe_publish(&mut self, idle: bool) {
        let eigen_due = self.since_eigen >= self.definition.eigen_every && !self.spectra_queued.load(Ordering::Acquire);
        if eigen_due {
            self.publish_model();
        } else if idle || self.last_publish.elapsed() >= self.publish_interval {
            self.publish_status();
        }
        if eigen_due && let Some(model) = self.published.clone() {
            self.since_eigen = 0;
            let Some(stats) = self.core.estimator.mode_statistics() else { return };
            self.spectra_queued.store(true, Ordering::Release);
            self.spectra.submit(spectra::Job {
                stream: self.definition.id.clone(),
                model,
                stats,
                snapshots: self.snapshots.subscribe(),
                summaries: self.summaries.clone(),
                queued: self.spectra_queued.clone(),
                gauges: self.metrics.has_stream_series(&self.definition.id),
                meter: self.meter.clone(),
            });
        }
    }

    /// Publishes the status with the model of the current version, built unless the one
    /// published already is.
    pub(super) fn publish_model(&mut self) {
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
                core.estimator.residual_rms(),
            )))
        });
        self.published = model;
        self.publish_status();
    }

    /// Publishes the status, with the model published last (possibly of an older version:
    /// readers that need the current one ask for it).
    pub(super) fn publish_status(&mut self) {
        self.last_publish = Instant::now();
        let status = self.status();
        let model = self.published.clone();
        self.snapshots.send_replace(Arc::new(StreamSnapshot { status, model }));
    }

    pub(super) fn status(&self) -> StreamStatus {
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
            last_seq: core.last_seq(),
            epoch: core.watermark.epoch,
            residual_rms: core.estimator.residual_rms(),
            update_rate: self.rate.published(),
            refactorisations: counters.refactorisations,
            mu: core.estimator.mu(),
            outlier_gate_reopened: core.outlier_gate.state.reopened,
        }
    }
}

/// The status readers see before the owner's first publication.
pub(super) fn placeholder_status() -> StreamStatus {
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
        epoch: 0,
        residual_rms: None,
        update_rate: IngestRate::default(),
        refactorisations: 0,
        mu: None,
        outlier_gate_reopened: 0,
    }
}
