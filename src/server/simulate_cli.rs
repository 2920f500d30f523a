//! `koopstream simulate` and `koopstream truth`: the test systems as CSV files, and the
//! options of their ground truth (the document is `crate::truth`).

use std::io::Write;
use std::path::PathBuf;

use crate::pmu_cli::{PmuArgs, PmuErrorArgs, measurement};
/// The truth's document, built in `crate::truth`.
pub use crate::truth::run_truth;
use clap::{Args, ValueEnum};
use systems::{
    DampingChange, MeasurementModel, NoiseLevel, Outliers, SimulationRequest, SpikeSize, SystemSpec, SystemsError,
    simulate,
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
    /// IEEE 68-bus scenario (default: fault).
    #[arg(long, value_enum)]
    pub scenario: Option<ScenarioName>,
    /// Duration in seconds, iterates for the Henon map (default: 30 s for vdp and
    /// vdp-ring, 20 s for ieee68, 1000 iterates for henon).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Sampling rate in Hz (default: 10 Hz for vdp and vdp-ring, 60 Hz for ieee68; the
    /// Henon map records every iterate).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measurement noise standard deviation, all channels (default: no noise).
    #[arg(long, conflicts_with = "snr")]
    pub sigma: Option<f64>,
    /// Measurement noise as signal-to-noise ratio in dB per channel (default: no noise).
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
    /// IEEE 68-bus: multiply every machine's damping coefficient by this (default 1: as
    /// published).
    #[arg(long)]
    pub damping_scale: Option<f64>,
    /// IEEE 68-bus: apply --damping-scale from this time (s) on (default: from the start).
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
    /// Write the CSV here (default: standard output).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// The systems with a ground truth (none is computed for the ring of oscillators: which of
/// its coupled oscillations a record settles into depends on the initial state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TruthSystem {
    /// Van der Pol oscillator: the limit cycle (period, its frequency as a mode, Floquet
    /// exponent, amplitude).
    Vdp,
    /// Henon map: Jacobian determinant, Lyapunov exponent, attractor extent (a chaotic map
    /// has no oscillatory modes).
    Henon,
    /// IEEE 68-bus system: the oscillatory modes of its linearisation, the four inter-area
    /// modes marked.
    Ieee68,
}

impl TruthSystem {
    /// The same system among the simulated ones.
    pub fn system(self) -> SystemName {
        match self {
            TruthSystem::Vdp => SystemName::Vdp,
            TruthSystem::Henon => SystemName::Henon,
            TruthSystem::Ieee68 => SystemName::Ieee68,
        }
    }
}

/// Options of `koopstream truth`.
#[derive(Debug, Args)]
pub struct TruthArgs {
    /// Which system.
    #[arg(long, value_enum)]
    pub system: TruthSystem,
    /// IEEE 68-bus network: before the fault (pre) or after line 28-29 is opened (post);
    /// default pre. Refused for the other systems.
    #[arg(long, value_parser = ["pre", "post"])]
    pub network: Option<String>,
    /// Van der Pol parameter (default 1). Refused for the other systems.
    #[arg(long)]
    pub mu: Option<f64>,
    /// IEEE 68-bus: the modes with every machine's damping coefficient multiplied by this
    /// (default 1). Refused for the other systems.
    #[arg(long)]
    pub damping_scale: Option<f64>,
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
