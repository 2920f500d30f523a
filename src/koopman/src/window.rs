//! The windowed strategy: the last w pairs, kept so that the oldest can be removed exactly,
//! and the step that adds a pair and removes the oldest in one rank-two (Woodbury) update.
//! While the window fills, pairs take the immediate rank-one step instead.
//!
//! The step runs on the same SIMD kernels as the rank-one one and sweeps K and R once:
//! column j of both residuals needs only column j of K, so each column is read for its
//! residuals and updated while it is still in L1, together with the same column of R.

use pulp::{Arch, Simd, WithSimd};

use crate::dense::Dense;
use crate::error::StateError;
use crate::recursion::Matrices;
use crate::simd::{axpy2, dot};
use crate::state::WindowState;

/// The last w pairs, a ring: `next` is the slot the next pair is written to (the oldest
/// pair's, once the window is full).
#[derive(Debug, Clone)]
pub(crate) struct Window {
    regressors: Dense,
    targets: Dense,
    next: usize,
    len: usize,
}

impl Window {
    pub(crate) fn new(n_lifted: usize, n_regressor: usize, w: usize) -> Self {
        Self { regressors: Dense::zeros(n_regressor, w), targets: Dense::zeros(n_lifted, w), next: 0, len: 0 }
    }

    /// A window of w pairs holding an exported state's pairs.
    pub(crate) fn restore(
        state: WindowState,
        n_lifted: usize,
        n_regressor: usize,
        w: usize,
    ) -> Result<Self, StateError> {
        if !(state.next < w && state.len <= w) {
            return Err(StateError::Shape("window"));
        }
        Ok(Self {
            regressors: Dense::from_column_major(n_regressor, w, state.regressors)
                .ok_or(StateError::Shape("window regressors"))?,
            targets: Dense::from_column_major(n_lifted, w, state.targets).ok_or(StateError::Shape("window targets"))?,
            next: state.next,
            len: state.len,
        })
    }

    pub(crate) fn export(&self) -> WindowState {
        WindowState {
            regressors: self.regressors.entries().to_vec(),
            targets: self.targets.entries().to_vec(),
            next: self.next,
            len: self.len,
        }
    }

    /// Pairs held.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The pair the next one replaces, once the window is full.
    pub(crate) fn oldest(&self) -> Option<(&[f64], &[f64])> {
        (self.len == self.regressors.cols()).then(|| (self.regressors.col(self.next), self.targets.col(self.next)))
    }

    /// Stores a pair, in place of the oldest once the window is full.
    pub(crate) fn record(&mut self, p: &[f64], q: &[f64]) {
        let slot = self.next;
        self.regressors.col_mut(slot).copy_from_slice(p);
        self.targets.col_mut(slot).copy_from_slice(q);
        self.next = (slot + 1) % self.regressors.cols();
        self.len = (self.len + 1).min(self.regressors.cols());
    }
}

/// Adds (p, q) and removes (p_old, q_old) in one Woodbury step with U = [p_old, p] and
/// C = diag(-1, +1): S = C^-1 + U^T P U, K += P U S^-1 (Q - U^T K), P -= P U S^-1 U^T P;
/// and G += U C U^T, R += U C Q^T. With `recursive` false only the sums move.
pub(crate) struct RankTwoPair<'a> {
    pub(crate) p: &'a [f64],
    pub(crate) q: &'a [f64],
    pub(crate) p_old: &'a [f64],
    pub(crate) q_old: &'a [f64],
    pub(crate) recursive: bool,
    pub(crate) matrices: &'a mut Matrices,
    /// P p and P p_old.
    pub(crate) h: &'a mut [f64],
    pub(crate) h_old: &'a mut [f64],
    /// The a-priori residual of the new pair, q - K^T p.
    pub(crate) residual: &'a mut [f64],
}

impl RankTwoPair<'_> {
    /// Runs the step; false when a recursive step failed its health check (det S, which
    /// must be negative, or a residual that is not finite). A failed check on det S
    /// leaves P, K and the residual untouched; the sums always move.
    pub(crate) fn apply(self) -> bool {
        Arch::new().dispatch(self)
    }
}

