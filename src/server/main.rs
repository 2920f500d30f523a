//! The koopstream binary: parses the command line and runs the chosen command.

use std::io::Write;

use anyhow::Context;
use clap::Parser;
use koopstream::cli::{Cli, Command, ServeArgs};
use koopstream::config::ServiceConfig;
use koopstream::fit::fit_file;
use koopstream::simulate_cli::{run_simulate, run_truth};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(&args)?,
        Command::Fit(args) => {
            let (model, report) = fit_file(&args.source.options())?;
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
        Command::Demo(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let table = runtime.block_on(koopstream::demo::run(&args))?;
            println!("\nIdentified modes against the truth:\n{table}");
        }
        Command::Loadgen(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            for report in runtime.block_on(koopstream::loadgen::run(&args))? {
                println!("{report}");
            }
        }
        Command::BenchOnline(args) => {
            let timing = koopstream::bench_online::bench_online(
                &args.source.options(),
                args.max_updates,
                args.npz.as_ref(),
                args.distribution,
            )?;
            println!("{}", serde_json::to_string(&timing)?);
        }
        Command::Experiment(args) => {
            experiments::run(&args)?;
            eprintln!("experiment: report written to {}", args.out.join("report.md").display());
        }
    }
    Ok(())
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let config = ServiceConfig::load(args.config.as_deref(), &args.overrides())?;
    koopstream::telemetry::init(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (key `listen`)", config.listen))?;
        koopstream::server::run(listener, config, shutdown_signal()).await?;
        anyhow::Ok(())
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
