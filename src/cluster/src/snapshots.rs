//! Snapshots of each stream's state, with the last JetStream sequence applied to it, in the
//! object-store bucket `koopstream_snapshots`.
//!
//! An object store rather than a key-value bucket: a snapshot at N' = 160 is a few hundred
//! KB, more with tracks and alarms, and one NATS message is limited by the server's
//! `max_payload` (1 MiB by default); the object store cuts an object into chunks (128 KiB)
//! and writes its description last, so a reader sees the old snapshot or the new one,
//! whole. The sequence is kept in that description's metadata (`last_applied_sequence`),
//! written in the same message as the digest of the bytes, so it always matches them.
//!
//! One writer per stream (its lease holder). A `get` racing a `put` of the same stream may
//! fail, since the put removes the old chunks after describing the new ones; readers retry.

use std::collections::HashMap;

use async_nats::jetstream::{
    self,
    object_store::{self, GetErrorKind, ObjectMetadata},
    stream::StorageType,
};
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::error::{ClusterError, Result};
use crate::names::encode_stream_id;

/// The bucket's name.
pub const SNAPSHOTS_BUCKET: &str = "koopstream_snapshots";
/// The metadata key holding the last applied sequence, in decimal.
pub const SEQUENCE_METADATA_KEY: &str = "last_applied_sequence";

/// The snapshots bucket.
#[derive(Clone)]
pub struct Snapshots {
    store: object_store::ObjectStore,
}

impl Snapshots {
    /// Binds the bucket, creating it when absent. Unlike a KV bucket, an object store's
    /// stream is bound as it is: its replicas are fixed by the node that created it.
    pub(crate) async fn open(jetstream: &jetstream::Context, replicas: usize) -> Result<Self> {
        if let Ok(store) = jetstream.get_object_store(SNAPSHOTS_BUCKET).await {
            return Ok(Snapshots { store });
        }
        let created = jetstream
            .create_object_store(object_store::Config {
                bucket: SNAPSHOTS_BUCKET.to_owned(),
                description: Some("koopstream: latest snapshot of each stream".to_owned()),
                storage: StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await;
        match created {
            Ok(store) => Ok(Snapshots { store }),
            // Another node created it between our look and our create.
            Err(create_error) => jetstream
                .get_object_store(SNAPSHOTS_BUCKET)
                .await
                .map(|store| Snapshots { store })
                .map_err(|_| ClusterError::jetstream("creating the snapshots bucket", create_error)),
        }
    }

    /// Replaces a stream's snapshot.
    pub async fn put(&self, stream_id: &str, last_applied_sequence: u64, snapshot: Bytes) -> Result<()> {
        let name = encode_stream_id(stream_id)?;
        let metadata = ObjectMetadata {
            name,
            metadata: HashMap::from([(SEQUENCE_METADATA_KEY.to_owned(), last_applied_sequence.to_string())]),
            ..Default::default()
        };
        let mut reader: &[u8] = &snapshot;
        self.store
            .put(metadata, &mut reader)
            .await
            .map_err(|err| ClusterError::jetstream("writing a snapshot", err))?;
        Ok(())
    }

    /// Removes a stream's snapshot (nothing if it has none), for a deleted stream.
    pub async fn delete(&self, stream_id: &str) -> Result<()> {
        let name = encode_stream_id(stream_id)?;
        match self.store.delete(&name).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == object_store::DeleteErrorKind::NotFound => Ok(()),
            Err(err) => Err(ClusterError::jetstream("deleting a snapshot", err)),
        }
    }

    /// A stream's latest snapshot and the last sequence applied to it; `None` if it has none.
    pub async fn get(&self, stream_id: &str) -> Result<Option<(u64, Bytes)>> {
        let name = encode_stream_id(stream_id)?;
        let mut object = match self.store.get(&name).await {
            Ok(object) => object,
            Err(err) if err.kind() == GetErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(ClusterError::jetstream("reading a snapshot", err)),
        };
        let sequence =
            object.info.metadata.get(SEQUENCE_METADATA_KEY).and_then(|text| text.parse::<u64>().ok()).ok_or_else(
                || ClusterError::Malformed {
                    what: "snapshot",
                    detail: format!("`{name}` has no `{SEQUENCE_METADATA_KEY}`"),
                },
            )?;
        let mut bytes = Vec::with_capacity(object.info.size);
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|err| ClusterError::jetstream("reading a snapshot's chunks", err))?;
        Ok(Some((sequence, Bytes::from(bytes))))
    }
}
