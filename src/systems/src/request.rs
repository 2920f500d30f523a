//! What to simulate: the system and its parameters, sampling, seed, initial state and
//! measurement model, with per-system defaults and name parsing for command lines.

use crate::error::SystemsError;
use crate::ieee68::{AngleReference, Ieee68Scenario};
use crate::measurement::MeasurementModel;
use crate::pmu_error::PmuMeasurement;

/// Parameters of the single Van der Pol oscillator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VanDerPolParams {
    /// Nonlinear damping mu (default 1).
    pub mu: f64,
}

impl Default for VanDerPolParams {
    fn default() -> Self {
        Self { mu: 1.0 }
    }
}

/// Parameters of the ring of Van der Pol oscillators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VdpRingParams {
    /// Number of oscillators n >= 3 (default 10; 2n states).
    pub n: usize,
    /// Nonlinear damping mu of every oscillator (default 1).
    pub mu: f64,
    /// Diffusive position coupling c (default 0.2).
    pub coupling: f64,
    /// Detuning delta: w_i = 1 + delta · U[−1, 1], seeded (default 0: identical oscillators).
    pub detuning: f64,
}

impl Default for VdpRingParams {
    fn default() -> Self {
        Self { n: 10, mu: 1.0, coupling: 0.2, detuning: 0.0 }
    }
}

/// Parameters of the Hénon map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HenonParams {
    /// a (default 1.4).
    pub a: f64,
    /// b (default 0.3).
    pub b: f64,
    /// Iterates discarded before recording (default 100).
    pub transient: usize,
}

impl Default for HenonParams {
    fn default() -> Self {
        Self { a: 1.4, b: 0.3, transient: 100 }
    }
}

/// A change of every machine's damping coefficient D_i.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DampingChange {
    /// D_i is multiplied by this (default 1: the published data).
    pub scale: f64,
    /// From this time on (s); `None`: from the start.
    pub at: Option<f64>,
}

impl Default for DampingChange {
    fn default() -> Self {
        Self { scale: 1.0, at: None }
    }
}

/// Parameters of the IEEE 68-bus system.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Ieee68Params {
    /// Fault ring-down (default) or ambient load noise.
    pub scenario: Ieee68Scenario,
    /// Reference of the recorded angles (default: absolute, i.e. the model state).
    pub angle_reference: AngleReference,
    /// Machine damping (default: as published).
    pub damping: DampingChange,
}

/// A test system with its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SystemSpec {
    /// `vdp`: single Van der Pol oscillator.
    VanDerPol(VanDerPolParams),
    /// `vdp-ring`: ring of coupled Van der Pol oscillators.
    VdpRing(VdpRingParams),
    /// `henon`: Hénon map.
    Henon(HenonParams),
    /// `ieee68`: 68-bus, 16-machine power system.
    Ieee68(Ieee68Params),
}

impl SystemSpec {
    /// The system called `system` (`vdp`, `vdp-ring`, `henon`, `ieee68`) with default
    /// parameters; `scenario` (`fault`, `ambient`) is only accepted for `ieee68`.
    pub fn from_name(system: &str, scenario: Option<&str>) -> Result<Self, SystemsError> {
        let spec = match system {
            "vdp" => Self::VanDerPol(VanDerPolParams::default()),
            "vdp-ring" => Self::VdpRing(VdpRingParams::default()),
            "henon" => Self::Henon(HenonParams::default()),
            "ieee68" => Self::Ieee68(Ieee68Params {
                scenario: match scenario {
                    Some(name) => Ieee68Scenario::from_name(name)?,
                    None => Ieee68Scenario::default(),
                },
                angle_reference: AngleReference::default(),
                damping: DampingChange::default(),
            }),
            _ => {
                return Err(SystemsError::UnknownName { what: "system", name: system.to_owned() });
            }
        };
        if scenario.is_some() && !matches!(spec, Self::Ieee68(_)) {
            return Err(SystemsError::InvalidParameter {
                name: "scenario",
                reason: format!("only the ieee68 system has scenarios, not `{system}`"),
            });
        }
        Ok(spec)
    }

