//! The koopstream binary: parses the command line and runs the chosen command
//! (`koopstream::cmd`, one module per command).

use clap::Parser;
use koopstream::cmd::{Cli, run};

fn main() -> anyhow::Result<()> {
    run(Cli::parse())?;
    Ok(())
}
