//! IEEE 68-bus identification routines: simulate a ring-down or ambient record, measure the
//! 16 speeds with noise at a given SNR, identify them through the online estimator with a
//! time-delay dictionary, and match the identified modes to the true inter-area modes.

use koopman::spectrum::{self, Mode};
use koopman::{DictionarySpec, Estimator, EstimatorConfig, LinearModel, Regularisation};
use systems::{
    AmbientParams, AngleReference, FaultParams, Ieee68Params, Ieee68Scenario, MeasurementModel, Network, NoiseLevel,
    SimulationRequest, SystemSpec, Trajectory, simulate_clean,
};

use super::ExperimentError;
use super::fitting::{self, Chains};
use crate::identify::{self, Ieee68Channels, MatchRule, MatchedMode, TrueMode};

/// Number of machines (and of speed channels).
pub const MACHINES: usize = 16;

/// How the ridge of the 68-bus fits is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ridge {
    /// A fixed mu (0: EDMD through the online estimator).
    Mu(f64),
    /// mu from the measurement-noise standard deviation of each channel (known from the SNR),
    /// scaled by this factor (1: the helper's value).
    FromSigma(f64),
}

/// Which recorded channels are the estimator's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// The 16 speeds.
    Speeds,
    /// The 15 angles relative to G13 (whose own is identically zero), then the 16 speeds.
    AnglesAndSpeeds,
}

impl Channels {
    /// Column indices in the simulated record (angles 0..16, speeds 16..32).
    fn columns(self) -> Vec<usize> {
        let speeds = MACHINES..2 * MACHINES;
        match self {
            Self::Speeds => speeds.collect(),
            Self::AnglesAndSpeeds => (0..MACHINES).filter(|&j| j != REFERENCE_MACHINE - 1).chain(speeds).collect(),
        }
    }

    /// Number of channels.
    pub fn count(self) -> usize {
        self.columns().len()
    }
}

/// The machine the recorded angles are measured against (G13).
const REFERENCE_MACHINE: usize = 13;

/// One 68-bus identification: the record, the measurement and the estimator.
#[derive(Debug, Clone, PartialEq)]
pub struct Ieee68Setup {
    /// Fault ring-down or ambient load noise.
    pub scenario: Ieee68Scenario,
    /// Record length (s).
    pub duration: f64,
    /// Frames per second.
    pub rate: f64,
    /// Measurement noise as SNR in dB per channel (None: clean).
    pub snr_db: Option<f64>,
    /// Samples dropped at the start (the pre-fault steady state and the fault itself).
    pub skip: usize,
    /// Channels identified.
    pub channels: Channels,
    /// Dictionary on the 16 speeds.
    pub dictionary: DictionarySpec,
    /// Warm-up samples.
    pub warmup: usize,
    /// Ridge.
    pub ridge: Ridge,
}

impl Ieee68Setup {
    /// The fault ring-down: fault at bus 29 at t = 1 s, cleared after 0.05 s by opening line
    /// 28-29; 30 s at 30 frames/s; 40 dB SNR; the first 47 samples (up to 0.5 s after
    /// clearing) dropped; `state,delay:20` (N = 336); warm-up 200; mu = 0.
    pub fn ringdown() -> Self {
        Self {
            scenario: Ieee68Scenario::Fault(FaultParams::default()),
            duration: 30.0,
            rate: 30.0,
            snr_db: Some(40.0),
            skip: 47,
            channels: Channels::Speeds,
            dictionary: DictionarySpec { delay: Some(20), ..DictionarySpec::default() },
            warmup: 200,
            ridge: Ridge::Mu(0.0),
        }
    }

    /// Ambient operation: default load noise, 10 minutes at 30 frames/s, 40 dB SNR,
    /// `state,delay:20`, mu = 0.
    pub fn ambient() -> Self {
        Self {
            scenario: Ieee68Scenario::Ambient(AmbientParams::default()),
            duration: 600.0,
            skip: 0,
            ..Self::ringdown()
        }
    }

    /// The network whose linearisation is the truth: post-fault for a ring-down (what the
    /// record settles to), pre-fault for ambient operation.
    pub fn network(&self) -> Network {
        match self.scenario {
            Ieee68Scenario::Fault(_) => Network::Post,
            Ieee68Scenario::Ambient(_) => Network::Pre,
        }
    }

