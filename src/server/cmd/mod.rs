//! The command line: one module per subcommand, each owning its arguments (parsed once
//! into validated types by clap) and its `run` function; [`run`] dispatches. Everything
//! here returns a typed [`CommandError`]; only `main` turns it into a message.

pub mod bench_online;
pub mod demo;
pub mod experiment;
pub mod fit;
pub mod loadgen;
pub mod pmu_serve;
pub mod serve;
pub mod simulate;
pub mod token;
pub mod truth;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::bench_online::BenchOnlineError;
use crate::demo::DemoArgs;
use crate::fit::FitError;
use crate::loadgen::{LoadError, LoadgenArgs};
use crate::simulate_cli::{SimulateArgs, SimulateError, TruthArgs};
use experiments::ExperimentArgs;

pub use bench_online::BenchOnlineArgs;
pub use fit::{FitArgs, SourceArgs};
pub use pmu_serve::{PmuServeArgs, PmuServeError};
pub use serve::ServeArgs;

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
    /// Make a bearer token and print its configuration entry (or hash one from stdin).
    Token(token::TokenArgs),
    /// Serve a simulated system as an IEEE C37.118.2 PMU (one PMU per bus with --measure pmu).
    PmuServe(PmuServeArgs),
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The service configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The listening address cannot be bound.
    #[error("cannot listen on {address} (key `listen`): {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The service stopped with an error.
    #[error(transparent)]
    Serve(#[from] crate::server::ServeError),
    /// An output file cannot be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Standard output, or the async runtime, failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A result could not be written as JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The model options of `fit` or `bench-online` do not fit together.
    #[error("invalid model options: {0}")]
    Options(String),
    /// `fit` failed.
    #[error(transparent)]
    Fit(#[from] FitError),
    /// The model could not be encoded in the output's format.
    #[error(transparent)]
    Export(#[from] crate::wire::export::ExportError),
    /// `bench-online` failed.
    #[error(transparent)]
    BenchOnline(#[from] BenchOnlineError),
    /// `simulate` or `truth` failed.
    #[error(transparent)]
    Simulate(#[from] SimulateError),
    /// `demo` failed.
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    /// `loadgen` failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// `experiment` failed.
    #[error(transparent)]
    Experiment(#[from] experiments::ExperimentError),
    /// `token` failed.
    #[error(transparent)]
    Token(#[from] crate::access::AuthError),
    /// `pmu-serve` failed.
    #[error(transparent)]
    PmuServe(#[from] PmuServeError),
}

/// Runs the command the line asks for (`serve` when it names none).
pub fn run(cli: Cli) -> Result<(), CommandError> {
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve::run(&args),
        Command::Fit(args) => fit::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Truth(args) => truth::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Loadgen(args) => loadgen::run(&args),
        Command::BenchOnline(args) => bench_online::run(&args),
        Command::Experiment(args) => experiment::run(&args),
        Command::Token(args) => token::run(&args),
        Command::PmuServe(args) => pmu_serve::run(&args),
    }
}

/// A multi-threaded runtime for the commands that talk to a server.
fn runtime() -> Result<tokio::runtime::Runtime, CommandError> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
