//! The 68-bus fault ring-down seen by PMUs: bus angles and frequencies at the default
//! buses after the bus-29 fault, with the C37.118.1 error budget or white noise at a given
//! SNR; ridge, instrumental variables, the correlation estimator, batch EDMD and online DMD
//! on the same records, scored against the post-fault modes, and each inter-area mode's
//! share of the record's energy, which says which modes a fit can be asked to find.

use koopman::{DictionarySpec, EstimatorConfig, LinearModel, Method, Regularisation};
use systems::{Ieee68Scenario, Network, Trajectory};

use super::debiased::{Errors, error_table};
use super::fitting::{self, Chains};
use super::pmu_ambient::{Noise, RATE, corrupt, layout, pmu_truth, score, simulate_scenario};
use super::report::{Cell, OnlineBatch, Section, Table};
use super::{ExperimentError, Scale};
use crate::identify::TrueMode;

/// Record length (s): the speed ring-down's 30 s.
const DURATION: f64 = 30.0;
/// Rows dropped at the start: the pre-fault steady state, the fault and 0.5 s after its
/// clearing, where the PMU frequency (a difference of angles) still carries the jump.
const SKIP: usize = 47;
/// A mode with at least this share of the record's energy must be found (the bar).
const SHARE_FLOOR: f64 = 0.01;
/// The SNR at which the bar is judged.
const GOAL_DB: f64 = 40.0;

/// One fitted recipe: the estimator and its dictionary's delays.
#[derive(Debug, Clone, Copy)]
struct Recipe {
    label: &'static str,
    kind: Kind,
    delays: usize,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// Online ridge, mu from the noise standard deviation of each column.
    RidgeFromSigma,
    /// Online estimator with this method and mu.
    Online(Method, f64),
    /// Batch EDMD (mu = 0) on the lifting of the same delays.
    Edmd,
    /// Online DMD on the raw columns.
    OnlineDmd,
}

/// The recipes compared. The first is ridge and the second the `pmu-ringdown` preset's
/// (the pair the per-level findings compare); the others show how much each choice matters.
const RECIPES: [Recipe; 9] = [
    Recipe { label: "ridge (online, mu from sigma, delay:10)", kind: Kind::RidgeFromSigma, delays: 10 },
    Recipe {
        label: "correlation (online, delay:2, 60 lags, rank 32)",
        kind: Kind::Online(Method::Correlation { lags: 60, rank: Some(32) }, 1e-6),
        delays: 2,
    },
    Recipe {
        label: "correlation (online, delay:2, 60 lags, full rank)",
        kind: Kind::Online(Method::Correlation { lags: 60, rank: None }, 1e-6),
        delays: 2,
    },
    Recipe {
        label: "correlation (online, delay:2, 30 lags, rank 32)",
        kind: Kind::Online(Method::Correlation { lags: 30, rank: Some(32) }, 1e-6),
        delays: 2,
    },
    Recipe {
        label: "correlation (online, delay:2, 120 lags, rank 32)",
        kind: Kind::Online(Method::Correlation { lags: 120, rank: Some(32) }, 1e-6),
        delays: 2,
    },
    Recipe {
        label: "IV (online, delay:10, instrument 11)",
        kind: Kind::Online(Method::InstrumentalVariable { delay: 11 }, 0.0),
        delays: 10,
    },
    Recipe {
        label: "IV (online, delay:20, instrument 21)",
        kind: Kind::Online(Method::InstrumentalVariable { delay: 21 }, 0.0),
        delays: 20,
    },
    Recipe { label: "batch EDMD (mu = 0, delay:10)", kind: Kind::Edmd, delays: 10 },
    Recipe { label: "online DMD (raw)", kind: Kind::OnlineDmd, delays: 0 },
];

/// The clean PMU record from 0.5 s after clearing on (the fault is deterministic: one
/// simulation serves every realisation).
fn clean_record() -> Result<Trajectory, ExperimentError> {
    let full = simulate_scenario(Ieee68Scenario::Fault(Default::default()), DURATION, 0)?;
    let n = full.n_columns();
    Ok(Trajectory::new(full.names().to_vec(), full.times()[SKIP..].to_vec(), full.values()[SKIP * n..].to_vec())?)
}

