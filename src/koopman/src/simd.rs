//! Slice kernels written once over pulp's `Simd` trait, so that they compile to AVX2 + FMA
//! (or SSE2) inside whichever dispatched step inlines them: the only arithmetic kernels of
//! the estimator's update paths (the plain ones in `reference` exist only to test them).
//! Always inlined: outside a dispatched context they would run at the baseline width.

use pulp::Simd;

/// a . b
#[inline(always)]
pub(crate) fn dot<S: Simd>(simd: S, a: &[f64], b: &[f64]) -> f64 {
    let (a_head, a_tail) = S::as_simd_f64s(a);
    let (b_head, b_tail) = S::as_simd_f64s(b);
    let mut acc = [simd.splat_f64s(0.0); 4];
    let mut a_quads = a_head.chunks_exact(4);
    let mut b_quads = b_head.chunks_exact(4);
    for (qa, qb) in (&mut a_quads).zip(&mut b_quads) {
        for k in 0..4 {
            acc[k] = simd.mul_add_f64s(qa[k], qb[k], acc[k]);
        }
    }
    for (va, vb) in a_quads.remainder().iter().zip(b_quads.remainder()) {
        acc[0] = simd.mul_add_f64s(*va, *vb, acc[0]);
    }
    let sum = simd.add_f64s(simd.add_f64s(acc[0], acc[1]), simd.add_f64s(acc[2], acc[3]));
    let tail: f64 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    simd.reduce_sum_f64s(sum) + tail
}

/// y += alpha x
#[inline(always)]
pub(crate) fn axpy<S: Simd>(simd: S, alpha: f64, x: &[f64], y: &mut [f64]) {
    let (x_head, x_tail) = S::as_simd_f64s(x);
    let (y_head, y_tail) = S::as_mut_simd_f64s(y);
    let a = simd.splat_f64s(alpha);
    for (yv, xv) in y_head.iter_mut().zip(x_head) {
        *yv = simd.mul_add_f64s(a, *xv, *yv);
    }
    for (yi, xi) in y_tail.iter_mut().zip(x_tail) {
        *yi += alpha * xi;
    }
}

/// y += a0 x0 + a1 x1 (the x0 term first), in one sweep of y: a column of a rank-two
/// update.
#[inline(always)]
pub(crate) fn axpy2<S: Simd>(simd: S, a0: f64, x0: &[f64], a1: f64, x1: &[f64], y: &mut [f64]) {
    debug_assert!(x0.len() == y.len() && x1.len() == y.len());
    let (x0_head, x0_tail) = S::as_simd_f64s(x0);
    let (x1_head, x1_tail) = S::as_simd_f64s(x1);
    let (y_head, y_tail) = S::as_mut_simd_f64s(y);
    let (b0, b1) = (simd.splat_f64s(a0), simd.splat_f64s(a1));
    for ((yv, v0), v1) in y_head.iter_mut().zip(x0_head).zip(x1_head) {
        *yv = simd.mul_add_f64s(b1, *v1, simd.mul_add_f64s(b0, *v0, *yv));
    }
    for ((yi, u0), u1) in y_tail.iter_mut().zip(x0_tail).zip(x1_tail) {
        *yi = (*yi + a0 * u0) + a1 * u1;
    }
}

/// y <- scale (y + alpha x); plain y += alpha x when scale is 1 (no forgetting).
#[inline(always)]
pub(crate) fn scaled_axpy<S: Simd>(simd: S, scale: f64, alpha: f64, x: &[f64], y: &mut [f64]) {
    if scale == 1.0 {
        return axpy(simd, alpha, x, y);
    }
    let (x_head, x_tail) = S::as_simd_f64s(x);
    let (y_head, y_tail) = S::as_mut_simd_f64s(y);
    let (a, s) = (simd.splat_f64s(alpha), simd.splat_f64s(scale));
    for (yv, xv) in y_head.iter_mut().zip(x_head) {
        *yv = simd.mul_f64s(s, simd.mul_add_f64s(a, *xv, *yv));
    }
    for (yi, xi) in y_tail.iter_mut().zip(x_tail) {
        *yi = scale * (*yi + alpha * xi);
    }
}

