//! Speed of the estimator: the per-sample update against a multiply-add bound, and the
//! batch refit it replaces. Run with `cargo bench -p koopman`.
//!
//! Multiply-adds per rank-one update, N' = N + m regressors and N targets (here m = 0):
//! P p on the stored lower triangle N'^2, the P update N'^2 / 2, the Gram sum N'^2 / 2,
//! K^T p, the K update and the cross sum 3 N' N; with N = N' that is 5 N'^2. The
//! `multiply_add_bound` benchmark performs exactly 5 N'^2 multiply-adds as five axpy
//! sweeps over a preallocated N' x N' matrix, so update / bound is the overhead factor.
//! `multiply_add_bound_simd` does the same sweeps with the runtime-dispatched SIMD width
//! (AVX2 + FMA where present) that the update itself uses: the fair bound for it. From
//! N' = 24 the update defers its matrix updates into rank-B products (see `deferred.rs`),
//! so it can run below both bounds: they stand for five bandwidth-bound sweeps.
//!
//! `update_windowed` is the sliding-window step (a window of 2 N' pairs, full): one
//! rank-two Woodbury step per pair, adding the new pair and removing the oldest.

use divan::{Bencher, black_box};
use koopman::{Estimator, EstimatorConfig, Regularisation, batch};

fn main() {
    divan::main();
}

const SIZES: [usize; 4] = [8, 32, 128, 512];

/// Deterministic pseudo-random samples (a linear congruential walk is enough here).
fn samples(n: usize, count: usize) -> Vec<f64> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..n * count)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

/// An estimator whose lifted dimension is exactly `n` (dictionary `state`), past warm-up
/// (and with its window full, if it has one).
fn ready_estimator(n: usize, window: Option<usize>) -> Estimator {
    let mut config = EstimatorConfig::new(EstimatorConfig::default_names("x", n), "state".parse().unwrap());
    config.regularisation = Regularisation::Mu(1.0);
    config.standardise = false;
    config.warmup = 0;
    config.window = window;
    let mut estimator = Estimator::new(config).unwrap();
    for x in samples(n, 2 * n + window.unwrap_or(0) + 10).chunks_exact(n) {
        estimator.push(x, &[]).unwrap();
    }
    estimator
}

/// Pushes samples one at a time into a ready estimator (a block of 997 distinct samples,
/// cycled).
fn push_one_at_a_time(bencher: Bencher, n: usize, window: Option<usize>) {
    const BLOCK: usize = 997;
    let data = samples(n, BLOCK);
    let mut estimator = ready_estimator(n, window);
    let mut k = 0;
    bencher.counter(divan::counter::ItemsCount::new(1usize)).bench_local(|| {
        let x = &data[k * n..(k + 1) * n];
        k = (k + 1) % BLOCK;
        black_box(estimator.push(black_box(x), &[]).unwrap())
    });
}

/// 256 updates per sample: every sample then holds whole blocks of deferred pairs (at most
/// 32) with their flush, so the median is the amortised cost, not that of the pairs
/// between flushes.
#[divan::bench(args = SIZES, sample_size = 256)]
fn update(bencher: Bencher, n: usize) {
    push_one_at_a_time(bencher, n, None);
}

/// The windowed update (window of 2 N' pairs, already full): every pair is a rank-two
/// step that also removes the oldest pair.
#[divan::bench(args = SIZES)]
fn update_windowed(bencher: Bencher, n: usize) {
    push_one_at_a_time(bencher, n, Some(2 * n));
}

#[divan::bench(args = SIZES)]
fn multiply_add_bound(bencher: Bencher, n: usize) {
    let mut matrix = samples(n, n);
    let vector = samples(n, 1);
    bencher.bench_local(|| {
        for sweep in 0..5 {
            let alpha = black_box(1e-9 * sweep as f64);
            for col in matrix.chunks_exact_mut(n) {
                for (m, v) in col.iter_mut().zip(&vector) {
                    *m += alpha * v;
                }
            }
        }
        black_box(&matrix);
    });
}

/// The bound's five sweeps at the runtime-dispatched SIMD width.
struct SimdSweeps<'a> {
    matrix: &'a mut [f64],
    vector: &'a [f64],
}

impl pulp::WithSimd for SimdSweeps<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, simd: S) {
        let n = self.vector.len();
        for sweep in 0..5 {
            let alpha = simd.splat_f64s(black_box(1e-9 * sweep as f64));
            let (v_head, _) = S::as_simd_f64s(self.vector);
            for col in self.matrix.chunks_exact_mut(n) {
                let (c_head, _) = S::as_mut_simd_f64s(col);
                for (m, v) in c_head.iter_mut().zip(v_head) {
                    *m = simd.mul_add_f64s(alpha, *v, *m);
                }
            }
        }
    }
}

#[divan::bench(args = SIZES)]
fn multiply_add_bound_simd(bencher: Bencher, n: usize) {
    let mut matrix = samples(n, n);
    let vector = samples(n, 1);
    let arch = pulp::Arch::new();
    bencher.bench_local(|| {
        arch.dispatch(SimdSweeps { matrix: &mut matrix, vector: &vector });
        black_box(&matrix);
    });
}

/// Exact refactorisation from the running sums (Cholesky, inverse, solve): O(N'^3).
#[divan::bench(args = SIZES, sample_count = 20)]
fn refactorise_from_sums(bencher: Bencher, n: usize) {
    let mut estimator = ready_estimator(n, None);
    bencher.bench_local(|| estimator.refactorise().unwrap());
}

/// A batch refit over 10^4 pairs (QR of the stacked data): what a non-recursive service
/// would pay per new sample.
#[divan::bench(args = SIZES, sample_count = 3, sample_size = 1)]
fn batch_refit_10k_pairs(bencher: Bencher, n: usize) {
    const PAIRS: usize = 10_000;
    let data = samples(n, PAIRS + 1);
    let x = faer::Mat::from_fn(PAIRS, n, |i, j| data[i * n + j]);
    let y = faer::Mat::from_fn(PAIRS, n, |i, j| data[(i + 1) * n + j]);
    bencher.bench_local(|| batch::solve(x.as_ref(), y.as_ref(), 1.0, None).unwrap());
}
