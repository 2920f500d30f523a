//! Estimates of K that noise in the regressors does not bias, kept beside the ridge
//! recursion: the correlation estimator (`correlation.rs`, for noise-driven data) and
//! instrumental variables (`instrumental.rs`). [`Debiased`] is the one type the estimator
//! holds for either; which one is fixed by [`crate::Method`].

pub(crate) mod correlation;
pub(crate) mod instrumental;

use faer::Mat;

use crate::config::{EstimatorConfig, Method};
use crate::error::{NumericalError, StateError};
use crate::state::DebiasedState;
use correlation::Correlation;
use instrumental::Instrumental;

/// The method's own statistics and operator.
#[derive(Debug, Clone)]
pub(crate) enum Debiased {
    Correlation { sums: Box<Correlation>, solve_every: usize, since_solve: usize },
    Instrumental(Box<Instrumental>),
}

impl Debiased {
    /// The statistics the configuration's method keeps, empty; `None` for ridge.
    pub(crate) fn new(config: &EstimatorConfig, n_lifted: usize, constant: Option<usize>, mu: f64) -> Option<Self> {
        let rho = config.forgetting;
        match config.method {
            Method::Ridge => None,
            Method::Correlation { lags, rank } => Some(Self::Correlation {
                sums: Box::new(Correlation::new(n_lifted, config.first_free_lag(), lags, rank, rho, constant)),
                solve_every: config.solve_every,
                since_solve: 0,
            }),
            Method::InstrumentalVariable { delay } => Some(Self::Instrumental(Box::new(Instrumental::new(
                n_lifted + config.n_inputs(),
                n_lifted,
                delay,
                mu,
                rho,
                config.refactor_every,
            )))),
        }
    }

    /// A gap.
    pub(crate) fn break_chain(&mut self) {
        match self {
            Self::Correlation { sums, .. } => sums.break_chain(),
            Self::Instrumental(iv) => iv.break_chain(),
        }
    }

    /// A lifted vector psi(x_t) of the chain (every one, including each chain's first).
    pub(crate) fn observe(&mut self, psi: &[f64]) {
        if let Self::Correlation { sums, .. } = self {
            sums.push(psi);
        }
    }

    /// A pair (p, q), after [`Self::observe`] saw q. Returns the a-priori residual of the
    /// served model when it has one (into `residual`, N values). `recursive` false: sums
    /// only (the warm-up replay).
    pub(crate) fn pair(&mut self, p: &[f64], q: &[f64], recursive: bool, residual: &mut [f64]) -> bool {
        match self {
            Self::Correlation { sums, solve_every, since_solve } => {
                let predicted = sums.operator().is_some_and(|k| predict(k, p, residual));
                if predicted {
                    for (e, t) in residual.iter_mut().zip(q) {
                        *e = t - *e;
                    }
                }
                if recursive {
                    *since_solve += 1;
                    if *since_solve >= *solve_every || sums.operator().is_none() && *since_solve >= q.len().max(1) {
                        *since_solve = 0;
                        let _ = sums.solve();
                    }
                }
                predicted && recursive
            }
            Self::Instrumental(iv) => match iv.update(p, q, recursive) {
                Some(e) => {
                    residual.copy_from_slice(e);
                    true
                }
                None => false,
            },
        }
    }

    /// Solves now from the current statistics (the end of the warm-up; [`crate::Estimator::solve_now`]).
    pub(crate) fn solve(&mut self) -> Result<(), NumericalError> {
        match self {
            Self::Correlation { sums, since_solve, .. } => {
                *since_solve = 0;
                sums.solve()
            }
            Self::Instrumental(iv) => iv.refactorise(),
        }
    }

    /// The served model's prediction K^T p into `out` (N values); false without a model.
    pub(crate) fn predict_into(&self, p: &[f64], out: &mut [f64]) -> bool {
        self.operator().is_some_and(|k| predict(k, p, out))
    }

    /// K (N' x N column-major) when the method has one.
    pub(crate) fn operator(&self) -> Option<&[f64]> {
        match self {
            Self::Correlation { sums, .. } => sums.operator(),
            Self::Instrumental(iv) => iv.is_solved().then(|| iv.operator()),
        }
    }

    /// The covariance factor of K's rows (N' x N') where the method's statistics give one.
    pub(crate) fn row_covariance(&self) -> Option<Mat<f64>> {
        match self {
            Self::Correlation { .. } => None,
            Self::Instrumental(iv) => iv.is_solved().then(|| iv.row_covariance()),
        }
    }

    pub(crate) fn export(&self) -> DebiasedState {
        match self {
            Self::Correlation { sums, since_solve, .. } => {
                DebiasedState::Correlation { sums: sums.export(), since_solve: *since_solve }
            }
            Self::Instrumental(iv) => DebiasedState::Instrumental(iv.export()),
        }
    }

    /// Restores into an empty instance built by [`Self::new`] for the same configuration.
    pub(crate) fn restore(self, state: DebiasedState) -> Result<Self, StateError> {
        match (self, state) {
            (Self::Correlation { sums, solve_every, .. }, DebiasedState::Correlation { sums: s, since_solve }) => {
                Ok(Self::Correlation { sums: Box::new(sums.restore(s)?), solve_every, since_solve })
            }
            (Self::Instrumental(iv), DebiasedState::Instrumental(s)) => {
                Ok(Self::Instrumental(Box::new(iv.restore(s)?)))
            }
            _ => Err(StateError::Invalid("the exported state is of another estimation method")),
        }
    }
}

/// out = K^T p for K column-major with p.len() rows (one column per entry of `out`).
fn predict(k: &[f64], p: &[f64], out: &mut [f64]) -> bool {
    let width = p.len();
    for (c, o) in out.iter_mut().enumerate() {
        *o = k[c * width..(c + 1) * width].iter().zip(p).map(|(a, b)| a * b).sum();
    }
    true
}
