//! Stream definitions shared by all nodes, in the key-value bucket `koopstream_definitions`:
//! a stream created on one node exists on all.
//!
//! Values are opaque bytes (the JSON the server writes); keys are encoded stream ids
//! (names.rs). History 1: only the current definition matters. A node starting up should
//! use `watch` alone, which yields every current definition and then every change, rather
//! than `list` followed by `watch`, between which a change could slip.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    kv::{self, Operation},
};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

use crate::buckets::{KvBucket, open_kv_bucket};
use crate::error::{ClusterError, Result};
use crate::names::{decode_id, encode_stream_id};

/// The bucket's name.
pub const DEFINITIONS_BUCKET: &str = "koopstream_definitions";

/// A change seen by `watch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefinitionEvent {
    /// A stream was defined or redefined (or existed when the watch began).
    Put { stream_id: String, definition: Bytes, revision: u64 },
    /// A stream was deleted.
    Deleted { stream_id: String, revision: u64 },
}

/// What `Definitions::create` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The definition is stored, at this revision.
    Stored { revision: u64 },
    /// The stream already had this definition (empty if it was deleted meanwhile).
    Exists { definition: Bytes },
}

/// The definitions bucket.
#[derive(Clone)]
pub struct Definitions {
    store: kv::Store,
}

impl Definitions {
    /// Creates the bucket, or updates it to these replicas; idempotent.
    pub(crate) async fn open(jetstream: &jetstream::Context, replicas: usize) -> Result<Self> {
        let store = open_kv_bucket(
            jetstream,
            KvBucket {
                name: DEFINITIONS_BUCKET,
                description: "koopstream: stream definitions (JSON)",
                history: 1,
                max_age: Duration::ZERO,
                // No limit of its own: a definition is bounded by the server's max_payload.
                max_value_size: -1,
                replicas,
            },
        )
        .await?;
        Ok(Definitions { store })
    }

    /// Stores a stream's definition; returns its revision.
    pub async fn put(&self, stream_id: &str, definition: Bytes) -> Result<u64> {
        let key = encode_stream_id(stream_id)?;
        self.store.put(key, definition).await.map_err(|err| ClusterError::jetstream("writing a definition", err))
    }

    /// Stores a stream's definition only if the stream has none (KV `create`, so of two
    /// nodes creating the same id at once exactly one writes); otherwise returns the
    /// definition stored, for the caller to compare with its own.
    pub async fn create(&self, stream_id: &str, definition: Bytes) -> Result<Created> {
        let key = encode_stream_id(stream_id)?;
        match self.store.create(&key, definition).await {
            Ok(revision) => Ok(Created::Stored { revision }),
            Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
                // Deleted between the create and this read: the caller may simply retry.
                let existing = self.get(stream_id).await?.unwrap_or_default();
                Ok(Created::Exists { definition: existing })
            }
            Err(err) => Err(ClusterError::jetstream("creating a definition", err)),
        }
    }

    /// A stream's definition, `None` if it has none.
    pub async fn get(&self, stream_id: &str) -> Result<Option<Bytes>> {
        let key = encode_stream_id(stream_id)?;
        self.store.get(key).await.map_err(|err| ClusterError::jetstream("reading a definition", err))
    }

    /// Deletes a stream's definition (a no-op if it has none).
    pub async fn delete(&self, stream_id: &str) -> Result<()> {
        let key = encode_stream_id(stream_id)?;
        self.store.delete(key).await.map_err(|err| ClusterError::jetstream("deleting a definition", err))
    }

    /// The ids of the defined streams, sorted.
    pub async fn list(&self) -> Result<Vec<String>> {
        let keys: Vec<String> = self
            .store
            .keys()
            .await
            .map_err(|err| ClusterError::jetstream("listing definitions", err))?
            .try_collect()
            .await
            .map_err(|err| ClusterError::jetstream("listing definitions", err))?;
        let mut ids: Vec<String> = keys.iter().filter_map(|key| decode_id(key)).collect();
        ids.sort();
        Ok(ids)
    }

    /// Every current definition, then every change, as they happen; never ends by itself.
    /// Keys this crate did not write are skipped.
    pub async fn watch(&self) -> Result<impl Stream<Item = Result<DefinitionEvent>> + Send + 'static> {
        let watch = self
            .store
            .watch_with_history(">")
            .await
            .map_err(|err| ClusterError::jetstream("watching definitions", err))?;
        Ok(watch.filter_map(|entry| async move {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => return Some(Err(ClusterError::jetstream("watching definitions", err))),
            };
            let stream_id = decode_id(&entry.key)?;
            Some(Ok(match entry.operation {
                Operation::Put => DefinitionEvent::Put { stream_id, definition: entry.value, revision: entry.revision },
                Operation::Delete | Operation::Purge => {
                    DefinitionEvent::Deleted { stream_id, revision: entry.revision }
                }
            }))
        }))
    }
}
