//! What the estimator knows about its own error, and what that means for its eigenvalues.
//!
//! K is a (weighted, ridge-regularised) least-squares solution: each column of K regresses
//! one lifted target on the regressors p. To first order its error has covariance
//! Cov(K[c, r], K[c', r']) = Sigma_e[r, r'] * P~[c, c'], where Sigma_e is the covariance
//! of the one-step residuals in lifted coordinates and P~ = P (sum w^2 p p^T) P is the
//! sandwich of the inverse Gram matrix (P itself without forgetting or with a window;
//! (1 + rho^M) / (1 + rho) times P with forgetting factor rho after M pairs).
//!
//! An eigenvalue lambda of A = K_x^T with right eigenvector v and left eigenvector w
//! (w v = 1) moves by d(lambda) = w dA v, so
//!
//! ```text
//! E[|d lambda|^2]  = (w Sigma_e w^H) (v^T P~ conj(v))
//! E[(d lambda)^2]  = (w Sigma_e w^T) (v^T P~ v)
//! ```
//!
//! which give the 2 x 2 covariance of (Re, Im) lambda. The delta method carries it through
//! s = ln(lambda) / Ts to the frequency and the damping ratio. Sigma_e is estimated from
//! the a-priori residuals of the most recent pairs (a ring kept by the estimator at O(N)
//! per pair), not by resampling the history.

use faer::{Mat, c64};

use crate::bias::BiasContext;

/// Why the correlation estimator's modes carry no confidence intervals.
pub const CORRELATION_NO_INTERVALS: &str = "the correlation estimator gives no first-order confidence intervals: \
     compare successive refreshes, or use the ridge or iv estimator for intervals";

/// The two-sided 95 % point of the standard normal distribution.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Rows of the residual ring: four per lifted dimension, at least 1024, at most 4096, and
/// never more than 2^17 numbers (1 MiB) in all, so the ring never costs more than a small
/// share of a stream's memory. Above N = 181 it holds fewer than four rows per dimension,
/// above N = 362 fewer than N: Sigma_e is then rank-deficient, but each quadratic form
/// w Sigma_e w^H is still an average over the rows, only a noisier one.
pub fn residual_ring_rows(n_lifted: usize) -> usize {
    let rows = n_lifted.saturating_mul(4).clamp(1024, 4096);
    rows.min((1 << 17) / n_lifted.max(1)).max(1)
}

/// The most recent a-priori residuals in lifted coordinates, oldest overwritten first.
#[derive(Debug, Clone)]
pub(crate) struct ResidualRing {
    n: usize,
    rows: usize,
    next: usize,
    filled: usize,
    data: Vec<f64>,
}

impl ResidualRing {
    pub(crate) fn new(n_lifted: usize) -> Self {
        let rows = residual_ring_rows(n_lifted);
        Self { n: n_lifted, rows, next: 0, filled: 0, data: vec![0.0; rows * n_lifted] }
    }

    /// Keeps one residual (a copy of N numbers; no allocation).
    pub(crate) fn record(&mut self, residual: &[f64]) {
        self.data[self.next * self.n..(self.next + 1) * self.n].copy_from_slice(&residual[..self.n]);
        self.next = (self.next + 1) % self.rows;
        self.filled = (self.filled + 1).min(self.rows);
    }

    /// The kept residuals as rows (a copy: O(rows N), no arithmetic).
    pub(crate) fn rows(&self) -> Mat<f64> {
        Mat::from_fn(self.filled, self.n, |i, j| self.data[i * self.n + j])
    }
}

