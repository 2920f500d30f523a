//! The de-biased estimators against ridge, batch EDMD and online DMD on the IEEE 68-bus
//! system in ambient operation: per inter-area mode, mean and worst frequency and damping
//! errors over many noise realisations, at several SNRs, on the machine speeds alone and
//! on the angles with the speeds.

use koopman::{EstimatorConfig, LinearModel, Method, Regularisation};

use super::fitting::{self, Chains};
use super::ieee68::{self, Channels, Ieee68Setup, Ridge};
use super::report::{Cell, OnlineBatch, Section, Table};
use super::{ExperimentError, Scale};
use crate::identify::TrueMode;

/// The correlation recipe measured here (and behind the `pmu-ambient` preset): two delays
/// so the lifted vector spans the partly observed state, 120 lags (4 s at 30 frames/s, past
/// the decay of every inter-area mode's correlation), rank 32 (the 16 machines' order).
const CORRELATION: Method = Method::Correlation { lags: 120, rank: Some(32) };
const CORRELATION_DELAYS: usize = 2;

/// One method's errors on one true mode over realisations.
#[derive(Debug, Clone, Default)]
pub(crate) struct Errors {
    runs: usize,
    frequency: Vec<f64>,
    damping: Vec<f64>,
}

impl Errors {
    pub(crate) fn add(&mut self, matched: Option<(f64, f64)>) {
        self.runs += 1;
        if let Some((f, z)) = matched {
            self.frequency.push(f);
            self.damping.push(z);
        }
    }

    /// Realisations in which the mode was found.
    pub(crate) fn found(&self) -> usize {
        self.frequency.len()
    }

    /// Realisations fitted.
    pub(crate) fn runs(&self) -> usize {
        self.runs
    }

    /// Worst |frequency error| (%) over the realisations that found the mode.
    pub(crate) fn worst_frequency(&self) -> f64 {
        Self::worst_abs(&self.frequency)
    }

    /// Worst |damping error| (points) over the realisations that found the mode.
    pub(crate) fn worst_damping(&self) -> f64 {
        Self::worst_abs(&self.damping)
    }

    /// Mean signed frequency error (%) and its standard deviation over the realisations
    /// that found the mode: how much of the error is bias and how much scatter.
    pub(crate) fn frequency_bias_and_scatter(&self) -> (f64, f64) {
        let mean = Self::mean(&self.frequency);
        let n = self.frequency.len();
        let variance =
            self.frequency.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / n.saturating_sub(1).max(1) as f64;
        (mean, variance.sqrt())
    }

    /// Mean |frequency error| (%) and mean |damping error| (points).
    pub(crate) fn mean_abs_errors(&self) -> (f64, f64) {
        (Self::mean_abs(&self.frequency), Self::mean_abs(&self.damping))
    }

    fn mean_abs(v: &[f64]) -> f64 {
        if v.is_empty() { f64::NAN } else { v.iter().map(|x| x.abs()).sum::<f64>() / v.len() as f64 }
    }

    fn worst_abs(v: &[f64]) -> f64 {
        v.iter().fold(f64::NAN, |m, x| if m.is_nan() { x.abs() } else { m.max(x.abs()) })
    }

    fn mean(v: &[f64]) -> f64 {
        if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 }
    }
}

/// The methods compared.
pub(crate) const METHODS: [&str; 4] =
    ["ridge (online)", "correlation (online)", "batch EDMD (mu = 0)", "online DMD (raw)"];

struct Cases {
    channels: Channels,
    label: &'static str,
    /// Dictionary of ridge and EDMD for these channels (their best recipe so far).
    ridge_delays: Option<usize>,
}

