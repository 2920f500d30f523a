//! Dense column-major storage and the few BLAS-like kernels the per-sample update needs.
//!
//! The hot path works on plain slices so that it never allocates and its operation count
//! is exactly what the benchmark's multiply-add bound assumes. Symmetric matrices (P and the
//! Gram sum G) are stored as their lower triangle only: an update touches each entry once,
//! so they stay exactly symmetric without a separate symmetrisation pass.

use faer::{Mat, MatMut, MatRef};

/// A dense column-major matrix owned as one flat buffer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dense {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Dense {
    pub(crate) fn zeros(rows: usize, cols: usize) -> Self {
        Self { rows, cols, data: vec![0.0; rows * cols] }
    }

    pub(crate) fn scaled_identity(n: usize, value: f64) -> Self {
        let mut m = Self::zeros(n, n);
        for j in 0..n {
            m.data[j * n + j] = value;
        }
        m
    }

    /// A matrix from its column-major entries (checked by the caller).
    pub(crate) fn from_column_major(rows: usize, cols: usize, data: Vec<f64>) -> Option<Self> {
        (data.len() == rows * cols).then_some(Self { rows, cols, data })
    }

    /// The column-major entries.
    pub(crate) fn entries(&self) -> &[f64] {
        &self.data
    }

    pub(crate) fn entries_mut(&mut self) -> &mut [f64] {
        &mut self.data
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    pub(crate) fn col(&self, j: usize) -> &[f64] {
        &self.data[j * self.rows..(j + 1) * self.rows]
    }

    pub(crate) fn col_mut(&mut self, j: usize) -> &mut [f64] {
        &mut self.data[j * self.rows..(j + 1) * self.rows]
    }

    pub(crate) fn get(&self, i: usize, j: usize) -> f64 {
        self.data[j * self.rows + i]
    }

    pub(crate) fn as_faer(&self) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.data, self.rows, self.cols)
    }

    pub(crate) fn as_faer_mut(&mut self) -> MatMut<'_, f64> {
        MatMut::from_column_major_slice_mut(&mut self.data, self.rows, self.cols)
    }

    /// Overwrites self with a faer matrix of the same shape.
    pub(crate) fn copy_from_faer(&mut self, m: MatRef<'_, f64>) {
        debug_assert_eq!((m.nrows(), m.ncols()), (self.rows, self.cols));
        for j in 0..self.cols {
            let col = self.col_mut(j);
            for (i, v) in col.iter_mut().enumerate() {
                *v = m[(i, j)];
            }
        }
    }

    /// A full symmetric faer matrix from a lower-triangle-stored one.
    pub(crate) fn symmetric_from_lower(&self) -> Mat<f64> {
        Mat::from_fn(self.rows, self.cols, |i, j| if i >= j { self.get(i, j) } else { self.get(j, i) })
    }

    pub(crate) fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}

/// Dot product with independent partial sums, so the compiler can use SIMD lanes.
#[inline]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f64; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let tail: f64 = chunks_a.remainder().iter().zip(chunks_b.remainder()).map(|(x, y)| x * y).sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for k in 0..8 {
            acc[k] += ca[k] * cb[k];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// y += alpha * x
