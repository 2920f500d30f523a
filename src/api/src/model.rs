//! Reading models: the model document (JSON, protobuf, .mat or .npz, with an ETag), the modes, and
//! multi-step predictions, all from the latest published snapshot. JSON is the default;
//! `Accept: application/x-protobuf` selects the protobuf forms of `proto/koopstream/v1/`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use koopman::PredictionMode;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::extract::{QueryParams, RawBody, json_body, media_type};
use crate::negotiate::{prefers_protobuf, protobuf_response, vary_accept};
use crate::problem::{ApiError, Problem};
use crate::streams::find;
use domain::registry::StreamHandle;
use domain::snapshot::{ModelSnapshot, ModelState};
use wire::documents::{
    AlarmsResponse, ModesResponse, PredictMode, PredictRequest, PredictResponse, TrackedModesResponse, alarm_view,
    estimate_view, mode_view, tracked_view,
};
use wire::export::{to_mat, to_npz};
use wire::model_doc::ModelDoc;
use wire::{BinaryFile, ProtobufBody, is_protobuf, pb};

/// Query of the model document.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModelQuery {
    /// `json`, `protobuf` (koopstream.v1.ModelDoc), `mat` (a MATLAB Level-5 file) or `npz`
    /// (NumPy arrays): the two files hold the same variables, A, B, C, D, Ts, c_offset,
    /// eigenvalues, the channels' names and units, the observables and the complete lifting
    /// (docs/model-export.md); when absent, `Accept` chooses JSON (default) or protobuf.
    #[param(nullable = false, pattern = "^(json|protobuf|mat|npz)$")]
    pub format: Option<String>,
}

/// The model of the stream's current version (built on demand by its owner).
async fn published_model(handle: &StreamHandle) -> Result<Arc<ModelSnapshot>, ApiError> {
    let snapshot = handle.snapshot_with_model().await;
    snapshot.model.clone().ok_or_else(|| {
        let s = &snapshot.status;
        ApiError::no_model(match s.state {
            ModelState::WarmingUp => {
                format!("stream `{}` is warming up: {} of {} samples", s.id, s.warmup.have, s.warmup.need)
            }
            _ => format!("stream `{}` needs more informative pairs before a model exists (mu = 0)", s.id),
        })
    })
}

/// Runs CPU-heavy work off the async reactor.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::internal(format!("a worker failed: {e}")))
}

/// An entity tag naming a state of one incarnation of a stream: `"<incarnation>-<state>"`
/// (hexadecimal incarnation), so a re-created stream's tags never match the old one's.
fn etag(handle: &StreamHandle, state: &str) -> String {
    format!("\"{:x}-{state}\"", handle.definition.incarnation)
}

/// 304 with the tag when `If-None-Match` lists it (or `*`).
fn not_modified(headers: &HeaderMap, tag: &str) -> Option<Response> {
    let listed = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    listed.then(|| with_etag(StatusCode::NOT_MODIFIED.into_response(), tag))
}

fn with_etag(mut response: Response, tag: &str) -> Response {
    response.headers_mut().insert(header::ETAG, HeaderValue::from_str(tag).expect("hex digits, dashes and quotes"));
    response
}

