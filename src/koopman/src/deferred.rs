//! The rank-one recursion with its matrix updates deferred: up to B pairs are held as
//! vectors and applied to P, K, G and R together as rank-B products.
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
use faer::linalg::matmul::triangular::{BlockStructure, matmul as triangular_matmul};
use faer::{Accum, MatRef, Par};
use pulp::{Arch, Simd, WithSimd};

use crate::fused::PairUpdate;
use crate::kernels::Dense;
use crate::simd::{dot, matvec_add, scale, sym_lower_matvec, transposed_matvec};

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

/// The pairs whose updates are not yet in the matrices.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pending {
    pub(crate) count: usize,
    /// Flush when this many pairs are pending.
    block: usize,
    /// p_i, N' x MAX_BLOCK.
    pub(crate) regressors: Dense,
    /// q_i, N x MAX_BLOCK.
    pub(crate) targets: Dense,
    /// h_i, N' x MAX_BLOCK.
    pub(crate) gains: Dense,
    /// e_i, N x MAX_BLOCK.
    pub(crate) errors: Dense,
    pub(crate) beta: Vec<f64>,
    pub(crate) gamma: Vec<f64>,
    /// s = rho^-count.
    pub(crate) sigma: f64,
    /// Work space: h_i . p for the pair in progress, their weighted values, and weighted
    /// copies for the flush.
    dots: Vec<f64>,
    weights: Vec<f64>,
    weighted: Dense,
}

impl Pending {
    pub(crate) fn new(n_lifted: usize, n_regressor: usize, block: usize) -> Self {
        Self {
            count: 0,
            block,
            regressors: Dense::zeros(n_regressor, MAX_BLOCK),
            targets: Dense::zeros(n_lifted, MAX_BLOCK),
            gains: Dense::zeros(n_regressor, MAX_BLOCK),
            errors: Dense::zeros(n_lifted, MAX_BLOCK),
            beta: vec![0.0; MAX_BLOCK],
            gamma: vec![0.0; MAX_BLOCK],
            sigma: 1.0,
            dots: vec![0.0; MAX_BLOCK],
            weights: vec![0.0; MAX_BLOCK],
            weighted: Dense::zeros(n_regressor, MAX_BLOCK),
        }
    }

