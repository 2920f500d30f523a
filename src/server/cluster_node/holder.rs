//! One stream held by this node under its lease: restore the cluster's snapshot, replay the
//! log after it, follow the log live, snapshot every `snapshot_every` batches, renew the
//! lease every TTL/3, and stop owning the
//! moment a renewal fails, the lease's deadline passes or another writer moved the
//! snapshot head (then nothing more is applied or written).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cluster::{Cluster, ClusterError, Lease, SnapshotHead};
use futures_util::StreamExt;
use tokio::sync::{oneshot, watch};

use crate::api::AppInner;
use crate::service::command::Command;
use crate::service::core::Core;
use crate::service::definition::StreamDefinition;
use crate::service::journal::LogEntry;
use crate::service::metrics::Transport;
use crate::service::registry::StreamHandle;
use crate::store::codec::{decode_entry, decode_snapshot, encode_snapshot};

use super::definitions::fresh_core;

/// What the ownership loop asks of a holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Keep holding.
    Hold,
    /// Snapshot, then give the lease up (another node is preferred now, or this node stops).
    HandOff,
    /// The stream was deleted: give the lease up without a snapshot.
    Deleted,
}

/// How holding ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// A renewal failed or the deadline passed: the lease is no longer this node's.
    Lost,
    /// Snapshotted (when the lease still ran) and to be released.
    HandedOff,
    /// The stream was deleted; to be released without a snapshot.
    Deleted,
    /// Another writer moved the snapshot head (or a move's outcome was unknown and the
    /// next one found it moved): released without a snapshot, so that the next owner
    /// restores whatever the head names.
    Superseded,
}

/// What every holder of this node shares.
#[derive(Clone)]
pub struct HolderContext {
    pub cluster: Cluster,
    pub state: Arc<AppInner>,
    /// The streams whose live state this node serves (read by the forwarding of reads).
    pub owned: Arc<Mutex<HashSet<String>>>,
    /// Batches applied between two snapshots (`cluster.snapshot_every_batches`): a new
    /// owner replays at most this many, plus those that arrive while it restores.
    pub snapshot_every: u64,
    /// The longest time between two snapshots of a stream that applied anything, and the
    /// wait before an idle one's head is settled (`cluster.snapshot_every_s`).
    pub snapshot_age: std::time::Duration,
}

struct Holding {
    context: HolderContext,
    definition: StreamDefinition,
    lease: Lease,
    handle: Arc<StreamHandle>,
    /// The snapshot head this holder restored from or last wrote: its next snapshot moves
    /// the head only from here.
    head: SnapshotHead,
    last_applied: u64,
    last_snapshot: u64,
    since_snapshot: u64,
}

/// Holds the stream until told to release it or until the lease is lost.
pub async fn hold(
    context: HolderContext,
    definition: StreamDefinition,
    lease: Lease,
    mut release: watch::Receiver<Release>,
) {
    let id = definition.id.clone();
    let started = Instant::now();
    let (core, meter, last_applied, head) = match restore(&context.cluster, &definition).await {
        Ok(restored) => restored,
        Err(reason) => {
            tracing::error!(stream = %id, %reason, "cannot restore the stream; giving its lease up");
            let _ = context.cluster.leases().release(lease).await;
            return;
        }
    };
    let handle = context.state.registry.install(definition.clone(), core, meter, true).await;
    context.owned.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone());
    // The other nodes' watchers get what this copy pushes while it is the live one.
    let pushes = tokio::spawn(super::pushes::publish(context.cluster.clone(), id.clone(), handle.subscribe()));
    tracing::info!(stream = %id, from_sequence = last_applied, seconds = started.elapsed().as_secs_f64(), "owning the stream");
    let mut holding = Holding {
        context: context.clone(),
        definition,
        lease,
        handle,
        head,
        last_applied,
        last_snapshot: last_applied,
        since_snapshot: 0,
    };
    let outcome = holding.run(&mut release).await;
    pushes.abort();
    context.owned.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    let Holding { definition, lease, .. } = holding;
    match outcome {
        Ended::Lost => {
            // The idle copy installed below stops the owner.
            tracing::warn!(stream = %id, "lease lost; no longer owning the stream");
        }
        Ended::HandedOff | Ended::Deleted | Ended::Superseded => {
            if let Err(error) = context.cluster.leases().release(lease).await {
                tracing::warn!(stream = %id, %error, "releasing the lease failed; it expires by itself");
            }
            tracing::info!(stream = %id, "stream handed off");
        }
    }
    // Replaced by an idle copy, unless the stream is gone: its owner task stops.
    if outcome != Ended::Deleted && context.state.registry.get(&id).is_some() {
        match fresh_core(&definition) {
            Ok(core) => {
                context.state.registry.install(definition, core, None, false).await;
            }
            Err(reason) => tracing::error!(stream = %id, %reason, "cannot make an idle copy"),
        }
    }
}

