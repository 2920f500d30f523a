//! Van der Pol identification routines: seeded noisy training sets of many short records,
//! clean held-out reference trajectories, the fits compared (robust online with mu from
//! sigma, batch EDMD, batch ridge with a given mu, online DMD) and their prediction errors.

use koopman::batch::PairData;
use koopman::{DictionarySpec, EstimatorConfig, Lifting, LinearModel, PredictionMode, Regularisation};
use systems::{SystemSpec, VanDerPolParams};

use super::ExperimentError;
use super::fitting::{self, Chains, PredictionPlan, PredictionScore};
use super::records::RecordSetup;

/// Sample time of every Van der Pol record (s).
pub const TS: f64 = 0.1;
/// First seed of the held-out reference trajectories (training seeds stay far below).
pub const REFERENCE_SEED: u64 = 1_000_000;
/// A prediction whose error exceeds this at any step has diverged (the cycle spans ~±2.7).
pub const DIVERGENCE: f64 = 10.0;

/// The data and dictionary of a Van der Pol identification.
pub type VdpSetup = RecordSetup;

/// 50 records of 100 samples (about 5000 pairs), `state,const,poly:3`, warm-up 200,
/// 50 references of 151 samples.
pub fn standard_setup() -> VdpSetup {
    RecordSetup {
        system: SystemSpec::VanDerPol(VanDerPolParams::default()),
        states: 2,
        ts: TS,
        reference_seed: REFERENCE_SEED,
        trajectories: 50,
        samples: 100,
        dictionary: DictionarySpec { constant: true, poly_degree: Some(3), ..DictionarySpec::default() },
        warmup: 200,
        test_trajectories: 50,
        test_samples: 151,
    }
}

/// Every model fitted to one training set.
#[derive(Debug, Clone)]
pub struct VdpFits {
    /// The robust online estimator, mu from sigma (the helper on the warm-up window).
    pub robust: LinearModel,
    /// The mu the helper chose.
    pub mu_sigma: f64,
    /// Batch EDMD (mu = 0) over the same pairs and lifting.
    pub edmd: LinearModel,
    /// Online DMD on the raw states.
    pub online_dmd: LinearModel,
    /// Pairs in the models.
    pub pairs: usize,
    /// Online minus batch (relative Frobenius) of the robust estimator.
    pub online_minus_batch: f64,
    /// Regressor length N'.
    pub n_regressor: usize,
    lifting: Lifting,
    pair_data: PairData,
}

impl VdpFits {
    /// Batch ridge solve with `mu` over the same pairs and lifting (equal to an online
    /// estimator with that mu, by the online-equals-batch invariant).
    pub fn ridge(&self, mu: f64) -> Result<LinearModel, ExperimentError> {
        fitting::batch_model(&self.lifting, &self.pair_data, mu)
    }

    /// The constant relative regularisation mu_M = factor * M * mu_sigma / W (a proposal:
    /// the noise ridge per warm-up sample, kept in proportion to the data).
    pub fn constant_relative(&self, factor: f64, warmup: usize) -> Result<LinearModel, ExperimentError> {
        self.ridge(factor * self.pairs as f64 * self.mu_sigma / warmup.max(1) as f64)
    }
}

/// Fits the robust online estimator (mu from `sigma`), batch EDMD over its pairs, and
/// online DMD on raw states to `chains`.
pub fn fit(setup: &VdpSetup, chains: &Chains, sigma: f64) -> Result<VdpFits, ExperimentError> {
    let robust = fitting::train_online(setup.config(Regularisation::NoiseSigma(vec![sigma])), chains)?;
    let lifting = fitting::lifting_of(&robust, "van der pol, robust")?;
    let pair_data = fitting::stack(&lifting, chains);
    let dmd = fitting::train_online(EstimatorConfig::online_dmd(setup.names()), chains)?;
    Ok(VdpFits {
        robust: fitting::model_of(&robust, "van der pol, robust")?,
        mu_sigma: robust.mu().unwrap_or(0.0),
        edmd: fitting::batch_model(&lifting, &pair_data, 0.0)?,
        online_dmd: fitting::model_of(&dmd, "van der pol, online DMD")?,
        pairs: pair_data.regressors.nrows(),
        online_minus_batch: fitting::online_minus_batch(&robust, &pair_data, "van der pol, robust")?,
        n_regressor: lifting.dim(),
        lifting,
        pair_data,
    })
}

/// Starts k = 0, 5, ..., 95 of every reference, `horizon` steps, diverged above 10.
pub fn plan(horizon: usize, mode: PredictionMode) -> PredictionPlan {
    PredictionPlan { horizon, first_start: 0, stride: 5, last_start: 95, mode, divergence: DIVERGENCE }
}

/// One-step predictions from every sample of every reference.
pub fn one_step_plan() -> PredictionPlan {
    PredictionPlan {
        horizon: 1,
        first_start: 0,
        stride: 1,
        last_start: usize::MAX,
        mode: PredictionMode::Linear,
        divergence: DIVERGENCE,
    }
}

/// Prediction error of `model` on the references with the starts of [`plan`].
pub fn prediction_error(
    model: &LinearModel,
    references: &[Vec<f64>],
    horizon: usize,
    mode: PredictionMode,
) -> Result<PredictionScore, ExperimentError> {
    fitting::prediction_error(model, references, 2, &plan(horizon, mode))
}

/// The true discrete eigenvalues near the limit cycle's Koopman spectrum:
/// exp(Ts (i k w0 + l lambda_F)) for |k| <= `harmonics`, l = 0..=`floquet_powers`.
pub fn true_eigenvalues(harmonics: i32, floquet_powers: i32) -> Result<Vec<koopman::c64>, ExperimentError> {
    let cycle = systems::truth::vdp_limit_cycle(1.0)?;
    let omega = std::f64::consts::TAU / cycle.period;
    let mut out = Vec::new();
    for l in 0..=floquet_powers {
        for k in -harmonics..=harmonics {
            let s = koopman::c64::new(l as f64 * cycle.floquet_exponent, k as f64 * omega);
            out.push((s * TS).exp());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_sets_are_seeded_and_noise_scales_one_realisation() {
        let setup = VdpSetup { trajectories: 2, samples: 10, ..standard_setup() };
        let clean = setup.training_data(0.0, 3).unwrap();
        let noisy = setup.training_data(0.1, 3).unwrap();
        let noisier = setup.training_data(0.2, 3).unwrap();
        assert_eq!((clean.n_samples(), clean.n_chains()), (20, 2));
        for ((c, a), b) in clean.states().iter().zip(noisy.states()).zip(noisier.states()) {
            assert!(((b - c) - 2.0 * (a - c)).abs() < 1e-12, "same noise draw, twice the size");
        }
        assert_ne!(clean.states(), setup.training_data(0.0, 4).unwrap().states());
    }

    #[test]
    fn true_spectrum_holds_one_and_the_cycle_frequency() {
        let eigs = true_eigenvalues(1, 1).unwrap();
        assert_eq!(eigs.len(), 6);
        assert!((eigs[1] - koopman::c64::new(1.0, 0.0)).norm() < 1e-15);
        let w = eigs[2].im.atan2(eigs[2].re) / TS;
        assert!((w - std::f64::consts::TAU / 6.663287).abs() < 1e-5);
    }
}
