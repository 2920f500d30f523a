//! `koopstream fit`: stream a recorded file through the same online estimator the service
//! uses, one sample at a time, and write the model document.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use koopman::{ConfigError, Estimator, Progress, SampleError};

use crate::progress::ProgressBar;
use crate::service::options::ModelOptions;
use crate::wire::csv::{CsvError, Row, SampleReader};
use crate::wire::model_doc::{ModelDoc, ModelDocError};

/// Options of a fit (the same meaning as the service's stream options).
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// The sample file.
    pub input: PathBuf,
    /// Sample period in seconds.
    pub dt: f64,
    /// Columns that are inputs.
    pub inputs: Vec<String>,
    /// Columns that are the state (default: all but `t` and the inputs).
    pub channels: Option<Vec<String>>,
    /// Units of columns, by column name (the model document's channel units; a column not
    /// named here has none).
    pub units: Vec<(String, String)>,
    /// The model.
    pub model: ModelOptions,
}

/// Why a fit failed.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// The file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a valid sample file.
    #[error("{path}: {source}")]
    Csv {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        source: CsvError,
    },
    /// The options do not make a valid model.
    #[error("invalid options: {0}")]
    Config(#[from] ConfigError),
    /// A row the estimator refused.
    #[error("{path}: line {line}: {source}")]
    Sample {
        /// The path.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        source: SampleError,
    },
    /// The `t` column is empty on a row.
    #[error("{path}: line {line}: column `t` is empty")]
    MissingTime {
        /// The path.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
    },
    /// Not enough usable rows for a model.
    #[error("{path}: too few rows: {rows} data rows gave {pairs} pairs, and no model could be formed ({state})")]
    TooFewRows {
        /// The path.
        path: PathBuf,
        /// Data rows read.
        rows: u64,
        /// Pairs formed.
        pairs: u64,
        /// Where the estimator stopped.
        state: String,
    },
    /// A column was given two units.
    #[error("{path}: --units gives `{name}` twice")]
    UnitGivenTwice {
        /// The path.
        path: PathBuf,
        /// The column.
        name: String,
    },
    /// A unit was given for a column the model does not have.
    #[error("{path}: --units names `{name}`, which is neither a state channel nor an input (they are: {columns})")]
    UnitOfNoColumn {
        /// The path.
        path: PathBuf,
        /// The name given.
        name: String,
        /// The state channels and inputs, comma-separated.
        columns: String,
    },
    /// The model could not be documented.
    #[error(transparent)]
    Model(#[from] ModelDocError),
    /// No `--dt`, and the `t` column does not give a sample time.
    #[error("{path}: no sample time: {reason}; give it with --dt")]
    SampleTime {
        /// The path.
        path: PathBuf,
        /// Why the `t` column does not give one.
        reason: String,
    },
}

/// How far a step of the `t` column may stray from the median step, as a fraction of it,
/// when the sample time is taken from the column: 10 % admits time-stamp jitter of a few
/// per cent of a period and still refuses a file sampled at two rates.
pub const DT_TOLERANCE: f64 = 0.1;

/// A step of at least this many median steps is a gap in the record (it breaks the chain
/// of pairs, as a jump of more than 1.5 dt does with `--dt`), not an irregular step.
const GAP_STEPS: f64 = 1.5;

/// The sample time of a file without `--dt`: the median difference of its `t` column.
/// Refused when there is no `t` column or fewer than two rows, when `t` does not increase
/// from row to row, or when a step is neither within [`DT_TOLERANCE`] of the median nor a
/// gap of at least 1.5 median steps. The median is kept to 9 significant digits.
pub fn sample_time(path: &Path, channels: Option<&[String]>, inputs: &[String]) -> Result<f64, FitError> {
    let file = File::open(path).map_err(|source| FitError::Open { path: path.to_path_buf(), source })?;
    sample_time_of(BufReader::new(file), path, channels, inputs)
}

/// [`sample_time`] over any buffered reader (`path` names it in errors).
pub fn sample_time_of(
    reader: impl BufRead,
    path: &Path,
    channels: Option<&[String]>,
    inputs: &[String],
) -> Result<f64, FitError> {
    let refuse = |reason: String| FitError::SampleTime { path: path.to_path_buf(), reason };
    let csv = |source| FitError::Csv { path: path.to_path_buf(), source };
    let mut samples = SampleReader::new(reader, channels, inputs).map_err(csv)?;
    let mut row = Row::default();
    // (line, step) of every row after the first.
    let mut steps: Vec<(u64, f64)> = Vec::new();
    let mut last: Option<f64> = None;
    while samples.next_row(&mut row).map_err(csv)? {
        let line = samples.line_number();
        let Some(t) = row.t else {
            return Err(refuse("the file has no `t` column".into()));
        };
        if !t.is_finite() {
            return Err(FitError::MissingTime { path: path.to_path_buf(), line });
        }
        if let Some(previous) = last {
            if t <= previous {
                return Err(refuse(format!("`t` does not increase at line {line} ({t} after {previous})")));
            }
            steps.push((line, t - previous));
        }
        last = Some(t);
    }
    if steps.is_empty() {
        return Err(refuse("fewer than two rows with a time".into()));
    }
    let mut sorted: Vec<f64> = steps.iter().map(|(_, step)| *step).collect();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    let median = if sorted.len() % 2 == 1 { sorted[middle] } else { 0.5 * (sorted[middle - 1] + sorted[middle]) };
    for &(line, step) in &steps {
        let off = step / median - 1.0;
        if off.abs() > DT_TOLERANCE && step < GAP_STEPS * median {
            return Err(refuse(format!(
                "`t` is irregular: the step to line {line} is {step} s, {:.0} % off the median step {median} s \
                 (the tolerance is {:.0} %, and a gap is at least {GAP_STEPS} steps)",
                100.0 * off.abs(),
                100.0 * DT_TOLERANCE
            )));
        }
    }
    // Differences of decimal time stamps carry rounding (0.09999999999999432 for 0.1):
    // the period is kept to the digits a written time stamp resolves.
    Ok(significant(median, DT_DIGITS))
}

/// The significant digits the sample time taken from `t` keeps: time stamps written by
/// `simulate` resolve 1e-9 of a period, and a step between two of them no better.
const DT_DIGITS: usize = 9;

/// `value` rounded to `digits` significant decimal digits (the nearest `f64`).
fn significant(value: f64, digits: usize) -> f64 {
    let decimals = digits.saturating_sub(1);
    format!("{value:.decimals$e}").parse().unwrap_or(value)
}

/// What the fit saw, besides the model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FitReport {
    /// Data rows read.
    pub rows: u64,
    /// Pairs formed.
    pub pairs: u64,
    /// Rows with a missing value (each breaks the chain).
    pub dropouts: u64,
    /// Jumps in `t` of more than 1.5 dt (each breaks the chain).
    pub time_gaps: u64,
    /// Rows whose `t` did not advance (skipped).
    pub out_of_order: u64,
}

