//! Exclusive ownership of streams: one lease per stream in the JetStream key-value bucket
//! `koopstream_leases`, taken and renewed by revision compare-and-set.
//!
//! How a lease works:
//! - `acquire` creates the key only if it is absent (KV `create`: a publish that expects the
//!   key's last revision to be none), so of two nodes trying at once exactly one succeeds.
//! - `renew` rewrites the value expecting the revision this node wrote last (KV `update`).
//!   If the revision moved (the key expired, was taken by another node, or released), the
//!   server refuses and `renew` returns `LeaseLost`.
//! - `release` deletes the key expecting the held revision, so a node never deletes a lease
//!   it no longer holds; the next `acquire` by anyone then succeeds at once.
//!
//! Expiry: the bucket keeps one value per key (history 1) and its `max_age` is the lease
//! TTL. JetStream removes a message `max_age` after the server stored it, and each renewal
//! stores a new message that replaces the previous one, so the key lives TTL past the last
//! renewal and disappears when its holder stops renewing; `acquire` by another node then
//! succeeds. (The server checks ages on a timer, so the key may linger slightly past TTL:
//! never less.) A holder must therefore:
//! - renew every TTL/3 (`ClusterConfig::renew_interval`), so two failed renewals in a row
//!   still leave time for a third;
//! - stop acting as owner (applying batches, writing snapshots) at `Lease::deadline`, the
//!   time it sent its last successful write plus TTL, unless a renewal succeeded since: the
//!   server stored that write no earlier than it was sent, so the key cannot expire before;
//! - stop at once on `LeaseLost`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::kv::{self, CreateErrorKind, UpdateErrorKind};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::buckets::{KvBucket, open_kv_bucket};
use crate::error::{ClusterError, Result, require_connected};
use crate::names::{NodeId, encode_stream_id};

/// The bucket's name.
pub const LEASES_BUCKET: &str = "koopstream_leases";

/// What a lease's value says, as JSON: who holds it and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub node: String,
    /// When the holder first acquired it, in milliseconds since the Unix epoch (for people
    /// and metrics; no decision depends on clocks agreeing).
    pub acquired_unix_ms: u64,
}

/// A lease this node holds.
#[derive(Debug, Clone)]
pub struct Lease {
    stream_id: String,
    key: String,
    revision: u64,
    record: LeaseRecord,
    deadline: Instant,
}

impl Lease {
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// The KV revision this node wrote last.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn record(&self) -> &LeaseRecord {
        &self.record
    }

    /// Until when the lease is certainly held, unless renewed (see the module's doc).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// The leases bucket, seen from one node.
#[derive(Clone)]
pub struct Leases {
    store: kv::Store,
    client: async_nats::Client,
    node_id: NodeId,
    ttl: Duration,
}

impl Leases {
    /// Creates the bucket, or updates it to this TTL and replicas; idempotent.
    pub(crate) async fn open(
        jetstream: &async_nats::jetstream::Context,
        node_id: NodeId,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Self> {
        let store = open_kv_bucket(
            jetstream,
            KvBucket {
                name: LEASES_BUCKET,
                description: "koopstream: owner node of each stream",
                history: 1,
                max_age: ttl,
                max_value_size: 4096,
                replicas,
            },
        )
        .await?;
        Ok(Leases { store, client: jetstream.client(), node_id, ttl })
    }

    /// Takes the lease of a stream if nobody holds it; `LeaseHeld` names who does.
    pub async fn acquire(&self, stream_id: &str) -> Result<Lease> {
        let key = encode_stream_id(stream_id)?;
        let record = LeaseRecord { node: self.node_id.as_str().to_owned(), acquired_unix_ms: unix_millis() };
        let value = encode_record(&record)?;
        require_connected(&self.client)?;
        let sent = Instant::now();
        match self.store.create(&key, value).await {
            Ok(revision) => {
                Ok(Lease { stream_id: stream_id.to_owned(), key, revision, record, deadline: sent + self.ttl })
            }
            Err(err) if err.kind() == CreateErrorKind::AlreadyExists => Err(ClusterError::LeaseHeld {
                stream: stream_id.to_owned(),
                holder: self.holder(stream_id).await?.unwrap_or_default(),
            }),
            Err(err) => Err(ClusterError::jetstream("acquiring a lease", err)),
        }
    }

    /// Rewrites the lease, pushing its expiry TTL further; `LeaseLost` if it moved on.
    pub async fn renew(&self, lease: &mut Lease) -> Result<()> {
        let value = encode_record(&lease.record)?;
        require_connected(&self.client)?;
        let sent = Instant::now();
        match self.store.update(&lease.key, value, lease.revision).await {
            Ok(revision) => {
                lease.revision = revision;
                lease.deadline = sent + self.ttl;
                Ok(())
            }
            Err(err) if err.kind() == UpdateErrorKind::WrongLastRevision => {
                Err(ClusterError::LeaseLost { stream: lease.stream_id.clone(), held: lease.revision })
            }
            Err(err) => Err(ClusterError::jetstream("renewing a lease", err)),
        }
    }

    /// Gives the lease up so another node may take it at once; `LeaseLost` if it had
    /// already moved on (then there is nothing to give up).
    pub async fn release(&self, lease: Lease) -> Result<()> {
        match self.store.delete_expect_revision(&lease.key, Some(lease.revision)).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == UpdateErrorKind::WrongLastRevision => {
                Err(ClusterError::LeaseLost { stream: lease.stream_id, held: lease.revision })
            }
            Err(err) => Err(ClusterError::jetstream("releasing a lease", err)),
        }
    }

    /// The node that holds a stream's lease now, if any.
    pub async fn holder(&self, stream_id: &str) -> Result<Option<String>> {
        let key = encode_stream_id(stream_id)?;
        let value = self.store.get(key).await.map_err(|err| ClusterError::jetstream("reading a lease", err))?;
        // A released key (a delete marker) reads as `None`, like an expired one.
        value.map(|value| decode_record(&value).map(|record| record.node)).transpose()
    }
}

fn encode_record(record: &LeaseRecord) -> Result<Bytes> {
    serde_json::to_vec(record)
        .map(Bytes::from)
        .map_err(|err| ClusterError::Malformed { what: "lease record", detail: err.to_string() })
}

fn decode_record(value: &[u8]) -> Result<LeaseRecord> {
    serde_json::from_slice(value)
        .map_err(|err| ClusterError::Malformed { what: "lease record", detail: err.to_string() })
}

pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_as_json() {
        let record = LeaseRecord { node: "node-1".to_owned(), acquired_unix_ms: 1_700_000_000_000 };
        let value = encode_record(&record).unwrap();
        assert_eq!(&value[..], br#"{"node":"node-1","acquired_unix_ms":1700000000000}"#);
        assert_eq!(decode_record(&value).unwrap(), record);
        assert!(matches!(decode_record(b"garbage"), Err(ClusterError::Malformed { .. })));
    }
}
