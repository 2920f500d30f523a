//! The core invariant: the online K equals the batch ridge solution over exactly the pairs
//! the estimator used, to 1e-9 relative (Frobenius), for every kind of model.

mod common;

use common::{linear_trajectory, relative_error};
use koopman::{Estimator, EstimatorConfig, Regularisation, batch};

const TOLERANCE: f64 = 1e-9;

struct Case {
    name: &'static str,
    n: usize,
    m: usize,
    spec: &'static str,
    mu: f64,
    forgetting: f64,
    window: Option<usize>,
    refactor_every: usize,
    steps: usize,
}

fn run(case: &Case) {
    let (states, inputs, _) = linear_trajectory(case.n, case.m, case.steps, 0.05, 17);
    let mut config = EstimatorConfig::new(EstimatorConfig::default_names("x", case.n), case.spec.parse().unwrap());
    config.input_names = EstimatorConfig::default_names("u", case.m);
    config.regularisation = Regularisation::Mu(case.mu);
    config.forgetting = case.forgetting;
    config.window = case.window;
    config.refactor_every = case.refactor_every;
    config.warmup = 300;
    let mut estimator = Estimator::new(config).unwrap();
    let (n, m) = (case.n, case.m);
    for k in 0..case.steps {
        estimator.push(&states[k * n..(k + 1) * n], &inputs[k * m..(k + 1) * m]).unwrap();
    }
    let lifting = estimator.lifting().unwrap();
    let pairs = batch::stack_pairs(lifting, &states, &inputs, None);
    let total = pairs.regressors.nrows();
    assert_eq!(estimator.counters().pairs, total as u64);
    let reference = match case.window {
        Some(w) => {
            let first = total - w;
            batch::solve(pairs.regressors.subrows(first, w), pairs.targets.subrows(first, w), case.mu, None)
        }
        None => {
            // With forgetting, pair j of M carries weight rho^(M - j + 1) and the ridge rho^M.
            let rho = case.forgetting;
            let weights: Vec<f64> = (1..=total).map(|j| rho.powi((total - j + 1) as i32)).collect();
            batch::solve(
                pairs.regressors.as_ref(),
                pairs.targets.as_ref(),
                case.mu * rho.powi(total as i32),
                Some(&weights),
            )
        }
    }
    .unwrap();
    let online = estimator.k().unwrap();
    let error = relative_error(online.as_ref(), reference.as_ref());
    println!("{}: N' = {}, pairs = {total}, relative error {error:.2e}", case.name, online.nrows());
    assert!(error < TOLERANCE, "{}: relative error {error:e}", case.name);
}

#[test]
fn plain_ridge_small_and_large() {
    run(&Case {
        name: "state n=4",
        n: 4,
        m: 0,
        spec: "state,const",
        mu: 1e-3,
        forgetting: 1.0,
        window: None,
        refactor_every: 1_000_000,
        steps: 4000,
    });
    // N = 12 + 1 + 78 = 91, plus 10 inputs: N' = 101.
    run(&Case {
        name: "poly:2 n=12 m=10",
        n: 12,
        m: 10,
        spec: "state,const,poly:2",
        mu: 0.1,
        forgetting: 1.0,
        window: None,
        refactor_every: 1_000_000,
        steps: 5000,
    });
}

#[test]
fn unregularised_and_with_refactorisation() {
    run(&Case {
        name: "edmd mu=0",
        n: 3,
        m: 2,
        spec: "state,const,poly:3",
        mu: 0.0,
        forgetting: 1.0,
        window: None,
        refactor_every: 500,
        steps: 3000,
    });
    run(&Case {
        name: "delays",
        n: 3,
        m: 1,
        spec: "state,const,delay:3",
        mu: 1.0,
        forgetting: 1.0,
        window: None,
        refactor_every: 777,
        steps: 3000,
    });
}

#[test]
fn with_forgetting() {
    run(&Case {
        name: "forgetting 0.998",
        n: 5,
        m: 2,
        spec: "state,const,poly:2",
        mu: 0.5,
        forgetting: 0.998,
        window: None,
        refactor_every: 1_000_000,
        steps: 3000,
    });
    run(&Case {
        name: "forgetting 0.99 refactor",
        n: 4,
        m: 0,
        spec: "state,const,rbf:10",
        mu: 0.5,
        forgetting: 0.99,
        window: None,
        refactor_every: 400,
        steps: 3000,
    });
}

#[test]
fn with_a_sliding_window() {
    run(&Case {
        name: "window 500",
        n: 5,
        m: 2,
        spec: "state,const,poly:2",
        mu: 0.5,
        forgetting: 1.0,
        window: Some(500),
        refactor_every: 1_000_000,
        steps: 4000,
    });
    run(&Case {
        name: "window 120 mu=0",
        n: 8,
        m: 3,
        spec: "state,const,poly:2",
        mu: 0.0,
        forgetting: 1.0,
        window: Some(120),
        refactor_every: 1_000,
        steps: 3000,
    });
    run(&Case {
        name: "window fourier",
        n: 3,
        m: 0,
        spec: "state,fourier:40:2",
        mu: 1e-2,
        forgetting: 1.0,
        window: Some(1000),
        refactor_every: 1_000_000,
        steps: 3000,
    });
}