impl std::fmt::Display for FitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows, {} pairs, {} dropouts, {} time gaps, {} rows out of order skipped",
            self.rows, self.pairs, self.dropouts, self.time_gaps, self.out_of_order
        )
    }
}

/// Runs a fit over the file and returns the model document and what was seen.
pub fn fit_file(options: &FitOptions) -> Result<(ModelDoc, FitReport), FitError> {
    let path = &options.input;
    let file = File::open(path).map_err(|source| FitError::Open { path: path.clone(), source })?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    fit_reader(options, BufReader::with_capacity(1 << 16, file), size)
}

/// Runs a fit over any buffered reader (`size` in bytes, for the progress bar).
pub fn fit_reader(options: &FitOptions, reader: impl BufRead, size: u64) -> Result<(ModelDoc, FitReport), FitError> {
    let path = &options.input;
    let csv = |source| FitError::Csv { path: path.clone(), source };
    let mut samples = SampleReader::new(reader, options.channels.as_deref(), &options.inputs).map_err(csv)?;
    let layout = samples.layout().clone();
    // Checked before the first row: a misspelt column should not cost a whole fit.
    let (state_units, input_units) = units_of(options, &layout.state_names(), &layout.input_names())?;
    let config = options.model.estimator_config(layout.state_names(), layout.input_names());
    // A preset's rank is a ceiling: fitted to the file's observables before the estimator starts.
    let model = options.model.clone().fit_rank(config.n_lifted());
    let mut estimator = Estimator::new(model.estimator_config(layout.state_names(), layout.input_names()))?;
    let mut report = FitReport::default();
    let mut progress = ProgressBar::new(size, "rows");
    let mut row = Row::default();
    let mut last_t: Option<f64> = None;
    while samples.next_row(&mut row).map_err(csv)? {
        report.rows += 1;
        let line = samples.line_number();
        if let Some(t) = row.t {
            if !t.is_finite() {
                return Err(FitError::MissingTime { path: path.clone(), line });
            }
            if let Some(previous) = last_t {
                if t <= previous {
                    report.out_of_order += 1;
                    continue;
                }
                if t - previous > GAP_STEPS * options.dt {
                    report.time_gaps += 1;
                    estimator.break_chain();
                }
            }
            last_t = Some(t);
        }
        if row.has_dropout() {
            report.dropouts += 1;
            estimator.break_chain();
            continue;
        }
        estimator.push(&row.x, &row.u).map_err(|source| FitError::Sample { path: path.clone(), line, source })?;
        progress.update(samples.bytes_read(), report.rows);
    }
    progress.finish(report.rows);
    // A method solved every so often (the correlation estimator) solves once more, so the
    // model covers every row; ridge and instrumental variables are current already.
    if matches!(estimator.config().method, koopman::Method::Correlation { .. }) {
        let _ = estimator.solve_now();
    }
    report.pairs = estimator.counters().pairs;
    if estimator.progress() != Progress::Ready {
        return Err(FitError::TooFewRows {
            path: path.clone(),
            rows: report.rows,
            pairs: report.pairs,
            state: describe(estimator.progress()),
        });
    }
    Ok((ModelDoc::from_estimator(&estimator, options.dt)?.with_units(state_units, input_units), report))
}