/// y <- scale (y + alpha (x * xj)), elementwise; plain when scale is 1. The product
/// x_i * xj is formed first, so column j of a symmetric rank-one update computes entry
/// (i, j) with exactly the operations column i uses for entry (j, i): a matrix that was
/// exactly symmetric stays so.
#[inline(always)]
pub(crate) fn symmetric_rank1_column<S: Simd>(simd: S, scale: f64, alpha: f64, x: &[f64], xj: f64, y: &mut [f64]) {
    let (x_head, x_tail) = S::as_simd_f64s(x);
    let (y_head, y_tail) = S::as_mut_simd_f64s(y);
    let (a, b, s) = (simd.splat_f64s(alpha), simd.splat_f64s(xj), simd.splat_f64s(scale));
    // The remainder as one partial vector: every entry takes the same operations, wherever
    // it falls in its column.
    let step = |yv: S::f64s, xv: S::f64s| {
        let updated = simd.mul_add_f64s(a, simd.mul_f64s(xv, b), yv);
        if scale == 1.0 { updated } else { simd.mul_f64s(s, updated) }
    };
    for (yv, xv) in y_head.iter_mut().zip(x_head) {
        *yv = step(*yv, *xv);
    }
    if !y_tail.is_empty() {
        let value = step(simd.partial_load_f64s(y_tail), simd.partial_load_f64s(x_tail));
        simd.partial_store_f64s(y_tail, value);
    }
}

/// y <- alpha y
#[inline(always)]
pub(crate) fn scale<S: Simd>(simd: S, alpha: f64, y: &mut [f64]) {
    let (y_head, y_tail) = S::as_mut_simd_f64s(y);
    let a = simd.splat_f64s(alpha);
    for yv in y_head.iter_mut() {
        *yv = simd.mul_f64s(a, *yv);
    }
    for yi in y_tail.iter_mut() {
        *yi *= alpha;
    }
}

/// y = alpha x
#[inline(always)]
pub(crate) fn scaled_copy<S: Simd>(simd: S, alpha: f64, x: &[f64], y: &mut [f64]) {
    debug_assert_eq!(x.len(), y.len());
    let (x_head, x_tail) = S::as_simd_f64s(x);
    let (y_head, y_tail) = S::as_mut_simd_f64s(y);
    let a = simd.splat_f64s(alpha);
    for (yv, xv) in y_head.iter_mut().zip(x_head) {
        *yv = simd.mul_f64s(a, *xv);
    }
    for (yi, xi) in y_tail.iter_mut().zip(x_tail) {
        *yi = alpha * xi;
    }
}

