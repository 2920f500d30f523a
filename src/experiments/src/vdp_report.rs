//! The Van der Pol experiment of the report: prediction errors of the robust estimator
//! against EDMD, fixed ridges and online DMD over noise levels and data sizes, the
//! identified limit-cycle spectrum, and the plots.

use koopman::{LinearModel, PredictionMode, c64};

use super::fitting::{PredictionScore, finite_mean};
use super::report::{Cell, OnlineBatch, Section, Table};
use super::vdp::{self, TS, VdpFits, VdpSetup};
use super::vdp_figures::{prediction_figure, spectrum_figure, spectrum_row};
use super::{ExperimentError, Scale};

/// Factor of the constant-relative proposal mu_M = factor * M * mu_sigma / W.
const CONSTANT_RELATIVE: f64 = 0.02;

struct Settings {
    setup: VdpSetup,
    sigmas: Vec<f64>,
    reps: u64,
    fixed_mu: Vec<f64>,
    size_trajectories: Vec<usize>,
    size_sigmas: Vec<f64>,
    size_reps: u64,
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
        },
        Scale::Quick => Settings {
            setup: VdpSetup { trajectories: 4, test_trajectories: 3, ..vdp::standard_setup() },
            sigmas: vec![0.05, 0.2],
            reps: 1,
            fixed_mu: vec![1.0],
            size_trajectories: vec![3],
            size_sigmas: vec![0.2],
            size_reps: 1,
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
}

fn score(model: &LinearModel, references: &[Vec<f64>]) -> Result<Scores, ExperimentError> {
    Ok(Scores {
        one_step: super::fitting::prediction_error(model, references, 2, &vdp::one_step_plan())?,
        h20: vdp::prediction_error(model, references, 20, PredictionMode::Relift)?,
        h50: vdp::prediction_error(model, references, 50, PredictionMode::Relift)?,
        h20_linear: vdp::prediction_error(model, references, 20, PredictionMode::Linear)?,
    })
}

/// Scores of one method over the repetitions.
#[derive(Default)]
struct Record {
    mu: Vec<f64>,
    scores: Vec<Scores>,
}

impl Record {
    fn mean(&self, pick: impl Fn(&Scores) -> PredictionScore) -> f64 {
        finite_mean(self.scores.iter().map(|s| pick(s).rms))
    }

    fn diverged(&self, pick: impl Fn(&Scores) -> PredictionScore) -> (usize, usize) {
        self.scores.iter().map(pick).fold((0, 0), |(d, t), s| (d + s.diverged, t + s.starts))
    }
}

fn method_names(fixed: &[f64]) -> Vec<String> {
    let mut names = vec!["robust online, mu from sigma".to_owned(), "batch EDMD (mu = 0)".to_owned()];
    names.extend(fixed.iter().map(|mu| format!("ridge, fixed mu = {mu}")));
    names.push(format!("ridge, mu = {CONSTANT_RELATIVE} M mu_sigma / W (proposal)"));
    names.push("online DMD (raw states)".to_owned());
    names
}

