//! Outlier gating on the one-step residual: a sample that parses but is far from what the
//! model predicts (a spike, a corrupted reading) would pull the least-squares model towards
//! it for good. With the gate at k standard deviations, once the model is solved a sample
//! whose residual exceeds k times its channel's running residual scale on any state channel
//! is treated as missing (it breaks the chain of pairs) and counted as `outlier`.
//!
//! The scale of channel j is the root of an exponentially weighted mean square of the
//! residuals of the samples the gate admitted: a plain running mean over the first
//! [`HORIZON`] residuals, weight 1 / [`HORIZON`] after. The gate judges nothing until
//! [`SEED_RESIDUALS`] residuals are in (the seeding admits every sample). A gated sample
//! never enters the scale, so a burst of bad data cannot widen the gate for the next one.
//!
//! Lock-out: a real change of the signal (a step, a fault) is also far from the old
//! model's prediction, and must not be refused forever. After [`LOCKOUT`] gated samples
//! with no admitted, judged sample in between, the next sample that would be gated is
//! admitted instead: the gate reopens, forgets its scale and seeds it again from the
//! samples that follow (which are all admitted), so the model learns the new behaviour.
//! Reopenings are counted and logged. Samples that cannot be judged (the first of a chain,
//! after a gap) are admitted and neither end nor extend a run of gated samples.
//!
//! Everything here is part of the stream's state that `Core` applies and snapshots
//! (format 5), so replay after a restart takes exactly the same decisions.

/// Residuals that seed a channel's scale before the gate judges anything.
pub const SEED_RESIDUALS: u64 = 50;
/// The exponential horizon of the scale, in admitted residuals.
pub const HORIZON: u64 = 1000;
/// Gated samples in a row after which the gate reopens.
pub const LOCKOUT: u64 = 10;
/// Smallest scale a channel is judged with (in the residual's units, the standardised
/// state): a channel the model predicts exactly is not gated on rounding noise.
pub const SCALE_FLOOR: f64 = 1e-9;
/// Bounds of k when the gate is on: below 2 it would refuse a few per cent of Gaussian
/// noise, above 100 it would never act.
pub const K_RANGE: (f64, f64) = (2.0, 100.0);

/// What the gate has learnt and counted: the part of a stream's snapshot it keeps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateState {
    /// The mean square of the admitted residuals per state channel (standardised units).
    pub mean_square: Vec<f64>,
    /// Residuals in `mean_square` since the last (re)seeding.
    pub learned: u64,
    /// Samples gated since the last admitted, judged one.
    pub consecutive: u64,
    /// Times the gate reopened after [`LOCKOUT`] gated samples in a row.
    pub reopened: u64,
}

/// The gate's decision about one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within k standard deviations on every channel, or seeding: apply it.
    Admit,
    /// Beyond k standard deviations on some channel: treat it as missing.
    Gate,
    /// It would have been gated, but the gate was locked out: apply it, and seed afresh.
    Reopen,
}

/// The gate of one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierGate {
    /// Standard deviations beyond which a sample is gated (0: off).
    pub k: f64,
    /// What it has learnt and counted.
    pub state: GateState,
}

impl OutlierGate {
    /// A gate for `n` state channels, nothing learnt.
    pub fn new(n: usize, k: f64) -> Self {
        Self { k, state: GateState { mean_square: vec![0.0; n], ..GateState::default() } }
    }

    /// Whether the gate judges samples at all.
    pub fn is_on(&self) -> bool {
        self.k > 0.0
    }

    /// Judges one sample by its one-step residual (one value per state channel), and learns
    /// from it if it is admitted. No allocation.
    pub fn judge(&mut self, residual: &[f64]) -> Verdict {
        let s = &mut self.state;
        if s.learned < SEED_RESIDUALS {
            learn(s, residual);
            return Verdict::Admit;
        }
        let k = self.k;
        let beyond = residual.iter().zip(&s.mean_square).any(|(e, ms)| e.abs() > k * ms.sqrt().max(SCALE_FLOOR));
        if !beyond {
            s.consecutive = 0;
            learn(s, residual);
            return Verdict::Admit;
        }
        if s.consecutive < LOCKOUT {
            s.consecutive += 1;
            return Verdict::Gate;
        }
        // The signal really changed: this residual measures the change, not the noise, so
        // the new scale is seeded from the samples after it.
        s.consecutive = 0;
        s.reopened += 1;
        self.forget();
        Verdict::Reopen
    }

    /// Forgets the scale (the model restarted, or the gate reopened); counts stay.
    pub fn forget(&mut self) {
        self.state.mean_square.fill(0.0);
        self.state.learned = 0;
        self.state.consecutive = 0;
    }
}

fn learn(s: &mut GateState, residual: &[f64]) {
    s.learned += 1;
    let weight = 1.0 / s.learned.min(HORIZON) as f64;
    for (ms, e) in s.mean_square.iter_mut().zip(residual) {
        *ms += weight * (e * e - *ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_then_gates_beyond_k_sigma_and_reopens_after_the_lockout() {
        let mut gate = OutlierGate::new(2, 5.0);
        // Residuals of +-1 on both channels: the scale is 1.
        for i in 0..SEED_RESIDUALS {
            let e = if i % 2 == 0 { 1.0 } else { -1.0 };
            assert_eq!(gate.judge(&[e, -e]), Verdict::Admit);
        }
        assert_eq!(gate.state.mean_square, [1.0, 1.0]);
        assert_eq!(gate.judge(&[4.9, 0.0]), Verdict::Admit);
        assert_eq!(gate.judge(&[0.0, -5.1 * gate.state.mean_square[1].sqrt()]), Verdict::Gate);
        // A gated residual is not learnt, and an admitted one ends the run.
        let learned = gate.state.learned;
        assert_eq!(gate.judge(&[100.0, 0.0]), Verdict::Gate);
        assert_eq!((gate.state.learned, gate.state.consecutive), (learned, 2));
        assert_eq!(gate.judge(&[0.5, 0.5]), Verdict::Admit);
        assert_eq!(gate.state.consecutive, 0);
        // LOCKOUT gated in a row, then the next is admitted and the scale seeded afresh.
        for _ in 0..LOCKOUT {
            assert_eq!(gate.judge(&[50.0, 50.0]), Verdict::Gate);
        }
        assert_eq!(gate.judge(&[50.0, 50.0]), Verdict::Reopen);
        assert_eq!((gate.state.reopened, gate.state.learned, gate.state.consecutive), (1, 0, 0));
        assert_eq!(gate.judge(&[50.0, 50.0]), Verdict::Admit, "seeding again");
        // A channel predicted exactly is judged against the floor, not against zero.
        let mut exact = OutlierGate::new(1, 5.0);
        for _ in 0..SEED_RESIDUALS {
            exact.judge(&[0.0]);
        }
        assert_eq!(exact.judge(&[1e-12]), Verdict::Admit);
        assert_eq!(exact.judge(&[1e-6]), Verdict::Gate);
    }
}
