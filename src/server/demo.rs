//! `koopstream demo`: streams a simulated noisy system into a server over WebSocket and
//! shows the identified modes against the truth, live in the terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::{Args, ValueEnum};
use koopman::c64;
use koopman::spectrum::{Continuous, Mode, ModeFlags};
use serde_json::{Value, json};
use systems::{
    AngleReference, Ieee68Params, Ieee68Scenario, MeasurementModel, Network, NoiseLevel, SimulationRequest, SystemSpec,
};

use crate::client::{Client, ClientError, next_message, send_batch};
use crate::config::ServiceConfig;
use crate::progress::ProgressBar;
use experiments::identify::{Ieee68Channels, MatchRule, TrueMode, ieee68_inter_area_modes, match_modes};

/// The demonstrated systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoSystem {
    /// Van der Pol oscillator with measurement noise (sigma 0.05).
    Vdp,
    /// IEEE 68-bus ring-down after a fault at bus 29, speeds at 30 frames/s, 40 dB SNR.
    Ieee68,
}

/// Options of `koopstream demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Which system.
    #[arg(long, value_enum, default_value = "vdp")]
    pub system: DemoSystem,
    /// A running server (default: start one in this process on a free loopback port).
    #[arg(long)]
    pub server: Option<String>,
    /// Playback speed relative to real time; 0 streams as fast as the server acknowledges.
    #[arg(long, default_value_t = 20.0)]
    pub speed: f64,
    /// Seed of the simulation and its noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
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
}

struct Scenario {
    definition: Value,
    channels: Vec<usize>,
    skip: usize,
    batch: usize,
    truth: Vec<TrueMode>,
    request: SimulationRequest,
}

