//! `koopstream demo`: streams a simulated noisy system into a server over WebSocket and
//! shows the tracked modes (id, frequency, damping with its interval, energy, alarm)
//! against the truth, live in the terminal from the first refresh on, with the alarms as
//! they are raised; the final table matches the same tracked modes to the truth.

use std::time::Duration;

use clap::{Args, ValueEnum};
use experiments::pmu_ambient::layout as pmu_layout;
use koopman::c64;
use koopman::spectrum::{Continuous, Mode, ModeFlags};
use serde_json::{Value, json};
use systems::{
    AngleReference, DampingChange, Ieee68Params, Ieee68Scenario, MeasurementModel, Network, NoiseLevel, PmuErrors,
    PmuMeasurement, SimulationRequest, SystemSpec,
};

use crate::client::{Client, ClientError, ServerArgs, next_message, send_batch};
use crate::config::ServiceConfig;
use crate::progress::ProgressBar;
use experiments::identify::{Ieee68Channels, MatchRule, TrueMode, ieee68_inter_area_modes, match_modes};

/// The demonstrated systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoSystem {
    /// Van der Pol oscillator with measurement noise (sigma 0.05).
    Vdp,
    /// IEEE 68-bus system seen by PMUs at 12 buses (angles and frequencies at 30 frames/s
    /// with the C37.118.1 error limits), identified with the preset for its kind of data.
    Ieee68,
}

/// IEEE 68-bus demo scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoScenario {
    /// Ring-down after the fault at bus 29 (30 s), PMUs, the `pmu-ringdown` preset.
    Fault,
    /// Ten minutes of ambient load noise on the healthy system, PMUs, the `pmu-ambient`
    /// preset.
    Ambient,
    /// Twenty minutes of ambient load noise; every machine's damping drops to a tenth at
    /// minute 10 (inter-area damping 0.9 to 1.5 %), and the critical alarm follows. This one
    /// streams the machine states to a ridge model: its alarms are judged on confidence
    /// intervals, which the correlation estimator of the PMU presets does not give.
    Stressed,
}

/// How the demo's samples reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// Batches over the stream's WebSocket, sent by the demo.
    Websocket,
    /// IEEE C37.118.2: the demo serves the record as simulated PMUs (`pmu-serve`) and the
    /// server subscribes to them (68-bus fault and ambient scenarios).
    C37118,
}

