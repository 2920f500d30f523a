//! Reading a stream as it runs, with the `read` scope only: its last measured samples, the
//! recent course of its tracked modes, and a server-sent event stream of its refreshes,
//! alarm changes, mode moves and status. The dashboard is built on these; any read-only
//! client may use them (a WebSocket needs the `ingest` scope, these do not).

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::{broadcast, watch};
use utoipa::IntoParams;

use crate::AppState;
use crate::extract::QueryParams;
use crate::problem::{ApiError, Problem};
use crate::streams::{find, view};
use domain::command::Push;
use domain::recent::RECENT_ROWS;
use domain::registry::StreamHandle;
use wire::streams::{AlarmMessageDoc, ModeChangedDoc, ModelSummaryDoc};
use wire::watch::{RecentResponse, TrendPointView, TrendResponse};

/// Rows `/recent` returns when `count` is absent.
pub const DEFAULT_RECENT_ROWS: usize = 300;

/// How often the event stream sends the stream's status.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Query of `/recent`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecentQuery {
    /// Rows wanted, newest last (default 300, at most 600: what a stream keeps).
    #[param(nullable = false, minimum = 1, maximum = 600)]
    pub count: Option<usize>,
}

/// Query of `/modes/trend`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendQuery {
    /// Only refreshes after this stream time (seconds); default: every one kept.
    #[param(nullable = false)]
    pub after: Option<f64>,
}

fn channel_names_and_units(handle: &StreamHandle) -> (Vec<String>, Vec<String>) {
    handle.definition.channels.iter().map(|c| (c.name.clone(), c.unit.clone())).unzip()
}

/// The last measured samples of a stream.
#[utoipa::path(get, path = "/v1/streams/{id}/recent", tag = "watch",
    params(("id" = String, Path, description = "Stream id"), RecentQuery),
    responses((status = 200, description = "The newest in-order samples the stream received (missing values null), oldest first; at most 600 are kept, and none survive a restart except those replayed from the log", body = RecentResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The stream is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`count` out of range", body = Problem, content_type = "application/problem+json")))]
pub async fn recent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<RecentQuery>,
) -> Result<Json<RecentResponse>, ApiError> {
    let handle = find(&state, &id)?;
    let count = query.count.unwrap_or(DEFAULT_RECENT_ROWS);
    if !(1..=RECENT_ROWS).contains(&count) {
        return Err(ApiError::invalid(format!("query parameter `count`: {count} is not in 1..={RECENT_ROWS}")));
    }
    let (channels, units) = channel_names_and_units(&handle);
    Ok(Json(RecentResponse::new(channels, units, handle.recent.last(count))))
}

/// The recent course of a stream's tracked modes.
#[utoipa::path(get, path = "/v1/streams/{id}/modes/trend", tag = "watch",
    params(("id" = String, Path, description = "Stream id"), TrendQuery),
    responses((status = 200, description = "Frequency, damping and their intervals of the tracked modes at each of the last 360 mode-meter refreshes, oldest first (kept in memory only)", body = TrendResponse),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The stream is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`after` is not a finite number", body = Problem, content_type = "application/problem+json")))]
pub async fn trend(
    State(state): State<AppState>,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<TrendQuery>,
) -> Result<Json<TrendResponse>, ApiError> {
    let handle = find(&state, &id)?;
    if query.after.is_some_and(|a| !a.is_finite()) {
        return Err(ApiError::invalid("query parameter `after`: not a finite number".to_owned()));
    }
    let points = handle.meter.trend(query.after).iter().map(TrendPointView::from).collect();
    Ok(Json(TrendResponse { points }))
}

/// What the event stream waits on.
struct Watcher {
    /// Held while the event stream is open.
    _permit: tokio::sync::OwnedSemaphorePermit,
    handle: std::sync::Arc<StreamHandle>,
    state: AppState,
    pushes: broadcast::Receiver<std::sync::Arc<Push>>,
    deleted: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
    status_tick: tokio::time::Interval,
    done: bool,
}

impl Watcher {
    /// The next event, or None when the stream is deleted or the server stops.
    async fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        tokio::select! {
            _ = self.deleted.wait_for(|gone| *gone) => {
                self.done = true;
                Some(Event::default().event("deleted").data("{}"))
            }
            _ = self.shutdown.wait_for(|stopping| *stopping) => None,
            _ = self.status_tick.tick() => {
                // In a cluster, a node that hands the stream off swaps its live copy for an
                // idle one, whose status is no longer the stream's: the event stream ends,
                // and the client's reconnection is forwarded to the new owner. (A deleted
                // stream is absent instead, and ends with its `deleted` event.)
                let current = self.state.registry.get(&self.handle.definition.id);
                if current.is_some_and(|current| !std::sync::Arc::ptr_eq(&current, &self.handle)) {
                    self.done = true;
                    return None;
                }
                Some(json_event("status", &view(&self.handle)))
            }
            push = self.pushes.recv() => match push {
                Ok(push) => Some(match &*push {
                    Push::Summary(summary) => json_event("summary", &ModelSummaryDoc::from(summary)),
                    Push::Alarm(notice) => json_event("alarm", &AlarmMessageDoc::from(notice)),
                    Push::ModeChanged(change) => json_event("mode_changed", &ModeChangedDoc::from(change)),
                }),
                // A slow reader missed some: say so, so it re-reads what it shows.
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    Some(Event::default().event("lagged").data(format!("{{\"missed\":{missed}}}")))
                }
                // The handle holds a sender: closed only once the stream is gone.
                Err(broadcast::error::RecvError::Closed) => None,
            },
        }
    }
}

fn json_event(name: &str, value: &impl serde::Serialize) -> Event {
    // The documents are plain data: serialising cannot fail.
    Event::default().event(name).data(serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned()))
}

/// Server-sent events of a stream.
#[utoipa::path(get, path = "/v1/streams/{id}/events", tag = "watch",
    params(("id" = String, Path, description = "Stream id")),
    responses((status = 200, description = "text/event-stream, open until the stream is deleted or the server stops (in a cluster, also when the answering node hands the stream off: the reconnection is forwarded to its new owner). Events (data: one JSON document): `status` every second ({definition, status, source} as GET /v1/streams/{id}); `summary` at each mode-meter refresh, `alarm` when a tracked mode's damping alarm changes, `mode_changed` when its frequency or damping moves (the same documents as the WebSocket's messages); `lagged` ({missed}) when the reader fell behind and should re-read; `deleted` just before the end when the stream is deleted. Needs only the `read` scope", content_type = "text/event-stream", body = String),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The stream is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "As many event streams are open as limits.max_event_streams allows", body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let handle = find(&state, &id)?;
    let permit = state.event_streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::unavailable(format!(
            "{} event streams are open, the most this server allows (limits.max_event_streams)",
            state.settings.max_event_streams
        ))
    })?;
    let watcher = Watcher {
        _permit: permit,
        pushes: handle.subscribe(),
        deleted: handle.deleted(),
        shutdown: state.shutdown.clone(),
        status_tick: tokio::time::interval(STATUS_EVERY),
        handle,
        state: state.clone(),
        done: false,
    };
    let events = stream::unfold(watcher, |mut watcher| async move {
        let event = watcher.next().await?;
        Some((Ok(event), watcher))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
