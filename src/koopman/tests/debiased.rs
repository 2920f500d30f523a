//! The correlation and instrumental-variable estimators: online equals their own batch
//! formula to 1e-9 (relative Frobenius), export and restore continue bit for bit, and on a
//! linear system measured through white noise they are unbiased where ridge is not.

mod common;

use common::{TestRng, linear_trajectory, relative_error};
use koopman::{Estimator, EstimatorConfig, Method, Regularisation, batch};

const TOLERANCE: f64 = 1e-9;

struct Case {
    name: &'static str,
    n: usize,
    m: usize,
    spec: &'static str,
    method: Method,
    mu: f64,
    forgetting: f64,
    steps: usize,
    gaps: &'static [usize],
}

fn config(case: &Case) -> EstimatorConfig {
    let mut config = EstimatorConfig::new(EstimatorConfig::default_names("x", case.n), case.spec.parse().unwrap());
    config.input_names = EstimatorConfig::default_names("u", case.m);
    config.regularisation = Regularisation::Mu(case.mu);
    config.forgetting = case.forgetting;
    config.method = case.method;
    config.warmup = 300;
    config.refactor_every = 500;
    config.solve_every = 250;
    config
}

fn feed(estimator: &mut Estimator, case: &Case, states: &[f64], inputs: &[f64], range: std::ops::Range<usize>) {
    let (n, m) = (case.n, case.m);
    for k in range {
        if case.gaps.contains(&k) {
            estimator.break_chain();
        }
        estimator.push(&states[k * n..(k + 1) * n], &inputs[k * m..(k + 1) * m]).unwrap();
    }
}

fn run(case: &Case) {
    let (states, inputs, _) = linear_trajectory(case.n, case.m, case.steps, 0.05, 23);
    let mut estimator = Estimator::new(config(case)).unwrap();
    feed(&mut estimator, case, &states, &inputs, 0..case.steps);
    estimator.solve_now().unwrap();
    let lifting = estimator.lifting().unwrap();
    let starts: Vec<bool> = (0..case.steps).map(|k| k == 0 || case.gaps.contains(&k)).collect();
    let pairs = batch::stack_pairs(lifting, &states, &inputs, Some(&starts));
    assert_eq!(estimator.counters().pairs, pairs.regressors.nrows() as u64, "{}", case.name);
    let reference = match case.method {
        Method::Correlation { lags, rank } => {
            let first = estimator.config().first_free_lag();
            batch::debiased::correlation(&pairs, first, lags, rank, case.forgetting, lifting.constant_index())
        }
        Method::InstrumentalVariable { delay } => {
            batch::debiased::instrumental(&pairs, delay, case.mu, case.forgetting)
        }
        Method::Ridge => unreachable!(),
    }
    .unwrap();
    let online = estimator.k().unwrap();
    let error = relative_error(online.as_ref(), reference.as_ref());
    eprintln!("{}: {error:e}", case.name);
    assert!(error < TOLERANCE, "{}: online vs batch {error:e}", case.name);
    // The ridge recursion still runs beside it, and serves nothing here.
    assert!(relative_error(estimator.ridge_k().unwrap().as_ref(), reference.as_ref()) > 1e3 * TOLERANCE);
}

#[test]
fn correlation_online_equals_batch() {
    for case in [
        Case {
            name: "state, no forgetting",
            n: 3,
            m: 0,
            spec: "state",
            method: Method::Correlation { lags: 30, rank: None },
            mu: 1e-6,
            forgetting: 1.0,
            steps: 3000,
            gaps: &[],
        },
        Case {
            name: "delays, constant, forgetting, gaps, truncated rank",
            n: 3,
            m: 0,
            spec: "state,const,delay:2",
            method: Method::Correlation { lags: 40, rank: Some(6) },
            mu: 1e-6,
            forgetting: 0.999,
            steps: 4000,
            gaps: &[150, 1200, 1201, 2500],
        },
        Case {
            name: "quadratic dictionary",
            n: 2,
            m: 0,
            spec: "state,poly:2",
            method: Method::Correlation { lags: 20, rank: None },
            mu: 1e-6,
            forgetting: 1.0,
            steps: 2500,
            gaps: &[900],
        },
    ] {
        run(&case);
    }
}

