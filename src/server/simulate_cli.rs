//! `koopstream simulate` and `koopstream truth`: the test systems as CSV files, and their
//! ground truth as JSON.

use std::io::Write;
use std::path::PathBuf;

use crate::pmu_cli::{PmuArgs, PmuErrorArgs, ShapeEntry, measurement, shape_entries};
use clap::{Args, ValueEnum};
use serde::Serialize;
use systems::{
    DampingChange, MeasurementModel, Network, NoiseLevel, Outliers, SimulationRequest, SpikeSize, SystemSpec,
    SystemsError, simulate,
};

/// The simulated systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SystemName {
    /// Van der Pol oscillator (mu = 1).
    Vdp,
    /// Ring of 10 coupled Van der Pol oscillators.
    VdpRing,
    /// Henon map (a = 1.4, b = 0.3).
    Henon,
    /// IEEE 68-bus, 16-machine power system (classical model).
    Ieee68,
}

impl SystemName {
    /// The system's command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            SystemName::Vdp => "vdp",
            SystemName::VdpRing => "vdp-ring",
            SystemName::Henon => "henon",
            SystemName::Ieee68 => "ieee68",
        }
    }
}

/// IEEE 68-bus scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioName {
    /// Three-phase fault at bus 29, cleared by opening line 28-29 (ring-down).
    Fault,
    /// Random load fluctuations around the operating point.
    Ambient,
}

/// Options of `koopstream simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Which system.
    #[arg(long, value_enum)]
    pub system: SystemName,
    /// IEEE 68-bus scenario.
    #[arg(long, value_enum)]
    pub scenario: Option<ScenarioName>,
    /// Duration in seconds (iterates for the Henon map).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Sampling rate in Hz.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measurement noise standard deviation (all channels).
    #[arg(long, conflicts_with = "snr")]
    pub sigma: Option<f64>,
    /// Measurement noise as signal-to-noise ratio in dB per channel.
    #[arg(long)]
    pub snr: Option<f64>,
    /// Probability that a value is lost (written as NaN).
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// Probability of an outlier spike of 10 channel standard deviations.
    #[arg(long, default_value_t = 0.0)]
    pub outliers: f64,
    /// Standard deviation of time-stamp jitter in seconds.
    #[arg(long, default_value_t = 0.0)]
    pub jitter: f64,
    /// IEEE 68-bus: multiply every machine's damping coefficient by this (1: as published).
    #[arg(long)]
    pub damping_scale: Option<f64>,
    /// IEEE 68-bus: apply --damping-scale from this time (s) on instead of from the start.
    #[arg(long, requires = "damping_scale")]
    pub damping_change_at: Option<f64>,
    /// Seed of the initial state, process noise and measurement noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// PMU placement and quantities (`--measure pmu`).
    #[command(flatten)]
    pub pmu: PmuArgs,
    /// PMU error budget.
    #[command(flatten)]
    pub pmu_errors: PmuErrorArgs,
    /// Write the CSV here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Options of `koopstream truth`.
#[derive(Debug, Args)]
pub struct TruthArgs {
    /// Which system (vdp, henon or ieee68).
    #[arg(long, value_enum)]
    pub system: SystemName,
    /// IEEE 68-bus network: before the fault or after line 28-29 is opened.
    #[arg(long, default_value = "pre", value_parser = ["pre", "post"])]
    pub network: String,
    /// Van der Pol parameter.
    #[arg(long, default_value_t = 1.0)]
    pub mu: f64,
    /// IEEE 68-bus: the modes with every machine's damping coefficient multiplied by this.
    #[arg(long, default_value_t = 1.0)]
    pub damping_scale: f64,
    /// IEEE 68-bus: with `--measure pmu`, each mode also gets its shape in the PMU
    /// quantities (`pmu_shape`).
    #[command(flatten)]
    pub pmu: PmuArgs,
}

