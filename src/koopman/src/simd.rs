//! Slice kernels written once over pulp's `Simd` trait, so that they compile to AVX2 + FMA
//! (or SSE2) inside whichever dispatched update inlines them. Always inlined: outside a
//! dispatched context they would run at the baseline width.

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

/// Returns c . x and does y += alpha c, reading c once.
#[inline(always)]
pub(crate) fn dot_and_axpy<S: Simd>(simd: S, c: &[f64], x: &[f64], alpha: f64, y: &mut [f64]) -> f64 {
    let (c_head, c_tail) = S::as_simd_f64s(c);
    let (x_head, x_tail) = S::as_simd_f64s(x);
    let (y_head, y_tail) = S::as_mut_simd_f64s(y);
    let a = simd.splat_f64s(alpha);
    let mut acc = [simd.splat_f64s(0.0); 2];
    let mut lane = 0;
    for ((cv, xv), yv) in c_head.iter().zip(x_head).zip(y_head.iter_mut()) {
        acc[lane] = simd.mul_add_f64s(*cv, *xv, acc[lane]);
        *yv = simd.mul_add_f64s(a, *cv, *yv);
        lane ^= 1;
    }
    let mut tail = 0.0;
    for ((ci, xi), yi) in c_tail.iter().zip(x_tail).zip(y_tail.iter_mut()) {
        tail += ci * xi;
        *yi += alpha * ci;
    }
    simd.reduce_sum_f64s(simd.add_f64s(acc[0], acc[1])) + tail
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