    /// Sample time (s).
    pub fn ts(&self) -> f64 {
        1.0 / self.rate
    }
}

/// The four inter-area modes of the setup's truth network, shapes on the speeds.
pub fn true_modes(setup: &Ieee68Setup) -> Result<Vec<TrueMode>, ExperimentError> {
    Ok(identify::ieee68_inter_area_modes(setup.network(), Ieee68Channels::Speeds)?)
}

/// The noise-free record (all 32 channels); `seed` drives the ambient load noise only.
pub fn simulate(setup: &Ieee68Setup, seed: u64) -> Result<Trajectory, ExperimentError> {
    let request = SimulationRequest::new(SystemSpec::Ieee68(Ieee68Params {
        scenario: setup.scenario,
        angle_reference: AngleReference::Machine(REFERENCE_MACHINE),
        damping: Default::default(),
    }))
    .with_duration(setup.duration)
    .with_rate(setup.rate)
    .with_seed(seed);
    Ok(simulate_clean(&request)?)
}

/// A measured record: noisy channels, their clean values, and the noise level per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeedRecord {
    /// Number of channels per row.
    pub n: usize,
    /// Noisy channels after the skipped samples, row-major.
    pub noisy: Vec<f64>,
    /// The same samples without measurement noise.
    pub clean: Vec<f64>,
    /// Standard deviation of the measurement noise per speed channel (pu).
    pub noise_std: Vec<f64>,
}

/// Measures `clean` at the setup's SNR (noise drawn from `seed`; the SNR refers to each
/// channel's standard deviation over the whole record, as `koopstream simulate --snr`) and
/// keeps the speeds after the skipped samples.
pub fn measure(setup: &Ieee68Setup, clean: &Trajectory, seed: u64) -> Result<SpeedRecord, ExperimentError> {
    let measured = match setup.snr_db {
        Some(db) => {
            MeasurementModel { noise: Some(NoiseLevel::SnrDb(db)), ..MeasurementModel::clean() }.apply(clean, seed)?
        }
        None => clean.clone(),
    };
    let columns = setup.channels.columns();
    let pick = |t: &Trajectory| -> Vec<f64> {
        t.rows().skip(setup.skip).flat_map(|row| columns.iter().map(|&j| row[j])).collect()
    };
    let noise_std = columns
        .iter()
        .map(|&j| {
            let std = systems::measurement::channel_std(&clean.column(j));
            setup.snr_db.map_or(0.0, |db| std * 10f64.powf(-db / 20.0))
        })
        .collect();
    Ok(SpeedRecord { n: columns.len(), noisy: pick(&measured), clean: pick(clean), noise_std })
}

/// The estimator configuration of the setup on its channels.
pub fn config(setup: &Ieee68Setup, noise_std: &[f64]) -> EstimatorConfig {
    let all = systems::ieee68::Ieee68Model::channel_names();
    let names = setup.channels.columns().into_iter().map(|j| all[j].clone()).collect();
    let mut config = EstimatorConfig::new(names, setup.dictionary.clone());
    config.warmup = setup.warmup;
    config.regularisation = match setup.ridge {
        Ridge::Mu(mu) => Regularisation::Mu(mu),
        Ridge::FromSigma(factor) => Regularisation::NoiseSigma(noise_std.iter().map(|s| s * factor).collect()),
    };
    config
}

/// An identified model with its modes matched to the truth.
#[derive(Debug, Clone)]
pub struct Identified {
    /// The linear model.
    pub model: LinearModel,
    /// All its modes (discrete eigenvalues, continuous readings, shapes on the speeds).
    pub modes: Vec<Mode>,
    /// For each true mode, the identified mode matched to it.
    pub matched: Vec<Option<MatchedMode>>,
}

/// The match rule used throughout: candidates within 15 % in frequency, shape MAC >= 0.5.
pub fn match_rule() -> MatchRule {
    MatchRule { band: 0.15, min_mac: 0.5, ..MatchRule::default() }
}

