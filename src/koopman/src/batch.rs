//! The batch reference: stack the same pairs the online estimator uses and solve the ridge
//! problem K = (X^T W X + mu I)^-1 X^T W Y by QR of the augmented system, an independent
//! route to the answer the recursion maintains. Batch EDMD is this with mu = 0.

use faer::linalg::solvers::SolveLstsq;
use faer::{Mat, MatRef};

use crate::error::NumericalError;
use crate::lifting::Lifting;

pub mod debiased;

/// Stacked pairs: regressors [psi(x_k); u_k] as rows (M x (N + m)) and targets psi(x_{k+1})
/// as rows (M x N).
#[derive(Debug, Clone)]
pub struct PairData {
    /// Regressor rows.
    pub regressors: Mat<f64>,
    /// Target rows.
    pub targets: Mat<f64>,
    /// The chain (0, 1, ...: a new one after every gap) each pair belongs to.
    pub chains: Vec<usize>,
}

/// Lifts a trajectory (raw states, row-major, n columns; inputs, row-major, m columns) into
/// the pairs the online estimator forms: a pair needs two consecutive samples of one chain,
/// and `chain_starts[k]` (when given) marks a sample that follows a gap.
pub fn stack_pairs(lifting: &Lifting, states: &[f64], inputs: &[f64], chain_starts: Option<&[bool]>) -> PairData {
    let n = lifting.n_states();
    let rows = states.len() / n;
    let m = inputs.len().checked_div(rows).unwrap_or(0);
    let n_lifted = lifting.dim();
    let mut history = lifting.new_history();
    let mut z = vec![0.0; n];
    let mut previous: Option<Vec<f64>> = None;
    let mut regressor_rows = Vec::new();
    let mut target_rows = Vec::new();
    let mut chains = Vec::new();
    let mut chain = 0;
    for k in 0..rows {
        if chain_starts.is_some_and(|c| c[k]) {
            history.clear();
            previous = None;
            chain += usize::from(k > 0);
        }
        lifting.standardise_into(&states[k * n..(k + 1) * n], &mut z);
        history.push(&z);
        if !history.is_full() {
            continue;
        }
        let mut psi = vec![0.0; n_lifted];
        lifting.lift_into(&history, &mut psi);
        if let Some(prev) = previous.take() {
            regressor_rows.push(prev);
            target_rows.push(psi.clone());
            chains.push(chain);
        }
        psi.extend_from_slice(&inputs[k * m..(k + 1) * m]);
        previous = Some(psi);
    }
    PairData {
        regressors: Mat::from_fn(regressor_rows.len(), n_lifted + m, |i, j| regressor_rows[i][j]),
        targets: Mat::from_fn(target_rows.len(), n_lifted, |i, j| target_rows[i][j]),
        chains,
    }
}

/// Solves min_K sum_k w_k |q_k^T - p_k^T K|^2 + mu |K|_F^2 by Householder QR of the
/// augmented system [sqrt(W) X; sqrt(mu) I] K = [sqrt(W) Y; 0].
pub fn solve(
    regressors: MatRef<'_, f64>,
    targets: MatRef<'_, f64>,
    mu: f64,
    weights: Option<&[f64]>,
) -> Result<Mat<f64>, NumericalError> {
    let (rows, width) = (regressors.nrows(), regressors.ncols());
    let ridge_rows = if mu > 0.0 { width } else { 0 };
    if rows + ridge_rows < width {
        return Err(NumericalError::NotPositiveDefinite);
    }
    let root = |i: usize| weights.map_or(1.0, |w| w[i].sqrt());
    let sqrt_mu = mu.sqrt();
    let lhs = Mat::from_fn(rows + ridge_rows, width, |i, j| {
        if i < rows {
            root(i) * regressors[(i, j)]
        } else if i - rows == j {
            sqrt_mu
        } else {
            0.0
        }
    });
    let rhs =
        Mat::from_fn(rows + ridge_rows, targets.ncols(), |i, j| if i < rows { root(i) * targets[(i, j)] } else { 0.0 });
    let qr = lhs.qr();
    let r = qr.R();
    let largest = (0..width).map(|i| r[(i, i)].abs()).fold(0.0, f64::max);
    if (0..width).any(|i| r[(i, i)].abs() <= 1e-13 * largest || r[(i, i)].is_nan()) {
        return Err(NumericalError::NotPositiveDefinite);
    }
    Ok(qr.solve_lstsq(&rhs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::DictionarySpec;

    #[test]
    fn exact_linear_data_is_solved_exactly_and_gaps_drop_pairs() {
        let lifting = Lifting::build(&DictionarySpec::state_only(), &["x".to_owned()], false, &[], None, 0);
        let states: Vec<f64> = (0..10).map(|k| 0.9f64.powi(k)).collect();
        let mut starts = vec![false; 10];
        starts[5] = true;
        let pairs = stack_pairs(&lifting, &states, &[], Some(&starts));
        assert_eq!(pairs.regressors.nrows(), 8, "the pair spanning the gap is skipped");
        let k = solve(pairs.regressors.as_ref(), pairs.targets.as_ref(), 0.0, None).unwrap();
        assert!((k[(0, 0)] - 0.9).abs() < 1e-14);
        let singular = solve(Mat::<f64>::zeros(3, 2).as_ref(), Mat::<f64>::zeros(3, 1).as_ref(), 0.0, None);
        assert_eq!(singular.unwrap_err(), NumericalError::NotPositiveDefinite);
    }
}
