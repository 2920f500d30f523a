//! A million updates: P stays symmetric positive definite and K stays within 1e-8 of the
//! batch solution, thanks to the periodic exact refactorisation.

mod common;

use common::{linear_trajectory, relative_error};
use koopman::{Estimator, EstimatorConfig, Progress, Regularisation, batch};

#[test]
fn a_million_updates_stay_exact_and_positive_definite() {
    let (n, m, steps) = (4, 1, 1_000_000);
    let (states, inputs, _) = linear_trajectory(n, m, steps, 0.01, 99);
    let mut config =
        EstimatorConfig::new(EstimatorConfig::default_names("x", n), "state,const,poly:2".parse().unwrap());
    config.input_names = vec!["u".into()];
    config.regularisation = Regularisation::Mu(1e-3);
    let mut estimator = Estimator::new(config).unwrap();
    for k in 0..steps {
        estimator.push(&states[k * n..(k + 1) * n], &inputs[k * m..(k + 1) * m]).unwrap();
    }
    assert_eq!(estimator.progress(), Progress::Ready);
    let counters = estimator.counters();
    assert_eq!(counters.pairs, steps as u64 - 1);
    assert!(counters.refactorisations >= 400, "{counters:?}");
    assert_eq!(counters.health_failures, 0);

    let p = estimator.p().unwrap();
    for i in 0..p.nrows() {
        for j in 0..i {
            assert_eq!(p[(i, j)], p[(j, i)], "P is exactly symmetric");
        }
    }
    assert!(p.llt(faer::Side::Lower).is_ok(), "P is positive definite");
    let (gram, _) = estimator.sums().unwrap();
    let identity = faer::Mat::<f64>::identity(p.nrows(), p.ncols());
    let product = &p * &gram;
    assert!(relative_error(product.as_ref(), identity.as_ref()) < 1e-8, "P G = I");

    let pairs = batch::stack_pairs(estimator.lifting().unwrap(), &states, &inputs, None);
    let reference = batch::solve(pairs.regressors.as_ref(), pairs.targets.as_ref(), 1e-3, None).unwrap();
    let error = relative_error(estimator.k().unwrap().as_ref(), reference.as_ref());
    println!("after {steps} updates: relative error {error:.2e}");
    assert!(error < 1e-8, "relative error {error:e}");
}
