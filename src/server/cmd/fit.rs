//! `koopstream fit`: identifies a model from a recorded CSV file, sample by sample, and
//! writes the model document (JSON, or a `.mat`/`.npz` file by the output's extension); the
//! file-and-model arguments are shared with `bench-online`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::CommandError;
use crate::fit::{FitOptions, OutputFormat, encode_model, fit_file};
use crate::service::definition::MAX_UNIT_BYTES;
use crate::service::method::EstimatorKind;
use crate::service::options::ModelRequest;

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
    /// Write the model here (default: standard output, as JSON): a MATLAB file for `.mat`, a
    /// NumPy archive for `.npz` (the same variables; docs/model-export.md), JSON otherwise.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Units of columns, comma-separated NAME=UNIT (e.g. `x1=m,x2=m/s`): the model's
    /// channel units (default: none).
    #[arg(long, value_delimiter = ',', value_parser = column_unit)]
    pub units: Vec<(String, String)>,
}

/// One `NAME=UNIT` of `--units`: both non-empty, the unit at most as long as a stream's.
fn column_unit(text: &str) -> Result<(String, String), String> {
    let (name, unit) = text.split_once('=').ok_or_else(|| format!("`{text}` is not NAME=UNIT"))?;
    let (name, unit) = (name.trim(), unit.trim());
    if name.is_empty() || unit.is_empty() {
        return Err(format!("`{text}` is not NAME=UNIT (both must be given)"));
    }
    if unit.len() > MAX_UNIT_BYTES {
        return Err(format!("the unit of `{name}` is {} bytes; at most {MAX_UNIT_BYTES}", unit.len()));
    }
    Ok((name.to_owned(), unit.to_owned()))
}

/// A recorded file and the model to identify from it (shared by `fit` and `bench-online`).
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// CSV file with a header; columns `t` (optional), the channels and the inputs.
    #[arg(long)]
    pub input: PathBuf,
    /// Sample period in seconds [default: the median step of the `t` column to 9
    /// significant digits; `t` must increase row by row with every step within 10 % of the
    /// median or a gap of at least 1.5 steps].
    #[arg(long, value_parser = positive)]
    pub dt: Option<f64>,
    /// Columns that are inputs, comma-separated (default: none).
    #[arg(long, value_delimiter = ',')]
    pub inputs: Vec<String>,
    /// Columns that are the state (default: every column but `t` and the inputs).
    #[arg(long, value_delimiter = ',')]
    pub channels: Option<Vec<String>>,
    /// A preset (pmu-ambient, pmu-ringdown, lab-nonlinear; see `GET /v1/presets` or the
    /// README): estimator, dictionary, mu, memory and warm-up for one kind of data. Every
    /// option given here overrides the preset's (default: none, each option's own default).
    #[arg(long)]
    pub preset: Option<String>,
    /// Estimation method: ridge, correlation (ambient data, no inputs) or iv (default: ridge).
    #[arg(long)]
    pub estimator: Option<EstimatorKind>,
    /// Correlation lags of the correlation estimator (default 120).
    #[arg(long)]
    pub lags: Option<usize>,
    /// Rank of the correlation estimator's SVD (default: every direction).
    #[arg(long)]
    pub rank: Option<usize>,
    /// Instrument delay of the iv estimator, in pairs (default: the dictionary's delay span + 1).
    #[arg(long)]
    pub instrument_delay: Option<usize>,
    /// Dictionary: state[,const][,poly:D][,rbf:N[:W]][,fourier:N[:S]][,delay:D] (default
    /// state,const,poly:2).
    #[arg(long)]
    pub dictionary: Option<String>,
    /// Ridge parameter mu (default 1e-6).
    #[arg(long, value_parser = non_negative, conflicts_with = "sigma")]
    pub mu: Option<f64>,
    /// Measurement-noise standard deviation: one value, or one per state channel; mu is
    /// then derived from it at the end of warm-up (default: none, --mu is used).
    #[arg(long, value_delimiter = ',', value_parser = non_negative)]
    pub sigma: Option<Vec<f64>>,
    /// Exponential forgetting factor in (0, 1] (default 1).
    #[arg(long)]
    pub forgetting: Option<f64>,
    /// Exact sliding window of this many pairs (default: none, every pair since the start).
    #[arg(long)]
    pub window: Option<usize>,
    /// Warm-up samples before the lifting is fixed (default 200).
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Standardise channels with the warm-up mean and standard deviation (default true).
    #[arg(long, action = clap::ArgAction::Set)]
    pub standardise: Option<bool>,
    /// Seed for RBF centres and Fourier features (default 0).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Exact refactorisation every this many pairs (default 2000).
    #[arg(long)]
    pub refactor_every: Option<usize>,
}

impl SourceArgs {
    /// The fit options, resolved as a stream's are (the preset, then the defaults, under
    /// the same rules), or the option that does not fit.
    pub fn options(&self) -> Result<FitOptions, CommandError> {
        let request = ModelRequest {
            preset: self.preset.clone(),
            estimator: self.estimator,
            lags: self.lags,
            rank: self.rank,
            instrument_delay: self.instrument_delay,
            dictionary: self.dictionary.clone(),
            mu: self.mu,
            sigma: self.sigma.clone(),
            forgetting: self.forgetting,
            window: self.window,
            warmup: self.warmup,
            standardise: self.standardise,
            seed: self.seed,
            refactor_every: self.refactor_every,
        };
        let model = request.resolve().map_err(|e| {
            // The domain names the request's field; here it is an option.
            let option = e.pointer().unwrap_or("/").trim_start_matches('/').replace('_', "-");
            let detail = e.detail();
            let why = detail.split_once("`: ").map_or(detail, |(_, why)| why);
            CommandError::Options(format!("--{option}: {why}"))
        })?;
        let dt = match self.dt {
            Some(dt) => dt,
            None => crate::fit::sample_time(&self.input, self.channels.as_deref(), &self.inputs)?,
        };
        Ok(FitOptions {
            input: self.input.clone(),
            dt,
            inputs: self.inputs.clone(),
            channels: self.channels.clone(),
            units: Vec::new(),
            model,
        })
    }
}

/// Fits the file and writes the model.
pub fn run(args: &FitArgs) -> Result<(), CommandError> {
    let mut options = args.source.options()?;
    options.units = args.units.clone();
    if args.source.dt.is_none() {
        eprintln!("fit: dt = {} s, the median step of column `t`", options.dt);
    }
    let (model, report) = fit_file(&options)?;
    eprintln!("fit: {report}; {} observables, mu = {}", model.dictionary.observables.len(), model.mu);
    let bytes = encode_model(&model, OutputFormat::of_path(args.output.as_deref()))?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, bytes).map_err(|source| CommandError::Write { path: path.clone(), source })?
        }
        None => std::io::stdout().lock().write_all(&bytes)?,
    }
    Ok(())
}
