//! `koopstream truth`: prints a test system's ground truth (modes, limit cycle) as JSON.

use super::CommandError;
use crate::simulate_cli::{TruthArgs, run_truth};

/// Prints the truth.
pub fn run(args: &TruthArgs) -> Result<(), CommandError> {
    println!("{}", run_truth(args)?);
    Ok(())
}
