//! Identification routines shared by every experiment and the end-to-end tests: streaming
//! chains of samples through the online estimator, the batch solve over exactly the pairs
//! it used, and multi-step prediction errors on noise-free reference trajectories.

use koopman::batch::{self, PairData};
use koopman::{Estimator, EstimatorConfig, Lifting, LinearModel, Mat, MatRef, PredictionMode};

use super::ExperimentError;

/// Training data made of separate records (chains): no pair spans two chains.
#[derive(Debug, Clone, PartialEq)]
pub struct Chains {
    n: usize,
    states: Vec<f64>,
    starts: Vec<bool>,
}

impl Chains {
    /// No data yet, for `n` state channels.
    pub fn new(n: usize) -> Self {
        Self { n, states: Vec::new(), starts: Vec::new() }
    }

    /// Appends one record (row-major, `n` values per row); a trailing partial row is ignored.
    pub fn push_chain(&mut self, rows: &[f64]) {
        let count = rows.len() / self.n;
        if count == 0 {
            return;
        }
        self.states.extend_from_slice(&rows[..count * self.n]);
        self.starts.push(true);
        self.starts.extend(std::iter::repeat_n(false, count - 1));
    }

    /// Number of state channels.
    pub fn n_states(&self) -> usize {
        self.n
    }

    /// Number of samples over all chains.
    pub fn n_samples(&self) -> usize {
        self.starts.len()
    }

    /// Number of chains.
    pub fn n_chains(&self) -> usize {
        self.starts.iter().filter(|s| **s).count()
    }

    /// All samples, row-major.
    pub fn states(&self) -> &[f64] {
        &self.states
    }

    /// Which samples begin a chain.
    pub fn starts(&self) -> &[bool] {
        &self.starts
    }
}

/// Streams `chains` through a new online estimator, one sample at a time, marking a gap
/// before every chain but the first (exactly what a service sees from separate records).
pub fn train_online(config: EstimatorConfig, chains: &Chains) -> Result<Estimator, ExperimentError> {
    let mut estimator = Estimator::new(config)?;
    for (k, row) in chains.states.chunks_exact(chains.n).enumerate() {
        if chains.starts[k] && k > 0 {
            estimator.break_chain();
        }
        estimator.push(row, &[])?;
    }
    Ok(estimator)
}

/// The online estimator's model, or a typed error naming the fit when it has none.
pub fn model_of(estimator: &Estimator, what: &str) -> Result<LinearModel, ExperimentError> {
    estimator.linear_model().ok_or_else(|| ExperimentError::NoModel { what: what.to_owned() })
}

/// The fixed lifting of a trained estimator.
pub fn lifting_of(estimator: &Estimator, what: &str) -> Result<Lifting, ExperimentError> {
    estimator.lifting().cloned().ok_or_else(|| ExperimentError::NoModel { what: what.to_owned() })
}

/// The pairs the online estimator formed from `chains`, lifted with its fixed `lifting`.
pub fn stack(lifting: &Lifting, chains: &Chains) -> PairData {
    batch::stack_pairs(lifting, &chains.states, &[], Some(&chains.starts))
}

/// The batch ridge solution over `pairs` with ridge `mu` (mu = 0 is batch EDMD), as a model.
pub fn batch_model(lifting: &Lifting, pairs: &PairData, mu: f64) -> Result<LinearModel, ExperimentError> {
    let k = batch::solve(pairs.regressors.as_ref(), pairs.targets.as_ref(), mu, None)?;
    Ok(LinearModel::from_k(k.as_ref(), lifting, 0))
}

/// ||a - b||_F / ||b||_F.
pub fn relative_frobenius(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    let diff: Mat<f64> = a - b;
    diff.norm_l2() / b.norm_l2()
}

/// How far the online K is from the batch solve with the same mu over the same pairs
/// (relative Frobenius): the "online equals batch" invariant measured on real data.
pub fn online_minus_batch(estimator: &Estimator, pairs: &PairData, what: &str) -> Result<f64, ExperimentError> {
    let no_model = || ExperimentError::NoModel { what: what.to_owned() };
    let k_online = estimator.k().ok_or_else(no_model)?;
    let mu = estimator.mu().ok_or_else(no_model)?;
    let k_batch = batch::solve(pairs.regressors.as_ref(), pairs.targets.as_ref(), mu, None)?;
    Ok(relative_frobenius(k_online.as_ref(), k_batch.as_ref()))
}

/// Which starts and horizon a prediction error is measured over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictionPlan {
    /// Steps predicted from each start.
    pub horizon: usize,
    /// Sample index of the first start (raised to the dictionary's history length - 1).
    pub first_start: usize,
    /// Distance between starts.
    pub stride: usize,
    /// Last start index (inclusive; lowered so that the horizon fits the reference).
    pub last_start: usize,
    /// Linear iteration in lifted space, or relifting every step.
    pub mode: PredictionMode,
    /// A start whose error at any step exceeds this (or is not finite) counts as diverged.
    pub divergence: f64,
}

/// Prediction error over many starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictionScore {
    /// RMS over the starts that did not diverge of each start's error
    /// sqrt(mean over steps 1..H of |x_hat - x|^2); NaN when every start diverged.
    pub rms: f64,
    /// Starts that diverged.
    pub diverged: usize,
    /// Starts evaluated.
    pub starts: usize,
}

/// Predicts from every start of `plan` on each clean reference trajectory (row-major, `n`
/// values per row) and scores the predictions against the reference.
pub fn prediction_error(
    model: &LinearModel,
    references: &[Vec<f64>],
    n: usize,
    plan: &PredictionPlan,
) -> Result<PredictionScore, ExperimentError> {
    prediction_error_scaled(model, references, &vec![1.0; n], plan)
}

