//! What a stream's mode meter is configured with, and the defaults.

/// Alarm thresholds on the damping ratio (fractions, 0.05 = 5 %).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlarmSettings {
    /// A mode whose damping interval lies wholly below this for `hold_s` is in warning.
    pub warning: f64,
    /// ... and below this, critical.
    pub critical: f64,
    /// How long a condition must hold before the alarm changes, in seconds.
    pub hold_s: f64,
    /// An alarm clears when the interval's lower end stays above threshold + this margin.
    pub clear_margin: f64,
}

impl Default for AlarmSettings {
    /// 5 % warning and 3 % critical: the damping levels oscillation-monitoring practice
    /// commonly treats as "watch" and "act" for electromechanical modes; a 30 s hold (a few
    /// periods of the slowest inter-area modes, several refreshes); a one-point margin.
    fn default() -> Self {
        Self { warning: 0.05, critical: 0.03, hold_s: 30.0, clear_margin: 0.01 }
    }
}

/// The mode meter of one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterSettings {
    /// Frequency band of physical modes in Hz (exclusive low end, inclusive high end);
    /// `None`: above 0 and at most 0.4 of the sample rate.
    pub band_hz: Option<(f64, f64)>,
    /// Most physical modes reported (the least damped first).
    pub max: usize,
    /// Least energy share of a conjugate pair for a candidate.
    pub min_energy: f64,
    /// Consecutive refreshes a track must be seen before it is a physical mode.
    pub persist: u32,
    /// Consecutive refreshes without a match after which a track dies.
    pub miss: u32,
    /// Largest relative distance |s - s_track| / |s_track| of an assignment.
    pub max_distance: f64,
    /// Least shape MAC of an assignment.
    pub min_mac: f64,
    /// Alarm thresholds.
    pub alarm: AlarmSettings,
}

impl Default for MeterSettings {
    fn default() -> Self {
        Self {
            band_hz: None,
            max: 8,
            min_energy: 0.005,
            persist: 3,
            miss: 3,
            max_distance: 0.2,
            min_mac: 0.5,
            alarm: AlarmSettings::default(),
        }
    }
}

impl MeterSettings {
    /// The band in effect at sample time `ts`.
    pub fn band(&self, ts: f64) -> (f64, f64) {
        self.band_hz.unwrap_or((0.0, 0.4 / ts))
    }
}
