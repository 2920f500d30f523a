//! Statistics and presentation shared by the two IEEE 68-bus experiments: per-mode error
//! statistics over noise realisations, the mode and prediction tables, the robust-against-EDMD
//! verdicts, the eigenvalue plot, and fitting the three methods to one record.

use koopman::LinearModel;
use koopman::spectrum::Mode;
use systems::Network;

use super::ExperimentError;
use super::fitting::finite_mean;
use super::ieee68::{self, Identified, Ieee68Setup, SpeedRecord};
use super::plots::{Axes, Marker, Plot, Series};
use super::report::{Cell, OnlineBatch, Table};
use crate::identify::TrueMode;

/// Statistics of one true mode over noise realisations.
#[derive(Debug, Clone, Default)]
pub(super) struct ModeStats {
    pub(super) runs: usize,
    pub(super) frequency: Vec<f64>,
    pub(super) damping: Vec<f64>,
    pub(super) frequency_error: Vec<f64>,
    pub(super) damping_error: Vec<f64>,
    pub(super) mac: Vec<f64>,
}

/// Statistics of one method (at one noise level) over noise realisations.
#[derive(Debug, Clone)]
pub(super) struct MethodStats {
    pub(super) name: String,
    pub(super) snr_db: f64,
    pub(super) modes: Vec<ModeStats>,
    pub(super) one_step: Vec<f64>,
    pub(super) one_second: Vec<f64>,
}

impl MethodStats {
    pub(super) fn new(name: &str, snr_db: f64, modes: usize) -> Self {
        Self {
            name: name.into(),
            snr_db,
            modes: vec![ModeStats::default(); modes],
            one_step: vec![],
            one_second: vec![],
        }
    }

    pub(super) fn add(
        &mut self,
        identified: &Identified,
        truth: &[TrueMode],
        record: &SpeedRecord,
        rate: f64,
    ) -> Result<(), ExperimentError> {
        for ((stats, matched), t) in self.modes.iter_mut().zip(&identified.matched).zip(truth) {
            stats.runs += 1;
            if let Some(m) = matched {
                stats.frequency.push(m.frequency_hz);
                stats.damping.push(m.damping_ratio);
                stats.frequency_error.push(100.0 * m.frequency_error(t));
                stats.damping_error.push(m.damping_error_points(t));
                stats.mac.push(m.mac);
            }
        }
        self.one_step.push(ieee68::normalised_prediction_error(&identified.model, record, 1)?.rms);
        self.one_second.push(ieee68::normalised_prediction_error(&identified.model, record, rate as usize)?.rms);
        Ok(())
    }

    pub(super) fn found(&self) -> usize {
        self.modes.iter().map(|m| m.frequency.len()).sum()
    }

    /// Mean |frequency error| (%) and |damping error| (points) of mode `k` where found.
    pub(super) fn mean_errors(&self, k: usize) -> (f64, f64) {
        let m = &self.modes[k];
        (finite_mean(m.frequency_error.iter().map(|e| e.abs())), finite_mean(m.damping_error.iter().map(|e| e.abs())))
    }
}

pub(super) fn worst(values: &[f64]) -> f64 {
    values.iter().map(|v| v.abs()).fold(f64::NAN, f64::max)
}

pub(super) fn mode_table(file: &str, title: &str, truth: &[TrueMode], stats: &[MethodStats]) -> Table {
    let mut table = Table::new(
        file,
        title,
        &[
            "SNR (dB)",
            "method",
            "true f (Hz)",
            "true zeta (%)",
            "found",
            "mean f (Hz)",
            "mean zeta (%)",
            "mean |f err| (%)",
            "worst |f err| (%)",
            "mean |zeta err| (pt)",
            "worst |zeta err| (pt)",
            "min MAC",
        ],
    );
    for s in stats {
        for (t, m) in truth.iter().zip(&s.modes) {
            table.push(vec![
                Cell::fixed(s.snr_db, 0),
                Cell::text(&s.name),
                Cell::fixed(t.frequency_hz, 4),
                Cell::fixed(100.0 * t.damping_ratio, 2),
                Cell::text(format!("{}/{}", m.frequency.len(), m.runs)),
                Cell::fixed(finite_mean(m.frequency.iter().copied()), 4),
                Cell::fixed(100.0 * finite_mean(m.damping.iter().copied()), 2),
                Cell::fixed(finite_mean(m.frequency_error.iter().map(|e| e.abs())), 2),
                Cell::fixed(worst(&m.frequency_error), 2),
                Cell::fixed(finite_mean(m.damping_error.iter().map(|e| e.abs())), 2),
                Cell::fixed(worst(&m.damping_error), 2),
                Cell::fixed(m.mac.iter().copied().fold(f64::NAN, f64::min), 2),
            ]);
        }
    }
    table
}

