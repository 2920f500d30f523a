//! Estimator configuration: what a stream's model is, with defaults and validation.

use crate::error::ConfigError;
use crate::spec::DictionarySpec;

/// Largest lifted dimension N + m the estimator accepts (P alone is then 128 MiB).
pub const MAX_LIFTED: usize = 4096;

/// How the ridge parameter mu is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Regularisation {
    /// mu given directly (0 is plain least squares, i.e. EDMD).
    Mu(f64),
    /// mu estimated at the end of warm-up from the measurement-noise standard deviation of
    /// each state channel (one value for all channels, or one per channel), see
    /// [`crate::mu_from_sigma`].
    NoiseSigma(Vec<f64>),
}

/// Everything that defines a stream's model.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimatorConfig {
    /// Names of the n state channels (observable names are built from them).
    pub state_names: Vec<String>,
    /// Names of the m input channels (may be empty).
    pub input_names: Vec<String>,
    /// The dictionary.
    pub dictionary: DictionarySpec,
    /// Explicit RBF centres in raw units (count x n, row-major); chosen from the warm-up
    /// window by seeded k-means++ when `None`.
    pub rbf_centres: Option<Vec<f64>>,
    /// The ridge parameter or how to derive it.
    pub regularisation: Regularisation,
    /// Exponential forgetting factor rho in (0, 1]; 1 keeps every pair with equal weight.
    pub forgetting: f64,
    /// Exact sliding window of this many pairs (exclusive with forgetting < 1).
    pub window: Option<usize>,
    /// Samples kept before the lifting is fixed and the model initialised by a batch solve.
    pub warmup: usize,
    /// Standardise each channel with the warm-up mean and standard deviation.
    pub standardise: bool,
    /// Exact refactorisation from the running sums every this many pairs.
    pub refactor_every: usize,
    /// Seed of every random choice (centres, Fourier features, noise jitter).
    pub seed: u64,
    /// Pairs over which the one-step residual RMS is averaged (exponential window).
    pub residual_horizon: usize,
}

impl EstimatorConfig {
    /// Default ridge when none is given: tiny, so it only keeps P defined.
    pub const DEFAULT_MU: f64 = 1e-6;
    /// Default warm-up length in samples.
    pub const DEFAULT_WARMUP: usize = 200;
    /// Default refactorisation interval in pairs.
    pub const DEFAULT_REFACTOR_EVERY: usize = 2000;

    /// A configuration with the defaults for the given state channels and dictionary.
    pub fn new(state_names: Vec<String>, dictionary: DictionarySpec) -> Self {
        Self {
            state_names,
            input_names: Vec::new(),
            dictionary,
            rbf_centres: None,
            regularisation: Regularisation::Mu(Self::DEFAULT_MU),
            forgetting: 1.0,
            window: None,
            warmup: Self::DEFAULT_WARMUP,
            standardise: true,
            refactor_every: Self::DEFAULT_REFACTOR_EVERY,
            seed: 0,
            residual_horizon: 1000,
        }
    }

    /// Default channel names x1..xn.
    pub fn default_names(prefix: &str, count: usize) -> Vec<String> {
        (1..=count).map(|i| format!("{prefix}{i}")).collect()
    }

    /// Online DMD on raw states: dictionary `state`, no standardisation, mu -> 0 (a ridge of
    /// 1e-10 keeps the cold start defined).
    pub fn online_dmd(state_names: Vec<String>) -> Self {
        Self {
            regularisation: Regularisation::Mu(1e-10),
            standardise: false,
            warmup: 0,
            ..Self::new(state_names, DictionarySpec::state_only())
        }
    }

    /// Number of state channels n.
    pub fn n_states(&self) -> usize {
        self.state_names.len()
    }

    /// Number of inputs m.
    pub fn n_inputs(&self) -> usize {
        self.input_names.len()
    }

    /// Lifted dimension N.
    pub fn n_lifted(&self) -> usize {
        self.dictionary.dimension(self.n_states())
    }

    /// Regressor length N' = N + m.
    pub fn n_regressor(&self) -> usize {
        self.n_lifted() + self.n_inputs()
    }

