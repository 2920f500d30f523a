//! Spectra of the identified operator: discrete and continuous eigenvalues, frequency,
//! damping, time constant, ambiguity flags, mode shapes on the measured channels and
//! participation factors.

use faer::linalg::solvers::DenseSolveCore;
use faer::{MatRef, c64};

use crate::error::NumericalError;

/// |lambda| below this has no meaningful logarithm (the continuous eigenvalue is -inf).
const NEAR_ZERO: f64 = 1e-8;
/// |arg lambda| above this fraction of pi is too close to the Nyquist frequency to trust.
const NEAR_NYQUIST: f64 = 0.9;

/// Why an eigenvalue's continuous-time reading is not unique or not reliable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModeFlags {
    /// Real and negative: ln(lambda) lands exactly on the Nyquist frequency.
    pub negative_real: bool,
    /// Magnitude near zero: no finite continuous eigenvalue.
    pub near_zero: bool,
    /// Phase near +-pi: aliasing cannot be ruled out.
    pub near_nyquist: bool,
}

impl ModeFlags {
    /// Whether any flag is set.
    pub fn ambiguous(&self) -> bool {
        self.negative_real || self.near_zero || self.near_nyquist
    }
}

/// The continuous-time reading s = ln(lambda) / Ts of a discrete eigenvalue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Continuous {
    /// s in 1/s (principal logarithm).
    pub s: c64,
    /// |Im s| / (2 pi), in Hz.
    pub frequency_hz: f64,
    /// -Re s / |s| (0 when s = 0).
    pub damping_ratio: f64,
    /// -1 / Re s in seconds, for a decaying mode.
    pub time_constant_s: Option<f64>,
}

impl Continuous {
    /// Continuous reading of `lambda` at sample time `ts`; `None` near zero.
    pub fn of(lambda: c64, ts: f64) -> Option<Self> {
        let magnitude = lambda.norm();
        if magnitude < NEAR_ZERO {
            return None;
        }
        let s = c64::new(magnitude.ln() / ts, lambda.im.atan2(lambda.re) / ts);
        let abs = s.norm();
        Some(Self {
            s,
            frequency_hz: s.im.abs() / std::f64::consts::TAU,
            damping_ratio: if abs > 0.0 { -s.re / abs } else { 0.0 },
            time_constant_s: (s.re < 0.0).then(|| -1.0 / s.re),
        })
    }
}

/// One eigenvalue of A with everything a control engineer reads off it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mode {
    /// Discrete eigenvalue lambda.
    pub eigenvalue: c64,
    /// Continuous reading, absent near zero.
    pub continuous: Option<Continuous>,
    /// Ambiguity flags.
    pub flags: ModeFlags,
    /// C times the right eigenvector: the mode's shape on the measured channels, scaled so
    /// the largest entry is 1 + 0i.
    pub shape: Vec<c64>,
    /// Participation of each state channel, |v_k w_k| normalised to sum to 1.
    pub participation: Vec<f64>,
    /// Left eigenvector (row of V^-1): the Koopman eigenfunction phi(x) = w . psi(x).
    pub eigenfunction: Vec<c64>,
}

/// Flags for a discrete eigenvalue.
pub fn flags_of(lambda: c64) -> ModeFlags {
    let magnitude = lambda.norm();
    let tiny = 1e-12 * magnitude.max(1.0);
    ModeFlags {
        negative_real: lambda.re < 0.0 && lambda.im.abs() <= tiny,
        near_zero: magnitude < NEAR_ZERO,
        near_nyquist: lambda.im.atan2(lambda.re).abs() > NEAR_NYQUIST * std::f64::consts::PI,
    }
}

/// The eigenvalues of A only (cheaper than [`modes`]).
pub fn eigenvalues(a: MatRef<'_, f64>) -> Result<Vec<c64>, NumericalError> {
    a.eigenvalues().map_err(|_| NumericalError::EigenFailed)
}

/// Full modal analysis of A with output matrix C at sample time `ts`, sorted by damping
/// ratio (least damped first), then frequency; modes without a continuous reading last.
pub fn modes(a: MatRef<'_, f64>, c: MatRef<'_, f64>, ts: f64) -> Result<Vec<Mode>, NumericalError> {
    let eigen = a.eigen().map_err(|_| NumericalError::EigenFailed)?;
    let right = eigen.U();
    let left = right.partial_piv_lu().inverse();
    let n_lifted = a.nrows();
    let n = c.nrows();
    let mut modes: Vec<Mode> = (0..n_lifted)
        .map(|i| {
            let lambda = eigen.S()[i];
            let mut shape: Vec<c64> = (0..n).map(|k| (0..n_lifted).map(|j| right[(j, i)] * c[(k, j)]).sum()).collect();
            if let Some(peak) = shape.iter().copied().max_by(|x, y| x.norm().total_cmp(&y.norm()))
                && peak.norm() > 0.0
            {
                shape.iter_mut().for_each(|v| *v /= peak);
            }
            let mut participation: Vec<f64> = (0..n).map(|k| (right[(k, i)] * left[(i, k)]).norm()).collect();
            let total: f64 = participation.iter().sum();
            if total > 0.0 {
                participation.iter_mut().for_each(|p| *p /= total);
            }
            Mode {
                eigenvalue: lambda,
                continuous: Continuous::of(lambda, ts),
                flags: flags_of(lambda),
                shape,
                participation,
                eigenfunction: (0..n_lifted).map(|j| left[(i, j)]).collect(),
            }
        })
        .collect();
    modes.sort_by(|x, y| match (&x.continuous, &y.continuous) {
        (Some(a), Some(b)) => {
            a.damping_ratio.total_cmp(&b.damping_ratio).then(a.frequency_hz.total_cmp(&b.frequency_hz))
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Ok(modes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    #[test]
    fn a_damped_rotation_reads_back_its_frequency_and_damping() {
        let (ts, freq, zeta): (f64, f64, f64) = (0.1, 0.5, 0.1);
        let omega = std::f64::consts::TAU * freq / (1.0 - zeta * zeta).sqrt();
        let s = c64::new(-zeta * omega, omega * (1.0 - zeta * zeta).sqrt());
        let lambda = (s * ts).exp();
        let a = Mat::from_fn(2, 2, |i, j| match (i, j) {
            (0, 0) | (1, 1) => lambda.re,
            (0, 1) => -lambda.im,
            _ => lambda.im,
        });
        let c = Mat::<f64>::identity(2, 2);
        let modes = modes(a.as_ref(), c.as_ref(), ts).unwrap();
        assert_eq!(modes.len(), 2);
        for m in &modes {
            let cont = m.continuous.unwrap();
            assert!((cont.frequency_hz - freq).abs() < 1e-12);
            assert!((cont.damping_ratio - zeta).abs() < 1e-12);
            assert!((cont.time_constant_s.unwrap() - 1.0 / (zeta * omega)).abs() < 1e-9);
            assert!(!m.flags.ambiguous());
            assert!((m.participation.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(m.shape.iter().any(|v| (v - c64::new(1.0, 0.0)).norm() < 1e-12));
        }
    }

    #[test]
    fn flags_mark_the_ambiguous_eigenvalues() {
        assert!(flags_of(c64::new(-0.5, 0.0)).negative_real);
        assert!(flags_of(c64::new(1e-10, 0.0)).near_zero);
        assert!(flags_of(c64::new(-0.9, 0.1)).near_nyquist);
        assert!(!flags_of(c64::new(0.9, 0.1)).ambiguous());
        assert!(Continuous::of(c64::new(0.0, 0.0), 0.1).is_none());
    }
}
