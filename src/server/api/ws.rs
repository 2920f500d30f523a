//! WebSocket ingest: sample batches in as text frames, one acknowledgement out per batch,
//! model summaries pushed at the eigen cadence. Reading stops while the stream's queue is
//! full, so a flooding client meets TCP backpressure instead of unbounded buffers.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;
use tokio::sync::{broadcast, oneshot};

use crate::api::AppState;
use crate::api::problem::{ApiError, Problem};
use crate::api::samples::count_refusal;
use crate::api::streams::find;
use crate::metrics::Transport;
use crate::service::batch::{self, SampleBatchBody, Shape};
use crate::service::owner::{Command, IngestAck};
use crate::service::registry::StreamHandle;

/// A message from the server.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ServerMessage<'a> {
    /// A batch was applied (or was a retry).
    Ack(&'a IngestAck),
    /// A batch was refused; the connection stays open.
    Error {
        /// The batch's seq, when it could be read.
        seq: Option<u64>,
        /// What was wrong.
        problem: Problem,
    },
}

/// Open the stream's WebSocket.
#[utoipa::path(get, path = "/v1/streams/{id}/ws", tag = "samples", params(("id" = String, Path, description = "Stream id")),
    responses(
        (status = 101, description = "Switching to WebSocket. Client text frames: sample batches (as POST .../samples JSON). Server text frames: {\"type\":\"ack\", seq, accepted, duplicate, out_of_order, missing_value, version}, {\"type\":\"error\", seq, problem}, {\"type\":\"summary\", version, samples_accepted, residual_rms, modes}."),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let handle = find(&state, &id)?;
    Ok(upgrade.on_upgrade(move |socket| serve(state, handle, socket)))
}

fn text<T: Serialize>(message: &T) -> Message {
    Message::Text(Utf8Bytes::from(serde_json::to_string(message).unwrap_or_default()))
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))
}

async fn serve(state: AppState, handle: Arc<StreamHandle>, mut socket: WebSocket) {
    let _guard = state.websockets.enter();
    state.metrics.websocket_connections.inc();
    let mut shutdown = state.shutdown.clone();
    let mut summaries = handle.subscribe();
    let shape = Shape::of(&handle.definition, state.config.limits.max_batch_samples);
    loop {
        tokio::select! {
            _ = async { let _ = shutdown.wait_for(|stopping| *stopping).await; } => {
                let _ = socket.send(close(close_code::AWAY, "server shutting down")).await;
                break;
            }
            summary = summaries.recv() => match summary {
                Ok(summary) => {
                    if socket.send(text(&*summary)).await.is_err() {
                        break;
                    }
                }
                // A slow reader skips summaries; they are snapshots, not a log.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    let _ = socket.send(close(close_code::NORMAL, "stream deleted")).await;
                    break;
                }
            },
            message = socket.recv() => {
                let reply = match message {
                    Some(Ok(Message::Text(frame))) => handle_batch(&state, &handle, shape, frame.as_bytes()).await,
                    Some(Ok(Message::Binary(_))) => Some(text(&ServerMessage::Error {
                        seq: None,
                        problem: ApiError::unsupported_media_type("binary frames are not accepted; send JSON batches as text frames").problem(),
                    })),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                match reply {
                    Some(reply) => {
                        if socket.send(reply).await.is_err() {
                            break;
                        }
                    }
                    None => {
                        let _ = socket.send(close(close_code::NORMAL, "stream deleted")).await;
                        break;
                    }
                }
            }
        }
    }
    state.metrics.websocket_connections.dec();
}

/// Applies one frame's batch; `None` when the stream is gone.
async fn handle_batch(state: &AppState, handle: &StreamHandle, shape: Shape, frame: &[u8]) -> Option<Message> {
    let parsed = serde_json::from_slice::<SampleBatchBody>(frame)
        .map_err(|e| (None, ApiError::malformed(format!("the JSON batch is malformed: {e}"))))
        .and_then(|body| {
            let seq = body.seq;
            batch::from_body(body, shape).map_err(|e| (Some(seq), e))
        });
    let batch = match parsed {
        Ok(batch) => batch,
        Err((seq, error)) => {
            count_refusal(state, handle, Transport::Ws, &error, 1);
            return Some(text(&ServerMessage::Error { seq, problem: error.problem() }));
        }
    };
    let (reply, answer) = oneshot::channel();
    // Waiting here for room in the queue is the flow control: no frame is read meanwhile.
    let seq = batch.seq;
    handle.submit(Command::Ingest { batch, transport: Transport::Ws, reply }).await.ok()?;
    match answer.await.ok()? {
        Ok(ack) => Some(text(&ServerMessage::Ack(&ack))),
        Err(e) => Some(text(&ServerMessage::Error { seq: Some(seq), problem: ApiError::storage(&e).problem() })),
    }
}
