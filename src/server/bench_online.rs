//! `koopstream bench-online`: times the estimator's per-sample update on a recorded file,
//! through the same `Estimator::push` the service's stream owners call, and can write what a
//! peer library needs to repeat exactly the same updates (bench/peers compares with odmd).

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Instant;

use koopman::{Estimator, MatRef, Progress};
use serde::Serialize;

use crate::fit::{FitError, FitOptions};
use crate::wire::csv::{Row, SampleReader};
use crate::wire::npz::{NpyArray, write_npz};

/// What one timing run measured.
#[derive(Debug, Clone, Serialize)]
pub struct OnlineTiming {
    /// Lifted dimension N (the npz holds A = K^T, so z' = A z as odmd writes it).
    pub observables: usize,
    /// The ridge parameter in use.
    pub mu: f64,
    /// Warm-up samples.
    pub warmup: usize,
    /// Samples pushed inside the timed loop (each one lifting plus one rank-one update).
    pub timed_updates: usize,
    /// Wall time of the timed loop.
    pub seconds: f64,
    /// `seconds / timed_updates`, in nanoseconds.
    pub ns_per_update: f64,
    /// Row index i0 of the first timed pair (lifted[i0], lifted[i0 + 1]).
    pub first_timed_pair: usize,
    /// Exact refactorisations inside the timed loop (scheduled, and after failed health checks).
    pub refactorisations: u64,
    /// Failed health checks inside the timed loop.
    pub health_failures: u64,
    /// The distribution of single updates, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<UpdateDistribution>,
}

/// Times of single updates, in nanoseconds (each timed on its own, clock reads included).
#[derive(Debug, Clone, Serialize)]
pub struct UpdateDistribution {
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// 99.9th percentile.
    pub p999_ns: u64,
    /// Slowest.
    pub max_ns: u64,
    /// Updates slower than ten times the median.
    pub slow_updates: usize,
    /// Their share of the total time.
    pub slow_time_share: f64,
}

impl UpdateDistribution {
    fn of(mut times: Vec<u64>) -> Option<Self> {
        if times.is_empty() {
            return None;
        }
        let total: u64 = times.iter().sum();
        times.sort_unstable();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        let p50 = at(0.5);
        let slow: Vec<u64> = times.iter().copied().filter(|&t| t > 10 * p50).collect();
        Some(Self {
            p50_ns: p50,
            p90_ns: at(0.9),
            p99_ns: at(0.99),
            p999_ns: at(0.999),
            max_ns: at(1.0),
            slow_updates: slow.len(),
            slow_time_share: slow.iter().sum::<u64>() as f64 / total.max(1) as f64,
        })
    }
}

