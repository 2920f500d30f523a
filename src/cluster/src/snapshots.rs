//! Snapshots of each stream's state, with the last JetStream sequence applied to it: the
//! bytes in the object-store bucket `koopstream_snapshots`, and which snapshot is current in
//! the key-value bucket `koopstream_snapshot_heads`, written by compare-and-set.
//!
//! An object store for the bytes: a snapshot at N' = 160 is a few hundred KB, more with
//! tracks and alarms, and one NATS message is limited by the server's `max_payload` (1 MiB
//! by default); the object store cuts an object into chunks (128 KiB). Each snapshot is an
//! object of its own, named by the stream and its sequence (`<encoded id>@<sequence>`), with
//! the sequence also in its metadata.
//!
//! The head (key: the encoded stream id; value: the sequence in decimal) says which object
//! is current. A writer moves it only from the revision it read when it restored or last
//! wrote (`SnapshotHead`); any other write in between (another holder's snapshot, a delete
//! of the stream) makes the move fail with `SnapshotSuperseded`, and the writer's object is
//! removed again. That is what lets the owner compact the log: once the head is past a
//! sequence, no reader will ever restore from before it, so a snapshot written late by a
//! holder whose lease has run out can no longer become current, nor bring back a stream
//! that was deleted meanwhile.

use std::collections::HashMap;

use async_nats::jetstream::{
    self,
    kv::{self, Operation, UpdateErrorKind},
    object_store::{self, GetErrorKind, ObjectMetadata},
    stream::StorageType,
};
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use tokio::io::AsyncReadExt;

use crate::buckets::{KvBucket, open_kv_bucket};
use crate::error::{ClusterError, Result};
use crate::names::encode_stream_id;

/// The object bucket's name.
pub const SNAPSHOTS_BUCKET: &str = "koopstream_snapshots";
/// The key-value bucket of the current snapshot of each stream.
pub const SNAPSHOT_HEADS_BUCKET: &str = "koopstream_snapshot_heads";
/// The metadata key holding the last applied sequence, in decimal.
pub const SEQUENCE_METADATA_KEY: &str = "last_applied_sequence";
/// How often a read that lost a race with a writer (the object it was pointed to was
/// replaced meanwhile) reads the head again.
const READ_ATTEMPTS: usize = 3;

/// The snapshots buckets.
#[derive(Clone)]
pub struct Snapshots {
    store: object_store::ObjectStore,
    /// The object store's own stream, to remove objects without a marker.
    objects: jetstream::stream::Stream,
    heads: kv::Store,
}

/// A stream's head as its holder knows it: the sequence of the current snapshot (`None`
/// without one) and the head key's last revision (0 when the key was never written), the
/// token the next move must present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotHead {
    /// The current snapshot's last applied sequence.
    pub sequence: Option<u64>,
    /// The sequence of the snapshot it replaced (0: none).
    replaced: Option<u64>,
    revision: u64,
}

/// What `get` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    /// The head, for the holder's next `put`.
    pub head: SnapshotHead,
    /// The current snapshot's bytes, if the stream has one.
    pub snapshot: Option<Bytes>,
}

/// The object holding a stream's snapshot at `sequence`.
fn object_name(encoded_id: &str, sequence: u64) -> String {
    format!("{encoded_id}@{sequence}")
}

impl Snapshots {
    /// Binds the buckets, creating them when absent. Unlike a KV bucket, an object store's
    /// stream is bound as it is: its replicas are fixed by the node that created it.
    pub(crate) async fn open(jetstream: &jetstream::Context, replicas: usize) -> Result<Self> {
        let heads = open_kv_bucket(
            jetstream,
            KvBucket {
                name: SNAPSHOT_HEADS_BUCKET,
                description: "koopstream: the current snapshot of each stream",
                history: 1,
                max_age: std::time::Duration::ZERO,
                // Two sequences; the limit counts the headers of a compare-and-set too.
                max_value_size: 1024,
                replicas,
            },
        )
        .await?;
        let store = match jetstream.get_object_store(SNAPSHOTS_BUCKET).await {
            Ok(store) => store,
            Err(_) => {
                let created = jetstream
                    .create_object_store(object_store::Config {
                        bucket: SNAPSHOTS_BUCKET.to_owned(),
                        description: Some("koopstream: snapshots of each stream".to_owned()),
                        storage: StorageType::File,
                        num_replicas: replicas,
                        ..Default::default()
                    })
                    .await;
                match created {
                    Ok(store) => store,
                    // Another node created it between our look and our create.
                    Err(create_error) => jetstream
                        .get_object_store(SNAPSHOTS_BUCKET)
                        .await
                        .map_err(|_| ClusterError::jetstream("creating the snapshots bucket", create_error))?,
                }
            }
        };
        let objects = jetstream
            .get_stream(format!("OBJ_{SNAPSHOTS_BUCKET}"))
            .await
            .map_err(|err| ClusterError::jetstream("binding the snapshots bucket's stream", err))?;
        Ok(Snapshots { store, objects, heads })
    }

