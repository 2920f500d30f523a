//! End-to-end identification from noisy data, through the online estimator: the IEEE 68-bus
//! fault ring-down against the post-fault inter-area modes, and Van der Pol multi-step
//! prediction, robust (mu from sigma) against EDMD. They call the same routines as
//! `koopstream experiment`; tolerances and the measurements behind them are stated here.

use experiments::fitting;
use experiments::identify::{MatchedMode, TrueMode};
use experiments::ieee68::{self, Ieee68Setup, Ridge};
use experiments::vdp;
use koopman::PredictionMode;

/// Noise realisations of the ring-down test (measurement-noise seeds 0..5).
const RINGDOWN_SEEDS: u64 = 5;

fn describe(truth: &TrueMode, found: &Option<MatchedMode>) -> String {
    match found {
        Some(m) => format!(
            "{:.4} Hz {:5.2} %: identified {:.4} Hz {:5.2} %, error {:+.2} % / {:+.2} pt, MAC {:.2}",
            truth.frequency_hz,
            100.0 * truth.damping_ratio,
            m.frequency_hz,
            100.0 * m.damping_ratio,
            100.0 * m.frequency_error(truth),
            m.damping_error_points(truth),
            m.mac
        ),
        None => format!("{:.4} Hz {:5.2} %: not identified", truth.frequency_hz, 100.0 * truth.damping_ratio),
    }
}

fn assert_within(truth: &TrueMode, found: &Option<MatchedMode>, percent: f64, points: f64, what: &str) {
    let m = found.unwrap_or_else(|| panic!("{what}: {:.3} Hz mode not identified", truth.frequency_hz));
    assert!(m.mac >= 0.5, "{what}: {}", describe(truth, found));
    assert!((100.0 * m.frequency_error(truth)).abs() <= percent, "{what}: {}", describe(truth, found));
    assert!(m.damping_error_points(truth).abs() <= points, "{what}: {}", describe(truth, found));
}

/// IEEE 68-bus fault ring-down (fault at bus 29, cleared after 0.05 s by opening line 28-29),
/// 30 s at 30 frames/s, the 16 speeds at 40 dB SNR, samples before 0.5 s after clearing
/// dropped, dictionary `state,delay:20`, mu = 0, judged against the post-fault network
/// linearised at the post-fault equilibrium (0.374, 0.493, 0.595, 0.782 Hz; the issue's
/// 0.378, 0.489, 0.620, 0.781 Hz are the post-fault network at the pre-fault angles).
///
/// Measured over 100 noise realisations (seeds 0..100, same code): worst errors
/// - 0.374 Hz (slowest): 0.34 % / 0.42 pt, always found (MAC 1.00);
/// - 0.493 Hz: 2.44 % / 2.11 pt, always found, MAC down to 0.67: weakly excited (its speed
///   amplitude after clearing is ~1e-4 pu, a tenth of the slowest mode's), and even at
///   60 dB it carries a ~1 % / 1.5 pt bias from the nonlinear first swings;
/// - 0.595 Hz: 0.37 % / 0.33 pt, always found;
/// - 0.782 Hz: never identified, at any SNR up to 60 dB: this fault barely excites it (speed
///   amplitude ~4e-5 pu, 30 times below the strongest inter-area mode and as small as the
///   part of the record the linearisation does not explain), so it is printed, not asserted.
///
/// Asserted on 5 realisations: the slowest and the 0.595 Hz mode within 1 % / 1 pt (the issue
/// asks 2 % / 2 pt of the slowest), the 0.493 Hz mode found (MAC >= 0.5) within 3 % / 3 pt.
/// With mu from sigma instead of 0 (30 realisations): slowest 0.33 % / 0.23 pt, 0.595 Hz
/// 0.33 % / 0.17 pt, 0.493 Hz 2.0 % / 1.5 pt; the same two are asserted within 1 % / 1 pt.
#[test]
fn ieee68_ring_down_identifies_the_inter_area_modes_from_noisy_speeds() {
    let setup = Ieee68Setup::ringdown();
    let truth = ieee68::true_modes(&setup).unwrap();
    let clean = ieee68::simulate(&setup, 0).unwrap();
    for (ridge, name) in [(Ridge::Mu(0.0), "mu = 0"), (Ridge::FromSigma(1.0), "mu from sigma")] {
        let setup = Ieee68Setup { ridge, ..setup.clone() };
        for seed in 0..RINGDOWN_SEEDS {
            let identified = ieee68::identify_record(&setup, &clean, seed, &truth).unwrap();
            println!("ring-down, {name}, noise seed {seed}:");
            for (t, m) in truth.iter().zip(&identified.matched) {
                println!("  {}", describe(t, m));
            }
            let what = format!("{name}, seed {seed}");
            assert_within(&truth[0], &identified.matched[0], 1.0, 1.0, &what);
            assert_within(&truth[2], &identified.matched[2], 1.0, 1.0, &what);
            if ridge == Ridge::Mu(0.0) {
                assert_within(&truth[1], &identified.matched[1], 3.0, 3.0, &what);
            }
        }
    }
}

