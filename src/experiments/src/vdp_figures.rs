//! The Van der Pol spectrum and plots of the report: the identified limit-cycle frequency
//! and Floquet decay against the truth, the eigenvalues in the complex plane against the
//! limit cycle's Koopman eigenvalues, and a relift prediction against a clean trajectory.

use koopman::spectrum::Continuous;
use koopman::{LinearModel, PredictionMode, c64};

use super::ExperimentError;
use super::plots::{Axes, Marker, Plot, Series, unit_circle};
use super::report::Cell;
use super::vdp::{self, TS};

/// The identified limit-cycle frequency (Hz): among the eigenvalues within 50 % of the true
/// f0, the one nearest the unit circle; NaN when there is none.
pub(super) fn limit_cycle_frequency(model: &LinearModel) -> Result<f64, ExperimentError> {
    let f0 = 1.0 / systems::truth::vdp_limit_cycle(1.0)?.period;
    Ok(continuous_eigenvalues(model)?
        .iter()
        .filter(|c| c.frequency_hz > 0.5 * f0 && c.frequency_hz < 1.5 * f0)
        .min_by(|a, b| a.s.re.abs().total_cmp(&b.s.re.abs()))
        .map_or(f64::NAN, |c| c.frequency_hz))
}

/// The real identified decay rate (1/s) nearest the limit cycle's Floquet exponent; NaN
/// when the model has no real eigenvalue.
pub(super) fn floquet_decay(model: &LinearModel) -> Result<f64, ExperimentError> {
    let exponent = systems::truth::vdp_limit_cycle(1.0)?.floquet_exponent;
    Ok(continuous_eigenvalues(model)?
        .into_iter()
        .filter(|c| c.s.im.abs() < 1e-9)
        .map(|c| c.s.re)
        .min_by(|a, b| (a - exponent).abs().total_cmp(&(b - exponent).abs()))
        .unwrap_or(f64::NAN))
}

fn continuous_eigenvalues(model: &LinearModel) -> Result<Vec<Continuous>, ExperimentError> {
    Ok(koopman::spectrum::eigenvalues(model.a.as_ref())?.into_iter().filter_map(|l| Continuous::of(l, TS)).collect())
}

/// One row of the spectrum table; a method without a model gets empty numbers (the
/// findings say why).
pub(super) fn spectrum_row(sigma: f64, name: &str, model: Option<&LinearModel>) -> Result<Vec<Cell>, ExperimentError> {
    let cycle = systems::truth::vdp_limit_cycle(1.0)?;
    let f0 = 1.0 / cycle.period;
    let (f, decay) = match model {
        Some(model) => (limit_cycle_frequency(model)?, floquet_decay(model)?),
        None => (f64::NAN, f64::NAN),
    };
    Ok(vec![
        Cell::fixed(sigma, 2),
        Cell::text(name),
        Cell::fixed(f, 5),
        Cell::fixed(100.0 * (f / f0 - 1.0), 2),
        Cell::fixed(decay, 3),
        Cell::fixed(cycle.floquet_exponent, 3),
    ])
}

pub(super) fn spectrum_figure(sigma: f64, robust: &[c64], edmd: &[c64]) -> Result<Plot, ExperimentError> {
    let truth = vdp::true_eigenvalues(4, 2)?;
    let points = |v: &[c64]| v.iter().map(|z| (z.re, z.im)).collect::<Vec<_>>();
    Ok(Plot::new(
        "vdp_eigenvalues.svg",
        &format!("Van der Pol: eigenvalues of A (sigma = {sigma}) against exp(Ts (i k w0 + l lambda_F))"),
        "Re lambda",
        "Im lambda",
        Axes::Linear,
        vec![
            Series::new("unit circle", unit_circle(), Marker::ThinLine, 0),
            Series::new("truth (limit cycle)", points(&truth), Marker::Cross, 0),
            Series::new("robust (mu from sigma)", points(robust), Marker::Dot, 1),
            Series::new("EDMD", points(edmd), Marker::SmallRing, 2),
        ],
    )
    .with_ranges((-1.2, 1.2), (-1.2, 1.2))
    .with_size(660, 650))
}

pub(super) fn prediction_figure(
    sigma: f64,
    robust: &LinearModel,
    edmd: &LinearModel,
    reference: &[f64],
) -> Result<Plot, ExperimentError> {
    let (start, horizon) = (20usize, 50usize);
    let history = robust.lifting().history_len();
    let recent = &reference[(start + 1 - history) * 2..(start + 1) * 2];
    let time = |k: usize| k as f64 * TS;
    let truth: Vec<(f64, f64)> = reference.chunks_exact(2).enumerate().map(|(k, x)| (time(k), x[0])).collect();
    let predicted = |model: &LinearModel| -> Result<Vec<(f64, f64)>, ExperimentError> {
        let p = model.predict(recent, &[], horizon, PredictionMode::Relift)?;
        Ok(std::iter::once((time(start), reference[start * 2]))
            .chain(p.chunks_exact(2).enumerate().map(|(j, x)| (time(start + 1 + j), x[0])))
            .collect())
    };
    Ok(Plot::new(
        "vdp_prediction.svg",
        &format!("Van der Pol: {horizon}-step relift prediction of x1 from t = {:.1} s (sigma = {sigma})", time(start)),
        "t (s)",
        "x1",
        Axes::Linear,
        vec![
            Series::new("truth (clean)", truth, Marker::Line, 0),
            Series::new("robust (mu from sigma)", predicted(robust)?, Marker::Line, 1),
            Series::new("EDMD", predicted(edmd)?, Marker::Line, 2),
        ],
    )
    .with_ranges((0.0, time(reference.len() / 2)), (-3.5, 3.5)))
}
