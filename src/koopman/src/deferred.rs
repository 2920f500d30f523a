//! The deferred strategy: up to B pairs are held as vectors and applied to P, K, G and R
//! together as rank-B products.
//!
//! Why: at N' of a few dozen and more, an immediate rank-one update streams all four
//! N' x N' matrices through the cache for 4.5 N'^2 multiply-adds, so it runs at cache
//! bandwidth. Deferred, a pair only reads P and K (for h = P p and the residual) and
//! corrects the reads with the pending terms (O(N' c) for c pending pairs); every B pairs
//! one cache-blocked product applies them all, at several times the speed per multiply-add.
//!
//! With forgetting factor rho, after c pending pairs the true matrices are
//!
//! ```text
//! P = s (P_base - sum_i beta_i h_i h_i^T),  s = rho^-c
//! K = K_base + sum_i gamma_i h_i e_i^T
//! G = rho^c G_base + sum_i rho^(c-i) p_i p_i^T   (0-based i)
//! R = rho^c R_base + sum_i rho^(c-i) p_i q_i^T
//! ```
//!
//! where h_i = P_(i-1) p_i, gamma_i = 1 / (1 + p_i^T h_i), e_i = q_i - K_(i-1)^T p_i and
//! beta_i = gamma_i / s_(i-1). The pending vectors are part of the exported state, and
//! the flush happens when the block is full, so the schedule of floating-point operations
//! depends only on the sequence of pairs: a restored estimator continues bit for bit.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, Par};
use pulp::{Arch, Simd, WithSimd};

use crate::dense::Dense;
use crate::immediate::PairUpdate;
use crate::recursion::Matrices;
use crate::simd::{dot, matvec_add, scale, scaled_copy, transposed_matvec};
use crate::symmetric::Symmetric;

/// Pairs deferred at most (the largest rank of one flush).
pub(crate) const MAX_BLOCK: usize = 32;

/// Regressor counts from which pairs are deferred (measured with `bench-online` on Van der
/// Pol RBF and polynomial models: from N' = 28 up deferring was faster).
const DEFER_FROM: usize = 24;

/// How many pairs to defer at N' regressors, or None for immediate updates. Each pending
/// pair costs every later pair about 3 N' multiply-adds of corrections, so the block grows
/// with N'; below a few dozen the matrices sit in L1 and immediate updates are cheaper.
pub(crate) fn block_size(n_regressor: usize) -> Option<usize> {
    (n_regressor >= DEFER_FROM).then(|| (n_regressor / 4).clamp(4, MAX_BLOCK))
}

/// The pairs whose updates are not yet in the matrices, and the work space to apply them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pending {
    /// Flush when this many pairs are pending.
    block: usize,
    terms: Terms,
    /// Work space: h_i . p for the pair in progress, their weighted values, and weighted
    /// copies of the vectors for the flush.
    dots: Vec<f64>,
    weights: Vec<f64>,
    weighted: Dense,
}

/// The pending terms of the formulas above (c = `count` columns of each matrix in use).
#[derive(Debug, Clone, PartialEq)]
struct Terms {
    count: usize,
    /// p_i, N' x MAX_BLOCK.
    regressors: Dense,
    /// q_i, N x MAX_BLOCK.
    targets: Dense,
    /// h_i, N' x MAX_BLOCK.
    gains: Dense,
    /// e_i, N x MAX_BLOCK.
    errors: Dense,
    beta: Vec<f64>,
    gamma: Vec<f64>,
    /// s = rho^-count.
    sigma: f64,
}

impl Pending {
    pub(crate) fn new(n_lifted: usize, n_regressor: usize, block: usize) -> Self {
        Self {
            block,
            terms: Terms {
                count: 0,
                regressors: Dense::zeros(n_regressor, MAX_BLOCK),
                targets: Dense::zeros(n_lifted, MAX_BLOCK),
                gains: Dense::zeros(n_regressor, MAX_BLOCK),
                errors: Dense::zeros(n_lifted, MAX_BLOCK),
                beta: vec![0.0; MAX_BLOCK],
                gamma: vec![0.0; MAX_BLOCK],
                sigma: 1.0,
            },
            dots: vec![0.0; MAX_BLOCK],
            weights: vec![0.0; MAX_BLOCK],
            weighted: Dense::zeros(n_regressor, MAX_BLOCK),
        }
    }

    pub(crate) fn export(&self) -> crate::state::PendingState {
        let t = &self.terms;
        let c = t.count;
        let columns = |m: &Dense| m.entries()[..c * m.rows()].to_vec();
        crate::state::PendingState {
            regressors: columns(&t.regressors),
            targets: columns(&t.targets),
            gains: columns(&t.gains),
            errors: columns(&t.errors),
            beta: t.beta[..c].to_vec(),
            gamma: t.gamma[..c].to_vec(),
            sigma: t.sigma,
        }
    }

