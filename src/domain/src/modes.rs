//! A stream's mode meter: its settings as a definition carries them (validated once, with
//! every default filled in), and the meter's state shared between the spectra worker that
//! refreshes it and the readers of `/modes` and `/alarms`.

use std::sync::{Arc, Mutex, MutexGuard};

use koopman::spectrum::ModeEstimate;
use meter::{AlarmRecord, AlarmSettings, Meter, MeterSettings, TrackedMode, Verdict};
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::trend::{ModeTrend, TrendPoint};

/// Most physical modes a stream may ask to be reported.
pub const MAX_TRACKED_MODES: usize = 64;
/// Longest alarm hold time, in seconds (one day).
pub const MAX_HOLD_S: f64 = 86_400.0;

/// Alarm thresholds as requested: every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmRequest {
    /// Warning threshold on the damping ratio (default 0.05).
    pub warning: Option<f64>,
    /// Critical threshold (default 0.03).
    pub critical: Option<f64>,
    /// Hold time in seconds (default 30).
    pub hold_s: Option<f64>,
    /// Clearing margin (default 0.01).
    pub clear_margin: Option<f64>,
}

/// The `modes` object of a create request: every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModeMeterRequest {
    /// Band of physical modes in Hz (default: above 0 and at most 0.4 of the sample rate).
    pub band_hz: Option<Vec<f64>>,
    /// Most physical modes reported (default 8).
    pub max: Option<usize>,
    /// Least energy share of a mode (default 0.005).
    pub min_energy: Option<f64>,
    /// Alarm thresholds.
    pub alarm: Option<AlarmRequest>,
}

/// Alarm thresholds of a definition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlarmConfig {
    /// Warning threshold on the damping ratio.
    pub warning: f64,
    /// Critical threshold.
    pub critical: f64,
    /// Hold time in seconds.
    pub hold_s: f64,
    /// Clearing margin.
    pub clear_margin: f64,
}

/// The mode meter of a definition, defaults filled in. Definitions stored before the
/// meter existed read back with the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModeMeterConfig {
    /// Band of physical modes in Hz.
    pub band_hz: [f64; 2],
    /// Most physical modes reported.
    pub max: usize,
    /// Least energy share of a mode.
    pub min_energy: f64,
    /// Alarm thresholds.
    pub alarm: AlarmConfig,
}

impl ModeMeterConfig {
    /// The defaults at sample time `ts`.
    pub fn defaults(ts: f64) -> Self {
        let meter = MeterSettings::default();
        let alarm = AlarmSettings::default();
        Self {
            band_hz: [0.0, 0.4 / ts],
            max: meter.max,
            min_energy: meter.min_energy,
            alarm: AlarmConfig {
                warning: alarm.warning,
                critical: alarm.critical,
                hold_s: alarm.hold_s,
                clear_margin: alarm.clear_margin,
            },
        }
    }

