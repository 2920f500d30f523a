//! Identification of systems with a known answer: a noise-free linear system (eigenvalues
//! and input matrix exact) and the Van der Pol limit cycle (fundamental frequency).

mod common;

use common::{TestRng, van_der_pol};
use koopman::spectrum::{self, Continuous};
use koopman::{Estimator, EstimatorConfig, PredictionMode, Regularisation, c64};

#[test]
fn a_noise_free_linear_system_is_recovered_exactly() {
    // Block-diagonal A with known eigenvalues 0.9 +- 0.3i, 0.7, -0.5, in a random basis.
    let n = 4;
    let mut rng = TestRng::new(3);
    let block = [[0.9, -0.3, 0.0, 0.0], [0.3, 0.9, 0.0, 0.0], [0.0, 0.0, 0.7, 0.0], [0.0, 0.0, 0.0, -0.5]];
    let t: Vec<Vec<f64>> = (0..n).map(|_| (0..n).map(|_| rng.normal()).collect()).collect();
    let t_mat = faer::Mat::from_fn(n, n, |i, j| t[i][j]);
    let t_inv = faer::linalg::solvers::DenseSolveCore::inverse(&t_mat.partial_piv_lu());
    let a = &t_mat * faer::Mat::from_fn(n, n, |i, j| block[i][j]) * &t_inv;
    let b = faer::Mat::from_fn(n, 1, |i, _| 0.5 + i as f64);
    let mut config = EstimatorConfig::new(EstimatorConfig::default_names("x", n), "state".parse().unwrap());
    config.input_names = vec!["u".into()];
    config.regularisation = Regularisation::Mu(0.0);
    config.standardise = false;
    config.warmup = 20;
    let mut estimator = Estimator::new(config).unwrap();
    let mut x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
    for _ in 0..2000 {
        let u = rng.normal();
        estimator.push(&x, &[u]).unwrap();
        x = (0..n).map(|i| (0..n).map(|j| a[(i, j)] * x[j]).sum::<f64>() + b[(i, 0)] * u).collect();
    }
    let model = estimator.linear_model().unwrap();
    let mut found = spectrum::eigenvalues(model.a.as_ref()).unwrap();
    let mut expected = vec![c64::new(0.9, 0.3), c64::new(0.9, -0.3), c64::new(0.7, 0.0), c64::new(-0.5, 0.0)];
    let key = |z: &c64| (z.re * 1e6).round() as i64 * 10_000_000 + (z.im * 1e6).round() as i64;
    found.sort_by_key(key);
    expected.sort_by_key(key);
    for (f, e) in found.iter().zip(&expected) {
        assert!((f - e).norm() < 1e-9, "eigenvalue {f} vs {e}");
    }
    for i in 0..n {
        assert!((model.b[(i, 0)] - b[(i, 0)]).abs() < 1e-9);
    }
    // Prediction with the identity dictionary on a linear system is exact.
    let inputs = [0.3, -0.2, 0.1];
    let predicted = model.predict(&x, &inputs, 3, PredictionMode::Linear).unwrap();
    let mut truth = x.clone();
    for (step, u) in inputs.iter().enumerate() {
        truth = (0..n).map(|i| (0..n).map(|j| a[(i, j)] * truth[j]).sum::<f64>() + b[(i, 0)] * u).collect();
        for i in 0..n {
            assert!((predicted[step * n + i] - truth[i]).abs() < 1e-9 * (1.0 + truth[i].abs()));
        }
    }
}

/// Van der Pol at mu = 1 has period 6.663287 s on its limit cycle.
const VDP_OMEGA: f64 = std::f64::consts::TAU / 6.663287;

fn vdp_fundamental(spec: &str, ts: f64) -> f64 {
    // Start on the cycle: run 60 s of transient first.
    let transient = van_der_pol(1.0, [2.0, 0.0], ts, (60.0 / ts) as usize, 20);
    let start = [transient[transient.len() - 2], transient[transient.len() - 1]];
    let samples = van_der_pol(1.0, start, ts, 4000, 20);
    let mut config = EstimatorConfig::new(EstimatorConfig::default_names("x", 2), spec.parse().unwrap());
    config.regularisation = Regularisation::Mu(1e-8);
    let mut estimator = Estimator::new(config).unwrap();
    for x in samples.chunks_exact(2) {
        estimator.push(x, &[]).unwrap();
    }
    let model = estimator.linear_model().unwrap();
    let eigenvalues = spectrum::eigenvalues(model.a.as_ref()).unwrap();
    let nearest = eigenvalues
        .iter()
        .filter_map(|l| Continuous::of(*l, ts))
        .min_by(|a, b| (a.s.im.abs() - VDP_OMEGA).abs().total_cmp(&(b.s.im.abs() - VDP_OMEGA).abs()))
        .unwrap();
    nearest.s.im.abs()
}

/// Measured (Ts = 0.1 s, 4000 samples on the cycle): poly:3 2.6e-4, poly:5 1.4e-7,
/// delay:8 1.7e-3, rbf:30 8.6e-6 relative error; the requirement is 0.5 %.
#[test]
fn van_der_pol_fundamental_frequency_within_half_a_percent() {
    for spec in ["state,const,poly:3", "state,const,poly:5", "state,delay:8", "state,const,rbf:30"] {
        let omega = vdp_fundamental(spec, 0.1);
        let error = (omega / VDP_OMEGA - 1.0).abs();
        println!("{spec}: omega {omega:.6} rad/s, relative error {error:.2e}");
        assert!(error < 5e-3, "{spec}: relative error {error:e}");
    }
}
