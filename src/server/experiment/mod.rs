//! `koopstream experiment`: the reproducible identification experiments (being written).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Which systems to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExperimentSystem {
    /// Every system.
    All,
    /// Van der Pol oscillator.
    Vdp,
    /// Ring of Van der Pol oscillators.
    VdpRing,
    /// Henon map.
    Henon,
    /// IEEE 68-bus system (ring-down and ambient).
    Ieee68,
}

/// Options of `koopstream experiment`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// Which system(s).
    #[arg(long, value_enum, default_value = "all")]
    pub system: ExperimentSystem,
    /// Directory for the report, CSV files and SVG plots.
    #[arg(long, default_value = "experiments")]
    pub out: PathBuf,
    /// Smaller data sets (for tests and a quick look).
    #[arg(long)]
    pub quick: bool,
}

/// Why an experiment run failed.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// Not available yet.
    #[error("the experiment set is not available in this build")]
    Unavailable,
}

/// Runs the experiments and writes the report; returns the report's Markdown.
pub fn run(_args: &ExperimentArgs) -> Result<String, ExperimentError> {
    Err(ExperimentError::Unavailable)
}