    /// A block of the given sizes holding an exported state's pairs.
    pub(crate) fn restore(
        state: crate::state::PendingState,
        n_lifted: usize,
        n_regressor: usize,
        block: usize,
    ) -> Result<Self, crate::error::StateError> {
        let c = state.beta.len();
        let fits = c < block
            && state.gamma.len() == c
            && state.regressors.len() == c * n_regressor
            && state.gains.len() == c * n_regressor
            && state.targets.len() == c * n_lifted
            && state.errors.len() == c * n_lifted
            && state.sigma.is_finite()
            && state.sigma > 0.0;
        if !fits {
            return Err(crate::error::StateError::Shape("pending pairs"));
        }
        let mut pending = Self::new(n_lifted, n_regressor, block);
        let t = &mut pending.terms;
        t.count = c;
        t.regressors.entries_mut()[..c * n_regressor].copy_from_slice(&state.regressors);
        t.gains.entries_mut()[..c * n_regressor].copy_from_slice(&state.gains);
        t.targets.entries_mut()[..c * n_lifted].copy_from_slice(&state.targets);
        t.errors.entries_mut()[..c * n_lifted].copy_from_slice(&state.errors);
        t.beta[..c].copy_from_slice(&state.beta);
        t.gamma[..c].copy_from_slice(&state.gamma);
        t.sigma = state.sigma;
        Ok(pending)
    }

    #[cfg(test)]
    pub(crate) fn block(&self) -> usize {
        self.block
    }

    /// Pairs pending.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.terms.count
    }

    pub(crate) fn is_full(&self) -> bool {
        self.terms.count >= self.block
    }

    /// Applies every pending pair to the matrices and empties the block.
    pub(crate) fn flush(&mut self, rho: f64, matrices: &mut Matrices) {
        if self.terms.count == 0 {
            return;
        }
        let Matrices { gram, cross, inverse, operator } = matrices;
        Arch::new().dispatch(Apply {
            terms: &self.terms,
            weighted: &mut self.weighted,
            inverse: Some(inverse),
            operator: Some(operator.as_faer_mut()),
            sums: Some((rho, gram, cross)),
        });
        self.terms.count = 0;
        self.terms.sigma = 1.0;
    }

    /// K_base + the pending terms, as one matrix (for readers; allocates).
    pub(crate) fn operator_now(&self, operator: &Dense) -> Mat<f64> {
        let mut k = operator.as_faer().to_owned();
        if self.terms.count > 0 {
            let weighted = &mut Dense::zeros(operator.rows(), self.terms.count);
            Arch::new().dispatch(Apply { operator: Some(k.as_mut()), ..Apply::none(&self.terms, weighted) });
        }
        k
    }

    /// out += the pending pairs' part of K^T p for the first out.len() targets:
    /// sum_i gamma_i (h_i . p) e_i. With `out` holding K_base^T p, it is then the prediction
    /// of the current K without a flush. O(c N'), no allocation.
    pub(crate) fn correct_prediction(&self, p: &[f64], out: &mut [f64]) {
        let t = &self.terms;
        if t.count == 0 {
            return;
        }
        Arch::new().dispatch(CorrectPrediction { terms: t, p, out });
    }

    /// s (P_base - the pending terms) (for readers; allocates).
    pub(crate) fn inverse_now(&self, inverse: &Symmetric) -> Symmetric {
        let mut p = inverse.clone();
        if self.terms.count > 0 {
            let weighted = &mut Dense::zeros(inverse.order(), self.terms.count);
            Arch::new().dispatch(Apply { inverse: Some(&mut p), ..Apply::none(&self.terms, weighted) });
        }
        p
    }

    /// G and R with the pending pairs added (for readers; allocates).
    pub(crate) fn sums_now(&self, rho: f64, gram: &Symmetric, cross: &Dense) -> (Symmetric, Dense) {
        let (mut gram, mut cross) = (gram.clone(), cross.clone());
        if self.terms.count > 0 {
            let weighted = &mut Dense::zeros(gram.order(), self.terms.count);
            Arch::new()
                .dispatch(Apply { sums: Some((rho, &mut gram, &mut cross)), ..Apply::none(&self.terms, weighted) });
        }
        (gram, cross)
    }
}

/// [`Pending::correct_prediction`] at the best SIMD width.
struct CorrectPrediction<'a> {
    terms: &'a Terms,
    p: &'a [f64],
    out: &'a mut [f64],
}

impl WithSimd for CorrectPrediction<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self { terms: t, p, out } = self;
        for i in 0..t.count {
            let weight = t.gamma[i] * dot(simd, t.gains.col(i), p);
            for (o, e) in out.iter_mut().zip(t.errors.col(i)) {
                *o += weight * e;
            }
        }
    }
}

/// The pending terms applied to whichever matrices are given (`weighted`: work space of at
/// least N' x count).
struct Apply<'a> {
    terms: &'a Terms,
    weighted: &'a mut Dense,
    inverse: Option<&'a mut Symmetric>,
    operator: Option<MatMut<'a, f64>>,
    sums: Option<(f64, &'a mut Symmetric, &'a mut Dense)>,
}

