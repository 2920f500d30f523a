//! The immediate strategy's step: one pair applied at once as a rank-one update in a few
//! fused sweeps, compiled for the best SIMD the CPU has (AVX2 + FMA where present, picked
//! at run time; plain SSE2 otherwise). Small models use it for every pair, windowed ones
//! while their window fills.
//!
//! Why fused: the update is bound by moving the four N' x N' matrices through the cache,
//! not by arithmetic. P is read once for the matrix-vector product and once for its
//! update, and each column of K is read once for its residual and updated while it is
//! still in L1 (together with the same column of R). Why runtime dispatch: the release
//! build targets baseline x86-64 so that the binary runs anywhere, and most of the gain is
//! in the wider registers and fused multiply-adds that baseline lacks. Dispatch happens once
//! per pair, so its cost does not depend on N.

use pulp::{Arch, Simd, WithSimd};

use crate::recursion::Matrices;
use crate::simd::{axpy, dot, scaled_axpy};

/// The largest N' with an update compiled for its exact size. Recursions of at most this
/// many regressors hold P mirrored (the update reads it as a plain square) and sweep whole
/// columns of G (see `Matrices::inverse_storage`).
pub(crate) const EXACT_MAX: usize = 23;

/// One pair (p, q) applied to the recursion: h = P p, gamma = 1 / (1 + p^T h),
/// e = q - K^T p, K += gamma h e^T, P <- (P - gamma h h^T) / rho, G <- rho (G + p p^T),
/// R <- rho (R + p q^T).
pub(crate) struct RankOnePair<'a> {
    pub(crate) p: &'a [f64],
    pub(crate) q: &'a [f64],
    pub(crate) rho: f64,
    pub(crate) matrices: &'a mut Matrices,
    pub(crate) h: &'a mut [f64],
    pub(crate) residual: &'a mut [f64],
}

/// What a recursive step did to the matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PairUpdate {
    /// Everything moved; `healthy` is false when the residual was not finite.
    Applied { healthy: bool },
    /// p^T P p was not a finite non-negative number: only h changed (the caller still owes
    /// the sums their pair).
    Rejected,
}

impl RankOnePair<'_> {
    /// Runs the update.
    pub(crate) fn apply(self) -> PairUpdate {
        Arch::new().dispatch(self)
    }
}

impl WithSimd for RankOnePair<'_> {
    type Output = PairUpdate;

    /// Models with N' up to 23 (those below the deferred strategy's threshold, unless they
    /// use a window) run a copy of the update compiled for their exact N': every slice
    /// length is then a constant, so the compiler unrolls the short loops and drops their
    /// remainder handling, which at N' of a few is most of the work.
    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) -> PairUpdate {
        macro_rules! exact {
            ($($n:literal)*) => {
                match self.p.len() {
                    $($n => self.run::<S, $n>(simd),)*
                    _ => self.run::<S, 0>(simd),
                }
            };
        }
        exact!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23)
    }
}