/// Runs the comparison and writes its section.
pub fn experiment(scale: Scale) -> Result<Section, ExperimentError> {
    let realisations: u64 = scale.pick(20, 1);
    let duration = scale.pick(600.0, 90.0);
    let snrs = [60.0, 40.0, 30.0, 20.0];
    let cases = [
        Cases { channels: Channels::Speeds, label: "speeds", ridge_delays: Some(20) },
        Cases { channels: Channels::AnglesAndSpeeds, label: "angles + speeds", ridge_delays: None },
    ];
    let base = Ieee68Setup { duration, ..Ieee68Setup::ambient() };
    let truth = ieee68::true_modes(&base)?;
    // errors[case][snr][method][mode]
    let mut errors = vec![vec![vec![vec![Errors::default(); truth.len()]; METHODS.len()]; snrs.len()]; cases.len()];
    let mut online_batch = Vec::new();
    for seed in 0..realisations {
        let clean = ieee68::simulate(&base, 7_000 + seed)?;
        for (c, case) in cases.iter().enumerate() {
            for (s, &snr) in snrs.iter().enumerate() {
                let setup = Ieee68Setup { snr_db: Some(snr), channels: case.channels, ..base.clone() };
                let record = ieee68::measure(&setup, &clean, 9_000 + 97 * seed + s as u64)?;
                let mut chains = Chains::new(record.n);
                chains.push_chain(&record.noisy);
                let (models, check) = fit_four(&setup, case, &record.noise_std, &chains)?;
                if seed == 0
                    && let Some(difference) = check
                {
                    online_batch.push(OnlineBatch {
                        system: "IEEE 68-bus ambient".into(),
                        setting: format!("correlation, {}, {snr} dB", case.label),
                        n_regressor: case.channels.count() * (CORRELATION_DELAYS + 1),
                        pairs: chains.n_samples().saturating_sub(1),
                        mu: 0.0,
                        difference,
                    });
                }
                for (m, model) in models.into_iter().enumerate() {
                    let matched = match model {
                        Some(model) => ieee68::judge(model, setup.ts(), &truth)?.matched,
                        None => vec![None; truth.len()],
                    };
                    for ((e, found), t) in errors[c][s][m].iter_mut().zip(&matched).zip(&truth) {
                        e.add(found.as_ref().map(|f| (100.0 * f.frequency_error(t), f.damping_error_points(t))));
                    }
                }
            }
        }
    }
    Ok(section(&truth, &cases, &snrs, &errors, realisations, duration, online_batch))
}

/// Ridge, correlation, batch EDMD and online DMD on one record (None: no model), and the
/// correlation estimator's online-minus-batch difference.
fn fit_four(
    setup: &Ieee68Setup,
    case: &Cases,
    noise_std: &[f64],
    chains: &Chains,
) -> Result<(Vec<Option<LinearModel>>, Option<f64>), ExperimentError> {
    let ridge_setup = Ieee68Setup {
        dictionary: match case.ridge_delays {
            Some(d) => format!("state,delay:{d}").parse().expect("a valid dictionary"),
            None => "state".parse().expect("a valid dictionary"),
        },
        ridge: Ridge::FromSigma(1.0),
        ..setup.clone()
    };
    let ridge = fitting::train_online(ieee68::config(&ridge_setup, noise_std), chains)?;
    let lifting = fitting::lifting_of(&ridge, "ieee68 ridge")?;
    let pairs = fitting::stack(&lifting, chains);
    let edmd = fitting::batch_model(&lifting, &pairs, 0.0).ok();
    let corr_setup = Ieee68Setup {
        dictionary: format!("state,delay:{CORRELATION_DELAYS}").parse().expect("a valid dictionary"),
        ..setup.clone()
    };
    let mut config = ieee68::config(&corr_setup, noise_std);
    config.method = CORRELATION;
    config.regularisation = Regularisation::Mu(1e-6);
    config.solve_every = usize::MAX;
    let mut corr = fitting::train_online(config.clone(), chains)?;
    corr.solve_now()?;
    let check = corr_batch_difference(&corr, &config, chains);
    let names = ieee68::config(setup, noise_std).state_names;
    let dmd = fitting::train_online(EstimatorConfig::online_dmd(names), chains)?;
    Ok((vec![ridge.linear_model(), corr.linear_model(), edmd, dmd.linear_model()], check))
}

/// Online minus batch (relative Frobenius) of the correlation estimator on this record.
fn corr_batch_difference(corr: &koopman::Estimator, config: &EstimatorConfig, chains: &Chains) -> Option<f64> {
    let Method::Correlation { lags, rank } = config.method else { return None };
    let lifting = corr.lifting()?;
    let pairs = fitting::stack(lifting, chains);
    let batch = koopman::batch::debiased::correlation(
        &pairs,
        config.first_free_lag(),
        lags,
        rank,
        config.forgetting,
        lifting.constant_index(),
    )
    .ok()?;
    Some(fitting::relative_frobenius(corr.k()?.as_ref(), batch.as_ref()))
}