/// The stream's state from the cluster's snapshot (or fresh), with the sequence it covers
/// and the head it was read from.
async fn restore(
    cluster: &Cluster,
    definition: &StreamDefinition,
) -> Result<(Core, Option<meter::Meter>, u64, SnapshotHead), String> {
    let restored = cluster.snapshots().get(&definition.id).await.map_err(|e| e.to_string())?;
    let head = restored.head;
    let (Some(sequence), Some(bytes)) = (head.sequence, restored.snapshot) else {
        return Ok((fresh_core(definition)?, None, 0, head));
    };
    let definition = definition.clone();
    tokio::task::spawn_blocking(move || {
        let mut state = decode_snapshot(&bytes).map_err(|e| format!("its snapshot cannot be read: {e}"))?;
        let meter = state.meter.take();
        let core = Core::from_state(definition.estimator_config(), state)
            .map_err(|e| format!("its snapshot does not fit its definition: {e}"))?
            .with_flat_line(definition.flat_line)
            .with_outlier_gate(definition.outlier_gate);
        Ok((core, meter, sequence, head))
    })
    .await
    .map_err(|e| format!("restoring failed: {e}"))?
}

impl Holding {
    /// Applies the log until released or until the lease is lost.
    async fn run(&mut self, release: &mut watch::Receiver<Release>) -> Ended {
        let id = self.definition.id.clone();
        let cluster = self.context.cluster.clone();
        let log = match cluster.log().replay(&id, self.last_applied).await {
            Ok(log) => log,
            Err(error) => {
                tracing::warn!(stream = %id, %error, "cannot read the stream's log; giving it up");
                return Ended::HandedOff;
            }
        };
        let mut log = std::pin::pin!(log);
        let mut renewals = tokio::time::interval(cluster.config().renew_interval());
        renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut aged = tokio::time::interval(self.context.snapshot_age);
        aged.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        aged.tick().await;
        loop {
            tokio::select! {
                biased;
                changed = release.changed() => {
                    let wanted = if changed.is_ok() { *release.borrow() } else { Release::HandOff };
                    match wanted {
                        Release::Hold => continue,
                        Release::Deleted => return Ended::Deleted,
                        Release::HandOff => {
                            if self.lease_valid() {
                                self.snapshot().await;
                            }
                            return Ended::HandedOff;
                        }
                    }
                }
                _ = renewals.tick() => {
                    if let Err(error) = cluster.leases().renew(&mut self.lease).await {
                        tracing::warn!(stream = %id, %error, "lease renewal failed");
                        return Ended::Lost;
                    }
                }
                _ = aged.tick() => {
                    // A stream with few batches is snapshotted after a time too, and one that
                    // gets none settles its head, so that neither holds compaction back.
                    if self.lease_valid() && self.snapshot_aged().await == Written::Superseded {
                        return Ended::Superseded;
                    }
                }
                item = log.next() => {
                    if !self.lease_valid() {
                        return Ended::Lost;
                    }
                    match item {
                        Some(Ok((sequence, payload))) => self.apply(sequence, &payload).await,
                        Some(Err(error)) => tracing::warn!(stream = %id, %error, "reading the log failed; resuming"),
                        // The log never ends by itself; if it does, let another node try.
                        None => return Ended::HandedOff,
                    }
                    if self.since_snapshot >= self.context.snapshot_every
                        && self.lease_valid()
                        && self.snapshot().await == Written::Superseded
                    {
                        return Ended::Superseded;
                    }
                }
            }
        }
    }

