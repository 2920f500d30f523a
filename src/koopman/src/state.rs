//! Exported estimator state: plain data from which an estimator continues exactly (bit for
//! bit) where it was. The crate does not encode it; the service stores it as it sees fit.

use crate::estimator::Counters;

/// The sums, inverse, operator and window of the recursion (column-major buffers).
#[derive(Debug, Clone, PartialEq)]
pub struct RecursionState {
    /// G (lower triangle meaningful), N' x N'.
    pub gram: Vec<f64>,
    /// R, N' x N.
    pub cross: Vec<f64>,
    /// P (lower triangle meaningful), N' x N'.
    pub p: Vec<f64>,
    /// K, N' x N.
    pub k: Vec<f64>,
    /// Whether P and K hold a solution.
    pub solved: bool,
    /// The sliding window, if any.
    pub window: Option<WindowState>,
    /// Pairs whose updates are deferred (large models without a window); `None` in
    /// states written before deferral existed, which restore with an empty block.
    pub pending: Option<PendingState>,
    /// Pairs since the last refactorisation.
    pub since_refactor: usize,
    /// Pairs until the next rank retry (unsolved models).
    pub retry_in: usize,
    /// Pairs added.
    pub pairs: u64,
    /// Refactorisations done.
    pub refactorisations: u64,
    /// Failed health checks.
    pub health_failures: u64,
}

/// The last w pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowState {
    /// Regressors, N' x w column-major.
    pub regressors: Vec<f64>,
    /// Targets, N x w column-major.
    pub targets: Vec<f64>,
    /// Next slot to write.
    pub next: usize,
    /// Pairs held.
    pub len: usize,
}

/// Pairs recorded but not yet applied to the matrices (c of them, c < the block size).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingState {
    /// p_i, N' x c column-major.
    pub regressors: Vec<f64>,
    /// q_i, N x c column-major.
    pub targets: Vec<f64>,
    /// h_i = P p_i, N' x c column-major.
    pub gains: Vec<f64>,
    /// A-priori residuals e_i, N x c column-major.
    pub errors: Vec<f64>,
    /// Weights of h_i h_i^T in P (c values).
    pub beta: Vec<f64>,
    /// Weights of h_i e_i^T in K (c values).
    pub gamma: Vec<f64>,
    /// The scale of P from forgetting, rho^-c.
    pub sigma: f64,
}

/// The fixed lifting's data-derived parts.
#[derive(Debug, Clone, PartialEq)]
pub struct LiftingState {
    /// Standardisation (mean, scale), if enabled.
    pub standardisation: Option<(Vec<f64>, Vec<f64>)>,
    /// RBF centres in standardised coordinates (row-major).
    pub rbf_centres: Vec<f64>,
    /// RBF width.
    pub rbf_width: f64,
    /// Fourier frequencies (row-major).
    pub fourier_w: Vec<f64>,
    /// Fourier phases.
    pub fourier_b: Vec<f64>,
}

/// The online phase.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineState {
    /// The lifting.
    pub lifting: LiftingState,
    /// mu in use.
    pub mu: f64,
    /// Recent standardised states, oldest first (row-major).
    pub history: Vec<f64>,
    /// The recursion.
    pub recursion: RecursionState,
    /// The pending regressor [psi(x_k); u_k].
    pub regressor: Vec<f64>,
    /// Whether the regressor is valid.
    pub have_previous: bool,
    /// Residual tracker: pairs counted and mean squares.
    pub residual_count: u64,
    /// Residual mean squares per channel.
    pub residual_mean_square: Vec<f64>,
    /// The statistics of a method other than ridge (`None` for ridge).
    pub debiased: Option<DebiasedState>,
}

/// The statistics of the correlation or instrumental-variable estimator.
#[derive(Debug, Clone, PartialEq)]
pub enum DebiasedState {
    /// The correlation estimator.
    Correlation {
        /// Its lag sums.
        sums: CorrelationState,
        /// Pairs since its last solve.
        since_solve: usize,
    },
    /// Instrumental variables.
    Instrumental(InstrumentalState),
}

/// The correlation estimator's lag sums (L lags, N observables).
#[derive(Debug, Clone, PartialEq)]
pub struct CorrelationState {
    /// Sums of w psi_t psi_{t-l}^T, L blocks of N x N column-major.
    pub sums: Vec<f64>,
    /// Sums of w psi_t per lag (L x N).
    pub lead: Vec<f64>,
    /// Sums of w psi_{t-l} per lag (L x N).
    pub lag: Vec<f64>,
    /// Sums of the weights per lag (L).
    pub weight: Vec<f64>,
    /// The chain's latest lifted vectors, oldest first (row-major, N each).
    pub ring: Vec<f64>,
    /// K of the last solve (N x N column-major), if any.
    pub operator: Option<Vec<f64>>,
}

/// The instrumental-variable sums, inverse and operator (N' regressors, N targets).
#[derive(Debug, Clone, PartialEq)]
pub struct InstrumentalState {
    /// M = sum w z p^T + mu I, N' x N' column-major.
    pub moment: Vec<f64>,
    /// S = sum w z q^T, N' x N.
    pub cross: Vec<f64>,
    /// sum w z z^T, N' x N'.
    pub instruments: Vec<f64>,
    /// M^-1, N' x N'.
    pub inverse: Vec<f64>,
    /// K, N' x N.
    pub operator: Vec<f64>,
    /// Whether the inverse and K hold a solution.
    pub solved: bool,
    /// The chain's latest regressors (the instruments to come), oldest first.
    pub ring: Vec<f64>,
    /// Pairs since the last exact solve.
    pub since_refactor: usize,
}

/// Where the estimator is.
#[derive(Debug, Clone, PartialEq)]
pub enum PhaseState {
    /// Warm-up samples (row-major) and chain starts.
    WarmingUp {
        /// States.
        states: Vec<f64>,
        /// Inputs.
        inputs: Vec<f64>,
        /// Chain starts.
        chain_starts: Vec<bool>,
    },
    /// After warm-up.
    Online(Box<OnlineState>),
}

/// Everything an estimator needs to continue exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct EstimatorState {
    /// Counters.
    pub counters: Counters,
    /// A gap is pending.
    pub after_gap: bool,
    /// The phase.
    pub phase: PhaseState,
}