/// The model document (A, B, C, Ts, dictionary, eigenvalues).
#[utoipa::path(get, path = "/v1/streams/{id}/model", tag = "models",
    params(("id" = String, Path, description = "Stream id"), ModelQuery),
    responses(
        (status = 200, description = "The koopstream.model.v1 document: JSON; protobuf koopstream.v1.ModelDoc with Accept: application/x-protobuf (same content, same ETag; Vary: Accept; ?format=protobuf selects it too); a MATLAB .mat file with ?format=mat (application/x-matlab-data) and a NumPy .npz archive with ?format=npz (application/x-npz), both with the same variables and a Content-Disposition filename `<stream>-v<version>.mat`/`.npz`. ETag = the stream's incarnation (hex) and the model version, so a re-created stream's tags never match", content(
            (ModelDoc = "application/json"),
            (ProtobufBody = "application/x-protobuf"),
            (BinaryFile = "application/x-matlab-data"),
            (BinaryFile = "application/x-npz"),
        )),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No model yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown format", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn model(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<ModelQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let handle = find(&state, &id)?;
    let snapshot = published_model(&handle).await?;
    let tag = etag(&handle, &snapshot.version.to_string());
    // An explicit `format` wins over `Accept`: it is what a browser or curl user can set.
    let format = match query.format.as_deref() {
        Some(format) => format,
        None if prefers_protobuf(&headers) => "protobuf",
        None => "json",
    };
    if !matches!(format, "json" | "protobuf" | "mat" | "npz") {
        return Err(ApiError::invalid(format!(
            "query parameter `format`: `{format}` is not json, protobuf, mat or npz"
        )));
    }
    if let Some(response) = not_modified(&headers, &tag) {
        return Ok(response);
    }
    let version = snapshot.version;
    let units = |channels: &[domain::definition::Channel]| channels.iter().map(|c| c.unit.clone()).collect();
    let (state_units, input_units) = (units(&handle.definition.channels), units(&handle.definition.inputs));
    let binary = matches!(format, "mat" | "npz");
    let doc = blocking(move || ModelDoc::of_snapshot(&snapshot))
        .await?
        .map_err(|e| ApiError::internal(e.to_string()))?
        .with_units(state_units, input_units);
    let mut response = if binary {
        let (bytes, media_type) = if format == "mat" {
            (blocking(move || to_mat(&doc)).await?, "application/x-matlab-data")
        } else {
            (blocking(move || to_npz(&doc)).await?, "application/x-npz")
        };
        // The server's own documents always fit their shapes: a refusal is ours.
        let bytes = bytes.map_err(|e| ApiError::internal(e.to_string()))?;
        let mut r = bytes.into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
        r.headers_mut().insert(header::CONTENT_DISPOSITION, attachment(&handle.definition.id, version, format));
        r
    } else if format == "protobuf" {
        protobuf_response(&pb::ModelDoc::from(&doc))
    } else {
        Json(doc).into_response()
    };
    vary_accept(&mut response);
    Ok(with_etag(response, &tag))
}

/// `attachment; filename="<stream>-v<version>.<ext>"`. Stream ids are validated names, but
/// the header is built defensively: anything outside a plain file-name alphabet becomes `_`.
fn attachment(stream: &str, version: u64, extension: &str) -> HeaderValue {
    let safe: String =
        stream.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{safe}-v{version}.{extension}\""))
        .expect("a quoted ASCII file name is a valid header value")
}

/// Query of the modes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ModesQuery {
    /// `true`: every eigenvalue of the latest refresh, each with its energy, intervals,
    /// track and the reason it is not physical; `false` (default): the tracked physical
    /// modes only.
    #[param(value_type = Option<bool>, nullable = false)]
    pub all: Option<String>,
}

/// The tracked physical modes (least damped first), or with `?all=true` every eigenvalue.
#[utoipa::path(get, path = "/v1/streams/{id}/modes", tag = "models",
    params(("id" = String, Path, description = "Stream id"), ModesQuery),
    responses((status = 200, description = "Tracked modes (koopstream.v1.TrackedModesResponse as protobuf), or with all=true every eigenvalue (koopstream.v1.ModesResponse); protobuf with Accept: application/x-protobuf", content(
            (TrackedModesResponse = "application/json"),
            (ModesResponse = "application/json"),
            (ProtobufBody = "application/x-protobuf"),
        )),
        (status = 304, description = "Not modified (If-None-Match; the ETag names the stream's incarnation and the meter refresh)"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No model yet", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A bad query", body = Problem, content_type = "application/problem+json")))]
