//! The rank-one pair update as a few fused sweeps, compiled for the best SIMD the CPU has
//! (AVX2 + FMA where present, picked at run time; plain SSE2 otherwise).
//!
//! Why fused: the update is bound by moving the four N' x N' matrices through the cache,
//! not by arithmetic. The separate kernels in `kernels` read P twice and K twice per pair;
//! here P is read once for the matrix-vector product and once for its update (which also
//! carries G), and each column of K is read once for its residual and updated while it is
//! still in L1 (together with the same column of R). Why runtime dispatch: the release
//! build targets baseline x86-64 so that the binary runs anywhere, and most of the gain is
//! in the wider registers and fused multiply-adds that baseline lacks. Dispatch happens once
//! per pair, so its cost does not depend on N.

use pulp::{Arch, Simd, WithSimd};

use crate::kernels::Dense;
use crate::simd::{axpy, dot, matvec_add, scaled_axpy, sym_lower_matvec, symmetric_rank1_column};

/// The largest N' with an update compiled for its exact size. Recursions of at most this
/// many regressors keep P in full and exactly symmetric (the upper triangle mirrors the
/// lower one bit for bit): their update reads it as a plain matrix, and every other writer
/// of P mirrors it afterwards (`Recursion::mirror_inverse`).
pub(crate) const EXACT_MAX: usize = 23;

/// One pair (p, q) applied to the recursion: h = P p, gamma = 1 / (1 + p^T h),
/// e = q - K^T p, K += gamma h e^T, P <- (P - gamma h h^T) / rho, G <- rho (G + p p^T),
/// R <- rho (R + p q^T). P and G are lower triangles.
pub(crate) struct RankOnePair<'a> {
    pub(crate) p: &'a [f64],
    pub(crate) q: &'a [f64],
    pub(crate) rho: f64,
    pub(crate) inverse: &'a mut Dense,
    pub(crate) operator: &'a mut Dense,
    pub(crate) gram: &'a mut Dense,
    pub(crate) cross: &'a mut Dense,
    pub(crate) h: &'a mut [f64],
    pub(crate) residual: &'a mut [f64],
}

/// What [`RankOnePair::apply`] did.
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

    /// Models with N' up to 23 (those below the deferred path's threshold, unless they
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
        let Self { p, q, rho, inverse, operator, gram, cross, h, residual } = self;
        let n = if N == 0 { p.len() } else { N };
        let (p, h) = (&p[..n], &mut h[..n]);
        let inverse = &mut inverse.entries_mut()[..n * n];
        let gram = &mut gram.entries_mut()[..n * n];
        if N == 0 {
            sym_lower_matvec(simd, inverse, n, p, h);
        } else {
            // At an exact size P is held in full, exactly symmetric (see `EXACT_MAX`).
            h.fill(0.0);
            matvec_add(simd, inverse, p, h);
        }
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
        // P and G, column by column. At an exact size whole columns are updated: P stays
        // exactly symmetric in full, and G's entries above the diagonal are scratch that
        // nothing reads (G is read by its lower triangle only); a column of constant length
        // is a few full vectors, where its triangular part would leave a scalar remainder
        // in almost every column. Otherwise only the lower triangles.
        let inv_rho = 1.0 / rho;
        for j in 0..n {
            if N == 0 {
                scaled_axpy(simd, inv_rho, -gamma * h[j], &h[j..], &mut inverse[j * n + j..(j + 1) * n]);
                scaled_axpy(simd, rho, p[j], &p[j..], &mut gram[j * n + j..(j + 1) * n]);
            } else {
                symmetric_rank1_column(simd, inv_rho, -gamma, h, h[j], &mut inverse[j * n..(j + 1) * n]);
                scaled_axpy(simd, rho, p[j], p, &mut gram[j * n..(j + 1) * n]);
            }
        }
        PairUpdate::Applied { healthy: residual.iter().all(|e| e.is_finite()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels;

    /// A symmetric matrix: full at the exact sizes (as the recursion keeps P there), only
    /// the lower triangle otherwise (the upper one holds NaN, which must never be read).
    fn lower(n: usize, seed: f64) -> Dense {
        let mut s = Dense::zeros(n, n);
        for j in 0..n {
            for i in 0..n {
                let (r, c) = (i.max(j), i.min(j));
                let value = ((r * 7 + c * 3) as f64 * seed).sin() + if i == j { n as f64 } else { 0.0 };
                s.col_mut(j)[i] = if i >= j || n <= EXACT_MAX { value } else { f64::NAN };
            }
        }
        s
    }

    /// The fused update equals the separate kernels (the reference arithmetic) to rounding,
    /// for sizes around every SIMD width and remainder, with and without forgetting.
    #[test]
    fn fused_update_matches_the_separate_kernels() {
        for n in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 24, 33, 64, 67] {
            for rho in [1.0, 0.97] {
                let p: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37 + 0.1).sin()).collect();
                let q: Vec<f64> = (0..n).map(|i| (i as f64 * 0.53 + 0.2).cos()).collect();
                let (mut inv, mut gram) = (lower(n, 0.11), lower(n, 0.29));
                let mut k =
                    Dense::from_column_major(n, n, (0..n * n).map(|i| (i as f64 * 0.07).cos()).collect()).unwrap();
                let mut cross =
                    Dense::from_column_major(n, n, (0..n * n).map(|i| (i as f64 * 0.05).sin()).collect()).unwrap();
                let (mut inv_ref, mut k_ref, mut gram_ref, mut cross_ref) =
                    (inv.clone(), k.clone(), gram.clone(), cross.clone());
                let (mut h, mut residual) = (vec![0.0; n], vec![0.0; n]);
                let ok = RankOnePair {
                    p: &p,
                    q: &q,
                    rho,
                    inverse: &mut inv,
                    operator: &mut k,
                    gram: &mut gram,
                    cross: &mut cross,
                    h: &mut h,
                    residual: &mut residual,
                }
                .apply();
                assert_eq!(ok, PairUpdate::Applied { healthy: true });

                let mut h_ref = vec![0.0; n];
                kernels::sym_lower_matvec(&inv_ref, &p, &mut h_ref);
                let gamma = 1.0 / (1.0 + kernels::dot(&p, &h_ref));
                let mut e_ref = vec![0.0; n];
                kernels::transposed_matvec(&k_ref, &p, &mut e_ref);
                e_ref.iter_mut().zip(&q).for_each(|(e, qi)| *e = qi - *e);
                kernels::rank1(&mut k_ref, gamma, &h_ref, &e_ref, 1.0);
                kernels::sym_lower_rank1(&mut inv_ref, -gamma, &h_ref, 1.0 / rho);
                kernels::sym_lower_rank1(&mut gram_ref, 1.0, &p, rho);
                kernels::rank1(&mut cross_ref, 1.0, &p, &q, rho);

                let close =
                    |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()));
                assert!(close(&h, &h_ref), "h, n = {n}");
                assert!(close(&residual, &e_ref), "residual, n = {n}");
                assert!(close(k.entries(), k_ref.entries()), "K, n = {n}");
                assert!(close(cross.entries(), cross_ref.entries()), "R, n = {n}");
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