    /// Checks that the configuration can work; every estimator is built from a valid one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = self.n_states();
        if n == 0 {
            return Err(ConfigError::NoStates);
        }
        if !(self.forgetting > 0.0 && self.forgetting <= 1.0) {
            return Err(ConfigError::Forgetting(self.forgetting));
        }
        let mu_zero = match &self.regularisation {
            Regularisation::Mu(mu) if !(mu.is_finite() && *mu >= 0.0) => return Err(ConfigError::Mu(*mu)),
            Regularisation::Mu(mu) => *mu == 0.0,
            Regularisation::NoiseSigma(s) => {
                if !(s.len() == 1 || s.len() == n) || s.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                    return Err(ConfigError::Sigma(format!("{} values given for {n} channels", s.len())));
                }
                false
            }
        };
        let n_reg = self.n_regressor();
        if n_reg > MAX_LIFTED {
            return Err(ConfigError::TooManyObservables(n_reg));
        }
        if self.refactor_every == 0 {
            return Err(ConfigError::RefactorEvery);
        }
        if let Some(w) = self.window {
            if self.forgetting < 1.0 {
                return Err(ConfigError::WindowWithForgetting);
            }
            if w == 0 {
                return Err(ConfigError::Window { window: w, reason: "it must hold at least one pair".into() });
            }
            if mu_zero && w < n_reg {
                return Err(ConfigError::Window {
                    window: w,
                    reason: format!("with mu = 0 it must hold at least N + m = {n_reg} pairs"),
                });
            }
        }
        let history = 1 + self.dictionary.delay.unwrap_or(0);
        let needs = |what: String, at_least: usize| -> Result<(), ConfigError> {
            if self.warmup < at_least {
                Err(ConfigError::Warmup { given: self.warmup, reason: format!("{what} needs at least {at_least}") })
            } else {
                Ok(())
            }
        };
        if self.standardise {
            needs("standardisation".into(), 2)?;
        }
        if let Some(rbf) = &self.dictionary.rbf {
            match &self.rbf_centres {
                Some(c) if c.len() != rbf.count * n => {
                    return Err(ConfigError::CentresShape {
                        expected_rows: rbf.count,
                        expected_cols: n,
                        rows: c.len() / n,
                        cols: n,
                    });
                }
                Some(c) if c.iter().any(|v| !v.is_finite()) => {
                    return Err(ConfigError::CentresShape {
                        expected_rows: rbf.count,
                        expected_cols: n,
                        rows: 0,
                        cols: 0,
                    });
                }
                Some(_) => {}
                None => needs(format!("choosing {} RBF centres", rbf.count), rbf.count)?,
            }
        }
        if matches!(self.regularisation, Regularisation::NoiseSigma(_)) {
            needs("estimating mu from sigma".into(), history + 1)?;
        }
        if self.residual_horizon == 0 {
            return Err(ConfigError::Warmup { given: 0, reason: "the residual horizon must be at least 1".into() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(spec: &str) -> EstimatorConfig {
        EstimatorConfig::new(EstimatorConfig::default_names("x", 2), spec.parse().unwrap())
    }

    #[test]
    fn defaults_are_valid_and_sizes_add_up() {
        let mut c = config("state,const,poly:2");
        c.input_names = vec!["u".into()];
        c.validate().unwrap();
        assert_eq!((c.n_lifted(), c.n_regressor()), (6, 7));
        EstimatorConfig::online_dmd(vec!["a".into()]).validate().unwrap();
    }

    #[test]
    fn refuses_what_cannot_work() {
        let mut c = config("state");
        c.forgetting = 0.0;
        assert_eq!(c.validate(), Err(ConfigError::Forgetting(0.0)));
        let mut c = config("state");
        c.forgetting = 0.99;
        c.window = Some(100);
        assert_eq!(c.validate(), Err(ConfigError::WindowWithForgetting));
        let mut c = config("state,const");
        c.regularisation = Regularisation::Mu(0.0);
        c.window = Some(2);
        assert!(matches!(c.validate(), Err(ConfigError::Window { .. })));
        let mut c = config("state,rbf:50");
        c.warmup = 10;
        assert!(matches!(c.validate(), Err(ConfigError::Warmup { .. })));
        let mut c = config("state");
        c.regularisation = Regularisation::NoiseSigma(vec![0.1, 0.1, 0.1]);
        assert!(matches!(c.validate(), Err(ConfigError::Sigma(_))));
        let mut c = config("state");
        c.regularisation = Regularisation::Mu(f64::NAN);
        assert!(matches!(c.validate(), Err(ConfigError::Mu(_))));
        let c = config("state,poly:12");
        assert!(matches!(
            EstimatorConfig { state_names: EstimatorConfig::default_names("x", 10), ..c }.validate(),
            Err(ConfigError::TooManyObservables(_))
        ));
    }
}
