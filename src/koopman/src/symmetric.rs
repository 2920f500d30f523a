//! `Symmetric`: the inverse P and the Gram sum G, symmetric matrices whose storage rule is
//! carried by the type. How a matrix is held (`Storage`) is fixed when it is built, and
//! every operation that changes it ends with that representation intact, so no caller can
//! leave a mirrored matrix unmirrored or read a triangle that is not kept.
//!
//! Why the rule matters: at small sizes the rank-one update reads P as a plain square,
//! which is the symmetric matrix only while the upper triangle mirrors the lower one
//! exactly; a writer that forgot to mirror would leave stale entries there, and the model
//! would drift from the batch solution. The lower triangle is always the matrix; only what
//! lies above it differs between storages.

use faer::linalg::matmul::triangular::{BlockStructure, matmul as triangular_matmul};
use faer::{Accum, Mat, MatRef, Par};
use pulp::Simd;

use crate::dense::Dense;
use crate::simd::{axpy2, matvec_add, scale, scaled_axpy, sym_lower_matvec, symmetric_rank1_column};

/// How a symmetric matrix is held. In every case the lower triangle (diagonal included)
/// is the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Storage {
    /// Only the lower triangle is kept; nothing reads the entries above the diagonal.
    Lower,
    /// As `Lower`, but rank-one updates sweep whole columns and leave scratch above the
    /// diagonal that nothing reads: at small orders a column of constant length is a few
    /// whole vectors, where its triangular part would leave a scalar remainder in almost
    /// every column.
    LowerWholeColumns,
    /// In full: the upper triangle is the exact mirror of the lower one, bit for bit, so
    /// the matrix may be read as a plain square.
    Mirrored,
}

/// A symmetric n x n matrix held as its `Storage` says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Symmetric {
    storage: Storage,
    matrix: Dense,
}

impl Symmetric {
    /// value * I.
    pub(crate) fn scaled_identity(n: usize, value: f64, storage: Storage) -> Self {
        let mut matrix = Dense::zeros(n, n);
        for j in 0..n {
            matrix.col_mut(j)[j] = value;
        }
        Self { storage, matrix }
    }

    /// The matrix whose lower triangle is in the column-major `data` (n x n), or None when
    /// their number does not fit. A mirrored matrix takes its upper triangle from the lower
    /// one, whatever `data` holds there.
    pub(crate) fn from_column_major(n: usize, data: Vec<f64>, storage: Storage) -> Option<Self> {
        let mut symmetric = Self { storage, matrix: Dense::from_column_major(n, n, data)? };
        symmetric.mirror_if_full();
        Some(symmetric)
    }

    pub(crate) fn order(&self) -> usize {
        self.matrix.rows()
    }

    #[cfg(test)]
    pub(crate) fn storage(&self) -> Storage {
        self.storage
    }

    /// The stored square, column-major (above the diagonal: as the `Storage` says).
    pub(crate) fn entries(&self) -> &[f64] {
        self.matrix.entries()
    }

