//! `koopstream fit`: stream a recorded file through the same online estimator the service
//! uses, one sample at a time, and write the model document.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

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
    /// The model could not be documented.
    #[error(transparent)]
    Model(#[from] ModelDocError),
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
                if t - previous > 1.5 * options.dt {
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
    Ok((ModelDoc::from_estimator(&estimator, options.dt)?, report))
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
