//! Property tests: on random data the recursive update equals an exact refactorisation,
//! and prediction with the identity dictionary on a linear system is exact.

mod common;

use common::{TestRng, relative_error};
use koopman::{Estimator, EstimatorConfig, PredictionMode, Regularisation};
use proptest::prelude::*;

const SPECS: [&str; 4] = ["state", "state,const,poly:2", "state,const,delay:2", "state,fourier:6"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn update_equals_refactorisation(
        n in 1usize..4,
        m in 0usize..3,
        spec in 0usize..SPECS.len(),
        mu in prop_oneof![Just(0.0), 1e-4f64..10.0],
        forgetting in prop_oneof![Just(1.0), 0.95f64..1.0],
        window in prop_oneof![Just(None), (40usize..200).prop_map(Some)],
        samples in 100usize..700,
        seed in any::<u64>(),
    ) {
        let mut config = EstimatorConfig::new(EstimatorConfig::default_names("x", n), SPECS[spec].parse().unwrap());
        config.input_names = EstimatorConfig::default_names("u", m);
        config.regularisation = Regularisation::Mu(mu);
        config.window = window;
        config.forgetting = if window.is_some() { 1.0 } else { forgetting };
        config.warmup = 30;
        config.refactor_every = usize::MAX;
        prop_assume!(config.validate().is_ok());
        let mut estimator = Estimator::new(config).unwrap();
        let mut rng = TestRng::new(seed);
        for _ in 0..samples {
            let x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            let u: Vec<f64> = (0..m).map(|_| rng.normal()).collect();
            estimator.push(&x, &u).unwrap();
        }
        prop_assume!(estimator.k().is_some());
        let online = estimator.k().unwrap();
        let mut exact = estimator.clone();
        exact.refactorise().unwrap();
        let error = relative_error(online.as_ref(), exact.k().unwrap().as_ref());
        // Both sides carry rounding amplified by the condition number of G; random windows
        // with mu = 0 can be poorly conditioned, so the bound scales with it.
        let (gram, _) = estimator.sums().unwrap();
        let eig = gram.self_adjoint_eigenvalues(faer::Side::Lower).unwrap();
        let condition = eig[eig.len() - 1] / eig[0];
        prop_assert!(error < 1e-10 + 1e-13 * condition, "relative error {} at condition {:e}", error, condition);
    }

    #[test]
    fn identity_dictionary_predicts_a_linear_system_exactly(
        n in 1usize..5,
        horizon in 1usize..30,
        seed in any::<u64>(),
    ) {
        let mut rng = TestRng::new(seed);
        // A with spectral radius below 1: a random matrix scaled by its Frobenius norm.
        let mut a: Vec<f64> = (0..n * n).map(|_| rng.normal()).collect();
        let norm = a.iter().map(|v| v * v).sum::<f64>().sqrt();
        a.iter_mut().for_each(|v| *v *= 0.9 / norm);
        let step = |x: &[f64]| -> Vec<f64> { (0..n).map(|i| (0..n).map(|j| a[i * n + j] * x[j]).sum()).collect() };
        let mut config = EstimatorConfig::new(EstimatorConfig::default_names("x", n), "state".parse().unwrap());
        config.regularisation = Regularisation::Mu(0.0);
        config.standardise = false;
        config.warmup = 10;
        let mut estimator = Estimator::new(config).unwrap();
        for _ in 0..20 {
            // Fresh random starts keep the data exciting in every direction.
            let mut x: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            estimator.break_chain();
            for _ in 0..5 {
                estimator.push(&x, &[]).unwrap();
                x = step(&x);
            }
        }
        let model = estimator.linear_model().unwrap();
        let start: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        for mode in [PredictionMode::Linear, PredictionMode::Relift] {
            let predicted = model.predict(&start, &[], horizon, mode).unwrap();
            let mut truth = start.clone();
            for k in 0..horizon {
                truth = step(&truth);
                for i in 0..n {
                    prop_assert!((predicted[k * n + i] - truth[i]).abs() < 1e-9, "{:?} step {} channel {}", mode, k, i);
                }
            }
        }
    }
}
