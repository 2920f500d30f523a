//! Which streams this node owns: every tick it lists the live nodes, and for every stream
//! whose preferred owner (rendezvous hashing) is this node it tries to take the lease; a
//! stream held here whose preferred owner is now another live node is snapshotted and
//! handed off, so a joining node takes only its share. A node whose own heartbeat lapsed is
//! preferred for nothing and gives everything up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cluster::{ClusterError, rendezvous};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::holder::{HolderContext, Release, hold};

/// The longest wait between two looks at ownership (shorter with a short lease TTL).
const MAX_TICK: Duration = Duration::from_secs(1);

/// A stream held by this node: its task and the switch that releases it.
struct Held {
    release: watch::Sender<Release>,
    task: JoinHandle<()>,
}

/// The ownership loop's state.
pub struct Ownership {
    context: HolderContext,
    held: HashMap<String, Held>,
}

impl Ownership {
    pub fn new(context: HolderContext) -> Self {
        Self { context, held: HashMap::new() }
    }

    /// Runs until `stopping` turns true, then hands every stream off (snapshot, release).
    pub async fn run(mut self, mut stopping: watch::Receiver<bool>) {
        let tick = self.context.cluster.config().renew_interval().min(MAX_TICK);
        let mut ticks = tokio::time::interval(tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.look().await,
                changed = stopping.changed() => {
                    let stop = changed.is_err() || *stopping.borrow();
                    if stop {
                        break;
                    }
                }
            }
        }
        for (_, held) in self.held.drain() {
            held.release.send_replace(Release::HandOff);
            if let Err(error) = held.task.await {
                tracing::error!(%error, "a stream holder failed");
            }
        }
    }

    async fn look(&mut self) {
        self.held.retain(|_, held| !held.task.is_finished());
        let cluster = &self.context.cluster;
        let live = match cluster.membership().live_nodes().await {
            Ok(live) => live,
            Err(error) => {
                tracing::warn!(%error, "cannot list the live nodes");
                return;
            }
        };
        let me = cluster.node_id();
        let streams = self.context.state.registry.list();
        for (id, held) in &self.held {
            if !streams.iter().any(|handle| &handle.definition.id == id) {
                held.release.send_replace(Release::Deleted);
            }
        }
        for handle in streams {
            let id = &handle.definition.id;
            let preferred = rendezvous::owner(id, &live);
            let held = self.held.get(id);
            match preferred {
                // Another live node is preferred, or none is (this node's heartbeat lapsed).
                Some(owner) if owner != me => hand_off(held),
                None => hand_off(held),
                Some(_) if held.is_none() => match cluster.leases().acquire(id).await {
                    Ok(lease) => {
                        let (release, released) = watch::channel(Release::Hold);
                        let definition = (*handle.definition).clone();
                        let task = tokio::spawn(hold(self.context.clone(), definition, lease, released));
                        self.held.insert(id.clone(), Held { release, task });
                    }
                    // Its previous owner still holds it: it hands off, or its lease expires.
                    Err(ClusterError::LeaseHeld { .. }) => {}
                    Err(error) => tracing::warn!(stream = %id, %error, "cannot take the lease"),
                },
                Some(_) => {}
            }
        }
    }
}

fn hand_off(held: Option<&Held>) {
    if let Some(held) = held {
        held.release.send_replace(Release::HandOff);
    }
}

/// Starts the loop; it stops (handing every stream off) when `stopping` turns true.
pub fn start(context: HolderContext, stopping: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(Ownership::new(context).run(stopping))
}

/// The set of streams this node serves live, for the forwarding of reads.
pub type Owned = Arc<std::sync::Mutex<std::collections::HashSet<String>>>;
