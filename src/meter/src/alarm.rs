//! Damping alarms and change events of one tracked mode.
//!
//! A mode enters `warning` (`critical`) when the upper end of its damping interval stays
//! below the threshold for `hold_s`: the meter is then 97.5 % sure the damping is below
//! it. It steps down when the lower end stays above the threshold plus `clear_margin` for
//! `hold_s`. Without an interval (no residuals yet) the point estimate stands for both
//! ends. A change event fires when the frequency or the damping leaves the interval it had
//! at the last reference point and stays out for `hold_s`; the reference then moves to the
//! new reading.

use crate::settings::AlarmSettings;

/// Alarm severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Damping below the warning threshold.
    Warning,
    /// Damping below the critical threshold.
    Critical,
}

impl Severity {
    /// Stable name for documents and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// A damping reading: the estimate and its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// Frequency in Hz.
    pub frequency_hz: f64,
    /// Damping ratio.
    pub damping_ratio: f64,
    /// 95 % interval of the frequency.
    pub frequency_ci95: (f64, f64),
    /// 95 % interval of the damping ratio.
    pub damping_ci95: (f64, f64),
}

/// An alarm's life, kept in the meter's bounded history.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRecord {
    /// The tracked mode.
    pub mode: u64,
    /// Severity.
    pub severity: Severity,
    /// Stream time it was raised.
    pub since_t: f64,
    /// The reading when it was raised.
    pub onset: Reading,
    /// Stream time it cleared or changed severity (None while active).
    pub until_t: Option<f64>,
    /// The reading then.
    pub clearing: Option<Reading>,
}

/// What an alarm detector reports.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmEvent {
    /// The mode's alarm changed from `from` to `to` (None: no alarm).
    Alarm {
        /// Mode id.
        mode: u64,
        /// Before.
        from: Option<Severity>,
        /// After.
        to: Option<Severity>,
        /// Stream time.
        t: f64,
        /// The reading.
        reading: Reading,
    },
    /// The mode's frequency or damping left its reference interval and stayed out.
    Changed {
        /// Mode id.
        mode: u64,
        /// Stream time.
        t: f64,
        /// The reference reading before.
        before: Reading,
        /// The reading now.
        after: Reading,
    },
}

/// The alarm and change detectors of one mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Detector {
    /// The active alarm.
    pub active: Option<Severity>,
    /// A different level that has held since the given time.
    pub pending: Option<(Option<Severity>, f64)>,
    /// The change detector's reference.
    pub reference: Option<Reading>,
    /// Since when the reading has been outside the reference interval.
    pub outside_since: Option<f64>,
}

impl Detector {
    /// A detector with no alarm and no reference.
    pub fn new() -> Self {
        Self { active: None, pending: None, reference: None, outside_since: None }
    }

    /// Takes one reading of mode `mode` at stream time `t`.
    pub fn observe(&mut self, mode: u64, t: f64, reading: Reading, settings: &AlarmSettings) -> Vec<AlarmEvent> {
        let mut events = Vec::new();
        let (lo, hi) = reading.damping_ci95;
        let raise = if hi < settings.critical {
            Some(Severity::Critical)
        } else if hi < settings.warning {
            Some(Severity::Warning)
        } else {
            None
        };
        let keep = if lo <= settings.critical + settings.clear_margin {
            Some(Severity::Critical)
        } else if lo <= settings.warning + settings.clear_margin {
            Some(Severity::Warning)
        } else {
            None
        };
        let desired = if raise > self.active {
            raise
        } else if keep < self.active {
            keep.max(raise)
        } else {
            self.active
        };
        if desired == self.active {
            self.pending = None;
        } else {
            match self.pending {
                Some((level, since)) if level == desired => {
                    if t - since >= settings.hold_s {
                        events.push(AlarmEvent::Alarm { mode, from: self.active, to: desired, t, reading });
                        self.active = desired;
                        self.pending = None;
                    }
                }
                _ => self.pending = Some((desired, t)),
            }
        }
        match self.reference {
            None => self.reference = Some(reading),
            Some(reference) => {
                let inside = |x: f64, (a, b): (f64, f64)| a <= x && x <= b;
                if inside(reading.frequency_hz, reference.frequency_ci95)
                    && inside(reading.damping_ratio, reference.damping_ci95)
                {
                    self.outside_since = None;
                } else {
                    let since = *self.outside_since.get_or_insert(t);
                    if t - since >= settings.hold_s {
                        events.push(AlarmEvent::Changed { mode, t, before: reference, after: reading });
                        self.reference = Some(reading);
                        self.outside_since = None;
                    }
                }
            }
        }
        events
    }
}

impl Default for Detector {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(zeta: f64, half_width: f64) -> Reading {
        Reading {
            frequency_hz: 0.4,
            damping_ratio: zeta,
            frequency_ci95: (0.39, 0.41),
            damping_ci95: (zeta - half_width, zeta + half_width),
        }
    }

    fn run(detector: &mut Detector, from_t: f64, to_t: f64, zeta: f64, hw: f64) -> Vec<AlarmEvent> {
        let settings = AlarmSettings::default();
        let mut events = Vec::new();
        let mut t = from_t;
        while t <= to_t {
            events.extend(detector.observe(7, t, reading(zeta, hw), &settings));
            t += 5.0;
        }
        events
    }

    #[test]
    fn an_alarm_needs_the_whole_interval_below_for_the_hold_time() {
        let mut d = Detector::new();
        // 4 % with a +-2 % interval: the upper end (6 %) is not below 5 %: no alarm.
        assert!(run(&mut d, 0.0, 100.0, 0.04, 0.02).iter().all(|e| !matches!(e, AlarmEvent::Alarm { .. })));
        assert_eq!(d.active, None);
        // 2 % +- 0.5 %: critical after the 30 s hold, not before.
        let events = run(&mut d, 105.0, 130.0, 0.02, 0.005);
        assert!(events.iter().all(|e| !matches!(e, AlarmEvent::Alarm { .. })), "{events:?}");
        let events = run(&mut d, 135.0, 140.0, 0.02, 0.005);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, AlarmEvent::Alarm { to: Some(Severity::Critical), t, .. } if *t == 135.0))
        );
        assert_eq!(d.active, Some(Severity::Critical));
        // Back to 10 % +- 1 %: lower end 9 % > 5 % + 1 %: clears after the hold.
        let events = run(&mut d, 145.0, 200.0, 0.10, 0.01);
        let alarms: Vec<_> = events.iter().filter(|e| matches!(e, AlarmEvent::Alarm { .. })).collect();
        assert_eq!(alarms.len(), 1, "{alarms:?}");
        assert!(
            matches!(alarms[0], AlarmEvent::Alarm { from: Some(Severity::Critical), to: None, t, .. } if *t == 175.0)
        );
        // The damping moved far outside its reference interval and stayed: a change event.
        assert!(events.iter().any(|e| matches!(e, AlarmEvent::Changed { .. })));
    }

    #[test]
    fn a_level_that_does_not_hold_raises_nothing() {
        let mut d = Detector::new();
        let settings = AlarmSettings::default();
        for k in 0..40 {
            // Alternates between 2 % and 8 % every refresh: never 30 s below a threshold.
            let zeta = if k % 2 == 0 { 0.02 } else { 0.08 };
            let events = d.observe(1, k as f64 * 5.0, reading(zeta, 0.005), &settings);
            assert!(events.iter().all(|e| !matches!(e, AlarmEvent::Alarm { .. })));
        }
    }
}
