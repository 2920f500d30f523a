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
//! never too high. Every node may do it: purging through a safe sequence is idempotent.

use std::time::Duration;

use cluster::{Cluster, ClusterError};

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

/// Compacts every `every`, for as long as the node runs.
pub async fn run(cluster: Cluster, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let mut last = 0;
    loop {
        ticks.tick().await;
        match compact_once(&cluster).await {
            Ok(Some(through)) if through > last => {
                tracing::debug!(through, "the log is compacted");
                last = through;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "compacting the log failed; trying again later"),
        }
    }
}
