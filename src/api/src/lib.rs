//! The HTTP layer of koopstream: routes under `/v1`, operational endpoints, middleware
//! (request metrics, timeouts, body and concurrency limits), the mapping of domain errors to
//! problem+json, and the OpenAPI document that describes it all. It depends on the domain and
//! the wire formats, never on the store or the configuration loader: the binary hands it
//! [`HttpSettings`] and a [`ScrapeHook`].

pub mod auth;
pub mod dashboard;
pub mod extract;
pub mod health;
pub mod live;
pub mod model;
pub mod negotiate;
pub mod presets;
pub mod problem;
pub mod samples;
pub mod streams;
pub mod ws;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::{Notify, watch};
use utoipa::OpenApi;

use domain::metrics::Metrics;
use domain::registry::Registry;
use problem::ApiError;

/// Counts open WebSocket sessions so shutdown can wait for their close frames.
#[derive(Default)]
pub struct SessionTracker {
    active: AtomicUsize,
    idle: Notify,
}

/// Held by an open session.
pub struct SessionGuard<'a>(&'a SessionTracker);

impl SessionTracker {
    /// Registers a session until the guard drops.
    pub fn enter(&self) -> SessionGuard<'_> {
        self.active.fetch_add(1, Ordering::AcqRel);
        SessionGuard(self)
    }

    /// Waits until no session is open.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.active.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The limits and defaults the HTTP layer applies (taken from the service configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Largest number of samples in one batch.
    pub max_batch_samples: usize,
    /// Time limit of one HTTP request in milliseconds (WebSockets are exempt).
    pub request_timeout_ms: u64,
    /// Requests served at once; more wait.
    pub concurrency: usize,
    /// Largest prediction horizon.
    pub max_horizon: usize,
    /// Server-sent event streams open at once.
    pub max_event_streams: usize,
    /// Eigen-decomposition cadence of a stream whose definition does not set one.
    pub eigen_every: u64,
    /// The hosts a stream's source may name.
    pub source_hosts: domain::source::AllowedHosts,
}

/// Refreshes gauges that are cheaper to read at scrape time than to keep current (the
/// store's commit latencies and log size); the binary supplies it when there is a store.
pub type ScrapeHook = Box<dyn Fn(&Metrics, &Registry) + Send + Sync>;

/// Shared state of the handlers.
pub struct AppInner {
    /// The streams.
    pub registry: Registry,
    /// The metrics.
    pub metrics: Arc<Metrics>,
    /// Limits and defaults.
    pub settings: HttpSettings,
    /// Called before metrics are encoded for a scrape.
    pub before_scrape: Option<ScrapeHook>,
    /// Start-up is done.
    pub ready: AtomicBool,
    /// Becomes true when shutdown begins.
    pub shutdown: watch::Receiver<bool>,
    /// Open WebSocket sessions.
    pub websockets: SessionTracker,
    /// One permit per open server-sent event stream (`HttpSettings::max_event_streams`).
    pub event_streams: Arc<tokio::sync::Semaphore>,
    /// The tokens accepted and what each may do (open when none is configured).
    pub access: auth::AccessPolicy,
}

/// Cheap to clone handle on the shared state.
pub type AppState = Arc<AppInner>;

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "koopstream", description = "Streaming online system identification with robust Koopman operators. Bodies are JSON; batches, models, modes and predictions also have protobuf forms (application/x-protobuf; schemas in proto/koopstream/v1/, package koopstream.v1), chosen by Content-Type and Accept."),
    paths(
        streams::create, streams::list, streams::get, streams::delete, streams::reset, presets::list,
        samples::ingest, ws::upgrade, model::model, model::modes, model::alarms, model::predict,
        live::recent, live::trend, live::events,
        health::healthz, health::readyz, health::metrics, health::openapi,
    ),
    tags(
        (name = "streams", description = "Stream definitions and status"),
        (name = "samples", description = "Ingest over HTTP (JSON, NDJSON, CSV, protobuf) and WebSocket (subprotocols koopstream.v1.json and koopstream.v1.proto)"),
        (name = "models", description = "Linear models, modes and predictions"),
        (name = "watch", description = "Reading a stream as it runs (the dashboard's sources): recent measurements, the course of the tracked modes, server-sent events"),
        (name = "operations", description = "Health, readiness, metrics"),
    ),
    modifiers(&BearerTokens),
)]
pub struct ApiDoc;

