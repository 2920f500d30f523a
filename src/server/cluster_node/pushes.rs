//! Pushes (mode-meter summaries, alarm and mode-change notices) for the watchers of every
//! node: the node that holds a stream publishes what its stream pushes, and every other
//! node hands what it receives to its idle copy's subscribers (WebSocket clients), so a
//! client connected to any node gets the owner's pushes. A push lost on the way (NATS
//! down, a node reconnecting) is not sent again: a summary is replaced at the next
//! refresh, and `/alarms` keeps the alarm history.

use std::sync::Arc;

use cluster::Cluster;
use prost::Message as _;
use tokio::sync::broadcast;

use crate::api::AppInner;
use crate::service::command::Push;
use crate::wire::pb;
use crate::wire::push::{push_from_message, push_message};

use super::ownership::Owned;

/// Publishes what a held stream pushes until aborted (when the holding ends).
pub async fn publish(cluster: Cluster, stream_id: String, mut pushes: broadcast::Receiver<Arc<Push>>) {
    loop {
        let push = match pushes.recv().await {
            Ok(push) => push,
            // Behind: the missed ones are gone for local watchers too.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let payload = push_message(&push).encode_to_vec();
        if let Err(error) = cluster.pushes().publish(&stream_id, payload.into()).await {
            tracing::debug!(stream = %stream_id, %error, "a push was not passed to the other nodes");
        }
    }
}

/// Hands the pushes other nodes publish to this node's copies of streams it does not hold.
/// Runs until the connection is closed; a subscription that fails (NATS down at start)
/// is tried again every second.
pub async fn deliver(cluster: Cluster, state: Arc<AppInner>, owned: Owned) {
    let mut feed = loop {
        match cluster.pushes().subscribe().await {
            Ok(feed) => break feed,
            Err(error) => {
                tracing::warn!(%error, "cannot subscribe to the other nodes' pushes; trying again");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    };
    while let Some(received) = feed.next().await {
        // The holder's own copy computes its pushes; one from another node is stale (it
        // has just handed the stream to this one).
        if owned.lock().unwrap_or_else(|e| e.into_inner()).contains(&received.stream_id) {
            continue;
        }
        let Some(handle) = state.registry.get(&received.stream_id) else { continue };
        match pb::ServerMessage::decode(received.payload)
            .map_err(|e| e.to_string())
            .and_then(|message| push_from_message(&message).map_err(|e| e.to_string()))
        {
            Ok(push) => handle.deliver(push),
            Err(reason) => {
                tracing::warn!(stream = %received.stream_id, origin = %received.origin, %reason, "an undecodable push was dropped")
            }
        }
    }
}