/// y = S x for a symmetric S (n x n) stored as its lower triangle, column-major.
///
/// Four columns at a time: below their 4 x 4 diagonal block, each row of the block's
/// columns is loaded once and used twice, as four columns (multiply-adds into y) and as
/// four rows (four dot products kept in registers). A column at a time would load and store
/// y once per column and keep its one dot product in a single dependent chain.
#[inline(always)]
pub(crate) fn sym_lower_matvec<S: Simd>(simd: S, s: &[f64], n: usize, x: &[f64], y: &mut [f64]) {
    debug_assert!(s.len() >= n * n && x.len() == n && y.len() == n);
    y.fill(0.0);
    let mut j0 = 0;
    while j0 < n {
        let width = (n - j0).min(4);
        // The diagonal block (at most 10 stored entries), plainly.
        for j in j0..j0 + width {
            let col = &s[j * n..(j + 1) * n];
            y[j] += col[j] * x[j];
            for i in j + 1..j0 + width {
                y[i] += col[i] * x[j];
                y[j] += col[i] * x[i];
            }
        }
        let below = j0 + width;
        if width == 4 && below < n {
            let c0 = &s[j0 * n + below..(j0 + 1) * n];
            let c1 = &s[(j0 + 1) * n + below..(j0 + 2) * n];
            let c2 = &s[(j0 + 2) * n + below..(j0 + 3) * n];
            let c3 = &s[(j0 + 3) * n + below..(j0 + 4) * n];
            let x_below = &x[below..];
            let (c0h, c0t) = S::as_simd_f64s(c0);
            let (c1h, c1t) = S::as_simd_f64s(c1);
            let (c2h, c2t) = S::as_simd_f64s(c2);
            let (c3h, c3t) = S::as_simd_f64s(c3);
            let (xh, xt) = S::as_simd_f64s(x_below);
            let (yh, yt) = S::as_mut_simd_f64s(&mut y[below..]);
            let b = [x[j0], x[j0 + 1], x[j0 + 2], x[j0 + 3]];
            let (b0, b1, b2, b3) =
                (simd.splat_f64s(b[0]), simd.splat_f64s(b[1]), simd.splat_f64s(b[2]), simd.splat_f64s(b[3]));
            let zero = simd.splat_f64s(0.0);
            let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
            for (((((yv, xv), v0), v1), v2), v3) in yh.iter_mut().zip(xh).zip(c0h).zip(c1h).zip(c2h).zip(c3h) {
                let mut acc = *yv;
                acc = simd.mul_add_f64s(*v0, b0, acc);
                acc = simd.mul_add_f64s(*v1, b1, acc);
                acc = simd.mul_add_f64s(*v2, b2, acc);
                acc = simd.mul_add_f64s(*v3, b3, acc);
                *yv = acc;
                a0 = simd.mul_add_f64s(*v0, *xv, a0);
                a1 = simd.mul_add_f64s(*v1, *xv, a1);
                a2 = simd.mul_add_f64s(*v2, *xv, a2);
                a3 = simd.mul_add_f64s(*v3, *xv, a3);
            }
            let mut t = [0.0; 4];
            for (i, (yi, xi)) in yt.iter_mut().zip(xt).enumerate() {
                let row = [c0t[i], c1t[i], c2t[i], c3t[i]];
                for k in 0..4 {
                    *yi += row[k] * b[k];
                    t[k] += row[k] * xi;
                }
            }
            y[j0] += simd.reduce_sum_f64s(a0) + t[0];
            y[j0 + 1] += simd.reduce_sum_f64s(a1) + t[1];
            y[j0 + 2] += simd.reduce_sum_f64s(a2) + t[2];
            y[j0 + 3] += simd.reduce_sum_f64s(a3) + t[3];
        }
        j0 += width;
    }
}

/// out[j] = beta out[j] + alpha (column j of M) . x, for the columns of the column-major
/// M (rows = x.len(), out.len() columns). Eight columns at a time: x is loaded once for
/// eight dot products, whose eight independent chains of multiply-adds keep both FMA units
/// busy (four chains would wait on the multiply-add latency); the last columns go by four,
/// then one by one.
#[inline(always)]
pub(crate) fn transposed_matvec<S: Simd>(simd: S, m: &[f64], x: &[f64], alpha: f64, beta: f64, out: &mut [f64]) {
    let rows = x.len();
    debug_assert!(m.len() >= rows * out.len());
    let store =
        |out: &mut f64, value: f64| *out = if beta == 0.0 { alpha * value } else { beta * *out + alpha * value };
    let mut j = 0;
    while j + 8 <= out.len() {
        let values = column_dots::<S, 8>(simd, m, j, x);
        out[j..j + 8].iter_mut().zip(values).for_each(|(o, v)| store(o, v));
        j += 8;
    }
    if j + 4 <= out.len() {
        let values = column_dots::<S, 4>(simd, m, j, x);
        out[j..j + 4].iter_mut().zip(values).for_each(|(o, v)| store(o, v));
        j += 4;
    }
    for (k, o) in out.iter_mut().enumerate().skip(j) {
        store(o, dot(simd, &m[k * rows..(k + 1) * rows], x));
    }
}

