//! Model options shared by `fit` and the service's stream definitions, so that the same
//! option means the same thing everywhere, with one set of defaults.

use koopman::{DictionarySpec, EstimatorConfig, Regularisation};

/// The dictionary used when none is given.
pub const DEFAULT_DICTIONARY: &str = "state,const,poly:2";

/// Everything about a model except its channels.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOptions {
    /// The dictionary.
    pub dictionary: DictionarySpec,
    /// Ridge parameter, or noise level(s) to derive it from.
    pub regularisation: Regularisation,
    /// Forgetting factor in (0, 1].
    pub forgetting: f64,
    /// Sliding window in pairs.
    pub window: Option<usize>,
    /// Warm-up samples.
    pub warmup: usize,
    /// Standardise channels at the end of warm-up.
    pub standardise: bool,
    /// Seed of the lifting's random choices.
    pub seed: u64,
    /// Exact refactorisation interval in pairs.
    pub refactor_every: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self {
            dictionary: DEFAULT_DICTIONARY.parse().expect("the default dictionary parses"),
            regularisation: Regularisation::Mu(EstimatorConfig::DEFAULT_MU),
            forgetting: 1.0,
            window: None,
            warmup: EstimatorConfig::DEFAULT_WARMUP,
            standardise: true,
            seed: 0,
            refactor_every: EstimatorConfig::DEFAULT_REFACTOR_EVERY,
        }
    }
}

impl ModelOptions {
    /// The estimator configuration for the given channel names.
    pub fn estimator_config(&self, state_names: Vec<String>, input_names: Vec<String>) -> EstimatorConfig {
        EstimatorConfig {
            input_names,
            regularisation: self.regularisation.clone(),
            forgetting: self.forgetting,
            window: self.window,
            warmup: self.warmup,
            standardise: self.standardise,
            seed: self.seed,
            refactor_every: self.refactor_every,
            ..EstimatorConfig::new(state_names, self.dictionary.clone())
        }
    }
}
