//! The `koopstream.model.v1` document: the project's one model format, written by `fit`
//! and served by the service. Built from an estimator; every matrix is row-major.

use koopman::spectrum::{self, Continuous};
use koopman::{Estimator, LinearModel, MatRef, c64};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use domain::method::StoredMethod;
use domain::snapshot::ModelSnapshot;

use crate::streams::EstimatorDoc;

/// The format tag every model document carries.
pub const MODEL_FORMAT: &str = "koopstream.model.v1";

/// A dense matrix as `{"rows", "cols", "data"}` with `data` row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MatrixDoc {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns.
    pub cols: usize,
    /// Entries, row after row.
    pub data: Vec<f64>,
}

impl MatrixDoc {
    /// Row-major copy of a faer matrix.
    pub fn from_mat(m: MatRef<'_, f64>) -> Self {
        let data = (0..m.nrows()).flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)])).collect();
        Self { rows: m.nrows(), cols: m.ncols(), data }
    }

    /// Entry (i, j).
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }
}

/// Per-channel standardisation of the lifting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StandardisationDoc {
    /// Channel means.
    pub mean: Vec<f64>,
    /// Channel scales.
    pub scale: Vec<f64>,
}

/// The integer powers of the state, constant and monomial observables: `rows` observables
/// (the first ones of psi) by `cols` = n state coordinates, row-major; observable i is the
/// product over j of z_j^data[i * cols + j], z the standardised state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExponentsDoc {
    /// Number of observables described (state, constant and monomials).
    pub rows: usize,
    /// Number of state coordinates n.
    pub cols: usize,
    /// Powers, row after row.
    pub data: Vec<u32>,
}

/// The Gaussian RBF observables exp(-0.5 |z - c_k|^2 / width^2), z the standardised state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RbfDoc {
    /// Centres in standardised coordinates, count x n.
    pub centres: MatrixDoc,
    /// Kernel width.
    pub width: f64,
}

/// The random Fourier observables cos(w_k . z + b_k), z the standardised state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FourierDoc {
    /// Weights, count x n.
    pub w: MatrixDoc,
    /// Phases, one per feature.
    pub b: Vec<f64>,
}

/// The dictionary: its spec, the observables' names, the standardisation and every
/// data-derived part of the lifting, so that a reader can lift a measured state without the
/// service. psi is, in order: the state z, the constant, the monomials (`poly_exponents`
/// covers these three), the RBFs, the Fourier features, then z(k-1), ..., z(k-delay).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DictionaryDoc {
    /// Canonical spec string.
    pub spec: String,
    /// Observable names in psi order.
    pub observables: Vec<String>,
    /// The standardisation, or null.
    pub standardisation: Option<StandardisationDoc>,
    /// Powers of the state, constant and monomial observables (null in documents written
    /// before the lifting was exported).
    #[serde(default)]
    pub poly_exponents: Option<ExponentsDoc>,
    /// The RBF observables (null without `rbf` and in older documents).
    #[serde(default)]
    pub rbf: Option<RbfDoc>,
    /// The Fourier observables (null without `fourier` and in older documents).
    #[serde(default)]
    pub fourier: Option<FourierDoc>,
    /// Number of delayed copies of the state, 0 without `delay` (null in older documents).
    #[serde(default)]
    pub delay: Option<u64>,
}

impl DictionaryDoc {
    /// The document of a lifting.
    pub fn of(lifting: &koopman::Lifting) -> Self {
        let n = lifting.n_states();
        let exponents = lifting.monomial_exponents();
        let (centres, width) = lifting.rbf_centres();
        let (w, b) = lifting.fourier_features();
        let rows_of = |data: &[f64]| data.len().checked_div(n).unwrap_or(0);
        Self {
            spec: lifting.spec().to_string(),
            observables: lifting.names().to_vec(),
            standardisation: lifting
                .standardisation()
                .map(|s| StandardisationDoc { mean: s.mean.clone(), scale: s.scale.clone() }),
            poly_exponents: Some(ExponentsDoc {
                rows: exponents.len().checked_div(n).unwrap_or(0),
                cols: n,
                data: exponents,
            }),
            rbf: lifting.spec().rbf.is_some().then(|| RbfDoc {
                centres: MatrixDoc { rows: rows_of(centres), cols: n, data: centres.to_vec() },
                width,
            }),
            fourier: lifting
                .spec()
                .fourier
                .is_some()
                .then(|| FourierDoc { w: MatrixDoc { rows: rows_of(w), cols: n, data: w.to_vec() }, b: b.to_vec() }),
            delay: Some(lifting.delays() as u64),
        }
    }
}

/// One eigenvalue of A, discrete and continuous.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EigenvalueDoc {
    /// Real part of the discrete eigenvalue.
    pub re: f64,
    /// Imaginary part of the discrete eigenvalue.
    pub im: f64,
    /// Real part of ln(lambda)/Ts (null near zero).
    pub continuous_re: Option<f64>,
    /// Imaginary part of ln(lambda)/Ts (null near zero).
    pub continuous_im: Option<f64>,
    /// Frequency in Hz (null near zero).
    pub frequency_hz: Option<f64>,
    /// Damping ratio (null near zero).
    pub damping_ratio: Option<f64>,
}

impl EigenvalueDoc {
    /// The reading of one discrete eigenvalue at sample time `ts`.
    pub fn of(lambda: c64, ts: f64) -> Self {
        let c = Continuous::of(lambda, ts);
        Self {
            re: lambda.re,
            im: lambda.im,
            continuous_re: c.map(|c| c.s.re),
            continuous_im: c.map(|c| c.s.im),
            frequency_hz: c.map(|c| c.frequency_hz),
            damping_ratio: c.map(|c| c.damping_ratio),
        }
    }
}