    /// Parses a request at sample time `ts` (validated, so `ts` is positive and finite).
    pub fn from_request(request: Option<ModeMeterRequest>, ts: f64) -> Result<Self, DomainError> {
        let defaults = Self::defaults(ts);
        let Some(request) = request else { return Ok(defaults) };
        let invalid = |field: &str, why: String| {
            DomainError::invalid(format!("field `modes.{field}`: {why}"))
                .at(format!("/modes/{}", field.replace('.', "/")))
        };
        let nyquist = 0.5 / ts;
        let band_hz = match request.band_hz {
            None => defaults.band_hz,
            Some(band) => {
                let &[low, high] = band.as_slice() else {
                    return Err(invalid("band_hz", format!("has {} values; it takes two, [low, high]", band.len())));
                };
                if !(low.is_finite() && high.is_finite() && low >= 0.0 && low < high && high <= nyquist) {
                    return Err(invalid(
                        "band_hz",
                        format!("[{low}, {high}] must satisfy 0 <= low < high <= {nyquist} Hz (the Nyquist frequency)"),
                    ));
                }
                [low, high]
            }
        };
        let max = request.max.unwrap_or(defaults.max);
        if !(1..=MAX_TRACKED_MODES).contains(&max) {
            return Err(invalid("max", format!("{max} must be 1 to {MAX_TRACKED_MODES}")));
        }
        let min_energy = request.min_energy.unwrap_or(defaults.min_energy);
        if !(0.0..=1.0).contains(&min_energy) {
            return Err(invalid("min_energy", format!("{min_energy} must be in [0, 1]")));
        }
        let a = request.alarm.unwrap_or_default();
        let alarm = AlarmConfig {
            warning: a.warning.unwrap_or(defaults.alarm.warning),
            critical: a.critical.unwrap_or(defaults.alarm.critical),
            hold_s: a.hold_s.unwrap_or(defaults.alarm.hold_s),
            clear_margin: a.clear_margin.unwrap_or(defaults.alarm.clear_margin),
        };
        if !(alarm.warning > 0.0 && alarm.warning < 1.0) {
            return Err(invalid("alarm.warning", format!("{} must be in (0, 1)", alarm.warning)));
        }
        if !(alarm.critical > 0.0 && alarm.critical <= alarm.warning) {
            return Err(invalid(
                "alarm.critical",
                format!("{} must be positive and at most the warning threshold {}", alarm.critical, alarm.warning),
            ));
        }
        if !(0.0..=MAX_HOLD_S).contains(&alarm.hold_s) {
            return Err(invalid("alarm.hold_s", format!("{} must be 0 to {MAX_HOLD_S} seconds", alarm.hold_s)));
        }
        if !(0.0..1.0).contains(&alarm.clear_margin) {
            return Err(invalid("alarm.clear_margin", format!("{} must be in [0, 1)", alarm.clear_margin)));
        }
        Ok(Self { band_hz, max, min_energy, alarm })
    }

    /// The meter's settings.
    pub fn settings(&self) -> MeterSettings {
        MeterSettings {
            band_hz: Some((self.band_hz[0], self.band_hz[1])),
            max: self.max,
            min_energy: self.min_energy,
            alarm: AlarmSettings {
                warning: self.alarm.warning,
                critical: self.alarm.critical,
                hold_s: self.alarm.hold_s,
                clear_margin: self.alarm.clear_margin,
            },
            ..MeterSettings::default()
        }
    }
}

/// What the latest refresh of a stream's meter left for readers (immutable, shared).
#[derive(Debug, Clone)]
pub struct MeterView {
    /// Version of the model analysed.
    pub version: u64,
    /// Stream time of its newest sample.
    pub t: f64,
    /// Every eigenvalue analysed, least damped first.
    pub analysed: Arc<Vec<ModeEstimate>>,
    /// One verdict per analysed eigenvalue, with its track.
    pub verdicts: Vec<(Verdict, Option<u64>)>,
    /// Ids of the tracks that are physical modes.
    pub born: Vec<u64>,
    /// The physical modes, least damped first.
    pub physical: Vec<TrackedMode>,
    /// The active alarms.
    pub active_alarms: Vec<AlarmRecord>,
    /// The alarm history, oldest first (bounded).
    pub history: Vec<AlarmRecord>,
}

impl MeterView {
    /// The view of `meter` after a refresh of model `version` at stream time `t`.
    pub fn of(
        meter: &Meter,
        version: u64,
        t: f64,
        analysed: Arc<Vec<ModeEstimate>>,
        verdicts: Vec<(Verdict, Option<u64>)>,
    ) -> Self {
        Self {
            version,
            t,
            analysed,
            verdicts,
            born: meter.tracks.iter().filter(|track| track.born).map(|track| track.id).collect(),
            physical: meter.physical(),
            active_alarms: meter.active_alarms(),
            history: meter.history.iter().cloned().collect(),
        }
    }