/// The estimator's statistics behind mode energies and confidence intervals, in lifted
/// (standardised) coordinates, N x N each. Taken at an eigen refresh, off the ingest path.
#[derive(Debug, Clone)]
pub struct ModeStatistics {
    /// The state block of the sandwich P~ (the covariance factor of K's rows).
    pub p_state: Mat<f64>,
    /// The latest lifted one-step residuals, one per row (none before the first pair).
    pub residuals: Mat<f64>,
    /// The state block of the data's Gram matrix, sum w psi psi^T, with the ridge removed:
    /// the recent signal (weighted as the model weighs it) that energies are shares of.
    pub gram_state: Mat<f64>,
    /// What the small-sample bias correction needs ([`crate::bias`]); `None` when the
    /// lifting is not linear in the state or the stream has inputs.
    pub bias: Option<BiasContext>,
    /// Why the modes get no confidence intervals, when the estimator's statistics give
    /// none (the correlation estimator); `None` when they do.
    pub intervals_unavailable: Option<&'static str>,
}

impl ModeStatistics {
    /// The residual covariance, mean of e e^T over the kept residuals (None without any).
    /// The mean is not removed: residuals of a fit with a constant observable have mean
    /// near zero, and a biased fit should show as a larger error, not a smaller one.
    /// O(rows N^2): computed where the modes are analysed, not by the estimator.
    pub fn residual_cov(&self) -> Option<Mat<f64>> {
        let rows = self.residuals.nrows();
        if rows == 0 {
            return None;
        }
        let mut cov = self.residuals.transpose() * &self.residuals;
        cov *= faer::Scale(1.0 / rows as f64);
        Some(cov)
    }
}

/// Covariance of (Re, Im) of an estimated quantity: [var re, var im, cov re-im].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComplexCovariance {
    /// Variance of the real part.
    pub var_re: f64,
    /// Variance of the imaginary part.
    pub var_im: f64,
    /// Covariance of the real and imaginary parts.
    pub cov: f64,
}

impl ComplexCovariance {
    /// From E[|d|^2] and E[d^2].
    pub fn from_moments(abs_square: f64, pseudo: c64) -> Self {
        Self { var_re: 0.5 * (abs_square + pseudo.re), var_im: 0.5 * (abs_square - pseudo.re), cov: 0.5 * pseudo.im }
    }

    /// The covariance of c * d (a complex multiplication is a linear map of (re, im)).
    pub fn scaled(&self, c: c64) -> Self {
        let (a, b) = (c.re, c.im);
        // J = [[a, -b], [b, a]]; J S J^T.
        let (s11, s22, s12) = (self.var_re, self.var_im, self.cov);
        Self {
            var_re: a * a * s11 - 2.0 * a * b * s12 + b * b * s22,
            var_im: b * b * s11 + 2.0 * a * b * s12 + a * a * s22,
            cov: a * b * s11 + (a * a - b * b) * s12 - a * b * s22,
        }
    }

    /// Variance of g . (re, im) for a gradient g.
    pub fn along(&self, g: [f64; 2]) -> f64 {
        g[0] * g[0] * self.var_re + 2.0 * g[0] * g[1] * self.cov + g[1] * g[1] * self.var_im
    }
}

/// The first-order covariance of an eigenvalue with right eigenvector `v` and left
/// eigenvector `w` (w v = 1), given `sigma_w` = Sigma_e w^T (Sigma_e times the left vector
/// as a column, so several eigenvalues share one product) and the sandwich P~.
pub fn eigenvalue_covariance(w: &[c64], sigma_w: &[c64], v: &[c64], p_state: &Mat<f64>) -> ComplexCovariance {
    let n = v.len();
    let p_v: Vec<c64> = (0..n).map(|c| (0..n).map(|c2| v[c2] * p_state[(c, c2)]).sum()).collect();
    eigenvalue_covariance_of(w, sigma_w, v, &p_v)
}

/// [`eigenvalue_covariance`] with P v already formed (`p_v`, P's product with v), as the
/// modal analysis does for all modes in one matrix product.
pub fn eigenvalue_covariance_of(w: &[c64], sigma_w: &[c64], v: &[c64], p_v: &[c64]) -> ComplexCovariance {
    let (mut wsw_h, mut wsw_t) = (c64::new(0.0, 0.0), c64::new(0.0, 0.0));
    for (w, s) in w.iter().zip(sigma_w) {
        wsw_h += w.conj() * s;
        wsw_t += w * s;
    }
    let (mut vpv_h, mut vpv_t) = (c64::new(0.0, 0.0), c64::new(0.0, 0.0));
    for (v, pv) in v.iter().zip(p_v) {
        vpv_h += v.conj() * pv;
        vpv_t += v * pv;
    }
    ComplexCovariance::from_moments((wsw_h.re * vpv_h.re).max(0.0), wsw_t * vpv_t)
}

