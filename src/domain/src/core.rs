//! The state of a stream that batches change, and the rules that apply a batch to it: seq
//! idempotency and conflicts ([`crate::watermark`]), time stamps (out of order, gaps),
//! stuck sensors ([`crate::flat_line`]), missing values. The same code applies a live batch
//! and replays a logged one, so recovery reproduces the state exactly.

use koopman::{Estimator, EstimatorConfig, StateError};

use crate::batch::{SampleBatch, Timing};
use crate::command::IngestAck;
use crate::error::DomainError;
use crate::flat_line::FlatLine;
use crate::journal::{LogEntry, StreamState};
use crate::snapshot::RejectCounts;
use crate::watermark::{Admission, SeqWatermark, digest};

/// The stream state that applying a batch changes.
pub struct Core {
    /// The estimator.
    pub estimator: Estimator,
    /// Version: applied batches and resets.
    pub version: u64,
    /// The producers' numbering: epoch, highest applied seq, digests of recent batches.
    pub watermark: SeqWatermark,
    /// Last time stamp.
    pub last_t: Option<f64>,
    /// Samples applied.
    pub samples: u64,
    /// Batches applied.
    pub batches: u64,
    /// Rejections counted here.
    pub rejects: RejectCounts,
    /// Stuck-sensor runs per state channel.
    pub flat_line: FlatLine,
}

impl Core {
    /// A fresh stream.
    pub fn new(estimator: Estimator) -> Self {
        Self {
            version: 0,
            watermark: SeqWatermark::default(),
            last_t: None,
            samples: 0,
            batches: 0,
            rejects: RejectCounts::default(),
            flat_line: FlatLine::new(estimator.config().n_states(), 0),
            estimator,
        }
    }

    /// The same with flat-line detection at `limit` identical values (0: off); the runs
    /// seen so far are kept.
    pub fn with_flat_line(mut self, limit: u64) -> Self {
        self.flat_line.limit = limit;
        self
    }

    /// Highest applied seq of the current epoch.
    pub fn last_seq(&self) -> Option<u64> {
        self.watermark.last_seq
    }

    /// Restarts the model; with `watermarks`, the seq watermark and the last time stamp
    /// are cleared too, so the same data can be sent again (the producer epoch stays).
    pub fn reset(&mut self, watermarks: bool) {
        self.estimator.reset();
        if watermarks {
            self.watermark.clear();
            self.last_t = None;
            self.flat_line.clear();
        }
        self.version += 1;
    }

    /// Applies a logged entry during recovery.
    pub fn replay(&mut self, entry: &LogEntry, ts: f64) {
        match entry {
            LogEntry::Batch(batch) => {
                // Only admitted batches are logged; a conflict here would mean a damaged
                // log, and the batch is then skipped as it was live.
                let _ = self.apply(batch, ts);
            }
            LogEntry::Reset { watermarks } => self.reset(*watermarks),
        }
    }

    /// A copy of everything needed to continue exactly.
    pub fn to_state(&self) -> StreamState {
        StreamState {
            version: self.version,
            last_seq: self.watermark.last_seq,
            epoch: self.watermark.epoch,
            recent: self.watermark.recent.iter().copied().collect(),
            flat_last: self.flat_line.last.clone(),
            flat_run: self.flat_line.run.clone(),
            last_t: self.last_t,
            samples: self.samples,
            batches: self.batches,
            rejects: self.rejects,
            estimator: self.estimator.export_state(),
            meter: None,
        }
    }

    /// The stream continued from a saved state.
    pub fn from_state(config: EstimatorConfig, state: StreamState) -> Result<Self, StateError> {
        let n = config.n_states();
        // Runs kept by a snapshot of another width (or none, before format 4) start afresh.
        let mut flat_line = FlatLine::new(n, 0);
        if state.flat_last.len() == n && state.flat_run.len() == n {
            (flat_line.last, flat_line.run) = (state.flat_last, state.flat_run);
        }
        Ok(Self {
            flat_line,
            estimator: Estimator::restore(config, state.estimator)?,
            version: state.version,
            watermark: SeqWatermark {
                epoch: state.epoch,
                last_seq: state.last_seq,
                recent: state.recent.into_iter().collect(),
            },
            last_t: state.last_t,
            samples: state.samples,
            batches: state.batches,
            rejects: state.rejects,
        })
    }

    /// Applies a validated batch by the stream's rules: a retry is acknowledged and not
    /// applied, a conflicting seq or epoch is refused and changes nothing.
    pub fn apply(&mut self, batch: &SampleBatch, ts: f64) -> Result<IngestAck, DomainError> {
        self.apply_digested(batch, digest(batch), ts)
    }

    /// [`Core::apply`] with the batch's [`digest`] already computed (the owner computes it
    /// once for the log and for this).
    pub fn apply_digested(&mut self, batch: &SampleBatch, digest: u64, ts: f64) -> Result<IngestAck, DomainError> {
        let (n, m) = (self.estimator.config().n_states(), self.estimator.config().n_inputs());
        let mut ack = IngestAck {
            seq: batch.seq,
            accepted: 0,
            duplicate: false,
            out_of_order: 0,
            missing_value: 0,
            flat_line: 0,
            version: self.version,
        };
        match self.watermark.admit(batch, digest) {
            Admission::New => {}
            Admission::Retry => {
                ack.duplicate = true;
                self.rejects.duplicate += batch.rows as u64;
                return Ok(ack);
            }
            Admission::Conflict(why) => return Err(DomainError::conflict(why)),
        }
        let new_epoch = batch.epoch.is_some_and(|e| e > self.watermark.epoch);
        self.watermark.record(batch, digest);
        if new_epoch {
            tracing::info!(
                epoch = self.watermark.epoch,
                seq = batch.seq,
                "producer epoch advanced; seq numbering restarts"
            );
        }
        for k in 0..batch.rows {
            let t = match &batch.timing {
                Timing::Explicit(times) => times[k],
                Timing::Start(t0) => t0 + k as f64 * ts,
                Timing::Continue => self.last_t.map_or(0.0, |last| last + ts),
            };
            if let Some(last) = self.last_t {
                if t <= last {
                    ack.out_of_order += 1;
                    continue;
                }
                if t - last > 1.5 * ts {
                    self.estimator.break_chain();
                }
            }
            self.last_t = Some(t);
            if self.flat_line.observe(&batch.x[k * n..(k + 1) * n]) {
                ack.flat_line += 1;
                self.estimator.break_chain();
                continue;
            }
            if batch.has_dropout(k, n, m) {
                ack.missing_value += 1;
                self.estimator.break_chain();
                continue;
            }
            // The batch was validated at the edge; a refusal here would be a fault, and it is
            // still handled by rule: the sample is a gap.
            match self.estimator.push(&batch.x[k * n..(k + 1) * n], &batch.u[k * m..(k + 1) * m]) {
                Ok(_) => ack.accepted += 1,
                Err(e) => {
                    tracing::error!(error = %e, "validated sample refused by the estimator");
                    ack.missing_value += 1;
                    self.estimator.break_chain();
                }
            }
        }
        self.version += 1;
        self.samples += ack.accepted as u64;
        self.batches += 1;
        self.rejects.out_of_order += ack.out_of_order as u64;
        self.rejects.missing_value += ack.missing_value as u64;
        self.rejects.flat_line += ack.flat_line as u64;
        ack.version = self.version;
        Ok(ack)
    }
}
