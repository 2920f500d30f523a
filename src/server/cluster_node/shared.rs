//! The domain's `SharedLog` port on NATS JetStream: batches go to the cluster's ingest log
//! encoded with the store's log codec, definitions to the definitions bucket as the store's
//! JSON. Every failure to reach NATS is `Unavailable` (503), never an acknowledgement.

use bytes::Bytes;
use cluster::{Cluster, ClusterError, Created};

use crate::service::batch::SampleBatch;
use crate::service::definition::StreamDefinition;
use crate::service::error::{DomainError, ErrorKind};
use crate::service::journal::LogEntry;
use crate::service::shared_log::{Acknowledgement, Pending, SharedLog};
use crate::service::watermark::digest;
use crate::store::codec::{encode_batch, encode_entry};
use crate::store::definition::{decode_definition, encode_definition};

/// The cluster's log and definitions, as the owners of this node's streams use them.
pub struct JetStreamLog {
    cluster: Cluster,
}

impl JetStreamLog {
    pub fn new(cluster: Cluster) -> Self {
        Self { cluster }
    }
}

/// The message id that lets JetStream drop a gateway's retry of the same batch (within its
/// two-minute duplicate window): the stream, the batch's seq and its content digest, so a
/// different batch under the same seq is logged and refused by the owner as a conflict, as
/// on a single node, instead of being dropped as a copy.
pub fn message_id(stream_id: &str, batch: &SampleBatch) -> String {
    format!("{stream_id}:{}:{:016x}", batch.seq, digest(batch))
}

fn unix_nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_nanos())
}

fn unavailable(error: ClusterError) -> DomainError {
    DomainError::new(ErrorKind::Unavailable, format!("the cluster cannot be reached: {error}"))
}

impl SharedLog for JetStreamLog {
    fn append(&self, stream_id: &str, batch: &SampleBatch) -> Pending<'_, Acknowledgement> {
        let payload = Bytes::from(encode_batch(batch));
        let msg_id = message_id(stream_id, batch);
        let stream_id = stream_id.to_owned();
        Box::pin(async move {
            let acknowledged = self.cluster.log().send(&stream_id, payload, &msg_id).await.map_err(unavailable)?;
            let acknowledgement: Acknowledgement = Box::pin(async move { acknowledged.await.map_err(unavailable) });
            Ok(acknowledgement)
        })
    }

    fn append_reset(&self, stream_id: &str, watermarks: bool) -> Pending<'_, u64> {
        let payload = Bytes::from(encode_entry(&LogEntry::Reset { watermarks }));
        // Each reset asked for is its own: a client's retry resets again, as on one node.
        let msg_id = format!("{stream_id}:reset:{}:{}", self.cluster.node_id(), unix_nanos());
        let stream_id = stream_id.to_owned();
        Box::pin(async move { self.cluster.log().publish(&stream_id, payload, &msg_id).await.map_err(unavailable) })
    }

    fn define(&self, definition: &StreamDefinition) -> Pending<'_, ()> {
        let bytes = Bytes::from(encode_definition(definition));
        let definition = definition.clone();
        Box::pin(async move {
            let created = self.cluster.definitions().create(&definition.id, bytes).await.map_err(unavailable)?;
            let existing = match created {
                Created::Stored { .. } => return Ok(()),
                Created::Exists { definition } => definition,
            };
            match decode_definition(&existing) {
                Ok(stored) if stored.same_as(&definition) => Ok(()),
                _ => Err(DomainError::conflict(format!(
                    "stream `{}` exists in the cluster with a different definition",
                    definition.id
                ))),
            }
        })
    }

    fn undefine(&self, stream_id: &str) -> Pending<'_, ()> {
        let stream_id = stream_id.to_owned();
        Box::pin(async move {
            // The definition first: once it is gone no node takes the stream any more, and
            // its holder gives it up without another snapshot. Then its batches and its
            // snapshot, so that a stream created again under this id starts empty.
            self.cluster.definitions().delete(&stream_id).await.map_err(unavailable)?;
            self.cluster.log().purge(&stream_id).await.map_err(unavailable)?;
            self.cluster.snapshots().delete(&stream_id).await.map_err(unavailable)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::batch::Timing;

    fn batch(seq: u64, x: f64) -> SampleBatch {
        SampleBatch { seq, epoch: None, timing: Timing::Start(0.0), rows: 1, x: vec![x], u: Vec::new() }
    }

    #[test]
    fn a_retry_has_the_same_message_id_and_a_different_batch_another() {
        assert_eq!(message_id("s", &batch(7, 1.0)), message_id("s", &batch(7, 1.0)));
        assert_ne!(message_id("s", &batch(7, 1.0)), message_id("s", &batch(7, 2.0)));
        assert_ne!(message_id("s", &batch(7, 1.0)), message_id("t", &batch(7, 1.0)));
        assert!(message_id("s", &batch(7, 1.0)).starts_with("s:7:"));
    }
}