    /// Writes a stream's snapshot at `last_applied_sequence` and makes it current, moving the
    /// head from `head` (what the writer restored from or last wrote); returns the new head.
    /// `SnapshotSuperseded` if the head moved meanwhile (then the object is removed again and
    /// nothing changed). The previous current object is removed after the move.
    pub async fn put(
        &self,
        stream_id: &str,
        head: SnapshotHead,
        last_applied_sequence: u64,
        snapshot: Bytes,
    ) -> Result<SnapshotHead> {
        let encoded = encode_stream_id(stream_id)?;
        let name = object_name(&encoded, last_applied_sequence);
        let metadata = ObjectMetadata {
            name: name.clone(),
            metadata: HashMap::from([(SEQUENCE_METADATA_KEY.to_owned(), last_applied_sequence.to_string())]),
            ..Default::default()
        };
        let mut reader: &[u8] = &snapshot;
        self.store
            .put(metadata, &mut reader)
            .await
            .map_err(|err| ClusterError::jetstream("writing a snapshot", err))?;
        // With the sequence of the snapshot it replaces: what a reader of that one (a new
        // owner restoring it while this move happened) still needs replayed.
        let value = Bytes::from(format!("{last_applied_sequence} {}", head.sequence.unwrap_or(0)));
        let revision = match self.heads.update(&encoded, value, head.revision).await {
            Ok(revision) => revision,
            Err(err) if err.kind() == UpdateErrorKind::WrongLastRevision => {
                // Not current, so nobody reads it: remove it (unless it is the current one
                // after all, written before under the same sequence).
                if head.sequence != Some(last_applied_sequence) {
                    let _ = self.remove_object(&name).await;
                }
                return Err(ClusterError::SnapshotSuperseded { stream: stream_id.to_owned(), held: head.revision });
            }
            // The move may have happened (a timeout says nothing), so the object stays: the
            // head may name it. The writer's next move then fails as superseded, and the
            // stream's next owner restores whatever the head names.
            Err(err) => return Err(ClusterError::jetstream("moving a snapshot head", err)),
        };
        if let Some(previous) = head.sequence.filter(|previous| *previous != last_applied_sequence) {
            self.remove_object(&object_name(&encoded, previous)).await?;
        }
        Ok(SnapshotHead { sequence: Some(last_applied_sequence), replaced: Some(head.sequence.unwrap_or(0)), revision })
    }

    /// Marks the current snapshot as the only one a restore can start from, once its
    /// holder knows no other can be (it restored or wrote it, holds the lease, and has
    /// applied nothing since): the head then names the same sequence as current and
    /// replaced, and compaction may purge everything of the stream up to it. Without this a
    /// stream that stopped receiving batches would hold the log's compaction back for
    /// ever. `SnapshotSuperseded` if the head moved since `head`.
    pub async fn settle(&self, stream_id: &str, head: SnapshotHead) -> Result<SnapshotHead> {
        let Some(sequence) = head.sequence.filter(|sequence| head.replaced != Some(*sequence)) else {
            return Ok(head);
        };
        let encoded = encode_stream_id(stream_id)?;
        let value = Bytes::from(format!("{sequence} {sequence}"));
        match self.heads.update(&encoded, value, head.revision).await {
            Ok(revision) => Ok(SnapshotHead { sequence: Some(sequence), replaced: Some(sequence), revision }),
            Err(err) if err.kind() == UpdateErrorKind::WrongLastRevision => {
                Err(ClusterError::SnapshotSuperseded { stream: stream_id.to_owned(), held: head.revision })
            }
            Err(err) => Err(ClusterError::jetstream("settling a snapshot head", err)),
        }
    }