    /// Why an analysed eigenvalue is not a physical mode (None: it is one).
    pub fn reason(&self, index: usize) -> Option<&'static str> {
        match self.verdicts.get(index)? {
            (Verdict::Candidate, Some(id)) if self.born.contains(id) => None,
            (Verdict::Candidate, _) => Some("not_persistent"),
            (verdict, _) => Some(verdict.as_str()),
        }
    }
}

/// A stream's meter and the view of its latest refresh.
pub struct MeterCell {
    meter: Mutex<Meter>,
    view: Mutex<Option<Arc<MeterView>>>,
    trend: Mutex<ModeTrend>,
}

impl MeterCell {
    /// A meter with the definition's settings and no tracks.
    pub fn new(config: &ModeMeterConfig) -> Self {
        Self {
            meter: Mutex::new(Meter::new(config.settings())),
            view: Mutex::new(None),
            trend: Mutex::new(ModeTrend::default()),
        }
    }

    /// A meter continued from a snapshot (with the definition's settings), its tracks and
    /// alarms readable at once; `version` is the stream version of the snapshot.
    pub fn restore(config: &ModeMeterConfig, mut meter: Meter, version: u64) -> Self {
        meter.settings = config.settings();
        let view = MeterView::of(&meter, version, meter.last_t.unwrap_or(0.0), Arc::new(Vec::new()), Vec::new());
        Self {
            meter: Mutex::new(meter),
            view: Mutex::new(Some(Arc::new(view))),
            trend: Mutex::new(ModeTrend::default()),
        }
    }

    /// The meter, for the refresh (held only by the spectra worker, never across an await).
    pub fn meter(&self) -> MutexGuard<'_, Meter> {
        self.meter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the view of a refresh.
    pub fn publish(&self, view: MeterView) {
        self.trend.lock().unwrap_or_else(|e| e.into_inner()).record(view.version, view.t, &view.physical);
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(view));
    }

    /// The tracked modes of the refreshes after stream time `after`, oldest first.
    pub fn trend(&self, after: Option<f64>) -> Vec<TrendPoint> {
        self.trend.lock().unwrap_or_else(|e| e.into_inner()).since(after)
    }

    /// The view of the latest refresh (None before the first).
    pub fn view(&self) -> Option<Arc<MeterView>> {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_sample_rate_and_requests_are_checked() {
        let c = ModeMeterConfig::from_request(None, 1.0 / 30.0).unwrap();
        assert!((c.band_hz[1] - 12.0).abs() < 1e-12);
        assert_eq!(c.alarm.warning, 0.05);
        let bad = |r: ModeMeterRequest| ModeMeterConfig::from_request(Some(r), 0.1).unwrap_err().detail().to_owned();
        assert!(
            bad(ModeMeterRequest { band_hz: Some(vec![0.5, 0.1]), ..Default::default() }).contains("modes.band_hz")
        );
        assert!(bad(ModeMeterRequest { band_hz: Some(vec![0.1, 6.0]), ..Default::default() }).contains("Nyquist"));
        let three = bad(ModeMeterRequest { band_hz: Some(vec![0.1, 0.2, 0.3]), ..Default::default() });
        assert!(three.contains("modes.band_hz") && three.contains("has 3 values"), "{three}");
        assert!(bad(ModeMeterRequest { max: Some(0), ..Default::default() }).contains("modes.max"));
        let alarm = AlarmRequest { warning: Some(0.02), critical: Some(0.03), ..Default::default() };
        assert!(bad(ModeMeterRequest { alarm: Some(alarm), ..Default::default() }).contains("modes.alarm.critical"));
        let alarm = AlarmRequest { hold_s: Some(-1.0), ..Default::default() };
        assert!(bad(ModeMeterRequest { alarm: Some(alarm), ..Default::default() }).contains("modes.alarm.hold_s"));
        let ok = ModeMeterRequest { band_hz: Some(vec![0.1, 0.9]), max: Some(4), ..Default::default() };
        let c = ModeMeterConfig::from_request(Some(ok), 1.0 / 30.0).unwrap();
        assert_eq!((c.band_hz, c.max), ([0.1, 0.9], 4));
    }
}
