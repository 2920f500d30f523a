//! `koopstream loadgen`: drives many streams over WebSocket and reports throughput and
//! latency.

use super::{CommandError, runtime};
use crate::loadgen::LoadgenArgs;

/// Runs the load and prints one report per step.
pub fn run(args: &LoadgenArgs) -> Result<(), CommandError> {
    for report in runtime()?.block_on(crate::loadgen::run(args))? {
        println!("{report}");
    }
    Ok(())
}
