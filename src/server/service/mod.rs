//! The streaming core of the service: stream definitions, validated batches, the owner
//! task of each stream, its published snapshots, and the registry of streams.

pub mod batch;
pub mod command;
pub mod core;
pub mod definition;
pub mod error;
pub mod journal;
pub mod metrics;
pub mod options;
pub mod owner;
pub mod registry;
pub mod snapshot;
pub mod spectra;
