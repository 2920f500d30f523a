//! The numerical core: the one description of the recursion's state (the running sums G
//! and R, the inverse P = G^-1, the operator K = P R, the strategy's own data, counters)
//! and its one update entry point, [`Recursion::update`].
//!
//! How a pair reaches the matrices is the [`Strategy`], chosen from the size and the
//! configuration when the recursion is built and never changed:
//!
//! - `Immediate` (N' < 24, no window): one rank-one update per pair (`immediate.rs`).
//! - `Deferred` (N' >= 24, no window): pairs are recorded as vectors and applied every B
//!   pairs as rank-B products (`deferred.rs`).
//! - `Windowed` (any N', sliding window): rank-one steps while the window fills, then one
//!   rank-two step per pair that also removes the oldest (`window.rs`).
//!
//! Every step runs on the SIMD kernels of `simd.rs`. Until the model is solved, and while
//! the warm-up pairs are replayed ([`Mode::SumsOnly`]), only the sums move. P and K are
//! refactorised exactly from the sums every `refactor_every` pairs and whenever a health
//! check fails.
//!
//! Invariant: after every call, G and R hold exactly the sums the batch problem is built
//! from (ridge included; with the deferred strategy once the pending pairs are applied, as
//! every reader sees them), and K is their solution up to rounding.

use faer::linalg::solvers::{DenseSolveCore, Solve};
use faer::{Mat, Side};
use pulp::{Arch, Simd, WithSimd};

use crate::deferred::{DeferredPair, Pending, block_size};
use crate::dense::Dense;
use crate::error::{NumericalError, StateError};
use crate::immediate::{EXACT_MAX, PairUpdate, RankOnePair};
use crate::simd::{scaled_axpy, transposed_matvec};
use crate::state::{PendingState, RecursionState, WindowState};
use crate::symmetric::{Storage, Symmetric};
use crate::window::{RankTwoPair, Window};

/// The matrices every strategy updates (N' regressors, N targets).
#[derive(Debug, Clone)]
pub(crate) struct Matrices {
    /// G = sum of the weighted p p^T, plus the (weighted) ridge mu I.
    pub(crate) gram: Symmetric,
    /// R = sum of the weighted p q^T, N' x N.
    pub(crate) cross: Dense,
    /// P = G^-1 (meaningful while the recursion is solved).
    pub(crate) inverse: Symmetric,
    /// K = P R, N' x N.
    pub(crate) operator: Dense,
}

impl Matrices {
    /// G = mu I, R = 0, P = I / mu (0 without a ridge), K = 0.
    pub(crate) fn new(n_lifted: usize, n_regressor: usize, mu: f64) -> Self {
        let n = n_regressor;
        Self {
            gram: Symmetric::scaled_identity(n, mu, Self::gram_storage(n)),
            cross: Dense::zeros(n, n_lifted),
            inverse: Symmetric::scaled_identity(n, if mu > 0.0 { 1.0 / mu } else { 0.0 }, Self::inverse_storage(n)),
            operator: Dense::zeros(n, n_lifted),
        }
    }

    /// How P is held at N' regressors: up to [`EXACT_MAX`] the exact-size rank-one update
    /// reads it as a plain square, so it is mirrored; above, only its lower triangle is.
    pub(crate) fn inverse_storage(n_regressor: usize) -> Storage {
        if n_regressor <= EXACT_MAX { Storage::Mirrored } else { Storage::Lower }
    }

    /// How G is held: only Cholesky reads it (its lower triangle); up to [`EXACT_MAX`] the
    /// rank-one updates sweep its whole columns.
    pub(crate) fn gram_storage(n_regressor: usize) -> Storage {
        if n_regressor <= EXACT_MAX { Storage::LowerWholeColumns } else { Storage::Lower }
    }

    /// The exported matrices (column-major), checked against the sizes.
    fn restore(
        [gram, cross, inverse, operator]: [Vec<f64>; 4],
        n_lifted: usize,
        n_regressor: usize,
    ) -> Result<Self, StateError> {
        let n = n_regressor;
        let square =
            |name, data, storage| Symmetric::from_column_major(n, data, storage).ok_or(StateError::Shape(name));
        let tall = |name, data| Dense::from_column_major(n, n_lifted, data).ok_or(StateError::Shape(name));
        Ok(Self {
            gram: square("gram", gram, Self::gram_storage(n))?,
            cross: tall("cross", cross)?,
            // States saved before small models held P mirrored hold only its lower
            // triangle: the mirrored P is built from that.
            inverse: square("p", inverse, Self::inverse_storage(n))?,
            operator: tall("k", operator)?,
        })
    }

