//! The numerical core: running sums G and R, the inverse P = G^{-1} and the operator
//! K = P R, kept up to date by rank-one (or, with a sliding window, rank-two) updates and
//! refactorised exactly from the sums on a cadence or when a health check fails.
//!
//! Invariant: after every call, `gram` and `cross` hold exactly the sums the batch problem
//! is built from (ridge included), and `k` is their solution up to rounding.

use faer::Side;
use faer::linalg::solvers::{DenseSolveCore, Solve};

use crate::deferred::{DeferredPair, Pending, block_size};
use crate::error::NumericalError;
use crate::fused::{EXACT_MAX, PairUpdate, RankOnePair};
use crate::kernels::{self, Dense};

/// The last w pairs, for removing the oldest exactly.
#[derive(Debug, Clone)]
struct Window {
    regressors: Dense,
    targets: Dense,
    next: usize,
    len: usize,
}

/// What one pair did to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PairEffect {
    /// The recursive update ran; `scratch_residual` holds the a-priori residual q - K^T p.
    Updated,
    /// Only the sums were updated (no solution yet, or during warm-up replay).
    SumsOnly,
}

/// Preallocated work vectors, so a pair never allocates.
#[derive(Debug, Clone)]
struct Scratch {
    h: Vec<f64>,
    h_old: Vec<f64>,
    p_old: Vec<f64>,
    q_old: Vec<f64>,
    residual: Vec<f64>,
    residual_old: Vec<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Recursion {
    rho: f64,
    refactor_every: usize,
    gram: Dense,
    cross: Dense,
    p: Dense,
    k: Dense,
    solved: bool,
    window: Option<Window>,
    /// Deferred pairs (large models without a window; see `deferred`). Invariant: empty
    /// whenever the model is unsolved.
    pending: Option<Pending>,
    scratch: Scratch,
    since_refactor: usize,
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
        let solved = mu > 0.0;
        Self {
            rho,
            refactor_every,
            gram: Dense::scaled_identity(n_regressor, mu),
            cross: Dense::zeros(n_regressor, n_lifted),
            p: Dense::scaled_identity(n_regressor, if solved { 1.0 / mu } else { 0.0 }),
            k: Dense::zeros(n_regressor, n_lifted),
            solved,
            window: window.map(|w| Window {
                regressors: Dense::zeros(n_regressor, w),
                targets: Dense::zeros(n_lifted, w),
                next: 0,
                len: 0,
            }),
            pending: window
                .is_none()
                .then(|| block_size(n_regressor))
                .flatten()
                .map(|block| Pending::new(n_lifted, n_regressor, block)),
            scratch: Scratch {
                h: vec![0.0; n_regressor],
                h_old: vec![0.0; n_regressor],
                p_old: vec![0.0; n_regressor],
                q_old: vec![0.0; n_lifted],
                residual: vec![0.0; n_lifted],
                residual_old: vec![0.0; n_lifted],
            },
            since_refactor: 0,
            retry_in: n_regressor.max(16),
            pairs: 0,
            refactorisations: 0,
            health_failures: 0,
        }
    }

    pub(crate) fn is_solved(&self) -> bool {
        self.solved
    }

    /// K with every pair applied (a copy).
    pub(crate) fn operator(&self) -> faer::Mat<f64> {
        match &self.pending {
            Some(pending) => pending.operator_now(&self.k),
            None => self.k.as_faer().to_owned(),
        }
    }

    /// P (lower triangle meaningful) with every pair applied (a copy).
    pub(crate) fn inverse_lower(&self) -> Dense {
        match &self.pending {
            Some(pending) => pending.inverse_now(&self.p),
            None => self.p.clone(),
        }
    }

    /// G (lower triangle meaningful) and R with every pair applied (copies).
    pub(crate) fn sums(&self) -> (Dense, Dense) {
        let (mut gram, mut cross) = (self.gram.clone(), self.cross.clone());
        if let Some(pending) = &self.pending {
            let (mut p, mut k) = (self.p.clone(), self.k.clone());
            pending.clone().flush(self.rho, &mut p, &mut k, &mut gram, &mut cross);
        }
        (gram, cross)
    }