/// Why the 0.782 Hz mode is not asserted: the fault hardly excites it. The clean ring-down
/// is fitted by the free response of the linearised post-fault model; measured amplitudes
/// 0.5 s after clearing: 9.7e-4, 9.7e-5, 1.3e-3 and 4.2e-5 pu for the four modes.
#[test]
fn the_fourth_inter_area_mode_is_barely_excited_by_the_fault() {
    let setup = Ieee68Setup::ringdown();
    let truth = ieee68::true_modes(&setup).unwrap();
    let clean = ieee68::simulate(&setup, 0).unwrap();
    let record = ieee68::measure(&setup, &clean, 0).unwrap();
    let (amplitudes, unexplained) = ieee68::ringdown_excitation(&setup, &record, &truth).unwrap();
    let shown: Vec<String> = amplitudes.iter().map(|a| format!("{a:.2e}")).collect();
    println!("speed amplitudes {} pu, unexplained RMS {unexplained:.2e} pu", shown.join(", "));
    let strongest = amplitudes.iter().copied().fold(0.0, f64::max);
    assert!(amplitudes[3] < 0.05 * strongest, "{amplitudes:?}");
    assert!(amplitudes[3] < 3.0 * unexplained, "{amplitudes:?} vs {unexplained}");
    assert!(amplitudes[0] > 0.5 * strongest && amplitudes[2] > 0.5 * strongest, "{amplitudes:?}");
}

/// Van der Pol (mu = 1), Ts = 0.1 s, 50 records of 100 samples (4950 pairs) from random
/// starts, Gaussian measurement noise sigma, `state,const,poly:3`, warm-up 200; relift
/// predictions on 50 clean held-out trajectories (starts k = 0, 5, ..., 95).
///
/// Measured over 20 noise realisations (`koopstream experiment`): mu from sigma beats EDMD
/// at sigma = 0.05, H = 20 in 20/20 (0.070 vs 0.078, every realisation by 6 % or more) and
/// at sigma = 0.2, H = 50 in 19/20 (0.373 vs 0.424, mean 12 % better; worst realisation
/// 0.3 % worse). Where it does NOT win: sigma = 0.1, H = 50 (0.258 vs 0.245, worse in 19/20);
/// sigma = 0.01 (a tie within 1 %); and with little data (M = 300 or 1000 pairs) it is much
/// worse than EDMD and even diverges, because its mu is the noise energy of the whole warm-up
/// window and fades only as mu / M. Those are printed here, not asserted.
///
/// Asserted on realisations 0..3: robust below EDMD at (0.05, H = 20) by 3 % in each, and on
/// average by 5 % at (0.2, H = 50); robust below 0.09 at (0.05, H = 20) (measured at most
/// 0.076); EDMD below 0.05 at (0.01, H = 20) (measured at most 0.039); online equals batch.
#[test]
fn van_der_pol_prediction_robust_against_edmd() {
    let setup = vdp::standard_setup();
    let references = setup.references().unwrap();
    let error = |model: &koopman::LinearModel, h: usize| {
        vdp::prediction_error(model, &references, h, PredictionMode::Relift).unwrap().rms
    };
    let reps = 0..3;
    println!("sigma  rep  H   mu_sigma: robust | mu=0 (EDMD) | mu=0.1 | mu=1 | mu=10");
    let mut table = std::collections::BTreeMap::new();
    for sigma in [0.01, 0.05, 0.1, 0.2] {
        for rep in reps.clone() {
            let chains = setup.training_data(sigma, rep).unwrap();
            let fits = vdp::fit(&setup, &chains, sigma).unwrap();
            assert_eq!(fits.pairs, 4950);
            assert!(fits.online_minus_batch < 1e-9, "online minus batch {}", fits.online_minus_batch);
            let fixed: Vec<koopman::LinearModel> = [0.1, 1.0, 10.0].iter().map(|&mu| fits.ridge(mu).unwrap()).collect();
            for h in [20, 50] {
                let (robust, edmd) = (error(&fits.robust, h), error(&fits.edmd, h));
                let others: Vec<String> = fixed.iter().map(|m| format!("{:.4}", error(m, h))).collect();
                println!(
                    "{sigma:5} {rep:4} {h:3} {:8.3}: {robust:.4} | {edmd:.4} | {}",
                    fits.mu_sigma,
                    others.join(" | ")
                );
                table.insert(((sigma * 100.0) as u32, rep, h), (robust, edmd));
            }
        }
    }
    let at = |sigma: f64, h: usize| -> Vec<(f64, f64)> {
        reps.clone().map(|rep| table[&(((sigma * 100.0) as u32), rep, h)]).collect()
    };
    for (rep, (robust, edmd)) in at(0.05, 20).into_iter().enumerate() {
        assert!(robust < 0.97 * edmd, "sigma 0.05, H 20, rep {rep}: robust {robust} vs EDMD {edmd}");
        assert!(robust < 0.09, "sigma 0.05, H 20, rep {rep}: robust {robust}");
    }
    let long = at(0.2, 50);
    let (robust, edmd) =
        (fitting::finite_mean(long.iter().map(|p| p.0)), fitting::finite_mean(long.iter().map(|p| p.1)));
    assert!(robust < 0.95 * edmd, "sigma 0.2, H 50: robust {robust} vs EDMD {edmd}");
    for (rep, (_, edmd)) in at(0.01, 20).into_iter().enumerate() {
        assert!(edmd < 0.05, "sigma 0.01, H 20, rep {rep}: EDMD {edmd}");
    }

    // Reported, not asserted: little data. mu from sigma is then far worse than EDMD.
    for trajectories in [3, 10] {
        let small = setup.clone().with_trajectories(trajectories);
        let chains = small.training_data(0.1, 0).unwrap();
        let fits = vdp::fit(&small, &chains, 0.1).unwrap();
        let score =
            |m: &koopman::LinearModel| vdp::prediction_error(m, &references, 20, PredictionMode::Relift).unwrap();
        let (r, e) = (score(&fits.robust), score(&fits.edmd));
        println!(
            "M = {} pairs, sigma 0.1, H 20: robust {:.4} ({} of {} starts diverged), EDMD {:.4} ({} diverged)",
            fits.pairs, r.rms, r.diverged, r.starts, e.rms, e.diverged
        );
    }
}
