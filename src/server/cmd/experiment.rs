//! `koopstream experiment`: runs the identification experiments (crate `experiments`) and
//! writes the report.

use super::CommandError;
use experiments::ExperimentArgs;

/// Runs the experiments and says where the report is.
pub fn run(args: &ExperimentArgs) -> Result<(), CommandError> {
    experiments::run(args)?;
    eprintln!("experiment: report written to {}", args.out.join("report.md").display());
    Ok(())
}
