//! Spectra of the identified operator: discrete and continuous eigenvalues, frequency,
//! damping, time constant, ambiguity flags, mode shapes on the measured channels and
//! participation factors; with the estimator's statistics ([`analyse`]), each mode's energy
//! and the 95 % confidence intervals of its frequency and damping.

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, MatRef, c64};

use crate::error::NumericalError;
use crate::uncertainty::{self, ComplexCovariance, ModeStatistics, Z95};

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

/// A mode with what the estimator's statistics say about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeEstimate {
    /// The mode.
    pub mode: Mode,
    /// Share in [0, 1] of the measured channels' recent signal that this eigenvalue
    /// carries: ||C v||^2 (w G w^H) over the same for every eigenvalue, with G the data's
    /// Gram matrix (cross terms between modes are left out, so the shares sum to 1).
    pub energy: f64,
    /// First-order covariance of the eigenvalue (None without residuals yet).
    pub eigenvalue_cov: Option<ComplexCovariance>,
    /// 95 % interval of the frequency in Hz (lower end at least 0).
    pub frequency_ci95: Option<(f64, f64)>,
    /// 95 % interval of the damping ratio.
    pub damping_ci95: Option<(f64, f64)>,
    /// Whether the eigenvalue is that of the bias-corrected A (see [`analyse`]).
    pub bias_corrected: bool,
}

/// The eigen-decomposition of A: eigenvalues, right eigenvectors (columns) and left ones
/// (rows of the inverse).
struct Decomposition {
    values: Vec<c64>,
    right: Mat<c64>,
    left: Mat<c64>,
}

fn decompose(a: MatRef<'_, f64>) -> Result<Decomposition, NumericalError> {
    let eigen = a.eigen().map_err(|_| NumericalError::EigenFailed)?;
    Decomposition::of(&eigen)
}

impl Decomposition {
    /// From faer's eigen-decomposition: the left vectors are the rows of V^-1.
    fn of(eigen: &faer::linalg::solvers::Eigen<f64>) -> Result<Self, NumericalError> {
        let right = eigen.U().to_owned();
        let left = right.partial_piv_lu().inverse();
        if !left.as_ref().is_all_finite() {
            return Err(NumericalError::EigenFailed);
        }
        Ok(Self { values: (0..right.nrows()).map(|i| eigen.S()[i]).collect(), right, left })
    }
}

/// The decomposition [`analyse`] reads the modes from: that of A corrected for its
/// small-sample bias where the correction applies (with `true`), else that of A.
///
/// The correction is shrunk until its state block is stable, which takes that block's
/// eigenvalues. Without a constant observable the block is all of A, so the check takes
/// the full decomposition of each candidate and the accepted one is the analysis's: one
/// eigen-decomposition of the corrected A, not its eigenvalues and then the decomposition.
fn analysed_decomposition(a: MatRef<'_, f64>, stats: &ModeStatistics) -> Result<(Decomposition, bool), NumericalError> {
    let Some(correction) = crate::bias::Correction::of(a, stats) else {
        return Ok((decompose(a)?, false));
    };
    if correction.covers_all() {
        let accepted = correction.first_stable(|candidate| {
            candidate
                .eigen()
                .ok()
                .filter(|e| crate::bias::is_stable(&(0..e.S().dim()).map(|i| e.S()[i]).collect::<Vec<_>>()))
        });
        return match accepted {
            Some((_, eigen)) => Ok((Decomposition::of(&eigen)?, true)),
            None => Ok((decompose(a)?, false)),
        };
    }
    let accepted = correction
        .first_stable(|block| block.eigenvalues().is_ok_and(|v| crate::bias::is_stable(&v)).then_some(()))
        .and_then(|(shrink, ())| correction.apply(a, shrink));
    match accepted {
        Some(corrected) => Ok((decompose(corrected.as_ref())?, true)),
        None => Ok((decompose(a)?, false)),
    }
}

/// C V, complex: column i is C v_i, the mode's unscaled output on the measured channels.
/// One product for all modes, instead of a strided sum per mode.
fn outputs(d: &Decomposition, c: MatRef<'_, f64>) -> Mat<c64> {
    real_times(c, d.right.as_ref())
}

