//! WebSocket ingest: sample batches in (JSON text frames or protobuf binary frames), one
//! acknowledgement out per batch, model summaries pushed at the eigen cadence. The
//! subprotocol fixes how the server's messages are encoded: JSON text frames under
//! `koopstream.v1.json` (or none), protobuf `ServerMessage` binary frames under
//! `koopstream.v1.proto`. Reading stops while the stream's queue is full, so a flooding
//! client meets TCP backpressure instead of unbounded buffers.
//!
//! A connection keeps reading while earlier batches wait for their acknowledgements (up to
//! [`IN_FLIGHT`] of them), so a client that sends ahead keeps the stream's queue fed and the
//! owner can log the waiting batches in one commit; the replies still go out in the order
//! of the frames, one per frame. A client that closes the connection before its
//! acknowledgements arrive does not get them; its batches are applied all the same. At
//! shutdown, the acknowledgements of every batch already queued are sent before the close
//! frame.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Serialize;
use tokio::sync::{broadcast, oneshot};

use crate::AppState;
use crate::problem::{ApiError, Problem};
use crate::samples::{count_refusal, refused_samples};
use crate::streams::find;
use domain::batch::Shape;
use domain::command::{Command, IngestAck, Push};
use domain::error::DomainError;
use domain::metrics::Transport;
use domain::registry::StreamHandle;
use wire::batch::{self, Format};
use wire::streams::{AlarmMessageDoc, IngestAckDoc, ModeChangedDoc, ModelSummaryDoc};
use wire::{SUBPROTOCOL_JSON, SUBPROTOCOL_PROTO, ingest};

/// Batches of one connection queued and not yet acknowledged, at most; reading pauses there.
pub const IN_FLIGHT: usize = 32;

/// Initial read and write buffer of a WebSocket connection.
const WS_BUFFER_BYTES: usize = 16 * 1024;

/// Close code sent when the stream is deleted while the connection is open: in the range
/// RFC 6455 leaves to applications (4000-4999), so a client can tell it from a normal
/// close (1000) and from a server shutdown (1001); 4410 echoes HTTP's 410 Gone.
pub const STREAM_DELETED: u16 = 4410;

/// A message from the server.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ServerMessage {
    /// A batch was applied (or was a retry).
    Ack(IngestAckDoc),
    /// A batch was refused; the connection stays open.
    Error {
        /// The batch's seq, when it could be read.
        seq: Option<u64>,
        /// What was wrong.
        problem: Problem,
    },
}

/// How the server's messages are encoded on one connection, fixed by its subprotocol. What a
/// client sends is read by frame type either way (text: JSON, binary: protobuf).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// JSON text frames (`koopstream.v1.json`, or no subprotocol: the original behaviour).
    Json,
    /// Protobuf `koopstream.v1.ServerMessage` binary frames (`koopstream.v1.proto`).
    Protobuf,
}

impl Encoding {
    fn binary(message: &impl prost::Message) -> Message {
        Message::Binary(Bytes::from(message.encode_to_vec()))
    }

    fn ack(self, ack: &IngestAck) -> Message {
        match self {
            Self::Json => text(&ServerMessage::Ack(IngestAckDoc::from(ack))),
            Self::Protobuf => Self::binary(&ingest::ack_message(ack)),
        }
    }

    fn error(self, seq: Option<u64>, problem: Problem) -> Message {
        match self {
            Self::Json => text(&ServerMessage::Error { seq, problem }),
            Self::Protobuf => Self::binary(&ingest::error_message(seq, &problem)),
        }
    }

    fn push(self, push: &Push) -> Message {
        match (self, push) {
            (Self::Json, Push::Summary(summary)) => text(&ModelSummaryDoc::from(summary)),
            (Self::Json, Push::Alarm(notice)) => text(&AlarmMessageDoc::from(notice)),
            (Self::Json, Push::ModeChanged(change)) => text(&ModeChangedDoc::from(change)),
            (Self::Protobuf, Push::Summary(summary)) => Self::binary(&ingest::summary_message(summary)),
            (Self::Protobuf, Push::Alarm(notice)) => Self::binary(&ingest::alarm_message(notice)),
            (Self::Protobuf, Push::ModeChanged(change)) => Self::binary(&ingest::mode_changed_message(change)),
        }
    }
}