/// Modes of `model` matched to `truth` (shapes on the speeds, the last 16 channels).
pub fn judge(model: LinearModel, ts: f64, truth: &[TrueMode]) -> Result<Identified, ExperimentError> {
    let mut modes = spectrum::modes(model.a.as_ref(), model.c.as_ref(), ts)?;
    for mode in &mut modes {
        let from = mode.shape.len().saturating_sub(MACHINES);
        mode.shape.drain(..from);
    }
    let matched = identify::match_modes(&modes, truth, match_rule());
    Ok(Identified { model, modes, matched })
}

/// Streams the noisy speeds through the online estimator of the setup.
pub fn train(setup: &Ieee68Setup, record: &SpeedRecord) -> Result<(Estimator, Chains), ExperimentError> {
    let mut chains = Chains::new(record.n);
    chains.push_chain(&record.noisy);
    let estimator = fitting::train_online(config(setup, &record.noise_std), &chains)?;
    Ok((estimator, chains))
}

/// End to end: measure `clean` with noise seed `seed`, identify through the online
/// estimator, and match the modes to `truth`.
pub fn identify_record(
    setup: &Ieee68Setup,
    clean: &Trajectory,
    seed: u64,
    truth: &[TrueMode],
) -> Result<Identified, ExperimentError> {
    let record = measure(setup, clean, seed)?;
    let (estimator, _) = train(setup, &record)?;
    judge(fitting::model_of(&estimator, "ieee68")?, setup.ts(), truth)
}

/// The robust estimator and the baselines fitted to one record.
#[derive(Debug, Clone)]
pub struct Fits {
    /// The online estimator of the setup (its ridge as configured).
    pub robust: Estimator,
    /// Batch EDMD (mu = 0) over the same pairs with the same lifting.
    pub edmd: LinearModel,
    /// Online DMD on the raw channels (no delays, no standardisation).
    pub online_dmd: LinearModel,
    /// Online minus batch (relative Frobenius) of the online estimator.
    pub online_minus_batch: f64,
    /// Pairs in the online model.
    pub pairs: usize,
}

/// Fits the setup's online estimator, batch EDMD over its pairs and online DMD to `record`.
pub fn fit_all(setup: &Ieee68Setup, record: &SpeedRecord) -> Result<Fits, ExperimentError> {
    let (robust, chains) = train(setup, record)?;
    let lifting = fitting::lifting_of(&robust, "ieee68")?;
    let pairs = fitting::stack(&lifting, &chains);
    let names = config(setup, &record.noise_std).state_names;
    let dmd = fitting::train_online(EstimatorConfig::online_dmd(names), &chains)?;
    Ok(Fits {
        edmd: fitting::batch_model(&lifting, &pairs, 0.0)?,
        online_dmd: fitting::model_of(&dmd, "ieee68, online DMD")?,
        online_minus_batch: fitting::online_minus_batch(&robust, &pairs, "ieee68")?,
        pairs: pairs.regressors.nrows(),
        robust,
    })
}

/// Prediction error on the clean record with each channel's error divided by its clean
/// standard deviation (angles and speeds are in different units) and averaged over
/// channels: 1 is an error as large as the signal. Starts every 5 samples (about 200 starts
/// on long records).
pub fn normalised_prediction_error(
    model: &LinearModel,
    record: &SpeedRecord,
    horizon: usize,
) -> Result<fitting::PredictionScore, ExperimentError> {
    let scale: Vec<f64> = (0..record.n)
        .map(|j| {
            let column: Vec<f64> = record.clean.iter().skip(j).step_by(record.n).copied().collect();
            // sqrt(n): the squared errors are then averaged, not summed, over channels.
            systems::measurement::channel_std(&column).max(f64::MIN_POSITIVE) * (record.n as f64).sqrt()
        })
        .collect();
    // About 200 starts (every 5 samples in a 30 s ring-down) keep long records cheap.
    let rows = record.clean.len() / record.n.max(1);
    let plan = fitting::PredictionPlan {
        horizon,
        first_start: 0,
        stride: (rows / 200).max(5),
        last_start: usize::MAX,
        mode: koopman::PredictionMode::Linear,
        divergence: 1e3,
    };
    fitting::prediction_error_scaled(model, std::slice::from_ref(&record.clean), &scale, &plan)
}

