//! Small-sample bias correction of a linear model's state block, so that damping ratios
//! read off short or fast-forgetting records are not systematically too high.
//!
//! When the lifting is linear in the (delayed) state, with or without a constant, the
//! model is a vector autoregression z' = A z + a + e, and its least-squares A is biased
//! towards zero by O(1/T): damping is overestimated, most where it matters (long memory
//! is what a mode meter gives up to follow a change). For a stable VAR(1) in companion
//! form the bias is E[A^ - A] = -B / T + o(1/T) with
//!
//! ```text
//! B = Sigma_e [ (I - A')^-1 + A' (I - A'^2)^-1 + sum_j lambda_j (I - lambda_j A')^-1 ] Gamma_0^-1
//! ```
//!
//! (Nicholls and Pope 1988; Pope 1990, J. Time Series Anal. 11(3)), where the first term
//! comes from estimating the mean and is dropped without a constant, Sigma_e is the
//! residual covariance and Gamma_0 the covariance of the regressors. A = V L V^-1 gives
//! f(A') = V^-T f(L) V^T, so the bracket is V^-T diag(d) V^T with
//! d_k = 1/(1 - l_k) + l_k/(1 - l_k^2) + sum_j l_j/(1 - l_j l_k): O(N^3) in all, like the
//! rest of the modal analysis. The correction adds B^ / T_eff, with T_eff the effective
//! number of pairs, (sum w)^2 / sum w^2 under forgetting (the formula is for equal
//! weights; the weighted use is an approximation that EXPERIMENTS.md measures). When the
//! corrected block would not be stable, the correction is shrunk in steps of a tenth until
//! it is (Kilian 1998, Rev. Econ. Stat. 80(2)), so a correction never creates a growing
//! mode.

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, MatRef, c64};

use crate::uncertainty::ModeStatistics;

/// What the correction needs besides the Gram matrix and the residuals; present only when
/// the lifting is linear in the (delayed) state and the stream has no inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BiasContext {
    /// Index of the constant observable in the lifted vector, if there is one.
    pub constant: Option<usize>,
    /// Sum of the pair weights (the number of pairs without forgetting).
    pub weight_sum: f64,
    /// (sum w)^2 / sum w^2: the number of equally weighted pairs with the same variance.
    pub effective_pairs: f64,
}

/// Below this many effective pairs per state dimension the O(1/T) expansion is not
/// trusted and nothing is corrected.
const MIN_PAIRS_PER_STATE: f64 = 5.0;
/// Eigenvalues this close to the unit circle (or products this close to 1) make the
/// expansion blow up: no correction.
const UNIT_ROOT_MARGIN: f64 = 1e-6;

/// A with its state block corrected for small-sample bias (and the constant column moved
/// so that the fit still passes through the data's mean), or `None` when the correction
/// does not apply: no context, too few pairs, no residuals, a (near) unit root, a singular
/// regressor covariance, or a correction that could not be made stable.
pub fn corrected(a: MatRef<'_, f64>, stats: &ModeStatistics) -> Option<Mat<f64>> {
    let correction = Correction::of(a, stats)?;
    let (shrink, ()) =
        correction.first_stable(|block| block.eigenvalues().is_ok_and(|v| is_stable(&v)).then_some(()))?;
    correction.apply(a, shrink)
}

/// Whether every eigenvalue lies inside the unit circle by the margin the expansion needs.
pub(crate) fn is_stable(values: &[c64]) -> bool {
    values.iter().all(|l| l.norm() < 1.0 - UNIT_ROOT_MARGIN)
}

/// The correction's step B / T_eff on the state block, before it is shrunk to stability.
pub(crate) struct Correction {
    /// Indices of the state observables (all but the constant).
    states: Vec<usize>,
    /// The state block of A.
    a_s: Mat<f64>,
    /// B / T_eff.
    step: Mat<f64>,
    /// The regressors' mean (zeros without a constant).
    mean: Vec<f64>,
    constant: Option<usize>,
}

impl Correction {
    /// The step for A, or `None` when the correction does not apply (see [`corrected`]).
    pub(crate) fn of(a: MatRef<'_, f64>, stats: &ModeStatistics) -> Option<Self> {
        let context = stats.bias?;
        let n_lifted = a.nrows();
        let states: Vec<usize> = (0..n_lifted).filter(|&i| Some(i) != context.constant).collect();
        let n = states.len();
        if n == 0 || context.effective_pairs < MIN_PAIRS_PER_STATE * n as f64 {
            return None;
        }
        let residual_cov = stats.residual_cov()?;
        let gram = &stats.gram_state;
        // With a constant observable its own Gram entry is the weight sum, exactly.
        let weight_sum = context.constant.map_or(context.weight_sum, |c| gram[(c, c)]);
        if weight_sum <= 0.0 {
            return None;
        }
        let a_s = Mat::from_fn(n, n, |i, j| a[(states[i], states[j])]);
        let mean: Vec<f64> = match context.constant {
            Some(c) => states.iter().map(|&i| gram[(i, c)] / weight_sum).collect(),
            None => vec![0.0; n],
        };
        let gamma0 = Mat::from_fn(n, n, |i, j| gram[(states[i], states[j])] / weight_sum - mean[i] * mean[j]);
        let gamma0_inv = gamma0.partial_piv_lu().inverse();
        let sigma = Mat::from_fn(n, n, |i, j| residual_cov[(states[i], states[j])]);
        let b = bias_factor(a_s.as_ref(), sigma.as_ref(), gamma0_inv.as_ref(), context.constant.is_some())?;
        let step = Mat::from_fn(n, n, |i, j| b[(i, j)] / context.effective_pairs);
        Some(Self { states, a_s, step, mean, constant: context.constant })
    }