fn models(fits: &VdpFits, settings: &Settings) -> Result<Vec<(f64, LinearModel)>, ExperimentError> {
    let mut out = vec![(fits.mu_sigma, fits.robust.clone()), (0.0, fits.edmd.clone())];
    for &mu in &settings.fixed_mu {
        out.push((mu, fits.ridge(mu)?));
    }
    let relative = CONSTANT_RELATIVE * fits.pairs as f64 * fits.mu_sigma / settings.setup.warmup as f64;
    out.push((relative, fits.constant_relative(CONSTANT_RELATIVE, settings.setup.warmup)?));
    out.push((1e-10, fits.online_dmd.clone()));
    Ok(out)
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
    let mut by_sigma: Vec<Vec<Record>> = Vec::new();
    let mut eigen_rows: Vec<Vec<Cell>> = Vec::new();
    let mut spectrum_plot: Option<(Vec<c64>, Vec<c64>)> = None;
    let mut prediction_plot: Option<(LinearModel, LinearModel)> = None;
    let plot_sigma = *s.sigmas.last().unwrap_or(&0.1);
    for &sigma in &s.sigmas {
        let mut records: Vec<Record> = names.iter().map(|_| Record::default()).collect();
        for rep in 0..s.reps {
            let chains = s.setup.training_data(sigma, rep)?;
            let fits = vdp::fit(&s.setup, &chains, sigma)?;
            let fitted = models(&fits, &s)?;
            for ((mu, model), record) in fitted.iter().zip(records.iter_mut()) {
                record.mu.push(*mu);
                record.scores.push(score(model, &references)?);
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
                for (name, (_, model)) in names.iter().zip(&fitted).take(2) {
                    eigen_rows.push(spectrum_row(sigma, name, model)?);
                }
                if sigma == plot_sigma {
                    let eig = |m: &LinearModel| koopman::spectrum::eigenvalues(m.a.as_ref());
                    spectrum_plot = Some((eig(&fits.robust)?, eig(&fits.edmd)?));
                    prediction_plot = Some((fits.robust.clone(), fits.edmd.clone()));
                }
            }
        }
        by_sigma.push(records);
    }
    section.tables.push(prediction_table(&s, &names, &by_sigma));
    let (comparison, findings) = robust_vs_edmd(&s, &by_sigma);
    section.tables.push(comparison);
    section.findings.extend(findings);
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

fn prediction_table(s: &Settings, names: &[String], by_sigma: &[Vec<Record>]) -> Table {
    let mut table = Table::new(
        "vdp_prediction",
        "Prediction error on clean held-out trajectories (RMS over starts, mean over realisations)",
        &["sigma", "method", "mu (mean)", "one-step", "H=20 relift", "H=50 relift", "H=20 linear", "diverged H=50"],
    );
    for (sigma, records) in s.sigmas.iter().zip(by_sigma) {
        for (name, record) in names.iter().zip(records) {
            let (d, total) = record.diverged(|x| x.h50);
            table.push(vec![
                Cell::fixed(*sigma, 2),
                Cell::text(name),
                Cell::sci(finite_mean(record.mu.iter().copied()), 2),
                Cell::fixed(record.mean(|x| x.one_step), 4),
                Cell::fixed(record.mean(|x| x.h20), 4),
                Cell::fixed(record.mean(|x| x.h50), 4),
                Cell::fixed(record.mean(|x| x.h20_linear), 4),
                Cell::text(format!("{d}/{total}")),
            ]);
        }
    }
    table
}

/// Verdict of the robust estimator against EDMD at one noise level and horizon.
fn verdict(robust: f64, edmd: f64, wins: usize, reps: usize) -> &'static str {
    let change = robust / edmd - 1.0;
    if !(robust.is_finite() && edmd.is_finite()) {
        "undecided (diverged)"
    } else if change.abs() < 0.01 {
        "tie (within 1 %)"
    } else if change < 0.0 && 2 * wins > reps {
        "robust wins"
    } else if change > 0.0 {
        "robust LOSES"
    } else {
        "mixed"
    }
}

fn robust_vs_edmd(s: &Settings, by_sigma: &[Vec<Record>]) -> (Table, Vec<String>) {
    let mut table = Table::new(
        "vdp_robust_vs_edmd",
        "Robust (mu from sigma) against batch EDMD, relift prediction, per realisation",
        &["sigma", "H", "robust", "EDMD", "robust - EDMD (%)", "robust better in", "verdict"],
    );
    let mut findings = Vec::new();
    for (sigma, records) in s.sigmas.iter().zip(by_sigma) {
        for (h, pick) in [(20, (|x: &Scores| x.h20) as fn(&Scores) -> PredictionScore), (50, |x: &Scores| x.h50)] {
            let (robust, edmd) = (records[0].mean(pick), records[1].mean(pick));
            let reps = records[0].scores.len();
            let wins =
                records[0].scores.iter().zip(&records[1].scores).filter(|(r, e)| pick(r).rms < pick(e).rms).count();
            let v = verdict(robust, edmd, wins, reps);
            table.push(vec![
                Cell::fixed(*sigma, 2),
                Cell::int(h),
                Cell::fixed(robust, 4),
                Cell::fixed(edmd, 4),
                Cell::fixed(100.0 * (robust / edmd - 1.0), 1),
                Cell::text(format!("{wins}/{reps}")),
                Cell::text(v),
            ]);
            if v != "robust wins" {
                findings.push(format!(
                    "sigma = {sigma}, H = {h}: the robust estimator does not beat EDMD ({v}: {robust:.4} vs {edmd:.4}, \
                     better in {wins} of {reps} realisations)."
                ));
            }
        }
    }
    (table, findings)
}

