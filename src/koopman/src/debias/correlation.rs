//! The correlation estimator: weighted lag sums of the lifted vectors, kept at O(L N^2) per
//! sample, and DMD on the correlation sequence they define, solved every so often.
//!
//! For a noise-driven system seen through noisy outputs, psi_{k+l} and psi_k share no
//! noise once l lies past the dictionary's delay span, so the lag covariances
//! Cov_l = E[(psi_{k+l} - mean) (psi_k - mean)^T] behave like a free response of the
//! system: Cov_{l+1} = A Cov_l on the range the system reaches. Regressing the stacked
//! covariances at lags l+1 on those at lags l (DMD on the correlation sequence, an SVD
//! truncated to the chosen rank) recovers A without the bias that white measurement noise
//! gives a one-step regression, where it sits in the regressors (lag 0 is never used).

use faer::Mat;

use crate::error::{NumericalError, StateError};
use crate::state::CorrelationState;

/// Relative size below which a singular value counts as zero when no rank is given.
const RANK_TOLERANCE: f64 = 1e-10;

/// The lag sums of one stream and the operator last solved from them.
#[derive(Debug, Clone)]
pub(crate) struct Correlation {
    n: usize,
    first_lag: usize,
    lags: usize,
    rank: Option<usize>,
    rho: f64,
    constant: Option<usize>,
    /// Sums of w psi_t psi_{t-l}^T, lag j = l - first_lag, each N x N column-major.
    sums: Vec<f64>,
    /// Sums of w psi_t (the lead vectors) per lag, N each.
    lead: Vec<f64>,
    /// Sums of w psi_{t-l} (the lagged vectors) per lag, N each.
    lag: Vec<f64>,
    /// Sums of the weights per lag.
    weight: Vec<f64>,
    /// The chain's latest first_lag + lags - 1 vectors, a ring (slot `next` is the oldest
    /// once full).
    ring: Vec<f64>,
    ring_next: usize,
    ring_len: usize,
    /// K (N x N, column-major, q ~ K^T p) of the last solve, if any.
    operator: Option<Vec<f64>>,
}

impl Correlation {
    pub(crate) fn new(
        n: usize,
        first_lag: usize,
        lags: usize,
        rank: Option<usize>,
        rho: f64,
        constant: Option<usize>,
    ) -> Self {
        let capacity = first_lag + lags - 1;
        Self {
            n,
            first_lag,
            lags,
            rank,
            rho,
            constant,
            sums: vec![0.0; lags * n * n],
            lead: vec![0.0; lags * n],
            lag: vec![0.0; lags * n],
            weight: vec![0.0; lags],
            ring: vec![0.0; capacity * n],
            ring_next: 0,
            ring_len: 0,
            operator: None,
        }
    }

    fn capacity(&self) -> usize {
        self.first_lag + self.lags - 1
    }

    /// The vector `back` steps before the newest in the ring (1 = the newest).
    fn ring_vector(&self, back: usize) -> &[f64] {
        let capacity = self.capacity();
        let slot = (self.ring_next + capacity - back) % capacity;
        &self.ring[slot * self.n..(slot + 1) * self.n]
    }

    /// A gap: no lag spans it.
    pub(crate) fn break_chain(&mut self) {
        self.ring_len = 0;
        self.ring_next = 0;
    }

    /// Adds the newest lifted vector. When it forms a pair with the one before it (as the
    /// ridge recursion counts pairs), every sum decays by rho, so a product's weight is
    /// rho^(pairs since), the ridge's weighting; then each lag whose partner lies in the
    /// chain gains its product. O(L N^2), no allocation.
    pub(crate) fn push(&mut self, psi: &[f64]) {
        let n = self.n;
        if self.rho < 1.0 && self.ring_len > 0 {
            let rho = self.rho;
            for v in self.sums.iter_mut().chain(&mut self.lead).chain(&mut self.lag).chain(&mut self.weight) {
                *v *= rho;
            }
        }
        for j in 0..self.lags {
            let l = self.first_lag + j;
            if l > self.ring_len {
                break;
            }
            let capacity = self.capacity();
            let slot = (self.ring_next + capacity - l) % capacity;
            let earlier = &self.ring[slot * n..(slot + 1) * n];
            let block = &mut self.sums[j * n * n..(j + 1) * n * n];
            for (c, &e) in earlier.iter().enumerate() {
                for (s, &p) in block[c * n..(c + 1) * n].iter_mut().zip(psi) {
                    *s += p * e;
                }
            }
            for (s, &p) in self.lead[j * n..(j + 1) * n].iter_mut().zip(psi) {
                *s += p;
            }
            for (s, &e) in self.lag[j * n..(j + 1) * n].iter_mut().zip(earlier) {
                *s += e;
            }
            self.weight[j] += 1.0;
        }
        let slot = self.ring_next;
        self.ring[slot * n..(slot + 1) * n].copy_from_slice(psi);
        self.ring_next = (slot + 1) % self.capacity();
        self.ring_len = (self.ring_len + 1).min(self.capacity());
    }

    /// Solves K from the current sums (allocates; O(L N^3)). Leaves the last operator in
    /// place when the sums cannot give one yet.
    pub(crate) fn solve(&mut self) -> Result<(), NumericalError> {
        let k = solve_lag_sums(
            self.n,
            self.lags,
            self.rank,
            self.constant,
            &self.sums,
            &self.lead,
            &self.lag,
            &self.weight,
        )?;
        self.operator = Some(k);
        Ok(())
    }

