//! The online estimator of one stream: warm-up, batch initialisation, then one O(N'^2)
//! update per sample; gaps break the chain of pairs, bad samples are refused untouched.

use faer::Mat;

use crate::bias::BiasContext;
use crate::config::{EstimatorConfig, Regularisation};
use crate::debias::Debiased;
use crate::error::{ConfigError, NumericalError, SampleError, SampleField};
use crate::lifting::{Lifting, StateHistory};
use crate::model::LinearModel;
use crate::noise::mu_from_sigma;
use crate::recursion::{Mode, PairEffect, Recursion};
use crate::uncertainty::{ModeStatistics, ResidualRing};

mod persist;

/// Where the estimator is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Collecting warm-up samples.
    WarmingUp {
        /// Samples collected.
        have: usize,
        /// Samples needed.
        need: usize,
    },
    /// The lifting is fixed but the Gram matrix is still singular (mu = 0, too few pairs).
    AwaitingRank,
    /// A model is available and updated per sample.
    Ready,
}

/// What happened to an accepted sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleOutcome {
    /// Kept for the warm-up batch.
    WarmUp,
    /// Stored as the start of a chain (after a gap or at the start, or while the delay
    /// coordinates refill): it forms no pair yet.
    ChainStart,
    /// Formed a pair that updated the model.
    Updated,
    /// Formed a pair that updated the running sums only (model not yet solvable).
    SumsOnly,
}

/// Counters of what the estimator has seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Samples accepted (including warm-up).
    pub samples: u64,
    /// Pairs formed (including warm-up pairs).
    pub pairs: u64,
    /// Chain breaks (gaps) marked.
    pub gaps: u64,
    /// Pairs not formed because of a gap (including delay refills after it).
    pub pairs_skipped: u64,
    /// Exact refactorisations performed.
    pub refactorisations: u64,
    /// Failed health checks (each followed by a refactorisation).
    pub health_failures: u64,
}

/// Exponentially weighted mean square of the one-step residual per state channel, in the
/// units of the data: a running mean over the first `horizon` pairs, exponential after.
#[derive(Debug, Clone)]
struct ResidualTracker {
    horizon: u64,
    count: u64,
    mean_square: Vec<f64>,
}

impl ResidualTracker {
    fn record(&mut self, residual: &[f64], scale: Option<&[f64]>) {
        self.count += 1;
        let weight = 1.0 / self.count.min(self.horizon) as f64;
        // The square roots are taken when the RMS is read, not per sample.
        for (j, ms) in self.mean_square.iter_mut().enumerate() {
            let e = residual[j] * scale.map_or(1.0, |s| s[j]);
            *ms += weight * (e * e - *ms);
        }
    }
}

#[derive(Debug, Clone)]
struct WarmupBuffer {
    states: Vec<f64>,
    inputs: Vec<f64>,
    chain_starts: Vec<bool>,
}

#[derive(Debug, Clone)]
struct Online {
    lifting: Lifting,
    mu: f64,
    history: StateHistory,
    recursion: Recursion,
    z: Vec<f64>,
    /// [psi(x_k); u_k] of the previous sample, the next pair's regressor.
    regressor: Vec<f64>,
    /// psi(x_{k+1}), the next pair's target.
    target: Vec<f64>,
    have_previous: bool,
    residuals: ResidualTracker,
    /// The latest a-priori residuals in lifted coordinates (the mode statistics' Sigma_e).
    /// Not exported: after a restore it refills within a few hundred pairs.
    residual_ring: ResidualRing,
    /// Work space of [`Estimator::one_step_residual`] (n values): a sample's residual
    /// before it is applied. Scratch only, never exported.
    one_step: Vec<f64>,
    /// The statistics and operator of a method other than ridge, which then serves K.
    debiased: Option<Debiased>,
    /// Work space: the served model's a-priori residual (N values) and prediction.
    served_residual: Vec<f64>,
    served_prediction: Vec<f64>,
}

#[derive(Debug, Clone)]
enum Phase {
    WarmingUp(WarmupBuffer),
    Online(Box<Online>),
}

/// The robust online Koopman estimator of one stream.
#[derive(Debug, Clone)]
pub struct Estimator {
    config: EstimatorConfig,
    phase: Phase,
    counters: Counters,
    /// Set by a gap, cleared when a pair forms: samples in between count as skipped pairs.
    after_gap: bool,
}