/// The product of a real and a complex matrix as two real products (of the real and the
/// imaginary part): half the arithmetic of promoting the real one to complex.
fn real_times(real: MatRef<'_, f64>, z: MatRef<'_, c64>) -> Mat<c64> {
    let re = Mat::from_fn(z.nrows(), z.ncols(), |i, j| z[(i, j)].re);
    let im = Mat::from_fn(z.nrows(), z.ncols(), |i, j| z[(i, j)].im);
    let (re, im) = (real * &re, real * &im);
    Mat::from_fn(re.nrows(), re.ncols(), |i, j| c64::new(re[(i, j)], im[(i, j)]))
}

/// Mode i of the decomposition, with its output `output` = C v_i (see [`outputs`]).
fn mode_of(d: &Decomposition, output: &[c64], ts: f64, i: usize) -> Mode {
    let lambda = d.values[i];
    let n = output.len();
    let n_lifted = d.right.nrows();
    let mut shape = output.to_vec();
    if let Some(peak) = shape.iter().copied().max_by(|x, y| x.norm().total_cmp(&y.norm()))
        && peak.norm() > 0.0
    {
        shape.iter_mut().for_each(|v| *v /= peak);
    }
    let mut participation: Vec<f64> = (0..n).map(|k| (d.right[(k, i)] * d.left[(i, k)]).norm()).collect();
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
        eigenfunction: (0..n_lifted).map(|j| d.left[(i, j)]).collect(),
    }
}