pub async fn modes(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<ModesQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let all = match query.all.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => return Err(ApiError::invalid(format!("query `all`: `{other}` must be true or false"))),
    };
    let handle = find(&state, &id)?;
    let snapshot = published_model(&handle).await?;
    let channels: Vec<String> = handle.definition.channels.iter().map(|c| c.name.clone()).collect();
    let units: Vec<String> = handle.definition.channels.iter().map(|c| c.unit.clone()).collect();
    let view = handle.meter.view();
    // The tracked modes change with the meter's refreshes; every eigenvalue comes from the
    // latest refresh, or from the model itself before the first.
    let state_tag = match &view {
        Some(v) if !all || !v.analysed.is_empty() => format!("m{}", v.version),
        _ if all => format!("v{}", snapshot.version),
        _ => "m".to_owned(),
    };
    let tag = etag(&handle, &state_tag);
    if let Some(mut response) = not_modified(&headers, &tag) {
        vary_accept(&mut response);
        return Ok(response);
    }
    let intervals_unavailable = matches!(snapshot.config.method, koopman::Method::Correlation { .. })
        .then(|| koopman::uncertainty::CORRELATION_NO_INTERVALS.to_owned());
    let mut response = if all {
        let modes = match view {
            // A meter restored from a snapshot has tracks but no analysed model yet.
            Some(view) if !view.analysed.is_empty() => ModesResponse {
                version: view.version,
                ts: snapshot.ts,
                channels,
                units,
                modes: view
                    .analysed
                    .iter()
                    .enumerate()
                    .map(|(k, e)| estimate_view(e, view.verdicts.get(k).and_then(|v| v.1), view.reason(k)))
                    .collect(),
                intervals_unavailable,
            },
            _ => {
                // Before the first refresh: the current model's modes, not yet classified.
                let (version, ts) = (snapshot.version, snapshot.ts);
                let modes = blocking(move || snapshot.modes()).await?.map_err(|e| ApiError::internal(e.to_string()))?;
                ModesResponse {
                    version,
                    ts,
                    channels,
                    units,
                    modes: modes.iter().map(mode_view).collect(),
                    intervals_unavailable,
                }
            }
        };
        if prefers_protobuf(&headers) {
            protobuf_response(&pb::ModesResponse::from(&modes))
        } else {
            Json(modes).into_response()
        }
    } else {
        let modes = TrackedModesResponse {
            version: view.as_ref().map(|v| v.version),
            t: view.as_ref().map(|v| v.t),
            ts: snapshot.ts,
            channels,
            units,
            modes: view.map(|v| v.physical.iter().map(tracked_view).collect()).unwrap_or_default(),
            intervals_unavailable,
        };
        if prefers_protobuf(&headers) {
            protobuf_response(&pb::TrackedModesResponse::from(&modes))
        } else {
            Json(modes).into_response()
        }
    };
    vary_accept(&mut response);
    Ok(with_etag(response, &tag))
}

