//! Creating the key-value buckets by their JetStream streams, so that Debian's nats-server
//! (2.9) serves them too.
//!
//! async-nats' own `create_key_value` first asks for the account's JetStream information
//! and cannot parse the answer of a 2.9 server (it requires fields added in 2.10), so it
//! fails there. A bucket is only a stream laid out by the NATS key-value conventions, so
//! this module creates (or updates) that stream itself and binds it with
//! `get_key_value`, which works on every server version:
//! - stream `KV_<bucket>`, subjects `$KV.<bucket>.>` (a key is the rest of the subject);
//! - at most `history` messages per subject (one value per key here);
//! - roll-ups allowed (purges), deletes of messages denied (a delete is a marker message),
//!   direct gets allowed (fast reads from any replica), and new messages refused rather
//!   than old ones dropped when a byte limit is reached.

use std::time::Duration;

use async_nats::jetstream::{
    self, kv,
    stream::{Config, DiscardPolicy, StorageType},
};

use crate::error::{ClusterError, Result};

/// The shape of one bucket.
pub(crate) struct KvBucket {
    pub name: &'static str,
    pub description: &'static str,
    pub history: i64,
    /// Zero keeps values until they are replaced or deleted.
    pub max_age: Duration,
    /// -1: bounded only by the server's max_payload.
    pub max_value_size: i32,
    pub replicas: usize,
}

/// Creates the bucket's stream, or updates it to this shape, and binds the bucket.
/// Idempotent: a node connecting to an existing cluster changes nothing.
pub(crate) async fn open_kv_bucket(jetstream: &jetstream::Context, bucket: KvBucket) -> Result<kv::Store> {
    jetstream
        .create_or_update_stream(Config {
            name: format!("KV_{}", bucket.name),
            description: Some(bucket.description.to_owned()),
            subjects: vec![format!("$KV.{}.>", bucket.name)],
            max_messages_per_subject: bucket.history,
            max_age: bucket.max_age,
            max_message_size: bucket.max_value_size,
            storage: StorageType::File,
            num_replicas: bucket.replicas,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            discard: DiscardPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|err| ClusterError::jetstream("creating a key-value bucket", err))?;
    jetstream.get_key_value(bucket.name).await.map_err(|err| ClusterError::jetstream("binding a key-value bucket", err))
}