/// Open the stream's WebSocket.
#[utoipa::path(get, path = "/v1/streams/{id}/ws", tag = "samples", params(("id" = String, Path, description = "Stream id")),
    responses(
        (status = 101, description = "Switching to WebSocket. Subprotocols (Sec-WebSocket-Protocol): koopstream.v1.json (the default) and koopstream.v1.proto. Client frames: text frames carry JSON sample batches (as POST .../samples JSON), binary frames protobuf koopstream.v1.SampleBatch messages, under either subprotocol. Under koopstream.v1.json (or none) the server sends text frames: {\"type\":\"ack\", seq, accepted, duplicate, out_of_order, missing_value, flat_line, outlier, version}, {\"type\":\"error\", seq, problem}, {\"type\":\"summary\", version, samples_accepted, residual_rms, modes} at each mode-meter refresh, {\"type\":\"alarm\", mode, from, to, t, reading} when a tracked mode's damping alarm changes, {\"type\":\"mode_changed\", mode, t, before, after} when its frequency or damping moves; under koopstream.v1.proto binary frames, each a protobuf koopstream.v1.ServerMessage holding an IngestAck, an IngestError, a ModelSummary, an AlarmChange or a ModeChanged. Close codes: 4410 (reason `stream deleted`) as soon as the stream is deleted, after the acknowledgements of what was applied; 1001 when the server shuts down; 1009 when a message is larger than limits.max_body_bytes."),
        (status = 400, description = "Not a WebSocket upgrade request", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The stream is quarantined", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn upgrade(
    State(state): State<AppState>,
    Path(id): Path<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let handle = find(&state, &id)?;
    // A plain GET (or a broken handshake) is answered as a problem, like every refusal.
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::malformed(format!("this route takes a WebSocket upgrade: {}", rejection.body_text()))
    })?;
    // axum picks the first of these that the client offers; a client offering neither gets
    // no subprotocol and JSON, as before subprotocols existed.
    // A message is bounded like a request body (limits.max_body_bytes), not by the
    // library's 64 MiB default: a larger one closes the socket with 1009. The buffers start
    // at 16 KiB instead of 128 KiB each (they grow for large frames): an idle connection
    // then costs about a tenth of the memory (tests/abuse.rs measures it).
    let upgrade = upgrade
        .protocols([SUBPROTOCOL_JSON, SUBPROTOCOL_PROTO])
        .read_buffer_size(WS_BUFFER_BYTES)
        .write_buffer_size(WS_BUFFER_BYTES)
        .max_message_size(state.settings.max_body_bytes)
        .max_frame_size(state.settings.max_body_bytes);
    let encoding = match upgrade.selected_protocol() {
        Some(p) if p == SUBPROTOCOL_PROTO => Encoding::Protobuf,
        _ => Encoding::Json,
    };
    Ok(upgrade.on_upgrade(move |socket| serve(state, handle, socket, encoding)))
}

fn text<T: Serialize>(message: &T) -> Message {
    Message::Text(Utf8Bytes::from(serde_json::to_string(message).unwrap_or_default()))
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }))
}

/// A frame's reply, in the order of the frames.
enum Pending {
    /// Ready now (the frame was refused at the edge); taken when sent.
    Ready(Option<Message>),
    /// Waiting for the owner's acknowledgement of the batch with this seq.
    Queued(u64, oneshot::Receiver<Result<IngestAck, DomainError>>),
}

impl Pending {
    /// The reply, once it is known; `None` when the stream is gone.
    async fn reply(&mut self, encoding: Encoding) -> Option<Message> {
        match self {
            Pending::Ready(message) => message.take(),
            Pending::Queued(seq, answer) => match answer.await.ok()? {
                Ok(ack) => Some(encoding.ack(&ack)),
                Err(e) => Some(encoding.error(Some(*seq), ApiError::from(e).problem())),
            },
        }
    }
}

/// Sends every pending reply in order; `false` when the socket failed or the stream is gone.
async fn flush(socket: &mut WebSocket, pending: &mut VecDeque<Pending>, encoding: Encoding) -> bool {
    while let Some(mut next) = pending.pop_front() {
        let Some(reply) = next.reply(encoding).await else { return false };
        if socket.send(reply).await.is_err() {
            return false;
        }
    }
    true
}

/// The handle that replaced `handle` in the registry, if another copy of the same
/// incarnation of the stream did (a clustered node taking or handing off a stream's
/// ownership swaps its copy); `None` when the stream is gone or was re-created.
fn successor(state: &AppState, handle: &Arc<StreamHandle>) -> Option<Arc<StreamHandle>> {
    state
        .registry
        .get(&handle.definition.id)
        .filter(|next| !Arc::ptr_eq(next, handle) && next.definition.incarnation == handle.definition.incarnation)
}

