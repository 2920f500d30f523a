//! The 68-bus ambient identification from what PMUs measure: bus voltage angles and
//! frequencies at the default buses (`koopstream simulate --measure pmu`), with the
//! C37.118.1 error budget or white noise at a given SNR; ridge, the correlation estimator,
//! batch EDMD and online DMD on the same records, scored against the pre-fault modes with
//! their shapes in the measured quantities.

use koopman::{DictionarySpec, EstimatorConfig, LinearModel, Method, Regularisation, c64, spectrum};
use systems::ieee68::{PmuLayout, PmuQuantity};
use systems::{
    AmbientParams, AngleReference, Ieee68Params, Ieee68Scenario, MeasurementModel, Network, NoiseLevel, PmuErrors,
    PmuMeasurement, SimulationRequest, SystemSpec, Trajectory,
};

use super::debiased::{Errors, METHODS, error_table};
use super::fitting::{self, Chains};
use super::report::{OnlineBatch, Section};
use super::{ExperimentError, Scale};
use crate::identify::{self, TrueMode};

/// Lags and rank of the correlation estimator (the `pmu-ambient` preset).
const LAGS: usize = 120;
const RANK: usize = 32;
/// Delays of every method's dictionary here (the same lifting for all four).
const DELAYS: usize = 2;
/// Frames per second of every PMU record here.
pub(crate) const RATE: f64 = 30.0;

/// How the PMU records are corrupted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Noise {
    /// The C37.118.1 steady-state limits (1 % TVE, 0.005 Hz FE).
    C37,
    /// White noise at this SNR on every column (clean PMUs otherwise).
    Snr(f64),
}

impl Noise {
    pub(crate) fn label(self) -> String {
        match self {
            Self::C37 => "C37.118.1 limits".into(),
            Self::Snr(db) => format!("{db:.0} dB"),
        }
    }
}

/// Angles and frequencies at the default buses.
pub fn layout() -> PmuLayout {
    PmuLayout { quantities: vec![PmuQuantity::Va, PmuQuantity::F], ..PmuLayout::default() }
}

/// The four inter-area modes of `network` with their shapes in the PMU columns (the same
/// four, in the same order, as the machine-state truth).
pub fn pmu_truth(network: Network) -> Result<Vec<TrueMode>, ExperimentError> {
    let reference = identify::ieee68_inter_area_modes(network, identify::Ieee68Channels::Speeds)?;
    let shapes = systems::truth::ieee68_pmu_mode_shapes(network, 1.0, &layout())?;
    Ok(reference
        .iter()
        .map(|t| {
            let closest = shapes
                .iter()
                .min_by(|a, b| {
                    (a.mode.frequency_hz - t.frequency_hz)
                        .abs()
                        .total_cmp(&(b.mode.frequency_hz - t.frequency_hz).abs())
                })
                .expect("the network has modes");
            TrueMode {
                frequency_hz: closest.mode.frequency_hz,
                damping_ratio: closest.mode.damping_ratio,
                shape: Some(closest.shape.iter().map(|(_, v)| c64::new(v.re, v.im)).collect()),
            }
        })
        .collect())
}

/// The clean ambient record at the PMUs of [`layout`]; `seed` drives the load noise.
pub(crate) fn simulate_pmu(duration: f64, seed: u64) -> Result<Trajectory, ExperimentError> {
    simulate_scenario(Ieee68Scenario::Ambient(AmbientParams::default()), duration, seed)
}

/// The clean record of `scenario` at the PMUs of [`layout`].
pub(crate) fn simulate_scenario(
    scenario: Ieee68Scenario,
    duration: f64,
    seed: u64,
) -> Result<Trajectory, ExperimentError> {
    let request = SimulationRequest::new(SystemSpec::Ieee68(Ieee68Params {
        scenario,
        angle_reference: AngleReference::default(),
        damping: Default::default(),
    }))
    .with_duration(duration)
    .with_rate(RATE)
    .with_seed(seed)
    .with_pmu(PmuMeasurement { layout: layout(), errors: PmuErrors::none() });
    Ok(systems::simulate_clean(&request)?)
}

/// `clean` with the errors of `noise`, drawn from `seed`.
pub(crate) fn corrupt(clean: &Trajectory, noise: Noise, seed: u64) -> Result<Trajectory, ExperimentError> {
    Ok(match noise {
        Noise::C37 => PmuErrors::default().apply(clean, &layout(), seed)?,
        Noise::Snr(db) => {
            MeasurementModel { noise: Some(NoiseLevel::SnrDb(db)), ..MeasurementModel::clean() }.apply(clean, seed)?
        }
    })
}