    pub(crate) fn export(&self) -> crate::state::PendingState {
        let c = self.count;
        let columns = |m: &Dense| m.entries()[..c * m.rows()].to_vec();
        crate::state::PendingState {
            regressors: columns(&self.regressors),
            targets: columns(&self.targets),
            gains: columns(&self.gains),
            errors: columns(&self.errors),
            beta: self.beta[..c].to_vec(),
            gamma: self.gamma[..c].to_vec(),
            sigma: self.sigma,
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
        pending.count = c;
        pending.regressors.entries_mut()[..c * n_regressor].copy_from_slice(&state.regressors);
        pending.gains.entries_mut()[..c * n_regressor].copy_from_slice(&state.gains);
        pending.targets.entries_mut()[..c * n_lifted].copy_from_slice(&state.targets);
        pending.errors.entries_mut()[..c * n_lifted].copy_from_slice(&state.errors);
        pending.beta[..c].copy_from_slice(&state.beta);
        pending.gamma[..c].copy_from_slice(&state.gamma);
        pending.sigma = state.sigma;
        Ok(pending)
    }

    pub(crate) fn block(&self) -> usize {
        self.block
    }

    pub(crate) fn is_full(&self) -> bool {
        self.count >= self.block
    }

    /// Applies every pending pair to the matrices and empties the block.
    pub(crate) fn flush(
        &mut self,
        rho: f64,
        inverse: &mut Dense,
        operator: &mut Dense,
        gram: &mut Dense,
        cross: &mut Dense,
    ) {
        let c = self.count;
        if c == 0 {
            return;
        }
        // The work space leaves the struct while the pending terms are read from it (an
        // empty Dense holds no allocation).
        let mut weighted = std::mem::replace(&mut self.weighted, Dense::zeros(0, 0));
        self.apply_to_inverse(&mut weighted, inverse);
        self.apply_to_operator(&mut weighted, operator.as_faer_mut());
        self.weighted = weighted;
        // G and R: decay what was there, add the pairs with their own decay.
        let regressors = self.regressors.as_faer().subcols(0, c);
        let decayed = rho != 1.0;
        if decayed {
            let decay = rho.powi(c as i32);
            scale_lower(gram, decay);
            cross.entries_mut().iter_mut().for_each(|v| *v *= decay);
        }
        let weights = |i: usize| if decayed { rho.powi((c - i) as i32) } else { 1.0 };
        weigh(&mut self.weighted, regressors, weights);
        let weighted = self.weighted.as_faer().subcols(0, c);
        triangular_matmul(
            gram.as_faer_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            weighted,
            BlockStructure::Rectangular,
            regressors.transpose(),
            BlockStructure::Rectangular,
            1.0,
            Par::Seq,
        );
        matmul(
            cross.as_faer_mut(),
            Accum::Add,
            weighted,
            self.targets.as_faer().subcols(0, c).transpose(),
            1.0,
            Par::Seq,
        );
        self.count = 0;
        self.sigma = 1.0;
    }

    /// P_base <- s (P_base - H diag(beta) H^T) on the lower triangle, for the pending
    /// pairs (`weighted`: work space of at least N' x count).
    fn apply_to_inverse(&self, weighted: &mut Dense, inverse: &mut Dense) {
        let c = self.count;
        let gains = self.gains.as_faer().subcols(0, c);
        weigh(weighted, gains, |i| self.beta[i]);
        triangular_matmul(
            inverse.as_faer_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            weighted.as_faer().subcols(0, c),
            BlockStructure::Rectangular,
            gains.transpose(),
            BlockStructure::Rectangular,
            -1.0,
            Par::Seq,
        );
        if self.sigma != 1.0 {
            scale_lower(inverse, self.sigma);
        }
    }

    /// K_base <- K_base + H diag(gamma) E^T for the pending pairs.
    fn apply_to_operator(&self, weighted: &mut Dense, operator: faer::MatMut<'_, f64>) {
        let c = self.count;
        let gains = self.gains.as_faer().subcols(0, c);
        weigh(weighted, gains, |i| self.gamma[i]);
        matmul(
            operator,
            Accum::Add,
            weighted.as_faer().subcols(0, c),
            self.errors.as_faer().subcols(0, c).transpose(),
            1.0,
            Par::Seq,
        );
    }

    /// K_base + the pending terms, as one matrix (for readers; allocates).
    pub(crate) fn operator_now(&self, operator: &Dense) -> faer::Mat<f64> {
        let mut k = operator.as_faer().to_owned();
        if self.count > 0 {
            self.apply_to_operator(&mut Dense::zeros(operator.rows(), self.count), k.as_mut());
        }
        k
    }

    /// s (P_base - the pending terms), lower triangle meaningful (for readers; allocates).
    pub(crate) fn inverse_now(&self, inverse: &Dense) -> Dense {
        let mut p = inverse.clone();
        if self.count > 0 {
            self.apply_to_inverse(&mut Dense::zeros(inverse.rows(), self.count), &mut p);
        }
        p
    }
}

/// weighted[:, i] = source[:, i] * weight(i) for the columns of `source`.
fn weigh(weighted: &mut Dense, source: MatRef<'_, f64>, weight: impl Fn(usize) -> f64) {
    for i in 0..source.ncols() {
        let w = weight(i);
        for (out, v) in weighted.col_mut(i).iter_mut().zip(source.col(i).iter()) {
            *out = w * v;
        }
    }
}

fn scale_lower(m: &mut Dense, factor: f64) {
    for j in 0..m.cols() {
        m.col_mut(j)[j..].iter_mut().for_each(|v| *v *= factor);
    }
}

/// One pair against the deferred representation: reads P_base and K_base, records the
/// pair's vectors in the block. The caller flushes when the block is full.
pub(crate) struct DeferredPair<'a> {
    pub(crate) p: &'a [f64],
    pub(crate) q: &'a [f64],
    pub(crate) rho: f64,
    pub(crate) inverse: &'a Dense,
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
        let n = p.len();
        let c = pending.count;
        // h = P_base p (lower triangle), then the pending corrections, then the scale s.
        sym_lower_matvec(simd, inverse.entries(), n, p, h);
        let rows_p = pending.gains.rows();
        let gains = &pending.gains.entries()[..c * rows_p];
        transposed_matvec(simd, gains, p, 1.0, 0.0, &mut pending.dots[..c]);
        for i in 0..c {
            pending.weights[i] = -pending.beta[i] * pending.dots[i];
        }
        matvec_add(simd, gains, &pending.weights[..c], h);
        if pending.sigma != 1.0 {
            scale(simd, pending.sigma, h);
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
            pending.weights[i] = -pending.gamma[i] * pending.dots[i];
        }
        let rows_e = pending.errors.rows();
        matvec_add(simd, &pending.errors.entries()[..c * rows_e], &pending.weights[..c], residual);
        pending.regressors.col_mut(c).copy_from_slice(p);
        pending.targets.col_mut(c).copy_from_slice(q);
        pending.gains.col_mut(c).copy_from_slice(h);
        pending.errors.col_mut(c).copy_from_slice(residual);
        pending.beta[c] = gamma / pending.sigma;
        pending.gamma[c] = gamma;
        pending.sigma /= rho;
        pending.count = c + 1;
        PairUpdate::Applied { healthy: residual.iter().all(|e| e.is_finite()) }
    }
}