    /// G <- rho (G + p p^T), R <- rho (R + p q^T): a pair that moves only the sums.
    fn add_to_sums(&mut self, rho: f64, p: &[f64], q: &[f64]) {
        Arch::new().dispatch(AddToSums { rho, p, q, gram: &mut self.gram, cross: &mut self.cross });
    }
}

/// [`Matrices::add_to_sums`] at the best SIMD width.
struct AddToSums<'a> {
    rho: f64,
    p: &'a [f64],
    q: &'a [f64],
    gram: &'a mut Symmetric,
    cross: &'a mut Dense,
}

impl WithSimd for AddToSums<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self { rho, p, q, gram, cross } = self;
        gram.rank_one(simd, rho, 1.0, p);
        for (j, &qj) in q.iter().enumerate() {
            scaled_axpy(simd, rho, qj, p, cross.col_mut(j));
        }
    }
}

/// out = K_base^T p for the leading columns of K, at the best SIMD width.
struct PredictBase<'a> {
    columns: &'a [f64],
    p: &'a [f64],
    out: &'a mut [f64],
}

impl WithSimd for PredictBase<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        transposed_matvec(simd, self.columns, self.p, 1.0, 0.0, self.out);
    }
}

/// How pairs reach the matrices, with the data of its own that the strategy keeps.
#[derive(Debug, Clone)]
enum Strategy {
    /// Every pair at once, as a rank-one update.
    Immediate,
    /// Pairs deferred in blocks; invariant: the block is empty whenever the model is
    /// unsolved. (Boxed: the block's buffers would make every strategy as large.)
    Deferred(Box<Pending>),
    /// The last w pairs only.
    Windowed(Window),
}

impl Strategy {
    fn new(n_lifted: usize, n_regressor: usize, window: Option<usize>) -> Self {
        match (window, block_size(n_regressor)) {
            (Some(w), _) => Self::Windowed(Window::new(n_lifted, n_regressor, w)),
            (None, Some(block)) => Self::Deferred(Box::new(Pending::new(n_lifted, n_regressor, block))),
            (None, None) => Self::Immediate,
        }
    }

    /// The strategy `new` chooses, holding an exported state's window or pending pairs
    /// (states written before deferral existed hold none: an empty block).
    fn restore(
        window_state: Option<WindowState>,
        pending_state: Option<PendingState>,
        n_lifted: usize,
        n_regressor: usize,
        window: Option<usize>,
    ) -> Result<Self, StateError> {
        let window = match (window, window_state) {
            (Some(w), Some(state)) => Some(Window::restore(state, n_lifted, n_regressor, w)?),
            (None, None) => None,
            _ => return Err(StateError::Shape("window")),
        };
        Ok(match (window, block_size(n_regressor), pending_state) {
            (Some(window), _, None) => Self::Windowed(window),
            (None, Some(block), Some(state)) => {
                Self::Deferred(Box::new(Pending::restore(state, n_lifted, n_regressor, block)?))
            }
            (None, Some(block), None) => Self::Deferred(Box::new(Pending::new(n_lifted, n_regressor, block))),
            (None, None, None) => Self::Immediate,
            (_, _, Some(_)) => return Err(StateError::Shape("pending pairs")),
        })
    }
}

/// Whether a pair may move the solution or only the sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The strategy's recursive update (the sums alone while the model is unsolved).
    Recursive,
    /// Only the sums (the warm-up pairs, replayed before their batch solve).
    SumsOnly,
}

/// What one pair did to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PairEffect {
    /// The recursive update ran; [`Recursion::last_residual`] holds the a-priori residual
    /// q - K^T p.
    Updated,
    /// Only the sums were updated (no solution yet, or during warm-up replay).
    SumsOnly,
}

/// Preallocated work vectors, so a pair never allocates.
#[derive(Debug, Clone)]
struct Scratch {
    h: Vec<f64>,
    h_old: Vec<f64>,
    residual: Vec<f64>,
}

impl Scratch {
    fn new(n_lifted: usize, n_regressor: usize) -> Self {
        Self { h: vec![0.0; n_regressor], h_old: vec![0.0; n_regressor], residual: vec![0.0; n_lifted] }
    }
}

/// The recursion of one estimator.
#[derive(Debug, Clone)]
pub(crate) struct Recursion {
    rho: f64,
    refactor_every: usize,
    matrices: Matrices,
    /// Whether P and K hold a solution.
    solved: bool,
    strategy: Strategy,
    scratch: Scratch,
    since_refactor: usize,
    /// Pairs until the next attempt to solve an unsolved model.
    retry_in: usize,
    pub(crate) pairs: u64,
    pub(crate) refactorisations: u64,
    pub(crate) health_failures: u64,
}

