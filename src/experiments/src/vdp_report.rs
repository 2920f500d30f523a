//! The Van der Pol experiment of the report: prediction errors of the robust estimator
//! and of the two de-biased estimators (instrumental variables, correlation) against EDMD,
//! fixed ridges and online DMD over noise levels and data sizes, the identified
//! limit-cycle spectrum, and the plots.

use koopman::{LinearModel, NumericalError, PredictionMode, c64};

use super::fitting::{PredictionScore, finite_mean};
use super::report::{Cell, OnlineBatch, Sci, Section, Table};
use super::vdp::{self, TS, VdpFits, VdpSetup};
use super::vdp_figures::{floquet_decay, limit_cycle_frequency, prediction_figure, spectrum_figure, spectrum_row};
use super::{ExperimentError, Scale};

/// Factor of the constant-relative proposal mu_M = factor * M * mu_sigma / W.
mod debiased;
mod tables;
use debiased::{Tally, correlation_lags, debiased_comparison, failures, frequency_findings, noise_growth};
use tables::{Verdict, data_size, linear_finding, prediction_table, robust_vs_edmd, summary, verdict};

const CONSTANT_RELATIVE: f64 = 0.02;

/// Where each method sits in [`method_names`] and [`models`].
const ROBUST: usize = 0;
const EDMD: usize = 1;
const IV: usize = 2;
const CORRELATION: usize = 3;

/// The methods of the spectrum findings, with their short names.
const COMPARED: [(usize, &str); 4] = [(ROBUST, "robust"), (EDMD, "EDMD"), (IV, "IV"), (CORRELATION, "correlation")];

/// The de-biased estimators: index, short name for verdicts, long name for findings.
const DEBIASED: [(usize, &str, &str); 2] =
    [(IV, "IV", "instrumental variables"), (CORRELATION, "correlation", "the correlation estimator")];

struct Settings {
    setup: VdpSetup,
    sigmas: Vec<f64>,
    reps: u64,
    fixed_mu: Vec<f64>,
    size_trajectories: Vec<usize>,
    size_sigmas: Vec<f64>,
    size_reps: u64,
    /// Lag counts of the correlation estimator measured beside the chosen one.
    correlation_lags: Vec<usize>,
}

fn settings(scale: Scale) -> Settings {
    match scale {
        Scale::Full => Settings {
            setup: vdp::standard_setup(),
            sigmas: vec![0.01, 0.05, 0.1, 0.2],
            reps: 20,
            fixed_mu: vec![0.1, 1.0, 10.0],
            size_trajectories: vec![3, 10, 50],
            size_sigmas: vec![0.05, 0.1, 0.2],
            size_reps: 10,
            correlation_lags: vec![2, 3, 4, 5, 10],
        },
        Scale::Quick => Settings {
            setup: VdpSetup { trajectories: 4, test_trajectories: 3, ..vdp::standard_setup() },
            sigmas: vec![0.05, 0.2],
            reps: 1,
            fixed_mu: vec![1.0],
            size_trajectories: vec![3],
            size_sigmas: vec![0.2],
            size_reps: 1,
            correlation_lags: vec![2, 5],
        },
    }
}

/// The scores of one model.
#[derive(Debug, Clone, Copy)]
struct Scores {
    one_step: PredictionScore,
    h20: PredictionScore,
    h50: PredictionScore,
    h20_linear: PredictionScore,
    /// Identified minus true limit-cycle frequency (%); NaN when no eigenvalue is near it.
    f0_error: f64,
    /// The real decay rate nearest the Floquet exponent minus that exponent (1/s).
    floquet_error: f64,
}

