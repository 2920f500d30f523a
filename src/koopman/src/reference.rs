//! The plain scalar kernels: the reference arithmetic the SIMD kernels and the fused
//! steps are tested against (test builds only; production runs on `simd.rs`). Symmetric
//! matrices are read and written by their lower triangle only.

use faer::Mat;

use crate::dense::Dense;

/// The full symmetric matrix whose lower triangle `s` holds.
pub(crate) fn full_from_lower(s: &Dense) -> Mat<f64> {
    Mat::from_fn(s.rows(), s.cols(), |i, j| if i >= j { s.get(i, j) } else { s.get(j, i) })
}

/// a . b, summed in order.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// y += alpha * x
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
            let full = full_from_lower(&s);
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
