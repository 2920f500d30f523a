//! `koopstream experiment`: the reproducible identification experiments and their report.
//!
//! Each system module (`vdp`, `ring`, `henon`, `ieee68`, plus `cost`) computes its numbers
//! and returns a [`report::Section`] (tables, plots, verdicts); nothing there touches the
//! file system. [`run`] collects the sections and writes `report.md`, one CSV file per table
//! and the SVG plots into the output directory. The identification routines the
//! end-to-end tests share with the command live in [`fitting`] and the system modules;
//! [`identify`] matches identified modes to the true ones.

pub mod cost;
pub mod debiased;
pub mod fitting;
pub mod henon;
pub mod identify;
pub mod ieee68;
mod ieee68_report;
mod ieee68_stats;
mod meter_report;
pub mod meter_study;
pub mod mode_floor;
pub mod plots;
pub mod pmu_ambient;
pub mod pmu_ringdown;
pub mod pmu_sensitivity;
pub mod records;
pub mod report;
pub mod ring;
pub mod vdp;
mod vdp_figures;
mod vdp_report;

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use report::Section;

/// Which systems to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExperimentSystem {
    /// Every system, and the cost measurements.
    All,
    /// Van der Pol oscillator (and the cost of updates against refits at N' = 10).
    Vdp,
    /// Ring of Van der Pol oscillators (and the cost at N' = 231).
    VdpRing,
    /// Henon map.
    Henon,
    /// IEEE 68-bus system (ring-down and ambient).
    Ieee68,
    /// The mode meter on the IEEE 68-bus system (interval coverage, id stability, alarm
    /// delays, ring-down intervals).
    Meter,
    /// The de-biased estimators (correlation) against ridge, EDMD and online DMD on the
    /// IEEE 68-bus system in ambient operation.
    Debiased,
    /// The same comparison on what PMUs measure (bus angles and frequencies).
    Pmu,
    /// The correlation recipe varied on the ambient PMU records (delays, lags, rank,
    /// forgetting), with the bias and the scatter of its errors.
    PmuSensitivity,
    /// The scatter an ideal fit of one inter-area mode cannot avoid on a record of the
    /// same length: which accuracy goals ten minutes of ambient data can support.
    ModeFloor,
    /// The fault ring-down seen by PMUs: ridge, instrumental variables, correlation, EDMD
    /// and online DMD, and each inter-area mode's share of the record's energy.
    PmuRingdown,
}

impl ExperimentSystem {
    fn includes(self, other: Self) -> bool {
        self == Self::All || self == other
    }
}

/// Options of `koopstream experiment`.
#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// Which system(s).
    #[arg(long, value_enum, default_value = "all")]
    pub system: ExperimentSystem,
    /// Directory for the report, CSV files and SVG plots (created if missing).
    #[arg(long, default_value = "target/experiments")]
    pub out: PathBuf,
    /// Smaller data sets (for tests and a quick look); the numbers are then not meaningful.
    #[arg(long)]
    pub quick: bool,
}

/// Why an experiment run failed.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// A simulation could not be run.
    #[error("simulation failed: {0}")]
    Systems(#[from] systems::SystemsError),
    /// An estimator configuration was refused.
    #[error("estimator configuration refused: {0}")]
    Config(#[from] koopman::ConfigError),
    /// A sample was refused by the estimator.
    #[error("sample refused: {0}")]
    Sample(#[from] koopman::SampleError),
    /// A solve or eigen-decomposition failed.
    #[error("numerical failure: {0}")]
    Numerical(#[from] koopman::NumericalError),
    /// A prediction could not be made.
    #[error("prediction failed: {0}")]
    Predict(#[from] koopman::PredictError),
    /// The estimator has no model after the training data (too few pairs for its settings).
    #[error("no model after training {what}: too few informative pairs")]
    NoModel {
        /// Which fit.
        what: String,
    },
    /// A file or directory could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("cannot draw {path}: {message}")]
    Plot {
        /// The SVG file.
        path: PathBuf,
        /// What plotters reported.
        message: String,
    },
}

/// How large the experiments are: the full set, or the quick one for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// The data sets behind EXPERIMENTS.md.
    Full,
    /// Tiny data sets: every code path runs, in a few seconds in a debug build.
    Quick,
}

impl Scale {
    /// Picks `full` or `quick`.
    pub fn pick<T>(self, full: T, quick: T) -> T {
        match self {
            Self::Full => full,
            Self::Quick => quick,
        }
    }
}

/// Runs the experiments and writes the report; returns the report's Markdown.
pub fn run(args: &ExperimentArgs) -> Result<String, ExperimentError> {
    let scale = if args.quick { Scale::Quick } else { Scale::Full };
    // Fail before minutes of computing if the output directory cannot be made.
    std::fs::create_dir_all(&args.out).map_err(|source| ExperimentError::Io { path: args.out.clone(), source })?;
    let started = std::time::Instant::now();
    let mut sections: Vec<Section> = Vec::new();
    let progress = |name: &str| eprintln!("experiment: {name} ({:.1} s)", started.elapsed().as_secs_f64());
    if args.system.includes(ExperimentSystem::Vdp) {
        progress("van der pol");
        sections.push(vdp_report::experiment(scale)?);
    }
    if args.system.includes(ExperimentSystem::VdpRing) {
        progress("van der pol ring");
        sections.push(ring::experiment(scale)?);
    }
    if args.system.includes(ExperimentSystem::Henon) {
        progress("henon");
        sections.push(henon::experiment(scale)?);
    }
    if args.system.includes(ExperimentSystem::Ieee68) {
        progress("ieee 68-bus ring-down");
        sections.push(ieee68_report::ringdown_experiment(scale)?);
        progress("ieee 68-bus ambient");
        sections.push(ieee68_report::ambient_experiment(scale)?);
    }
    if args.system.includes(ExperimentSystem::Debiased) {
        progress("ieee 68-bus ambient, de-biased estimators");
        sections.push(debiased::experiment(scale)?);
    }
    if args.system.includes(ExperimentSystem::Pmu) {
        progress("ieee 68-bus ambient from PMUs");
        sections.push(pmu_ambient::experiment(scale)?);
    }
    if args.system.includes(ExperimentSystem::PmuSensitivity) {
        progress("ieee 68-bus ambient from PMUs, recipe sensitivity");
        sections.push(pmu_sensitivity::experiment(scale)?);
    }
    if args.system.includes(ExperimentSystem::ModeFloor) {
        progress("ieee 68-bus ambient, information floor");
        sections.push(mode_floor::experiment(scale)?);
    }
    if args.system.includes(ExperimentSystem::PmuRingdown) {
        progress("ieee 68-bus ring-down from PMUs");
        sections.push(pmu_ringdown::experiment(scale)?);
    }
    if args.system.includes(ExperimentSystem::Meter) {
        progress("ieee 68-bus mode meter");
        sections.push(meter_report::experiment(scale)?);
    }
    let cost_systems: Vec<cost::CostSystem> =
        [(ExperimentSystem::Vdp, cost::CostSystem::VanDerPol), (ExperimentSystem::VdpRing, cost::CostSystem::Ring)]
            .into_iter()
            .filter(|(s, _)| args.system.includes(*s))
            .map(|(_, c)| c)
            .collect();
    if !cost_systems.is_empty() {
        progress("cost");
        sections.push(cost::experiment(scale, &cost_systems)?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let context = report::RunContext::describe(args, elapsed);
    let markdown = report::render(&context, &sections);
    report::write_all(&args.out, &markdown, &sections)?;
    progress("done");
    Ok(markdown)
}
