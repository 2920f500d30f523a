//! `koopstream fit`: identifies a model from a recorded CSV file, sample by sample, and
//! writes the model document as JSON; the file-and-model arguments are shared with
//! `bench-online`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use koopman::{DictionarySpec, EstimatorConfig, Regularisation};

use super::CommandError;
use crate::fit::{FitOptions, fit_file};
use crate::service::options::{DEFAULT_DICTIONARY, ModelOptions};

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

/// Fits the file and writes the model.
pub fn run(args: &FitArgs) -> Result<(), CommandError> {
    let (model, report) = fit_file(&args.source.options())?;
    eprintln!("fit: {report}; {} observables, mu = {:e}", model.dictionary.observables.len(), model.mu);
    let json = serde_json::to_string_pretty(&model)?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, json + "\n").map_err(|source| CommandError::Write { path: path.clone(), source })?
        }
        None => writeln!(std::io::stdout().lock(), "{json}")?,
    }
    Ok(())
}
