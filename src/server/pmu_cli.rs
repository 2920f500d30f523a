//! The PMU options of `koopstream simulate` and `koopstream truth` (`--measure pmu`,
//! buses, quantities, reference bus, C37.118.1 error budget), turned into the simulator's
//! `PmuMeasurement`, and the PMU mode shapes of the truth document.

use clap::{Args, ValueEnum};
use serde::Serialize;
use systems::{PmuErrors, PmuLayout, PmuMeasurement, PmuQuantity, ieee68::parse_bus_list};

use crate::simulate_cli::{SimulateError, SystemName};

/// What a 68-bus record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MeasureKind {
    /// The 32 machine states (rotor angles and speeds).
    States,
    /// PMU quantities at buses: voltage magnitude and angle, frequency, ROCOF.
    Pmu,
}

/// Whether the PMUs have measurement errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// The C37.118.1 budget (--tve, --fe, --rfe).
    On,
    /// Error-free PMUs.
    Off,
}

/// Where the PMUs are and what they report (shared by `simulate` and `truth`).
#[derive(Debug, Clone, Args)]
pub struct PmuArgs {
    /// IEEE 68-bus: record the machine states (default) or PMU quantities at buses.
    #[arg(long, value_enum, default_value = "states")]
    pub measure: MeasureKind,
    /// PMU buses, comma-separated bus numbers of the data files (default:
    /// 1,2,8,9,27,29,36,40,41,42,50,52).
    #[arg(long)]
    pub buses: Option<String>,
    /// PMU quantities per bus, comma-separated from vm, va, f, rocof (default: vm,va,f).
    #[arg(long)]
    pub quantities: Option<String>,
    /// Voltage angles are relative to this bus (default 65: G13's terminal, angle 0 in the
    /// power flow); its own angle column is omitted.
    #[arg(long)]
    pub reference_bus: Option<usize>,
}

/// The PMU error budget of `simulate` (IEEE C37.118.1 steady-state limits by default).
#[derive(Debug, Clone, Args)]
pub struct PmuErrorArgs {
    /// PMU total vector error budget as a fraction, met by 99 % of phasors (default 0.01).
    #[arg(long)]
    pub tve: Option<f64>,
    /// PMU frequency error limit in Hz, met by 99 % of samples (default 0.005).
    #[arg(long)]
    pub fe: Option<f64>,
    /// PMU ROCOF error limit in Hz/s, met by 99 % of samples (default 0.01).
    #[arg(long)]
    pub rfe: Option<f64>,
    /// PMU measurement errors on or off (default on; off: clean PMUs, --snr/--sigma still apply).
    #[arg(long, value_enum, conflicts_with_all = ["tve", "fe", "rfe"])]
    pub pmu_noise: Option<OnOff>,
}

impl PmuArgs {
    /// The PMU layout, or `None` for machine states; refuses PMU options without
    /// `--measure pmu` and PMUs on systems other than ieee68.
    pub fn layout(&self, system: SystemName) -> Result<Option<PmuLayout>, SimulateError> {
        if self.measure == MeasureKind::States {
            for (given, option) in [
                (self.buses.is_some(), "--buses"),
                (self.quantities.is_some(), "--quantities"),
                (self.reference_bus.is_some(), "--reference-bus"),
            ] {
                if given {
                    return Err(SimulateError::Option { option, reason: "needs --measure pmu".into() });
                }
            }
            return Ok(None);
        }
        if system != SystemName::Ieee68 {
            return Err(SimulateError::Option {
                option: "--measure pmu",
                reason: format!("needs --system ieee68 (PMUs measure bus voltages), not `{}`", system.as_str()),
            });
        }
        let mut layout = PmuLayout::default();
        if let Some(list) = &self.buses {
            layout.buses = parse_bus_list(list)?;
        }
        if let Some(list) = &self.quantities {
            layout.quantities = PmuQuantity::parse_list(list)?;
        }
        if let Some(bus) = self.reference_bus {
            layout.reference_bus = bus;
        }
        layout.validate()?;
        Ok(Some(layout))
    }
}

impl PmuErrorArgs {
    /// The error budget; refuses budgets without PMU measurements.
    pub fn errors(&self, pmu: bool) -> Result<PmuErrors, SimulateError> {
        let given = [
            (self.tve.is_some(), "--tve"),
            (self.fe.is_some(), "--fe"),
            (self.rfe.is_some(), "--rfe"),
            (self.pmu_noise.is_some(), "--pmu-noise"),
        ];
        if !pmu && let Some((_, option)) = given.iter().find(|(g, _)| *g) {
            return Err(SimulateError::Option { option, reason: "needs --measure pmu".into() });
        }
        if self.pmu_noise == Some(OnOff::Off) {
            return Ok(PmuErrors::none());
        }
        let default = PmuErrors::default();
        let errors = PmuErrors {
            tve: self.tve.unwrap_or(default.tve),
            fe: self.fe.unwrap_or(default.fe),
            rfe: self.rfe.unwrap_or(default.rfe),
        };
        errors.validate()?;
        Ok(errors)
    }
}

/// The PMU measurement of `simulate`, or `None` for machine states.
pub fn measurement(
    system: SystemName,
    pmu: &PmuArgs,
    errors: &PmuErrorArgs,
) -> Result<Option<PmuMeasurement>, SimulateError> {
    let layout = pmu.layout(system)?;
    let errors = errors.errors(layout.is_some())?;
    Ok(layout.map(|layout| PmuMeasurement { layout, errors }))
}

/// One entry of a mode's shape in the PMU quantities.
#[derive(Debug, Serialize)]
pub struct ShapeEntry {
    /// The record's column, e.g. `b41_va`.
    channel: String,
    re: f64,
    im: f64,
    magnitude: f64,
    angle_deg: f64,
}

/// The entries of a shape as they appear in the truth document.
pub fn shape_entries(shape: &[(String, systems::truth::Complex<f64>)]) -> Vec<ShapeEntry> {
    shape
        .iter()
        .map(|(channel, c)| ShapeEntry {
            channel: channel.clone(),
            re: c.re,
            im: c.im,
            magnitude: c.norm(),
            angle_deg: c.arg().to_degrees(),
        })
        .collect()
}
