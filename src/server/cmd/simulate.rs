//! `koopstream simulate`: simulates a test system with measurement noise and writes it as
//! CSV (to a file or standard output).

use std::io::Write;

use super::CommandError;
use crate::simulate_cli::{SimulateArgs, run_simulate};

/// Simulates and writes the CSV.
pub fn run(args: &SimulateArgs) -> Result<(), CommandError> {
    match &args.output {
        Some(path) => {
            let write = |source| CommandError::Write { path: path.clone(), source };
            let file = std::fs::File::create(path).map_err(write)?;
            let mut out = std::io::BufWriter::new(file);
            run_simulate(args, &mut out)?;
            out.flush().map_err(write)?;
        }
        None => run_simulate(args, &mut std::io::BufWriter::new(std::io::stdout().lock()))?,
    }
    Ok(())
}
