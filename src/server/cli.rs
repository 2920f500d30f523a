//! The command line: subcommands and their options, parsed once into validated types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use koopman::{DictionarySpec, EstimatorConfig, Regularisation};

use crate::config::{Durability, FlagOverrides, LogFormat, StorageFlags};
use crate::demo::DemoArgs;
use crate::fit::FitOptions;
use crate::loadgen::LoadgenArgs;
use crate::options::{DEFAULT_DICTIONARY, ModelOptions};
use crate::simulate_cli::{SimulateArgs, TruthArgs};
use experiments::ExperimentArgs;

/// koopstream: streaming online system identification with robust Koopman operators.
#[derive(Debug, Parser)]
#[command(name = "koopstream", version, about)]
pub struct Cli {
    /// What to do (default: `serve`).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the streaming service (the default).
    Serve(ServeArgs),
    /// Identify a model from a recorded CSV file, sample by sample, and print it as JSON.
    Fit(FitArgs),
    /// Simulate a test system (with measurement noise) and write it as CSV.
    Simulate(SimulateArgs),
    /// Print a test system's ground truth (modes, limit cycle) as JSON.
    Truth(TruthArgs),
    /// Run the reproducible identification experiments and write the report.
    Experiment(ExperimentArgs),
    /// Stream a simulated system into a server and watch the identified modes live.
    Demo(DemoArgs),
    /// Drive many streams over WebSocket and report throughput and latency.
    Loadgen(LoadgenArgs),
    /// Time the estimator's per-sample update on a recorded file (used by bench/peers).
    BenchOnline(BenchOnlineArgs),
}

/// Options of `koopstream serve`.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file (overrides the embedded defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (also KOOPSTREAM_LISTEN).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Log format: auto, human or json (also KOOPSTREAM_LOG_FORMAT).
    #[arg(long, value_parser = ["auto", "human", "json"])]
    pub log_format: Option<String>,
    /// Log filter, e.g. info or koopstream=debug (also KOOPSTREAM_LOG_LEVEL).
    #[arg(long)]
    pub log_level: Option<String>,
    /// Directory of the store (default ./koopstream-data; also KOOPSTREAM_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// per-ack, periodic or memory (also KOOPSTREAM_STORAGE__DURABILITY).
    #[arg(long, value_parser = ["per-ack", "periodic", "memory"])]
    pub durability: Option<String>,
}

impl ServeArgs {
    /// The values given as flags, which override every other layer.
    pub fn overrides(&self) -> FlagOverrides {
        FlagOverrides {
            listen: self.listen,
            log_format: self.log_format.as_deref().map(|f| match f {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                _ => LogFormat::Auto,
            }),
            log_level: self.log_level.clone(),
            data_dir: self.data_dir.clone(),
            storage: self.durability.as_deref().map(|d| StorageFlags {
                durability: match d {
                    "periodic" => Durability::Periodic,
                    "memory" => Durability::Memory,
                    _ => Durability::PerAck,
                },
            }),
        }
    }
}

fn positive(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{text}` is not a positive number")),
    }
}

fn non_negative(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{text}` is not a finite number >= 0")),
    }
}

/// Options of `koopstream fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// The file and the model.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Write the model here instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Options of `koopstream bench-online`.
#[derive(Debug, Args)]
pub struct BenchOnlineArgs {
    /// The file and the model.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Time at most this many updates after the model is ready (default: the rest of the file).
    #[arg(long)]
    pub max_updates: Option<usize>,
    /// Also write the lifted observables, A and P at the start and A at the end (`.npz`).
    #[arg(long)]
    pub npz: Option<PathBuf>,
    /// Time every update on its own and report their distribution (percentiles, and the
    /// share of the time spent in updates slower than ten times the median, such as the
    /// deferred flushes and refactorisations). The clock reads add a few tens of
    /// nanoseconds to each update, so the mean of such a run is not the figure to compare.
    #[arg(long)]
    pub distribution: bool,
}

/// A recorded file and the model to identify from it (shared by `fit` and `bench-online`).
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// CSV file with a header; columns `t` (optional), the channels and the inputs.
    #[arg(long)]
    pub input: PathBuf,
    /// Sample period in seconds.
    #[arg(long, value_parser = positive)]
    pub dt: f64,
    /// Columns that are inputs (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub inputs: Vec<String>,
    /// Columns that are the state (default: every column but `t` and the inputs).
    #[arg(long, value_delimiter = ',')]
    pub channels: Option<Vec<String>>,
    /// Dictionary: state[,const][,poly:D][,rbf:N[:W]][,fourier:N[:S]][,delay:D].
    #[arg(long, default_value = DEFAULT_DICTIONARY)]
    pub dictionary: DictionarySpec,
    /// Ridge parameter mu (default 1e-6).
    #[arg(long, value_parser = non_negative, conflicts_with = "sigma")]
    pub mu: Option<f64>,
    /// Measurement-noise standard deviation: one value, or one per state channel; mu is
    /// then derived from it at the end of warm-up.
    #[arg(long, value_delimiter = ',', value_parser = non_negative)]
    pub sigma: Option<Vec<f64>>,
    /// Exponential forgetting factor in (0, 1].
    #[arg(long, default_value_t = 1.0)]
    pub forgetting: f64,
    /// Exact sliding window of this many pairs.
    #[arg(long)]
    pub window: Option<usize>,
    /// Warm-up samples before the lifting is fixed.
    #[arg(long, default_value_t = EstimatorConfig::DEFAULT_WARMUP)]
    pub warmup: usize,
    /// Standardise channels with the warm-up mean and standard deviation.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub standardise: bool,
    /// Seed for RBF centres and Fourier features.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Exact refactorisation every this many pairs.
    #[arg(long, default_value_t = EstimatorConfig::DEFAULT_REFACTOR_EVERY)]
    pub refactor_every: usize,
}

impl SourceArgs {
    /// The validated fit options.
    pub fn options(&self) -> FitOptions {
        let regularisation = match (&self.mu, &self.sigma) {
            (_, Some(sigma)) => Regularisation::NoiseSigma(sigma.clone()),
            (Some(mu), None) => Regularisation::Mu(*mu),
            (None, None) => Regularisation::Mu(EstimatorConfig::DEFAULT_MU),
        };
        FitOptions {
            input: self.input.clone(),
            dt: self.dt,
            inputs: self.inputs.clone(),
            channels: self.channels.clone(),
            model: ModelOptions {
                dictionary: self.dictionary.clone(),
                regularisation,
                forgetting: self.forgetting,
                window: self.window,
                warmup: self.warmup,
                standardise: self.standardise,
                seed: self.seed,
                refactor_every: self.refactor_every,
            },
        }
    }
}