/// The state channels' and the inputs' units, in column order, from `--units`.
fn units_of(
    options: &FitOptions,
    states: &[String],
    inputs: &[String],
) -> Result<(Vec<String>, Vec<String>), FitError> {
    let mut state_units = vec![String::new(); states.len()];
    let mut input_units = vec![String::new(); inputs.len()];
    for (k, (name, unit)) in options.units.iter().enumerate() {
        if options.units[..k].iter().any(|(other, _)| other == name) {
            return Err(FitError::UnitGivenTwice { path: options.input.clone(), name: name.clone() });
        }
        let slot = match (states.iter().position(|s| s == name), inputs.iter().position(|s| s == name)) {
            (Some(k), _) => &mut state_units[k],
            (None, Some(k)) => &mut input_units[k],
            (None, None) => {
                return Err(FitError::UnitOfNoColumn {
                    path: options.input.clone(),
                    name: name.clone(),
                    columns: states.iter().chain(inputs).map(String::as_str).collect::<Vec<_>>().join(", "),
                });
            }
        };
        *slot = unit.clone();
    }
    Ok((state_units, input_units))
}

fn describe(progress: Progress) -> String {
    match progress {
        Progress::WarmingUp { have, need } => format!("warm-up needs {need} samples, got {have}"),
        Progress::AwaitingRank => {
            "the Gram matrix is singular: more pairs than observables are needed with mu = 0".into()
        }
        Progress::Ready => "ready".into(),
    }
}

/// How `fit --output` writes the model, chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// The `koopstream.model.v1` JSON document (standard output, `.json` and any other
    /// extension, as before the binary formats existed).
    Json,
    /// A MATLAB Level-5 `.mat` file.
    Mat,
    /// A NumPy `.npz` archive with the same variables as the `.mat` file.
    Npz,
}

impl OutputFormat {
    /// The format of an output path (`.mat` and `.npz` in any case); JSON otherwise.
    pub fn of_path(path: Option<&std::path::Path>) -> Self {
        let extension = path.and_then(|p| p.extension()).and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("mat") => Self::Mat,
            Some("npz") => Self::Npz,
            _ => Self::Json,
        }
    }
}

/// The model in an output format (JSON pretty-printed, with a final newline).
pub fn encode_model(doc: &ModelDoc, format: OutputFormat) -> Result<Vec<u8>, crate::wire::export::ExportError> {
    match format {
        OutputFormat::Json => {
            let mut json = serde_json::to_vec_pretty(doc).expect("a model document always serialises");
            json.push(b'\n');
            Ok(json)
        }
        OutputFormat::Mat => crate::wire::export::to_mat(doc),
        OutputFormat::Npz => crate::wire::export::to_npz(doc),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt_of(text: &str) -> Result<f64, FitError> {
        sample_time_of(text.as_bytes(), Path::new("x.csv"), None, &[])
    }

    #[test]
    fn the_sample_time_is_the_median_step_of_t() {
        assert_eq!(dt_of("t,x\n0,1\n0.1,2\n0.2,3\n0.30000000000000004,4\n").unwrap(), 0.1);
        assert_eq!(dt_of("t,x\n100.1,1\n100.2,2\n100.3,3\n").unwrap(), 0.1, "not 0.09999999999999432");
        assert_eq!(significant(1.0 / 30.0, 9), 0.0333333333);
        // Jitter within the tolerance and a gap are both allowed.
        let dt = dt_of("t,x\n0,1\n0.105,2\n0.2,3\n0.3,1\n0.9,2\n1.0,3\n").unwrap();
        assert!((dt - 0.1).abs() < 1e-12, "{dt}");
    }

    #[test]
    fn a_t_column_that_gives_no_sample_time_is_refused() {
        let refused = [
            ("x\n1\n2\n", "has no `t` column"),
            ("t,x\n0,1\n", "fewer than two rows"),
            ("t,x\n0,1\n0.1,2\n0.1,3\n", "`t` does not increase at line 4"),
            ("t,x\n0,1\n0.1,2\n0.2,3\n0.33,4\n0.43,5\n", "the step to line 5 is 0.13"),
        ];
        for (text, expected) in refused {
            let message = dt_of(text).unwrap_err().to_string();
            assert!(message.contains(expected) && message.contains("--dt"), "{message}");
        }
    }
}