impl Estimator {
    /// A new estimator; the configuration is validated here.
    pub fn new(config: EstimatorConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut estimator = Self {
            phase: Phase::WarmingUp(WarmupBuffer::new()),
            config,
            counters: Counters::default(),
            after_gap: false,
        };
        if estimator.config.warmup == 0 {
            estimator.finish_warmup();
        }
        Ok(estimator)
    }

    /// The configuration.
    pub fn config(&self) -> &EstimatorConfig {
        &self.config
    }

    /// Starts over with the same configuration.
    pub fn reset(&mut self) {
        *self = Self::new(self.config.clone()).expect("configuration was validated");
    }

    /// Checks a sample without changing anything.
    pub fn check_sample(&self, x: &[f64], u: &[f64]) -> Result<(), SampleError> {
        check_values(SampleField::State, x, self.config.n_states())?;
        check_values(SampleField::Input, u, self.config.n_inputs())
    }

    /// Feeds one sample: state `x` (n values) and the input `u` (m values) applied from
    /// this sample to the next. A refused sample leaves the estimator unchanged.
    pub fn push(&mut self, x: &[f64], u: &[f64]) -> Result<SampleOutcome, SampleError> {
        self.check_sample(x, u)?;
        self.counters.samples += 1;
        let outcome = match &mut self.phase {
            Phase::WarmingUp(buffer) => {
                if buffer.chain_starts.is_empty() {
                    buffer.reserve(&self.config);
                }
                buffer.states.extend_from_slice(x);
                buffer.inputs.extend_from_slice(u);
                buffer.chain_starts.push(std::mem::take(&mut self.after_gap) || buffer.chain_starts.is_empty());
                if buffer.chain_starts.len() >= self.config.warmup {
                    self.finish_warmup();
                }
                SampleOutcome::WarmUp
            }
            Phase::Online(online) => online.ingest(x, u, Mode::Recursive),
        };
        match outcome {
            SampleOutcome::ChainStart if self.after_gap => self.counters.pairs_skipped += 1,
            SampleOutcome::Updated | SampleOutcome::SumsOnly => {
                self.counters.pairs += 1;
                self.after_gap = false;
            }
            _ => {}
        }
        Ok(outcome)
    }

    /// Marks a gap (a missing or bad sample): the next sample pairs with nothing before it,
    /// and delay coordinates refill first.
    pub fn break_chain(&mut self) {
        self.counters.gaps += 1;
        self.after_gap = true;
        if let Phase::Online(online) = &mut self.phase {
            online.history.clear();
            online.have_previous = false;
            if let Some(d) = &mut online.debiased {
                d.break_chain();
            }
        }
    }

    /// Where the estimator is.
    pub fn progress(&self) -> Progress {
        match &self.phase {
            Phase::WarmingUp(b) => Progress::WarmingUp { have: b.chain_starts.len(), need: self.config.warmup },
            Phase::Online(_) if self.ready().is_some() => Progress::Ready,
            Phase::Online(_) => Progress::AwaitingRank,
        }
    }