/// The dot products of x with columns first..first + W of the column-major M (rows =
/// x.len()), x loaded once for all W.
#[inline(always)]
fn column_dots<S: Simd, const W: usize>(simd: S, m: &[f64], first: usize, x: &[f64]) -> [f64; W] {
    let rows = x.len();
    let (xh, xt) = S::as_simd_f64s(x);
    let cols: [(&[S::f64s], &[f64]); W] =
        std::array::from_fn(|k| S::as_simd_f64s(&m[(first + k) * rows..(first + k + 1) * rows]));
    let mut acc = [simd.splat_f64s(0.0); W];
    for (i, xv) in xh.iter().enumerate() {
        for k in 0..W {
            acc[k] = simd.mul_add_f64s(cols[k].0[i], *xv, acc[k]);
        }
    }
    std::array::from_fn(|k| simd.reduce_sum_f64s(acc[k]) + cols[k].1.iter().zip(xt).map(|(c, xi)| c * xi).sum::<f64>())
}

/// y += M c for the column-major M (rows = y.len(), c.len() columns), four columns at a
/// time so that y is loaded and stored once per four columns.
#[inline(always)]
pub(crate) fn matvec_add<S: Simd>(simd: S, m: &[f64], c: &[f64], y: &mut [f64]) {
    let rows = y.len();
    debug_assert!(m.len() >= rows * c.len());
    let mut j = 0;
    while j + 4 <= c.len() {
        let col = |k: usize| S::as_simd_f64s(&m[(j + k) * rows..(j + k + 1) * rows]);
        let ((c0h, c0t), (c1h, c1t), (c2h, c2t), (c3h, c3t)) = (col(0), col(1), col(2), col(3));
        let b = [c[j], c[j + 1], c[j + 2], c[j + 3]];
        let (b0, b1, b2, b3) =
            (simd.splat_f64s(b[0]), simd.splat_f64s(b[1]), simd.splat_f64s(b[2]), simd.splat_f64s(b[3]));
        let (yh, yt) = S::as_mut_simd_f64s(y);
        for ((((yv, v0), v1), v2), v3) in yh.iter_mut().zip(c0h).zip(c1h).zip(c2h).zip(c3h) {
            let mut acc = *yv;
            acc = simd.mul_add_f64s(*v0, b0, acc);
            acc = simd.mul_add_f64s(*v1, b1, acc);
            acc = simd.mul_add_f64s(*v2, b2, acc);
            acc = simd.mul_add_f64s(*v3, b3, acc);
            *yv = acc;
        }
        for (i, yi) in yt.iter_mut().enumerate() {
            *yi += c0t[i] * b[0] + c1t[i] * b[1] + c2t[i] * b[2] + c3t[i] * b[3];
        }
        j += 4;
    }
    for (k, &ck) in c.iter().enumerate().skip(j) {
        axpy(simd, ck, &m[k * rows..(k + 1) * rows], y);
    }
}

#[cfg(test)]
mod tests {
    use pulp::{Arch, Simd, WithSimd};

    use crate::dense::Dense;
    use crate::reference;