/// The model document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModelDoc {
    /// Always [`MODEL_FORMAT`].
    pub format: String,
    /// Sample time in seconds.
    pub ts: f64,
    /// Names of the state channels.
    pub state_channels: Vec<String>,
    /// Names of the input channels.
    pub input_channels: Vec<String>,
    /// Unit of each state channel, parallel to `state_channels` ("" when not given; absent
    /// in documents written before units were kept).
    #[serde(default)]
    pub state_units: Vec<String>,
    /// Unit of each input channel, parallel to `input_channels`.
    #[serde(default)]
    pub input_units: Vec<String>,
    /// The lifting.
    pub dictionary: DictionaryDoc,
    /// The estimation method configured (documents written before methods existed were
    /// all ridge).
    #[serde(default)]
    pub estimator: EstimatorDoc,
    /// The ridge parameter in use.
    pub mu: f64,
    /// Forgetting factor.
    pub forgetting: f64,
    /// Sliding window in pairs, or null.
    pub window: Option<usize>,
    /// Pairs weighing on the model.
    pub pairs: u64,
    /// N x N: z' = A z + B u.
    pub a: MatrixDoc,
    /// N x m.
    pub b: MatrixDoc,
    /// n x N: x = C z + c_offset, in data units.
    pub c: MatrixDoc,
    /// Offset of the read-out.
    pub c_offset: Vec<f64>,
    /// Eigenvalues of A.
    pub eigenvalues: Vec<EigenvalueDoc>,
    /// One-step residual RMS per state channel (null before the first update).
    pub residual_rms: Option<Vec<f64>>,
}

/// Why no document can be built yet.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelDocError {
    /// The estimator has no model (warming up or awaiting rank).
    #[error("no model yet ({0})")]
    NotReady(String),
    /// The eigen solver failed.
    #[error(transparent)]
    Numerical(#[from] koopman::NumericalError),
}

/// What a model document is made of, besides the linear model itself.
#[derive(Debug, Clone)]
pub struct ModelContext<'a> {
    /// Sample time in seconds.
    pub ts: f64,
    /// The estimator configuration (channel names, forgetting, window).
    pub config: &'a koopman::EstimatorConfig,
    /// The ridge parameter in use.
    pub mu: f64,
    /// Pairs weighing on the model.
    pub pairs: u64,
    /// One-step residual RMS per state channel.
    pub residual_rms: Option<Vec<f64>>,
}

impl ModelDoc {
    /// The document of a linear model with its eigenvalues.
    pub fn new(model: &LinearModel, eigenvalues: &[c64], context: ModelContext<'_>) -> Self {
        let lifting = model.lifting();
        Self {
            format: MODEL_FORMAT.to_owned(),
            ts: context.ts,
            state_channels: context.config.state_names.clone(),
            input_channels: context.config.input_names.clone(),
            state_units: vec![String::new(); context.config.state_names.len()],
            input_units: vec![String::new(); context.config.input_names.len()],
            dictionary: DictionaryDoc::of(lifting),
            estimator: StoredMethod::from(context.config.method).kind().into(),
            mu: context.mu,
            forgetting: context.config.forgetting,
            window: context.config.window,
            pairs: context.pairs,
            a: MatrixDoc::from_mat(model.a.as_ref()),
            b: MatrixDoc::from_mat(model.b.as_ref()),
            c: MatrixDoc::from_mat(model.c.as_ref()),
            c_offset: model.c_offset.clone(),
            eigenvalues: eigenvalues.iter().map(|l| EigenvalueDoc::of(*l, context.ts)).collect(),
            residual_rms: context.residual_rms,
        }
    }

    /// The document of the estimator's current model, at sample time `ts`.
    pub fn from_estimator(estimator: &Estimator, ts: f64) -> Result<Self, ModelDocError> {
        let model =
            estimator.linear_model().ok_or_else(|| ModelDocError::NotReady(format!("{:?}", estimator.progress())))?;
        // The same modal analysis the service publishes, so both list eigenvalues alike.
        let modes = spectrum::modes(model.a.as_ref(), model.c.as_ref(), ts)?;
        let eigenvalues: Vec<c64> = modes.iter().map(|m| m.eigenvalue).collect();
        let context = ModelContext {
            ts,
            config: estimator.config(),
            mu: estimator.mu().unwrap_or_default(),
            pairs: estimator.pairs_in_model(),
            residual_rms: estimator.residual_rms(),
        };
        Ok(Self::new(&model, &eigenvalues, context))
    }
}

impl ModelDoc {
    /// The same document with the channels' units (each list parallel to its channels; the
    /// estimator knows names only, the stream's definition knows units).
    pub fn with_units(mut self, state_units: Vec<String>, input_units: Vec<String>) -> Self {
        debug_assert_eq!(state_units.len(), self.state_channels.len());
        debug_assert_eq!(input_units.len(), self.input_channels.len());
        self.state_units = state_units;
        self.input_units = input_units;
        self
    }

    /// The document of a published model (computes its modes if no reader has yet).
    pub fn of_snapshot(snapshot: &ModelSnapshot) -> Result<Self, koopman::NumericalError> {
        let modes = snapshot.modes()?;
        let eigenvalues: Vec<koopman::c64> = modes.iter().map(|m| m.eigenvalue).collect();
        let context = ModelContext {
            ts: snapshot.ts,
            config: &snapshot.config,
            mu: snapshot.mu,
            pairs: snapshot.pairs,
            residual_rms: snapshot.residual_rms.clone(),
        };
        Ok(ModelDoc::new(&snapshot.model, &eigenvalues, context))
    }
}