impl Recursion {
    /// G = mu I, R = 0; solved at once (P = I / mu, K = 0) when mu > 0.
    pub(crate) fn new(
        n_lifted: usize,
        n_regressor: usize,
        mu: f64,
        rho: f64,
        window: Option<usize>,
        refactor_every: usize,
    ) -> Self {
        Self {
            rho,
            refactor_every,
            matrices: Matrices::new(n_lifted, n_regressor, mu),
            solved: mu > 0.0,
            strategy: Strategy::new(n_lifted, n_regressor, window),
            scratch: Scratch::new(n_lifted, n_regressor),
            since_refactor: 0,
            retry_in: n_regressor.max(16),
            pairs: 0,
            refactorisations: 0,
            health_failures: 0,
        }
    }

    /// The recursion of the given sizes and configuration that an exported state
    /// describes, built from it directly, its shapes checked.
    pub(crate) fn restore(
        state: RecursionState,
        n_lifted: usize,
        n_regressor: usize,
        rho: f64,
        window: Option<usize>,
        refactor_every: usize,
    ) -> Result<Self, StateError> {
        let RecursionState {
            gram,
            cross,
            p,
            k,
            solved,
            window: window_state,
            pending,
            since_refactor,
            retry_in,
            pairs,
            refactorisations,
            health_failures,
        } = state;
        let strategy = Strategy::restore(window_state, pending, n_lifted, n_regressor, window)?;
        Ok(Self {
            rho,
            refactor_every,
            matrices: Matrices::restore([gram, cross, p, k], n_lifted, n_regressor)?,
            solved,
            strategy,
            scratch: Scratch::new(n_lifted, n_regressor),
            since_refactor,
            retry_in,
            pairs,
            refactorisations,
            health_failures,
        })
    }

    /// A plain copy of everything that determines the future of this recursion.
    pub(crate) fn export(&self) -> RecursionState {
        let m = &self.matrices;
        RecursionState {
            gram: m.gram.entries().to_vec(),
            cross: m.cross.entries().to_vec(),
            p: m.inverse.entries().to_vec(),
            k: m.operator.entries().to_vec(),
            solved: self.solved,
            window: match &self.strategy {
                Strategy::Windowed(window) => Some(window.export()),
                _ => None,
            },
            pending: match &self.strategy {
                Strategy::Deferred(pending) => Some(pending.export()),
                _ => None,
            },
            since_refactor: self.since_refactor,
            retry_in: self.retry_in,
            pairs: self.pairs,
            refactorisations: self.refactorisations,
            health_failures: self.health_failures,
        }
    }

    pub(crate) fn is_solved(&self) -> bool {
        self.solved
    }

    /// K with every pair applied (a copy).
    pub(crate) fn operator(&self) -> Mat<f64> {
        match &self.strategy {
            Strategy::Deferred(pending) => pending.operator_now(&self.matrices.operator),
            _ => self.matrices.operator.as_faer().to_owned(),
        }
    }

    /// P with every pair applied (a full symmetric copy).
    pub(crate) fn inverse(&self) -> Mat<f64> {
        match &self.strategy {
            Strategy::Deferred(pending) => pending.inverse_now(&self.matrices.inverse).to_full(),
            _ => self.matrices.inverse.to_full(),
        }
    }

    /// G (a full symmetric copy) and R with every pair applied.
    pub(crate) fn sums(&self) -> (Mat<f64>, Mat<f64>) {
        let m = &self.matrices;
        match &self.strategy {
            Strategy::Deferred(pending) => {
                let (gram, cross) = pending.sums_now(self.rho, &m.gram, &m.cross);
                (gram.to_full(), cross.as_faer().to_owned())
            }
            _ => (m.gram.to_full(), m.cross.as_faer().to_owned()),
        }
    }

    /// The first out.len() entries of the current model's prediction K^T p of a pair's
    /// target, with every pair applied (the deferred ones as corrections, without a flush),
    /// so that reading it changes nothing. O(N' out.len()), no allocation.
    pub(crate) fn predict_into(&self, p: &[f64], out: &mut [f64]) {
        let rows = self.matrices.operator.rows();
        debug_assert!(p.len() == rows && out.len() <= self.matrices.operator.cols());
        let columns = &self.matrices.operator.entries()[..rows * out.len()];
        Arch::new().dispatch(PredictBase { columns, p, out: &mut *out });
        if let Strategy::Deferred(pending) = &self.strategy {
            pending.correct_prediction(p, out);
        }
    }

    /// The a-priori residual of the last [`PairEffect::Updated`] pair.
    pub(crate) fn last_residual(&self) -> &[f64] {
        &self.scratch.residual
    }

    /// Pairs currently weighing on the model (the window length when windowed).
    pub(crate) fn pairs_in_model(&self) -> u64 {
        match &self.strategy {
            Strategy::Windowed(window) => window.len() as u64,
            _ => self.pairs,
        }
    }

