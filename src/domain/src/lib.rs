//! The service domain of koopstream: stream definitions, validated batches, the owner task
//! of each stream with its command queue, published snapshots, spectra, the registry of
//! streams, metrics, the domain error with its kinds, and the `Journal` port that durable
//! storage implements. It knows no HTTP, JSON or OpenAPI: the transports convert at their
//! edge, and only they map error kinds to their codes.

pub mod batch;
pub mod command;
pub mod core;
pub mod definition;
pub mod error;
pub mod flat_line;
pub mod journal;
pub mod method;
pub mod metrics;
pub mod modes;
pub mod options;
pub mod outlier;
pub mod owner;
pub mod presets;
pub mod recent;
pub mod registry;
pub mod shared_log;
pub mod snapshot;
pub mod source;
pub mod spectra;
pub mod trend;
pub mod watermark;