impl RankOnePair<'_> {
    /// The update for N' = `N` regressors, or any N' when `N` is 0.
    #[inline(always)]
    fn run<S: Simd, const N: usize>(self, simd: S) -> PairUpdate {
        let Self { p, q, rho, matrices, h, residual } = self;
        let Matrices { gram, cross, inverse, operator } = matrices;
        let n = if N == 0 { p.len() } else { N };
        let (p, h) = (&p[..n], &mut h[..n]);
        inverse.mul_vec(simd, p, h);
        let php = dot(simd, p, h);
        if !(php.is_finite() && php >= 0.0) {
            return PairUpdate::Rejected;
        }
        let gamma = 1.0 / (1.0 + php);
        // Column j of K and R at once: the residual needs K_j before its update, and
        // K_j is still in L1 when the update follows.
        let targets = residual.len();
        let operator = &mut operator.entries_mut()[..n * targets];
        let cross = &mut cross.entries_mut()[..n * targets];
        for (j, (e, &qj)) in residual.iter_mut().zip(q).enumerate() {
            let k_col = &mut operator[j * n..(j + 1) * n];
            *e = qj - dot(simd, k_col, p);
            axpy(simd, gamma * *e, h, k_col);
            scaled_axpy(simd, rho, qj, p, &mut cross[j * n..(j + 1) * n]);
        }
        inverse.rank_one(simd, 1.0 / rho, -gamma, h);
        gram.rank_one(simd, rho, 1.0, p);
        PairUpdate::Applied { healthy: residual.iter().all(|e| e.is_finite()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dense::Dense;
    use crate::reference;
    use crate::symmetric::Symmetric;

    /// A symmetric matrix held as the recursion holds P (`inverse`) or G at n regressors,
    /// with NaN wherever nothing may read.
    fn symmetric(n: usize, seed: f64, inverse: bool) -> Symmetric {
        let storage = if inverse { Matrices::inverse_storage(n) } else { Matrices::gram_storage(n) };
        let mut data = vec![f64::NAN; n * n];
        for j in 0..n {
            for i in j..n {
                data[j * n + i] = ((i * 7 + j * 3) as f64 * seed).sin() + if i == j { n as f64 } else { 0.0 };
            }
        }
        Symmetric::from_column_major(n, data, storage).unwrap()
    }

    fn dense(s: &Symmetric) -> Dense {
        Dense::from_column_major(s.order(), s.order(), s.entries().to_vec()).unwrap()
    }

    /// The fused update equals the separate reference kernels to rounding, for sizes
    /// around every SIMD width and remainder, with and without forgetting; at the exact
    /// sizes P stays exactly mirrored.
    #[test]
    fn fused_update_matches_the_separate_kernels() {
        for n in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 24, 33, 64, 67] {
            for rho in [1.0, 0.97] {
                let p: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37 + 0.1).sin()).collect();
                let q: Vec<f64> = (0..n).map(|i| (i as f64 * 0.53 + 0.2).cos()).collect();
                let mut matrices = Matrices {
                    inverse: symmetric(n, 0.11, true),
                    gram: symmetric(n, 0.29, false),
                    operator: Dense::from_column_major(n, n, (0..n * n).map(|i| (i as f64 * 0.07).cos()).collect())
                        .unwrap(),
                    cross: Dense::from_column_major(n, n, (0..n * n).map(|i| (i as f64 * 0.05).sin()).collect())
                        .unwrap(),
                };
                let (mut inv_ref, mut gram_ref) = (dense(&matrices.inverse), dense(&matrices.gram));
                let (mut k_ref, mut cross_ref) = (matrices.operator.clone(), matrices.cross.clone());
                let (mut h, mut residual) = (vec![0.0; n], vec![0.0; n]);
                let ok = RankOnePair { p: &p, q: &q, rho, matrices: &mut matrices, h: &mut h, residual: &mut residual }
                    .apply();
                assert_eq!(ok, PairUpdate::Applied { healthy: true });

                let mut h_ref = vec![0.0; n];
                reference::sym_lower_matvec(&inv_ref, &p, &mut h_ref);
                let gamma = 1.0 / (1.0 + reference::dot(&p, &h_ref));
                let mut e_ref = vec![0.0; n];
                reference::transposed_matvec(&k_ref, &p, &mut e_ref);
                e_ref.iter_mut().zip(&q).for_each(|(e, qi)| *e = qi - *e);
                reference::rank1(&mut k_ref, gamma, &h_ref, &e_ref, 1.0);
                reference::sym_lower_rank1(&mut inv_ref, -gamma, &h_ref, 1.0 / rho);
                reference::sym_lower_rank1(&mut gram_ref, 1.0, &p, rho);
                reference::rank1(&mut cross_ref, 1.0, &p, &q, rho);

                let close =
                    |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()));
                assert!(close(&h, &h_ref), "h, n = {n}");
                assert!(close(&residual, &e_ref), "residual, n = {n}");
                assert!(close(matrices.operator.entries(), k_ref.entries()), "K, n = {n}");
                assert!(close(matrices.cross.entries(), cross_ref.entries()), "R, n = {n}");
                let (inv, gram) = (dense(&matrices.inverse), dense(&matrices.gram));
                for j in 0..n {
                    if n <= EXACT_MAX {
                        for i in 0..j {
                            assert_eq!(inv.get(i, j).to_bits(), inv.get(j, i).to_bits(), "P symmetric, n = {n}");
                        }
                    }
                    assert!(close(&inv.col(j)[j..], &inv_ref.col(j)[j..]), "P, n = {n}");
                    assert!(close(&gram.col(j)[j..], &gram_ref.col(j)[j..]), "G, n = {n}");
                }
            }
        }
    }
}