    /// What the estimator has seen.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        if let Phase::Online(o) = &self.phase {
            c.refactorisations = o.recursion.refactorisations;
            c.health_failures = o.recursion.health_failures;
        }
        c
    }

    /// The fixed lifting (after warm-up).
    pub fn lifting(&self) -> Option<&Lifting> {
        self.online().map(|o| &o.lifting)
    }

    /// The ridge parameter in use (after warm-up; resolved from sigma if so configured).
    pub fn mu(&self) -> Option<f64> {
        self.online().map(|o| o.mu)
    }

    /// Pairs currently weighing on the model (window length when windowed).
    pub fn pairs_in_model(&self) -> u64 {
        self.online().map_or(0, |o| o.recursion.pairs_in_model())
    }

    /// K ((N + m) x N, a copy), when a model is available: psi(x_{k+1})^T ~ [psi(x_k); u_k]^T K.
    pub fn k(&self) -> Option<Mat<f64>> {
        self.ready().map(|o| o.served_operator())
    }

    /// K of the ridge recursion, whatever the method serves (the two differ only for the
    /// correlation and instrumental-variable methods).
    pub fn ridge_k(&self) -> Option<Mat<f64>> {
        self.online().filter(|o| o.recursion.is_solved()).map(|o| o.recursion.operator())
    }

    /// Solves the method's K now from its statistics (the correlation estimator otherwise
    /// solves every `solve_every` pairs; ridge and instrumental variables are always
    /// current, and this refactorises them exactly). An offline fit calls it at the end.
    pub fn solve_now(&mut self) -> Result<(), NumericalError> {
        match &mut self.phase {
            Phase::Online(o) => match &mut o.debiased {
                Some(d) => d.solve(),
                None => o.recursion.refactorise(),
            },
            Phase::WarmingUp(_) => Err(NumericalError::NotReady("still warming up")),
        }
    }

    /// P = G^-1, the inverse of the regularised Gram matrix (full symmetric copy).
    pub fn p(&self) -> Option<Mat<f64>> {
        self.ready().map(|o| o.recursion.inverse())
    }

    /// The running sums: G = sum p p^T + mu I (full symmetric copy) and R = sum p q^T.
    pub fn sums(&self) -> Option<(Mat<f64>, Mat<f64>)> {
        self.online().map(|o| o.recursion.sums())
    }

    /// The statistics behind mode energies and confidence intervals (see
    /// [`crate::uncertainty`]), when a model is available. Copies only (P, G and the
    /// residual ring, O(N^2 + 2^17)): call it at an eigen refresh, not per sample.
    pub fn mode_statistics(&self) -> Option<ModeStatistics> {
        let o = self.ready()?;
        let n = o.target.len();
        let (gram, _) = o.recursion.sums();
        let pairs = o.recursion.pairs;
        let rho = self.config.forgetting;
        // The ridge still in G: mu, decayed by rho per pair under forgetting (a window keeps it).
        let (ridge, sandwich) = if self.config.window.is_none() && rho < 1.0 {
            let decay = rho.powf(pairs as f64);
            (o.mu * decay, (1.0 + decay) / (1.0 + rho))
        } else {
            (o.mu, 1.0)
        };
        let p = o.recursion.inverse();
        // Sum of the pair weights and the effective number of pairs (sum w)^2 / sum w^2.
        let (weight_sum, effective_pairs) = if self.config.window.is_none() && rho < 1.0 {
            let m = pairs as f64;
            let sum = (1.0 - rho.powf(m)) / (1.0 - rho);
            let sum_squares = (1.0 - rho.powf(2.0 * m)) / (1.0 - rho * rho);
            (sum, sum * sum / sum_squares)
        } else {
            let m = o.recursion.pairs_in_model() as f64;
            (m, m)
        };
        // The small-sample correction is that of least squares: ridge only.
        let bias = (o.lifting.is_linear() && self.config.n_inputs() == 0 && o.debiased.is_none())
            .then(|| BiasContext { constant: o.lifting.constant_index(), weight_sum, effective_pairs });
        // K's row covariance factor: ridge's P (sandwiched), the instrumental-variable
        // M^-1 (sum z z^T) M^-T, or none for the correlation estimator, whose error is
        // not that of a regression on independent residuals.
        let (p_state, intervals_unavailable) = match &o.debiased {
            None => (Mat::from_fn(n, n, |i, j| sandwich * p[(i, j)]), None),
            Some(d) => match d.row_covariance() {
                Some(cov) => (Mat::from_fn(n, n, |i, j| sandwich * cov[(i, j)]), None),
                None => (Mat::zeros(n, n), Some(crate::uncertainty::CORRELATION_NO_INTERVALS)),
            },
        };
        Some(ModeStatistics {
            p_state,
            residuals: o.residual_ring.rows(),
            gram_state: Mat::from_fn(n, n, |i, j| gram[(i, j)] - if i == j { ridge } else { 0.0 }),
            bias,
            intervals_unavailable,
        })
    }

    /// The one-step residual the state `x` would have if it were pushed next, without
    /// changing anything: per state channel, z(x) - (K^T p)_j, the standardised state
    /// (x - mean) / scale (x itself when standardisation is off) minus the current model's
    /// prediction from the previous sample's regressor p = [psi(x_prev); u_prev]. It is the
    /// state block of the a-priori residual the pair would record (the state coordinates
    /// come first in psi). None when there is nothing to predict from: warming up, the
    /// model unsolved, or no previous sample in the chain (at its start, after a gap, while
    /// delays refill); or when `x` is not n finite values. O(N' n); no allocation (the
    /// result lives in a work vector of the estimator until the next call).
    pub fn one_step_residual(&mut self, x: &[f64]) -> Option<&[f64]> {
        let Phase::Online(o) = &mut self.phase else { return None };
        if !(o.recursion.is_solved() && o.have_previous) || check_values(SampleField::State, x, o.z.len()).is_err() {
            return None;
        }
        o.lifting.standardise_into(x, &mut o.z);
        match &o.debiased {
            Some(d) => {
                if !d.predict_into(&o.regressor, &mut o.served_prediction) {
                    return None;
                }
                let n = o.one_step.len();
                o.one_step.copy_from_slice(&o.served_prediction[..n]);
            }
            None => o.recursion.predict_into(&o.regressor, &mut o.one_step),
        }
        for (e, z) in o.one_step.iter_mut().zip(&o.z) {
            *e = z - *e;
        }
        Some(&o.one_step)
    }

    /// RMS of the a-priori one-step residual per state channel, in data units.
    pub fn residual_rms(&self) -> Option<Vec<f64>> {
        self.online()
            .filter(|o| o.residuals.count > 0)
            .map(|o| o.residuals.mean_square.iter().map(|v| v.sqrt()).collect())
    }

    /// The mean over the state channels of the residual RMS (what the service's metrics
    /// show per batch), without allocating.
    pub fn mean_residual_rms(&self) -> Option<f64> {
        let o = self.online().filter(|o| o.residuals.count > 0)?;
        let squares = &o.residuals.mean_square;
        Some(squares.iter().map(|v| v.sqrt()).sum::<f64>() / squares.len() as f64)
    }

    /// The states held for the delay coordinates, raw units, oldest first (row-major).
    pub fn recent_states(&self) -> Vec<f64> {
        let Some(o) = self.online() else { return Vec::new() };
        let n = self.config.n_states();
        let mut out = vec![0.0; o.history.len() * n];
        for (row, lag) in (0..o.history.len()).rev().enumerate() {
            o.lifting.unstandardise_into(o.history.lag(lag), &mut out[row * n..(row + 1) * n]);
        }
        out
    }

    /// The linear state-space model (A, B, C, offset) of the current K.
    pub fn linear_model(&self) -> Option<LinearModel> {
        self.ready().map(|o| LinearModel::from_k(o.served_operator().as_ref(), &o.lifting, self.config.n_inputs()))
    }

    /// Exact refactorisation from the running sums now.
    pub fn refactorise(&mut self) -> Result<(), NumericalError> {
        match &mut self.phase {
            Phase::Online(o) => o.recursion.refactorise(),
            Phase::WarmingUp(_) => Err(NumericalError::NotReady("still warming up")),
        }
    }

    fn online(&self) -> Option<&Online> {
        match &self.phase {
            Phase::Online(o) => Some(o),
            Phase::WarmingUp(_) => None,
        }
    }

    fn ready(&self) -> Option<&Online> {
        self.online().filter(|o| o.recursion.is_solved() && o.debiased.as_ref().is_none_or(|d| d.operator().is_some()))
    }

    /// Fixes the lifting, resolves mu, and initialises the model from the warm-up pairs.
    fn finish_warmup(&mut self) {
        let Phase::WarmingUp(buffer) = &mut self.phase else { return };
        let buffer = std::mem::replace(buffer, WarmupBuffer::new());
        let c = &self.config;
        let lifting = Lifting::build(
            &c.dictionary,
            &c.state_names,
            c.standardise,
            &buffer.states,
            c.rbf_centres.as_deref(),
            c.seed,
        );
        let mu = match &c.regularisation {
            Regularisation::Mu(mu) => *mu,
            Regularisation::NoiseSigma(sigma) => mu_from_sigma(&lifting, &buffer.states, sigma, c.seed),
        };
        let n_lifted = lifting.dim();
        let n_regressor = n_lifted + c.n_inputs();
        let mut online = Online {
            history: lifting.new_history(),
            recursion: Recursion::new(n_lifted, n_regressor, mu, c.forgetting, c.window, c.refactor_every),
            z: vec![0.0; c.n_states()],
            regressor: vec![0.0; n_regressor],
            target: vec![0.0; n_lifted],
            have_previous: false,
            residuals: ResidualTracker {
                horizon: c.residual_horizon as u64,
                count: 0,
                mean_square: vec![0.0; c.n_states()],
            },
            residual_ring: ResidualRing::new(n_lifted),
            one_step: vec![0.0; c.n_states()],
            debiased: Debiased::new(c, n_lifted, lifting.constant_index(), mu),
            served_residual: vec![0.0; n_lifted],
            served_prediction: vec![0.0; n_lifted],
            lifting,
            mu,
        };
        let (n, m) = (c.n_states(), c.n_inputs());
        let mut warm_pairs = 0;
        for (k, &chain_start) in buffer.chain_starts.iter().enumerate() {
            if chain_start {
                online.history.clear();
                online.have_previous = false;
                if let Some(d) = &mut online.debiased {
                    d.break_chain();
                }
            }
            let (x, u) = (&buffer.states[k * n..(k + 1) * n], &buffer.inputs[k * m..(k + 1) * m]);
            let outcome = online.ingest(x, u, Mode::SumsOnly);
            if outcome == SampleOutcome::SumsOnly {
                warm_pairs += 1;
            }
        }
        // The batch solve of the warm-up pairs (a singular Gram matrix waits for more data).
        if warm_pairs > 0 || !online.recursion.is_solved() {
            let _ = online.recursion.refactorise();
        }
        if let Some(d) = &mut online.debiased {
            let _ = d.solve();
        }
        self.counters.pairs += warm_pairs;
        self.phase = Phase::Online(Box::new(online));
    }
}

