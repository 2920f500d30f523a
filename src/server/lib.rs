//! koopstream: the service shell around the `koopman` estimator. Everything that does I/O
//! lives here: the command line, file input, and the model document.

pub mod cli;
pub mod csv_input;
pub mod fit;
pub mod model_doc;
pub mod progress;
pub mod simulate_cli;
pub mod identify;
pub mod experiment;
pub mod options;
pub mod api;
pub mod config;
pub mod metrics;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod client;
pub mod demo;
pub mod loadgen;
pub mod store;
