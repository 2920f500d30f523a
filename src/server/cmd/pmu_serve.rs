//! `koopstream pmu-serve`: simulates a system with the options of `simulate` and serves the
//! record as an IEEE C37.118.2 PMU (one PMU per bus for `--measure pmu`) until Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};

use super::CommandError;
use crate::pmu_cli::{MeasureKind, PmuArgs, PmuErrorArgs};
use crate::pmu_serve::{Encoding, FrameSource, FramesError, ServeConfig, ServeError};
use crate::simulate_cli::{ScenarioName, SimulateArgs, SimulateError, SystemName, simulation_request};

/// At most this many simulated values are kept (8 bytes each: 128 MiB).
pub const MAX_RECORD_VALUES: u64 = 1 << 24;

/// The systems `pmu-serve` can serve (those with a sampling rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServedSystem {
    /// Van der Pol oscillator: analogs x1, x2.
    Vdp,
    /// Ring of 10 Van der Pol oscillators: analogs x1..x20.
    VdpRing,
    /// IEEE 68-bus system: machine states as analogs, or with `--measure pmu` one PMU per bus.
    Ieee68,
}

impl ServedSystem {
    fn system(self) -> SystemName {
        match self {
            ServedSystem::Vdp => SystemName::Vdp,
            ServedSystem::VdpRing => SystemName::VdpRing,
            ServedSystem::Ieee68 => SystemName::Ieee68,
        }
    }
}

/// Float or 16-bit integer values in data frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValueFormat {
    /// IEEE 754 single precision.
    Float,
    /// 16-bit integers scaled by PHUNIT / ANUNIT (10 V per bit; analogs see the README).
    Integer,
}

/// How phasors are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Coordinates {
    /// Magnitude and angle.
    Polar,
    /// Real and imaginary parts.
    Rectangular,
}

/// Options of `koopstream pmu-serve`.
#[derive(Debug, Args)]
pub struct PmuServeArgs {
    /// Which system.
    #[arg(long, value_enum)]
    pub system: ServedSystem,
    /// IEEE 68-bus scenario (default: fault).
    #[arg(long, value_enum)]
    pub scenario: Option<ScenarioName>,
    /// IEEE 68-bus: serve the machine states as analogs, or one PMU per bus.
    #[arg(long, value_enum, default_value = "states")]
    pub measure: MeasureKind,
    /// PMU buses, comma-separated (default: 1,2,8,9,27,29,36,40,41,42,50,52).
    #[arg(long)]
    pub buses: Option<String>,
    /// Data frames per second (DATA_RATE), also the simulation's sampling rate.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u16).range(1..=240))]
    pub rate: u16,
    /// TCP address to listen on.
    #[arg(long, default_value = "127.0.0.1:4712")]
    pub listen: SocketAddr,
    /// IDCODE of the stream (the PDC, or the single PMU of an analog stream).
    #[arg(long, default_value_t = 7)]
    pub idcode: u16,
    /// Float or integer values.
    #[arg(long, value_enum, default_value = "float")]
    pub format: ValueFormat,
    /// Polar or rectangular phasors.
    #[arg(long, value_enum, default_value = "polar")]
    pub coordinates: Coordinates,
    /// Also listen for commands on this UDP address and send frames to the latest sender
    /// (default: TCP only).
    #[arg(long)]
    pub udp: Option<SocketAddr>,
    /// TCP/UDP mode: send TCP clients' data frames as UDP datagrams to this address
    /// (commands, configuration and header stay on TCP; default: data over TCP).
    #[arg(long)]
    pub udp_data: Option<SocketAddr>,
    /// Pace: 1 = real time, 2 = twice as fast (0.001 to 1000), 0 = as fast as each client reads.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Length of the simulated record in seconds (data stops at its end).
    #[arg(long, default_value_t = 600.0)]
    pub duration: f64,
    /// Seed of the simulation (the same record as `simulate --seed`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Probability that a value is lost (STAT data error and NaN in its PMU's block).
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f64,
    /// PMU error budget (with --measure pmu).
    #[command(flatten)]
    pub pmu_errors: PmuErrorArgs,
    /// At most this many TCP clients at a time.
    #[arg(long, default_value_t = 8)]
    pub max_clients: usize,
}

/// Why `pmu-serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum PmuServeError {
    /// The simulation options are invalid or the simulation failed.
    #[error(transparent)]
    Simulate(#[from] SimulateError),
    /// The record cannot be made into frames.
    #[error(transparent)]
    Frames(#[from] FramesError),
    /// Serving failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The record would be too large to keep.
    #[error(
        "{values} values are more than the {MAX_RECORD_VALUES} pmu-serve keeps: shorten --duration, lower --rate or use fewer --buses"
    )]
    TooLarge {
        /// Values asked for.
        values: u64,
    },
    /// An option out of its range.
    #[error("{0}")]
    Option(String),
}

