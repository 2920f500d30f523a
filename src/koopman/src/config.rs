//! Estimator configuration: what a stream's model is, with defaults and validation.

use crate::error::ConfigError;
use crate::spec::DictionarySpec;

/// Largest lifted dimension N + m the estimator accepts (P alone is then 128 MiB).
pub const MAX_LIFTED: usize = 4096;

/// Longest warm-up in samples (the warm-up buffer holds them all; a size that reaches the
/// allocator unchecked would abort the process, so it is refused first).
pub const MAX_WARMUP: usize = 1_000_000;

/// Longest exact sliding window in pairs (the window holds every pair it spans).
pub const MAX_WINDOW: usize = 10_000_000;

/// Most correlation lags a correlation estimator keeps (it holds lags x N^2 sums).
pub const MAX_LAGS: usize = 2000;

/// Longest instrument delay of the instrumental-variable estimator, in pairs.
pub const MAX_INSTRUMENT_DELAY: usize = 1000;

/// Which estimate of K the estimator serves. The ridge recursion runs in every case (it
/// initialises the model, tracks residuals and gives the data's Gram matrix); the other
/// methods keep their own statistics beside it and serve their own K, which noise in the
/// regressors does not bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Ridge-regularised EDMD, one rank-one update per pair (the default).
    Ridge,
    /// DMD on the correlation sequence of the observables: the sums
    /// C_l = sum psi_{k+l} psi_k^T at `lags` consecutive lags, starting just past the
    /// dictionary's delay span (so no lag pairs a sample's noise with itself), and at each
    /// solve K^T = [C_{l+1}] [C_l]^+ through an SVD truncated to `rank` (all of N when
    /// `None`). For ambient (noise-driven) data without inputs.
    Correlation {
        /// Consecutive lags kept (at least 2).
        lags: usize,
        /// Rank of the truncated SVD; `None` keeps every non-negligible direction.
        rank: Option<usize>,
    },
    /// Instrumental variables: K = (sum z p^T)^-1 sum z q^T with the regressor `delay`
    /// pairs earlier as the instrument z, updated recursively (a non-symmetric rank one).
    InstrumentalVariable {
        /// Pairs between a regressor and its instrument (at least
        /// [`EstimatorConfig::first_free_lag`]).
        delay: usize,
    },
}

impl Method {
    /// The name used on the wire and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Ridge => "ridge",
            Method::Correlation { .. } => "correlation",
            Method::InstrumentalVariable { .. } => "iv",
        }
    }
}

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
    /// Which estimate of K is served.
    pub method: Method,
    /// Pairs between two solves of a method whose K is not kept current per pair (the
    /// correlation estimator solves an SVD; ridge and IV ignore it).
    pub solve_every: usize,
}

impl EstimatorConfig {
    /// Default ridge when none is given: tiny, so it only keeps P defined.
    pub const DEFAULT_MU: f64 = 1e-6;
    /// Default warm-up length in samples.
    pub const DEFAULT_WARMUP: usize = 200;
    /// Default refactorisation interval in pairs.
    pub const DEFAULT_REFACTOR_EVERY: usize = 2000;