async fn serve(state: AppState, mut handle: Arc<StreamHandle>, mut socket: WebSocket, encoding: Encoding) {
    let _guard = state.websockets.enter();
    state.metrics.websocket_connections.inc();
    let mut shutdown = state.shutdown.clone();
    let mut pushes = handle.subscribe();
    let mut deleted = handle.deleted();
    let shape = Shape::of(&handle.definition, state.settings.max_batch_samples);
    let mut pending: VecDeque<Pending> = VecDeque::with_capacity(IN_FLIGHT);
    loop {
        tokio::select! {
            // Replies first: a client waiting for them should not wait for the next frame.
            biased;
            reply = async { pending.front_mut().expect("guarded").reply(encoding).await }, if !pending.is_empty() => {
                pending.pop_front();
                match reply {
                    Some(reply) => {
                        if socket.send(reply).await.is_err() {
                            break;
                        }
                    }
                    None => {
                        let _ = socket.send(close(STREAM_DELETED, "stream deleted")).await;
                        break;
                    }
                }
            }
            _ = async { let _ = deleted.wait_for(|gone| *gone).await; } => {
                // Deleted over REST: what the owner applied before it stopped is
                // acknowledged, then the connection closes at once, not at the next frame.
                if flush(&mut socket, &mut pending, encoding).await {
                    let _ = socket.send(close(STREAM_DELETED, "stream deleted")).await;
                }
                break;
            }
            _ = async { let _ = shutdown.wait_for(|stopping| *stopping).await; } => {
                // The owners apply everything queued before they stop: acknowledge it first.
                if flush(&mut socket, &mut pending, encoding).await {
                    let _ = socket.send(close(close_code::AWAY, "server shutting down")).await;
                }
                break;
            }
            push = pushes.recv() => match push {
                Ok(push) => {
                    if socket.send(encoding.push(&push)).await.is_err() {
                        break;
                    }
                }
                // A slow reader skips pushes: summaries are snapshots, and the alarm history
                // is kept by GET /alarms.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    if let Some(next) = successor(&state, &handle) {
                        (pushes, deleted) = (next.subscribe(), next.deleted());
                        handle = next;
                        continue;
                    }
                    if flush(&mut socket, &mut pending, encoding).await {
                        let _ = socket.send(close(STREAM_DELETED, "stream deleted")).await;
                    }
                    break;
                }
            },
            message = socket.recv(), if pending.len() < IN_FLIGHT => {
                let frame = match &message {
                    Some(Ok(Message::Text(text))) => Frame::Json(text.as_bytes()),
                    Some(Ok(Message::Binary(bytes))) => Frame::Protobuf(bytes),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                let mut queued = submit_batch(&state, &handle, shape, encoding, frame).await;
                // The copy this connection was bound to has stopped: in a cluster, because the
                // node took or handed off the stream. The connection follows its successor
                // (the batches already queued were answered by the old copy, in order).
                if queued.is_none() && let Some(next) = successor(&state, &handle) {
                    (pushes, deleted) = (next.subscribe(), next.deleted());
                    handle = next;
                    queued = submit_batch(&state, &handle, shape, encoding, frame).await;
                }
                match queued {
                    Some(queued) => pending.push_back(queued),
                    None => {
                        if flush(&mut socket, &mut pending, encoding).await {
                            let _ = socket.send(close(STREAM_DELETED, "stream deleted")).await;
                        }
                        break;
                    }
                }
            }
        }
    }
    state.metrics.websocket_connections.dec();
}

/// A client frame's payload.
#[derive(Clone, Copy)]
enum Frame<'a> {
    /// A text frame: a JSON batch.
    Json(&'a [u8]),
    /// A binary frame: a protobuf `koopstream.v1.SampleBatch`.
    Protobuf(&'a [u8]),
}

/// Validates one frame's batch and queues it on the stream; `None` when the stream is gone.
async fn submit_batch(
    state: &AppState,
    handle: &StreamHandle,
    shape: Shape,
    encoding: Encoding,
    frame: Frame<'_>,
) -> Option<Pending> {
    // Decoding and validating are kept apart so that a refusal names the batch's seq.
    let (format, bytes) = match frame {
        Frame::Json(bytes) => (Format::Json, bytes),
        Frame::Protobuf(bytes) => (Format::Protobuf, bytes),
    };
    let parsed = match frame {
        Frame::Json(bytes) => batch::parse_json_frame(bytes, shape),
        Frame::Protobuf(bytes) => batch::decode_protobuf(bytes).map_err(|e| (None, e)).and_then(|message| {
            let seq = message.seq;
            batch::from_proto(message, &handle.definition.id, shape).map_err(|e| (Some(seq), e))
        }),
    };
    let checked = parsed.and_then(|b| match domain::batch::check_timing(&b, &handle.definition) {
        Ok(()) => Ok(b),
        Err(e) => Err((Some(b.seq), e)),
    });
    let batch = match checked {
        Ok(batch) => batch,
        Err((seq, error)) => {
            count_refusal(state, handle, Transport::Ws, error.kind(), refused_samples(format, bytes, shape));
            return Some(Pending::Ready(Some(encoding.error(seq, ApiError::from(error).problem()))));
        }
    };
    let (reply, answer) = oneshot::channel();
    // Waiting here for room in the queue is the flow control: no frame is read meanwhile.
    let seq = batch.seq;
    handle.submit(Command::Ingest { batch, transport: Transport::Ws, reply }).await.ok()?;
    Some(Pending::Queued(seq, answer))
}