fn data_size(s: &Settings, references: &[Vec<f64>]) -> Result<(Table, Vec<String>), ExperimentError> {
    let mut table = Table::new(
        "vdp_data_size",
        "Effect of the amount of data: relift prediction error (mean over realisations) against the number of pairs M",
        &[
            "M (pairs)",
            "sigma",
            "H",
            "EDMD",
            "robust (mu from sigma)",
            "ridge 0.02 M mu_sigma / W",
            "diverged EDMD / robust / proposal",
        ],
    );
    let mut findings = Vec::new();
    for &trajectories in &s.size_trajectories {
        let setup = s.setup.clone().with_trajectories(trajectories);
        for &sigma in &s.size_sigmas {
            let mut per_method: [Vec<(PredictionScore, PredictionScore)>; 3] = Default::default();
            let mut pairs = 0;
            for rep in 0..s.size_reps {
                let chains = setup.training_data(sigma, rep)?;
                let fits = vdp::fit(&setup, &chains, sigma)?;
                pairs = fits.pairs;
                let models =
                    [fits.edmd.clone(), fits.robust.clone(), fits.constant_relative(CONSTANT_RELATIVE, setup.warmup)?];
                for (model, out) in models.iter().zip(per_method.iter_mut()) {
                    out.push((
                        vdp::prediction_error(model, references, 20, PredictionMode::Relift)?,
                        vdp::prediction_error(model, references, 50, PredictionMode::Relift)?,
                    ));
                }
            }
            for (h, long) in [(20, false), (50, true)] {
                let pick = |v: &(PredictionScore, PredictionScore)| if long { v.1 } else { v.0 };
                let means: Vec<f64> = per_method.iter().map(|m| finite_mean(m.iter().map(|v| pick(v).rms))).collect();
                let diverged: Vec<usize> =
                    per_method.iter().map(|m| m.iter().map(|v| pick(v).diverged).sum()).collect();
                table.push(vec![
                    Cell::int(pairs),
                    Cell::fixed(sigma, 2),
                    Cell::int(h),
                    Cell::fixed(means[0], 4),
                    Cell::fixed(means[1], 4),
                    Cell::fixed(means[2], 4),
                    Cell::text(format!("{} / {} / {}", diverged[0], diverged[1], diverged[2])),
                ]);
                if means[1] > means[0] * 1.01 || diverged[1] > diverged[0] {
                    findings.push(format!(
                        "M = {pairs} pairs, sigma = {sigma}, H = {h}: mu from sigma is worse than EDMD ({:.4} vs {:.4}, \
                         {} vs {} diverged starts); the proposal gives {:.4}.",
                        means[1], means[0], diverged[1], diverged[0], means[2]
                    ));
                }
            }
        }
    }
    findings.push(format!(
        "Why mu from sigma suffers with little data: the helper returns the noise energy of the whole \
         warm-up window ({} samples) as mu, and with running sums the ridge then fades only as mu / M. \
         With M a few times W the ridge is far larger than the noise in the data it regularises. A constant \
         relative ridge mu_M = {CONSTANT_RELATIVE} M mu_sigma / W (the `proposal` column) does not have \
         this problem; DESIGN.md 1.2 already allows a constant relative regularisation.",
        s.setup.warmup
    ));
    Ok((table, findings))
}

fn linear_finding(by_sigma: &[Vec<Record>]) -> String {
    let linear: Vec<String> = by_sigma.iter().map(|r| format!("{:.3}", r[0].mean(|x| x.h20_linear))).collect();
    format!(
        "Linear (non-relift) prediction at H = 20 stays at {} (robust, by noise level) whatever the noise: \
         `state,const,poly:3` is not invariant under the Van der Pol flow, so iterating A in lifted space \
         is limited by the dictionary, not by the noise; the comparison above therefore uses relift.",
        linear.join(", ")
    )
}

fn summary(s: &Settings, by_sigma: &[Vec<Record>]) -> Vec<String> {
    let (mut wins, mut ties, mut losses) = (Vec::new(), Vec::new(), Vec::new());
    for (sigma, records) in s.sigmas.iter().zip(by_sigma) {
        for (h, pick) in [(20, (|x: &Scores| x.h20) as fn(&Scores) -> PredictionScore), (50, |x: &Scores| x.h50)] {
            let (r, e) = (records[0].mean(pick), records[1].mean(pick));
            let reps = records[0].scores.len();
            let better = records[0].scores.iter().zip(&records[1].scores).filter(|(a, b)| pick(a).rms < pick(b).rms);
            let text = format!("sigma {sigma} H {h} ({r:.3} vs {e:.3})");
            match verdict(r, e, better.count(), reps) {
                "robust wins" => wins.push(text),
                "tie (within 1 %)" => ties.push(text),
                _ => losses.push(text),
            }
        }
    }
    let list = |v: &[String]| if v.is_empty() { "none".to_owned() } else { v.join(", ") };
    vec![format!(
        "Van der Pol, M = {} pairs, relift prediction, robust (mu from sigma) against EDMD: wins at {}; ties \
         (within 1 %) at {}; LOSES at {}. With little data (M of a few hundred to 1000 pairs) mu from sigma is much \
         worse than EDMD and even diverges (data-size table); a constant relative ridge would fix that.",
        s.setup.trajectories * (s.setup.samples - 1),
        list(&wins),
        list(&ties),
        list(&losses),
    )]
}