    /// K of the last solve (N x N column-major), if any.
    pub(crate) fn operator(&self) -> Option<&[f64]> {
        self.operator.as_deref()
    }

    pub(crate) fn export(&self) -> CorrelationState {
        let mut ring = Vec::with_capacity(self.ring_len * self.n);
        for back in (1..=self.ring_len).rev() {
            ring.extend_from_slice(self.ring_vector(back));
        }
        CorrelationState {
            sums: self.sums.clone(),
            lead: self.lead.clone(),
            lag: self.lag.clone(),
            weight: self.weight.clone(),
            ring,
            operator: self.operator.clone(),
        }
    }

    pub(crate) fn restore(mut self, state: CorrelationState) -> Result<Self, StateError> {
        let (n, lags) = (self.n, self.lags);
        let shapes_agree = state.sums.len() == lags * n * n
            && state.lead.len() == lags * n
            && state.lag.len() == lags * n
            && state.weight.len() == lags
            && state.ring.len().is_multiple_of(n)
            && state.ring.len() / n <= self.capacity()
            && state.operator.as_ref().is_none_or(|k| k.len() == n * n);
        if !shapes_agree {
            return Err(StateError::Shape("correlation sums"));
        }
        for psi in state.ring.chunks_exact(n) {
            let slot = self.ring_next;
            self.ring[slot * n..(slot + 1) * n].copy_from_slice(psi);
            self.ring_next = (slot + 1) % self.capacity();
            self.ring_len += 1;
        }
        self.sums = state.sums;
        self.lead = state.lead;
        self.lag = state.lag;
        self.weight = state.weight;
        self.operator = state.operator;
        Ok(self)
    }
}

/// DMD on the correlation sequence: from the lag sums (L blocks of N x N, their lead and
/// lag vector sums and weights), the centred covariances Cov_j, then
/// A = [Cov_1 .. Cov_{L-1}] [Cov_0 .. Cov_{L-2}]^+ through a thin SVD truncated to `rank`
/// (or to the singular values above 1e-10 of the largest), and K = A^T. The mean the
/// centring removed comes back through the constant observable when the dictionary has
/// one (its own coordinate maps to itself and carries the offset mean_q - A mean_p).
/// Shared by the online estimator's solve and the batch reference, which build the sums by
/// different routes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn solve_lag_sums(
    n: usize,
    lags: usize,
    rank: Option<usize>,
    constant: Option<usize>,
    sums: &[f64],
    lead: &[f64],
    lag: &[f64],
    weight: &[f64],
) -> Result<Vec<f64>, NumericalError> {
    if weight.iter().any(|&w| w <= 0.0) {
        return Err(NumericalError::NotReady("a correlation lag has no products yet"));
    }
    let cov = |j: usize, r: usize, c: usize| {
        let w = weight[j];
        sums[j * n * n + c * n + r] / w - (lead[j * n + r] / w) * (lag[j * n + c] / w)
    };
    let width = n * (lags - 1);
    let x = Mat::from_fn(n, width, |r, col| cov(col / n, r, col % n));
    let y = Mat::from_fn(n, width, |r, col| cov(col / n + 1, r, col % n));
    if x.col_iter().any(|c| c.iter().any(|v| !v.is_finite())) || y.col_iter().any(|c| c.iter().any(|v| !v.is_finite()))
    {
        return Err(NumericalError::NotFinite);
    }
    let svd = x.thin_svd().map_err(|_| NumericalError::EigenFailed)?;
    let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
    let largest = s.iter().fold(0.0_f64, |m, &v| m.max(v));
    if largest <= 0.0 {
        return Err(NumericalError::NotReady("the correlations are all zero"));
    }
    let keep = rank.unwrap_or(n).min(s.iter().filter(|&&v| v > RANK_TOLERANCE * largest).count()).max(1);
    // A = Y V_r S_r^-1 U_r^T.
    let y_v = &y * v.subcols(0, keep);
    let scaled = Mat::from_fn(n, keep, |r, c| y_v[(r, c)] / s[c]);
    let mut a = &scaled * u.subcols(0, keep).transpose();
    if let Some(c0) = constant {
        let total: f64 = weight.iter().sum();
        let mean_q: Vec<f64> = (0..n).map(|r| (0..lags).map(|j| lead[j * n + r]).sum::<f64>() / total).collect();
        let mean_p: Vec<f64> = (0..n).map(|r| (0..lags).map(|j| lag[j * n + r]).sum::<f64>() / total).collect();
        for r in 0..n {
            a[(r, c0)] = 0.0;
            a[(c0, r)] = 0.0;
        }
        for r in 0..n {
            if r != c0 {
                a[(r, c0)] = mean_q[r] - (0..n).map(|c| a[(r, c)] * mean_p[c]).sum::<f64>();
            }
        }
        a[(c0, c0)] = 1.0;
    }
    // K = A^T, column-major: K[(row p, col q)] = A[(q, p)].
    let mut k = vec![0.0; n * n];
    for q in 0..n {
        for p in 0..n {
            k[q * n + p] = a[(q, p)];
        }
    }
    Ok(k)
}
