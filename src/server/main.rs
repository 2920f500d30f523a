//! The koopstream binary: parses the command line and runs the chosen command.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use koopstream::cli::{Cli, Command};
use koopstream::fit::fit_file;
use koopstream::simulate_cli::{run_simulate, run_truth};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Fit(args) => {
            let (model, report) = fit_file(&args.options())?;
            eprintln!("fit: {report}; {} observables, mu = {:e}", model.dictionary.observables.len(), model.mu);
            let json = serde_json::to_string_pretty(&model)?;
            match &args.output {
                Some(path) => {
                    std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))?
                }
                None => writeln!(std::io::stdout().lock(), "{json}")?,
            }
        }
        Command::Simulate(args) => match &args.output {
            Some(path) => {
                let file = std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
                let mut out = std::io::BufWriter::new(file);
                run_simulate(&args, &mut out)?;
                out.flush()?;
            }
            None => run_simulate(&args, &mut std::io::BufWriter::new(std::io::stdout().lock()))?,
        },
        Command::Truth(args) => println!("{}", run_truth(&args)?),
        Command::Experiment(args) => {
            koopstream::experiment::run(&args)?;
            eprintln!("experiment: report written to {}", args.out.join("report.md").display());
        }
    }
    Ok(())
}