/// Why a timing run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchOnlineError {
    /// Reading the file or building the estimator failed, as in `fit`.
    #[error(transparent)]
    Fit(#[from] FitError),
    /// The benchmark repeats updates on complete data only.
    #[error("{path}: line {line}: a missing value (bench-online needs a file without dropouts)")]
    Dropout {
        /// The path.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
    },
    /// The model was not ready before the file ended.
    #[error("{path}: the model was not ready after {rows} rows; nothing left to time")]
    NothingToTime {
        /// The path.
        path: PathBuf,
        /// Rows read.
        rows: usize,
    },
    /// The `.npz` file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Reads the whole file, warms the estimator up until it has a model, then times
/// `max_updates` further pushes (all of the rest by default), each one on its own too when
/// `distribution` is set.
pub fn bench_online(
    options: &FitOptions,
    max_updates: Option<usize>,
    npz: Option<&PathBuf>,
    distribution: bool,
) -> Result<OnlineTiming, BenchOnlineError> {
    let path = &options.input;
    let (states, n, state_names, input_names) = read_states(options)?;
    let rows = states.len() / n.max(1);
    let config = options.model.estimator_config(state_names, input_names);
    let warmup = config.warmup;
    let mut estimator = Estimator::new(config).map_err(FitError::from)?;
    let push = |estimator: &mut Estimator, i: usize| {
        estimator.push(&states[i * n..(i + 1) * n], &[]).map_err(|source| {
            BenchOnlineError::Fit(FitError::Sample { path: path.clone(), line: i as u64 + 2, source })
        })
    };
    let mut next = 0;
    while next < rows && estimator.progress() != Progress::Ready {
        push(&mut estimator, next)?;
        next += 1;
    }
    if estimator.progress() != Progress::Ready || next >= rows {
        return Err(BenchOnlineError::NothingToTime { path: path.clone(), rows });
    }
    let first_timed_pair = next - 1;
    let timed = max_updates.unwrap_or(usize::MAX).min(rows - next);
    let k0 = estimator.k();
    let p0 = estimator.p();

    let before = estimator.counters();
    // Preallocated before the clock starts; the plain loop stays free of clock reads.
    let mut single = Vec::with_capacity(if distribution { timed } else { 0 });
    let start = Instant::now();
    if distribution {
        for i in next..next + timed {
            let started = Instant::now();
            push(&mut estimator, i)?;
            single.push(started.elapsed().as_nanos() as u64);
        }
    } else {
        for i in next..next + timed {
            push(&mut estimator, i)?;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let after = estimator.counters();

    let observables = estimator.lifting().map_or(0, |l| l.dim());
    if let (Some(out), Some(k0), Some(p0), Some(k_final)) = (npz, k0, p0, estimator.k()) {
        let lifted = lifted_rows(&estimator, &states[..(next + timed) * n]);
        let bytes = write_npz(&[
            ("lifted", NpyArray::Real { shape: vec![next + timed, observables], data: &lifted }),
            ("k0", NpyArray::Real { shape: vec![observables, observables], data: &operator_row_major(k0.as_ref()) }),
            ("p0", NpyArray::Real { shape: vec![observables, observables], data: &symmetric_row_major(p0.as_ref()) }),
            (
                "k_final",
                NpyArray::Real { shape: vec![observables, observables], data: &operator_row_major(k_final.as_ref()) },
            ),
        ]);
        std::fs::write(out, bytes).map_err(|source| BenchOnlineError::Write { path: out.clone(), source })?;
    }
    Ok(OnlineTiming {
        observables,
        mu: estimator.mu().unwrap_or(f64::NAN),
        warmup,
        timed_updates: timed,
        seconds,
        ns_per_update: seconds * 1e9 / timed.max(1) as f64,
        first_timed_pair,
        refactorisations: after.refactorisations - before.refactorisations,
        health_failures: after.health_failures - before.health_failures,
        distribution: UpdateDistribution::of(single),
    })
}

type States = (Vec<f64>, usize, Vec<String>, Vec<String>);

/// The state columns of every row, row after row (inputs are not supported here).
fn read_states(options: &FitOptions) -> Result<States, BenchOnlineError> {
    let path = &options.input;
    let csv = |source| FitError::Csv { path: path.clone(), source };
    let file = File::open(path).map_err(|source| FitError::Open { path: path.clone(), source })?;
    let mut reader =
        SampleReader::new(BufReader::with_capacity(1 << 16, file), options.channels.as_deref(), &[]).map_err(csv)?;
    let layout = reader.layout().clone();
    let state_names = layout.state_names();
    let mut states = Vec::new();
    let mut row = Row::default();
    while reader.next_row(&mut row).map_err(csv)? {
        if row.has_dropout() {
            return Err(BenchOnlineError::Dropout { path: path.clone(), line: reader.line_number() });
        }
        states.extend_from_slice(&row.x);
    }
    Ok((states, state_names.len(), state_names, layout.input_names()))
}

/// Every row lifted with the estimator's (now fixed) lifting; rows whose delay history is
/// not yet full are NaN.
fn lifted_rows(estimator: &Estimator, states: &[f64]) -> Vec<f64> {
    let Some(lifting) = estimator.lifting() else { return Vec::new() };
    let n = lifting.n_states();
    let dim = lifting.dim();
    let mut history = lifting.new_history();
    let mut z = vec![0.0; n];
    let mut out = vec![f64::NAN; states.len() / n * dim];
    for (row, lifted) in states.chunks_exact(n).zip(out.chunks_exact_mut(dim)) {
        lifting.standardise_into(row, &mut z);
        history.push(&z);
        if history.is_full() {
            lifting.lift_into(&history, lifted);
        }
    }
    out
}

/// The operator as z' = A z, row-major: A = K^T (the estimator keeps K = G^-1 R, which maps
/// the lifted state as a row vector).
fn operator_row_major(k: MatRef<'_, f64>) -> Vec<f64> {
    let mut out = Vec::with_capacity(k.nrows() * k.ncols());
    for i in 0..k.ncols() {
        for j in 0..k.nrows() {
            out.push(k[(j, i)]);
        }
    }
    out
}

/// A symmetric matrix, row-major.
fn symmetric_row_major(p: MatRef<'_, f64>) -> Vec<f64> {
    (0..p.nrows()).flat_map(|i| (0..p.ncols()).map(move |j| p[(i, j)])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::options::ModelOptions;
    use koopman::{DictionarySpec, Mat, Regularisation};

    fn options(path: PathBuf) -> FitOptions {
        FitOptions {
            input: path,
            dt: 0.1,
            inputs: vec![],
            channels: None,
            units: vec![],
            model: ModelOptions {
                dictionary: "state,const,poly:2".parse::<DictionarySpec>().unwrap(),
                regularisation: Regularisation::Mu(1e-3),
                forgetting: 1.0,
                window: None,
                warmup: 50,
                standardise: true,
                seed: 0,
                refactor_every: 2000,
                ..ModelOptions::default()
            },
        }
    }

    /// Percentiles by rank, and the slow updates (above ten times the median) with their
    /// share of the total.
    #[test]
    fn the_distribution_counts_the_slow_updates_and_their_time() {
        // 990 updates of 100 ns in a shuffled order, and 10 of 10 000 ns.
        let mut times: Vec<u64> = (0..1000).map(|i| if i % 100 == 7 { 10_000 } else { 100 }).collect();
        times.rotate_left(333);
        let d = UpdateDistribution::of(times).unwrap();
        assert_eq!((d.p50_ns, d.p90_ns, d.p99_ns, d.p999_ns, d.max_ns), (100, 100, 100, 10_000, 10_000));
        assert_eq!(d.slow_updates, 10);
        assert!((d.slow_time_share - 100_000.0 / 199_000.0).abs() < 1e-12);
        assert!(UpdateDistribution::of(Vec::new()).is_none());
    }

    /// Repeating the timed updates as plain rank-one recursive least squares from the
    /// exported start (what a peer does) lands on the exported final operator.
    #[test]
    fn exported_start_and_pairs_reproduce_the_final_operator() {
        let dir = std::env::temp_dir().join(format!("koopstream-bench-online-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let csv = dir.join("data.csv");
        let mut text = String::from("t,x,y\n");
        let (mut x, mut y) = (1.0f64, 0.0f64);
        for k in 0..400 {
            text.push_str(&format!("{},{x},{y}\n", k as f64 * 0.1));
            let (nx, ny) = (0.95 * x - 0.2 * y + 0.01 * (k as f64 * 0.7).sin(), 0.2 * x + 0.9 * y + 0.05 * x * x);
            (x, y) = (nx, ny);
        }
        std::fs::write(&csv, text).unwrap();
        let out = dir.join("out.npz");
        let options = options(csv);
        let timing = bench_online(&options, Some(100), Some(&out), false).unwrap();
        assert_eq!(timing.observables, 6);
        assert_eq!(timing.timed_updates, 100);
        assert!(timing.distribution.is_none());
        let timed_alone = bench_online(&options, Some(100), None, true).unwrap().distribution.unwrap();
        assert!(timed_alone.p50_ns <= timed_alone.p99_ns && timed_alone.p99_ns <= timed_alone.max_ns);
        assert!((0.0..=1.0).contains(&timed_alone.slow_time_share));
        assert!(out.exists());

        // Recompute with the same recursion from the same data in memory.
        let (states, n, names, inputs) = read_states(&options).unwrap();
        let mut estimator = Estimator::new(options.model.estimator_config(names, inputs)).unwrap();
        let mut i = 0;
        while estimator.progress() != Progress::Ready {
            estimator.push(&states[i * n..(i + 1) * n], &[]).unwrap();
            i += 1;
        }
        assert_eq!(i - 1, timing.first_timed_pair);
        let mut k = estimator.k().unwrap();
        let mut p = estimator.p().unwrap();
        for j in i..i + 100 {
            estimator.push(&states[j * n..(j + 1) * n], &[]).unwrap();
        }
        let lifted = lifted_rows(&estimator, &states[..(i + 100) * n]);
        let dim = 6;
        for t in timing.first_timed_pair..timing.first_timed_pair + 100 {
            let x = Mat::from_fn(dim, 1, |r, _| lifted[t * dim + r]);
            let y = Mat::from_fn(dim, 1, |r, _| lifted[(t + 1) * dim + r]);
            let px = &p * &x;
            let gamma = 1.0 / (1.0 + (x.transpose() * &px)[(0, 0)]);
            let residual = &y - k.transpose() * &x;
            k += gamma * &px * residual.transpose();
            p -= gamma * &px * px.transpose();
        }
        let k_final = estimator.k().unwrap();
        let relative = (&k - &k_final).norm_l2() / k_final.norm_l2();
        assert!(relative < 1e-9, "relative difference {relative:e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
