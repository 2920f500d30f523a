//! Speed of the de-biased estimators against ridge: the per-sample update with each method
//! (the ridge recursion runs in every case; instrumental variables add a non-symmetric
//! rank-one step, about 5 N'^2 multiply-adds more; the correlation estimator adds L N^2 for
//! its lag sums), and the correlation estimator's solve (a thin SVD of an N x N(L-1)
//! matrix), which runs every `solve_every` pairs. Run with `cargo bench -p koopman --bench
//! debiased`.

use divan::{Bencher, black_box};
use koopman::{Estimator, EstimatorConfig, Method, Regularisation};

fn main() {
    divan::main();
}

const SIZES: [usize; 3] = [8, 32, 64];

fn samples(n: usize, count: usize) -> Vec<f64> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..n * count)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        })
        .collect()
}

/// A ready estimator of `n` observables (`state`) with the method; the correlation
/// estimator never solves during the measurement (its solve is measured on its own).
fn ready(n: usize, method: Method) -> Estimator {
    let mut config = EstimatorConfig::new(EstimatorConfig::default_names("x", n), "state".parse().unwrap());
    config.regularisation = Regularisation::Mu(1.0);
    config.standardise = false;
    config.warmup = 0;
    config.method = method;
    config.solve_every = usize::MAX;
    let mut estimator = Estimator::new(config).unwrap();
    for x in samples(n, 4 * n + 200).chunks_exact(n) {
        estimator.push(x, &[]).unwrap();
    }
    estimator
}

fn push(bencher: Bencher, n: usize, method: Method) {
    const BLOCK: usize = 997;
    let data = samples(n, BLOCK);
    let mut estimator = ready(n, method);
    let mut k = 0;
    bencher.bench_local(|| {
        let x = &data[k * n..(k + 1) * n];
        k = (k + 1) % BLOCK;
        black_box(estimator.push(black_box(x), &[]).unwrap())
    });
}

#[divan::bench(args = SIZES)]
fn update_ridge(bencher: Bencher, n: usize) {
    push(bencher, n, Method::Ridge);
}

#[divan::bench(args = SIZES)]
fn update_iv(bencher: Bencher, n: usize) {
    push(bencher, n, Method::InstrumentalVariable { delay: 2 });
}

#[divan::bench(args = SIZES)]
fn update_correlation_30_lags(bencher: Bencher, n: usize) {
    push(bencher, n, Method::Correlation { lags: 30, rank: None });
}

#[divan::bench(args = SIZES)]
fn update_correlation_120_lags(bencher: Bencher, n: usize) {
    push(bencher, n, Method::Correlation { lags: 120, rank: None });
}

/// One solve of the correlation estimator with 120 lags.
#[divan::bench(args = SIZES, sample_count = 20, sample_size = 1)]
fn solve_correlation_120_lags(bencher: Bencher, n: usize) {
    let mut estimator = ready(n, Method::Correlation { lags: 120, rank: None });
    bencher.bench_local(|| estimator.solve_now().unwrap());
}