/// Least damped first, then by frequency; modes without a continuous reading last.
fn by_damping(x: &Mode, y: &Mode) -> std::cmp::Ordering {
    match (&x.continuous, &y.continuous) {
        (Some(a), Some(b)) => {
            a.damping_ratio.total_cmp(&b.damping_ratio).then(a.frequency_hz.total_cmp(&b.frequency_hz))
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// Each measured channel's scale in its own unit: the row norms of the output map C (for
/// a standardised lifting, the channel's standardisation scale). Dividing a shape by it
/// makes channels in different units comparable.
pub fn channel_scale(c: MatRef<'_, f64>) -> Vec<f64> {
    (0..c.nrows()).map(|k| (0..c.ncols()).map(|j| c[(k, j)] * c[(k, j)]).sum::<f64>().sqrt()).collect()
}

/// Full modal analysis of A with output matrix C at sample time `ts`, sorted by damping
/// ratio (least damped first), then frequency; modes without a continuous reading last.
pub fn modes(a: MatRef<'_, f64>, c: MatRef<'_, f64>, ts: f64) -> Result<Vec<Mode>, NumericalError> {
    let d = decompose(a)?;
    let outputs = outputs(&d, c);
    let mut modes: Vec<Mode> = (0..a.nrows()).map(|i| mode_of(&d, outputs.col_as_slice(i), ts, i)).collect();
    modes.sort_by(by_damping);
    Ok(modes)
}

/// The modal analysis of [`modes`] with each mode's energy and confidence intervals, from
/// the estimator's statistics (see [`crate::uncertainty`]); same order. O(N^3).
///
/// When the statistics carry a [`crate::bias::BiasContext`] (a lifting linear in the
/// state, no inputs), the modes are those of A corrected for its small-sample bias
/// ([`crate::bias::corrected`]), and [`ModeEstimate::bias_corrected`] says so; the
/// intervals keep their first-order width around the corrected eigenvalues.
pub fn analyse(
    a: MatRef<'_, f64>,
    c: MatRef<'_, f64>,
    ts: f64,
    stats: &ModeStatistics,
) -> Result<Vec<ModeEstimate>, NumericalError> {
    let n_lifted = a.nrows();
    if stats.p_state.nrows() != n_lifted || stats.gram_state.nrows() != n_lifted {
        return Err(NumericalError::EigenFailed);
    }
    let (d, bias_corrected) = analysed_decomposition(a, stats)?;
    // Everything per mode below is a column of one product, so the loop over the modes
    // is O(N'^2) in all after a handful of O(N'^3) products (a per-mode sum over P with
    // strided reads was a sixth of a refresh at N' = 160).
    let outputs = outputs(&d, c);
    // Column i of W^T is the left vector w_i, contiguous.
    let left_t = d.left.transpose().to_owned();
    // G w^H for every left vector at once.
    let g_w = real_times(stats.gram_state.as_ref(), d.left.adjoint().to_owned().as_ref());
    // Sigma_e w^T and P v, for the eigenvalues' covariances.
    let moments = match stats.residual_cov().filter(|_| stats.intervals_unavailable.is_none()) {
        Some(cov) => {
            Some((real_times(cov.as_ref(), left_t.as_ref()), real_times(stats.p_state.as_ref(), d.right.as_ref())))
        }
        None => None,
    };
    let mut raw_energy = Vec::with_capacity(n_lifted);
    let mut estimates = Vec::with_capacity(n_lifted);
    for i in 0..n_lifted {
        let output = outputs.col_as_slice(i);
        let output_norm: f64 = output.iter().map(|v| v.norm_sqr()).sum();
        let w = left_t.col_as_slice(i);
        // w G w^H, real and non-negative up to rounding.
        let modal: f64 = w.iter().zip(g_w.col_as_slice(i)).map(|(w, g)| (w * g).re).sum();
        raw_energy.push(output_norm * modal.max(0.0));
        let mode = mode_of(&d, output, ts, i);
        let (eigenvalue_cov, frequency_ci95, damping_ci95) = match &moments {
            Some((sigma_w, p_v)) => {
                let cov = uncertainty::eigenvalue_covariance_of(
                    w,
                    sigma_w.col_as_slice(i),
                    d.right.col_as_slice(i),
                    p_v.col_as_slice(i),
                );
                let intervals = mode.continuous.zip(uncertainty::frequency_damping_sd(mode.eigenvalue, ts, &cov));
                let (f, z) = match intervals {
                    Some((cont, (sd_f, sd_z))) => (
                        Some(((cont.frequency_hz - Z95 * sd_f).max(0.0), cont.frequency_hz + Z95 * sd_f)),
                        Some((cont.damping_ratio - Z95 * sd_z, cont.damping_ratio + Z95 * sd_z)),
                    ),
                    None => (None, None),
                };
                (Some(cov), f, z)
            }
            None => (None, None, None),
        };
        estimates.push(ModeEstimate {
            mode,
            energy: 0.0,
            eigenvalue_cov,
            frequency_ci95,
            damping_ci95,
            bias_corrected,
        });
    }
    let total: f64 = raw_energy.iter().sum();
    if total > 0.0 && total.is_finite() {
        for (e, raw) in estimates.iter_mut().zip(&raw_energy) {
            e.energy = raw / total;
        }
    }
    estimates.sort_by(|x, y| by_damping(&x.mode, &y.mode));
    Ok(estimates)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// An estimator on eight noisy channels mixing four lightly damped oscillators, lifted
    /// by `dictionary`, after 1500 samples (fixed seed).
    fn noisy_oscillators(dictionary: &str) -> crate::Estimator {
        let channels = 8;
        let mut config = crate::EstimatorConfig::new(
            crate::EstimatorConfig::default_names("x", channels),
            dictionary.parse().unwrap(),
        );
        config.warmup = 100;
        let mut estimator = crate::Estimator::new(config).unwrap();
        let mut rng = crate::rng::SplitMix64::new(11);
        let ts = 1.0 / 30.0;
        let mut state = [0.0; 8];
        let mixing: Vec<f64> = (0..channels * 8).map(|_| rng.normal()).collect();
        for _ in 0..1500 {
            for p in 0..4 {
                let (f, zeta) = (0.3 + 0.4 * p as f64, 0.04 + 0.02 * p as f64);
                let r = (-zeta * std::f64::consts::TAU * f * ts).exp();
                let (sin, cos) = (std::f64::consts::TAU * f * ts).sin_cos();
                let (x, y) = (state[2 * p], state[2 * p + 1]);
                state[2 * p] = r * (cos * x - sin * y) + 0.1 * rng.normal();
                state[2 * p + 1] = r * (sin * x + cos * y) + 0.1 * rng.normal();
            }
            let measured: Vec<f64> = (0..channels)
                .map(|k| (0..8).map(|j| mixing[k * 8 + j] * state[j]).sum::<f64>() + 0.01 * rng.normal())
                .collect();
            estimator.push(&measured, &[]).unwrap();
        }
        estimator
    }

    /// The analysis mode by mode, as it was written before its products were batched: the
    /// reference the batched [`analyse`] must equal.
    fn analyse_mode_by_mode(
        a: MatRef<'_, f64>,
        c: MatRef<'_, f64>,
        ts: f64,
        stats: &ModeStatistics,
    ) -> Vec<ModeEstimate> {
        let n_lifted = a.nrows();
        let corrected = crate::bias::corrected(a, stats);
        let d = decompose(corrected.as_ref().map_or(a, |m| m.as_ref())).unwrap();
        let gram = stats.gram_state.as_ref();
        let sigma = stats.residual_cov().unwrap();
        let mut raw = Vec::new();
        let mut estimates = Vec::new();
        for i in 0..n_lifted {
            let output: Vec<c64> =
                (0..c.nrows()).map(|k| (0..n_lifted).map(|j| d.right[(j, i)] * c[(k, j)]).sum()).collect();
            let w: Vec<c64> = (0..n_lifted).map(|r| d.left[(i, r)]).collect();
            let v: Vec<c64> = (0..n_lifted).map(|r| d.right[(r, i)]).collect();
            let g_w: Vec<c64> =
                (0..n_lifted).map(|r| (0..n_lifted).map(|q| w[q].conj() * gram[(r, q)]).sum()).collect();
            let modal: f64 = (0..n_lifted).map(|r| (w[r] * g_w[r]).re).sum();
            raw.push(output.iter().map(|v| v.norm_sqr()).sum::<f64>() * modal.max(0.0));
            let s_w: Vec<c64> = (0..n_lifted).map(|r| (0..n_lifted).map(|q| w[q] * sigma[(r, q)]).sum()).collect();
            let cov = uncertainty::eigenvalue_covariance(&w, &s_w, &v, &stats.p_state);
            let mode = mode_of(&d, &output, ts, i);
            estimates.push(ModeEstimate {
                mode,
                energy: 0.0,
                eigenvalue_cov: Some(cov),
                frequency_ci95: None,
                damping_ci95: None,
                bias_corrected: corrected.is_some(),
            });
        }
        let total: f64 = raw.iter().sum();
        for (e, r) in estimates.iter_mut().zip(&raw) {
            e.energy = r / total;
        }
        estimates.sort_by(|x, y| by_damping(&x.mode, &y.mode));
        estimates
    }

    #[test]
    fn the_batched_analysis_equals_the_mode_by_mode_one() {
        // With the bias correction on all of A (linear lifting), on the state block beside
        // a constant, and without it (a nonlinear lifting).
        for dictionary in ["state,delay:4", "state,const,delay:2", "state,poly:2"] {
            let estimator = noisy_oscillators(dictionary);
            let model = estimator.linear_model().unwrap();
            let stats = estimator.mode_statistics().unwrap();
            let ts = 1.0 / 30.0;
            let fast = analyse(model.a.as_ref(), model.c.as_ref(), ts, &stats).unwrap();
            let reference = analyse_mode_by_mode(model.a.as_ref(), model.c.as_ref(), ts, &stats);
            assert_eq!(fast.len(), reference.len());
            assert_eq!(fast[0].bias_corrected, dictionary != "state,poly:2", "{dictionary}");
            // Same decomposition, products summed in another order: agreement to rounding.
            let close = |x: f64, y: f64, scale: f64| (x - y).abs() <= 1e-9 * scale.max(1e-300);
            let energy_scale = reference.iter().map(|e| e.energy).fold(0.0, f64::max);
            for (f, r) in fast.iter().zip(&reference) {
                assert_eq!(f.mode.eigenvalue, r.mode.eigenvalue, "{dictionary}");
                assert!(close(f.energy, r.energy, energy_scale), "{dictionary}: {} vs {}", f.energy, r.energy);
                let (fc, rc) = (f.eigenvalue_cov.unwrap(), r.eigenvalue_cov.unwrap());
                let cov_scale = rc.var_re.abs() + rc.var_im.abs();
                assert!(close(fc.var_re, rc.var_re, cov_scale), "{dictionary}: {fc:?} vs {rc:?}");
                assert!(close(fc.var_im, rc.var_im, cov_scale), "{dictionary}: {fc:?} vs {rc:?}");
                assert!(close(fc.cov, rc.cov, cov_scale), "{dictionary}: {fc:?} vs {rc:?}");
                for (x, y) in f.mode.shape.iter().zip(&r.mode.shape) {
                    assert!((x - y).norm() <= 1e-9, "{dictionary}: shape {x} vs {y}");
                }
                assert_eq!(f.mode.participation, r.mode.participation);
            }
        }
    }
}
