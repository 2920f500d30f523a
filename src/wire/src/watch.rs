//! The documents a watcher reads (the dashboard, or any read-only client): the last
//! measured samples of a stream and the recent course of its tracked modes.

use domain::recent::RecentRows;
use domain::trend::{TrendMode, TrendPoint};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /v1/streams/{id}/recent`: the newest measured samples, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RecentResponse {
    /// State channel names (the columns of `x`).
    pub channels: Vec<String>,
    /// The unit of each channel (empty when none was given).
    pub units: Vec<String>,
    /// Time stamps in seconds.
    pub t: Vec<f64>,
    /// Measured states, one row per time stamp; a missing value is null.
    pub x: Vec<Vec<Option<f64>>>,
}

impl RecentResponse {
    /// The document of rows read from a stream's ring.
    pub fn new(channels: Vec<String>, units: Vec<String>, rows: RecentRows) -> Self {
        let x = rows.x.into_iter().map(|row| row.into_iter().map(|v| v.is_finite().then_some(v)).collect()).collect();
        Self { channels, units, t: rows.t, x }
    }
}

/// One tracked mode at one refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrendModeView {
    /// The tracked mode's id (as in `/modes`).
    pub id: u64,
    /// Frequency in Hz.
    pub frequency_hz: f64,
    /// Damping ratio.
    pub damping_ratio: f64,
    /// 95 % interval of the frequency (null without intervals).
    pub frequency_ci95: Option<[f64; 2]>,
    /// 95 % interval of the damping ratio.
    pub damping_ci95: Option<[f64; 2]>,
    /// Energy share of the conjugate pair, in [0, 1].
    pub energy: f64,
}

/// The modes one mode-meter refresh matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrendPointView {
    /// Model version analysed.
    pub version: u64,
    /// Stream time of that model's newest sample.
    pub t: f64,
    /// The tracked modes it matched.
    pub modes: Vec<TrendModeView>,
}

/// `GET /v1/streams/{id}/modes/trend`: the last refreshes (at most 360), oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrendResponse {
    /// The refreshes.
    pub points: Vec<TrendPointView>,
}

fn pair(p: Option<(f64, f64)>) -> Option<[f64; 2]> {
    p.map(|(a, b)| [a, b])
}

impl From<&TrendMode> for TrendModeView {
    fn from(m: &TrendMode) -> Self {
        Self {
            id: m.id,
            frequency_hz: m.frequency_hz,
            damping_ratio: m.damping_ratio,
            frequency_ci95: pair(m.frequency_ci95),
            damping_ci95: pair(m.damping_ci95),
            energy: m.energy,
        }
    }
}

impl From<&TrendPoint> for TrendPointView {
    fn from(p: &TrendPoint) -> Self {
        Self { version: p.version, t: p.t, modes: p.modes.iter().map(TrendModeView::from).collect() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_measurements_travel_as_null() {
        let rows = RecentRows { t: vec![1.0, 2.0], x: vec![vec![0.5, f64::NAN], vec![1.5, 2.5]] };
        let doc = RecentResponse::new(vec!["a".into(), "b".into()], vec!["V".into(), String::new()], rows);
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["x"], serde_json::json!([[0.5, null], [1.5, 2.5]]));
        assert_eq!(json["units"], serde_json::json!(["V", ""]));
    }
}