    /// Default pairs between solves of the correlation estimator.
    pub const DEFAULT_SOLVE_EVERY: usize = 300;

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
            method: Method::Ridge,
            solve_every: Self::DEFAULT_SOLVE_EVERY,
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
        self.n_lifted().saturating_add(self.n_inputs())
    }

    /// An upper estimate, in bytes, of the memory an estimator with this configuration holds
    /// at its largest: the warm-up buffer (kept until the lifting is fixed, then dropped),
    /// or online the four N' x N' and N' x N matrices (G, P, R, K), the Cholesky factor
    /// of a refactorisation, the deferred block, the sliding window and the lifting's own
    /// tables, whichever phase is larger. Saturates instead of overflowing, so an absurd
    /// request compares as huge rather than wrapping to small. Call it on a valid
    /// configuration; the service checks it against its memory budgets before building.
    pub fn memory_bytes(&self) -> u64 {
        const F64: u64 = 8;
        let (n, m) = (self.n_states() as u64, self.n_inputs() as u64);
        let lifted = self.n_lifted() as u64;
        let regressor = lifted.saturating_add(m);
        let square = regressor.saturating_mul(regressor);
        let rect = regressor.saturating_mul(lifted);
        // Warm-up: the raw samples (states and inputs) and one chain flag per sample.
        let warmup = (self.warmup as u64).saturating_mul(n.saturating_add(m).saturating_mul(F64).saturating_add(1));
        // Online: G, P and a Cholesky factor (square), R and K (rectangular), the deferred
        // block (at most 32 pairs of regressor, gain and target vectors), the window.
        let matrices = square.saturating_mul(3).saturating_add(rect.saturating_mul(2));
        let deferred = regressor.saturating_mul(2).saturating_add(lifted).saturating_mul(32);
        let window = (self.window.unwrap_or(0) as u64).saturating_mul(regressor.saturating_add(lifted));
        // The lifting: RBF centres and Fourier weights by coordinate, the delay history.
        let rbf = self.dictionary.rbf.as_ref().map_or(0, |r| r.count as u64).saturating_add(8);
        let fourier = self.dictionary.fourier.as_ref().map_or(0, |f| f.count as u64);
        let history = (self.dictionary.delay.unwrap_or(0) as u64).saturating_add(1);
        let lifting = rbf.saturating_add(fourier).saturating_add(history).saturating_mul(n.saturating_add(1));
        // The ring of recent lifted residuals behind the modes' confidence intervals.
        let ring = (crate::uncertainty::residual_ring_rows(self.n_lifted()) as u64).saturating_mul(lifted);
        // The method's own statistics beside the ridge recursion.
        let method = match self.method {
            Method::Ridge => 0,
            // The lag sums (lags N^2) and their lead and lag sums, the ring of recent lifted
            // vectors (lags, plus the window), and at a solve the two stacked lag matrices
            // (2 lags N^2) with the SVD's work (N^2 and N lags).
            Method::Correlation { lags, .. } => {
                let lags = lags as u64;
                let kept = lags.saturating_mul(square).saturating_add(lags.saturating_mul(regressor).saturating_mul(2));
                let ring = lags.saturating_add(self.window.unwrap_or(0) as u64).saturating_mul(regressor);
                let solve = lags.saturating_mul(square).saturating_mul(3).saturating_add(square.saturating_mul(4));
                kept.saturating_add(ring).saturating_add(solve)
            }
            // sum z p^T, its inverse and sum z z^T (square), sum z q^T and K (rectangular),
            // and the ring of the last `delay` regressors (plus the window's instruments).
            Method::InstrumentalVariable { delay } => {
                let ring = (delay as u64).saturating_add(self.window.unwrap_or(0) as u64).saturating_mul(regressor);
                square.saturating_mul(3).saturating_add(rect.saturating_mul(2)).saturating_add(ring)
            }
        };
        let online = matrices
            .saturating_add(method)
            .saturating_add(ring)
            .saturating_add(deferred)
            .saturating_add(window)
            .saturating_add(lifting)
            .saturating_add(regressor.saturating_mul(8))
            .saturating_mul(F64);
        // The warm-up buffer is alive while the online state is built from it.
        warmup.saturating_add(online)
    }

    /// The smallest lag at which two lifted vectors share no sample: one more than the
    /// dictionary's delay span. Correlation lags start here, and an instrument must lie
    /// at least this many pairs before its regressor.
    pub fn first_free_lag(&self) -> usize {
        self.dictionary.delay.unwrap_or(0) + 1
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
        if self.warmup > MAX_WARMUP {
            return Err(ConfigError::Warmup {
                given: self.warmup,
                reason: format!("it is too long: at most {MAX_WARMUP} samples"),
            });
        }
        if let Some(w) = self.window {
            if w > MAX_WINDOW {
                return Err(ConfigError::Window {
                    window: w,
                    reason: format!("it is too long: at most {MAX_WINDOW} pairs"),
                });
            }
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
        self.validate_method()
    }

    fn validate_method(&self) -> Result<(), ConfigError> {
        if self.solve_every == 0 {
            return Err(ConfigError::Method("solve_every must be at least 1".into()));
        }
        if self.method != Method::Ridge && self.window.is_some() {
            return Err(ConfigError::Method(format!(
                "the {} estimator forgets with `forgetting`, not with a sliding window",
                self.method.name()
            )));
        }
        match self.method {
            Method::Ridge => Ok(()),
            Method::Correlation { lags, rank } => {
                if !(2..=MAX_LAGS).contains(&lags) {
                    return Err(ConfigError::Method(format!(
                        "lags = {lags}: the correlation estimator keeps 2..={MAX_LAGS} lags"
                    )));
                }
                if self.n_inputs() > 0 {
                    return Err(ConfigError::Method(
                        "the correlation estimator takes no inputs (it is for ambient data)".into(),
                    ));
                }
                if let Some(r) = rank
                    && !(1..=self.n_lifted()).contains(&r)
                {
                    return Err(ConfigError::Method(format!("rank = {r}: must lie in 1..={} (N)", self.n_lifted())));
                }
                Ok(())
            }
            Method::InstrumentalVariable { delay } => {
                // The instrument must share no sample with the pair it instruments: the
                // regressor spans the dictionary's delays, so it must lie past them.
                let first = self.first_free_lag();
                if !(first..=MAX_INSTRUMENT_DELAY).contains(&delay) {
                    return Err(ConfigError::Method(format!(
                        "instrument_delay = {delay}: must lie in {first}..={MAX_INSTRUMENT_DELAY} pairs \
                         (past the dictionary's delay span)"
                    )));
                }
                Ok(())
            }
        }
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
    fn memory_estimate_counts_matrices_window_and_warmup() {
        // state,delay:2000 on 2 channels: N' = 4002, so G, P, the factor, R and K alone
        // are 5 * 4002^2 * 8 bytes = 641 MB; the residual ring adds at most 2^17 values.
        let c = config("state,delay:2000");
        let bytes = c.memory_bytes();
        let matrices = 5 * 4002 * 4002 * 8;
        let ring = crate::uncertainty::residual_ring_rows(4002) as u64 * 4002 * 8;
        assert!(ring <= 1 << 20);
        assert!((matrices + ring..matrices + ring + (8 << 20)).contains(&bytes), "{bytes}");
        // A window of w pairs adds w (N' + N) values.
        let mut windowed = config("state,const");
        let plain = windowed.memory_bytes();
        windowed.window = Some(1_000_000);
        assert_eq!(windowed.memory_bytes() - plain, 1_000_000 * 6 * 8);
        // The warm-up buffer counts n + m values and a flag per sample.
        let mut long = config("state");
        let short = long.memory_bytes();
        long.warmup += 1_000;
        assert_eq!(long.memory_bytes() - short, 1_000 * 17);
        // Sizes that do not fit in memory compare as huge instead of wrapping.
        let mut absurd = config("state");
        absurd.state_names = EstimatorConfig::default_names("x", 4000);
        absurd.warmup = usize::MAX;
        assert_eq!(absurd.memory_bytes(), u64::MAX);
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
        let mut c = config("state");
        c.warmup = 4_000_000_000;
        assert!(matches!(c.validate(), Err(ConfigError::Warmup { .. })));
        let mut c = config("state");
        c.window = Some(100_000_000_000);
        assert!(matches!(c.validate(), Err(ConfigError::Window { .. })));
        let c = config("state,poly:12");
        assert!(matches!(
            EstimatorConfig { state_names: EstimatorConfig::default_names("x", 10), ..c }.validate(),
            Err(ConfigError::TooManyObservables(_))
        ));
    }
}