    /// Removes a deleted stream's snapshots: the head first (so that any write still in
    /// flight fails to move it), then every object of the stream.
    pub async fn delete(&self, stream_id: &str) -> Result<()> {
        let encoded = encode_stream_id(stream_id)?;
        self.heads.delete(&encoded).await.map_err(|err| ClusterError::jetstream("deleting a snapshot head", err))?;
        let prefix = format!("{encoded}@");
        let mut names = Vec::new();
        let mut listing =
            self.store.list().await.map_err(|err| ClusterError::jetstream("listing the snapshots", err))?;
        while let Some(info) = listing.next().await {
            let info = info.map_err(|err| ClusterError::jetstream("listing the snapshots", err))?;
            // `<encoded id>` alone: how snapshots were named before heads existed.
            if !info.deleted && (info.name.starts_with(&prefix) || info.name == encoded) {
                names.push(info.name);
            }
        }
        for name in names {
            self.remove_object(&name).await?;
        }
        Ok(())
    }

    /// Removes an object whole: its description, then its chunks. Not the object store's
    /// own delete, which leaves a marker per object name; with a name per snapshot those
    /// markers would pile up, one per snapshot ever written.
    async fn remove_object(&self, name: &str) -> Result<()> {
        let info = match self.store.info(name).await {
            Ok(info) => info,
            Err(err) if err.kind() == object_store::InfoErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(ClusterError::jetstream("reading a snapshot's description", err)),
        };
        // Description first: a reader then finds no object rather than one without chunks.
        let description = format!("$O.{SNAPSHOTS_BUCKET}.M.{}", base64::engine::general_purpose::URL_SAFE.encode(name));
        let chunks = format!("$O.{SNAPSHOTS_BUCKET}.C.{}", info.nuid);
        for subject in [description, chunks] {
            self.objects
                .purge()
                .filter(subject)
                .await
                .map_err(|err| ClusterError::jetstream("removing a snapshot", err))?;
        }
        Ok(())
    }