impl PmuServeArgs {
    /// The options of `simulate` that give the record this command serves: PMU records
    /// always carry all four quantities of every bus.
    pub fn simulate_args(&self) -> SimulateArgs {
        let pmu = self.measure == MeasureKind::Pmu;
        SimulateArgs {
            system: self.system.system(),
            scenario: self.scenario,
            duration: Some(self.duration),
            rate: Some(f64::from(self.rate)),
            sigma: None,
            snr: None,
            dropout: self.dropout,
            outliers: 0.0,
            jitter: 0.0,
            damping_scale: None,
            damping_change_at: None,
            seed: self.seed,
            pmu: PmuArgs {
                measure: self.measure,
                buses: self.buses.clone(),
                quantities: pmu.then(|| "vm,va,f,rocof".to_owned()),
                reference_bus: None,
            },
            pmu_errors: self.pmu_errors.clone(),
            output: None,
        }
    }

    /// Simulates the record and builds its frames, time-stamped from `start_soc`.
    pub fn source(&self, start_soc: u32) -> Result<FrameSource, PmuServeError> {
        if !(self.duration.is_finite() && self.duration > 0.0) {
            return Err(PmuServeError::Option(format!("--duration must be positive, not {}", self.duration)));
        }
        let args = self.simulate_args();
        let columns = match (self.system, args.pmu.layout(args.system)?) {
            (_, Some(layout)) => layout.channels().len(),
            (ServedSystem::Ieee68, None) => 32,
            (ServedSystem::VdpRing, None) => 20,
            (ServedSystem::Vdp, None) => 2,
        };
        let rows = (self.duration * f64::from(self.rate)).floor() + 1.0;
        let values = (rows * columns as f64).min(u64::MAX as f64) as u64;
        if values > MAX_RECORD_VALUES {
            return Err(PmuServeError::TooLarge { values });
        }
        let record = systems::simulate(&simulation_request(&args)?).map_err(SimulateError::from)?;
        let station = self.system.system().as_str().to_uppercase();
        let description = format!(
            "{} simulated by koopstream ({}{}, seed {}, {} s)",
            self.system.system().as_str(),
            match self.measure {
                MeasureKind::Pmu => "PMU measurements",
                MeasureKind::States => "states",
            },
            self.scenario.map_or(String::new(), |s| format!(", scenario {}", scenario_name(s))),
            self.seed,
            self.duration
        );
        let encoding =
            Encoding { float: self.format == ValueFormat::Float, polar: self.coordinates == Coordinates::Polar };
        Ok(FrameSource::new(record, self.rate, self.idcode, &station, encoding, start_soc, &description)?)
    }

    /// What `run` serves, with time stamps from the next whole second.
    pub fn serve_config(&self) -> Result<ServeConfig, PmuServeError> {
        crate::pmu_serve::check_speed(self.speed)?;
        if self.max_clients == 0 {
            return Err(PmuServeError::Option("--max-clients must be at least 1".into()));
        }
        // Simulated first: the time stamps start after however long that takes.
        let mut source = self.source(0)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let start = u32::try_from(now + 1).map_err(|_| PmuServeError::Option("the clock is past 2106".into()))?;
        source.set_start(start);
        Ok(ServeConfig {
            source: Arc::new(source),
            speed: self.speed,
            max_sessions: self.max_clients,
            udp_data: self.udp_data,
        })
    }
}

fn scenario_name(s: ScenarioName) -> &'static str {
    match s {
        ScenarioName::Fault => "fault",
        ScenarioName::Ambient => "ambient",
    }
}

/// Simulates, then serves until Ctrl-C (or SIGTERM).
pub fn run(args: &PmuServeArgs) -> Result<(), CommandError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let config = args.serve_config()?;
    super::runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|source| CommandError::Listen { address: args.listen, source })?;
        let udp = match args.udp {
            Some(address) => Some(
                tokio::net::UdpSocket::bind(address)
                    .await
                    .map_err(|source| CommandError::Listen { address, source })?,
            ),
            None => None,
        };
        crate::pmu_serve::run(listener, udp, config, super::serve::shutdown_signal())
            .await
            .map_err(PmuServeError::from)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{Cli, Command};
    use clap::Parser;

    fn args(options: &[&str]) -> PmuServeArgs {
        let line = ["koopstream", "pmu-serve"].iter().chain(options).copied();
        match Cli::try_parse_from(line).unwrap().command {
            Some(Command::PmuServe(args)) => args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pmu_records_carry_every_quantity_and_states_none() {
        let pmu = args(&["--system", "ieee68", "--measure", "pmu", "--buses", "1,2"]).simulate_args();
        assert_eq!(pmu.pmu.quantities.as_deref(), Some("vm,va,f,rocof"));
        assert_eq!((pmu.rate, pmu.duration), (Some(30.0), Some(600.0)));
        let states = args(&["--system", "vdp"]).simulate_args();
        assert_eq!(states.pmu.quantities, None);
    }

    #[test]
    fn oversized_records_and_bad_options_are_refused_before_simulating() {
        let huge = args(&["--system", "ieee68", "--measure", "pmu", "--rate", "240", "--duration", "100000"]);
        assert!(matches!(huge.source(0), Err(PmuServeError::TooLarge { .. })));
        assert!(args(&["--system", "vdp", "--duration", "0"]).source(0).is_err());
        assert!(args(&["--system", "vdp", "--buses", "1"]).source(0).is_err(), "buses need --measure pmu");
        assert!(args(&["--system", "vdp", "--speed=-1"]).serve_config().is_err());
        assert!(Cli::try_parse_from(["koopstream", "pmu-serve", "--system", "vdp", "--rate", "0"]).is_err());
    }
}
