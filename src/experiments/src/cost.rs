//! Cost as data grow: wall-clock time of one online update against one batch refit (QR of
//! all M stacked pairs) at M = 10^3, 10^4, 10^5 pairs, for the Van der Pol and ring
//! dictionaries. Timings are wall clock on this machine (std::time::Instant), indicative
//! only; `cargo bench` (BENCHMARKS.md) is the reference for speed.

use std::time::Instant;

use koopman::{DictionarySpec, EstimatorConfig, Regularisation, batch};
use systems::{MeasurementModel, NoiseLevel, SimulationRequest, SystemSpec, VanDerPolParams, VdpRingParams};

use super::fitting::{self, Chains};
use super::plots::{Axes, Legend, Marker, Plot, Series};
use super::report::{Cell, Sci, Section, Table};
use super::{ExperimentError, Scale};

/// Which dictionary and data the cost is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostSystem {
    /// Van der Pol, `state,const,poly:3` (N' = 10).
    VanDerPol,
    /// Ring of 10 Van der Pol oscillators, `state,const,poly:2` (N' = 231).
    Ring,
}

impl CostSystem {
    fn name(self) -> &'static str {
        match self {
            Self::VanDerPol => "vdp",
            Self::Ring => "vdp-ring",
        }
    }

    fn spec(self) -> (SystemSpec, DictionarySpec, usize) {
        match self {
            Self::VanDerPol => (
                SystemSpec::VanDerPol(VanDerPolParams::default()),
                DictionarySpec { constant: true, poly_degree: Some(3), ..DictionarySpec::default() },
                2,
            ),
            Self::Ring => (
                SystemSpec::VdpRing(VdpRingParams::default()),
                DictionarySpec { constant: true, poly_degree: Some(2), ..DictionarySpec::default() },
                20,
            ),
        }
    }
}

/// Time measurements at one data size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostPoint {
    /// Pairs in the model.
    pub pairs: usize,
    /// Mean wall time of one online update over the pairs since the previous checkpoint (s).
    pub update_s: f64,
    /// Wall time of all online updates up to here, warm-up included (s).
    pub online_total_s: f64,
    /// Wall time of one batch refit over all pairs (QR of the stacked pairs) (s).
    pub refit_s: f64,
}

const WARMUP: usize = 200;

/// Streams one long noisy record (sigma = 0.05) through the robust estimator and, at each
/// checkpoint, times a batch refit of every pair so far.
pub fn measure(system: CostSystem, checkpoints: &[usize]) -> Result<(usize, Vec<CostPoint>), ExperimentError> {
    let (spec, dictionary, n) = system.spec();
    let last = checkpoints.iter().copied().max().unwrap_or(0);
    let samples = last + WARMUP + 1;
    let request = SimulationRequest::new(spec)
        .with_duration(samples as f64 * 0.1)
        .with_rate(10.0)
        .with_seed(42)
        .with_measurement(MeasurementModel { noise: Some(NoiseLevel::Sigma(0.05)), ..MeasurementModel::clean() });
    let record = systems::simulate(&request)?;
    let mut config = EstimatorConfig::new(EstimatorConfig::default_names("x", n), dictionary);
    config.regularisation = Regularisation::NoiseSigma(vec![0.05]);
    config.warmup = WARMUP;
    let mut estimator = koopman::Estimator::new(config)?;
    let rows: Vec<&[f64]> = record.rows().collect();
    let mut next = 0;
    let mut points = Vec::new();
    let mut online_total = 0.0;
    let mut previous_pairs = 0usize;
    for &target in checkpoints {
        let started = Instant::now();
        while (estimator.counters().pairs as usize) < target && next < rows.len() {
            estimator.push(rows[next], &[])?;
            next += 1;
        }
        let segment = started.elapsed().as_secs_f64();
        online_total += segment;
        let pairs = estimator.counters().pairs as usize;
        let lifting = fitting::lifting_of(&estimator, "cost")?;
        let mut chains = Chains::new(n);
        chains.push_chain(&record.values()[..next * n]);
        let stacked = fitting::stack(&lifting, &chains);
        let mu = estimator.mu().unwrap_or(0.0);
        let started = Instant::now();
        let k = batch::solve(stacked.regressors.as_ref(), stacked.targets.as_ref(), mu, None)?;
        let refit = started.elapsed().as_secs_f64();
        // Keep the solve from being optimised away and check it is the same problem.
        debug_assert_eq!(k.nrows(), lifting.dim());
        points.push(CostPoint {
            pairs,
            update_s: segment / (pairs - previous_pairs).max(1) as f64,
            online_total_s: online_total,
            refit_s: refit,
        });
        previous_pairs = pairs;
    }
    Ok((estimator.config().n_regressor(), points))
}