    /// Removes the snapshot objects no head names and none will: of a stream with a
    /// current snapshot, every other object older than it (the head moved past it, and a
    /// move from an older revision fails), and every object, older or newer, last written
    /// more than `age` ago and not current. Those are what a holder leaves when it crashes
    /// between writing an object and moving the head, or when a move's outcome was unknown
    /// and it did not happen; a newer object younger than `age` may be a write in flight,
    /// and is kept. `age` is compared with the writer's clock (the object's `mtime`), so it
    /// must be far longer than a snapshot's write plus any clock skew between the nodes.
    /// Returns how many objects it removed. One listing of the whole bucket and one head
    /// read per stream with objects: for the compactor, now and then, not for every write.
    pub async fn sweep_orphans(&self, age: std::time::Duration) -> Result<usize> {
        let now = std::time::SystemTime::now();
        let mut by_stream: HashMap<String, Vec<(String, Option<u64>, bool)>> = HashMap::new();
        let mut listing =
            self.store.list().await.map_err(|err| ClusterError::jetstream("listing the snapshots", err))?;
        while let Some(info) = listing.next().await {
            let info = info.map_err(|err| ClusterError::jetstream("listing the snapshots", err))?;
            if info.deleted {
                continue;
            }
            let old = info.modified.is_none_or(|modified| {
                let written =
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(modified.unix_timestamp().max(0) as u64);
                now.duration_since(written).is_ok_and(|elapsed| elapsed >= age)
            });
            // `<encoded id>` alone: how snapshots were named before heads existed.
            let (encoded, sequence) = match info.name.split_once('@') {
                Some((encoded, sequence)) => (encoded.to_owned(), sequence.parse().ok()),
                None => (info.name.clone(), None),
            };
            by_stream.entry(encoded).or_default().push((info.name, sequence, old));
        }
        let mut removed = 0;
        for (encoded, objects) in by_stream {
            let current = self.head(&encoded).await?.sequence;
            for (name, sequence, old) in objects {
                let orphan = match (sequence, current) {
                    (Some(sequence), Some(current)) => sequence < current || (sequence != current && old),
                    _ => old,
                };
                if orphan {
                    self.remove_object(&name).await?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// A stream's head and its current snapshot, if it has one.
    pub async fn get(&self, stream_id: &str) -> Result<Restored> {
        let encoded = encode_stream_id(stream_id)?;
        let mut attempt = 1;
        loop {
            let head = self.head(&encoded).await?;
            let Some(sequence) = head.sequence else { return Ok(Restored { head, snapshot: None }) };
            match self.read_object(&object_name(&encoded, sequence)).await? {
                Some(bytes) => return Ok(Restored { head, snapshot: Some(bytes) }),
                // The head moved on and its writer removed this object in between.
                None if attempt < READ_ATTEMPTS => attempt += 1,
                None => {
                    return Err(ClusterError::Malformed {
                        what: "snapshot head",
                        detail: format!("`{encoded}` names sequence {sequence}, whose snapshot is gone"),
                    });
                }
            }
        }
    }

    async fn head(&self, encoded: &str) -> Result<SnapshotHead> {
        let entry = self.heads.entry(encoded).await.map_err(|err| ClusterError::jetstream("reading a head", err))?;
        let Some(entry) = entry else { return Ok(SnapshotHead::default()) };
        if entry.operation != Operation::Put {
            // Deleted with its stream: no snapshot, and the marker's revision to move from.
            return Ok(SnapshotHead { sequence: None, replaced: None, revision: entry.revision });
        }
        let (sequence, replaced) = parse_head(&entry.value).ok_or_else(|| ClusterError::Malformed {
            what: "snapshot head",
            detail: format!("`{encoded}` is not a sequence and the one it replaced"),
        })?;
        Ok(SnapshotHead { sequence: Some(sequence), replaced: Some(replaced), revision: entry.revision })
    }

    /// The last of a stream's batches that no owner will replay again, from its head: the
    /// sequence of the snapshot the current one replaced (a new owner may have restored that
    /// one just before the move). `None` when the head does not say (no head, or the first
    /// snapshot replaced none): then every batch of the stream may still be needed.
    pub async fn compaction_floor(&self, stream_id: &str) -> Result<Option<u64>> {
        let head = self.head(&encode_stream_id(stream_id)?).await?;
        Ok(head.replaced.filter(|replaced| *replaced > 0))
    }

    async fn read_object(&self, name: &str) -> Result<Option<Bytes>> {
        let mut object = match self.store.get(name).await {
            Ok(object) => object,
            Err(err) if err.kind() == GetErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(ClusterError::jetstream("reading a snapshot", err)),
        };
        let mut bytes = Vec::with_capacity(object.info.size);
        match object.read_to_end(&mut bytes).await {
            Ok(_) => Ok(Some(Bytes::from(bytes))),
            // Its chunks were removed while they were read: as good as gone.
            Err(_) if !self.exists(name).await => Ok(None),
            Err(err) => Err(ClusterError::jetstream("reading a snapshot's chunks", err)),
        }
    }

    async fn exists(&self, name: &str) -> bool {
        self.store.info(name).await.is_ok_and(|info| !info.deleted)
    }
}

/// A head's value: `<sequence> <replaced sequence>` (0: it replaced none).
fn parse_head(value: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split(' ');
    let sequence = parts.next()?.parse().ok()?;
    let replaced = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((sequence, replaced))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_names_its_sequence_and_the_one_it_replaced() {
        assert_eq!(parse_head(b"420 256"), Some((420, 256)));
        assert_eq!(parse_head(b"7 0"), Some((7, 0)));
        for bad in [&b""[..], b"420", b"420 x", b"1 2 3", b"-1 0"] {
            assert_eq!(parse_head(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn each_snapshot_is_an_object_of_its_own() {
        assert_eq!(object_name("pmu_2E1", 42), "pmu_2E1@42");
        assert_ne!(object_name("a", 12), object_name("a1", 2));
    }
}
