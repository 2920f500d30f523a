//! The mode meter on simulated 68-bus records, run as the service runs it: the measured
//! state (15 angles relative to G13 and 16 speeds) through the online estimator, and at
//! every eigen refresh the modal analysis with energies and intervals
//! (`koopman::spectrum::analyse`) and the meter's classification, tracking and alarms
//! (`meter::Meter`). No server: the same library calls, so thousands of refreshes over
//! many realisations take minutes, and the service's own end-to-end tests check that it
//! makes these calls the same way.

use koopman::c64;
use koopman::spectrum::{self, ModeEstimate};
use koopman::{DictionarySpec, Estimator, EstimatorConfig, Regularisation};
use meter::{AlarmSettings, Meter, MeterEvent, MeterSettings, Verdict};
use systems::{
    AmbientParams, AngleReference, DampingChange, FaultParams, Ieee68Params, Ieee68Scenario, MeasurementModel,
    NoiseLevel, SimulationRequest, SystemSpec, Trajectory, simulate_clean,
};

use super::ExperimentError;
use crate::identify::{TrueMode, mac};

/// Frames per second of every record here.
pub const RATE: f64 = 30.0;

/// Measurement noise of every record here (dB, per channel).
pub const SNR_DB: f64 = 40.0;

/// Record columns of the measured state: angles 0..16 without G13's (identically 0), then
/// the speeds 16..32.
pub fn state_columns() -> Vec<usize> {
    (0..32).filter(|j| *j != 12).collect()
}

/// Speeds are the last 16 of the measured channels; truth shapes are on the speeds.
const SPEEDS: usize = 16;

/// How a stream is configured for monitoring: the estimator and the meter.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// Name in the tables.
    pub label: String,
    /// Dictionary (on the measured channels).
    pub dictionary: DictionarySpec,
    /// Forgetting factor (1: every pair with equal weight).
    pub forgetting: f64,
    /// Exact sliding window of this many pairs instead (with forgetting 1).
    pub window: Option<usize>,
    /// Ridge.
    pub mu: f64,
    /// Warm-up samples.
    pub warmup: usize,
    /// Samples between eigen refreshes.
    pub eigen_every: usize,
    /// The mode meter.
    pub meter: MeterSettings,
}

impl Recipe {
    /// The recommended monitoring recipe with forgetting factor `rho`: the measured state
    /// and a constant, mu 1e-6, warm-up 300, a refresh every 300 samples (10 s), band
    /// 0.1-0.9 Hz, default alarms (the demo's recipe is this with rho = 0.9995).
    pub fn monitoring(rho: f64) -> Self {
        Self {
            label: format!("forgetting {rho}"),
            dictionary: DictionarySpec { constant: true, ..DictionarySpec::state_only() },
            forgetting: rho,
            window: None,
            mu: 1e-6,
            warmup: 300,
            eigen_every: 300,
            meter: MeterSettings { band_hz: Some((0.1, 0.9)), ..MeterSettings::default() },
        }
    }

    /// The same with another alarm hold time.
    pub fn with_hold(mut self, hold_s: f64) -> Self {
        self.meter.alarm = AlarmSettings { hold_s, ..self.meter.alarm };
        self.label = format!("{}, hold {hold_s} s", self.label);
        self
    }

    /// The monitoring recipe with an exact sliding window of `seconds` instead of
    /// forgetting.
    pub fn monitoring_window(seconds: f64) -> Self {
        Self {
            label: format!("window {seconds} s"),
            window: Some((seconds * RATE).round() as usize),
            ..Self::monitoring(1.0)
        }
    }

    fn estimator_config(&self, names: Vec<String>) -> EstimatorConfig {
        let mut config = EstimatorConfig::new(names, self.dictionary.clone());
        config.regularisation = Regularisation::Mu(self.mu);
        config.forgetting = self.forgetting;
        config.window = self.window;
        config.warmup = self.warmup;
        config
    }
}

/// What a 68-bus record is: the scenario, its length and the damping change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordSpec {
    /// Ambient load noise or the fault.
    pub scenario: Ieee68Scenario,
    /// Seconds.
    pub duration: f64,
    /// Every machine's damping scaled (from a time on, when given).
    pub damping: DampingChange,
}

impl RecordSpec {
    /// Healthy ambient operation.
    pub fn ambient(duration: f64) -> Self {
        Self {
            scenario: Ieee68Scenario::Ambient(AmbientParams::default()),
            duration,
            damping: DampingChange::default(),
        }
    }

    /// Ambient operation whose damping drops to `scale` of its value at `at` seconds.
    pub fn stressed(duration: f64, scale: f64, at: f64) -> Self {
        Self { damping: DampingChange { scale, at: Some(at) }, ..Self::ambient(duration) }
    }

    /// The fault ring-down (fault at bus 29 at 1 s, cleared after 0.05 s).
    pub fn ringdown(duration: f64) -> Self {
        Self { scenario: Ieee68Scenario::Fault(FaultParams::default()), duration, damping: DampingChange::default() }
    }
}

/// A measured record: the channels of `columns`, row-major, at 40 dB.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Channel names.
    pub names: Vec<String>,
    /// Rows of the chosen columns.
    pub rows: Vec<f64>,
}