impl<'a> Apply<'a> {
    fn none(terms: &'a Terms, weighted: &'a mut Dense) -> Self {
        Self { terms, weighted, inverse: None, operator: None, sums: None }
    }
}

impl WithSimd for Apply<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self { terms: t, weighted, inverse, operator, sums } = self;
        let c = t.count;
        // P_base <- s (P_base - H diag(beta) H^T).
        if let Some(inverse) = inverse {
            weigh(simd, weighted, &t.gains, c, |i| t.beta[i]);
            inverse.add_product(-1.0, weighted.as_faer().subcols(0, c), t.gains.as_faer().subcols(0, c));
            if t.sigma != 1.0 {
                inverse.scale(simd, t.sigma);
            }
        }
        // K_base <- K_base + H diag(gamma) E^T.
        if let Some(operator) = operator {
            weigh(simd, weighted, &t.gains, c, |i| t.gamma[i]);
            let (weighted, errors) = (weighted.as_faer().subcols(0, c), t.errors.as_faer().subcols(0, c));
            matmul(operator, Accum::Add, weighted, errors.transpose(), 1.0, Par::Seq);
        }
        // G and R: decay what was there, add the pairs with their own decay.
        if let Some((rho, gram, cross)) = sums {
            let decayed = rho != 1.0;
            if decayed {
                let decay = rho.powi(c as i32);
                gram.scale(simd, decay);
                scale(simd, decay, cross.entries_mut());
            }
            weigh(simd, weighted, &t.regressors, c, |i| if decayed { rho.powi((c - i) as i32) } else { 1.0 });
            let (weighted, regressors) = (weighted.as_faer().subcols(0, c), t.regressors.as_faer().subcols(0, c));
            gram.add_product(1.0, weighted, regressors);
            let targets = t.targets.as_faer().subcols(0, c);
            matmul(cross.as_faer_mut(), Accum::Add, weighted, targets.transpose(), 1.0, Par::Seq);
        }
    }
}

/// weighted[:, i] = source[:, i] * weight(i) for the first `count` columns.
#[inline(always)]
fn weigh<S: Simd>(simd: S, weighted: &mut Dense, source: &Dense, count: usize, weight: impl Fn(usize) -> f64) {
    for i in 0..count {
        scaled_copy(simd, weight(i), source.col(i), weighted.col_mut(i));
    }
}

/// One pair against the deferred representation: reads P_base and K_base, records the
/// pair's vectors in the block. The caller flushes when the block is full.
pub(crate) struct DeferredPair<'a> {
    pub(crate) p: &'a [f64],
    pub(crate) q: &'a [f64],
    pub(crate) rho: f64,
    pub(crate) inverse: &'a Symmetric,
    pub(crate) operator: &'a Dense,
    pub(crate) pending: &'a mut Pending,
    pub(crate) h: &'a mut [f64],
    pub(crate) residual: &'a mut [f64],
}

impl DeferredPair<'_> {
    /// Runs the pair; on [`PairUpdate::Rejected`] nothing was recorded.
    pub(crate) fn apply(self) -> PairUpdate {
        Arch::new().dispatch(self)
    }
}

impl WithSimd for DeferredPair<'_> {
    type Output = PairUpdate;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> PairUpdate {
        let Self { p, q, rho, inverse, operator, pending, h, residual } = self;
        let Pending { terms: t, dots, weights, .. } = pending;
        let c = t.count;
        // h = P_base p, then the pending corrections, then the scale s.
        inverse.mul_vec(simd, p, h);
        let rows_p = t.gains.rows();
        let gains = &t.gains.entries()[..c * rows_p];
        transposed_matvec(simd, gains, p, 1.0, 0.0, &mut dots[..c]);
        for i in 0..c {
            weights[i] = -t.beta[i] * dots[i];
        }
        matvec_add(simd, gains, &weights[..c], h);
        if t.sigma != 1.0 {
            scale(simd, t.sigma, h);
        }
        let php = dot(simd, p, h);
        if !(php.is_finite() && php >= 0.0) {
            return PairUpdate::Rejected;
        }
        let gamma = 1.0 / (1.0 + php);
        // e = q - K^T p with K = K_base + sum gamma_i h_i e_i^T.
        residual.copy_from_slice(q);
        transposed_matvec(simd, operator.entries(), p, -1.0, 1.0, residual);
        for i in 0..c {
            weights[i] = -t.gamma[i] * dots[i];
        }
        let rows_e = t.errors.rows();
        matvec_add(simd, &t.errors.entries()[..c * rows_e], &weights[..c], residual);
        t.regressors.col_mut(c).copy_from_slice(p);
        t.targets.col_mut(c).copy_from_slice(q);
        t.gains.col_mut(c).copy_from_slice(h);
        t.errors.col_mut(c).copy_from_slice(residual);
        t.beta[c] = gamma / t.sigma;
        t.gamma[c] = gamma;
        t.sigma /= rho;
        t.count = c + 1;
        PairUpdate::Applied { healthy: residual.iter().all(|e| e.is_finite()) }
    }
}