#[test]
fn instrumental_online_equals_batch() {
    for case in [
        Case {
            name: "state, inputs",
            n: 3,
            m: 1,
            spec: "state,const",
            method: Method::InstrumentalVariable { delay: 2 },
            mu: 1e-6,
            forgetting: 1.0,
            steps: 3000,
            gaps: &[],
        },
        Case {
            name: "delays, forgetting, gaps, mu = 0",
            n: 2,
            m: 0,
            spec: "state,delay:3",
            method: Method::InstrumentalVariable { delay: 5 },
            mu: 0.0,
            forgetting: 0.998,
            steps: 4000,
            gaps: &[100, 2000, 2001, 3100],
        },
        Case {
            name: "large (N' = 30)",
            n: 10,
            m: 0,
            spec: "state,delay:2",
            method: Method::InstrumentalVariable { delay: 3 },
            mu: 1e-3,
            forgetting: 1.0,
            steps: 3000,
            gaps: &[1500],
        },
    ] {
        run(&case);
    }
}

#[test]
fn export_and_restore_continue_bit_for_bit() {
    for method in [Method::Correlation { lags: 25, rank: Some(4) }, Method::InstrumentalVariable { delay: 3 }] {
        let case = Case {
            name: "restore",
            n: 2,
            m: 0,
            spec: "state,const,delay:1",
            method,
            mu: 1e-6,
            forgetting: 0.999,
            steps: 2000,
            gaps: &[700],
        };
        let (states, inputs, _) = linear_trajectory(case.n, case.m, case.steps, 0.05, 5);
        let mut straight = Estimator::new(config(&case)).unwrap();
        feed(&mut straight, &case, &states, &inputs, 0..case.steps);
        let mut first = Estimator::new(config(&case)).unwrap();
        feed(&mut first, &case, &states, &inputs, 0..1111);
        let state = first.export_state();
        let mut resumed = Estimator::restore(config(&case), state.clone()).unwrap();
        assert_eq!(resumed.export_state(), state);
        feed(&mut resumed, &case, &states, &inputs, 1111..case.steps);
        assert_eq!(resumed.export_state(), straight.export_state(), "{method:?}");
        assert_eq!(resumed.k().unwrap(), straight.k().unwrap());
        // A state of another method is refused.
        let other = EstimatorConfig { method: Method::Ridge, ..config(&case) };
        assert!(Estimator::restore(other, straight.export_state()).is_err());
    }
}

/// A damped oscillator x' = A x + w seen as y = x + v, with var(v) comparable to the
/// signal's: least squares shrinks the eigenvalue's modulus (errors in variables), the
/// instrumental-variable and correlation estimators do not.
#[test]
fn debiased_estimators_are_unbiased_where_ridge_is_not() {
    const SEEDS: u64 = 24;
    const STEPS: usize = 20_000;
    let (r, theta) = (0.97_f64, 0.25_f64);
    let a = [r * theta.cos(), -r * theta.sin(), r * theta.sin(), r * theta.cos()];
    let moduli = |method: Method| -> Vec<f64> {
        (0..SEEDS)
            .map(|seed| {
                let mut rng = TestRng::new(1000 + seed);
                let mut config = EstimatorConfig::new(vec!["y1".into(), "y2".into()], "state".parse().unwrap());
                config.method = method;
                config.standardise = false;
                config.regularisation = Regularisation::Mu(1e-8);
                let mut estimator = Estimator::new(config).unwrap();
                let mut x = [0.0, 0.0];
                for _ in 0..STEPS {
                    x = [a[0] * x[0] + a[1] * x[1] + rng.normal(), a[2] * x[0] + a[3] * x[1] + rng.normal()];
                    // Signal variance ~ 1 / (1 - r^2) = 16.9; measurement noise variance 9.
                    let y = [x[0] + 3.0 * rng.normal(), x[1] + 3.0 * rng.normal()];
                    estimator.push(&y, &[]).unwrap();
                }
                estimator.solve_now().unwrap();
                let model = estimator.linear_model().unwrap();
                let modes = koopman::spectrum::modes(model.a.as_ref(), model.c.as_ref(), 1.0).unwrap();
                modes.iter().map(|m| m.eigenvalue.norm()).fold(0.0, f64::max)
            })
            .collect()
    };
    let summary = |v: &[f64]| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
        (mean, sd / (v.len() as f64).sqrt())
    };
    let (ridge, ridge_se) = summary(&moduli(Method::Ridge));
    // Theory for ridge: the modulus shrinks by about var(x) / (var(x) + var(v)) = 0.65.
    assert!(r - ridge > 0.2, "ridge should be biased: mean |lambda| {ridge} (se {ridge_se}) vs {r}");
    for method in [Method::InstrumentalVariable { delay: 1 }, Method::Correlation { lags: 20, rank: Some(2) }] {
        let (mean, se) = summary(&moduli(method));
        eprintln!("{method:?}: {mean} ± {se}; ridge {ridge}");
        // Unbiased: the mean over seeds within 4 standard errors (and 0.01) of the truth.
        assert!((mean - r).abs() < (4.0 * se).max(0.01), "{method:?}: mean |lambda| {mean} (se {se}) vs {r}");
    }
}