#[inline]
pub(crate) fn axpy(alpha: f64, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(x.len(), y.len());
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// y = S x for a symmetric S stored as its lower triangle.
pub(crate) fn sym_lower_matvec(s: &Dense, x: &[f64], y: &mut [f64]) {
    let n = s.rows();
    y.fill(0.0);
    for j in 0..n {
        let col = &s.col(j)[j..];
        let xj = x[j];
        // Entry (j, j) and the strictly lower part of column j, used twice: as column j
        // (axpy into y below j) and as row j (dot into y[j]).
        y[j] += col[0] * xj + dot(&col[1..], &x[j + 1..]);
        axpy(xj, &col[1..], &mut y[j + 1..]);
    }
}

/// S = scale * (S + alpha * v v^T) on the lower triangle.
pub(crate) fn sym_lower_rank1(s: &mut Dense, alpha: f64, v: &[f64], scale: f64) {
    let n = s.rows();
    for j in 0..n {
        let a = alpha * v[j];
        let col = &mut s.col_mut(j)[j..];
        if scale == 1.0 {
            axpy(a, &v[j..], col);
        } else {
            for (c, vi) in col.iter_mut().zip(&v[j..]) {
                *c = scale * (*c + a * vi);
            }
        }
    }
}

/// S += U C U^T on the lower triangle, for U = [u0 u1] and C = [[c00, c01], [c01, c11]].
pub(crate) fn sym_lower_rank2(s: &mut Dense, u0: &[f64], u1: &[f64], c: [[f64; 2]; 2]) {
    let n = s.rows();
    for j in 0..n {
        // Column j of U C U^T is u0 * (C U^T)_{0j} + u1 * (C U^T)_{1j}.
        let a0 = c[0][0] * u0[j] + c[0][1] * u1[j];
        let a1 = c[1][0] * u0[j] + c[1][1] * u1[j];
        let col = &mut s.col_mut(j)[j..];
        for ((ci, x0), x1) in col.iter_mut().zip(&u0[j..]).zip(&u1[j..]) {
            *ci += a0 * x0 + a1 * x1;
        }
    }
}

/// out = M^T x (one dot product per column of M).
pub(crate) fn transposed_matvec(m: &Dense, x: &[f64], out: &mut [f64]) {
    for (j, o) in out.iter_mut().enumerate() {
        *o = dot(m.col(j), x);
    }
}

/// M = scale * (M + alpha x y^T).
pub(crate) fn rank1(m: &mut Dense, alpha: f64, x: &[f64], y: &[f64], scale: f64) {
    for (j, &yj) in y.iter().enumerate() {
        let a = alpha * yj;
        let col = m.col_mut(j);
        if scale == 1.0 {
            axpy(a, x, col);
        } else {
            for (c, xi) in col.iter_mut().zip(x) {
                *c = scale * (*c + a * xi);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_sym(n: usize) -> Dense {
        let mut s = Dense::zeros(n, n);
        for j in 0..n {
            for i in j..n {
                s.col_mut(j)[i] = ((i * 7 + j * 3) % 11) as f64 - 4.0 + if i == j { 20.0 } else { 0.0 };
            }
        }
        s
    }

    #[test]
    fn symmetric_kernels_match_dense_algebra() {
        for n in [1, 3, 9, 17] {
            let s = sample_sym(n);
            let full = s.symmetric_from_lower();
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
            let mut y = vec![0.0; n];
            sym_lower_matvec(&s, &x, &mut y);
            for i in 0..n {
                let expected: f64 = (0..n).map(|j| full[(i, j)] * x[j]).sum();
                assert!((y[i] - expected).abs() < 1e-12);
            }
            let mut s1 = s.clone();
            sym_lower_rank1(&mut s1, -0.5, &x, 2.0);
            let mut s2 = s.clone();
            sym_lower_rank2(&mut s2, &x, &y, [[-0.5, 0.25], [0.25, 1.5]]);
            for j in 0..n {
                for i in j..n {
                    let r1 = 2.0 * (full[(i, j)] - 0.5 * x[i] * x[j]);
                    assert!((s1.get(i, j) - r1).abs() < 1e-12);
                    let r2 = full[(i, j)] - 0.5 * x[i] * x[j] + 0.25 * (x[i] * y[j] + y[i] * x[j]) + 1.5 * y[i] * y[j];
                    assert!((s2.get(i, j) - r2).abs() < 1e-10);
                }
            }
        }
    }

    #[test]
    fn rectangular_kernels_match_dense_algebra() {
        let (r, c) = (13, 5);
        let mut m = Dense::zeros(r, c);
        for j in 0..c {
            for i in 0..r {
                m.col_mut(j)[i] = (i as f64 - j as f64) * 0.1;
            }
        }
        let x: Vec<f64> = (0..r).map(|i| i as f64 * 0.5 - 2.0).collect();
        let y: Vec<f64> = (0..c).map(|j| j as f64 + 1.0).collect();
        let mut out = vec![0.0; c];
        transposed_matvec(&m, &x, &mut out);
        for j in 0..c {
            let e: f64 = (0..r).map(|i| m.get(i, j) * x[i]).sum();
            assert!((out[j] - e).abs() < 1e-12);
        }
        let before = m.clone();
        rank1(&mut m, -2.0, &x, &y, 0.5);
        for j in 0..c {
            for i in 0..r {
                assert!((m.get(i, j) - 0.5 * (before.get(i, j) - 2.0 * x[i] * y[j])).abs() < 1e-12);
            }
        }
    }
}
