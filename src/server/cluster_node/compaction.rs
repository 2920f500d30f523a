//! Compacting the cluster's log: every `cluster.compact_every_s` each node works out the
//! highest sequence no owner will replay again, for every stream at once, and purges the
//! log through it (one purge without a subject filter, which drops whole blocks; purges per
//! subject after each snapshot doubled the p99 acknowledgement, BENCHMARKS.md).
//!
//! The sequence is the lowest of each defined stream's floor, and of the log's last
//! sequence read *before* the streams are listed (a stream created after the listing has
//! only later batches). A stream's floor is the sequence of the snapshot its current one
//! replaced (a new owner may have restored that one just before the head moved, and
//! replays after it); a stream whose head says nothing (none yet, or the first) needs all
//! its batches: its floor is just before its first one, and a stream without batches has
//! none. Every input only grows while the computation runs, so a floor read early is
//! never too high.
//!
//! One node does it: the preferred owner, by the same rendezvous hashing as the streams',
//! of a key no stream can have (`rendezvous::COMPACTOR_KEY`). Working out the floor reads
//! every stream's head, so with every node doing it the requests would grow with the nodes
//! times the streams. When the live nodes change, two nodes may compact in the same round;
//! that is harmless, since purging through a safe sequence is idempotent, and when the
//! compactor leaves, the next one in rendezvous order takes over at its next tick.
//!
//! Every [`SWEEP_EVERY_ROUNDS`] rounds the compactor also removes the snapshot objects no
//! head names (`Snapshots::sweep_orphans`): what a holder leaves when it crashes between
//! writing a snapshot and moving its stream's head.

use std::sync::Arc;
use std::time::Duration;

use cluster::{Cluster, ClusterError, rendezvous};

use crate::service::metrics::Metrics;

/// The compactor also sweeps the snapshot objects no head names every this many rounds
/// (every 5 minutes with the default `compact_every_s`): it lists the whole bucket.
const SWEEP_EVERY_ROUNDS: u32 = 10;
/// A snapshot object newer than its stream's current one is taken for a write in flight
/// until it is this old (by its writer's clock): far longer than a snapshot's write, and
/// than the clock skew between nodes.
const ORPHAN_AGE: Duration = Duration::from_secs(600);

/// Works out the sequence the log can be purged through, and purges it; returns it, or
/// `None` when nothing can go.
pub async fn compact_once(cluster: &Cluster) -> Result<Option<u64>, ClusterError> {
    let mut floor = cluster.log().last_sequence_overall().await?;
    for id in cluster.definitions().list().await? {
        if floor == 0 {
            return Ok(None);
        }
        let needed = match cluster.snapshots().compaction_floor(&id).await? {
            Some(replaced) => replaced,
            None => match cluster.log().first_sequence(&id).await? {
                Some(first) => first - 1,
                None => continue,
            },
        };
        floor = floor.min(needed);
    }
    if floor == 0 {
        return Ok(None);
    }
    cluster.log().compact_through(floor).await?;
    Ok(Some(floor))
}

/// Compacts every `every` while this node is the compactor, for as long as it runs; the
/// sequence it last compacted through is the gauge `log_compacted_through` (0 while another
/// node compacts).
pub async fn run(cluster: Cluster, every: Duration, metrics: Arc<Metrics>) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let mut rounds = 0u32;
    loop {
        ticks.tick().await;
        match cluster.membership().live_nodes().await {
            Ok(live) if rendezvous::owner(rendezvous::COMPACTOR_KEY, &live) == Some(cluster.node_id()) => {}
            Ok(_) => {
                metrics.log_compacted_through.set(0);
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot list the live nodes; not compacting this round");
                continue;
            }
        }
        // The gauge is the one record of how far this node compacted.
        match compact_once(&cluster).await {
            Ok(Some(through)) => {
                let through = i64::try_from(through).unwrap_or(i64::MAX);
                if through > metrics.log_compacted_through.get() {
                    tracing::debug!(through, "the log is compacted");
                    metrics.log_compacted_through.set(through);
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "compacting the log failed; trying again later"),
        }
        rounds = rounds.wrapping_add(1);
        if rounds.is_multiple_of(SWEEP_EVERY_ROUNDS) {
            match cluster.snapshots().sweep_orphans(ORPHAN_AGE).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(removed, "removed snapshot objects no head names"),
                Err(error) => tracing::warn!(%error, "sweeping the snapshot objects failed; trying again later"),
            }
        }
    }
}