/// Runs the PMU comparison and writes its section.
pub fn experiment(scale: Scale) -> Result<Section, ExperimentError> {
    let realisations: u64 = scale.pick(20, 1);
    let duration = scale.pick(600.0, 90.0);
    let levels = [Noise::C37, Noise::Snr(60.0), Noise::Snr(40.0), Noise::Snr(30.0), Noise::Snr(20.0)];
    let truth = pmu_truth(Network::Pre)?;
    let mut errors = vec![vec![vec![vec![Errors::default(); truth.len()]; METHODS.len()]; levels.len()]];
    let mut online_batch = Vec::new();
    for seed in 0..realisations {
        let clean = simulate_pmu(duration, 11_000 + seed)?;
        for (l, &noise) in levels.iter().enumerate() {
            let record = corrupt(&clean, noise, 13_000 + 31 * seed + l as u64)?;
            let mut chains = Chains::new(record.names().len());
            chains.push_chain(&record.rows().flatten().copied().collect::<Vec<f64>>());
            let (models, difference) = fit(record.names().to_vec(), &chains)?;
            if seed == 0
                && let Some(difference) = difference
            {
                online_batch.push(OnlineBatch {
                    system: "IEEE 68-bus ambient, PMU".into(),
                    setting: format!("correlation, {}", noise.label()),
                    n_regressor: record.names().len() * (DELAYS + 1),
                    pairs: chains.n_samples().saturating_sub(1),
                    mu: 0.0,
                    difference,
                });
            }
            for (m, model) in models.into_iter().enumerate() {
                score(model, &truth, &mut errors[0][l][m])?;
            }
        }
    }
    let labels: Vec<String> = levels.iter().map(|n| n.label()).collect();
    let (table, findings) = error_table(
        "ieee68_pmu_ambient",
        "Ambient 68-bus from PMUs (angles and frequencies at 12 buses): inter-area mode errors over realisations",
        &truth,
        &["PMU angle + frequency"],
        &labels,
        &METHODS,
        &errors,
    );
    let intro = vec![format!(
        "The ambient record of the section above seen by PMUs at the 12 default buses (`koopstream simulate \
         --measure pmu --quantities va,f`: angles relative to bus 65 and frequencies, 23 + 12 = 24 columns less \
         none, since bus 65 is not among them), {realisations} realisations of {duration:.0} s at 30 frames/s. Noise: \
         the C37.118.1 steady-state limits (1 % TVE, 0.005 Hz FE, met by 99 % of frames) or white noise at the \
         given SNR on clean PMUs. Every method uses `state,delay:{DELAYS}` (the same lifting, N = 72); ridge with \
         mu = 1e-6, the correlation estimator with {LAGS} lags past the delay span and rank {RANK}. Truth: the \
         pre-fault modes with their shapes in the PMU columns from the linearised output map; a mode counts as \
         found within 15 % in frequency with shape MAC >= 0.5."
    )];
    Ok(Section {
        title: "IEEE 68-bus ambient from PMU measurements".into(),
        intro,
        tables: vec![table],
        findings,
        online_batch,
        ..Section::default()
    })
}

/// Adds one fit's errors on each true mode (a model of a record at [`RATE`]; None: no
/// model, so nothing found) to `errors`, one entry per mode of `truth`.
pub(crate) fn score(
    model: Option<LinearModel>,
    truth: &[TrueMode],
    errors: &mut [Errors],
) -> Result<(), ExperimentError> {
    let matched = match model {
        Some(model) => {
            let modes = spectrum::modes(model.a.as_ref(), model.c.as_ref(), 1.0 / RATE)?;
            identify::match_modes(&modes, truth, super::ieee68::match_rule())
        }
        None => vec![None; truth.len()],
    };
    for ((e, found), t) in errors.iter_mut().zip(&matched).zip(truth) {
        e.add(found.as_ref().map(|f| (100.0 * f.frequency_error(t), f.damping_error_points(t))));
    }
    Ok(())
}

/// Ridge, correlation, batch EDMD and online DMD (None: no model), and the correlation
/// estimator's online-minus-batch difference.
fn fit(names: Vec<String>, chains: &Chains) -> Result<(Vec<Option<LinearModel>>, Option<f64>), ExperimentError> {
    let dictionary = DictionarySpec { delay: Some(DELAYS), ..DictionarySpec::default() };
    let mut config = EstimatorConfig::new(names.clone(), dictionary);
    config.warmup = 300;
    config.regularisation = Regularisation::Mu(1e-6);
    let ridge = fitting::train_online(config.clone(), chains)?;
    let lifting = fitting::lifting_of(&ridge, "pmu ridge")?;
    let pairs = fitting::stack(&lifting, chains);
    let edmd = fitting::batch_model(&lifting, &pairs, 0.0).ok();
    let corr_config = EstimatorConfig {
        method: Method::Correlation { lags: LAGS, rank: Some(RANK) },
        solve_every: usize::MAX,
        ..config
    };
    let mut corr = fitting::train_online(corr_config.clone(), chains)?;
    corr.solve_now()?;
    let difference = koopman::batch::debiased::correlation(
        &pairs,
        corr_config.first_free_lag(),
        LAGS,
        Some(RANK),
        1.0,
        lifting.constant_index(),
    )
    .ok()
    .zip(corr.k())
    .map(|(batch, online)| fitting::relative_frobenius(online.as_ref(), batch.as_ref()));
    let dmd = fitting::train_online(EstimatorConfig::online_dmd(names), chains)?;
    Ok((vec![ridge.linear_model(), corr.linear_model(), edmd, dmd.linear_model()], difference))
}