impl WithSimd for RankTwoPair<'_> {
    type Output = bool;

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> bool {
        let Self { p, q, p_old, q_old, recursive, matrices, h, h_old, residual } = self;
        let Matrices { gram, cross, inverse, operator } = matrices;
        let n = p.len();
        // S^-1 = [[c00, c01], [c01, c11]], when the step is recursive and S is as it must be.
        let inverse_s = recursive
            .then(|| {
                inverse.mul_vec(simd, p_old, h_old);
                inverse.mul_vec(simd, p, h);
                let s00 = -1.0 + dot(simd, p_old, h_old);
                let s01 = dot(simd, p_old, h);
                let s11 = 1.0 + dot(simd, p, h);
                let det = s00 * s11 - s01 * s01;
                // det(S) = -det(G_new) / det(G) < 0 whenever both Gram matrices are positive
                // definite.
                (det.is_finite() && det < 0.0).then(|| (s11 / det, -s01 / det, s00 / det))
            })
            .flatten();
        let targets = q.len();
        let operator = &mut operator.entries_mut()[..n * targets];
        let cross = &mut cross.entries_mut()[..n * targets];
        let healthy = match inverse_s {
            Some((c00, c01, c11)) => {
                for (j, e) in residual.iter_mut().enumerate() {
                    let k_col = &mut operator[j * n..(j + 1) * n];
                    let e_old = q_old[j] - dot(simd, k_col, p_old);
                    *e = q[j] - dot(simd, k_col, p);
                    axpy2(simd, c00 * e_old + c01 * *e, h_old, c01 * e_old + c11 * *e, h, k_col);
                    axpy2(simd, -q_old[j], p_old, q[j], p, &mut cross[j * n..(j + 1) * n]);
                }
                inverse.rank_two(simd, h_old, h, [[-c00, -c01], [-c01, -c11]]);
                residual.iter().all(|e| e.is_finite())
            }
            None => {
                for j in 0..targets {
                    axpy2(simd, -q_old[j], p_old, q[j], p, &mut cross[j * n..(j + 1) * n]);
                }
                !recursive
            }
        };
        gram.rank_two(simd, p_old, p, [[-1.0, 0.0], [0.0, 1.0]]);
        healthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recursion::Matrices;
    use crate::reference;

    fn vector(n: usize, seed: f64) -> Vec<f64> {
        (0..n).map(|i| (i as f64 * seed + 0.2).sin() + if i % 3 == 0 { 1.0 } else { 0.0 }).collect()
    }

    /// Matrices of a solved problem over a few pairs, the first of which is (p_old, q_old).
    fn solved(n: usize, pairs: &[(Vec<f64>, Vec<f64>)]) -> Matrices {
        let mut gram = faer::Mat::<f64>::identity(n, n) * faer::Scale(0.5);
        let mut cross = faer::Mat::<f64>::zeros(n, n);
        for (p, q) in pairs {
            for j in 0..n {
                for i in 0..n {
                    gram[(i, j)] += p[i] * p[j];
                    cross[(i, j)] += p[i] * q[j];
                }
            }
        }
        let mut m = Matrices::new(n, n, 0.5);
        m.gram.assign(gram.as_ref());
        m.cross.copy_from_faer(cross.as_ref());
        let llt = gram.llt(faer::Side::Lower).unwrap();
        m.inverse.assign(faer::linalg::solvers::DenseSolveCore::inverse(&llt).as_ref());
        m.operator.copy_from_faer(faer::linalg::solvers::Solve::solve(&llt, cross.as_ref()).as_ref());
        m
    }

    fn dense(s: &crate::symmetric::Symmetric) -> Dense {
        Dense::from_column_major(s.order(), s.order(), s.entries().to_vec()).unwrap()
    }

    /// The step equals the plain reference arithmetic to rounding (sizes around the SIMD
    /// widths, mirrored and lower-triangle P), keeps a mirrored P exactly so, and with
    /// `recursive` false moves only the sums.
    #[test]
    fn rank_two_step_matches_the_reference_arithmetic() {
        for n in [1, 2, 3, 5, 8, 13, 23, 24, 37] {
            let pairs: Vec<_> =
                (0..2 * n + 3).map(|k| (vector(n, 0.3 + k as f64), vector(n, 0.7 * k as f64))).collect();
            let (p, q) = (vector(n, 11.1), vector(n, 12.9));
            let (p_old, q_old) = (&pairs[0].0, &pairs[0].1);
            for recursive in [true, false] {
                let mut m = solved(n, &pairs);
                let before = m.clone();
                let (mut h, mut h_old, mut residual) = (vec![0.0; n], vec![0.0; n], vec![7.0; n]);
                let step = RankTwoPair {
                    p: &p,
                    q: &q,
                    p_old,
                    q_old,
                    recursive,
                    matrices: &mut m,
                    h: &mut h,
                    h_old: &mut h_old,
                    residual: &mut residual,
                };
                assert!(step.apply());

                let (mut p_ref, mut k_ref) = (dense(&before.inverse), before.operator.clone());
                let (mut g_ref, mut r_ref) = (dense(&before.gram), before.cross.clone());
                reference::sym_lower_rank2(&mut g_ref, p_old, &p, [[-1.0, 0.0], [0.0, 1.0]]);
                reference::rank1(&mut r_ref, -1.0, p_old, q_old, 1.0);
                reference::rank1(&mut r_ref, 1.0, &p, &q, 1.0);
                let mut e_ref = vec![7.0; n];
                if recursive {
                    let (mut ho, mut hn) = (vec![0.0; n], vec![0.0; n]);
                    reference::sym_lower_matvec(&p_ref, p_old, &mut ho);
                    reference::sym_lower_matvec(&p_ref, &p, &mut hn);
                    let s00 = -1.0 + reference::dot(p_old, &ho);
                    let s01 = reference::dot(p_old, &hn);
                    let s11 = 1.0 + reference::dot(&p, &hn);
                    let det = s00 * s11 - s01 * s01;
                    let (c00, c01, c11) = (s11 / det, -s01 / det, s00 / det);
                    let (mut eo, mut en) = (vec![0.0; n], vec![0.0; n]);
                    reference::transposed_matvec(&k_ref, p_old, &mut eo);
                    reference::transposed_matvec(&k_ref, &p, &mut en);
                    eo.iter_mut().zip(q_old).for_each(|(e, qi)| *e = qi - *e);
                    en.iter_mut().zip(&q).for_each(|(e, qi)| *e = qi - *e);
                    let a_old: Vec<f64> = (0..n).map(|j| c00 * eo[j] + c01 * en[j]).collect();
                    let a_new: Vec<f64> = (0..n).map(|j| c01 * eo[j] + c11 * en[j]).collect();
                    reference::rank1(&mut k_ref, 1.0, &ho, &a_old, 1.0);
                    reference::rank1(&mut k_ref, 1.0, &hn, &a_new, 1.0);
                    reference::sym_lower_rank2(&mut p_ref, &ho, &hn, [[-c00, -c01], [-c01, -c11]]);
                    e_ref = en;
                }

                let close =
                    |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-10 * (1.0 + y.abs()));
                let lower = |a: &Dense, b: &Dense| (0..n).all(|j| close(&a.col(j)[j..], &b.col(j)[j..]));
                let what = format!("n = {n}, recursive {recursive}");
                assert!(close(&residual, &e_ref), "residual, {what}");
                assert!(close(m.operator.entries(), k_ref.entries()), "K, {what}");
                assert!(close(m.cross.entries(), r_ref.entries()), "R, {what}");
                assert!(lower(&dense(&m.inverse), &p_ref), "P, {what}");
                assert!(lower(&dense(&m.gram), &g_ref), "G, {what}");
                if n <= crate::immediate::EXACT_MAX {
                    assert_eq!(m.inverse.to_full().as_ref(), dense(&m.inverse).as_faer(), "P mirrored, {what}");
                }
            }
        }
    }

    /// The ring keeps the last w pairs and names the oldest once full.
    #[test]
    fn the_window_replaces_its_oldest_pair() {
        let mut w = Window::new(1, 2, 3);
        for k in 0..5 {
            let full = k >= 3;
            assert_eq!(w.oldest().is_some(), full);
            if full {
                assert_eq!(w.oldest().unwrap().1, &[(k - 3) as f64]);
            }
            w.record(&[k as f64, 0.0], &[k as f64]);
        }
        assert_eq!(w.len(), 3);
        let restored = Window::restore(w.export(), 1, 2, 3).unwrap();
        assert_eq!(restored.export(), w.export());
        assert_eq!(Window::restore(w.export(), 1, 2, 2).unwrap_err(), StateError::Shape("window"));
        assert_eq!(Window::restore(w.export(), 2, 2, 3).unwrap_err(), StateError::Shape("window targets"));
    }
}