/// Adds the bearer-token scheme and, to every operation that needs a token, its scope and
/// the 401, 403 and 429 answers (see `auth`). A server with no token configured allows
/// every request; the document describes the server with tokens.
struct BearerTokens;

impl utoipa::Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "Tokens with scopes read, ingest, admin and metrics, from the server's configuration. \
                 WebSocket clients that cannot set the header offer the subprotocol koopstream.bearer.<token> \
                 beside koopstream.v1.json or koopstream.v1.proto.",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    problem::PROBLEM_JSON,
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                )
                .build()
        };
        let policy = auth::AccessPolicy::open();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let route = path.as_str();
            let operations = [
                (axum::http::Method::GET, &mut item.get),
                (axum::http::Method::POST, &mut item.post),
                (axum::http::Method::DELETE, &mut item.delete),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let auth::Requirement::Scope(scope, _) = policy.requirement(&method, Some(route), route) else {
                    continue;
                };
                operation.security = Some(vec![SecurityRequirement::new("bearer", [scope.name()])]);
                let responses = &mut operation.responses.responses;
                responses.insert("401".into(), problem("No token, or one that is not known").into());
                responses
                    .insert("403".into(), problem("The token lacks the scope, or may not touch this stream").into());
                responses.entry("429".into()).or_insert_with(|| {
                    problem("The token's request budget is spent (Retry-After says when to retry)").into()
                });
            }
        }
    }
}

async fn track_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.http(&route, response.status().as_u16(), started.elapsed().as_secs_f64());
    response
}

async fn time_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = Duration::from_millis(state.settings.request_timeout_ms);
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::timeout(format!("the request took longer than {} ms", limit.as_millis())).into_response(),
    }
}

/// Stream routes answer 503 until recovery has loaded every stream.
async fn require_ready(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if state.ready.load(Ordering::Acquire) { next.run(request).await } else { ApiError::recovering().into_response() }
}

async fn unknown_route(request: Request) -> ApiError {
    ApiError::unknown_route(request.uri().path())
}

async fn wrong_method(request: Request) -> ApiError {
    ApiError::method_not_allowed(format!("{} is not allowed on `{}`", request.method(), request.uri().path()))
}

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    let limits = &state.settings;
    let streams_api = Router::new()
        .route("/v1/streams", post(streams::create).get(streams::list))
        .route("/v1/streams/{id}", get(streams::get).delete(streams::delete))
        .route("/v1/streams/{id}/reset", post(streams::reset))
        .route("/v1/streams/{id}/samples", post(samples::ingest))
        .route("/v1/streams/{id}/model", get(model::model))
        .route("/v1/streams/{id}/modes", get(model::modes))
        .route("/v1/streams/{id}/alarms", get(model::alarms))
        .route("/v1/streams/{id}/predict", post(model::predict))
        .route("/v1/streams/{id}/recent", get(live::recent))
        .route("/v1/streams/{id}/modes/trend", get(live::trend))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_ready));
    let timed = Router::new()
        .merge(streams_api)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(health::openapi))
        // Static data: served before recovery finishes too.
        .route("/v1/presets", get(presets::list))
        .route("/", get(dashboard::page))
        .route("/dashboard/{asset}", get(dashboard::asset))
        .layer(middleware::from_fn_with_state(state.clone(), time_limit));
    // WebSockets live as long as the client wants: no request timeout.
    let sessions = Router::new()
        .route("/v1/streams/{id}/ws", get(ws::upgrade))
        .route("/v1/streams/{id}/events", get(live::events))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_ready));
    timed
        .merge(sessions)
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(state.clone(), auth::authorize))
        .layer(middleware::from_fn_with_state(state.clone(), track_requests))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(limits.concurrency))
        .with_state(state)
}