    /// The command-line name of the system.
    pub fn name(&self) -> &'static str {
        match self {
            Self::VanDerPol(_) => "vdp",
            Self::VdpRing(_) => "vdp-ring",
            Self::Henon(_) => "henon",
            Self::Ieee68(_) => "ieee68",
        }
    }

    /// Default record length: 30 s for the oscillators, 20 s for ieee68, 1000 iterates
    /// for the Hénon map.
    pub fn default_duration(&self) -> f64 {
        match self {
            Self::VanDerPol(_) | Self::VdpRing(_) => 30.0,
            Self::Henon(_) => 1000.0,
            Self::Ieee68(_) => 20.0,
        }
    }

    /// Default sampling rate: 10 Hz for the oscillators, 60 frames/s (PMU) for ieee68,
    /// 1 per iterate for the Hénon map.
    pub fn default_rate(&self) -> f64 {
        match self {
            Self::VanDerPol(_) | Self::VdpRing(_) => 10.0,
            Self::Henon(_) => 1.0,
            Self::Ieee68(_) => 60.0,
        }
    }

    /// Default internal RK4 step: 0.01 s for the oscillators, 1/240 s for ieee68 (an
    /// exact divisor of the 30 and 60 frames/s periods); unused by the Hénon map.
    pub fn default_integration_step(&self) -> f64 {
        match self {
            Self::Ieee68(_) => 1.0 / 240.0,
            _ => 0.01,
        }
    }
}

/// A complete, reproducible simulation request. Unset options take the system's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationRequest {
    /// Which system, with its parameters.
    pub system: SystemSpec,
    /// Record length in s (Hénon: number of recorded iterates).
    pub duration: Option<f64>,
    /// Sampling rate in Hz (ignored by the Hénon map, which records every iterate).
    pub rate_hz: Option<f64>,
    /// Internal RK4 step in s.
    pub integration_step: Option<f64>,
    /// Seed of every random draw (initial state, detuning, process and measurement noise).
    pub seed: u64,
    /// Initial state in the system's state order; default: seeded random state
    /// (oscillators, Hénon) or the pre-fault operating point (ieee68).
    pub initial_state: Option<Vec<f64>>,
    /// Measurement model applied to the clean record (default: clean); with PMU
    /// measurements it acts on the PMU columns, after the PMU errors.
    pub measurement: MeasurementModel,
    /// ieee68 only: record PMU quantities at buses instead of the machine states
    /// (default: `None`, the states).
    pub pmu: Option<PmuMeasurement>,
}

impl SimulationRequest {
    /// A request for `system` with all defaults and seed 0.
    pub fn new(system: SystemSpec) -> Self {
        Self {
            system,
            duration: None,
            rate_hz: None,
            integration_step: None,
            seed: 0,
            initial_state: None,
            measurement: MeasurementModel::clean(),
            pmu: None,
        }
    }

    /// Sets the record length.
    pub fn with_duration(mut self, duration: f64) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Sets the sampling rate.
    pub fn with_rate(mut self, rate_hz: f64) -> Self {
        self.rate_hz = Some(rate_hz);
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the measurement model.
    pub fn with_measurement(mut self, measurement: MeasurementModel) -> Self {
        self.measurement = measurement;
        self
    }

    /// Records PMU quantities (ieee68 only) instead of the machine states.
    pub fn with_pmu(mut self, pmu: PmuMeasurement) -> Self {
        self.pmu = Some(pmu);
        self
    }

    /// Sets the initial state.
    pub fn with_initial_state(mut self, state: Vec<f64>) -> Self {
        self.initial_state = Some(state);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_to_systems() {
        for name in ["vdp", "vdp-ring", "henon", "ieee68"] {
            assert_eq!(SystemSpec::from_name(name, None).unwrap().name(), name);
        }
        let ambient = SystemSpec::from_name("ieee68", Some("ambient")).unwrap();
        assert!(matches!(ambient, SystemSpec::Ieee68(Ieee68Params { scenario: Ieee68Scenario::Ambient(_), .. })));
        assert!(SystemSpec::from_name("lorenz", None).is_err());
        assert!(SystemSpec::from_name("ieee68", Some("blackout")).is_err());
        assert!(SystemSpec::from_name("vdp", Some("fault")).is_err());
    }
}
