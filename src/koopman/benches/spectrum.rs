//! Cost of one modal refresh at the sizes the service runs (N' = 32 channels times 5 for
//! `state,delay:4` = 160), split into its parts, so the eigen work per refresh can be
//! compared with the full decomposition it replaces. Run with
//! `cargo bench -p koopman --bench spectrum`.

use divan::{Bencher, black_box};
use koopman::{Estimator, EstimatorConfig, spectrum};

fn main() {
    divan::main();
}

/// Channel counts; the lifted dimension is five times each (`state,delay:4`).
const CHANNELS: [usize; 3] = [8, 16, 32];

/// An estimator on `channels` noisy measurements of lightly damped oscillators mixed
/// across the channels (like a grid's modes seen on many buses), after 3000 samples.
fn ready(channels: usize) -> Estimator {
    let mut config =
        EstimatorConfig::new(EstimatorConfig::default_names("x", channels), "state,delay:4".parse().unwrap());
    config.warmup = 200;
    let mut estimator = Estimator::new(config).unwrap();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut noise = move || {
        rng = rng.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (rng >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let pairs = channels / 2;
    let ts = 1.0 / 30.0;
    let mut state = vec![0.0; 2 * pairs];
    let mixing: Vec<f64> = (0..channels * 2 * pairs).map(|_| noise()).collect();
    let mut x = vec![0.0; channels];
    for _ in 0..3000 {
        for p in 0..pairs {
            let (f, zeta) = (0.2 + 0.15 * p as f64, 0.03 + 0.01 * p as f64);
            let r = (-zeta * std::f64::consts::TAU * f * ts).exp();
            let (s, c) = (std::f64::consts::TAU * f * ts).sin_cos();
            let (a, b) = (state[2 * p], state[2 * p + 1]);
            state[2 * p] = r * (c * a - s * b) + 0.1 * noise();
            state[2 * p + 1] = r * (s * a + c * b) + 0.1 * noise();
        }
        for (k, value) in x.iter_mut().enumerate() {
            *value = (0..2 * pairs).map(|j| mixing[k * 2 * pairs + j] * state[j]).sum::<f64>() + 0.01 * noise();
        }
        estimator.push(&x, &[]).unwrap();
    }
    estimator
}

#[divan::bench(args = CHANNELS, sample_size = 4, sample_count = 20)]
fn eigenvalues_only(bencher: Bencher, channels: usize) {
    let model = ready(channels).linear_model().unwrap();
    bencher.bench_local(|| black_box(spectrum::eigenvalues(model.a.as_ref()).unwrap()));
}

#[divan::bench(args = CHANNELS, sample_size = 4, sample_count = 20)]
fn eigen_with_vectors(bencher: Bencher, channels: usize) {
    let model = ready(channels).linear_model().unwrap();
    bencher.bench_local(|| black_box(model.a.as_ref().eigen().unwrap()));
}

#[divan::bench(args = CHANNELS, sample_size = 4, sample_count = 20)]
fn bias_correction(bencher: Bencher, channels: usize) {
    let estimator = ready(channels);
    let model = estimator.linear_model().unwrap();
    let stats = estimator.mode_statistics().unwrap();
    bencher.bench_local(|| black_box(koopman::bias::corrected(model.a.as_ref(), &stats)));
}

#[divan::bench(args = CHANNELS, sample_size = 4, sample_count = 20)]
fn analyse_full(bencher: Bencher, channels: usize) {
    let estimator = ready(channels);
    let model = estimator.linear_model().unwrap();
    let stats = estimator.mode_statistics().unwrap();
    bencher
        .bench_local(|| black_box(spectrum::analyse(model.a.as_ref(), model.c.as_ref(), 1.0 / 30.0, &stats).unwrap()));
}

#[divan::bench(args = CHANNELS, sample_size = 4, sample_count = 20)]
fn mode_statistics(bencher: Bencher, channels: usize) {
    let estimator = ready(channels);
    bencher.bench_local(|| black_box(estimator.mode_statistics().unwrap()));
}