/// Simulates `spec` (load noise from `seed`) and measures `columns` at 40 dB (noise from
/// another stream of the same seed), skipping the first `skip` samples.
pub fn record(spec: RecordSpec, seed: u64, columns: &[usize], skip: usize) -> Result<Measured, ExperimentError> {
    let request = SimulationRequest::new(SystemSpec::Ieee68(Ieee68Params {
        scenario: spec.scenario,
        angle_reference: AngleReference::Machine(13),
        damping: spec.damping,
    }))
    .with_duration(spec.duration)
    .with_rate(RATE)
    .with_seed(seed);
    let clean: Trajectory = simulate_clean(&request)?;
    let noisy = MeasurementModel { noise: Some(NoiseLevel::SnrDb(SNR_DB)), ..MeasurementModel::clean() }
        .apply(&clean, seed.wrapping_mul(0x9e37_79b9).wrapping_add(17))?;
    let all = systems::ieee68::Ieee68Model::channel_names();
    Ok(Measured {
        names: columns.iter().map(|&j| all[j].clone()).collect(),
        rows: noisy.rows().skip(skip).flat_map(|row| columns.iter().map(|&j| row[j])).collect(),
    })
}

/// One eigen refresh as the service makes it.
#[derive(Debug)]
pub struct Refreshed<'a> {
    /// Stream time of the newest sample (s, from the first streamed sample).
    pub t: f64,
    /// Every analysed eigenvalue.
    pub analysed: &'a [ModeEstimate],
    /// The meter after the refresh.
    pub meter: &'a Meter,
    /// What the refresh changed.
    pub events: &'a [MeterEvent],
    /// The meter's verdict on each analysed eigenvalue, with the track it matched.
    pub verdicts: &'a [(Verdict, Option<u64>)],
}

/// Streams `measured` through an estimator and a meter configured by `recipe`, calling
/// `visit` after every refresh (every `eigen_every` samples once a model exists).
pub fn monitor(
    measured: &Measured,
    recipe: &Recipe,
    mut visit: impl FnMut(&Refreshed<'_>),
) -> Result<(), ExperimentError> {
    let ts = 1.0 / RATE;
    let n = measured.names.len();
    let mut estimator = Estimator::new(recipe.estimator_config(measured.names.clone()))?;
    let mut meter = Meter::new(recipe.meter.clone());
    for (k, row) in measured.rows.chunks_exact(n).enumerate() {
        estimator.push(row, &[])?;
        if (k + 1) % recipe.eigen_every != 0 {
            continue;
        }
        let (Some(model), Some(stats)) = (estimator.linear_model(), estimator.mode_statistics()) else {
            continue;
        };
        let analysed = spectrum::analyse(model.a.as_ref(), model.c.as_ref(), ts, &stats)?;
        let t = k as f64 * ts;
        let refresh = meter.refresh(t, ts, &analysed, &spectrum::channel_scale(model.c.as_ref()));
        visit(&Refreshed {
            t,
            analysed: &analysed,
            meter: &meter,
            events: &refresh.events,
            verdicts: &refresh.verdicts,
        });
    }
    Ok(())
}

/// MAC of a served shape (angles, then speeds) against a true shape on the speeds.
fn speed_mac(shape: &[c64], truth: &[c64]) -> f64 {
    mac(&shape[shape.len().saturating_sub(SPEEDS)..], truth)
}

/// Whether a mode at `frequency_hz` with shape `shape` is `truth`: within 15 % in
/// frequency, with a speed-shape MAC of at least 0.5 (the rule of the identification
/// experiments); the MAC is returned.
fn fits(frequency_hz: f64, shape: &[c64], truth: &TrueMode) -> Option<f64> {
    if (frequency_hz / truth.frequency_hz - 1.0).abs() > 0.15 {
        return None;
    }
    let similarity = truth.shape.as_ref().map_or(1.0, |s| speed_mac(shape, s));
    (similarity >= 0.5).then_some(similarity)
}

/// The analysed eigenvalue (upper half plane) that is `truth`: the best MAC among those
/// that fit.
pub fn analysed_match<'a>(analysed: &'a [ModeEstimate], truth: &TrueMode) -> Option<&'a ModeEstimate> {
    analysed
        .iter()
        .filter(|m| m.mode.eigenvalue.im > 0.0)
        .filter_map(|m| m.mode.continuous.and_then(|c| fits(c.frequency_hz, &m.mode.shape, truth)).map(|s| (m, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(m, _)| m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identify::{Ieee68Channels, ieee68_inter_area_modes};

    #[test]
    fn a_short_ambient_record_reaches_refreshes_with_the_slowest_mode_analysed() {
        // Two minutes at 30 frames/s: 12 refreshes after the warm-up; the 0.38 Hz mode,
        // the most energetic, is found among the analysed eigenvalues by the last one.
        let truth = ieee68_inter_area_modes(systems::Network::Pre, Ieee68Channels::Speeds).unwrap();
        let measured = record(RecordSpec::ambient(120.0), 1, &state_columns(), 0).unwrap();
        assert_eq!(measured.names.len(), 31);
        let mut refreshes = 0;
        let mut last_found = None;
        monitor(&measured, &Recipe::monitoring(0.9995), |r| {
            refreshes += 1;
            last_found = analysed_match(r.analysed, &truth[0]).and_then(|m| m.mode.continuous);
        })
        .unwrap();
        assert_eq!(refreshes, 12);
        let found = last_found.expect("0.38 Hz found");
        assert!((found.frequency_hz / truth[0].frequency_hz - 1.0).abs() < 0.05, "{found:?}");
    }
}
