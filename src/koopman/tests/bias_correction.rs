//! The small-sample bias correction against Monte Carlo: the mean damping ratio of an
//! AR(2) oscillation identified from short records, raw and corrected, over seeded
//! realisations, with equal weights and with forgetting.

mod common;

use common::feed_ar2;
use koopman::spectrum::{analyse, modes};
use koopman::{Estimator, EstimatorConfig, Regularisation, c64};

/// 0.5 Hz at 5 % damping, Ts = 0.1 s.
const TS: f64 = 0.1;
const FREQUENCY: f64 = 0.5;
const DAMPING: f64 = 0.05;

fn pole() -> c64 {
    let omega_n = std::f64::consts::TAU * FREQUENCY / (1.0 - DAMPING * DAMPING).sqrt();
    (c64::new(-DAMPING * omega_n, std::f64::consts::TAU * FREQUENCY) * TS).exp()
}

/// The raw and the corrected damping ratio of the oscillation after `samples` samples of
/// x_{k+1} = a1 x_k + a2 x_{k-1} + e, started in steady state, through a
/// `state,const,delay:1` estimator with forgetting factor `rho`.
fn damping_pair(samples: usize, rho: f64, seed: u64) -> (f64, Option<f64>) {
    let lambda = pole();
    let (a1, a2) = (2.0 * lambda.re, -lambda.norm_sqr());
    let mut config = EstimatorConfig::new(vec!["x".into()], "state,const,delay:1".parse().unwrap());
    config.regularisation = Regularisation::Mu(1e-9);
    config.warmup = 50;
    config.forgetting = rho;
    let mut e = Estimator::new(config).unwrap();
    feed_ar2(&mut e, [a1, a2], 2000, samples, seed);
    let model = e.linear_model().unwrap();
    let stats = e.mode_statistics().unwrap();
    let raw = modes(model.a.as_ref(), model.c.as_ref(), TS)
        .unwrap()
        .iter()
        .find(|m| m.eigenvalue.im > 0.0)
        .and_then(|m| m.continuous)
        .expect("the oscillation")
        .damping_ratio;
    let analysed = analyse(model.a.as_ref(), model.c.as_ref(), TS, &stats).unwrap();
    let corrected = analysed
        .iter()
        .find(|m| m.mode.eigenvalue.im > 0.0 && m.bias_corrected)
        .and_then(|m| m.mode.continuous)
        .map(|c| c.damping_ratio);
    (raw, corrected)
}

#[test]
fn the_correction_removes_most_of_the_damping_bias_of_short_records() {
    // 1000 seeded realisations each: 400 and 800 equally weighted pairs (6.3 and 13
    // periods of the mode), and forgetting 0.995 (T_eff = 399) after 3000 pairs. The raw
    // least-squares damping is biased up by 6.5, 3.5 and 6.6 thousandths (9, 7 and 10
    // standard errors); the corrected mean must sit within 0.35 of that bias from the
    // truth. Measured: 0.22, 0.10 and 0.19 of it, below the truth (the O(1/T^2) rest).
    // Doubling the correction fails (-9 thousandths at T = 400). The mean's term matters
    // little for an oscillation; the AR(1) unit test in bias.rs checks it.
    for (samples, rho) in [(400, 1.0), (800, 1.0), (3000, 0.995)] {
        let runs = 1000;
        let pairs: Vec<(f64, Option<f64>)> = (0..runs).map(|seed| damping_pair(samples, rho, 500 + seed)).collect();
        let corrected: Vec<f64> = pairs.iter().filter_map(|p| p.1).collect();
        // A near-unit-root draw whose correction cannot be made stable is left raw; rare.
        assert!(corrected.len() as u64 >= runs - 5, "{} of {runs} corrected", corrected.len());
        let n = runs as f64;
        let raw_mean = pairs.iter().map(|p| p.0).sum::<f64>() / n;
        let raw_se = (pairs.iter().map(|p| (p.0 - raw_mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt() / n.sqrt();
        let corrected_mean = corrected.iter().sum::<f64>() / corrected.len() as f64;
        let (raw_bias, corrected_bias) = (raw_mean - DAMPING, corrected_mean - DAMPING);
        assert!(
            raw_bias > 4.0 * raw_se,
            "T = {samples}, rho = {rho}: raw bias {raw_bias} (se {raw_se}) too small to test"
        );
        assert!(
            corrected_bias.abs() < 0.35 * raw_bias,
            "T = {samples}, rho = {rho}: corrected bias {corrected_bias} against raw {raw_bias}"
        );
    }
}