    /// Applies the deferred pairs to the matrices.
    fn flush(&mut self) {
        if let Some(pending) = self.pending.as_mut() {
            pending.flush(self.rho, &mut self.p, &mut self.k, &mut self.gram, &mut self.cross);
        }
    }

    /// The a-priori residual of the last [`PairEffect::Updated`] pair.
    pub(crate) fn last_residual(&self) -> &[f64] {
        &self.scratch.residual
    }

    /// Pairs currently weighing on the model (the window length when windowed).
    pub(crate) fn pairs_in_model(&self) -> u64 {
        match &self.window {
            Some(w) => w.len as u64,
            None => self.pairs,
        }
    }

    /// Adds one pair. With `recursive == false` only the sums move (batch initialisation).
    pub(crate) fn add_pair(&mut self, p: &[f64], q: &[f64], recursive: bool) -> PairEffect {
        self.pairs += 1;
        let recursive = recursive && self.solved;
        let mut healthy = true;
        let evicted = match self.window.as_mut() {
            Some(w) => {
                let slot = w.next;
                let full = w.len == w.regressors.cols();
                if full {
                    self.scratch.p_old.copy_from_slice(w.regressors.col(slot));
                    self.scratch.q_old.copy_from_slice(w.targets.col(slot));
                } else {
                    w.len += 1;
                }
                w.regressors.col_mut(slot).copy_from_slice(p);
                w.targets.col_mut(slot).copy_from_slice(q);
                w.next = (slot + 1) % w.regressors.cols();
                full
            }
            None => false,
        };
        if evicted {
            if recursive {
                healthy = self.rank_two(p, q);
                self.mirror_inverse();
            }
            let s = &self.scratch;
            kernels::sym_lower_rank2(&mut self.gram, &s.p_old, p, [[-1.0, 0.0], [0.0, 1.0]]);
            kernels::rank1(&mut self.cross, -1.0, &s.p_old, &s.q_old, 1.0);
            kernels::rank1(&mut self.cross, 1.0, p, q, 1.0);
        } else if let (true, Some(pending)) = (recursive, self.pending.as_mut()) {
            let s = &mut self.scratch;
            let update = DeferredPair {
                p,
                q,
                rho: self.rho,
                inverse: &self.p,
                operator: &self.k,
                pending,
                h: &mut s.h,
                residual: &mut s.residual,
            }
            .apply();
            healthy = update == PairUpdate::Applied { healthy: true };
            if update == PairUpdate::Rejected {
                self.flush();
                self.add_to_sums(p, q);
            } else if pending.is_full() {
                self.flush();
            }
        } else if recursive {
            let s = &mut self.scratch;
            let update = RankOnePair {
                p,
                q,
                rho: self.rho,
                inverse: &mut self.p,
                operator: &mut self.k,
                gram: &mut self.gram,
                cross: &mut self.cross,
                h: &mut s.h,
                residual: &mut s.residual,
            }
            .apply();
            healthy = update == PairUpdate::Applied { healthy: true };
            if update == PairUpdate::Rejected {
                self.add_to_sums(p, q);
            }
        } else {
            self.flush();
            self.add_to_sums(p, q);
        }
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
                    self.retry_in = self.gram.rows().max(16);
                    let _ = self.refactorise();
                }
            }
            PairEffect::SumsOnly
        }
    }

    /// G <- rho (G + p p^T), R <- rho (R + p q^T) (the fused update does this itself).
    fn add_to_sums(&mut self, p: &[f64], q: &[f64]) {
        kernels::sym_lower_rank1(&mut self.gram, 1.0, p, self.rho);
        kernels::rank1(&mut self.cross, 1.0, p, q, self.rho);
    }

    /// Adds (p, q) and removes the evicted pair held in the scratch in one Woodbury step
    /// with U = [p_old, p], C = diag(-1, +1): S = C^-1 + U^T P U, K += P U S^-1 (Q - U^T K),
    /// P -= P U S^-1 U^T P.
    fn rank_two(&mut self, p: &[f64], q: &[f64]) -> bool {
        let s = &mut self.scratch;
        kernels::sym_lower_matvec(&self.p, &s.p_old, &mut s.h_old);
        kernels::sym_lower_matvec(&self.p, p, &mut s.h);
        let s00 = -1.0 + kernels::dot(&s.p_old, &s.h_old);
        let s01 = kernels::dot(&s.p_old, &s.h);
        let s11 = 1.0 + kernels::dot(p, &s.h);
        let det = s00 * s11 - s01 * s01;
        // det(S) = -det(G_new) / det(G) < 0 whenever both Gram matrices are positive definite.
        if !(det.is_finite() && det < 0.0) {
            return false;
        }
        let (c00, c01, c11) = (s11 / det, -s01 / det, s00 / det);
        kernels::transposed_matvec(&self.k, &s.p_old, &mut s.residual_old);
        for (e, qi) in s.residual_old.iter_mut().zip(&s.q_old) {
            *e = qi - *e;
        }
        kernels::transposed_matvec(&self.k, p, &mut s.residual);
        for (e, qi) in s.residual.iter_mut().zip(q) {
            *e = qi - *e;
        }
        for (j, (&eo, &en)) in s.residual_old.iter().zip(&s.residual).enumerate() {
            let a_old = c00 * eo + c01 * en;
            let a_new = c01 * eo + c11 * en;
            let col = self.k.col_mut(j);
            for ((kv, ho), hn) in col.iter_mut().zip(&s.h_old).zip(&s.h) {
                *kv += a_old * ho + a_new * hn;
            }
        }
        kernels::sym_lower_rank2(&mut self.p, &s.h_old, &s.h, [[-c00, -c01], [-c01, -c11]]);
        s.residual.iter().all(|e| e.is_finite())
    }

    /// A plain copy of everything that determines the future of this recursion.
    pub(crate) fn export(&self) -> crate::state::RecursionState {
        crate::state::RecursionState {
            gram: self.gram.entries().to_vec(),
            cross: self.cross.entries().to_vec(),
            p: self.p.entries().to_vec(),
            k: self.k.entries().to_vec(),
            solved: self.solved,
            window: self.window.as_ref().map(|w| crate::state::WindowState {
                regressors: w.regressors.entries().to_vec(),
                targets: w.targets.entries().to_vec(),
                next: w.next,
                len: w.len,
            }),
            pending: self.pending.as_ref().map(Pending::export),
            since_refactor: self.since_refactor,
            retry_in: self.retry_in,
            pairs: self.pairs,
            refactorisations: self.refactorisations,
            health_failures: self.health_failures,
        }
    }

    /// Rebuilds a recursion of the given sizes from an exported state.
    pub(crate) fn restore(
        state: crate::state::RecursionState,
        n_lifted: usize,
        n_regressor: usize,
        rho: f64,
        window: Option<usize>,
        refactor_every: usize,
    ) -> Result<Self, crate::error::StateError> {
        use crate::error::StateError;
        let square = |name: &'static str, data: Vec<f64>| {
            Dense::from_column_major(n_regressor, n_regressor, data).ok_or(StateError::Shape(name))
        };
        let tall = |name: &'static str, data: Vec<f64>| {
            Dense::from_column_major(n_regressor, n_lifted, data).ok_or(StateError::Shape(name))
        };
        let window = match (window, state.window) {
            (None, None) => None,
            (Some(w), Some(ws)) if ws.next < w && ws.len <= w => Some(Window {
                regressors: Dense::from_column_major(n_regressor, w, ws.regressors)
                    .ok_or(StateError::Shape("window regressors"))?,
                targets: Dense::from_column_major(n_lifted, w, ws.targets)
                    .ok_or(StateError::Shape("window targets"))?,
                next: ws.next,
                len: ws.len,
            }),
            _ => return Err(StateError::Shape("window")),
        };
        let mut fresh =
            Self::new(n_lifted, n_regressor, 1.0, rho, window.as_ref().map(|w| w.regressors.cols()), refactor_every);
        fresh.pending = match (fresh.pending, state.pending) {
            (Some(empty), None) => Some(empty),
            (Some(empty), Some(pending)) => Some(Pending::restore(pending, n_lifted, n_regressor, empty.block())?),
            (None, None) => None,
            (None, Some(_)) => return Err(StateError::Shape("pending pairs")),
        };
        fresh.gram = square("gram", state.gram)?;
        fresh.cross = tall("cross", state.cross)?;
        fresh.p = square("p", state.p)?;
        // States saved before small models kept P in full hold only its lower triangle.
        fresh.mirror_inverse();
        fresh.k = tall("k", state.k)?;
        fresh.solved = state.solved;
        fresh.window = window;
        fresh.since_refactor = state.since_refactor;
        fresh.retry_in = state.retry_in;
        fresh.pairs = state.pairs;
        fresh.refactorisations = state.refactorisations;
        fresh.health_failures = state.health_failures;
        Ok(fresh)
    }

    /// Copies P's lower triangle onto its upper one where the exact-size update reads P
    /// in full (at most [`EXACT_MAX`] regressors); other sizes read only the lower one.
    fn mirror_inverse(&mut self) {
        let n = self.p.rows();
        if n > EXACT_MAX {
            return;
        }
        for j in 0..n {
            for i in j + 1..n {
                let value = self.p.get(i, j);
                self.p.col_mut(i)[j] = value;
            }
        }
    }

    /// Exact solve from the sums: Cholesky of G, P = G^-1, K = G^-1 R.
    pub(crate) fn refactorise(&mut self) -> Result<(), NumericalError> {
        self.flush();
        self.since_refactor = 0;
        self.refactorisations += 1;
        let finite = self.gram.all_finite() && self.cross.all_finite();
        let llt = match finite.then(|| self.gram.as_faer().llt(Side::Lower)) {
            Some(Ok(llt)) => llt,
            _ => {
                self.solved = false;
                return Err(NumericalError::NotPositiveDefinite);
            }
        };
        let inverse = llt.inverse();
        let k = llt.solve(self.cross.as_faer());
        if !(k.col_iter().all(|c| c.iter().all(|v| v.is_finite()))) {
            self.solved = false;
            return Err(NumericalError::NotPositiveDefinite);
        }
        self.p.copy_from_faer(inverse.as_ref());
        self.mirror_inverse();
        self.k.copy_from_faer(k.as_ref());
        self.solved = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(k: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
        let p = (0..n).map(|i| ((k * 31 + i * 7) as f64 * 0.013).sin() + if i == k % n { 1.0 } else { 0.0 }).collect();
        let q = (0..n).map(|i| ((k * 17 + i * 5) as f64 * 0.021).cos()).collect();
        (p, q)
    }

    fn run(recursion: &mut Recursion, pairs: std::ops::Range<usize>, n: usize) {
        for k in pairs {
            let (p, q) = pair(k, n);
            assert_eq!(recursion.add_pair(&p, &q, true), PairEffect::Updated);
        }
    }

    fn max_relative(a: faer::MatRef<'_, f64>, b: faer::MatRef<'_, f64>) -> f64 {
        (a - b).norm_max() / b.norm_max()
    }

    /// Deferred pairs give the same P, K, G and R as immediate rank-one updates, with and
    /// without forgetting, at block boundaries and in between.
    #[test]
    fn deferred_updates_equal_immediate_ones() {
        let n = 40;
        for rho in [1.0, 0.995] {
            // Block of 10 at N' = 40: inside the first block, at and across its end, many blocks.
            for pairs in [1, 9, 10, 11, 100] {
                let mut deferred = Recursion::new(n, n, 0.5, rho, None, 10_000);
                let mut immediate = deferred.clone();
                assert!(deferred.pending.is_some());
                immediate.pending = None;
                run(&mut deferred, 0..pairs, n);
                run(&mut immediate, 0..pairs, n);
                let tolerance = 1e-12;
                assert!(max_relative(deferred.operator().as_ref(), immediate.operator().as_ref()) < tolerance);
                let (p_d, p_i) = (deferred.inverse_lower().symmetric_from_lower(), immediate.p.symmetric_from_lower());
                assert!(max_relative(p_d.as_ref(), p_i.as_ref()) < tolerance, "P, rho {rho}, {pairs} pairs");
                let ((g_d, r_d), (g_i, r_i)) = (deferred.sums(), immediate.sums());
                let (g_d, g_i) = (g_d.symmetric_from_lower(), g_i.symmetric_from_lower());
                assert!(max_relative(g_d.as_ref(), g_i.as_ref()) < tolerance, "G, rho {rho}, {pairs} pairs");
                assert!(max_relative(r_d.as_faer(), r_i.as_faer()) < tolerance, "R, rho {rho}, {pairs} pairs");
            }
        }
    }

    fn exactly_symmetric(m: &Dense) -> bool {
        (0..m.rows()).all(|j| (0..j).all(|i| m.get(i, j).to_bits() == m.get(j, i).to_bits()))
    }

    /// At the exact sizes the update reads P in full, so every writer keeps it exactly
    /// symmetric: the update itself, the window's rank-two step, refactorisation and restore
    /// (from a state whose upper triangle is stale, as older snapshots hold). And the result
    /// still matches a model that never relied on the upper triangle: one above the size
    /// limit would read only the lower one, so here the same pairs at N' = 24 (with a zero
    /// regressor appended, which changes no prediction) give the same K to rounding.
    #[test]
    fn small_models_keep_their_inverse_exactly_symmetric() {
        for window in [None, Some(12)] {
            let n = 7;
            let mut r = Recursion::new(n, n, 0.5, 1.0, window, 25);
            for k in 0..60 {
                let (p, q) = pair(k, n);
                r.add_pair(&p, &q, true);
                assert!(exactly_symmetric(&r.p), "after pair {k}, window {window:?}");
            }
            assert!(r.refactorisations >= 2, "refactorisations were crossed");
            let mut state = r.export();
            // Spoil the upper triangle, as a snapshot of an older version could hold it.
            for j in 1..n {
                for i in 0..j {
                    state.p[j * n + i] = 0.0;
                }
            }
            let mut restored = Recursion::restore(state, n, n, 1.0, window, 25).unwrap();
            assert!(exactly_symmetric(&restored.p));
            assert_eq!(restored.export(), r.export());
            let (p, q) = pair(60, n);
            assert_eq!(restored.add_pair(&p, &q, true), r.add_pair(&p, &q, true));
            assert_eq!(restored.export(), r.export(), "a restored small model continues bit for bit");
        }
        // The general (lower-triangle) path on a padded copy of the same problem agrees.
        let (n, padded) = (7, 24);
        let mut small = Recursion::new(n, n, 0.5, 1.0, None, 10_000);
        let mut large = Recursion::new(n, padded, 0.5, 1.0, None, 10_000);
        large.pending = None;
        for k in 0..200 {
            let (p, q) = pair(k, n);
            let mut p_padded = p.clone();
            p_padded.resize(padded, 0.0);
            small.add_pair(&p, &q, true);
            large.add_pair(&p_padded, &q, true);
        }
        let (k_small, k_large) = (small.operator(), large.operator());
        let k_large = k_large.as_ref().subrows(0, n);
        assert!(max_relative(k_small.as_ref(), k_large) < 1e-12);
    }

    /// Exported in the middle of a block and restored, a recursion continues bit for bit.
    #[test]
    fn a_restored_block_continues_bit_for_bit() {
        let n = 30;
        let mut original = Recursion::new(n, n, 0.5, 0.99, None, 50);
        run(&mut original, 0..45, n);
        let pending = original.pending.as_ref().unwrap();
        assert_eq!(pending.count, 45 % pending.block());
        assert!(pending.count > 0, "the export must fall inside a block");
        let mut restored = Recursion::restore(original.export(), n, n, 0.99, None, 50).unwrap();
        run(&mut original, 45..120, n);
        run(&mut restored, 45..120, n);
        assert_eq!(original.export(), restored.export());
    }
}
