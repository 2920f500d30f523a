//! `serve --cluster`: this node's part in a cluster of koopstream nodes on NATS JetStream
//! (docs/cluster.md). Batches ingested anywhere go to the cluster's log (shared.rs); every
//! node follows the definitions (definitions.rs); each stream is applied by the one node
//! holding its lease (ownership.rs, holder.rs); reads are forwarded to it (forward.rs);
//! what it pushes reaches the watchers on every node (pushes.rs); the log is compacted
//! behind the snapshots (compaction.rs).

mod compaction;
mod definitions;
mod forward;
mod holder;
mod ownership;
pub mod peer;
mod pushes;
mod shared;

use std::sync::Arc;
use std::time::Duration;

use cluster::{Cluster, ClusterConfig, Heartbeats};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::AppInner;

pub use forward::{FORWARDED, Forwarder, SERVED_BY, forward};
pub use peer::{PeerClient, PeerTlsError};
pub use shared::{JetStreamLog, message_id};

/// How long stopping waits for the streams to be handed off.
const HAND_OFF_LIMIT: Duration = Duration::from_secs(15);

/// A node id for a node not given one: `node-` and 8 random hex digits.
pub fn generated_node_id() -> String {
    let mut bytes = [0u8; 4];
    let random = ring::rand::SystemRandom::new();
    let _ = ring::rand::SecureRandom::fill(&random, &mut bytes);
    format!("node-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Connects to the cluster (failing, rather than starting alone, when NATS cannot be
/// reached), advertising `advertise` as this node's API.
pub async fn connect(config: ClusterConfig, advertise: String) -> Result<Cluster, cluster::ClusterError> {
    Cluster::connect(config.with_advertise(advertise)).await
}

/// The node's cluster tasks: heartbeats, the definitions it follows, the streams it owns.
pub struct Node {
    cluster: Cluster,
    heartbeats: Heartbeats,
    definitions: JoinHandle<()>,
    pushes: JoinHandle<()>,
    compaction: JoinHandle<()>,
    ownership: JoinHandle<()>,
    stopping: watch::Sender<bool>,
}

impl Node {
    /// Starts the tasks; returns them with the forwarding the router needs.
    pub fn start(
        cluster: Cluster,
        state: Arc<AppInner>,
        peers: PeerClient,
        max_body_bytes: usize,
        snapshot_every: u64,
        snapshot_age: Duration,
        compact_every: Duration,
    ) -> (Node, Arc<Forwarder>) {
        let owned = ownership::Owned::default();
        let heartbeats = cluster.membership().start_heartbeats();
        let definitions = tokio::spawn(definitions::follow(cluster.clone(), state.clone()));
        let pushes = tokio::spawn(pushes::deliver(cluster.clone(), state.clone(), owned.clone()));
        let compaction = tokio::spawn(compaction::run(cluster.clone(), compact_every, state.metrics.clone()));
        let (stopping, stopped) = watch::channel(false);
        let event_streams = state.event_streams.clone();
        let context = holder::HolderContext {
            cluster: cluster.clone(),
            state,
            owned: owned.clone(),
            snapshot_every,
            snapshot_age,
        };
        let ownership = ownership::start(context, stopped);
        let forwarder = Arc::new(Forwarder::new(cluster.clone(), owned, peers, event_streams, max_body_bytes));
        (Node { cluster, heartbeats, definitions, pushes, compaction, ownership, stopping }, forwarder)
    }

    /// Hands every owned stream off (snapshot, release) and leaves the cluster, so the
    /// others take its streams at once instead of after the lease TTL.
    pub async fn stop(self) {
        // Leaving first makes the other nodes the preferred owners, so they are ready to
        // take each stream as soon as its lease is released below.
        self.heartbeats.stop();
        if let Err(error) = self.cluster.membership().leave().await {
            tracing::warn!(%error, "leaving the cluster failed; this node's heartbeat expires by itself");
        }
        let _ = self.stopping.send(true);
        if tokio::time::timeout(HAND_OFF_LIMIT, self.ownership).await.is_err() {
            tracing::warn!("some streams were not handed off in time; their leases expire by themselves");
        }
        self.definitions.abort();
        self.pushes.abort();
        self.compaction.abort();
    }
}