/// Each true mode's share of the record's energy, and the share no mode explains.
///
/// The clean record, each column scaled to unit standard deviation (as the estimators see
/// it), is fitted by least squares with a constant per column plus the free response of
/// every oscillatory mode of the post-fault linearisation, Re(a_k phi_k e^(s_k t)) with
/// phi_k the mode's shape in the PMU columns. A mode's share is the energy of its fitted
/// part over the energy of the record about the fitted constants. The parts are not
/// orthogonal, so the shares need not add up to one.
fn energy_shares(clean: &Trajectory, truth: &[TrueMode]) -> Result<(Vec<f64>, f64), ExperimentError> {
    let shapes = systems::truth::ieee68_pmu_mode_shapes(Network::Post, 1.0, &layout())?;
    let (rows, n) = (clean.n_rows(), clean.n_columns());
    let scale: Vec<f64> =
        (0..n).map(|j| 1.0 / systems::measurement::channel_std(&clean.column(j)).max(1e-300)).collect();
    let mut columns: Vec<Vec<f64>> =
        (0..n).map(|c| (0..rows * n).map(|i| if i % n == c { scale[c] } else { 0.0 }).collect()).collect();
    let mut first_column_of_mode = Vec::new();
    for shape in &shapes {
        let (re, im) = (shape.mode.re, shape.mode.im);
        let (mut re_col, mut im_col) = (Vec::with_capacity(rows * n), Vec::with_capacity(rows * n));
        for k in 0..rows {
            let t = k as f64 / RATE;
            let growth = (re * t).exp();
            let (sin, cos) = (im * t).sin_cos();
            for (j, (_, v)) in shape.shape.iter().enumerate() {
                re_col.push(scale[j] * growth * (v.re * cos - v.im * sin));
                im_col.push(-scale[j] * growth * (v.re * sin + v.im * cos));
            }
        }
        first_column_of_mode.push(columns.len());
        columns.push(re_col);
        columns.push(im_col);
    }
    let target: Vec<f64> = clean.values().iter().enumerate().map(|(i, v)| v * scale[i % n]).collect();
    let x = koopman::Mat::from_fn(target.len(), columns.len(), |i, j| columns[j][i]);
    let y = koopman::Mat::from_fn(target.len(), 1, |i, _| target[i]);
    let a = koopman::batch::solve(x.as_ref(), y.as_ref(), 0.0, None)?;
    let part = |cols: std::ops::Range<usize>| -> Vec<f64> {
        (0..target.len()).map(|i| cols.clone().map(|c| x[(i, c)] * a[(c, 0)]).sum()).collect()
    };
    let energy = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>();
    let constants = part(0..n);
    let about_constants: Vec<f64> = target.iter().zip(&constants).map(|(y, c)| y - c).collect();
    let total = energy(&about_constants);
    let fitted = part(0..columns.len());
    let unexplained: Vec<f64> = target.iter().zip(&fitted).map(|(y, f)| y - f).collect();
    let shares = truth
        .iter()
        .map(|t| {
            let nearest = shapes.iter().zip(&first_column_of_mode).min_by(|a, b| {
                (a.0.mode.frequency_hz - t.frequency_hz)
                    .abs()
                    .total_cmp(&(b.0.mode.frequency_hz - t.frequency_hz).abs())
            });
            nearest.map_or(f64::NAN, |(_, &c)| energy(&part(c..c + 2)) / total)
        })
        .collect();
    Ok((shares, energy(&unexplained) / total))
}

/// Runs the PMU ring-down comparison and writes its section.
pub fn experiment(scale: Scale) -> Result<Section, ExperimentError> {
    let realisations: u64 = scale.pick(20, 1);
    let levels = [Noise::C37, Noise::Snr(60.0), Noise::Snr(40.0), Noise::Snr(30.0), Noise::Snr(20.0)];
    let truth = pmu_truth(Network::Post)?;
    let clean = clean_record()?;
    let (shares, unexplained) = energy_shares(&clean, &truth)?;
    let mut errors = vec![vec![vec![vec![Errors::default(); truth.len()]; RECIPES.len()]; levels.len()]];
    let mut online_batch = Vec::new();
    let mut failures: Vec<Vec<(usize, Option<String>)>> = vec![vec![(0, None); RECIPES.len()]; levels.len()];
    for seed in 0..realisations {
        for (l, &noise) in levels.iter().enumerate() {
            let record = corrupt(&clean, noise, 17_000 + 41 * seed + l as u64)?;
            let noise_std: Vec<f64> = (0..record.n_columns())
                .map(|j| {
                    let d: Vec<f64> = record.column(j).iter().zip(clean.column(j)).map(|(a, b)| a - b).collect();
                    systems::measurement::channel_std(&d)
                })
                .collect();
            let mut chains = Chains::new(record.n_columns());
            chains.push_chain(record.values());
            for (r, recipe) in RECIPES.iter().enumerate() {
                // A fit that fails (an IV moment matrix that is singular at mu = 0) is a
                // realisation in which the recipe found nothing; the findings count them.
                let (model, check) = match fit(recipe, record.names().to_vec(), &noise_std, &chains) {
                    Ok(fitted) => fitted,
                    Err(error) => {
                        failures[l][r].0 += 1;
                        failures[l][r].1.get_or_insert_with(|| error.to_string());
                        (None, None)
                    }
                };
                if seed == 0
                    && matches!(noise, Noise::Snr(db) if db == GOAL_DB)
                    && let Some((n_regressor, difference)) = check
                {
                    online_batch.push(OnlineBatch {
                        system: "IEEE 68-bus ring-down, PMU".into(),
                        setting: format!("{}, {}", recipe.label, noise.label()),
                        n_regressor,
                        pairs: chains.n_samples().saturating_sub(1),
                        mu: 0.0,
                        difference,
                    });
                }
                score(model, &truth, &mut errors[0][l][r])?;
            }
        }
    }
    let mut section = section(&truth, &shares, unexplained, &levels, &errors, realisations, online_batch);
    for (noise, by_recipe) in levels.iter().zip(&failures) {
        for (recipe, (count, first)) in RECIPES.iter().zip(by_recipe) {
            if let Some(first) = first {
                section.findings.push(format!(
                    "{}, {}: {count} of {realisations} fits failed ({first}); they count as not found.",
                    noise.label(),
                    recipe.label
                ));
            }
        }
    }
    Ok(section)
}