/// Standard deviations of the frequency (Hz) and the damping ratio of the continuous
/// reading s = ln(lambda) / ts, from the eigenvalue's covariance (delta method).
pub fn frequency_damping_sd(lambda: c64, ts: f64, cov: &ComplexCovariance) -> Option<(f64, f64)> {
    if lambda.norm() == 0.0 || ts <= 0.0 {
        return None;
    }
    let s_cov = cov.scaled(c64::new(1.0, 0.0) / (lambda * ts));
    let s = c64::new(lambda.norm().ln() / ts, lambda.im.atan2(lambda.re) / ts);
    let abs = s.norm();
    if abs == 0.0 {
        return None;
    }
    let sign = if s.im < 0.0 { -1.0 } else { 1.0 };
    let var_f = s_cov.along([0.0, sign / std::f64::consts::TAU]);
    let abs3 = abs * abs * abs;
    let var_zeta = s_cov.along([-(s.im * s.im) / abs3, s.re * s.im / abs3]);
    Some((var_f.max(0.0).sqrt(), var_zeta.max(0.0).sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complex_scaling_moves_the_covariance_as_its_real_map() {
        let cov = ComplexCovariance { var_re: 2.0, var_im: 0.5, cov: 0.3 };
        let c = c64::new(0.7, -1.3);
        let scaled = cov.scaled(c);
        // Check against J S J^T written out.
        let j = [[c.re, -c.im], [c.im, c.re]];
        let s = [[2.0, 0.3], [0.3, 0.5]];
        let mut out = [[0.0; 2]; 2];
        for a in 0..2 {
            for b in 0..2 {
                for k in 0..2 {
                    for l in 0..2 {
                        out[a][b] += j[a][k] * s[k][l] * j[b][l];
                    }
                }
            }
        }
        assert!((scaled.var_re - out[0][0]).abs() < 1e-12);
        assert!((scaled.var_im - out[1][1]).abs() < 1e-12);
        assert!((scaled.cov - out[0][1]).abs() < 1e-12);
    }

    #[test]
    fn the_ring_keeps_the_latest_rows_and_their_covariance() {
        let mut ring = ResidualRing::new(2);
        let rows = ring.rows;
        for i in 0..rows + 10 {
            let x = i as f64;
            ring.record(&[x, 2.0 * x]);
        }
        assert_eq!(ring.rows().nrows(), rows);
        let stats = ModeStatistics {
            p_state: Mat::identity(2, 2),
            residuals: ring.rows(),
            gram_state: Mat::identity(2, 2),
            bias: None,
            intervals_unavailable: None,
        };
        let cov = stats.residual_cov().unwrap();
        let kept: Vec<f64> = (10..rows + 10).map(|i| i as f64).collect();
        let mean_square = kept.iter().map(|x| x * x).sum::<f64>() / rows as f64;
        assert!((cov[(0, 0)] - mean_square).abs() < 1e-9 * mean_square);
        assert!((cov[(0, 1)] - 2.0 * mean_square).abs() < 1e-9 * mean_square);
        assert!((cov[(1, 1)] - 4.0 * mean_square).abs() < 1e-9 * mean_square);
        assert_eq!(ResidualRing::new(3).rows().nrows(), 0);
    }

    #[test]
    fn ring_sizes_stay_within_their_bounds() {
        assert_eq!(residual_ring_rows(2), 1024);
        assert_eq!(residual_ring_rows(128), 1024);
        assert_eq!(residual_ring_rows(176), 744);
        assert_eq!(residual_ring_rows(2000), 65);
        assert!(residual_ring_rows(usize::MAX / 2) >= 1);
    }
}
