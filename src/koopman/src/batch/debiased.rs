//! Batch references of the correlation and instrumental-variable estimators: the same
//! sums built in one pass by matrix products over the stacked pairs (not by the online
//! accumulation), then solved, so the online estimator can be checked against them.

use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef};

use super::PairData;
use crate::debias::correlation::solve_lag_sums;
use crate::error::NumericalError;

/// Weight of each pair under forgetting rho: rho^(pairs after it).
fn pair_weights(pairs: usize, rho: f64) -> Vec<f64> {
    (0..pairs).map(|j| rho.powi((pairs - 1 - j) as i32)).collect()
}

/// For every pair, its position in its chain's vector sequence (the chain's first vector,
/// the first pair's regressor, is position 0; pair c of the chain has its target at c + 1),
/// and the index of the chain's first pair.
fn chain_positions(chains: &[usize]) -> Vec<(usize, usize)> {
    let mut out = Vec::with_capacity(chains.len());
    let mut first = 0;
    for (j, &chain) in chains.iter().enumerate() {
        if j == 0 || chains[j - 1] != chain {
            first = j;
        }
        out.push((j - first + 1, first));
    }
    out
}

/// The K of DMD on the correlation sequence (see `koopman::Method::Correlation`) over
/// the lifted vectors of `pairs` (N observables, no inputs), lags first_lag..first_lag +
/// lags - 1, forgetting rho, with the constant observable at `constant` if any. K is
/// N x N with q ~ K^T p.
pub fn correlation(
    pairs: &PairData,
    first_lag: usize,
    lags: usize,
    rank: Option<usize>,
    rho: f64,
    constant: Option<usize>,
) -> Result<Mat<f64>, NumericalError> {
    let n = pairs.targets.ncols();
    let count = pairs.targets.nrows();
    let weights = pair_weights(count, rho);
    let positions = chain_positions(&pairs.chains);
    // The chain's vector at `position`: the first pair's regressor (its lifted part), or
    // the target of the pair before that position.
    let vector = |first: usize, position: usize| -> MatRef<'_, f64> {
        if position == 0 {
            pairs.regressors.as_ref().subrows(first, 1).subcols(0, n)
        } else {
            pairs.targets.as_ref().subrows(first + position - 1, 1)
        }
    };
    let mut sums = vec![0.0; lags * n * n];
    let mut lead = vec![0.0; lags * n];
    let mut lag = vec![0.0; lags * n];
    let mut weight = vec![0.0; lags];
    for j in 0..lags {
        let l = first_lag + j;
        let rows: Vec<usize> = (0..count).filter(|&p| positions[p].0 >= l).collect();
        let leads = Mat::from_fn(rows.len(), n, |r, c| weights[rows[r]] * pairs.targets[(rows[r], c)]);
        let lagged = Mat::from_fn(rows.len(), n, |r, c| {
            let (position, first) = positions[rows[r]];
            vector(first, position - l)[(0, c)]
        });
        let block = leads.transpose() * &lagged;
        for c in 0..n {
            for r in 0..n {
                sums[j * n * n + c * n + r] = block[(r, c)];
            }
            lead[j * n + c] = (0..rows.len()).map(|r| leads[(r, c)]).sum();
            lag[j * n + c] = (0..rows.len()).map(|r| weights[rows[r]] * lagged[(r, c)]).sum();
        }
        weight[j] = rows.iter().map(|&r| weights[r]).sum();
    }
    let k = solve_lag_sums(n, lags, rank, constant, &sums, &lead, &lag, &weight)?;
    Ok(Mat::from_fn(n, n, |r, c| k[c * n + r]))
}

/// The instrumental-variable K = (sum w z p^T + rho^M mu I)^-1 sum w z q^T over `pairs`,
/// the instrument of a pair being the regressor `delay` pairs earlier in its chain (pairs
/// without one add nothing but still count for the forgetting), by full-pivoting LU.
pub fn instrumental(pairs: &PairData, delay: usize, mu: f64, rho: f64) -> Result<Mat<f64>, NumericalError> {
    let (count, width) = (pairs.regressors.nrows(), pairs.regressors.ncols());
    let weights = pair_weights(count, rho);
    let rows: Vec<usize> =
        (delay..count).filter(|&j| j >= delay && pairs.chains[j - delay] == pairs.chains[j]).collect();
    let instruments = Mat::from_fn(rows.len(), width, |r, c| weights[rows[r]] * pairs.regressors[(rows[r] - delay, c)]);
    let regressors = Mat::from_fn(rows.len(), width, |r, c| pairs.regressors[(rows[r], c)]);
    let targets = Mat::from_fn(rows.len(), pairs.targets.ncols(), |r, c| pairs.targets[(rows[r], c)]);
    let ridge = mu * rho.powi(count as i32);
    let moment = instruments.transpose() * &regressors + Mat::<f64>::identity(width, width) * faer::Scale(ridge);
    let cross = instruments.transpose() * &targets;
    let k = moment.full_piv_lu().solve(&cross);
    if k.col_iter().any(|c| c.iter().any(|v| !v.is_finite())) {
        return Err(NumericalError::Singular);
    }
    Ok(k)
}