fn score(model: &LinearModel, references: &[Vec<f64>]) -> Result<Scores, ExperimentError> {
    let cycle = systems::truth::vdp_limit_cycle(1.0)?;
    let f0 = 1.0 / cycle.period;
    Ok(Scores {
        one_step: super::fitting::prediction_error(model, references, 2, &vdp::one_step_plan())?,
        h20: vdp::prediction_error(model, references, 20, PredictionMode::Relift)?,
        h50: vdp::prediction_error(model, references, 50, PredictionMode::Relift)?,
        h20_linear: vdp::prediction_error(model, references, 20, PredictionMode::Linear)?,
        f0_error: 100.0 * (limit_cycle_frequency(model)? / f0 - 1.0),
        floquet_error: floquet_decay(model)? - cycle.floquet_exponent,
    })
}

/// The relift horizons compared, with the score of each.
type Horizon = (usize, fn(&Scores) -> PredictionScore);
const HORIZONS: [Horizon; 2] = [(20, |x| x.h20), (50, |x| x.h50)];

/// Scores of one method over the repetitions.
#[derive(Default)]
struct Record {
    mu: Vec<f64>,
    /// One entry per realisation, None where the method gave no model.
    scores: Vec<Option<Scores>>,
    /// The realisations without a model, and why.
    failures: Vec<(u64, NumericalError)>,
}

impl Record {
    fn add(&mut self, rep: u64, model: Result<Scores, NumericalError>) {
        match model {
            Ok(s) => self.scores.push(Some(s)),
            Err(e) => {
                self.scores.push(None);
                self.failures.push((rep, e));
            }
        }
    }

    fn fitted(&self) -> impl Iterator<Item = &Scores> {
        self.scores.iter().flatten()
    }

    fn mean(&self, pick: impl Fn(&Scores) -> PredictionScore) -> f64 {
        finite_mean(self.fitted().map(|s| pick(s).rms))
    }

    fn diverged(&self, pick: impl Fn(&Scores) -> PredictionScore) -> (usize, usize) {
        self.fitted().map(pick).fold((0, 0), |(d, t), s| (d + s.diverged, t + s.starts))
    }

    /// Mean |f0 error| (%) over the realisations with a model.
    fn mean_abs_f0_error(&self) -> f64 {
        finite_mean(self.fitted().map(|s| s.f0_error.abs()))
    }

    /// Mean |Floquet decay error| (1/s) over the realisations with a model.
    fn mean_abs_floquet_error(&self) -> f64 {
        finite_mean(self.fitted().map(|s| s.floquet_error.abs()))
    }
}

/// Realisations where both methods have a model, and in how many of them `candidate`
/// predicts better than `reference`.
fn head_to_head(candidate: &Record, reference: &Record, pick: fn(&Scores) -> PredictionScore) -> (usize, usize) {
    let both: Vec<(&Scores, &Scores)> =
        candidate.scores.iter().zip(&reference.scores).filter_map(|(c, r)| Some((c.as_ref()?, r.as_ref()?))).collect();
    (both.iter().filter(|(c, r)| pick(c).rms < pick(r).rms).count(), both.len())
}

fn method_names(fixed: &[f64]) -> Vec<String> {
    let mut names = vec![
        "robust online, mu from sigma".to_owned(),
        "batch EDMD (mu = 0)".to_owned(),
        format!("instrumental variables (online, delay {})", vdp::IV_DELAY),
        format!("correlation (online, {} lags)", vdp::CORRELATION_LAGS),
    ];
    names.extend(fixed.iter().map(|mu| format!("ridge, fixed mu = {mu}")));
    names.push(format!("ridge, mu = {CONSTANT_RELATIVE} M mu_sigma / W (proposal)"));
    names.push("online DMD (raw states)".to_owned());
    names
}

/// Every method's mu (NaN for the correlation estimator, which has no ridge) and model,
/// in the order of [`method_names`].
type Fitted = Vec<(f64, Result<LinearModel, NumericalError>)>;