/// N and the relative online-minus-batch difference of a de-biased online fit.
type OnlineCheck = (usize, f64);

/// One recipe on one record: its model (None: no model) and, for the de-biased online
/// estimators, (N, online minus batch).
fn fit(
    recipe: &Recipe,
    names: Vec<String>,
    noise_std: &[f64],
    chains: &Chains,
) -> Result<(Option<LinearModel>, Option<OnlineCheck>), ExperimentError> {
    let dictionary = DictionarySpec { delay: Some(recipe.delays), ..DictionarySpec::default() };
    let mut config = EstimatorConfig::new(names.clone(), dictionary);
    config.warmup = 300;
    match recipe.kind {
        Kind::RidgeFromSigma => {
            config.regularisation = Regularisation::NoiseSigma(noise_std.to_vec());
            Ok((fitting::train_online(config, chains)?.linear_model(), None))
        }
        Kind::Edmd => {
            config.regularisation = Regularisation::Mu(0.0);
            let ridge = fitting::train_online(config, chains)?;
            let lifting = fitting::lifting_of(&ridge, "pmu ring-down")?;
            Ok((fitting::batch_model(&lifting, &fitting::stack(&lifting, chains), 0.0).ok(), None))
        }
        Kind::OnlineDmd => {
            Ok((fitting::train_online(EstimatorConfig::online_dmd(names), chains)?.linear_model(), None))
        }
        Kind::Online(method, mu) => {
            config.regularisation = Regularisation::Mu(mu);
            config.method = method;
            config.solve_every = usize::MAX;
            let first_free_lag = config.first_free_lag();
            let mut estimator = fitting::train_online(config, chains)?;
            estimator.solve_now()?;
            let check = estimator.lifting().zip(estimator.k()).and_then(|(lifting, online)| {
                let pairs = fitting::stack(lifting, chains);
                let batch = match method {
                    Method::InstrumentalVariable { delay } => {
                        koopman::batch::debiased::instrumental(&pairs, delay, mu, 1.0).ok()?
                    }
                    Method::Correlation { lags, rank } => koopman::batch::debiased::correlation(
                        &pairs,
                        first_free_lag,
                        lags,
                        rank,
                        1.0,
                        lifting.constant_index(),
                    )
                    .ok()?,
                    Method::Ridge => return None,
                };
                Some((lifting.dim(), fitting::relative_frobenius(online.as_ref(), batch.as_ref())))
            });
            Ok((estimator.linear_model(), check))
        }
    }
}

