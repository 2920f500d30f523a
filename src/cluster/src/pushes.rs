//! What a stream's owner pushes to watching clients (mode-meter summaries, alarm and
//! mode-change notices), passed to every other node so that their clients get it too.
//!
//! Pushes go over core NATS, not JetStream: a summary is a snapshot that the next refresh
//! replaces, and the alarm history is kept by the owner's `/alarms`, so a push missed while
//! a node was disconnected is not worth storing. Subjects are `koopstream.push.<encoded
//! stream id>`; each message names the node that sent it in a header, so a node skips its
//! own. A push is sent only while connected: the client would otherwise buffer it and
//! deliver a stale summary after reconnecting.

use bytes::Bytes;
use futures::StreamExt;

use crate::error::{ClusterError, Result, require_connected};
use crate::names::{NodeId, decode_id, encode_stream_id};

/// The subject prefix of pushes.
pub const PUSH_SUBJECT_PREFIX: &str = "koopstream.push";
/// The header naming the node a push came from.
const ORIGIN_HEADER: &str = "Koopstream-Origin";

/// The subject of a stream's pushes.
pub fn push_subject(stream_id: &str) -> Result<String> {
    Ok(format!("{PUSH_SUBJECT_PREFIX}.{}", encode_stream_id(stream_id)?))
}

/// Sends and receives pushes for this node.
#[derive(Clone)]
pub struct Pushes {
    client: async_nats::Client,
    node: NodeId,
}

/// A push another node sent.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedPush {
    /// The stream it is about.
    pub stream_id: String,
    /// The node that sent it (the stream's owner when it did).
    pub origin: String,
    /// What the server encoded.
    pub payload: Bytes,
}

impl Pushes {
    pub(crate) fn new(client: async_nats::Client, node: NodeId) -> Self {
        Self { client, node }
    }

    /// Sends a push about `stream_id` to the other nodes; refused at once while disconnected.
    pub async fn publish(&self, stream_id: &str, payload: Bytes) -> Result<()> {
        let subject = push_subject(stream_id)?;
        require_connected(&self.client)?;
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(ORIGIN_HEADER, self.node.as_str());
        self.client
            .publish_with_headers(subject, headers, payload)
            .await
            .map_err(|err| ClusterError::jetstream("push publish", err))
    }

    /// Every push the other nodes send from now on (this node's own are skipped).
    pub async fn subscribe(&self) -> Result<PushFeed> {
        let subscriber = self
            .client
            .subscribe(format!("{PUSH_SUBJECT_PREFIX}.*"))
            .await
            .map_err(|err| ClusterError::jetstream("push subscribe", err))?;
        Ok(PushFeed { subscriber, node: self.node.clone() })
    }
}

/// The pushes of other nodes, in the order this node receives them.
pub struct PushFeed {
    subscriber: async_nats::Subscriber,
    node: NodeId,
}

impl PushFeed {
    /// The next push from another node; `None` once the subscription ends (the client was
    /// closed). Messages without an origin or with a subject that is no stream id are
    /// skipped: nothing this crate sends.
    pub async fn next(&mut self) -> Option<ReceivedPush> {
        while let Some(message) = self.subscriber.next().await {
            if let Some(push) = self.received(message) {
                return Some(push);
            }
        }
        None
    }

    fn received(&self, message: async_nats::Message) -> Option<ReceivedPush> {
        let origin = message.headers.as_ref()?.get(ORIGIN_HEADER)?.as_str().to_owned();
        if origin == self.node.as_str() {
            return None;
        }
        let token = message.subject.as_str().strip_prefix(PUSH_SUBJECT_PREFIX)?.strip_prefix('.')?;
        Some(ReceivedPush { stream_id: decode_id(token)?, origin, payload: message.payload })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_subject_is_one_token_per_stream() {
        assert_eq!(push_subject("pmu-1").unwrap(), "koopstream.push.pmu-1");
        assert_eq!(push_subject("area.3").unwrap(), "koopstream.push.area_2E3");
        assert!(push_subject("a b").is_err());
    }
}