    /// Whether the state block is all of A (no constant observable): then a checked
    /// candidate is the corrected A itself, and whatever the check computed of it (its
    /// eigen-decomposition) is that of the corrected A.
    pub(crate) fn covers_all(&self) -> bool {
        self.constant.is_none()
    }

    /// The largest shrink of 1, 0.9, ..., 0.1 whose candidate state block
    /// a_s + shrink * step `check` accepts (returning what it computed), so that a
    /// correction never creates a growing mode; `None` if it accepts none.
    pub(crate) fn first_stable<T>(&self, mut check: impl FnMut(MatRef<'_, f64>) -> Option<T>) -> Option<(f64, T)> {
        (0..10).map(|k| 1.0 - 0.1 * k as f64).find_map(|shrink| {
            let candidate =
                Mat::from_fn(self.a_s.nrows(), self.a_s.ncols(), |i, j| self.a_s[(i, j)] + shrink * self.step[(i, j)]);
            check(candidate.as_ref()).map(|found| (shrink, found))
        })
    }

    /// A with the step times `shrink` added to its state block; with a constant, the
    /// intercept moved so that A m + a is unchanged at the mean m.
    pub(crate) fn apply(&self, a: MatRef<'_, f64>, shrink: f64) -> Option<Mat<f64>> {
        let mut out = a.to_owned();
        for (i, &si) in self.states.iter().enumerate() {
            for (j, &sj) in self.states.iter().enumerate() {
                out[(si, sj)] += shrink * self.step[(i, j)];
            }
            if let Some(c) = self.constant {
                let moved: f64 = (0..self.states.len()).map(|j| shrink * self.step[(i, j)] * self.mean[j]).sum();
                out[(si, c)] -= moved;
            }
        }
        out.as_ref().is_all_finite().then_some(out)
    }
}

/// B of the module docs (real), or `None` at a unit root or a non-finite result.
fn bias_factor(
    a_s: MatRef<'_, f64>,
    sigma: MatRef<'_, f64>,
    gamma0_inv: MatRef<'_, f64>,
    with_mean: bool,
) -> Option<Mat<f64>> {
    let n = a_s.nrows();
    let eigen = a_s.eigen().ok()?;
    let values: Vec<c64> = (0..n).map(|i| eigen.S()[i]).collect();
    let one = c64::new(1.0, 0.0);
    if values.iter().any(|l| l.norm() >= 1.0 - UNIT_ROOT_MARGIN) {
        return None;
    }
    let mut d = Vec::with_capacity(n);
    for &lk in &values {
        let mut dk = lk / (one - lk * lk);
        if with_mean {
            dk += one / (one - lk);
        }
        for &lj in &values {
            let denominator = one - lj * lk;
            if denominator.norm() < UNIT_ROOT_MARGIN {
                return None;
            }
            dk += lj / denominator;
        }
        d.push(dk);
    }
    let right = eigen.U().to_owned();
    let left = right.partial_piv_lu().inverse();
    // V^-T diag(d) V^T = left^T diag(d) right^T.
    let scaled_left_t = Mat::from_fn(n, n, |i, k| left[(k, i)] * d[k]);
    let bracket = &scaled_left_t * right.transpose();
    // The bracket is real (the eigenvalues and d come in conjugate pairs) and Sigma_e and
    // Gamma_0^-1 are real, so Re(Sigma_e bracket Gamma_0^-1) = Sigma_e Re(bracket)
    // Gamma_0^-1 exactly: two real products instead of two complex ones.
    let bracket_re = Mat::from_fn(n, n, |i, j| bracket[(i, j)].re);
    let b = sigma * &bracket_re * gamma0_inv;
    b.as_ref().is_all_finite().then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Statistics of a scalar AR(1) x' = a x + c (+ constant at index 1 when `with_mean`)
    /// whose regressor has mean `m` and variance `var`, residual variance `s2`, weight sum
    /// and effective pairs `t`.
    fn scalar_stats(with_mean: bool, m: f64, var: f64, s2: f64, t: f64) -> ModeStatistics {
        let size = if with_mean { 2 } else { 1 };
        let gram = if with_mean {
            Mat::from_fn(2, 2, |i, j| match (i, j) {
                (0, 0) => t * (var + m * m),
                (1, 1) => t,
                _ => t * m,
            })
        } else {
            Mat::from_fn(1, 1, |_, _| t * var)
        };
        // Two residual rows +-sqrt(s2): mean square s2, no residual on the constant.
        let residuals =
            Mat::from_fn(2, size, |i, j| if j == 0 { if i == 0 { s2.sqrt() } else { -s2.sqrt() } } else { 0.0 });
        ModeStatistics {
            p_state: Mat::identity(size, size),
            residuals,
            gram_state: gram,
            bias: Some(BiasContext { constant: with_mean.then_some(1), weight_sum: t, effective_pairs: t }),
            intervals_unavailable: None,
        }
    }

    #[test]
    fn a_scalar_ar1_gets_the_textbook_bias_back() {
        // Kendall (1954): E[a^ - a] = -(1 + 3a)/T with an estimated mean, -2a/T without.
        let (a, t, s2) = (0.8, 400.0, 0.36);
        let var = s2 / (1.0 - a * a);
        let (m, intercept) = (2.0, 0.4);
        let full = Mat::from_fn(2, 2, |i, j| match (i, j) {
            (0, 0) => a,
            (0, 1) => intercept,
            (1, 1) => 1.0,
            _ => 0.0,
        });
        let out = corrected(full.as_ref(), &scalar_stats(true, m, var, s2, t)).unwrap();
        let delta = (1.0 + 3.0 * a) / t;
        assert!((out[(0, 0)] - (a + delta)).abs() < 1e-12, "{}", out[(0, 0)]);
        assert!((out[(0, 1)] - (intercept - delta * m)).abs() < 1e-12);
        assert_eq!((out[(1, 0)], out[(1, 1)]), (0.0, 1.0));
        let alone = Mat::from_fn(1, 1, |_, _| a);
        let out = corrected(alone.as_ref(), &scalar_stats(false, 0.0, var, s2, t)).unwrap();
        assert!((out[(0, 0)] - (a + 2.0 * a / t)).abs() < 1e-12);
    }

    #[test]
    fn the_eigen_form_matches_the_matrix_inverses() {
        // A non-symmetric stable 3 x 3 block with a complex pair: the bracket computed from
        // the eigen-decomposition against explicit inverses.
        let a = Mat::from_fn(3, 3, |i, j| [[0.7, -0.4, 0.1], [0.35, 0.6, 0.0], [0.05, 0.2, -0.3]][i][j]);
        let sigma = Mat::from_fn(3, 3, |i, j| [[1.0, 0.2, 0.1], [0.2, 0.5, 0.0], [0.1, 0.0, 0.8]][i][j]);
        let gamma0_inv = Mat::from_fn(3, 3, |i, j| [[0.6, -0.1, 0.0], [-0.1, 0.9, 0.2], [0.0, 0.2, 0.7]][i][j]);
        let b = bias_factor(a.as_ref(), sigma.as_ref(), gamma0_inv.as_ref(), true).unwrap();
        let eye = Mat::<f64>::identity(3, 3);
        let at = a.transpose().to_owned();
        let mut bracket = (&eye - &at).partial_piv_lu().inverse() + &at * (&eye - &at * &at).partial_piv_lu().inverse();
        let to_c = |m: &Mat<f64>| Mat::from_fn(3, 3, |i, j| c64::new(m[(i, j)], 0.0));
        let mut bracket_c = to_c(&bracket);
        for l in a.eigenvalues().unwrap() {
            let m = to_c(&eye) - to_c(&at) * faer::Scale(l);
            bracket_c += m.partial_piv_lu().inverse() * faer::Scale(l);
        }
        bracket = Mat::from_fn(3, 3, |i, j| bracket_c[(i, j)].re);
        assert!(bracket_c.as_ref().norm_max() > 0.1);
        let direct = &sigma * &bracket * &gamma0_inv;
        assert!((&b - &direct).norm_max() < 1e-12 * direct.norm_max(), "{b:?} vs {direct:?}");
    }

    #[test]
    fn nothing_is_corrected_without_context_samples_or_stability() {
        let a = Mat::from_fn(1, 1, |_, _| 0.8);
        let mut stats = scalar_stats(false, 0.0, 1.0, 0.36, 400.0);
        stats.bias = None;
        assert!(corrected(a.as_ref(), &stats).is_none());
        assert!(corrected(a.as_ref(), &scalar_stats(false, 0.0, 1.0, 0.36, 4.0)).is_none(), "too few pairs");
        let root = Mat::from_fn(1, 1, |_, _| 1.0);
        assert!(corrected(root.as_ref(), &scalar_stats(false, 0.0, 1.0, 0.36, 400.0)).is_none(), "unit root");
        // A correction of 2a/T = 0.00995 would carry 0.995 past 1: it is halved to stay inside.
        let near = Mat::from_fn(1, 1, |_, _| 0.995);
        let stationary = 0.36 / (1.0 - 0.995 * 0.995);
        let out = corrected(near.as_ref(), &scalar_stats(false, 0.0, stationary, 0.36, 200.0)).unwrap();
        assert!((out[(0, 0)] - (0.995 + 0.5 * 0.00995)).abs() < 1e-12, "{}", out[(0, 0)]);
    }
}
