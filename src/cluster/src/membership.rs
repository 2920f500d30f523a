//! Which nodes are alive: each node rewrites its own key in the key-value bucket
//! `koopstream_nodes` every TTL/3, and the bucket's `max_age` (the lease TTL) removes the
//! key of a node that stopped. The live nodes are the keys present; they feed rendezvous.rs.
//!
//! Like a lease, a node's key lives TTL past its last heartbeat, so a crashed node is
//! listed for at most about one TTL. A node that shuts down cleanly calls `leave` so the
//! others see it go at once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::buckets::{KvBucket, open_kv_bucket};
use crate::error::{ClusterError, Result, require_connected};
use crate::lease::unix_millis;
use crate::names::{NodeId, decode_id};

/// The bucket's name.
pub const NODES_BUCKET: &str = "koopstream_nodes";

/// A heartbeat's value, as JSON: the key says the node is live; `http` is where its API
/// answers (for forwarded reads); the time is for people reading the bucket.
#[derive(Serialize, Deserialize)]
struct Heartbeat {
    node: String,
    beat_unix_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http: Option<String>,
}

/// The nodes bucket, seen from one node.
#[derive(Clone)]
pub struct Membership {
    store: kv::Store,
    node_id: NodeId,
    advertise: Option<String>,
    client: async_nats::Client,
    ttl: Duration,
    /// When this node's last successful heartbeat was sent: its key lives on the server at
    /// least until then plus the TTL. Shared by the clones of this handle.
    last_beat: Arc<Mutex<Option<Instant>>>,
}

impl Membership {
    /// Creates the bucket, or updates it to this TTL and replicas; idempotent.
    pub(crate) async fn open(
        jetstream: &jetstream::Context,
        node_id: NodeId,
        advertise: Option<String>,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Self> {
        let store = open_kv_bucket(
            jetstream,
            KvBucket {
                name: NODES_BUCKET,
                description: "koopstream: live nodes (heartbeats)",
                history: 1,
                max_age: ttl,
                max_value_size: 4096,
                replicas,
            },
        )
        .await?;
        let last_beat = Arc::new(Mutex::new(None));
        Ok(Membership { store, node_id, advertise, client: jetstream.client(), ttl, last_beat })
    }

    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// How often a heartbeat is written: TTL/3, so two may fail before the key expires.
    fn interval(&self) -> Duration {
        self.ttl / 3
    }

    /// Writes this node's heartbeat once.
    pub async fn heartbeat(&self) -> Result<()> {
        let beat = Heartbeat {
            node: self.node_id.as_str().to_owned(),
            beat_unix_ms: unix_millis(),
            http: self.advertise.clone(),
        };
        let value = serde_json::to_vec(&beat)
            .map_err(|err| ClusterError::Malformed { what: "heartbeat", detail: err.to_string() })?;
        require_connected(&self.client)?;
        let sent = Instant::now();
        self.store
            .put(self.node_id.encoded(), Bytes::from(value))
            .await
            .map_err(|err| ClusterError::jetstream("writing a heartbeat", err))?;
        *self.last_beat.lock().unwrap_or_else(|e| e.into_inner()) = Some(sent);
        Ok(())
    }

    /// Heartbeats every TTL/3 in a task of the current tokio runtime, until the returned
    /// handle is dropped or stopped. A failed heartbeat is logged and retried at the next
    /// tick: NATS may be restarting, and the key only expires after three missed beats.
    pub fn start_heartbeats(&self) -> Heartbeats {
        let membership = self.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(membership.interval());
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(err) = membership.heartbeat().await {
                    tracing::warn!(node = %membership.node_id, error = %err, "heartbeat failed");
                }
            }
        });
        Heartbeats { task }
    }

    /// Removes this node's key, for a clean shutdown (stop the heartbeats first).
    pub async fn leave(&self) -> Result<()> {
        *self.last_beat.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.store
            .delete(self.node_id.encoded())
            .await
            .map_err(|err| ClusterError::jetstream("leaving the cluster", err))
    }

    /// The HTTP address a live node advertises, `None` if it is not live or advertises none.
    pub async fn address_of(&self, node_id: &NodeId) -> Result<Option<String>> {
        let value = self
            .store
            .get(node_id.encoded())
            .await
            .map_err(|err| ClusterError::jetstream("reading a heartbeat", err))?;
        let Some(value) = value else { return Ok(None) };
        let beat: Heartbeat = serde_json::from_slice(&value)
            .map_err(|err| ClusterError::Malformed { what: "heartbeat", detail: err.to_string() })?;
        Ok(beat.http)
    }

    /// Whether this node's last heartbeat is recent enough that its key is still live.
    fn beating(&self) -> bool {
        let last = *self.last_beat.lock().unwrap_or_else(|e| e.into_inner());
        last.is_some_and(|sent| sent.elapsed() < self.ttl)
    }

    /// The nodes whose heartbeat has not expired, sorted by id. This node is listed while
    /// its own last heartbeat is younger than the TTL, even if the listing missed its key.
    pub async fn live_nodes(&self) -> Result<Vec<NodeId>> {
        // Listing reads the bucket through a consumer, which has no request timeout of its
        // own: across a NATS restart it can wait for ever, and with it the ownership loop.
        let limit = self.interval();
        let listing = async {
            self.store
                .keys()
                .await
                .map_err(|err| ClusterError::jetstream("listing nodes", err))?
                .try_collect::<Vec<String>>()
                .await
                .map_err(|err| ClusterError::jetstream("listing nodes", err))
        };
        let keys = tokio::time::timeout(limit, listing)
            .await
            .map_err(|_| ClusterError::TimedOut { operation: "listing nodes", limit })??;
        let mut nodes: Vec<NodeId> =
            keys.iter().filter_map(|key| decode_id(key)).filter_map(|id| NodeId::new(id).ok()).collect();
        // A key replaced by its next heartbeat while the listing runs can be missed (the
        // listing ends at the last message it was told was pending). For the other nodes
        // that costs nothing (a lease they hold cannot be taken), but a node that missed
        // itself would hand all its streams off and take them back a tick later. Its own
        // liveness it knows first-hand: the key lives at least TTL past the last beat sent.
        if !nodes.contains(&self.node_id) && self.beating() {
            nodes.push(self.node_id.clone());
        }
        nodes.sort();
        Ok(nodes)
    }
}

/// The heartbeat task; it stops when this is dropped.
pub struct Heartbeats {
    task: JoinHandle<()>,
}

impl Heartbeats {
    /// Stops the heartbeats (the same as dropping the handle, said explicitly).
    pub fn stop(self) {}
}

impl Drop for Heartbeats {
    fn drop(&mut self) {
        self.task.abort();
    }
}
