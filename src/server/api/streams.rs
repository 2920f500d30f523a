//! Stream resources: create, list, status, delete, reset.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::sync::oneshot;
use utoipa::ToSchema;

use crate::api::AppState;
use crate::api::extract::{RawBody, json_body};
use crate::api::problem::{ApiError, Problem};
use crate::service::command::Command;
use crate::service::definition::{CreateStream, StreamDefinition};
use crate::service::registry::StreamHandle;
use crate::service::snapshot::StreamStatus;

/// A stream: its definition and its status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamView {
    /// The canonical definition (defaults filled in).
    pub definition: StreamDefinition,
    /// The current status.
    pub status: StreamStatus,
}

/// The answer to a reset.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResetResponse {
    /// Model version after the reset.
    pub version: u64,
}

fn view(handle: &StreamHandle) -> StreamView {
    StreamView { definition: (*handle.definition).clone(), status: handle.status() }
}

/// Looks a stream up or answers 404.
pub fn find(state: &AppState, id: &str) -> Result<std::sync::Arc<StreamHandle>, ApiError> {
    state.registry.get(id).ok_or_else(|| ApiError::unknown_stream(id))
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
    let definition = StreamDefinition::from_request(request, state.config.streams.eigen_every, generated_id)?;
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

/// List the streams.
#[utoipa::path(get, path = "/v1/streams", tag = "streams", responses((status = 200, body = Vec<StreamView>)))]
pub async fn list(State(state): State<AppState>) -> Json<Vec<StreamView>> {
    Json(state.registry.list().iter().map(|h| view(h)).collect())
}

/// A stream's definition and status.
#[utoipa::path(get, path = "/v1/streams/{id}", tag = "streams", params(("id" = String, Path, description = "Stream id")),
    responses((status = 200, body = StreamView), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<StreamView>, ApiError> {
    Ok(Json(view(&*find(&state, &id)?)))
}

/// Delete a stream and its model.
#[utoipa::path(delete, path = "/v1/streams/{id}", tag = "streams", params(("id" = String, Path, description = "Stream id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if state.registry.remove(&id).await {
        tracing::info!(stream = %id, "stream deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::unknown_stream(&id))
    }
}

/// Restart a stream's model (same definition; warm-up starts again).
#[utoipa::path(post, path = "/v1/streams/{id}/reset", tag = "streams", params(("id" = String, Path, description = "Stream id")),
    responses((status = 200, body = ResetResponse), (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")))]
pub async fn reset(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ResetResponse>, ApiError> {
    let handle = find(&state, &id)?;
    let (reply, answer) = oneshot::channel();
    handle.submit(Command::Reset { reply }).await.map_err(|_| ApiError::unknown_stream(&id))?;
    let version = answer.await.map_err(|_| ApiError::unknown_stream(&id))?.map_err(|e| ApiError::storage(&e))?;
    Ok(Json(ResetResponse { version }))
}
