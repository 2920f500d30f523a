//! `koopstream demo`: streams a simulated system into a server (its own or `--server`) and
//! shows the identified modes against the truth.

use super::{CommandError, runtime};
use crate::demo::DemoArgs;

/// Runs the demo and prints the final table.
pub fn run(args: &DemoArgs) -> Result<(), CommandError> {
    let table = runtime()?.block_on(crate::demo::run(args))?;
    println!("\nIdentified modes against the truth (the final model):\n{table}");
    Ok(())
}