/// Options of `koopstream demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Which system.
    #[arg(long, value_enum, default_value = "vdp")]
    pub system: DemoSystem,
    /// IEEE 68-bus scenario (default: fault).
    #[arg(long, value_enum)]
    pub scenario: Option<DemoScenario>,
    /// A running server (default: start one in this process on a free loopback port).
    #[arg(long)]
    pub server: Option<String>,
    /// Token and TLS files for `--server`.
    #[command(flatten)]
    pub connection: ServerArgs,
    /// Playback speed relative to real time; 0 streams as fast as the server acknowledges.
    #[arg(long, default_value_t = 20.0)]
    pub speed: f64,
    /// Seed of the simulation and its noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// How samples reach the server: WebSocket batches, or C37.118.2 frames from simulated
    /// PMUs the server subscribes to (then a `--server` must run on this machine and allow
    /// 127.0.0.1 in `sources.allowed_hosts`, as it does by default).
    #[arg(long, value_enum, default_value = "websocket")]
    pub via: Via,
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Talking to the server failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The simulation failed.
    #[error(transparent)]
    Systems(#[from] systems::SystemsError),
    /// The local server could not start.
    #[error("cannot start a local server: {0}")]
    Io(#[from] std::io::Error),
    /// The server closed the connection early.
    #[error("the server closed the WebSocket before the stream ended")]
    Closed,
    /// The true modes could not be computed.
    #[error("the true modes: {0}")]
    Truth(#[from] experiments::ExperimentError),
    /// A scenario the system does not have.
    #[error("the {0} demo has no scenarios (they are for --system ieee68)")]
    NoScenario(&'static str),
    /// `--via c37118` could not be set up.
    #[error("--via c37118: {0}")]
    Via(String),
}

mod c37118;
mod table;

use table::{Row, Table};

struct Scenario {
    definition: Value,
    channels: Vec<usize>,
    skip: usize,
    batch: usize,
    truth: Vec<TrueMode>,
    request: SimulationRequest,
}

/// The speeds of the 16 machines, the channels every 68-bus demo streams.
fn speed_channels() -> Vec<Value> {
    (1..=16).map(|g| json!({"name": format!("omega_g{g}"), "unit": "pu"})).collect()
}

/// The 68-bus record as PMUs at the default buses report it: angles relative to bus 65
/// and frequencies, with the C37.118.1 steady-state error limits.
fn pmu_request(scenario: Ieee68Scenario, duration: f64, seed: u64) -> SimulationRequest {
    SimulationRequest::new(SystemSpec::Ieee68(Ieee68Params {
        scenario,
        angle_reference: AngleReference::default(),
        damping: DampingChange::default(),
    }))
    .with_duration(duration)
    .with_rate(30.0)
    .with_seed(seed)
    .with_pmu(PmuMeasurement { layout: pmu_layout(), errors: PmuErrors::default() })
}

/// The PMU channels of [`pmu_request`], named as the simulator names its columns, with
/// the units it reports them in.
fn pmu_channels() -> Vec<Value> {
    let layout = pmu_layout();
    let units = layout.channel_units();
    layout.channel_names().into_iter().zip(units).map(|(name, unit)| json!({"name": name, "unit": unit})).collect()
}

/// A stream of PMU data defined by a preset alone (and the refresh cadence of a demo).
fn pmu_definition(id: String, preset: &str) -> Value {
    json!({"id": id, "channels": pmu_channels(), "ts": 1.0 / 30.0, "preset": preset, "eigen_every": 60})
}

/// The inter-area modes of `network` with their shapes in the PMU columns.
fn pmu_truth(network: Network) -> Result<Vec<TrueMode>, DemoError> {
    Ok(experiments::pmu_ambient::pmu_truth(network)?)
}

fn ieee68_request(scenario: Ieee68Scenario, damping: DampingChange, duration: f64, seed: u64) -> SimulationRequest {
    SimulationRequest::new(SystemSpec::Ieee68(Ieee68Params {
        scenario,
        angle_reference: AngleReference::Machine(13),
        damping,
    }))
    .with_duration(duration)
    .with_rate(30.0)
    .with_seed(seed)
    .with_measurement(MeasurementModel { noise: Some(NoiseLevel::SnrDb(40.0)), ..MeasurementModel::clean() })
}

/// The 15 rotor angles relative to G13 and the 16 speeds: the classical model's whole
/// state, so a linear model in the measured channels is already the right structure.
fn state_channels() -> Vec<Value> {
    let angles = (1..=16).filter(|g| *g != 13).map(|g| json!({"name": format!("delta_g{g}"), "unit": "rad"}));
    angles.chain(speed_channels()).collect()
}

/// Columns of the simulated record behind [`state_channels`] (G13's own angle is 0).
fn state_columns() -> Vec<usize> {
    (0..32).filter(|j| *j != 12).collect()
}

/// The monitoring recipe for ambient 68-bus data: the measured state with a constant (for
/// honest intervals), forgetting with about a minute of memory (1 / (1 - rho) samples) so
/// a change shows within minutes, the electromechanical band, default alarm thresholds.
fn monitoring_definition(id: String) -> Value {
    json!({"id": id, "channels": state_channels(), "ts": 1.0 / 30.0, "dictionary": "state,const",
        "mu": 1e-6, "forgetting": 0.9995, "warmup": 300, "eigen_every": 300,
        "modes": {"band_hz": [0.1, 0.9]}})
}

/// The pre-fault inter-area modes, matched by frequency (the served shapes cover angles
/// without G13's).
fn healthy_truth() -> Result<Vec<TrueMode>, DemoError> {
    let truth = ieee68_inter_area_modes(Network::Pre, Ieee68Channels::Speeds)?;
    Ok(truth.into_iter().map(|t| TrueMode { shape: None, ..t }).collect())
}

fn scenario(system: DemoSystem, which: Option<DemoScenario>, seed: u64) -> Result<Scenario, DemoError> {
    if system == DemoSystem::Vdp && which.is_some() {
        return Err(DemoError::NoScenario("vdp"));
    }
    Ok(match (system, which.unwrap_or(DemoScenario::Fault)) {
        (DemoSystem::Vdp, _) => Scenario {
            definition: json!({"id": format!("demo-vdp-{seed}"), "channels": [{"name": "x1"}, {"name": "x2"}], "ts": 0.1,
                "dictionary": "state,const,poly:3", "sigma": 0.05, "warmup": 100, "eigen_every": 50}),
            channels: vec![0, 1],
            skip: 0,
            batch: 5,
            truth: vec![TrueMode { frequency_hz: 1.0 / 6.663_287, damping_ratio: 0.0, shape: None }],
            request: SimulationRequest::new(SystemSpec::from_name("vdp", None)?)
                .with_duration(120.0)
                .with_rate(10.0)
                .with_seed(seed)
                .with_measurement(MeasurementModel {
                    noise: Some(NoiseLevel::Sigma(0.05)),
                    ..MeasurementModel::clean()
                }),
        },
        (DemoSystem::Ieee68, DemoScenario::Fault) => Scenario {
            definition: pmu_definition(format!("demo-ieee68-{seed}"), "pmu-ringdown"),
            channels: (0..pmu_channels().len()).collect(),
            // The fault is on from 1.0 s to 1.05 s; identification starts 0.5 s after clearing.
            skip: 47,
            batch: 15,
            truth: pmu_truth(Network::Post)?,
            request: pmu_request(Ieee68Scenario::Fault(Default::default()), 30.0, seed),
        },
        (DemoSystem::Ieee68, DemoScenario::Ambient) => Scenario {
            definition: pmu_definition(format!("demo-ieee68-ambient-{seed}"), "pmu-ambient"),
            channels: (0..pmu_channels().len()).collect(),
            skip: 0,
            batch: 30,
            truth: pmu_truth(Network::Pre)?,
            request: pmu_request(Ieee68Scenario::Ambient(Default::default()), 600.0, seed),
        },
        (DemoSystem::Ieee68, DemoScenario::Stressed) => Scenario {
            definition: monitoring_definition(format!("demo-ieee68-stressed-{seed}")),
            channels: state_columns(),
            skip: 0,
            batch: 30,
            truth: healthy_truth()?,
            request: ieee68_request(
                Ieee68Scenario::Ambient(Default::default()),
                DampingChange { scale: 0.1, at: Some(600.0) },
                1200.0,
                seed,
            ),
        },
    })
}

/// Runs the demo; returns the final table.
pub async fn run(args: &DemoArgs) -> Result<String, DemoError> {
    let scenario = scenario(args.system, args.scenario, args.seed)?;
    if args.via == Via::C37118 {
        // Refused before anything starts or prints.
        served_scenario(args)?;
    }
    // A given server's address and files are checked before anything starts.
    let (client, local) = match &args.server {
        Some(url) => (Client::connect_to(url, &args.connection)?, None),
        None => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let base = format!("http://{}", listener.local_addr()?);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(crate::server::run(
                listener,
                ServiceConfig {
                    storage: crate::config::StorageConfig {
                        durability: crate::config::Durability::Memory,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                async move {
                    let _ = stopped.await;
                },
            ));
            (Client::new(&base), Some((stop, task)))
        }
    };
    let id = scenario.definition["id"].as_str().unwrap_or("demo").to_owned();
    println!("server: {} (dashboard: {}/), stream `{id}`", client.base(), client.base());
    // A previous run with the same seed leaves a stream behind: start it afresh.
    let _ = client.delete_stream(&id).await;
    let mut table = Table::new(&scenario.truth);
    match args.via {
        Via::Websocket => {
            client.create_stream(&scenario.definition).await?;
            stream_over_websocket(&client, &scenario, &id, args.speed, &mut table).await?;
        }
        Via::C37118 => {
            let which = served_scenario(args).unwrap_or("fault");
            c37118::run(&client, &scenario, which, args.speed, args.seed, &mut table).await?;
        }
    }
    let modes = client.get(&format!("/v1/streams/{id}/modes")).await?;
    let mut report = final_table(&scenario.truth, &modes, table.origin, !table.started());
    if !table.alarms.is_empty() {
        report.push_str("\nAlarms:\n");
        for line in &table.alarms {
            report.push_str(line);
            report.push('\n');
        }
    }
    if let Some((stop, task)) = local {
        let _ = stop.send(());
        let _ = task.await;
    }
    Ok(report)
}

/// The scenario `pmu-serve` serves for `--via c37118`, or why there is none.
fn served_scenario(args: &DemoArgs) -> Result<&'static str, DemoError> {
    match (args.system, args.scenario.unwrap_or(DemoScenario::Fault)) {
        (DemoSystem::Ieee68, DemoScenario::Fault) => Ok("fault"),
        (DemoSystem::Ieee68, DemoScenario::Ambient) => Ok("ambient"),
        _ => Err(DemoError::Via(
            "PMUs serve the 68-bus fault and ambient scenarios (--system ieee68 --scenario fault|ambient)".into(),
        )),
    }
}

/// Streams the scenario's record in batches over the stream's WebSocket, updating `table`
/// with every summary and alarm.
async fn stream_over_websocket(
    client: &Client,
    scenario: &Scenario,
    id: &str,
    speed: f64,
    table: &mut Table,
) -> Result<(), DemoError> {
    let trajectory = systems::simulate(&scenario.request)?;
    let ts = scenario.definition["ts"].as_f64().unwrap_or(0.1);
    let rows: Vec<Vec<f64>> = (scenario.skip..trajectory.n_rows())
        .map(|k| scenario.channels.iter().map(|&j| trajectory.row(k)[j]).collect())
        .collect();
    let (mut sink, mut source) = client.connect(id).await?;
    table.warming_up();
    let mut bar = ProgressBar::new(rows.len() as u64, "samples streamed");
    let pause = Duration::from_secs_f64(if speed > 0.0 { scenario.batch as f64 * ts / speed } else { 0.0 });
    for (seq, chunk) in rows.chunks(scenario.batch).enumerate() {
        let start = seq * scenario.batch;
        let batch = json!({"seq": seq as u64 + 1, "t0": (scenario.skip + start) as f64 * ts, "x": chunk});
        send_batch(&mut sink, &batch).await?;
        loop {
            let message = next_message(&mut source).await.ok_or(DemoError::Closed)?;
            match message["type"].as_str() {
                Some("ack") => break,
                Some("summary") => refresh(client, id, table).await?,
                Some("alarm") => table.alarm(&message),
                Some("error") => {
                    return Err(DemoError::Client(ClientError::Status {
                        url: id.to_owned(),
                        status: 422,
                        body: message.to_string(),
                    }));
                }
                _ => {}
            }
        }
        bar.update((start + chunk.len()) as u64, (start + chunk.len()) as u64);
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    bar.finish(rows.len() as u64);
    Ok(())
}

/// Shows the modes of a refresh: the tracked ones and those not tracked yet.
async fn refresh(client: &Client, id: &str, table: &mut Table) -> Result<(), DemoError> {
    let tracked = client.get(&format!("/v1/streams/{id}/modes")).await?;
    let all = client.get(&format!("/v1/streams/{id}/modes?all=true")).await?;
    table.update(&tracked, &all);
    Ok(())
}

/// Reads the served tracked modes back into the estimator's mode type, for matching.
fn served_modes(modes: &Value) -> Vec<Mode> {
    let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    modes["modes"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|m| {
                    let (f, zeta) = (number(&m["frequency_hz"]), number(&m["damping_ratio"]));
                    let omega = std::f64::consts::TAU * f;
                    let s = c64::new(-zeta * omega / (1.0 - zeta * zeta).max(1e-12).sqrt(), omega);
                    Mode {
                        eigenvalue: s,
                        continuous: Some(Continuous {
                            s,
                            frequency_hz: f,
                            damping_ratio: zeta,
                            time_constant_s: (s.re < 0.0).then(|| -1.0 / s.re),
                        }),
                        flags: ModeFlags::default(),
                        shape: m["shape"]
                            .as_array()
                            .map(|s| s.iter().map(|v| c64::new(number(&v["re"]), number(&v["im"]))).collect())
                            .unwrap_or_default(),
                        participation: Vec::new(),
                        eigenfunction: Vec::new(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The final block: every true mode beside the tracked mode matched to it, in the live
/// table's layout (with its legend and header first when no row was shown).
fn final_table(truth: &[TrueMode], modes: &Value, origin: f64, with_header: bool) -> String {
    // The Van der Pol limit cycle is undamped: its identified damping may fall just below 0.
    let rule = MatchRule { min_damping: -0.05, ..MatchRule::default() };
    let identified = served_modes(modes);
    let matches = match_modes(&identified, truth, rule);
    let served = modes["modes"].as_array().cloned().unwrap_or_default();
    let no_intervals = modes["intervals_unavailable"].is_string();
    let t = modes["t"].as_f64().map(|t| t - origin);
    let mut out = String::new();
    if with_header {
        out.push_str(table::LEGEND);
        out.push_str("\n\n");
        out.push_str(&table::header());
        out.push('\n');
    }
    for (truth, matched) in truth.iter().zip(matches) {
        let row = match matched {
            Some(m) => {
                // The matched mode is one of the served ones, found again by its frequency.
                let served = served.iter().find(|s| s["frequency_hz"].as_f64() == Some(m.frequency_hz));
                let field = |name: &str| served.and_then(|s| s[name].as_f64());
                let interval = match served.and_then(|s| s["damping_ci95"].as_array()) {
                    Some(ci) if ci.len() == 2 => {
                        Some(Ok([ci[0].as_f64().unwrap_or(f64::NAN), ci[1].as_f64().unwrap_or(f64::NAN)]))
                    }
                    _ if no_intervals => Some(Err(())),
                    _ => None,
                };
                Row {
                    t,
                    mode: served.and_then(|s| s["id"].as_u64()).map(|id| id.to_string()).unwrap_or_default(),
                    frequency_hz: Some(m.frequency_hz),
                    damping_ratio: Some(m.damping_ratio),
                    interval,
                    energy: field("energy"),
                    alarm: served.and_then(|s| s["alarm"].as_str()).unwrap_or("none").to_owned(),
                    truth: Some(truth.clone()),
                    status: "final",
                }
            }
            None => Row { t, truth: Some(truth.clone()), status: "not found", ..Row::default() },
        };
        out.push_str(&table::format_row(&row));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pmu_streams_carry_the_units_the_simulator_reports_in() {
        let channels = pmu_channels();
        // Angles and frequencies at the twelve default buses.
        assert_eq!(channels.len(), 24);
        for channel in &channels {
            let name = channel["name"].as_str().unwrap();
            let expected = match name.rsplit('_').next().unwrap() {
                "vm" => "pu",
                "va" => "deg",
                "f" => "Hz",
                other => panic!("unexpected quantity {other}"),
            };
            assert_eq!(channel["unit"], expected, "{name}");
        }
        let definition = pmu_definition("d".into(), "pmu-ambient");
        assert_eq!(definition["channels"], Value::Array(channels));
    }
}