/// Runs the cost measurements for `systems`.
pub fn experiment(scale: Scale, systems: &[CostSystem]) -> Result<Section, ExperimentError> {
    let checkpoints = scale.pick(vec![1_000, 10_000, 100_000], vec![300, 1_000]);
    let mut section = Section { title: "Cost: online update against batch refit".into(), ..Section::default() };
    section.intro.push(format!(
        "One long record (sigma = 0.05) streamed through the robust estimator; at M = {} pairs, the mean wall time \
         of one online update over the pairs since the previous checkpoint (the first segment includes the \
         warm-up batch solve) and the wall time of one batch refit (Householder QR of all M stacked pairs; \
         lifting and stacking not counted). Wall clock on the machine named at the top, single thread, indicative \
         only: `cargo bench` (BENCHMARKS.md) is the reference for speed.",
        checkpoints.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ")
    ));
    let mut table = Table::new(
        "cost",
        "Time per online update against time per batch refit as data grow",
        &["system", "N'", "M (pairs)", "update (µs)", "online total (s)", "batch refit (s)", "refit / update"],
    );
    let mut series = Vec::new();
    let mut headline = Vec::new();
    for (k, &system) in systems.iter().enumerate() {
        let (n_regressor, points) = measure(system, &checkpoints)?;
        for p in &points {
            table.push(vec![
                Cell::text(system.name()),
                Cell::int(n_regressor),
                Cell::int(p.pairs),
                Cell::fixed(p.update_s * 1e6, 2),
                Cell::sci(p.online_total_s, 2),
                Cell::sci(p.refit_s, 2),
                Cell::sci(p.refit_s / p.update_s, 1),
            ]);
        }
        let at = |f: fn(&CostPoint) -> f64| points.iter().map(|p| (p.pairs as f64, f(p))).collect::<Vec<_>>();
        let label = |what: &str| format!("{what}, {} (N' = {n_regressor})", system.name());
        series.push(Series::new(&label("batch refit"), at(|p| p.refit_s), Marker::Line, 2 * k + 1));
        series.push(Series::new(&label("one update"), at(|p| p.update_s), Marker::Line, 2 * k + 2));
        if let (Some(first), Some(last)) = (points.first(), points.last()) {
            headline.push(format!(
                "{} (N' = {n_regressor}): update {:.1} µs, refit {:.2} s at M = {} ({:.0} updates)",
                system.name(),
                last.update_s * 1e6,
                Sci(last.refit_s),
                last.pairs,
                Sci(last.refit_s / last.update_s)
            ));
            section.findings.push(format!(
                "{} (N' = {n_regressor}): one update costs {:.1} to {:.1} µs whatever M, a refit {:.2} s at M = {} \
                 growing to {:.2} s at M = {}; refitting after every sample would cost {:.0} times one update at the \
                 largest M.",
                system.name(),
                points.iter().map(|p| p.update_s).fold(f64::INFINITY, f64::min) * 1e6,
                points.iter().map(|p| p.update_s).fold(0.0, f64::max) * 1e6,
                Sci(first.refit_s),
                first.pairs,
                Sci(last.refit_s),
                last.pairs,
                Sci(last.refit_s / last.update_s)
            ));
        }
    }
    section.tables.push(table);
    section.summary.push(format!(
        "Cost (wall clock): an update does not grow with M, a batch refit grows linearly: {}.",
        headline.join("; ")
    ));
    section.plots.push(
        Plot::new(
            "cost.svg",
            "Wall time of one online update and of one batch refit against the number of pairs M",
            "M (pairs)",
            "seconds",
            Axes::LogLog,
            series,
        )
        .with_legend(Legend::UpperLeft),
    );
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_are_reached_and_timed() {
        let (n_regressor, points) = measure(CostSystem::VanDerPol, &[250, 400]).unwrap();
        assert_eq!(n_regressor, 10);
        assert_eq!(points.iter().map(|p| p.pairs).collect::<Vec<_>>(), [250, 400]);
        assert!(points.iter().all(|p| p.update_s > 0.0 && p.refit_s > 0.0));
        assert!(points[1].online_total_s >= points[0].online_total_s);
    }
}