fn scenario(system: DemoSystem, seed: u64) -> Result<Scenario, DemoError> {
    Ok(match system {
        DemoSystem::Vdp => Scenario {
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
        DemoSystem::Ieee68 => Scenario {
            definition: json!({"id": format!("demo-ieee68-{seed}"),
                "channels": (1..=16).map(|g| json!({"name": format!("omega_g{g}"), "unit": "pu"})).collect::<Vec<_>>(),
                "ts": 1.0 / 30.0, "dictionary": "state,delay:20", "mu": 0.0, "warmup": 200, "eigen_every": 60}),
            channels: (16..32).collect(),
            // The fault is on from 1.0 s to 1.05 s; identification starts 0.5 s after clearing.
            skip: 47,
            batch: 15,
            truth: ieee68_inter_area_modes(Network::Post, Ieee68Channels::Speeds)?,
            request: SimulationRequest::new(SystemSpec::Ieee68(Ieee68Params {
                scenario: Ieee68Scenario::Fault(Default::default()),
                angle_reference: AngleReference::Machine(13),
                damping: Default::default(),
            }))
            .with_duration(30.0)
            .with_rate(30.0)
            .with_seed(seed)
            .with_measurement(MeasurementModel { noise: Some(NoiseLevel::SnrDb(40.0)), ..MeasurementModel::clean() }),
        },
    })
}

/// Runs the demo; returns the final table.
pub async fn run(args: &DemoArgs) -> Result<String, DemoError> {
    let scenario = scenario(args.system, args.seed)?;
    let (base, local) = match &args.server {
        Some(url) => (url.clone(), None),
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
            (base, Some((stop, task)))
        }
    };
    let client = Client::new(&base);
    let id = scenario.definition["id"].as_str().unwrap_or("demo").to_owned();
    // A previous run with the same seed leaves a stream behind: start it afresh.
    let _ = client.delete_stream(&id).await;
    client.create_stream(&scenario.definition).await?;
    let trajectory = systems::simulate(&scenario.request)?;
    let ts = scenario.definition["ts"].as_f64().unwrap_or(0.1);
    let rows: Vec<Vec<f64>> = (scenario.skip..trajectory.n_rows())
        .map(|k| scenario.channels.iter().map(|&j| trajectory.row(k)[j]).collect())
        .collect();
    let (mut sink, mut source) = client.connect(&id).await?;
    let mut bar = ProgressBar::new(rows.len() as u64, "samples streamed");
    let mut table = Table::new(&scenario.truth);
    let pause = Duration::from_secs_f64(if args.speed > 0.0 { scenario.batch as f64 * ts / args.speed } else { 0.0 });
    for (seq, chunk) in rows.chunks(scenario.batch).enumerate() {
        let start = seq * scenario.batch;
        let batch = json!({"seq": seq as u64 + 1, "t0": (scenario.skip + start) as f64 * ts, "x": chunk});
        send_batch(&mut sink, &batch).await?;
        loop {
            let message = next_message(&mut source).await.ok_or(DemoError::Closed)?;
            match message["type"].as_str() {
                Some("ack") => break,
                Some("summary") => table.update(&message),
                Some("error") => {
                    return Err(DemoError::Client(ClientError::Status {
                        url: id.clone(),
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
    let modes = client.get(&format!("/v1/streams/{id}/modes?all=true")).await?;
    let report = final_table(&scenario.truth, &modes);
    if let Some((stop, task)) = local {
        let _ = stop.send(());
        let _ = task.await;
    }
    Ok(report)
}

/// The live view: truth against the latest summary.
struct Table {
    truth: Vec<TrueMode>,
    drawn_lines: usize,
    live: bool,
}

impl Table {
    fn new(truth: &[TrueMode]) -> Self {
        Self { truth: truth.to_vec(), drawn_lines: 0, live: std::io::stdout().is_terminal() }
    }

    fn update(&mut self, summary: &Value) {
        let modes: Vec<(f64, f64)> = summary["modes"]
            .as_array()
            .map(|m| {
                m.iter().filter_map(|m| Some((m["frequency_hz"].as_f64()?, m["damping_ratio"].as_f64()?))).collect()
            })
            .unwrap_or_default();
        let mut lines = vec![format!("model version {}, {} samples", summary["version"], summary["samples_accepted"])];
        lines.push(format!("{:>12} {:>12} | {:>12} {:>12}", "true f (Hz)", "true zeta", "ident. f", "ident. zeta"));
        for t in &self.truth {
            let nearest = modes
                .iter()
                .filter(|(f, _)| (f / t.frequency_hz - 1.0).abs() < 0.15)
                .min_by(|a, b| (a.0 - t.frequency_hz).abs().total_cmp(&(b.0 - t.frequency_hz).abs()));
            let identified =
                nearest.map_or_else(|| format!("{:>12} {:>12}", "-", "-"), |(f, z)| format!("{f:>12.4} {z:>12.4}"));
            lines.push(format!("{:>12.4} {:>12.4} | {identified}", t.frequency_hz, t.damping_ratio));
        }
        let mut out = std::io::stdout().lock();
        if self.live && self.drawn_lines > 0 {
            let _ = write!(out, "\x1b[{}A", self.drawn_lines);
        }
        for line in &lines {
            let clear = if self.live { "\x1b[2K" } else { "" };
            let _ = writeln!(out, "{clear}{line}");
        }
        let _ = out.flush();
        self.drawn_lines = if self.live { lines.len() } else { 0 };
    }
}

/// Reads the served modes back into the estimator's mode type, for matching.
fn served_modes(modes: &Value) -> Vec<Mode> {
    let number = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    modes["modes"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|m| Mode {
                    eigenvalue: c64::new(number(&m["eigenvalue"]["re"]), number(&m["eigenvalue"]["im"])),
                    continuous: m["continuous"].as_object().map(|c| Continuous {
                        s: c64::new(number(&c["re"]), number(&c["im"])),
                        frequency_hz: number(&m["frequency_hz"]),
                        damping_ratio: number(&m["damping_ratio"]),
                        time_constant_s: m["time_constant_s"].as_f64(),
                    }),
                    flags: ModeFlags {
                        negative_real: m["flags"]["negative_real"].as_bool().unwrap_or(false),
                        near_zero: m["flags"]["near_zero"].as_bool().unwrap_or(false),
                        near_nyquist: m["flags"]["near_nyquist"].as_bool().unwrap_or(false),
                    },
                    shape: m["shape"]
                        .as_array()
                        .map(|s| s.iter().map(|v| c64::new(number(&v["re"]), number(&v["im"]))).collect())
                        .unwrap_or_default(),
                    participation: Vec::new(),
                    eigenfunction: Vec::new(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn final_table(truth: &[TrueMode], modes: &Value) -> String {
    // The Van der Pol limit cycle is undamped: its identified damping may fall just below 0.
    let rule = MatchRule { min_damping: -0.05, ..MatchRule::default() };
    let identified = served_modes(modes);
    let matches = match_modes(&identified, truth, rule);
    let mut out = format!(
        "{:>12} {:>10} | {:>12} {:>10} | {:>8} {:>9}\n",
        "true f (Hz)", "true zeta", "ident. f", "ident. zeta", "df (%)", "dzeta (pt)"
    );
    for (t, m) in truth.iter().zip(matches) {
        let row = match m {
            Some(m) => format!(
                "{:>12.4} {:>10.4} | {:>8.3} {:>9.2}",
                m.frequency_hz,
                m.damping_ratio,
                100.0 * m.frequency_error(t),
                m.damping_error_points(t)
            ),
            None => format!("{:>12} {:>10} | {:>8} {:>9}", "not found", "", "", ""),
        };
        out.push_str(&format!("{:>12.4} {:>10.4} | {row}\n", t.frequency_hz, t.damping_ratio));
    }
    out
}
