//! koopstream: the service around the `koopman` estimator: the HTTP and WebSocket layer
//! (`api`), the server's entry point, configuration and telemetry, and the commands of the
//! binary (`cmd`). The service domain, the store and the wire formats are crates of their
//! own, re-exported here as `service`, `store` and `wire`.

pub mod api;
pub mod bench_online;
pub mod client;
pub mod cmd;
pub mod config;
pub mod demo;
pub mod fit;
pub mod loadgen;
pub mod progress;
pub mod server;
/// The service domain (crate `domain`), under the name the rest of the package uses.
pub use domain as service;
pub mod simulate_cli;
/// Durable storage (crate `store`): the redb file behind the domain's `Journal` port.
pub use store;
pub mod telemetry;
/// The wire formats (crate `wire`): bodies into domain batches, documents, protobuf.
pub use wire;