    fn lease_valid(&self) -> bool {
        Instant::now() < self.lease.deadline()
    }

    /// Applies one logged batch in order; a batch the owner refuses (a seq conflict) is
    /// refused the same way on every node, so the log moves on.
    async fn apply(&mut self, sequence: u64, payload: &[u8]) {
        let id = &self.definition.id;
        self.last_applied = sequence;
        self.since_snapshot += 1;
        let batch = match decode_entry(payload) {
            Ok(LogEntry::Batch(batch)) => batch,
            Ok(LogEntry::Reset { watermarks }) => {
                let (reply, applied) = oneshot::channel();
                if self.handle.submit(Command::ApplyReset { watermarks, reply }).await.is_ok() {
                    let _ = applied.await;
                }
                return;
            }
            Err(error) => {
                tracing::error!(stream = %id, sequence, %error, "a logged batch cannot be read; skipped");
                return;
            }
        };
        let (reply, applied) = oneshot::channel();
        if self.handle.submit(Command::Apply { batch, transport: Transport::Http, reply }).await.is_err() {
            return;
        }
        if let Ok(Err(error)) = applied.await {
            tracing::debug!(stream = %id, sequence, %error, "a logged batch was refused");
        }
    }

    /// Every `snapshot_every_s`: a snapshot if anything was applied since the last one,
    /// else the head settled on the current one (see `Snapshots::settle`: this holder
    /// restored or wrote it and holds the lease, so no restore can start from an older one).
    async fn snapshot_aged(&mut self) -> Written {
        if self.last_applied != self.last_snapshot {
            return self.snapshot().await;
        }
        let id = &self.definition.id;
        match self.context.cluster.snapshots().settle(id, self.head).await {
            Ok(head) => {
                self.head = head;
                Written::Done
            }
            Err(error @ ClusterError::SnapshotSuperseded { .. }) => {
                tracing::warn!(stream = %id, %error, "another writer moved the snapshot head; no longer owning");
                Written::Superseded
            }
            Err(error) => {
                tracing::warn!(stream = %id, %error, "settling the snapshot head failed");
                Written::Failed
            }
        }
    }

    /// Writes the stream's state with the last sequence applied to it and makes it the
    /// current snapshot (the head also names the one it replaced, which `compaction.rs`
    /// keeps the batches after: a new owner may have restored it just before the move).
    async fn snapshot(&mut self) -> Written {
        if self.last_applied == self.last_snapshot {
            return Written::Done;
        }
        let (reply, exported) = oneshot::channel();
        if self.handle.submit(Command::Export { reply }).await.is_err() {
            return Written::Failed;
        }
        let Ok(state) = exported.await else { return Written::Failed };
        let Ok(bytes) = tokio::task::spawn_blocking(move || encode_snapshot(&state)).await else {
            return Written::Failed;
        };
        // Not after the deadline, and not for a stream this node already saw deleted (its
        // snapshot was just removed with its definition; the head would refuse it anyway).
        if !self.lease_valid() || self.context.state.registry.get(&self.definition.id).is_none() {
            return Written::Failed;
        }
        let id = &self.definition.id;
        let cluster = &self.context.cluster;
        match cluster.snapshots().put(id, self.head, self.last_applied, bytes.into()).await {
            Ok(head) => {
                self.head = head;
                self.last_snapshot = self.last_applied;
                self.since_snapshot = 0;
                Written::Done
            }
            Err(error @ ClusterError::SnapshotSuperseded { .. }) => {
                tracing::warn!(stream = %id, %error, "another writer moved the snapshot head; no longer owning");
                Written::Superseded
            }
            Err(error) => {
                // Tried again after another `snapshot_every` batches, not after the next one:
                // a failing NATS must not get a snapshot per batch (a wrong bucket limit once
                // made every write fail, and the retries filled the server's storage).
                self.since_snapshot = 0;
                tracing::warn!(stream = %id, %error, "snapshot failed");
                Written::Failed
            }
        }
    }
}

/// How a snapshot went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// Current now (or nothing new to write).
    Done,
    /// Not written; tried again after another `snapshot_every` batches.
    Failed,
    /// Another holder wrote one, or the stream was deleted: this node is no longer its owner.
    Superseded,
}