impl WarmupBuffer {
    /// Empty, allocating nothing: an estimator that is never fed (a cluster node's idle
    /// copy of a stream another node applies) holds no warm-up buffer.
    fn new() -> Self {
        Self { states: Vec::new(), inputs: Vec::new(), chain_starts: Vec::new() }
    }

    /// Room for the whole warm-up, allocated once at its first sample.
    fn reserve(&mut self, config: &EstimatorConfig) {
        self.states.reserve_exact(config.warmup * config.n_states());
        self.inputs.reserve_exact(config.warmup * config.n_inputs());
        self.chain_starts.reserve_exact(config.warmup);
    }
}

impl Online {
    /// The K this estimator serves: the method's own when it has one, else the ridge K.
    fn served_operator(&self) -> Mat<f64> {
        match self.debiased.as_ref().and_then(Debiased::operator) {
            Some(k) => {
                let rows = self.regressor.len();
                Mat::from_fn(rows, self.target.len(), |r, c| k[c * rows + r])
            }
            None => self.recursion.operator(),
        }
    }

    /// Lifts the sample and, if it completes a pair, adds the pair (recursively or to the
    /// sums only, as `mode` says). Never allocates.
    fn ingest(&mut self, x: &[f64], u: &[f64], mode: Mode) -> SampleOutcome {
        self.lifting.standardise_into(x, &mut self.z);
        self.history.push(&self.z);
        if !self.history.is_full() {
            return SampleOutcome::ChainStart;
        }
        self.lifting.lift_into(&self.history, &mut self.target);
        if let Some(d) = &mut self.debiased {
            d.observe(&self.target);
        }
        let outcome = if self.have_previous {
            let effect = self.recursion.update(&self.regressor, &self.target, mode);
            let scale = self.lifting.standardisation().map(|s| s.scale.as_slice());
            match &mut self.debiased {
                // Another method serves K: its residuals are the model's residuals.
                Some(d) => {
                    let recursive = matches!(mode, Mode::Recursive);
                    if d.pair(&self.regressor, &self.target, recursive, &mut self.served_residual) {
                        self.residuals.record(&self.served_residual, scale);
                        self.residual_ring.record(&self.served_residual);
                    }
                }
                None if effect == PairEffect::Updated => {
                    self.residuals.record(self.recursion.last_residual(), scale);
                    self.residual_ring.record(self.recursion.last_residual());
                }
                None => {}
            }
            match effect {
                PairEffect::Updated => SampleOutcome::Updated,
                PairEffect::SumsOnly => SampleOutcome::SumsOnly,
            }
        } else {
            SampleOutcome::ChainStart
        };
        let n_lifted = self.target.len();
        self.regressor[..n_lifted].copy_from_slice(&self.target);
        self.regressor[n_lifted..].copy_from_slice(u);
        self.have_previous = true;
        outcome
    }
}

fn check_values(field: SampleField, values: &[f64], expected: usize) -> Result<(), SampleError> {
    if values.len() != expected {
        return Err(SampleError::Length { field, expected, got: values.len() });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(SampleError::NonFinite { field, index, value: values[index] }),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "estimator_tests.rs"]
mod tests;