fn models(fits: &VdpFits, settings: &Settings) -> Result<Fitted, ExperimentError> {
    let mut out = vec![
        (fits.mu_sigma, Ok(fits.robust.clone())),
        (0.0, Ok(fits.edmd.clone())),
        (vdp::IV_MU, Ok(fits.iv.clone())),
        (f64::NAN, fits.correlation.clone()),
    ];
    for &mu in &settings.fixed_mu {
        out.push((mu, Ok(fits.ridge(mu)?)));
    }
    let relative = CONSTANT_RELATIVE * fits.pairs as f64 * fits.mu_sigma / settings.setup.warmup as f64;
    out.push((relative, Ok(fits.constant_relative(CONSTANT_RELATIVE, settings.setup.warmup)?)));
    out.push((1e-10, Ok(fits.online_dmd.clone())));
    Ok(out)
}

/// Scores `model`, keeping the estimator's own failure to give one as a value.
fn score_fitted(
    model: &Result<LinearModel, NumericalError>,
    references: &[Vec<f64>],
) -> Result<Result<Scores, NumericalError>, ExperimentError> {
    match model {
        Ok(m) => Ok(Ok(score(m, references)?)),
        Err(e) => Ok(Err(e.clone())),
    }
}

/// Runs the Van der Pol experiment.
pub fn experiment(scale: Scale) -> Result<Section, ExperimentError> {
    let s = settings(scale);
    let references = s.setup.references()?;
    let names = method_names(&s.fixed_mu);
    let mut section = Section { title: "Van der Pol oscillator (mu = 1)".into(), ..Section::default() };
    section.intro.push(format!(
        "Training: {} records of {} samples at Ts = {TS} s from x0 ~ U[-2, 2]^2 (seeds rep*10000 + i), \
         Gaussian measurement noise sigma on both states, a gap between records; dictionary `{}` \
         (N' = {}), standardised over a warm-up of {} samples. Test: {} clean held-out trajectories of {} \
         samples (seeds 1000000 + i); predictions start at k = 0, 5, ..., 95; a start's error is \
         sqrt(mean over steps 1..H of |x_hat - x|^2), the table shows the RMS over starts (mean over {} \
         noise realisations) and starts with an error above {} at any step count as diverged. \
         `relift` reads x back and lifts it again every step; `linear` iterates A. mu_sigma is the \
         helper's mu (noise energy of the warm-up window); W is the warm-up length.",
        s.setup.trajectories,
        s.setup.samples,
        s.setup.dictionary,
        s.setup.dictionary.dimension(2),
        s.setup.warmup,
        s.setup.test_trajectories,
        s.setup.test_samples,
        s.reps,
        vdp::DIVERGENCE,
    ));
    section.intro.push(format!(
        "The two estimators that measurement noise does not bias use the robust fit's dictionary, warm-up and \
         standardisation. Instrumental variables: the instrument of a pair is the regressor {} earlier in \
         its record (the dictionary has no delays, so it shares no sample, and no noise, with the pair), mu = {:.0} \
         (only to keep the moment matrix invertible). Correlation estimator: DMD on the lag covariances of the \
         lifted vectors at lags 1..={} (no lag spans a gap between records), SVD rank {}, solved once after the \
         training data; it has no ridge (mu shows as a dash). `models` counts the realisations in which a method \
         gave a model; the means are over those.",
        match vdp::IV_DELAY {
            1 => "one pair".to_owned(),
            d => format!("{d} pairs"),
        },
        Sci(vdp::IV_MU),
        vdp::CORRELATION_LAGS,
        vdp::CORRELATION_RANK.map_or("all non-negligible".to_owned(), |r| r.to_string()),
    ));
    let mut by_sigma: Vec<Vec<Record>> = Vec::new();
    let mut by_lags: Vec<Vec<Record>> = Vec::new();
    let mut eigen_rows: Vec<Vec<Cell>> = Vec::new();
    let mut spectrum_plot: Option<(Vec<c64>, Vec<c64>)> = None;
    let mut prediction_plot: Option<(LinearModel, LinearModel)> = None;
    let plot_sigma = *s.sigmas.last().unwrap_or(&0.1);
    for &sigma in &s.sigmas {
        let mut records: Vec<Record> = names.iter().map(|_| Record::default()).collect();
        let mut lag_records: Vec<Record> = s.correlation_lags.iter().map(|_| Record::default()).collect();
        for rep in 0..s.reps {
            let chains = s.setup.training_data(sigma, rep)?;
            let fits = vdp::fit(&s.setup, &chains, sigma)?;
            let fitted = models(&fits, &s)?;
            for ((mu, model), record) in fitted.iter().zip(records.iter_mut()) {
                record.mu.push(*mu);
                record.add(rep, score_fitted(model, &references)?);
            }
            for (&lags, record) in s.correlation_lags.iter().zip(lag_records.iter_mut()) {
                let model = vdp::fit_correlation(&s.setup, &chains, lags, vdp::CORRELATION_RANK)?;
                record.add(rep, score_fitted(&model, &references)?);
            }
            if rep == 0 {
                section.online_batch.push(OnlineBatch {
                    system: "vdp".into(),
                    setting: format!("sigma = {sigma}, robust"),
                    n_regressor: fits.n_regressor,
                    pairs: fits.pairs,
                    mu: fits.mu_sigma,
                    difference: fits.online_minus_batch,
                });
                for m in [ROBUST, EDMD, IV, CORRELATION] {
                    eigen_rows.push(spectrum_row(sigma, &names[m], fitted[m].1.as_ref().ok())?);
                }
                if sigma == plot_sigma {
                    let eig = |m: &LinearModel| koopman::spectrum::eigenvalues(m.a.as_ref());
                    spectrum_plot = Some((eig(&fits.robust)?, eig(&fits.edmd)?));
                    prediction_plot = Some((fits.robust.clone(), fits.edmd.clone()));
                }
            }
        }
        by_sigma.push(records);
        by_lags.push(lag_records);
    }
    section.tables.push(prediction_table(&s, &names, &by_sigma));
    let (comparison, findings) = robust_vs_edmd(&s, &by_sigma);
    section.tables.push(comparison);
    section.findings.extend(findings);
    let (comparison, findings) = debiased_comparison(&s, &by_sigma);
    section.tables.push(comparison);
    section.findings.extend(findings);
    let (lag_table, lag_finding) = correlation_lags(&s, &by_lags);
    section.tables.push(lag_table);
    section.findings.push(lag_finding);
    section.findings.extend(failures(&s, &names, &by_sigma, &by_lags));
    let (size_table, size_findings) = data_size(&s, &references)?;
    section.tables.push(size_table);
    section.findings.extend(size_findings);
    let mut eigen = Table::new(
        "vdp_spectrum",
        "Identified limit-cycle frequency (eigenvalue nearest the unit circle near w0) and the real eigenvalue nearest the Floquet multiplier, first realisation",
        &["sigma", "method", "f0 (Hz)", "f0 error (%)", "decay nearest Floquet (1/s)", "Floquet exponent (1/s)"],
    );
    eigen.rows = eigen_rows;
    section.tables.push(eigen);
    section.findings.extend(noise_growth(&s, &by_sigma));
    section.findings.extend(frequency_findings(&s, &by_sigma));
    section.findings.push(linear_finding(&by_sigma));
    section.summary = summary(&s, &by_sigma);
    if let Some((robust, edmd)) = spectrum_plot {
        section.plots.push(spectrum_figure(plot_sigma, &robust, &edmd)?);
    }
    if let (Some((robust, edmd)), Some(reference)) = (prediction_plot, references.first()) {
        section.plots.push(prediction_figure(plot_sigma, &robust, &edmd, reference)?);
    }
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(rms: f64) -> Scores {
        let p = PredictionScore { rms, diverged: 0, starts: 10 };
        Scores { one_step: p, h20: p, h50: p, h20_linear: p, f0_error: -rms, floquet_error: rms }
    }

    #[test]
    fn verdicts_name_the_method_judged() {
        assert_eq!(verdict(0.9, 1.0, 3, 4).text("IV"), "IV wins");
        assert_eq!(verdict(1.1, 1.0, 3, 4).text("correlation"), "correlation LOSES");
        assert_eq!(verdict(1.005, 1.0, 0, 4).text("robust"), "tie (within 1 %)");
        assert_eq!(verdict(0.9, 1.0, 2, 4).text("robust"), "mixed");
        assert_eq!(verdict(f64::NAN, 1.0, 0, 0).text("robust"), "undecided (diverged)");
    }

    #[test]
    fn a_win_with_more_diverged_starts_says_so() {
        let s = Settings { sigmas: vec![0.2], ..settings(Scale::Quick) };
        let names = method_names(&s.fixed_mu);
        let mut records: Vec<Record> = names.iter().map(|_| Record::default()).collect();
        for (m, record) in records.iter_mut().enumerate() {
            let mut score = scores(if m == IV { 0.5 } else { 1.0 });
            if m == IV {
                score.h50.diverged = 3;
            }
            record.add(0, Ok(score));
        }
        let by_sigma = vec![records];
        let text = Tally::of(&s, &by_sigma, IV, EDMD).describe();
        assert!(
            text.starts_with("wins at sigma 0.2 H 20 (0.500 vs 1.000), sigma 0.2 H 50 (0.500 vs 1.000, but 3 vs 0"),
            "{text}"
        );
        let (table, _) = debiased_comparison(&s, &by_sigma);
        let diverged: Vec<&Cell> = table.rows.iter().map(|r| &r[8]).collect();
        assert_eq!(
            diverged[..4],
            [&Cell::text("0 / 0"), &Cell::text("0 / 0"), &Cell::text("0 / 0"), &Cell::text("0 / 0")]
        );
        assert_eq!(diverged[4], &Cell::text("3 / 0"), "IV against EDMD at H = 50");
    }

    #[test]
    fn a_method_without_a_model_is_reported_and_left_out_of_the_means() {
        let s = Settings { sigmas: vec![0.1], correlation_lags: vec![2], ..settings(Scale::Quick) };
        let names = method_names(&s.fixed_mu);
        let mut records: Vec<Record> = names.iter().map(|_| Record::default()).collect();
        for (rep, (edmd, correlation)) in
            [(1.0, Ok(scores(0.5))), (1.0, Err(NumericalError::NotFinite))].into_iter().enumerate()
        {
            for (m, record) in records.iter_mut().enumerate() {
                let outcome = match m {
                    CORRELATION => correlation.clone(),
                    EDMD => Ok(scores(edmd)),
                    _ => Ok(scores(2.0)),
                };
                record.add(rep as u64, outcome);
            }
        }
        let correlation = &records[CORRELATION];
        assert_eq!((correlation.mean(|x| x.h20), correlation.mean_abs_f0_error()), (0.5, 0.5));
        assert_eq!(head_to_head(correlation, &records[EDMD], |x| x.h20), (1, 1), "only realisations with both");
        let by_sigma = vec![records];
        let table = prediction_table(&s, &names, &by_sigma);
        assert_eq!(table.rows[CORRELATION].last(), Some(&Cell::text("1/2")));
        let lags = vec![vec![Record::default()]];
        let found = failures(&s, &names, &by_sigma, &lags);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("correlation (online, 2 lags) gave no model in 1 of 2 realisations (realisations 1"));
        // Against EDMD the correlation estimator wins at both horizons; IV (error 2) loses.
        let (table, findings) = debiased_comparison(&s, &by_sigma);
        assert_eq!(table.rows.len(), 2 * 2 * 2, "two horizons x two estimators x two references");
        assert!(
            findings.iter().any(
                |f| f.starts_with("The correlation estimator against EDMD") && f.contains("wins at sigma 0.1 H 20")
            )
        );
        assert!(
            findings.iter().any(|f| f.starts_with("Instrumental variables against EDMD") && f.contains("wins at none"))
        );
    }
}