fn section(
    truth: &[TrueMode],
    cases: &[Cases],
    snrs: &[f64],
    errors: &[Vec<Vec<Vec<Errors>>>],
    realisations: u64,
    duration: f64,
    online_batch: Vec<OnlineBatch>,
) -> Section {
    let labels: Vec<&str> = cases.iter().map(|c| c.label).collect();
    let levels: Vec<String> = snrs.iter().map(|s| format!("{s:.0}")).collect();
    let (table, findings) = error_table(
        "ieee68_debiased_ambient",
        "Ambient 68-bus: inter-area mode errors over realisations, by channels, SNR and method",
        truth,
        &labels,
        &levels,
        &METHODS,
        errors,
    );
    let intro = vec![format!(
        "Pre-fault network under white-noise load fluctuations; {realisations} realisations of {duration:.0} s at \
         30 frames/s, each its own load and measurement noise (the clean record of a realisation is shared by the \
         SNRs and channel sets). Ridge and batch EDMD use `state` on the angles with the speeds and \
         `state,delay:20` on the speeds alone (their recipes of the sections above), ridge with mu from sigma; the \
         correlation estimator uses `state,delay:{CORRELATION_DELAYS}`, lags 3..122 (120 lags past the delay \
         span), rank 32. Errors are signed (identified minus true) unless marked |.|; a mode counts as found when an \
         identified mode lies within 15 % in frequency with shape MAC >= 0.5 on the speeds."
    )];
    Section {
        title: "IEEE 68-bus ambient: estimators that noise does not bias".into(),
        intro,
        tables: vec![table],
        findings,
        online_batch,
        ..Section::default()
    }
}

/// The error table (channels x noise level x method x mode, `methods` naming the method
/// axis) and one finding per (channels, level): the method at index 1 (the de-biased one)
/// against the one at index 0 (ridge).
pub(crate) fn error_table(
    file: &str,
    title: &str,
    truth: &[TrueMode],
    labels: &[&str],
    levels: &[String],
    methods: &[&str],
    errors: &[Vec<Vec<Vec<Errors>>>],
) -> (Table, Vec<String>) {
    let mut table = Table::new(
        file,
        title,
        &[
            "channels",
            "noise",
            "method",
            "true f (Hz)",
            "true zeta (%)",
            "found",
            "mean f err (%)",
            "mean |f err| (%)",
            "worst |f err| (%)",
            "mean zeta err (pt)",
            "mean |zeta err| (pt)",
            "worst |zeta err| (pt)",
        ],
    );
    let mut findings = Vec::new();
    for (c, label) in labels.iter().enumerate() {
        for (s, level) in levels.iter().enumerate() {
            for (m, method) in methods.iter().enumerate() {
                for (t, e) in truth.iter().zip(&errors[c][s][m]) {
                    table.push(vec![
                        Cell::text(*label),
                        Cell::text(level.as_str()),
                        Cell::text(*method),
                        Cell::fixed(t.frequency_hz, 4),
                        Cell::fixed(100.0 * t.damping_ratio, 2),
                        Cell::text(format!("{}/{}", e.frequency.len(), e.runs)),
                        Cell::fixed(Errors::mean(&e.frequency), 2),
                        Cell::fixed(Errors::mean_abs(&e.frequency), 2),
                        Cell::fixed(Errors::worst_abs(&e.frequency), 2),
                        Cell::fixed(Errors::mean(&e.damping), 2),
                        Cell::fixed(Errors::mean_abs(&e.damping), 2),
                        Cell::fixed(Errors::worst_abs(&e.damping), 2),
                    ]);
                }
            }
            findings.push(compare(label, level, methods, &errors[c][s]));
        }
    }
    (table, findings)
}

/// One finding per (channels, SNR): the de-biased estimator's (index 1) mean and worst
/// errors against ridge's (index 0), stated as they are.
fn compare(label: &str, level: &str, methods: &[&str], by_method: &[Vec<Errors>]) -> String {
    let summary = |errors: &[Errors]| {
        let found: usize = errors.iter().map(|e| e.frequency.len()).sum();
        let runs: usize = errors.iter().map(|e| e.runs).sum();
        let all_f: Vec<f64> = errors.iter().flat_map(|e| e.frequency.iter().copied()).collect();
        let all_z: Vec<f64> = errors.iter().flat_map(|e| e.damping.iter().copied()).collect();
        (found, runs, Errors::mean_abs(&all_f), Errors::mean_abs(&all_z), Errors::worst_abs(&all_z))
    };
    let (rf, runs, rfe, rze, rzw) = summary(&by_method[0]);
    let (cf, _, cfe, cze, czw) = summary(&by_method[1]);
    let (ridge, debiased) = (short(methods[0]), short(methods[1]));
    format!(
        "{label}, {level}: {debiased} found {cf}/{runs} mode identifications, mean |f err| {cfe:.2} %, mean \
         |zeta err| {cze:.2} pt (worst {czw:.2}); {ridge} found {rf}/{runs}, {rfe:.2} %, {rze:.2} pt (worst {rzw:.2})."
    )
}

/// A method's name without its parenthesised detail ("ridge (online)" reads "ridge").
pub(crate) fn short(method: &str) -> &str {
    method.split(" (").next().unwrap_or(method)
}