    /// Adds one pair (p, q) by the strategy (with [`Mode::SumsOnly`], or while the model is
    /// unsolved, to the sums only), then refactorises when due or when a health check
    /// failed, and retries an unsolved model now and then.
    pub(crate) fn update(&mut self, p: &[f64], q: &[f64], mode: Mode) -> PairEffect {
        self.pairs += 1;
        let recursive = mode == Mode::Recursive && self.solved;
        let healthy = self.step(p, q, recursive);
        if recursive {
            self.since_refactor += 1;
            if !healthy {
                self.health_failures += 1;
            }
            if !healthy || self.since_refactor >= self.refactor_every {
                // A failed refactorisation leaves the model unsolved until the data allow it.
                let _ = self.refactorise();
            }
            PairEffect::Updated
        } else {
            if !self.solved {
                self.retry_in = self.retry_in.saturating_sub(1);
                if self.retry_in == 0 {
                    self.retry_in = self.matrices.gram.order().max(16);
                    let _ = self.refactorise();
                }
            }
            PairEffect::SumsOnly
        }
    }

    /// One pair through the strategy; false when a recursive step failed a health check.
    fn step(&mut self, p: &[f64], q: &[f64], recursive: bool) -> bool {
        let Self { rho, matrices, strategy, scratch, .. } = self;
        let rho = *rho;
        match strategy {
            Strategy::Immediate => rank_one(rho, matrices, scratch, p, q, recursive),
            Strategy::Deferred(pending) if recursive => {
                let (h, residual) = (&mut scratch.h, &mut scratch.residual);
                let (inverse, operator) = (&matrices.inverse, &matrices.operator);
                match (DeferredPair { p, q, rho, inverse, operator, pending, h, residual }).apply() {
                    PairUpdate::Applied { healthy } => {
                        if pending.is_full() {
                            pending.flush(rho, matrices);
                        }
                        healthy
                    }
                    PairUpdate::Rejected => {
                        pending.flush(rho, matrices);
                        matrices.add_to_sums(rho, p, q);
                        false
                    }
                }
            }
            Strategy::Deferred(pending) => {
                pending.flush(rho, matrices);
                matrices.add_to_sums(rho, p, q);
                true
            }
            Strategy::Windowed(window) => {
                let healthy = match window.oldest() {
                    Some((p_old, q_old)) => RankTwoPair {
                        p,
                        q,
                        p_old,
                        q_old,
                        recursive,
                        matrices,
                        h: &mut scratch.h,
                        h_old: &mut scratch.h_old,
                        residual: &mut scratch.residual,
                    }
                    .apply(),
                    None => rank_one(rho, matrices, scratch, p, q, recursive),
                };
                window.record(p, q);
                healthy
            }
        }
    }

    /// Exact solve from the sums: Cholesky of G, P = G^-1, K = G^-1 R.
    pub(crate) fn refactorise(&mut self) -> Result<(), NumericalError> {
        if let Strategy::Deferred(pending) = &mut self.strategy {
            pending.flush(self.rho, &mut self.matrices);
        }
        self.since_refactor = 0;
        self.refactorisations += 1;
        let m = &mut self.matrices;
        let finite = m.gram.is_finite() && m.cross.all_finite();
        let llt = match finite.then(|| m.gram.lower().llt(Side::Lower)) {
            Some(Ok(llt)) => llt,
            _ => {
                self.solved = false;
                return Err(NumericalError::NotPositiveDefinite);
            }
        };
        let inverse = llt.inverse();
        let k = llt.solve(m.cross.as_faer());
        if !(k.col_iter().all(|c| c.iter().all(|v| v.is_finite()))) {
            self.solved = false;
            return Err(NumericalError::NotPositiveDefinite);
        }
        m.inverse.assign(inverse.as_ref());
        m.operator.copy_from_faer(k.as_ref());
        self.solved = true;
        Ok(())
    }
}

/// The rank-one step of the immediate strategy (and of a window that is filling); a pair
/// the update rejects, or one that is not recursive, moves the sums only.
fn rank_one(rho: f64, matrices: &mut Matrices, scratch: &mut Scratch, p: &[f64], q: &[f64], recursive: bool) -> bool {
    if !recursive {
        matrices.add_to_sums(rho, p, q);
        return true;
    }
    let (h, residual) = (&mut scratch.h, &mut scratch.residual);
    match (RankOnePair { p, q, rho, matrices: &mut *matrices, h, residual }).apply() {
        PairUpdate::Applied { healthy } => healthy,
        PairUpdate::Rejected => {
            matrices.add_to_sums(rho, p, q);
            false
        }
    }
}

#[cfg(test)]
#[path = "recursion_tests.rs"]
mod tests;
