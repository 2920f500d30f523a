//! The JSON documents of models, modes and predictions as they travel (with their OpenAPI
//! schemas), and how a mode of the estimator becomes one. The protobuf twins of these
//! documents convert from and to them in `wire::model` and `wire::predict`.

use koopman::spectrum::Mode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A complex number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ComplexValue {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

/// Ambiguity flags of an eigenvalue.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModeFlagsView {
    /// Real and negative (on the Nyquist frequency).
    pub negative_real: bool,
    /// Magnitude near zero (no continuous reading).
    pub near_zero: bool,
    /// Phase near +-pi (aliasing possible).
    pub near_nyquist: bool,
}

/// One mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModeView {
    /// Discrete eigenvalue.
    pub eigenvalue: ComplexValue,
    /// ln(lambda) / Ts, absent near zero.
    pub continuous: Option<ComplexValue>,
    /// Frequency in Hz.
    pub frequency_hz: Option<f64>,
    /// Damping ratio.
    pub damping_ratio: Option<f64>,
    /// Time constant in seconds (decaying modes).
    pub time_constant_s: Option<f64>,
    /// Whether any flag is set.
    pub ambiguous: bool,
    /// Ambiguity flags.
    pub flags: ModeFlagsView,
    /// Shape on the channels (C times the right eigenvector; largest entry 1).
    pub shape: Vec<ComplexValue>,
    /// Participation of each channel (sums to 1).
    pub participation: Vec<f64>,
}

/// `GET /v1/streams/{id}/modes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModesResponse {
    /// Model version.
    pub version: u64,
    /// Sample time.
    pub ts: f64,
    /// Channel names (the order of `shape` and `participation`).
    pub channels: Vec<String>,
    /// Modes, least damped first.
    pub modes: Vec<ModeView>,
}

/// How to iterate a prediction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PredictMode {
    /// Iterate A in lifted space.
    #[default]
    Linear,
    /// Read the state back and lift it again each step.
    Relift,
}

/// Where a prediction starts, if not from the latest state.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictStart {
    /// Recent states, oldest first (as many as the dictionary's delays need, at least one).
    pub x: Vec<Vec<f64>>,
    /// Time of the newest of them (default 0).
    pub t: Option<f64>,
}

/// `POST /v1/streams/{id}/predict`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    /// Steps ahead.
    pub horizon: usize,
    /// Linear (default) or relift.
    #[serde(default)]
    pub mode: PredictMode,
    /// Start (default: the stream's latest states).
    pub start: Option<PredictStart>,
    /// Future inputs, one row per step (required when the stream has inputs).
    pub u: Option<Vec<Vec<f64>>>,
}

/// A predicted trajectory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PredictResponse {
    /// Model version used.
    pub version: u64,
    /// Channel names (columns of `x`).
    pub channels: Vec<String>,
    /// Time of each predicted state.
    pub t: Vec<f64>,
    /// Predicted states, one row per step.
    pub x: Vec<Vec<f64>>,
}

/// The published model, or 409 with the stream's progress.
/// The JSON form of one mode.
pub fn mode_view(mode: &Mode) -> ModeView {
    let c = mode.continuous;
    ModeView {
        eigenvalue: ComplexValue { re: mode.eigenvalue.re, im: mode.eigenvalue.im },
        continuous: c.map(|c| ComplexValue { re: c.s.re, im: c.s.im }),
        frequency_hz: c.map(|c| c.frequency_hz),
        damping_ratio: c.map(|c| c.damping_ratio),
        time_constant_s: c.and_then(|c| c.time_constant_s),
        ambiguous: mode.flags.ambiguous(),
        flags: ModeFlagsView {
            negative_real: mode.flags.negative_real,
            near_zero: mode.flags.near_zero,
            near_nyquist: mode.flags.near_nyquist,
        },
        shape: mode.shape.iter().map(|v| ComplexValue { re: v.re, im: v.im }).collect(),
        participation: mode.participation.clone(),
    }
}
