//! koopstream: the service around the `koopman` estimator: the server's entry point that
//! wires the layers together, configuration and telemetry, and the commands of the binary
//! (`cmd`). The service domain, the store, the wire formats and the HTTP layer are crates of
//! their own, re-exported here as `service`, `store`, `wire` and `api`.

/// The HTTP layer (crate `api`): routes, middleware, problem+json, the OpenAPI document.
pub use api;
pub mod access;
pub mod bench_online;
pub mod client;
pub mod cluster_node;
pub mod cmd;
pub mod config;
pub mod demo;
pub mod fit;
pub mod loadgen;
pub mod pmu_cli;
pub mod pmu_serve;
pub mod progress;
pub mod server;
/// The service domain (crate `domain`), under the name the rest of the package uses.
pub use domain as service;
pub mod simulate_cli;
/// Durable storage (crate `store`): the redb file behind the domain's `Journal` port.
pub use store;
pub mod telemetry;
pub mod tls;
pub mod truth;
/// The wire formats (crate `wire`): bodies into domain batches, documents, protobuf.
pub use wire;