pub(super) fn prediction_table(file: &str, title: &str, stats: &[MethodStats]) -> Table {
    let mut table = Table::new(file, title, &["SNR (dB)", "method", "one-step", "1 s ahead"]);
    for s in stats {
        table.push(vec![
            Cell::fixed(s.snr_db, 0),
            Cell::text(&s.name),
            Cell::sci(finite_mean(s.one_step.iter().copied()), 2),
            Cell::sci(finite_mean(s.one_second.iter().copied()), 2),
        ]);
    }
    table
}

/// Robust (first) against EDMD (second) at each noise level: found modes and mean errors
/// (|f err| in % plus |zeta err| in points, per mode). Returns findings and short verdicts.
pub(super) fn compare(stats: &[MethodStats], truth: &[TrueMode], what: &str) -> (Vec<String>, Vec<String>) {
    let mut findings = Vec::new();
    let mut verdicts = Vec::new();
    for pair in stats.chunks(3).filter(|c| c.len() >= 2) {
        let (robust, edmd) = (&pair[0], &pair[1]);
        let mut better = 0;
        let mut worse = 0;
        for k in 0..truth.len() {
            let (rf, rz) = robust.mean_errors(k);
            let (ef, ez) = edmd.mean_errors(k);
            if rf.is_finite() && ef.is_finite() {
                better += usize::from(rf + rz < 0.95 * (ef + ez));
                worse += usize::from(rf + rz > 1.05 * (ef + ez));
            }
        }
        let verdict = match (robust.found().cmp(&edmd.found()), better, worse) {
            (std::cmp::Ordering::Less, _, _) => "robust LOSES (finds fewer modes)",
            (std::cmp::Ordering::Greater, _, 0) => "robust wins (finds more modes)",
            (_, b, 0) if b > 0 => "robust wins",
            (_, 0, 0) => "tie",
            (_, b, w) if b > w => "mixed, mostly robust better",
            _ => "robust LOSES (larger errors)",
        };
        findings.push(format!(
            "{what}, {} dB: {verdict}: robust found {} and EDMD {} mode identifications; mean |f err| + |zeta err| \
             smaller for robust on {better} mode(s), larger on {worse} (5 % margin).",
            robust.snr_db,
            robust.found(),
            edmd.found()
        ));
        verdicts.push(format!("{} dB: {verdict}", robust.snr_db));
    }
    (findings, verdicts)
}

pub(super) fn eigen_plot(
    file: &str,
    title: &str,
    network: Network,
    truth: &[TrueMode],
    fits: &[(&str, &[Mode])],
) -> Result<Plot, ExperimentError> {
    let all = systems::truth::ieee68_modes(network)?;
    let point = |m: &Mode| m.continuous.filter(|_| m.eigenvalue.im > 0.0).map(|c| (c.s.re, c.frequency_hz));
    let mut series = vec![
        Series::new("true modes (linearised)", all.iter().map(|m| (m.re, m.frequency_hz)).collect(), Marker::Cross, 0),
        Series::new(
            "true inter-area modes",
            truth
                .iter()
                .map(|t| {
                    (
                        -t.damping_ratio * std::f64::consts::TAU * t.frequency_hz
                            / (1.0 - t.damping_ratio.powi(2)).sqrt(),
                        t.frequency_hz,
                    )
                })
                .collect(),
            Marker::Ring,
            0,
        ),
    ];
    for (k, (name, modes)) in fits.iter().enumerate() {
        // The first fit as dots, the next as small rings drawn over them, so both stay visible.
        let marker = if k == 0 { Marker::Dot } else { Marker::SmallRing };
        series.push(Series::new(name, modes.iter().filter_map(point).collect(), marker, k + 1));
    }
    Ok(Plot::new(file, title, "Re s (1/s)", "frequency (Hz)", Axes::Linear, series)
        .with_ranges((-2.0, 0.5), (0.0, 1.6)))
}

/// Fits the three methods to one record and adds them to `stats` (three entries).
pub(super) fn run_methods(
    setup: &Ieee68Setup,
    record: &SpeedRecord,
    truth: &[TrueMode],
    stats: &mut [MethodStats],
) -> Result<(ieee68::Fits, Vec<Identified>), ExperimentError> {
    let fits = ieee68::fit_all(setup, record)?;
    let robust = super::fitting::model_of(&fits.robust, "ieee68")?;
    let models: [LinearModel; 3] = [robust, fits.edmd.clone(), fits.online_dmd.clone()];
    let mut identified = Vec::new();
    for (model, s) in models.into_iter().zip(stats.iter_mut()) {
        let id = ieee68::judge(model, setup.ts(), truth)?;
        s.add(&id, truth, record, setup.rate)?;
        identified.push(id);
    }
    Ok((fits, identified))
}

pub(super) fn online_batch(system: &str, snr: f64, setup: &Ieee68Setup, fits: &ieee68::Fits) -> OnlineBatch {
    OnlineBatch {
        system: system.into(),
        setting: format!("{snr} dB, `{}`, robust", setup.dictionary),
        n_regressor: fits.robust.config().n_regressor(),
        pairs: fits.pairs,
        mu: fits.robust.mu().unwrap_or(0.0),
        difference: fits.online_minus_batch,
    }
}
