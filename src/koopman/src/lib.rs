//! Robust online Koopman operator estimation, sample by sample.
//!
//! A stream of states x_k (n channels) and inputs u_k (m channels) is lifted by a dictionary
//! psi into N observables. Pairs p_k = [psi(x_k); u_k], q_k = psi(x_{k+1}) define the
//! ridge-regularised EDMD problem
//!
//! ```text
//! K = (sum p p^T + mu I)^-1 sum p q^T        ((N + m) x N)
//! ```
//!
//! which the [`Estimator`] keeps solved online with one O((N + m)^2) rank-one update per
//! sample (rank two with an exact sliding window), optional exponential forgetting, and an
//! exact refactorisation from the running sums every so often or when a health check fails.
//! The linear model z' = A z + B u, x = C z + offset is read off K ([`LinearModel`]), its
//! spectrum with [`spectrum::modes`], and multi-step predictions with
//! [`LinearModel::predict`]. [`batch`] holds the independent batch reference solver.
//!
//! The crate does no I/O, knows no clock (the sample time is only an argument of the
//! spectral functions), and its types are not serialisable: the service converts them.
//!
//! # Structure
//!
//! The [`Estimator`] (`estimator.rs`) runs a stream's life: warm-up, the fixed lifting
//! (`lifting.rs`), gaps, counters, and export and restore through the plain structs of
//! `state.rs` ([`EstimatorState`]). Its numbers live in one `Recursion` (`recursion.rs`),
//! the single description of the numerical state: the sums G and R, the inverse
//! P = G^-1, the operator K, the strategy's own data, counters. It has one entry point,
//! `update(p, q, mode)`, which either moves the sums only (warm-up replay, unsolved
//! models) or runs the strategy chosen when the recursion was built: immediate rank-one
//! updates (`immediate.rs`), updates deferred into blocks (`deferred.rs`), or a sliding
//! window of rank-two steps (`window.rs`). P and G are `Symmetric` (`symmetric.rs`), a
//! type whose storage rule (lower triangle, or mirrored in full where the exact-size
//! update reads P as a square) every mutating operation keeps. All arithmetic of the
//! update paths runs on the SIMD kernels of `simd.rs`; the plain kernels of `reference.rs`
//! exist only in test builds, as the reference they are checked against.

#![warn(missing_docs)]

pub mod batch;
pub mod bias;
mod centres;
mod config;
mod debias;
mod deferred;
mod dense;
mod error;
mod estimator;
mod exp;
mod immediate;
mod lifting;
mod model;
mod noise;
mod recursion;
#[cfg(test)]
mod reference;
mod rng;
mod simd;
mod spec;
pub mod spectrum;
mod state;
mod symmetric;
pub mod uncertainty;
mod window;

pub use config::{EstimatorConfig, MAX_INSTRUMENT_DELAY, MAX_LAGS, MAX_LIFTED, Method, Regularisation};
pub use error::{ConfigError, NumericalError, PredictError, SampleError, SampleField, SpecError, StateError};
pub use estimator::{Counters, Estimator, Progress, SampleOutcome};
pub use lifting::{Lifting, Standardisation, StateHistory};
pub use model::{LinearModel, MAX_HORIZON, PredictionMode};
pub use noise::mu_from_sigma;
pub use spec::{DictionarySpec, FourierSpec, RbfSpec};
pub use state::{
    CorrelationState, DebiasedState, EstimatorState, InstrumentalState, LiftingState, OnlineState, PendingState,
    PhaseState, RecursionState, WindowState,
};

/// Re-exported so that callers name the same matrix and complex types.
pub use faer::{Mat, MatRef, c64};
