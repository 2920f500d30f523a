//! Identification data made of many short simulated records of one system: seeded noisy
//! training sets and clean held-out references, shared by the Van der Pol and ring studies.

use koopman::{DictionarySpec, EstimatorConfig, Regularisation};
use systems::{MeasurementModel, NoiseLevel, SimulationRequest, SystemSpec, simulate};

use super::ExperimentError;
use super::fitting::Chains;

/// The data and dictionary of an identification from many short records.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordSetup {
    /// The simulated system (each record starts from its own seeded random state).
    pub system: SystemSpec,
    /// State channels of the system.
    pub states: usize,
    /// Sample time (s).
    pub ts: f64,
    /// Seeds of the held-out references start here (training seeds stay far below).
    pub reference_seed: u64,
    /// Training records.
    pub trajectories: usize,
    /// Samples per training record.
    pub samples: usize,
    /// Dictionary.
    pub dictionary: DictionarySpec,
    /// Warm-up samples (standardisation and mu from sigma are fixed over them).
    pub warmup: usize,
    /// Held-out clean references.
    pub test_trajectories: usize,
    /// Samples per reference.
    pub test_samples: usize,
}

impl RecordSetup {
    /// The same with another number of training records.
    pub fn with_trajectories(mut self, trajectories: usize) -> Self {
        self.trajectories = trajectories;
        self
    }

    /// Channel names x1..xn.
    pub fn names(&self) -> Vec<String> {
        EstimatorConfig::default_names("x", self.states)
    }

    /// The estimator configuration with the given regularisation.
    pub fn config(&self, regularisation: Regularisation) -> EstimatorConfig {
        let mut config = EstimatorConfig::new(self.names(), self.dictionary.clone());
        config.regularisation = regularisation;
        config.warmup = self.warmup;
        config
    }

    fn record(&self, samples: usize, seed: u64, measurement: MeasurementModel) -> Result<Vec<f64>, ExperimentError> {
        let request = SimulationRequest::new(self.system)
            .with_duration((samples.max(1) - 1) as f64 * self.ts)
            .with_rate(1.0 / self.ts)
            .with_seed(seed)
            .with_measurement(measurement);
        Ok(simulate(&request)?.values().to_vec())
    }

    /// The training records of repetition `rep` (seeds rep * 10000 + i) with Gaussian
    /// measurement noise of standard deviation `sigma` (0: clean). The same `rep` gives the
    /// same starts and the same noise realisation (scaled) at every sigma.
    pub fn training_data(&self, sigma: f64, rep: u64) -> Result<Chains, ExperimentError> {
        let measurement = if sigma > 0.0 {
            MeasurementModel { noise: Some(NoiseLevel::Sigma(sigma)), ..MeasurementModel::clean() }
        } else {
            MeasurementModel::clean()
        };
        let mut chains = Chains::new(self.states);
        for i in 0..self.trajectories as u64 {
            chains.push_chain(&self.record(self.samples, rep * 10_000 + i, measurement.clone())?);
        }
        Ok(chains)
    }

    /// Clean held-out references (seeds `reference_seed` + i), row-major.
    pub fn references(&self) -> Result<Vec<Vec<f64>>, ExperimentError> {
        (0..self.test_trajectories as u64)
            .map(|i| self.record(self.test_samples, self.reference_seed + i, MeasurementModel::clean()))
            .collect()
    }
}
