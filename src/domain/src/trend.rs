//! The recent course of a stream's tracked modes: frequency, damping and their intervals
//! at each mode-meter refresh, in a bounded ring, so a dashboard opened now can draw the
//! last hour instead of starting blank. Written by the spectra worker after each refresh,
//! read by copying; not durable (it starts empty after a restart).

use std::collections::VecDeque;

use meter::TrackedMode;

/// Refreshes kept: at the default cadence (300 samples at 30 samples/s) an hour.
pub const TREND_POINTS: usize = 360;

/// One tracked mode at one refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendMode {
    /// The track's id.
    pub id: u64,
    /// Frequency in Hz.
    pub frequency_hz: f64,
    /// Damping ratio.
    pub damping_ratio: f64,
    /// 95 % interval of the frequency.
    pub frequency_ci95: Option<(f64, f64)>,
    /// 95 % interval of the damping ratio.
    pub damping_ci95: Option<(f64, f64)>,
    /// Energy share of the pair.
    pub energy: f64,
}

/// The tracked modes the refresh of one model version matched.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// Model version analysed.
    pub version: u64,
    /// Stream time of its newest sample.
    pub t: f64,
    /// The modes matched in that refresh (a mode missing from it is absent).
    pub modes: Vec<TrendMode>,
}

/// The ring of the last [`TREND_POINTS`] refreshes.
#[derive(Debug, Default)]
pub struct ModeTrend {
    points: VecDeque<TrendPoint>,
}

impl ModeTrend {
    /// Bytes a stream reporting at most `max_modes` modes may hold here.
    pub fn bytes(max_modes: usize) -> u64 {
        let point = std::mem::size_of::<TrendPoint>() + max_modes * std::mem::size_of::<TrendMode>();
        (TREND_POINTS * point) as u64
    }

    /// Records a refresh's physical modes (only those it matched).
    pub fn record(&mut self, version: u64, t: f64, physical: &[TrackedMode]) {
        if self.points.len() == TREND_POINTS {
            self.points.pop_front();
        }
        let modes = physical
            .iter()
            .filter(|m| m.current)
            .map(|m| TrendMode {
                id: m.id,
                frequency_hz: m.frequency_hz,
                damping_ratio: m.damping_ratio,
                frequency_ci95: m.frequency_ci95,
                damping_ci95: m.damping_ci95,
                energy: m.energy,
            })
            .collect();
        self.points.push_back(TrendPoint { version, t, modes });
    }

    /// The refreshes after stream time `after` (all of them when `None`), oldest first.
    pub fn since(&self, after: Option<f64>) -> Vec<TrendPoint> {
        self.points.iter().filter(|p| after.is_none_or(|a| p.t > a)).cloned().collect()
    }

    /// Forgets every refresh (the stream's model restarted).
    pub fn clear(&mut self) {
        self.points.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(id: u64, current: bool) -> TrackedMode {
        TrackedMode {
            id,
            frequency_hz: 0.5,
            damping_ratio: 0.05,
            frequency_ci95: Some((0.49, 0.51)),
            damping_ci95: None,
            energy: 0.3,
            shape: vec![],
            first_seen_t: 0.0,
            alarm: None,
            current,
        }
    }

    #[test]
    fn the_ring_is_bounded_keeps_matched_modes_and_filters_by_time() {
        let mut trend = ModeTrend::default();
        for k in 0..TREND_POINTS + 5 {
            trend.record(k as u64, k as f64, &[mode(1, true), mode(2, false)]);
        }
        let all = trend.since(None);
        assert_eq!(all.len(), TREND_POINTS);
        assert_eq!(all[0].t, 5.0);
        assert!(all.iter().all(|p| p.modes.len() == 1 && p.modes[0].id == 1));
        let later = trend.since(Some((TREND_POINTS + 2) as f64));
        assert_eq!(later.iter().map(|p| p.version).collect::<Vec<_>>(), vec![363, 364]);
        trend.clear();
        assert!(trend.since(None).is_empty());
    }
}