/// [`prediction_error`] with the error of channel j divided by `scale[j]` (e.g. the
/// channel's standard deviation, for channels in different units); n = `scale.len()`.
pub fn prediction_error_scaled(
    model: &LinearModel,
    references: &[Vec<f64>],
    scale: &[f64],
    plan: &PredictionPlan,
) -> Result<PredictionScore, ExperimentError> {
    let n = scale.len();
    let history = model.lifting().history_len();
    let (mut sum_squares, mut kept, mut diverged, mut starts) = (0.0, 0usize, 0usize, 0usize);
    for reference in references {
        let rows = reference.len() / n;
        let first = plan.first_start.max(history - 1);
        let last = plan.last_start.min(rows.saturating_sub(plan.horizon + 1));
        if rows <= plan.horizon || first > last {
            continue;
        }
        for k in (first..=last).step_by(plan.stride.max(1)) {
            let recent = &reference[(k + 1 - history) * n..(k + 1) * n];
            let predicted = model.predict(recent, &[], plan.horizon, plan.mode)?;
            let truth = &reference[(k + 1) * n..(k + 1 + plan.horizon) * n];
            let mut mean_square = 0.0;
            let mut blew_up = false;
            for (p, t) in predicted.chunks_exact(n).zip(truth.chunks_exact(n)) {
                let step: f64 = p.iter().zip(t).zip(scale).map(|((a, b), s)| ((a - b) / s).powi(2)).sum();
                // A NaN error (overflowed prediction) compares as None: diverged too.
                blew_up |=
                    matches!(step.sqrt().partial_cmp(&plan.divergence), Some(std::cmp::Ordering::Greater) | None);
                mean_square += step;
            }
            starts += 1;
            if blew_up {
                diverged += 1;
            } else {
                sum_squares += mean_square / plan.horizon as f64;
                kept += 1;
            }
        }
    }
    let rms = if kept == 0 { f64::NAN } else { (sum_squares / kept as f64).sqrt() };
    Ok(PredictionScore { rms, diverged, starts })
}

/// Mean of the finite values (NaN when there are none).
pub fn finite_mean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, count) = values.into_iter().filter(|v| v.is_finite()).fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    if count == 0 { f64::NAN } else { sum / count as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use koopman::{EstimatorConfig, Regularisation};

    /// x_{k+1} = 0.9 x_k on two chains: the fit is exact and online equals batch.
    fn decaying_chains() -> Chains {
        let mut chains = Chains::new(1);
        for start in [1.0, -2.0] {
            let rows: Vec<f64> = (0..30).map(|k| start * 0.9f64.powi(k)).collect();
            chains.push_chain(&rows);
        }
        chains
    }

    fn linear_config(mu: f64) -> EstimatorConfig {
        let mut config = EstimatorConfig::new(vec!["x".into()], "state".parse().unwrap());
        config.regularisation = Regularisation::Mu(mu);
        config.standardise = false;
        config.warmup = 5;
        config
    }

    #[test]
    fn chains_mark_their_starts_and_pairs_never_span_them() {
        let chains = decaying_chains();
        assert_eq!((chains.n_samples(), chains.n_chains()), (60, 2));
        assert!(chains.starts()[30] && !chains.starts()[31]);
        let estimator = train_online(linear_config(0.0), &chains).unwrap();
        let lifting = lifting_of(&estimator, "test").unwrap();
        let pairs = stack(&lifting, &chains);
        assert_eq!(pairs.regressors.nrows(), 58);
        assert_eq!(estimator.counters().pairs, 58);
        assert!(online_minus_batch(&estimator, &pairs, "test").unwrap() < 1e-12);
        let model = batch_model(&lifting, &pairs, 0.0).unwrap();
        assert!((model.a[(0, 0)] - 0.9).abs() < 1e-12);
    }

    #[test]
    fn prediction_error_is_zero_for_the_exact_model_and_counts_divergence() {
        let chains = decaying_chains();
        let estimator = train_online(linear_config(0.0), &chains).unwrap();
        let model = model_of(&estimator, "test").unwrap();
        let reference: Vec<f64> = (0..20).map(|k| 0.9f64.powi(k)).collect();
        let plan = PredictionPlan {
            horizon: 5,
            first_start: 0,
            stride: 2,
            last_start: 100,
            mode: PredictionMode::Linear,
            divergence: 10.0,
        };
        let score = prediction_error(&model, std::slice::from_ref(&reference), 1, &plan).unwrap();
        // Starts 0, 2, ..., 14 (the last start leaves room for 5 steps in 20 samples).
        assert_eq!((score.starts, score.diverged), (8, 0));
        assert!(score.rms < 1e-12);
        // A reference that jumps far away makes every start that sees the jump diverge.
        let mut jumped = reference;
        jumped[10] = 100.0;
        let score = prediction_error(&model, &[jumped], 1, &plan).unwrap();
        assert_eq!(score.diverged, 3, "starts 6 and 8 predict sample 10, start 10 begins there");
        assert!(score.rms < 1e-12);
    }

    #[test]
    fn a_model_without_enough_pairs_is_a_typed_error() {
        let mut chains = Chains::new(1);
        chains.push_chain(&[1.0]);
        let estimator = train_online(linear_config(0.0), &chains).unwrap();
        assert!(matches!(model_of(&estimator, "tiny"), Err(ExperimentError::NoModel { .. })));
        assert_eq!(finite_mean([1.0, f64::NAN, 3.0]), 2.0);
        assert!(finite_mean([]).is_nan());
    }
}