/// Why a simulation or truth request failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The simulator refused the request.
    #[error(transparent)]
    Systems(#[from] SystemsError),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
    /// Serialising the truth failed.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A command-line option that does not fit the others.
    #[error("{option} {reason}")]
    Option {
        /// The option, as typed.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The system has no ground truth of that kind.
    #[error("no ground truth for `{0}` (use vdp, henon or ieee68)")]
    NoTruth(&'static str),
}

/// Runs a simulation and writes its CSV to `out`.
pub fn run_simulate(args: &SimulateArgs, out: &mut dyn Write) -> Result<(), SimulateError> {
    let trajectory = simulate(&simulation_request(args)?)?;
    trajectory.write_csv(out)?;
    Ok(())
}

/// The simulator's request for the options of `simulate` (also what `pmu-serve` serves,
/// so both give the same record for the same options).
pub fn simulation_request(args: &SimulateArgs) -> Result<SimulationRequest, SimulateError> {
    let scenario = args.scenario.map(|s| match s {
        ScenarioName::Fault => "fault",
        ScenarioName::Ambient => "ambient",
    });
    let mut spec = SystemSpec::from_name(args.system.as_str(), scenario)?;
    if let Some(scale) = args.damping_scale {
        let SystemSpec::Ieee68(params) = &mut spec else {
            return Err(SimulateError::Systems(SystemsError::InvalidParameter {
                name: "damping_scale",
                reason: format!("only the ieee68 system has machine damping, not `{}`", args.system.as_str()),
            }));
        };
        params.damping = DampingChange { scale, at: args.damping_change_at };
    }
    let pmu = measurement(args.system, &args.pmu, &args.pmu_errors)?;
    let mut request = SimulationRequest::new(spec).with_seed(args.seed);
    if let Some(pmu) = pmu {
        request = request.with_pmu(pmu);
    }
    if let Some(d) = args.duration {
        request = request.with_duration(d);
    }
    if let Some(r) = args.rate {
        request = request.with_rate(r);
    }
    let noise = match (args.sigma, args.snr) {
        (Some(s), _) => Some(NoiseLevel::Sigma(s)),
        (None, Some(db)) => Some(NoiseLevel::SnrDb(db)),
        (None, None) => None,
    };
    let outliers =
        (args.outliers > 0.0).then_some(Outliers { probability: args.outliers, size: SpikeSize::ChannelStds(10.0) });
    request = request.with_measurement(MeasurementModel {
        noise,
        outliers,
        dropout_probability: args.dropout,
        timestamp_jitter: args.jitter,
    });
    Ok(request)
}

#[derive(Serialize)]
struct ModeTruth {
    frequency_hz: f64,
    damping_ratio: f64,
    re: f64,
    im: f64,
    /// Only with `--measure pmu`, so the document is unchanged without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pmu_shape: Option<Vec<ShapeEntry>>,
}

impl ModeTruth {
    fn new(m: systems::truth::Mode, pmu_shape: Option<Vec<ShapeEntry>>) -> Self {
        Self { frequency_hz: m.frequency_hz, damping_ratio: m.damping_ratio, re: m.re, im: m.im, pmu_shape }
    }
}

#[derive(Serialize)]
struct LimitCycleTruth {
    mu: f64,
    period_s: f64,
    frequency_rad_per_s: f64,
    floquet_exponent_per_s: f64,
    amplitude: f64,
}

#[derive(Serialize)]
struct HenonTruth {
    a: f64,
    b: f64,
    jacobian_determinant: f64,
    lyapunov_exponent: f64,
    x_range: [f64; 2],
    y_range: [f64; 2],
}

/// The ground truth of a system as JSON.
pub fn run_truth(args: &TruthArgs) -> Result<String, SimulateError> {
    if args.system != SystemName::Ieee68 {
        // Refuses PMU options on the other systems, whose truth has no buses.
        args.pmu.layout(args.system)?;
    }
    let json = match args.system {
        SystemName::Ieee68 => {
            let network = Network::from_name(&args.network)?;
            let modes: Vec<ModeTruth> = match args.pmu.layout(args.system)? {
                None => systems::truth::ieee68_linearisation_scaled(network, args.damping_scale)?
                    .modes
                    .into_iter()
                    .map(|m| ModeTruth::new(m, None))
                    .collect(),
                Some(layout) => systems::truth::ieee68_pmu_mode_shapes(network, args.damping_scale, &layout)?
                    .into_iter()
                    .map(|s| ModeTruth::new(s.mode, Some(shape_entries(&s.shape))))
                    .collect(),
            };
            serde_json::to_string_pretty(&modes)?
        }
        SystemName::Vdp => {
            let cycle = systems::truth::vdp_limit_cycle(args.mu)?;
            serde_json::to_string_pretty(&LimitCycleTruth {
                mu: args.mu,
                period_s: cycle.period,
                frequency_rad_per_s: std::f64::consts::TAU / cycle.period,
                floquet_exponent_per_s: cycle.floquet_exponent,
                amplitude: cycle.amplitude,
            })?
        }
        SystemName::Henon => {
            let params = systems::HenonParams::default();
            let attractor = systems::truth::henon_attractor(&params)?;
            serde_json::to_string_pretty(&HenonTruth {
                a: params.a,
                b: params.b,
                jacobian_determinant: attractor.jacobian_determinant,
                lyapunov_exponent: attractor.lyapunov_exponent,
                x_range: [attractor.x_range.0, attractor.x_range.1],
                y_range: [attractor.y_range.0, attractor.y_range.1],
            })?
        }
        SystemName::VdpRing => return Err(SimulateError::NoTruth("vdp-ring")),
    };
    Ok(json)
}
