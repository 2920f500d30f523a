//! Batch ingest over HTTP: JSON, NDJSON, CSV or protobuf by Content-Type; a batch is
//! validated whole at the edge, then applied whole by the stream's owner and acknowledged
//! (in JSON, or in protobuf when `Accept` asks for it).

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::oneshot;
use utoipa::IntoParams;

use crate::AppState;
use crate::extract::{QueryParams, RawBody, media_type};
use crate::negotiate::{prefers_protobuf, protobuf_response};
use crate::problem::{ApiError, Problem};
use crate::streams::find;
use domain::batch::{SampleBatch, Shape};
use domain::command::Command;
use domain::error::{DomainError, ErrorKind};
use domain::metrics::{Reason, Transport};
use domain::registry::{StreamHandle, SubmitError};
use wire::batch::{self, Format, SampleBatchBody};
use wire::streams::IngestAckDoc;
use wire::{ProtobufBody, is_protobuf, pb};

/// Seconds a client is asked to wait after a full queue.
const RETRY_AFTER_S: u64 = 1;

/// Query of NDJSON and CSV ingest (JSON and protobuf batches carry their seq in the body).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IngestQuery {
    /// Sequence number of the batch (required for NDJSON and CSV).
    #[param(nullable = false, minimum = 0)]
    pub seq: Option<u64>,
    /// Producer epoch of an NDJSON or CSV batch (see the JSON body's `epoch`).
    #[param(nullable = false, minimum = 0)]
    pub epoch: Option<u64>,
    /// CSV: ignore columns the stream does not know (default false: refused with 422).
    #[param(nullable = false)]
    pub allow_unknown_columns: Option<bool>,
}

/// A refused body: the kind that counts it, the samples it held, and the answer.
struct Refusal {
    kind: ErrorKind,
    samples: u64,
    error: ApiError,
}

/// Parses a body by media type into a batch of the stream's shape; a refusal counts the
/// samples of the body (see [`refused_samples`]).
fn parse(
    handle: &StreamHandle,
    headers: &HeaderMap,
    query: &IngestQuery,
    body: &[u8],
    max_samples: usize,
) -> Result<SampleBatch, Refusal> {
    let shape = Shape::of(&handle.definition, max_samples);
    let format = match media_type(headers).as_deref() {
        Some("application/json") => Format::Json,
        Some("application/x-ndjson" | "application/ndjson") => Format::Ndjson,
        Some("text/csv") => Format::Csv,
        Some(protobuf) if is_protobuf(protobuf) => Format::Protobuf,
        // Refusals of the HTTP layer itself (a media type) count as invalid, one sample.
        Some(other) => {
            let error = ApiError::unsupported_media_type(format!(
                "`{other}` is not accepted; send application/json, application/x-ndjson, text/csv or application/x-protobuf"
            ));
            return Err(Refusal { kind: ErrorKind::InvalidField, samples: 1, error });
        }
        None => {
            let error = ApiError::unsupported_media_type("the Content-Type header is missing");
            return Err(Refusal { kind: ErrorKind::InvalidField, samples: 1, error });
        }
    };
    let seq = || {
        query.seq.ok_or_else(|| DomainError::invalid("query parameter `seq` is required for NDJSON and CSV batches"))
    };
    let parsed = match format {
        Format::Json => batch::parse_json(body, shape),
        Format::Ndjson => {
            seq().and_then(|seq| batch::parse_ndjson(body, seq, shape)).map(|b| SampleBatch { epoch: query.epoch, ..b })
        }
        Format::Csv => {
            let allow_unknown = query.allow_unknown_columns.unwrap_or(false);
            seq()
                .and_then(|seq| wire::csv::parse_batch_with(body, seq, &handle.definition, max_samples, allow_unknown))
                .map(|b| SampleBatch { epoch: query.epoch, ..b })
        }
        Format::Protobuf => batch::parse_protobuf(body, &handle.definition.id, shape),
    };
    parsed
        .and_then(|batch| domain::batch::check_timing(&batch, &handle.definition).map(|()| batch))
        .map_err(|e| Refusal { kind: e.kind(), samples: refused_samples(format, body, shape), error: e.into() })
}

/// The samples a refused body counts for in `samples_rejected`: its rows when they can be
/// counted (`wire::batch::count_samples`: even a batch broken in its third row counts all
/// its rows), one when they cannot be counted at all (a body that is not a document of its
/// media type, a protobuf that does not decode), so that no refusal goes uncounted.
pub fn refused_samples(format: Format, body: &[u8], shape: Shape) -> u64 {
    batch::count_samples(format, body, shape).map_or(1, |rows| rows as u64)
}

/// Counts the samples of a refused batch at the edge, by the kind of its error.
pub fn count_refusal(state: &AppState, handle: &StreamHandle, transport: Transport, error: ErrorKind, samples: u64) {
    let reason = if error == ErrorKind::TooLarge { Reason::TooLarge } else { Reason::Invalid };
    handle.edge.invalid.fetch_add(samples.max(1), Ordering::Relaxed);
    state.metrics.rejected(transport, reason, samples.max(1));
}

/// Ingest a batch of samples.
#[utoipa::path(post, path = "/v1/streams/{id}/samples", tag = "samples",
    params(("id" = String, Path, description = "Stream id"), IngestQuery),
    request_body(content(
        (SampleBatchBody = "application/json"),
        (String = "application/x-ndjson"),
        (String = "text/csv"),
        (ProtobufBody = "application/x-protobuf"),
    ), description = "A JSON batch; or NDJSON, one {\"t\", \"x\", \"u\"} sample per line; or CSV with a header naming `t` (optional), the channels and the inputs; or a protobuf koopstream.v1.SampleBatch (proto/koopstream/v1/ingest.proto: packed row-major values, NaN or a nonzero quality flag = missing; its stream_id empty or this stream's). NDJSON and CSV take `seq` from the query."),
    responses(
        (status = 200, description = "Applied (or a retried seq, acknowledged again); a protobuf koopstream.v1.IngestAck with Accept: application/x-protobuf", content(
            (IngestAckDoc = "application/json"),
            (ProtobufBody = "application/x-protobuf"),
        )),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A reused seq with other samples (the detail names the last applied seq), or a quarantined stream", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store cannot take the batch now; nothing was applied", body = Problem, content_type = "application/problem+json"),
        (status = 507, description = "The disk is full; nothing was applied", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Queue full; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ingest(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<IngestQuery>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let handle = find(&state, &id)?;
    let batch = parse(&handle, &headers, &query, &body, state.settings.max_batch_samples).map_err(|e| {
        count_refusal(&state, &handle, Transport::Http, e.kind, e.samples);
        e.error
    })?;
    let rows = batch.rows as u64;
    let (reply, answer) = oneshot::channel();
    match handle.try_submit(Command::Ingest { batch, transport: Transport::Http, reply }) {
        Ok(()) => {}
        Err(SubmitError::Full) => {
            handle.edge.queue_full.fetch_add(rows, Ordering::Relaxed);
            state.metrics.rejected(Transport::Http, Reason::QueueFull, rows);
            return Err(ApiError::queue_full(&id, RETRY_AFTER_S));
        }
        Err(SubmitError::Closed) => return Err(ApiError::unknown_stream(&id)),
    }
    let ack = answer.await.map_err(|_| ApiError::unknown_stream(&id))?.map_err(ApiError::from)?;
    Ok(if prefers_protobuf(&headers) {
        protobuf_response(&pb::IngestAck::from(&ack))
    } else {
        Json(IngestAckDoc::from(&ack)).into_response()
    })
}