/// How strongly a ring-down excites each true mode: the clean speed deviations from the
/// post-fault equilibrium are fitted (least squares) by the free response of the linearised
/// post-fault model, sum_k Re(a_k phi_k e^(s_k t)) over all its modes, from the first
/// retained sample on; returns, for each mode of `truth`, its largest speed amplitude |a_k|
/// (pu; shapes are scaled to a largest speed entry of 1) at that sample, and the RMS of the
/// part of the record the linear response does not explain.
pub fn ringdown_excitation(
    setup: &Ieee68Setup,
    record: &SpeedRecord,
    truth: &[TrueMode],
) -> Result<(Vec<f64>, f64), ExperimentError> {
    let lin = systems::truth::ieee68_linearisation(setup.network())?;
    let speed_from = record.n - MACHINES;
    let rows = record.clean.len() / record.n;
    // Oscillatory modes give two real columns each (Re and Im of a_k); real modes one.
    let mut columns: Vec<Vec<f64>> = Vec::new();
    let mut oscillatory: Vec<(f64, usize)> = Vec::new();
    for lambda in &lin.eigenvalues {
        if lambda.im < 0.0 || lambda.norm() < 1e-6 {
            continue;
        }
        let mode = systems::truth::Mode::from_eigenvalue(*lambda);
        let shape = lin.mode_shape(&mode)?;
        let (mut re_col, mut im_col) = (Vec::new(), Vec::new());
        for j in 0..rows {
            let t = j as f64 * setup.ts();
            let growth = (lambda.re * t).exp();
            let (sin, cos) = (lambda.im * t).sin_cos();
            for v in &shape[MACHINES..] {
                // phi e^(s t) = growth (v.re + i v.im)(cos + i sin)
                re_col.push(growth * (v.re * cos - v.im * sin));
                im_col.push(-growth * (v.re * sin + v.im * cos));
            }
        }
        if lambda.im > 0.0 {
            oscillatory.push((mode.frequency_hz, columns.len()));
            columns.push(re_col);
            columns.push(im_col);
        } else {
            columns.push(re_col);
        }
    }
    let target: Vec<f64> = record
        .clean
        .chunks_exact(record.n)
        .flat_map(|row| row[speed_from..].iter().map(|w| w - 1.0 - lin.speed_offset))
        .collect();
    let x = koopman::Mat::from_fn(target.len(), columns.len(), |i, j| columns[j][i]);
    let y = koopman::Mat::from_fn(target.len(), 1, |i, _| target[i]);
    let coefficients = koopman::batch::solve(x.as_ref(), y.as_ref(), 0.0, None)?;
    let fitted = &x * &coefficients;
    let residual =
        ((0..target.len()).map(|i| (target[i] - fitted[(i, 0)]).powi(2)).sum::<f64>() / target.len() as f64).sqrt();
    let amplitudes = truth
        .iter()
        .map(|t| {
            let nearest =
                oscillatory.iter().min_by(|a, b| (a.0 - t.frequency_hz).abs().total_cmp(&(b.0 - t.frequency_hz).abs()));
            nearest.map_or(f64::NAN, |&(_, c)| coefficients[(c, 0)].hypot(coefficients[(c + 1, 0)]))
        })
        .collect();
    Ok((amplitudes, residual))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_speeds_skip_the_start_and_carry_the_snr_noise() {
        let setup = Ieee68Setup { duration: 2.0, skip: 40, ..Ieee68Setup::ringdown() };
        let clean = simulate(&setup, 0).unwrap();
        let record = measure(&setup, &clean, 7).unwrap();
        assert_eq!(record.noisy.len(), (61 - 40) * MACHINES);
        assert_eq!(record.clean[0], clean.row(40)[MACHINES]);
        let std1 = systems::measurement::channel_std(&clean.column(MACHINES));
        assert!((record.noise_std[0] / std1 - 0.01).abs() < 1e-12, "40 dB is 1 % of the channel std");
        assert_ne!(record.noisy, record.clean);
        assert_eq!(setup.network(), Network::Post);
        assert_eq!(Ieee68Setup::ambient().network(), Network::Pre);
    }
}