    /// The stored square as a faer matrix, for readers of its lower triangle only (a
    /// Cholesky factorisation on `Side::Lower`).
    pub(crate) fn lower(&self) -> MatRef<'_, f64> {
        self.matrix.as_faer()
    }

    /// The matrix in full, both triangles from the lower one (allocates).
    pub(crate) fn to_full(&self) -> Mat<f64> {
        let m = &self.matrix;
        Mat::from_fn(m.rows(), m.cols(), |i, j| if i >= j { m.get(i, j) } else { m.get(j, i) })
    }

    /// Whether every entry of the matrix (its lower triangle) is finite.
    pub(crate) fn is_finite(&self) -> bool {
        (0..self.order()).all(|j| self.matrix.col(j)[j..].iter().all(|v| v.is_finite()))
    }

    /// Overwrites the matrix with the symmetric `m` of the same order (its lower triangle
    /// is taken; the whole square is copied, then mirrored if so held).
    pub(crate) fn assign(&mut self, m: MatRef<'_, f64>) {
        self.matrix.copy_from_faer(m);
        self.mirror_if_full();
    }

    /// y = S x. A mirrored matrix is read as a plain square: at the small orders it is
    /// held so, whole columns beat the blocked triangular product.
    #[inline(always)]
    pub(crate) fn mul_vec<S: Simd>(&self, simd: S, x: &[f64], y: &mut [f64]) {
        let n = x.len();
        debug_assert!(n == self.order() && y.len() == n);
        let entries = &self.matrix.entries()[..n * n];
        match self.storage {
            Storage::Mirrored => {
                y.fill(0.0);
                matvec_add(simd, entries, x, y);
            }
            Storage::Lower | Storage::LowerWholeColumns => sym_lower_matvec(simd, entries, n, x, y),
        }
    }

    /// S <- scale (S + alpha v v^T).
    #[inline(always)]
    pub(crate) fn rank_one<S: Simd>(&mut self, simd: S, scale: f64, alpha: f64, v: &[f64]) {
        let n = v.len();
        debug_assert_eq!(n, self.order());
        let entries = &mut self.matrix.entries_mut()[..n * n];
        match self.storage {
            // Entry (i, j) takes exactly the operations of entry (j, i) (the product
            // v_i v_j is formed first), so the mirror holds without a separate pass.
            Storage::Mirrored => {
                for j in 0..n {
                    symmetric_rank1_column(simd, scale, alpha, v, v[j], &mut entries[j * n..(j + 1) * n]);
                }
            }
            Storage::LowerWholeColumns => {
                for j in 0..n {
                    scaled_axpy(simd, scale, alpha * v[j], v, &mut entries[j * n..(j + 1) * n]);
                }
            }
            Storage::Lower => {
                for j in 0..n {
                    scaled_axpy(simd, scale, alpha * v[j], &v[j..], &mut entries[j * n + j..(j + 1) * n]);
                }
            }
        }
    }

    /// S += U C U^T for U = [u0 u1] and the symmetric C = [[c00, c01], [c01, c11]].
    #[inline(always)]
    pub(crate) fn rank_two<S: Simd>(&mut self, simd: S, u0: &[f64], u1: &[f64], c: [[f64; 2]; 2]) {
        let n = self.order();
        debug_assert!(u0.len() == n && u1.len() == n);
        for j in 0..n {
            // Column j of U C U^T is u0 (C U^T)_0j + u1 (C U^T)_1j.
            let a0 = c[0][0] * u0[j] + c[0][1] * u1[j];
            let a1 = c[1][0] * u0[j] + c[1][1] * u1[j];
            axpy2(simd, a0, &u0[j..], a1, &u1[j..], &mut self.matrix.col_mut(j)[j..]);
        }
        self.mirror_if_full();
    }

    /// S <- factor S.
    #[inline(always)]
    pub(crate) fn scale<S: Simd>(&mut self, simd: S, factor: f64) {
        for j in 0..self.order() {
            scale(simd, factor, &mut self.matrix.col_mut(j)[j..]);
        }
        self.mirror_if_full();
    }

    /// S += alpha A B^T, for A and B of n rows whose product A B^T is symmetric (only its
    /// lower triangle is formed, with faer's cache-blocked product).
    pub(crate) fn add_product(&mut self, alpha: f64, a: MatRef<'_, f64>, b: MatRef<'_, f64>) {
        triangular_matmul(
            self.matrix.as_faer_mut(),
            BlockStructure::TriangularLower,
            Accum::Add,
            a,
            BlockStructure::Rectangular,
            b.transpose(),
            BlockStructure::Rectangular,
            alpha,
            Par::Seq,
        );
        self.mirror_if_full();
    }

    /// Copies the lower triangle onto the upper one when the matrix is held mirrored: the
    /// last step of every writer that works on the lower triangle.
    fn mirror_if_full(&mut self) {
        if self.storage != Storage::Mirrored {
            return;
        }
        let n = self.order();
        let entries = self.matrix.entries_mut();
        for j in 0..n {
            for i in j + 1..n {
                entries[i * n + j] = entries[j * n + i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use pulp::{Arch, Simd, WithSimd};

    use super::*;
    use crate::reference;

    const STORAGES: [Storage; 3] = [Storage::Lower, Storage::LowerWholeColumns, Storage::Mirrored];

    /// A symmetric positive definite matrix held as `storage`; NaN above the diagonal
    /// unless mirrored, so that any read of the upper triangle shows.
    fn sample(n: usize, storage: Storage) -> Symmetric {
        let mut data = vec![f64::NAN; n * n];
        for j in 0..n {
            for i in j..n {
                data[j * n + i] = ((i * 7 + j * 3) as f64 * 0.19).sin() + if i == j { n as f64 } else { 0.0 };
            }
        }
        Symmetric::from_column_major(n, data, storage).unwrap()
    }

    fn exactly_mirrored(s: &Symmetric) -> bool {
        let (n, m) = (s.order(), &s.matrix);
        (0..n).all(|j| (0..j).all(|i| m.get(i, j).to_bits() == m.get(j, i).to_bits()))
    }

    /// The lower triangles agree to rounding.
    fn close(a: &Symmetric, b: &Dense) -> bool {
        let n = a.order();
        (0..n).all(|j| (j..n).all(|i| (a.matrix.get(i, j) - b.get(i, j)).abs() <= 1e-12 * (1.0 + b.get(i, j).abs())))
    }

    struct Check(usize, Storage);

    impl WithSimd for Check {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let Check(n, storage) = self;
            let what = format!("n = {n}, {storage:?}");
            let s = sample(n, storage);
            let reference = Dense::from_column_major(n, n, s.entries().to_vec()).unwrap();
            let u: Vec<f64> = (0..n).map(|i| (i as f64 * 0.41 + 0.3).cos()).collect();
            let v: Vec<f64> = (0..n).map(|i| (i as f64 * 0.23 - 0.1).sin()).collect();

            let (mut y, mut y_ref) = (vec![3.0; n], vec![0.0; n]);
            s.mul_vec(simd, &u, &mut y);
            reference::sym_lower_matvec(&reference, &u, &mut y_ref);
            assert!(y.iter().zip(&y_ref).all(|(a, b)| (a - b).abs() <= 1e-12 * (1.0 + b.abs())), "mul_vec, {what}");

            let mut one = s.clone();
            one.rank_one(simd, 0.97, -0.5, &u);
            let mut one_ref = reference.clone();
            reference::sym_lower_rank1(&mut one_ref, -0.5, &u, 0.97);
            assert!(close(&one, &one_ref), "rank_one, {what}");

            let c = [[-0.7, 0.2], [0.2, 1.3]];
            let mut two = s.clone();
            two.rank_two(simd, &u, &v, c);
            let mut two_ref = reference.clone();
            reference::sym_lower_rank2(&mut two_ref, &u, &v, c);
            assert!(close(&two, &two_ref), "rank_two, {what}");

            let mut scaled = s.clone();
            scaled.scale(simd, 1.5);
            let mut scaled_ref = reference.clone();
            reference::sym_lower_rank1(&mut scaled_ref, 0.0, &u, 1.5);
            assert!(close(&scaled, &scaled_ref), "scale, {what}");

            let (a, b) =
                (Mat::from_fn(n, 3, |i, k| (i + k) as f64 * 0.1), Mat::from_fn(n, 3, |i, k| 0.2 - (i * k) as f64));
            let mut product = s.clone();
            // A B^T + B A^T is symmetric.
            product.add_product(0.5, a.as_ref(), b.as_ref());
            product.add_product(0.5, b.as_ref(), a.as_ref());
            let full = s.to_full() + (&a * b.transpose() + &b * a.transpose()) * faer::Scale(0.5);
            let product_ref = Dense::from_column_major(n, n, (0..n * n).map(|k| full[(k % n, k / n)]).collect());
            assert!(close(&product, &product_ref.unwrap()), "add_product, {what}");

            for changed in [&s, &one, &two, &scaled, &product] {
                assert!(changed.is_finite(), "nothing read above the diagonal, {what}");
                if storage == Storage::Mirrored {
                    assert!(exactly_mirrored(changed), "mirrored, {what}");
                }
            }
        }
    }

    /// Every operation matches the reference arithmetic on the lower triangle, never reads
    /// above it, and leaves a mirrored matrix exactly mirrored.
    #[test]
    fn every_operation_keeps_the_storage_rule() {
        for n in [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 23, 24, 33] {
            for storage in STORAGES {
                Arch::new().dispatch(Check(n, storage));
            }
        }
    }

    /// Mirrored matrices are mirrored from their lower triangle when built or assigned,
    /// whatever the upper one held.
    #[test]
    fn building_and_assigning_mirror_the_lower_triangle() {
        let n = 6;
        let s = sample(n, Storage::Mirrored);
        assert!(exactly_mirrored(&s));
        assert_eq!(s.storage(), Storage::Mirrored);
        let mut assigned = Symmetric::scaled_identity(n, 2.0, Storage::Mirrored);
        let mut stale = s.to_full();
        stale[(0, n - 1)] = 123.0;
        assigned.assign(stale.as_ref());
        assert!(exactly_mirrored(&assigned));
        assert_eq!(assigned.to_full(), s.to_full());
        assert!(Symmetric::from_column_major(n, vec![0.0; n * n - 1], Storage::Lower).is_none());
    }
}
