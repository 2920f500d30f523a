//! The estimator's error types: one small enum per kind of failure, each naming what was
//! wrong so that the service can turn it into a precise message.

use thiserror::Error;

/// A dictionary specification string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SpecError {
    /// Nothing was given.
    #[error("the dictionary is empty; it must begin with `state`")]
    Empty,
    /// The first term was not `state`.
    #[error("the dictionary must begin with `state`")]
    MissingState,
    /// A term that is not one of state, const, poly, rbf, fourier, delay.
    #[error("unknown dictionary term `{0}` (known: state, const, poly:D, rbf:N[:W], fourier:N[:S], delay:D)")]
    UnknownTerm(String),
    /// A term given twice.
    #[error("dictionary term `{0}` appears more than once")]
    Duplicate(String),
    /// Terms must follow the canonical order.
    #[error("dictionary term `{term}` must come before `{after}` (order: state, const, poly, rbf, fourier, delay)")]
    OutOfOrder {
        /// The misplaced term.
        term: String,
        /// The term it was found after.
        after: String,
    },
    /// Wrong number of `:`-separated parameters.
    #[error("dictionary term `{term}` has the wrong parameters; expected `{expected}`")]
    BadArity {
        /// The term as written.
        term: String,
        /// Its expected form.
        expected: &'static str,
    },
    /// A parameter that is not a valid number for its term.
    #[error("dictionary term `{term}`: parameter `{value}` is invalid: {reason}")]
    BadParameter {
        /// The term as written.
        term: String,
        /// The offending parameter.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
}

/// An estimator configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ConfigError {
    /// No state channels.
    #[error("a stream needs at least one state channel")]
    NoStates,
    /// The forgetting factor must lie in (0, 1].
    #[error("forgetting factor {0} must lie in (0, 1]")]
    Forgetting(f64),
    /// mu must be finite and non-negative.
    #[error("ridge parameter mu = {0} must be finite and >= 0")]
    Mu(f64),
    /// Noise levels must be finite, non-negative, one per channel or one for all.
    #[error("noise sigma must be finite and >= 0, given once or once per state channel ({0})")]
    Sigma(String),
    /// A sliding window and exponential forgetting cannot be combined exactly.
    #[error("a sliding window and a forgetting factor < 1 cannot be combined; choose one")]
    WindowWithForgetting,
    /// A window must hold at least one pair, and enough pairs to be solvable without a ridge.
    #[error("a window of {window} pairs cannot be used: {reason}")]
    Window {
        /// The requested window.
        window: usize,
        /// Why it cannot be used.
        reason: String,
    },
    /// The warm-up window is too short for what the configuration asks of it.
    #[error("a warm-up of {given} samples cannot be used: {reason}")]
    Warmup {
        /// The requested warm-up length.
        given: usize,
        /// What needs more samples.
        reason: String,
    },
    /// The estimation method's own settings cannot be used.
    #[error("estimator method: {0}")]
    Method(String),
    /// Refactorisation interval must be at least 1.
    #[error("refactorisation interval must be at least 1 sample")]
    RefactorEvery,
    /// Explicit RBF centres of the wrong shape.
    #[error("explicit RBF centres must be {expected_rows} x {expected_cols}, got {rows} x {cols}")]
    CentresShape {
        /// Centres required by the spec.
        expected_rows: usize,
        /// State dimension.
        expected_cols: usize,
        /// Rows given.
        rows: usize,
        /// Columns given.
        cols: usize,
    },
    /// The lifted dimension is larger than the estimator supports.
    #[error("the dictionary produces {0} observables; at most {max} are supported", max = crate::config::MAX_LIFTED)]
    TooManyObservables(usize),
    /// The dictionary spec was invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// Which part of a sample was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleField {
    /// The measured state channels.
    State,
    /// The input channels.
    Input,
}

impl std::fmt::Display for SampleField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SampleField::State => "state",
            SampleField::Input => "input",
        })
    }
}

/// A sample that the estimator refused; the estimator is unchanged.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SampleError {
    /// The sample has the wrong number of values.
    #[error("{field} has {got} values, expected {expected}")]
    Length {
        /// State or input.
        field: SampleField,
        /// Expected count.
        expected: usize,
        /// Given count.
        got: usize,
    },
    /// A NaN or infinite value.
    #[error("{field} value {index} is not finite ({value})")]
    NonFinite {
        /// State or input.
        field: SampleField,
        /// Zero-based channel index.
        index: usize,
        /// The offending value.
        value: f64,
    },
}

/// A numerical operation that could not be carried out.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum NumericalError {
    /// The Gram matrix is not (numerically) positive definite.
    #[error("the regularised Gram matrix is not positive definite (too few informative pairs for mu = 0?)")]
    NotPositiveDefinite,
    /// The eigen solver did not converge.
    #[error("the eigen-decomposition did not converge")]
    EigenFailed,
    /// The model is not available yet.
    #[error("no model yet: {0}")]
    NotReady(&'static str),
    /// A non-finite number reached a solve.
    #[error("a sum holds a non-finite number")]
    NotFinite,
    /// The instrumental-variable moment matrix sum z p^T is singular.
    #[error(
        "the instrument moment matrix is singular (too few informative pairs, or instruments that do not correlate with the regressors)"
    )]
    Singular,
}

/// A prediction request that cannot be served.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PredictError {
    /// Not enough past states for the dictionary's delays.
    #[error("the start needs {needed} recent states (for the delay coordinates), got {got}")]
    History {
        /// States needed.
        needed: usize,
        /// States given.
        got: usize,
    },
    /// A start state or input of the wrong width, or a non-finite value.
    #[error(transparent)]
    Sample(#[from] SampleError),
    /// Future inputs must cover the horizon.
    #[error("future inputs cover {got} steps, the horizon is {horizon}")]
    Inputs {
        /// Steps given.
        got: usize,
        /// Steps needed.
        horizon: usize,
    },
    /// The horizon is zero or too long.
    #[error("horizon {0} must lie in 1..={max}", max = crate::model::MAX_HORIZON)]
    Horizon(usize),
}

/// An exported state that does not fit the configuration it is restored with.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StateError {
    /// A buffer has the wrong size.
    #[error("the saved state does not fit the stream's configuration: `{0}` has the wrong shape")]
    Shape(&'static str),
    /// A value is out of range.
    #[error("the saved state is invalid: {0}")]
    Invalid(&'static str),
}