    fn matrix(rows: usize, cols: usize, seed: f64) -> Dense {
        Dense::from_column_major(rows, cols, (0..rows * cols).map(|i| (i as f64 * seed + 0.3).sin()).collect()).unwrap()
    }

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-12 * (1.0 + y.abs()))
    }

    struct Check(usize);

    impl WithSimd for Check {
        type Output = ();

        #[inline(always)]
        fn with_simd<S: Simd>(self, simd: S) {
            let n = self.0;
            let x: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37 + 0.1).cos()).collect();
            let z: Vec<f64> = (0..n).map(|i| (i as f64 * 0.61 - 0.4).sin()).collect();
            // Only the lower triangle is read: garbage above it must not matter.
            let mut s = matrix(n, n, 0.21);
            for j in 0..n {
                for i in 0..j {
                    s.col_mut(j)[i] = f64::NAN;
                }
            }
            let (mut y, mut y_ref) = (vec![7.0; n], vec![0.0; n]);
            super::sym_lower_matvec(simd, s.entries(), n, &x, &mut y);
            reference::sym_lower_matvec(&s, &x, &mut y_ref);
            assert!(close(&y, &y_ref), "sym_lower_matvec, n = {n}");

            assert!(close(&[super::dot(simd, &x, &z)], &[reference::dot(&x, &z)]), "dot, n = {n}");
            let mut y_ref = z.clone();
            reference::axpy(-0.3, &x, &mut y_ref);
            let mut y = z.clone();
            super::axpy(simd, -0.3, &x, &mut y);
            assert!(close(&y, &y_ref), "axpy, n = {n}");
            reference::axpy(1.7, &z, &mut y_ref);
            let mut y = z.clone();
            super::axpy2(simd, -0.3, &x, 1.7, &z, &mut y);
            assert!(close(&y, &y_ref), "axpy2, n = {n}");
            for scale in [1.0, 0.9] {
                let y_ref: Vec<f64> = z.iter().zip(&x).map(|(zi, xi)| scale * (zi - 0.3 * xi)).collect();
                let mut y = z.clone();
                super::scaled_axpy(simd, scale, -0.3, &x, &mut y);
                assert!(close(&y, &y_ref), "scaled_axpy, scale {scale}, n = {n}");
                let xj = x[n / 2];
                let y_ref: Vec<f64> = z.iter().zip(&x).map(|(zi, xi)| scale * (zi - 0.3 * (xi * xj))).collect();
                let mut y = z.clone();
                super::symmetric_rank1_column(simd, scale, -0.3, &x, xj, &mut y);
                assert!(close(&y, &y_ref), "symmetric_rank1_column, scale {scale}, n = {n}");
            }
            // Single products round alike at every width.
            let mut y = z.clone();
            super::scale(simd, 0.7, &mut y);
            assert_eq!(y, z.iter().map(|zi| 0.7 * zi).collect::<Vec<_>>(), "scale, n = {n}");
            super::scaled_copy(simd, -1.3, &x, &mut y);
            assert_eq!(y, x.iter().map(|xi| -1.3 * xi).collect::<Vec<_>>(), "scaled_copy, n = {n}");

            for cols in [0, 1, 3, 4, 5, 8, 11, 12, 13, 19] {
                let m = matrix(n, cols, 0.13);
                let mut out: Vec<f64> = (0..cols).map(|j| j as f64).collect();
                let mut expected = vec![0.0; cols];
                reference::transposed_matvec(&m, &x, &mut expected);
                let reference: Vec<f64> = expected.iter().enumerate().map(|(j, e)| 0.5 * j as f64 - 2.0 * e).collect();
                super::transposed_matvec(simd, m.entries(), &x, -2.0, 0.5, &mut out);
                assert!(close(&out, &reference), "transposed_matvec, n = {n}, cols = {cols}");
                super::transposed_matvec(simd, m.entries(), &x, 1.0, 0.0, &mut out);
                assert!(close(&out, &expected), "transposed_matvec, beta = 0, n = {n}, cols = {cols}");

                let c: Vec<f64> = (0..cols).map(|j| 0.5 - j as f64 * 0.25).collect();
                let mut y = x.clone();
                let mut y_ref = x.clone();
                for (j, cj) in c.iter().enumerate() {
                    reference::axpy(*cj, m.col(j), &mut y_ref);
                }
                super::matvec_add(simd, m.entries(), &c, &mut y);
                assert!(close(&y, &y_ref), "matvec_add, n = {n}, cols = {cols}");
            }
        }
    }

    /// The SIMD kernels equal the plain ones to rounding, at sizes around every SIMD
    /// width, block of four and remainder.
    #[test]
    fn simd_kernels_match_the_plain_ones() {
        for n in [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 16, 17, 31, 32, 33, 67] {
            Arch::new().dispatch(Check(n));
        }
    }
}
