//! Following the cluster's definitions: every node holds a copy of every defined stream, so
//! that listing, status and ingest answer everywhere. A copy starts idle (its owner only
//! appends to the log); ownership.rs installs the live state on the stream's owner node.

use std::sync::Arc;
use std::time::Duration;

use cluster::{Cluster, DefinitionEvent};
use futures_util::StreamExt;

use crate::api::AppInner;
use crate::service::core::Core;
use crate::service::definition::StreamDefinition;
use crate::store::definition::decode_definition;

/// How long a failed watch waits before it is opened again.
const REWATCH_DELAY: Duration = Duration::from_secs(1);

/// A fresh state for a definition (a new stream, or a copy on a node that does not own it).
pub fn fresh_core(definition: &StreamDefinition) -> Result<Core, String> {
    let estimator = koopman::Estimator::new(definition.estimator_config()).map_err(|e| e.to_string())?;
    Ok(Core::new(estimator).with_flat_line(definition.flat_line).with_outlier_gate(definition.outlier_gate))
}

/// Applies every definition and change to the registry, for as long as the node runs. A
/// watch that fails is opened again; it yields every current definition first, and a copy
/// already held with the same definition is left alone, so that is harmless.
pub async fn follow(cluster: Cluster, state: Arc<AppInner>) {
    loop {
        match cluster.definitions().watch().await {
            Ok(events) => {
                let mut events = std::pin::pin!(events);
                while let Some(event) = events.next().await {
                    match event {
                        Ok(DefinitionEvent::Put { stream_id, definition, .. }) => {
                            put(&state, &stream_id, &definition).await;
                        }
                        Ok(DefinitionEvent::Deleted { stream_id, .. }) => {
                            if state.registry.remove_copy(&stream_id).await {
                                tracing::info!(stream = %stream_id, "stream deleted in the cluster");
                            }
                        }
                        Err(error) => {
                            tracing::warn!(%error, "watching the cluster's definitions failed; watching again");
                            break;
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot watch the cluster's definitions; retrying"),
        }
        tokio::time::sleep(REWATCH_DELAY).await;
    }
}

async fn put(state: &AppInner, stream_id: &str, bytes: &[u8]) {
    let definition = match decode_definition(bytes) {
        Ok(definition) if definition.id == stream_id => definition,
        Ok(_) | Err(_) => {
            tracing::error!(stream = %stream_id, "the cluster holds a definition this node cannot read; skipped");
            return;
        }
    };
    if state.registry.get(stream_id).is_some_and(|held| held.definition.same_as(&definition)) {
        return;
    }
    match fresh_core(&definition) {
        Ok(core) => {
            state.registry.install(definition, core, None, false).await;
            tracing::info!(stream = %stream_id, "stream defined in the cluster");
        }
        Err(reason) => tracing::error!(stream = %stream_id, %reason, "a definition of the cluster is refused; skipped"),
    }
}
