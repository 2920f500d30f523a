//! Which eigenvalues of a refresh may be physical modes, and why the others are not.

use koopman::c64;
use koopman::spectrum::ModeEstimate;

use crate::settings::MeterSettings;

/// What the classification says of one eigenvalue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// May be a physical mode: goes to the tracker.
    Candidate,
    /// The negative-frequency twin of a complex pair (its partner is classified).
    ConjugateTwin,
    /// |lambda| near zero: no continuous reading.
    NearZero,
    /// Phase near +-pi: aliasing cannot be ruled out.
    NearNyquist,
    /// Real and negative.
    NegativeReal,
    /// Frequency outside the band (a real positive eigenvalue has frequency 0).
    OutOfBand,
    /// Its pair carries less than the minimum energy share.
    LowEnergy,
}

impl Verdict {
    /// Stable name for documents and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Candidate => "candidate",
            Self::ConjugateTwin => "conjugate_twin",
            Self::NearZero => "near_zero",
            Self::NearNyquist => "near_nyquist",
            Self::NegativeReal => "negative_real",
            Self::OutOfBand => "out_of_band",
            Self::LowEnergy => "low_energy",
        }
    }
}

/// An eigenvalue that may be a physical mode, with what tracking and alarms need.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Index in the analysed list.
    pub index: usize,
    /// Continuous eigenvalue s = ln(lambda) / Ts (positive imaginary part).
    pub s: c64,
    /// Frequency in Hz.
    pub frequency_hz: f64,
    /// Damping ratio.
    pub damping_ratio: f64,
    /// 95 % interval of the frequency.
    pub frequency_ci95: Option<(f64, f64)>,
    /// 95 % interval of the damping ratio.
    pub damping_ci95: Option<(f64, f64)>,
    /// Energy share of the conjugate pair.
    pub energy: f64,
    /// Shape on the measured channels (largest entry 1).
    pub shape: Vec<c64>,
}

/// The classification of one refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    /// One verdict per analysed eigenvalue, in the analysed order.
    pub verdicts: Vec<Verdict>,
    /// The candidates.
    pub candidates: Vec<Candidate>,
    /// Eigenvalues that would be candidates but for their energy, which is below the
    /// minimum and at least [`KEEP_ENERGY_FRACTION`] of it: they may continue a born
    /// track, never start or raise one (their verdict stays `LowEnergy` unless a track takes them).
    pub weak: Vec<Candidate>,
}

/// Energy hysteresis: a tracked mode keeps its track while its energy share stays above
/// this fraction of the minimum a new track needs. A weak mode near the minimum (the
/// 68-bus 0.78 Hz inter-area mode carries 0.3 % to 1.5 % of the energy, around the
/// default 0.5 %) would otherwise die and be born again under a new id whenever its share
/// dips below the minimum for a few refreshes.
pub const KEEP_ENERGY_FRACTION: f64 = 0.5;

/// Classifies the analysed modes of a model at sample time `ts`.
pub fn classify(modes: &[ModeEstimate], ts: f64, settings: &MeterSettings) -> Classified {
    let (low, high) = settings.band(ts);
    let mut verdicts = Vec::with_capacity(modes.len());
    let mut candidates = Vec::new();
    let mut weak = Vec::new();
    for (index, m) in modes.iter().enumerate() {
        let lambda = m.mode.eigenvalue;
        let flags = m.mode.flags;
        let verdict = if flags.near_zero {
            Verdict::NearZero
        } else if flags.negative_real {
            Verdict::NegativeReal
        } else if flags.near_nyquist {
            Verdict::NearNyquist
        } else if lambda.im < 0.0 {
            Verdict::ConjugateTwin
        } else {
            match m.mode.continuous {
                None => Verdict::NearZero,
                Some(c) if !(c.frequency_hz > low && c.frequency_hz <= high) => Verdict::OutOfBand,
                Some(c) => {
                    let candidate = Candidate {
                        index,
                        s: c.s,
                        frequency_hz: c.frequency_hz,
                        damping_ratio: c.damping_ratio,
                        frequency_ci95: m.frequency_ci95,
                        damping_ci95: m.damping_ci95,
                        energy: 2.0 * m.energy,
                        shape: m.mode.shape.clone(),
                    };
                    if candidate.energy >= settings.min_energy {
                        candidates.push(candidate);
                        Verdict::Candidate
                    } else {
                        if candidate.energy >= settings.min_energy * KEEP_ENERGY_FRACTION {
                            weak.push(candidate);
                        }
                        Verdict::LowEnergy
                    }
                }
            }
        };
        verdicts.push(verdict);
    }
    Classified { verdicts, candidates, weak }
}

/// Modal assurance criterion of two shapes: |a^H b|^2 / (|a|^2 |b|^2), in [0, 1].
pub fn mac(a: &[c64], b: &[c64]) -> f64 {
    if a.len() != b.len() {
        return 0.0;
    }
    let dot: c64 = a.iter().zip(b).map(|(x, y)| x.conj() * y).sum();
    let na: f64 = a.iter().map(|x| x.norm_sqr()).sum();
    let nb: f64 = b.iter().map(|x| x.norm_sqr()).sum();
    if na == 0.0 || nb == 0.0 { 0.0 } else { (dot.norm_sqr() / (na * nb)).min(1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_is_one_for_scaled_shapes_and_zero_for_orthogonal_ones() {
        let a = [c64::new(1.0, 0.0), c64::new(0.5, 0.5)];
        let b: Vec<c64> = a.iter().map(|x| x * c64::new(0.0, 2.0)).collect();
        assert!((mac(&a, &b) - 1.0).abs() < 1e-12);
        assert!(mac(&[c64::new(1.0, 0.0), c64::new(0.0, 0.0)], &[c64::new(0.0, 0.0), c64::new(1.0, 0.0)]) < 1e-12);
    }
}