fn section(
    truth: &[TrueMode],
    shares: &[f64],
    unexplained: f64,
    levels: &[Noise],
    errors: &[Vec<Vec<Vec<Errors>>>],
    realisations: u64,
    online_batch: Vec<OnlineBatch>,
) -> Section {
    let labels: Vec<String> = levels.iter().map(|n| n.label()).collect();
    let methods: Vec<&str> = RECIPES.iter().map(|r| r.label).collect();
    let (table, mut findings) = error_table(
        "ieee68_pmu_ringdown",
        "Ring-down 68-bus from PMUs (angles and frequencies at 12 buses): inter-area mode errors over realisations",
        truth,
        &["PMU angle + frequency"],
        &labels,
        &methods,
        errors,
    );
    let mut share_table = Table::new(
        "ieee68_pmu_ringdown_energy",
        "Ring-down from PMUs: each inter-area mode's share of the clean record's energy (standardised columns)",
        &["true f (Hz)", "true zeta (%)", "share of energy (%)", "must be found (share >= 1 %)"],
    );
    for (t, s) in truth.iter().zip(shares) {
        share_table.push(vec![
            Cell::fixed(t.frequency_hz, 4),
            Cell::fixed(100.0 * t.damping_ratio, 2),
            Cell::fixed(100.0 * s, 2),
            Cell::text(if *s >= SHARE_FLOOR { "yes" } else { "no" }),
        ]);
    }
    let goal = levels.iter().position(|n| matches!(n, Noise::Snr(db) if *db == GOAL_DB));
    if let Some(g) = goal {
        for (r, recipe) in RECIPES.iter().enumerate() {
            findings.push(goal_finding(recipe.label, truth, shares, &errors[0][g][r]));
        }
    }
    findings.push(
        "Why IV loses here: a ring-down of 28 s is a sum of a few decaying modes, so the delayed lifted vectors that \
         serve as instruments span few directions, and with mu = 0 the moment matrix sum z psi^T is close to \
         singular; its inverse turns measurement noise into scatter (worst errors several times the mean) and \
         some fits fail outright. Its bias is gone, its variance is not. Ridge and EDMD with ten delays have little \
         bias to lose on a ring-down at 20 dB and above (the signal dwarfs the noise in the regressors); at the \
         C37.118.1 limits the frequency columns carry noise (0.005 Hz) of the order of the swing itself, and ridge \
         then overstates damping. The correlation estimator keeps lag 0 out and so stays within its bar at the C37 \
         limits, at the cost of a small negative damping bias (about -1 point) at every level, clean PMUs included; \
         the likeliest cause is the nonlinearity of the first swings (below), not isolated here."
            .into(),
    );
    findings.push(format!(
        "The linear free response of the post-fault modes leaves {:.2} % of the clean record's energy (about its \
         constants) unexplained: the nonlinearity of the first swings and the slow real modes.",
        100.0 * unexplained
    ));
    let intro = vec![format!(
        "The fault of the speed ring-down above (bus 29 at t = 1 s, cleared after 0.05 s by opening line 28-29) \
         seen by PMUs at the 12 default buses (`koopstream simulate --measure pmu --quantities va,f --scenario \
         fault`), angles relative to bus 65 and frequencies, 24 columns, 30 s at 30 frames/s, the first {SKIP} rows \
         (to 0.5 s after clearing) dropped. One clean record (the fault is deterministic) and {realisations} noise \
         realisations per level: the C37.118.1 steady-state limits or white noise at the given SNR on clean PMUs. \
         Warm-up 300; ridge with mu from each column's noise standard deviation; IV and EDMD with mu = 0. The \
         truth is the post-fault network linearised at its equilibrium, shapes in the PMU columns; a mode counts \
         as found within 15 % in frequency with shape MAC >= 0.5. The bar (issue 14): every inter-area mode with at \
         least 1 % of the record's energy found within 2 % in frequency and 2 damping points at {GOAL_DB:.0} dB."
    )];
    Section {
        title: "IEEE 68-bus ring-down from PMU measurements".into(),
        intro,
        tables: vec![share_table, table],
        findings,
        online_batch,
        ..Section::default()
    }
}

/// Whether `method` meets the bar at the goal SNR: every mode with a share of at least
/// 1 % found in every realisation, with its worst errors within 2 % and 2 points.
fn goal_finding(method: &str, truth: &[TrueMode], shares: &[f64], errors: &[Errors]) -> String {
    let mut misses = Vec::new();
    for ((t, share), e) in truth.iter().zip(shares).zip(errors) {
        if *share < SHARE_FLOOR {
            continue;
        }
        let (found, runs) = (e.found(), e.runs());
        let (f, z) = (e.worst_frequency(), e.worst_damping());
        if found < runs || f > 2.0 || z > 2.0 {
            misses.push(format!("{:.3} Hz (found {found}/{runs}, worst {f:.2} % / {z:.2} pt)", t.frequency_hz));
        }
    }
    let required = shares.iter().filter(|s| **s >= SHARE_FLOOR).count();
    if misses.is_empty() {
        format!(
            "{GOAL_DB:.0} dB, {method}: meets the bar; all {required} modes with at least 1 % of the energy found in every \
             realisation within 2 % / 2 pt."
        )
    } else {
        format!("{GOAL_DB:.0} dB, {method}: misses the bar on {}.", misses.join(", "))
    }
}
