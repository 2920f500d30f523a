//! The JSON documents of models, modes and predictions as they travel (with their OpenAPI
//! schemas), and how a mode of the estimator becomes one. The protobuf twins of these
//! documents convert from and to them in `wire::model` and `wire::predict`.

use koopman::spectrum::{Mode, ModeEstimate};
use meter::{AlarmRecord, Reading, TrackedMode};
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
    /// Share in [0, 1] of the channels' recent signal this eigenvalue carries (null before
    /// the stream's first mode-meter refresh).
    pub energy: Option<f64>,
    /// 95 % confidence interval of the frequency in Hz.
    pub frequency_ci95: Option<[f64; 2]>,
    /// 95 % confidence interval of the damping ratio.
    pub damping_ci95: Option<[f64; 2]>,
    /// Whether the eigenvalue is that of A corrected for its small-sample least-squares
    /// bias (linear dictionaries without inputs; null before the first mode-meter refresh).
    /// /model's A is the uncorrected one, so its eigenvalues differ by that bias.
    pub bias_corrected: Option<bool>,
    /// The track it matched, if any.
    pub id: Option<u64>,
    /// Why it is not a physical mode (null: it is one): `conjugate_twin`, `near_zero`,
    /// `near_nyquist`, `negative_real`, `out_of_band`, `low_energy`, `not_persistent`, or
    /// `not_analysed` before the first refresh.
    pub reason: Option<String>,
}

/// A tracked physical mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrackedModeView {
    /// Stable across refreshes, never reused within a stream.
    pub id: u64,
    /// Frequency in Hz.
    pub frequency_hz: f64,
    /// Damping ratio.
    pub damping_ratio: f64,
    /// 95 % confidence interval of the frequency (null until residuals are known).
    pub frequency_ci95: Option<[f64; 2]>,
    /// 95 % confidence interval of the damping ratio.
    pub damping_ci95: Option<[f64; 2]>,
    /// Energy share of the conjugate pair, in [0, 1].
    pub energy: f64,
    /// Shape on the channels (largest entry 1).
    pub shape: Vec<ComplexValue>,
    /// Stream time it was first seen.
    pub first_seen_t: f64,
    /// Active alarm: null, `warning` or `critical`.
    pub alarm: Option<String>,
    /// Whether the latest refresh matched it (false while it is missing).
    pub current: bool,
}

/// `GET /v1/streams/{id}/modes`: the tracked physical modes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrackedModesResponse {
    /// Model version of the latest mode-meter refresh (null before the first).
    pub version: Option<u64>,
    /// Stream time of that model's newest sample.
    pub t: Option<f64>,
    /// Sample time.
    pub ts: f64,
    /// Channel names (the order of `shape`).
    pub channels: Vec<String>,
    /// The unit of each shape entry, parallel to `channels` ("" when not given).
    #[serde(default)]
    pub units: Vec<String>,
    /// Tracked physical modes, least damped first.
    pub modes: Vec<TrackedModeView>,
    /// Why the modes carry no confidence intervals (the correlation estimator); null when
    /// they do.
    #[serde(default)]
    pub intervals_unavailable: Option<String>,
}

/// `GET /v1/streams/{id}/modes?all=true`: every eigenvalue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ModesResponse {
    /// Model version.
    pub version: u64,
    /// Sample time.
    pub ts: f64,
    /// Channel names (the order of `shape` and `participation`).
    pub channels: Vec<String>,
    /// The unit of each shape entry, parallel to `channels` ("" when not given).
    #[serde(default)]
    pub units: Vec<String>,
    /// Modes, least damped first.
    pub modes: Vec<ModeView>,
    /// Why the modes carry no confidence intervals (the correlation estimator); null when
    /// they do.
    #[serde(default)]
    pub intervals_unavailable: Option<String>,
}

/// A damping reading at an alarm's onset or clearing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReadingView {
    /// Frequency in Hz.
    pub frequency_hz: f64,
    /// Damping ratio.
    pub damping_ratio: f64,
    /// 95 % interval of the frequency.
    pub frequency_ci95: [f64; 2],
    /// 95 % interval of the damping ratio.
    pub damping_ci95: [f64; 2],
}

/// One alarm of a tracked mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlarmView {
    /// The tracked mode's id.
    pub mode: u64,
    /// `warning` or `critical`.
    pub severity: String,
    /// Stream time it was raised.
    pub since_t: f64,
    /// The reading then.
    pub onset: ReadingView,
    /// Stream time it cleared or changed severity (null while active).
    pub until_t: Option<f64>,
    /// The reading then.
    pub clearing: Option<ReadingView>,
}

/// `GET /v1/streams/{id}/alarms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AlarmsResponse {
    /// Model version of the latest mode-meter refresh (null before the first).
    pub version: Option<u64>,
    /// Stream time of that model's newest sample.
    pub t: Option<f64>,
    /// Active alarms.
    pub active: Vec<AlarmView>,
    /// Every alarm kept, oldest first (at most 256).
    pub history: Vec<AlarmView>,
}

/// The JSON form of a damping reading.
pub fn reading_view(r: &Reading) -> ReadingView {
    ReadingView {
        frequency_hz: r.frequency_hz,
        damping_ratio: r.damping_ratio,
        frequency_ci95: [r.frequency_ci95.0, r.frequency_ci95.1],
        damping_ci95: [r.damping_ci95.0, r.damping_ci95.1],
    }
}

/// The JSON form of an alarm record.
pub fn alarm_view(a: &AlarmRecord) -> AlarmView {
    AlarmView {
        mode: a.mode,
        severity: a.severity.as_str().to_owned(),
        since_t: a.since_t,
        onset: reading_view(&a.onset),
        until_t: a.until_t,
        clearing: a.clearing.as_ref().map(reading_view),
    }
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
    #[serde(deserialize_with = "crate::integral::required")]
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
/// The JSON form of one analysed eigenvalue with its meter verdict.
pub fn estimate_view(estimate: &ModeEstimate, id: Option<u64>, reason: Option<&str>) -> ModeView {
    ModeView {
        energy: Some(estimate.energy),
        frequency_ci95: estimate.frequency_ci95.map(|(a, b)| [a, b]),
        damping_ci95: estimate.damping_ci95.map(|(a, b)| [a, b]),
        bias_corrected: Some(estimate.bias_corrected),
        id,
        reason: reason.map(str::to_owned),
        ..mode_view(&estimate.mode)
    }
}

/// The JSON form of a tracked physical mode.
pub fn tracked_view(mode: &TrackedMode) -> TrackedModeView {
    TrackedModeView {
        id: mode.id,
        frequency_hz: mode.frequency_hz,
        damping_ratio: mode.damping_ratio,
        frequency_ci95: mode.frequency_ci95.map(|(a, b)| [a, b]),
        damping_ci95: mode.damping_ci95.map(|(a, b)| [a, b]),
        energy: mode.energy,
        shape: mode.shape.iter().map(|v| ComplexValue { re: v.re, im: v.im }).collect(),
        first_seen_t: mode.first_seen_t,
        alarm: mode.alarm.map(|a| a.as_str().to_owned()),
        current: mode.current,
    }
}

/// The JSON form of one mode not analysed by the meter yet.
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
        energy: None,
        frequency_ci95: None,
        damping_ci95: None,
        bias_corrected: None,
        id: None,
        reason: Some("not_analysed".to_owned()),
    }
}
