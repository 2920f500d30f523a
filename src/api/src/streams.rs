//! Stream resources: create, list, status, delete, reset.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::extract::{QueryParams, RawBody, json_body};
use crate::problem::{ApiError, Problem};
use domain::command::Command;
use domain::definition::StreamDefinition;
use domain::error::DomainError;
use domain::registry::StreamHandle;
use wire::streams::{CreateStream, SourceStatusDoc, StreamDefinitionDoc, StreamStatusDoc};

/// A stream: its definition and its status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamView {
    /// The canonical definition (defaults filled in).
    pub definition: StreamDefinitionDoc,
    /// The current status.
    pub status: StreamStatusDoc,
    /// The status of the stream's external source (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceStatusDoc>,
}

/// A stored stream whose state could not be rebuilt at start-up: its records are kept
/// untouched, it serves nothing, and `DELETE` removes it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuarantinedView {
    /// Stream id.
    pub id: String,
    /// Always `quarantined`.
    pub state: &'static str,
    /// Why its state could not be rebuilt.
    pub reason: String,
    /// When it was quarantined (Unix ms).
    pub since_ms: u64,
}

/// One entry of the stream list: a live stream, or a quarantined one.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub enum StreamListEntry {
    /// A live stream.
    Live(Box<StreamView>),
    /// A quarantined stream.
    Quarantined(QuarantinedView),
}

/// The answer to a reset.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResetResponse {
    /// Model version after the reset.
    pub version: u64,
    /// Whether the seq watermark and the last time stamp were cleared, so that the same
    /// data (same seqs, same time stamps) is applied again when sent again. The producer
    /// epoch is kept either way.
    pub watermarks_cleared: bool,
}

/// Query of a reset.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResetQuery {
    /// Keep the seq watermark and the last time stamp (default false: clear them).
    #[param(nullable = false)]
    pub keep_watermarks: Option<bool>,
}

pub(crate) fn view(handle: &StreamHandle) -> StreamView {
    StreamView {
        definition: StreamDefinitionDoc::from(&*handle.definition),
        status: (&handle.status()).into(),
        source: handle.source.as_ref().map(|s| (&s.status()).into()),
    }
}

/// Looks a stream up, or answers 409 for a quarantined one and 404 for none.
pub fn find(state: &AppState, id: &str) -> Result<std::sync::Arc<StreamHandle>, ApiError> {
    state.registry.get(id).ok_or_else(|| match state.registry.quarantined(id) {
        Some(q) => DomainError::quarantined(&q.id, &q.reason).into(),
        None => ApiError::unknown_stream(id),
    })
}

fn generated_id() -> String {
    // Unique within the process and unpredictable enough across restarts for naming.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mixed = (nanos ^ count.rotate_left(40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("s-{mixed:016x}")
}

/// Create a stream.
#[utoipa::path(post, path = "/v1/streams", tag = "streams", request_body = CreateStream,
    responses(
        (status = 201, description = "Created", body = StreamView),
        (status = 200, description = "A stream with the same id and definition exists", body = StreamView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The id exists with another definition", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let request: CreateStream = json_body(&headers, &body)?;
    let definition = StreamDefinition::from_request(request.into(), state.settings.eigen_every, generated_id)?;
    state.settings.source_hosts.check(definition.source.as_ref())?;
    let (handle, created) = state.registry.create(definition).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let mut response = (status, Json(view(&handle))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/streams/{}", handle.definition.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if created {
        tracing::info!(stream = %handle.definition.id, dictionary = %handle.definition.dictionary, "stream created");
    }
    Ok(response)
}

/// List the streams, quarantined ones included.
#[utoipa::path(get, path = "/v1/streams", tag = "streams", responses((status = 200, body = Vec<StreamListEntry>)))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<StreamListEntry>> {
    let mut entries: Vec<(String, StreamListEntry)> = state
        .registry
        .list()
        .iter()
        .map(|h| (h.definition.id.clone(), StreamListEntry::Live(Box::new(view(h)))))
        .collect();
    entries.extend(state.registry.list_quarantined().into_iter().map(|q| {
        let view = QuarantinedView { id: q.id.clone(), state: "quarantined", reason: q.reason, since_ms: q.since_ms };
        (q.id, StreamListEntry::Quarantined(view))
    }));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Json(entries.into_iter().map(|(_, entry)| entry).collect())
}

/// A stream's definition and status.
#[utoipa::path(get, path = "/v1/streams/{id}", tag = "streams", params(("id" = String, Path, description = "Stream id")),
    responses((status = 200, body = StreamView), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The stream is quarantined", body = Problem, content_type = "application/problem+json")))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<StreamView>, ApiError> {
    Ok(Json(view(&*find(&state, &id)?)))
}

/// Delete a stream and its model (a quarantined stream: its stored records).
#[utoipa::path(delete, path = "/v1/streams/{id}", tag = "streams", params(("id" = String, Path, description = "Stream id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if state.registry.remove(&id).await.map_err(ApiError::from)? {
        tracing::info!(stream = %id, "stream deleted");
        Ok(StatusCode::NO_CONTENT)
    } else if state.registry.remove_quarantined(&id).await.map_err(ApiError::from)? {
        tracing::info!(stream = %id, "quarantined stream deleted with its stored records");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::unknown_stream(&id))
    }
}

/// Restart a stream's model (same definition; warm-up starts again).
#[utoipa::path(post, path = "/v1/streams/{id}/reset", tag = "streams", params(("id" = String, Path, description = "Stream id"), ResetQuery),
    responses((status = 200, body = ResetResponse), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The stream is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A query parameter that does not fit", body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")))]
pub async fn reset(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<ResetQuery>,
) -> Result<Json<ResetResponse>, ApiError> {
    let handle = find(&state, &id)?;
    let watermarks = !query.keep_watermarks.unwrap_or(false);
    let (reply, answer) = oneshot::channel();
    handle.submit(Command::Reset { watermarks, reply }).await.map_err(|_| ApiError::unknown_stream(&id))?;
    let version = answer.await.map_err(|_| ApiError::unknown_stream(&id))?.map_err(ApiError::from)?;
    Ok(Json(ResetResponse { version, watermarks_cleared: watermarks }))
}
