//! Logging with tracing: human-readable lines on a terminal, JSON lines otherwise (or as
//! configured), filtered by the configured level.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, ServiceConfig};

/// Installs the global subscriber (once per process).
pub fn init(config: &ServiceConfig) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second call (tests) finds a subscriber installed and leaves it.
    let _ = if json { builder.json().try_init() } else { builder.try_init() };
}
