//! The building blocks of a koopstream cluster on NATS JetStream (issue 17's "many nodes"):
//! which node should own a stream (rendezvous.rs), the lease that makes it the only owner
//! (lease.rs), the durable log of accepted batches (log.rs), snapshots to restart from
//! (snapshots.rs), stream definitions every node sees (definitions.rs), the list of
//! live nodes (membership.rs), and what owners push to watching clients (pushes.rs). It
//! knows nothing of the server's types: streams are ids and batches, snapshots,
//! definitions and pushes are bytes.
//!
//! `Cluster::connect` creates (or binds) everything it uses, so any node may be the first.
//! It works with Debian's nats-server (2.9) and newer servers: nothing here needs a
//! feature of a later server version (buckets.rs says what had to be done for that).

mod buckets;
mod config;
mod definitions;
mod error;
mod lease;
mod log;
mod membership;
mod names;
mod pushes;
pub mod rendezvous;
mod replay;
mod snapshots;

use std::time::Duration;

use async_nats::jetstream;

pub use config::{ClusterConfig, ConfigError};
pub use definitions::{Created, DEFINITIONS_BUCKET, DefinitionEvent, Definitions};
pub use error::{BoxError, ClusterError, Result};
pub use lease::{LEASES_BUCKET, Lease, LeaseRecord, Leases};
pub use log::{INGEST_STREAM, INGEST_SUBJECT_PREFIX, IngestLog, ingest_subject};
pub use membership::{Heartbeats, Membership, NODES_BUCKET};
pub use names::{MAX_ID_LEN, NodeId, decode_id, encode_stream_id};
pub use pushes::{PUSH_SUBJECT_PREFIX, PushFeed, Pushes, ReceivedPush, push_subject};
pub use snapshots::{
    Restored, SEQUENCE_METADATA_KEY, SNAPSHOT_HEADS_BUCKET, SNAPSHOTS_BUCKET, SnapshotHead, Snapshots,
};

/// The longest wait between two reconnection attempts after NATS went away: short, so
/// ingest resumes within seconds of the server's return.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(2);

/// How long connecting keeps trying to create or bind the stream and buckets, 1 s apart:
/// a server creating file stores for several nodes at once (or for many tests) can take
/// longer than one request timeout for each.
const SETUP_DEADLINE: Duration = Duration::from_secs(30);

/// One node's connection to the cluster and its handles on the shared stream and buckets.
/// Cheap to clone; every clone shares the one connection.
#[derive(Clone)]
pub struct Cluster {
    config: ClusterConfig,
    client: async_nats::Client,
    leases: Leases,
    log: IngestLog,
    snapshots: Snapshots,
    definitions: Definitions,
    membership: Membership,
    pushes: Pushes,
}

impl Cluster {
    /// Connects to NATS and creates or binds the ingest stream and the five buckets. Fails
    /// if NATS cannot be reached within the request timeout: a node asked to join a
    /// cluster does not start alone. Once connected, the client reconnects by itself.
    pub async fn connect(config: ClusterConfig) -> Result<Cluster> {
        let timeout = config.request_timeout();
        let client = async_nats::ConnectOptions::new()
            .name(format!("koopstream {}", config.node_id()))
            .connection_timeout(timeout)
            .request_timeout(Some(timeout))
            .reconnect_delay_callback(|attempts| {
                let attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
                Duration::from_millis(250).saturating_mul(attempts).min(MAX_RECONNECT_DELAY)
            })
            .connect(config.url())
            .await
            .map_err(|err| ClusterError::Connect { url: config.url().to_owned(), source: err.into() })?;
        let jetstream = jetstream::ContextBuilder::new().timeout(timeout).build(client.clone());
        // Nodes starting together race to create the same stream and buckets, and a server
        // creating file stores for all of them can be slower than one request timeout: a
        // request that timed out is tried again (creating is idempotent) before giving up.
        let deadline = tokio::time::Instant::now() + SETUP_DEADLINE;
        let mut attempt = 1;
        loop {
            // Boxed: the setup's future is large (six creations, each with its requests),
            // and a caller awaiting several connections at once would carry it on its stack.
            match Box::pin(Self::open(&config, &client, &jetstream)).await {
                Err(error @ ClusterError::JetStream { .. }) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(%error, attempt, "creating the cluster's stream and buckets failed; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    attempt += 1;
                }
                opened => return opened,
            }
        }
    }

    /// Creates or binds the ingest stream and the five buckets.
    async fn open(
        config: &ClusterConfig,
        client: &async_nats::Client,
        jetstream: &jetstream::Context,
    ) -> Result<Cluster> {
        let node_id = config.node_id().clone();
        let replicas = config.replicas();
        let ttl = config.lease_ttl();
        Ok(Cluster {
            leases: Leases::open(jetstream, node_id.clone(), ttl, replicas).await?,
            log: IngestLog::open(jetstream, replicas).await?,
            snapshots: Snapshots::open(jetstream, replicas).await?,
            definitions: Definitions::open(jetstream, replicas).await?,
            membership: Membership::open(jetstream, node_id, config.advertise().map(str::to_owned), ttl, replicas)
                .await?,
            pushes: Pushes::new(client.clone(), config.node_id().clone()),
            config: config.clone(),
            client: client.clone(),
        })
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    pub fn node_id(&self) -> &NodeId {
        self.config.node_id()
    }

    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    pub fn log(&self) -> &IngestLog {
        &self.log
    }

    pub fn snapshots(&self) -> &Snapshots {
        &self.snapshots
    }

    pub fn definitions(&self) -> &Definitions {
        &self.definitions
    }

    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    pub fn pushes(&self) -> &Pushes {
        &self.pushes
    }

    /// Whether the client is connected to NATS right now (for health checks).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}
