//! The state of a stream that batches change, and the rules that apply a batch to it: seq
//! idempotency and conflicts ([`crate::watermark`]), time stamps (out of order, gaps),
//! stuck sensors ([`crate::flat_line`]), missing values, outliers ([`crate::outlier`]). The
//! same code applies a live batch and replays a logged one, so recovery reproduces the state
//! exactly.

use std::sync::Arc;

use koopman::{Estimator, EstimatorConfig, StateError};

use crate::batch::{SampleBatch, Timing};
use crate::command::IngestAck;
use crate::error::DomainError;
use crate::flat_line::FlatLine;
use crate::journal::{LogEntry, StreamState};
use crate::outlier::{OutlierGate, Verdict};
use crate::recent::RecentSamples;
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
    /// The outlier gate on the one-step residual.
    pub outlier_gate: OutlierGate,
    /// The last measured samples, for readers (not part of the saved state).
    pub recent: Arc<RecentSamples>,
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
            outlier_gate: OutlierGate::new(estimator.config().n_states(), 0.0),
            recent: Arc::new(RecentSamples::new(estimator.config().n_states())),
            estimator,
        }
    }

    /// The same with flat-line detection at `limit` identical values (0: off); the runs
    /// seen so far are kept.
    pub fn with_flat_line(mut self, limit: u64) -> Self {
        self.flat_line.limit = limit;
        self
    }

    /// The same with the outlier gate at `k` standard deviations (0: off); what it has
    /// learnt and counted so far is kept.
    pub fn with_outlier_gate(mut self, k: f64) -> Self {
        self.outlier_gate.k = k;
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
        // The scale belongs to the model that restarts.
        self.outlier_gate.forget();
        if watermarks {
            self.watermark.clear();
            self.last_t = None;
            self.flat_line.clear();
            self.recent.clear();
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
            outlier_gate: self.outlier_gate.state.clone(),
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
        // Likewise the outlier gate's scale (none before format 5): it seeds again.
        let mut outlier_gate = OutlierGate::new(n, 0.0);
        if state.outlier_gate.mean_square.len() == n {
            outlier_gate.state = state.outlier_gate;
        }
        Ok(Self {
            flat_line,
            outlier_gate,
            // Measurements are not saved: the ring fills again from what is replayed.
            recent: Arc::new(RecentSamples::new(n)),
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
            outlier: 0,
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
        let recent = self.recent.clone();
        let mut recent = recent.writer();
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
            recent.push(t, &batch.x[k * n..(k + 1) * n]);
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
            if self.outlier_gate.is_on()
                && let Some(residual) = self.estimator.one_step_residual(&batch.x[k * n..(k + 1) * n])
            {
                match self.outlier_gate.judge(residual) {
                    Verdict::Admit => {}
                    Verdict::Gate => {
                        ack.outlier += 1;
                        self.estimator.break_chain();
                        continue;
                    }
                    Verdict::Reopen => tracing::warn!(
                        t,
                        gated = crate::outlier::LOCKOUT,
                        reopened = self.outlier_gate.state.reopened,
                        "outlier gate reopened after gating samples in a row: the signal changed; its scale is seeded again"
                    ),
                }
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
        self.rejects.outlier += ack.outlier as u64;
        ack.version = self.version;
        Ok(ack)
    }
}

#[cfg(test)]
mod tests {
    //! The outlier gate as the owner applies it: a noisy damped oscillator (x' = A x + w,
    //! eigenvalues 0.995 e^(+-0.2i), w of standard deviation 0.1 per channel) with spikes.

    use super::*;
    use crate::outlier::LOCKOUT;
    use koopman::Regularisation;

    const NOISE: f64 = 0.1;

    /// SplitMix64 and Box-Muller: fixed seeds, no dependency.
    struct Normal(u64);

    impl Normal {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }

        fn sample(&mut self) -> f64 {
            let (u1, u2) = (self.uniform().max(1e-300), self.uniform());
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }

    fn oscillator(samples: usize, seed: u64) -> Vec<[f64; 2]> {
        let (r, w) = (0.995f64, 0.2f64);
        let (a, b) = (r * w.cos(), r * w.sin());
        let mut noise = Normal(seed);
        let mut x = [1.0, 0.0];
        (0..samples)
            .map(|_| {
                let now = x;
                x = [a * x[0] - b * x[1] + NOISE * noise.sample(), b * x[0] + a * x[1] + NOISE * noise.sample()];
                now
            })
            .collect()
    }

    /// Adds spikes of `size` (random sign, random channel) to `fraction` of the samples from
    /// `from` on, at least three apart (the sample after a gated one starts a chain and is
    /// not judged); returns their indices.
    fn spike(samples: &mut [[f64; 2]], from: usize, fraction: f64, size: f64, seed: u64) -> Vec<usize> {
        let mut draw = Normal(seed);
        let mut at: Vec<usize> = Vec::new();
        for (k, s) in samples.iter_mut().enumerate().skip(from) {
            if draw.uniform() < fraction && at.last().is_none_or(|last| k - last >= 3) {
                let sign = if draw.uniform() < 0.5 { -1.0 } else { 1.0 };
                s[usize::from(draw.uniform() < 0.5)] += sign * size;
                at.push(k);
            }
        }
        at
    }

    fn core(gate: f64) -> Core {
        let mut c = EstimatorConfig::new(vec!["x1".into(), "x2".into()], "state,const".parse().unwrap());
        c.regularisation = Regularisation::Mu(1e-6);
        c.warmup = 200;
        Core::new(Estimator::new(c).unwrap()).with_outlier_gate(gate)
    }

    /// Applies each sample as its own batch (seq k + 1, t = k); the acks in order.
    fn run(core: &mut Core, samples: &[[f64; 2]], first: usize) -> Vec<IngestAck> {
        (first..first + samples.len())
            .map(|k| {
                let batch = SampleBatch {
                    seq: k as u64 + 1,
                    epoch: None,
                    timing: Timing::Start(k as f64),
                    rows: 1,
                    x: samples[k - first].to_vec(),
                    u: Vec::new(),
                };
                core.apply(&batch, 1.0).unwrap()
            })
            .collect()
    }

    /// The eigenvalue in the upper half plane of the state block of A (standardised
    /// coordinates: the warm-up, free of spikes, gives every run the same scaling).
    fn eigenvalue(core: &Core) -> (f64, f64) {
        let a = core.estimator.linear_model().unwrap().a;
        let (p, q, r, s) = (a[(0, 0)], a[(0, 1)], a[(1, 0)], a[(1, 1)]);
        let (half_trace, det) = ((p + s) / 2.0, p * s - q * r);
        (half_trace, (det - half_trace * half_trace).max(0.0).sqrt())
    }

    fn distance(a: (f64, f64), b: (f64, f64)) -> f64 {
        (a.0 - b.0).hypot(a.1 - b.1)
    }

    #[test]
    fn spikes_are_gated_and_counted_clean_samples_are_not_and_the_model_stays_clean() {
        let clean = oscillator(20_000, 7);
        let mut spiked = clean.clone();
        // 50 noise standard deviations, on 1 % of the samples after warm-up and seeding.
        let spikes = spike(&mut spiked, 300, 0.01, 50.0 * NOISE, 11);
        let (mut reference, mut gated, mut ungated) = (core(0.0), core(5.0), core(0.0));
        run(&mut reference, &clean, 0);
        let acks = run(&mut gated, &spiked, 0);
        run(&mut ungated, &spiked, 0);
        let flagged: Vec<usize> = (0..acks.len()).filter(|&k| acks[k].outlier == 1).collect();
        let caught = spikes.iter().filter(|k| flagged.contains(k)).count();
        let false_positives = flagged.len() - caught;
        let clean_judged = clean.len() - 250 - 2 * spikes.len();
        let rate = false_positives as f64 / clean_judged as f64;
        let truth = (0.995 * 0.2f64.cos(), 0.995 * 0.2f64.sin());
        let (clean_mode, gated_mode, ungated_mode) = (eigenvalue(&reference), eigenvalue(&gated), eigenvalue(&ungated));
        let (gated_off, ungated_off) = (distance(gated_mode, clean_mode), distance(ungated_mode, clean_mode));
        println!(
            "spikes {}, caught {caught}, false positives {false_positives} of {clean_judged} ({rate:.2e}); \
             eigenvalue: truth {truth:?}, clean {clean_mode:?}, gated {gated_mode:?} (off the clean one by \
             {gated_off:.2e}), ungated {ungated_mode:?} (off by {ungated_off:.2e})",
            spikes.len()
        );
        assert!(spikes.len() > 150);
        assert_eq!(caught, spikes.len(), "every spike is gated");
        assert!(rate <= 1e-3, "false-positive rate {rate}");
        assert_eq!(gated.rejects.outlier, flagged.len() as u64);
        assert_eq!(gated.outlier_gate.state.reopened, 0);
        assert!(gated_off < 0.1 * ungated_off, "gated {gated_off} vs ungated {ungated_off}");
        assert!(gated_off < 5e-3 && ungated_off > 2e-2, "gated {gated_off}, ungated {ungated_off}");
    }

    #[test]
    fn with_the_gate_off_or_never_firing_the_estimator_is_bit_identical_to_plain_pushes() {
        let mut samples = oscillator(3000, 3);
        spike(&mut samples, 300, 0.01, 5.0, 5);
        let mut plain = core(0.0).estimator;
        for x in &samples {
            plain.push(x, &[]).unwrap();
        }
        let mut off = core(0.0);
        run(&mut off, &samples, 0);
        assert_eq!(off.estimator.export_state(), plain.export_state());
        assert_eq!(off.outlier_gate.state.learned, 0, "an off gate learns nothing");
        // A gate that judges every sample but never fires (k = 100 on clean data) leaves the
        // estimator exactly as without it: reading the residual changes nothing.
        let clean = oscillator(3000, 3);
        let (mut never, mut without) = (core(100.0), core(0.0));
        run(&mut never, &clean, 0);
        run(&mut without, &clean, 0);
        assert!(never.outlier_gate.state.learned > 2000);
        assert_eq!(never.rejects.outlier, 0);
        assert_eq!(never.estimator.export_state(), without.estimator.export_state());
    }

    #[test]
    fn a_step_is_readmitted_after_the_lockout_and_then_learnt() {
        let mut samples = oscillator(8000, 13);
        // A permanent offset of 200 noise standard deviations on x1 from sample 5000 on.
        samples[5000..].iter_mut().for_each(|s| s[0] += 200.0 * NOISE);
        let mut gate = core(5.0);
        let acks = run(&mut gate, &samples, 0);
        let outliers = |range: std::ops::Range<usize>| acks[range].iter().map(|a| a.outlier).sum::<usize>();
        assert_eq!(outliers(0..5000), 0, "nothing gated before the step");
        // Gated, then unjudged (a chain start), gated, ...: LOCKOUT gated, then readmitted.
        assert_eq!(outliers(5000..5000 + 2 * LOCKOUT as usize), LOCKOUT as usize);
        assert_eq!(acks[5000 + 2 * LOCKOUT as usize].accepted, 1, "readmitted");
        assert_eq!(gate.outlier_gate.state.reopened, 1);
        assert_eq!(outliers(5000 + 2 * LOCKOUT as usize..8000), 0, "the new level is learnt, not refused");
        assert_eq!(gate.rejects.outlier, LOCKOUT);
    }

    #[test]
    fn a_restored_core_takes_the_same_decisions() {
        let mut samples = oscillator(6000, 17);
        spike(&mut samples, 300, 0.01, 5.0, 19);
        let mut whole = core(5.0);
        let first = run(&mut whole, &samples[..2500], 0);
        let state = whole.to_state();
        assert_eq!(state.outlier_gate, whole.outlier_gate.state);
        let mut restored = Core::from_state(whole.estimator.config().clone(), state).unwrap().with_outlier_gate(5.0);
        assert_eq!(restored.outlier_gate, whole.outlier_gate);
        let rest = run(&mut whole, &samples[2500..], 2500);
        assert_eq!(run(&mut restored, &samples[2500..], 2500), rest);
        assert!(first.iter().chain(&rest).map(|a| a.outlier).sum::<usize>() > 30);
        assert_eq!(restored.to_state(), whole.to_state());
        // A state without a gate (a snapshot before format 5) seeds the scale again.
        let mut old = whole.to_state();
        old.outlier_gate = Default::default();
        let seeded = Core::from_state(whole.estimator.config().clone(), old).unwrap().with_outlier_gate(5.0);
        assert_eq!((seeded.outlier_gate.state.learned, seeded.outlier_gate.state.mean_square.len()), (0, 2));
    }
}