/// Active damping alarms of the tracked modes and their bounded history.
#[utoipa::path(get, path = "/v1/streams/{id}/alarms", tag = "models",
    params(("id" = String, Path, description = "Stream id")),
    responses((status = 200, description = "Active alarms and history (ETag: the stream's incarnation and the meter refresh)", body = AlarmsResponse),
        (status = 304, description = "Not modified (If-None-Match)"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The stream is quarantined", body = Problem, content_type = "application/problem+json")))]
pub async fn alarms(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let handle = find(&state, &id)?;
    let view = handle.meter.view();
    let tag = etag(&handle, &view.as_ref().map_or_else(|| "a".to_owned(), |v| format!("a{}", v.version)));
    if let Some(response) = not_modified(&headers, &tag) {
        return Ok(response);
    }
    let response = AlarmsResponse {
        version: view.as_ref().map(|v| v.version),
        t: view.as_ref().map(|v| v.t),
        active: view.as_ref().map(|v| v.active_alarms.iter().map(alarm_view).collect()).unwrap_or_default(),
        history: view.as_ref().map(|v| v.history.iter().map(alarm_view).collect()).unwrap_or_default(),
    };
    Ok(with_etag(Json(response).into_response(), &tag))
}

/// Rows of `width` values into one vector; a refusal is located under `at` (`/start/x`).
fn flatten(rows: &[Vec<f64>], width: usize, what: &str, at: &str) -> Result<Vec<f64>, ApiError> {
    let mut out = Vec::with_capacity(rows.len().saturating_mul(width));
    for (k, row) in rows.iter().enumerate() {
        if row.len() != width {
            return Err(ApiError::invalid_at(
                format!("{what} row {k} has {} values, the stream has {width}", row.len()),
                format!("{at}/{k}"),
            ));
        }
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(ApiError::invalid_at(
                format!("{what} row {k} value {j} is not finite"),
                format!("{at}/{k}/{j}"),
            ));
        }
        out.extend_from_slice(row);
    }
    Ok(out)
}

/// A prediction request as JSON or protobuf, by Content-Type.
fn predict_request(headers: &HeaderMap, body: &[u8]) -> Result<PredictRequest, ApiError> {
    match media_type(headers).as_deref() {
        Some(t) if is_protobuf(t) => {
            let message: pb::PredictRequest = wire::located::from_protobuf(body, "the protobuf request")?;
            PredictRequest::try_from(&message)
                .map_err(|e| ApiError::invalid_at(format!("the protobuf request does not fit: {e}"), e.pointer()))
        }
        _ => json_body(headers, body),
    }
}

/// Most values (steps x channels) one prediction answers with.
pub const MAX_PREDICTION_VALUES: usize = 2_000_000;

/// Predict the states `horizon` steps ahead.
#[utoipa::path(post, path = "/v1/streams/{id}/predict", tag = "models", params(("id" = String, Path, description = "Stream id")),
    request_body(content(
        (PredictRequest = "application/json"),
        (ProtobufBody = "application/x-protobuf"),
    ), description = "JSON, or a protobuf koopstream.v1.PredictRequest (proto/koopstream/v1/predict.proto)"),
    responses((status = 200, description = "The predicted trajectory: JSON; protobuf koopstream.v1.PredictResponse with Accept: application/x-protobuf", content(
            (PredictResponse = "application/json"),
            (ProtobufBody = "application/x-protobuf"),
        )),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No model yet", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn predict(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let request = predict_request(&headers, &body)?;
    let handle = find(&state, &id)?;
    let (n, m) = (handle.definition.n_states(), handle.definition.n_inputs());
    let max = state.settings.max_horizon;
    if request.horizon == 0 || request.horizon > max {
        return Err(ApiError::invalid_at(
            format!("field `horizon`: {} must lie in 1..={max}", request.horizon),
            "/horizon",
        ));
    }
    // The answer holds horizon x channels values: bounded too, whatever the channel count.
    if request.horizon.saturating_mul(n) > MAX_PREDICTION_VALUES {
        return Err(ApiError::invalid_at(
            format!(
                "field `horizon`: {} steps of {n} channels is more than {MAX_PREDICTION_VALUES} predicted values",
                request.horizon
            ),
            "/horizon",
        ));
    }
    let snapshot = published_model(&handle).await?;
    let (recent, t_last) = match &request.start {
        Some(start) => (flatten(&start.x, n, "field `start.x`:", "/start/x")?, start.t.unwrap_or(0.0)),
        None => (snapshot.recent_states.clone(), snapshot.last_timestamp.unwrap_or(0.0)),
    };
    let inputs = match (&request.u, m) {
        (None, 0) => Vec::new(),
        (None, _) => {
            return Err(ApiError::invalid_at(format!("field `u` is missing: the stream has {m} inputs"), "/u"));
        }
        (Some(rows), _) => flatten(rows, m, "field `u`:", "/u")?,
    };
    let mode = match request.mode {
        PredictMode::Linear => PredictionMode::Linear,
        PredictMode::Relift => PredictionMode::Relift,
    };
    let horizon = request.horizon;
    let version = snapshot.version;
    let ts = snapshot.ts;
    let predicted = blocking(move || snapshot.model.predict(&recent, &inputs, horizon, mode))
        .await?
        .map_err(|e| ApiError::invalid(e.to_string()))?;
    let response = PredictResponse {
        version,
        channels: handle.definition.channels.iter().map(|c| c.name.clone()).collect(),
        t: (1..=horizon).map(|k| t_last + k as f64 * ts).collect(),
        x: predicted.chunks_exact(n).map(<[f64]>::to_vec).collect(),
    };
    let mut answer = if prefers_protobuf(&headers) {
        // Every row has the stream's n values, so packing cannot fail; if it did, it is ours.
        let message = pb::PredictResponse::try_from(&response).map_err(|e| ApiError::internal(e.to_string()))?;
        protobuf_response(&message)
    } else {
        Json(response).into_response()
    };
    vary_accept(&mut answer);
    Ok(answer)
}
