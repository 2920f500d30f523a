//! `koopstream bench-online`: times the estimator's per-sample update on a recorded file
//! (what `bench/peers` compares with the Python peers).

use std::path::PathBuf;

use clap::Args;

use super::{CommandError, SourceArgs};

/// Options of `koopstream bench-online`.
#[derive(Debug, Args)]
pub struct BenchOnlineArgs {
    /// The file and the model.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Time at most this many updates after the model is ready (default: the rest of the file).
    #[arg(long)]
    pub max_updates: Option<usize>,
    /// Also write the lifted observables, A and P at the start and A at the end (`.npz`;
    /// default: none).
    #[arg(long)]
    pub npz: Option<PathBuf>,
    /// Time every update on its own and report their distribution (percentiles, and the
    /// share of the time spent in updates slower than ten times the median, such as the
    /// deferred flushes and refactorisations). The clock reads add a few tens of
    /// nanoseconds to each update, so the mean of such a run is not the figure to compare.
    #[arg(long)]
    pub distribution: bool,
}

/// Times the updates and prints the timing as JSON.
pub fn run(args: &BenchOnlineArgs) -> Result<(), CommandError> {
    let timing = crate::bench_online::bench_online(
        &args.source.options()?,
        args.max_updates,
        args.npz.as_ref(),
        args.distribution,
    )?;
    println!("{}", serde_json::to_string(&timing)?);
    Ok(())
}
