//! The one API error type: every 4xx and 5xx leaves as RFC 9457 `application/problem+json`
//! with a `type`, `title`, `status` and a `detail` naming what was wrong, and, for an error
//! in a request body, the extension member `pointer`: an RFC 6901 JSON pointer to the value
//! (`/x/3/1`).
//!
//! One rule decides between 400 and 422 for every body format (JSON, NDJSON, CSV,
//! protobuf, WebSocket frames): 400 `malformed` only when the body is not a document of its
//! media type at all, so that no field can be named (not UTF-8, not JSON, a syntax error or
//! trailing bytes outside any value, protobuf bytes that prost cannot
//! attribute to a field, an NDJSON line that is not a JSON document, located at its line);
//! 422 `invalid` for every error that can be located at a field or value: a wrong type (a
//! string where a number belongs), a `NaN` or `Infinity` literal or any other broken value,
//! a value cut off by the end of the body, a non-finite or out-of-range number, a wrong
//! count (row length, time stamps, a missing or unknown member). 413 stays the answer for a
//! batch over the size limits.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use domain::error::{DomainError, ErrorKind};
pub use wire::problem::{PROBLEM_JSON, Problem};

/// The `WWW-Authenticate` challenge of a 401 (RFC 6750).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// No credential was presented.
    Missing,
    /// The credential is not a known token.
    InvalidToken,
}

impl Challenge {
    fn header(self) -> &'static str {
        match self {
            Challenge::Missing => "Bearer realm=\"koopstream\"",
            Challenge::InvalidToken => "Bearer realm=\"koopstream\", error=\"invalid_token\"",
        }
    }
}

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    title: &'static str,
    detail: String,
    pointer: Option<String>,
    retry_after_s: Option<u32>,
    challenge: Option<Challenge>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self { status, kind, title, detail: detail.into(), pointer: None, retry_after_s: None, challenge: None }
    }

    /// 422 for a value at `pointer` (an RFC 6901 JSON pointer into the body), named in the
    /// detail too.
    pub fn invalid_at(detail: impl Into<String>, pointer: impl Into<String>) -> Self {
        DomainError::invalid(detail).at(pointer).into()
    }

    /// Where in the request body the error is, when known.
    pub fn pointer(&self) -> Option<&str> {
        self.pointer.as_deref()
    }

    /// 400: the request could not be parsed.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", "Malformed request", detail)
    }

    /// 401: no credential, or one that is not known; `challenge` is the `WWW-Authenticate`
    /// header (RFC 6750).
    pub fn unauthorized(detail: impl Into<String>, challenge: Challenge) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required", detail);
        e.challenge = Some(challenge);
        e
    }

    /// 403: the credential is known but does not allow this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 429: the token's request budget is spent; retry after the given seconds.
    pub fn rate_limited(retry_after_s: u64) -> Self {
        let detail = format!("the token's request budget is spent; retry after {retry_after_s} s");
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Rate limit exceeded", detail)
            .retry_after(retry_after_s)
    }

    /// Adds `Retry-After`.
    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_s = Some(u32::try_from(seconds).unwrap_or(u32::MAX));
        self
    }

    /// 404: no stream with that id.
    pub fn unknown_stream(id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "unknown-stream", "Unknown stream", format!("no stream with id `{id}`"))
    }

    /// 404: no such route.
    pub fn unknown_route(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "unknown-route", "Not found", format!("no route `{path}`"))
    }

    /// 405: the route exists but not with this method.
    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed", detail)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    /// 409: the stream has no model yet.
    pub fn no_model(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "no-model-yet", "No model yet", detail)
    }

    /// 413: the body is larger than allowed.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "Request too large", detail)
    }

    /// 415: the body's media type is not accepted here.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type", detail)
    }

    /// 406: none of the accepted representations can be produced.
    pub fn not_acceptable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "not-acceptable", "Not acceptable", detail)
    }

    /// 422: well-formed but invalid (wrong channel count, non-finite value, bad option).
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Invalid request", detail)
    }

    /// 429: the stream's queue is full; retry after the given seconds.
    pub fn queue_full(stream: &str, retry_after_s: u64) -> Self {
        let detail = format!("the ingest queue of stream `{stream}` is full; retry later");
        Self::new(StatusCode::TOO_MANY_REQUESTS, "queue-full", "Ingest queue full", detail).retry_after(retry_after_s)
    }

    /// 503: the service cannot take this now (limit reached, shutting down).
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable", detail)
    }

    /// 504: the request took longer than the configured timeout.
    pub fn timeout(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", "Request timed out", detail)
    }

    /// 503 while start-up recovery runs.
    pub fn recovering() -> Self {
        Self::unavailable("the service is recovering its streams from the store; retry shortly")
    }

    /// 500: a fault of the service.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", detail)
    }

    /// What exactly was wrong.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:koopstream:problem:{}", self.kind),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            pointer: self.pointer.clone(),
        }
    }
}

impl From<DomainError> for ApiError {
    /// The one place where a domain error kind becomes an HTTP status: 400 for a body that
    /// is not a document of its media type, 422 for an error located at a field and for what
    /// parses but is not acceptable (including budgets; see the module's rule), 413 for
    /// sizes beyond a limit, 409 for conflicts and quarantined streams, 404 for unknown
    /// streams, 429 for a full queue, 503 for limits and unavailability, 507 for a full
    /// disk.
    fn from(error: DomainError) -> Self {
        let detail = error.detail().to_owned();
        let mut answer = match error.kind() {
            ErrorKind::Malformed => Self::malformed(detail),
            ErrorKind::InvalidField => Self::invalid(detail),
            ErrorKind::TooLarge => Self::too_large(detail),
            ErrorKind::Conflict => Self::conflict(detail),
            ErrorKind::OverBudget => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "memory-budget", "Memory budget exceeded", detail)
            }
            ErrorKind::LimitReached => Self::unavailable(detail),
            // Temporary (the cluster's NATS is unreachable): say when to try again.
            ErrorKind::Unavailable => {
                let mut e = Self::unavailable(detail);
                e.retry_after_s = Some(1);
                e
            }
            ErrorKind::QueueFull => {
                let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "queue-full", "Ingest queue full", detail);
                e.retry_after_s = Some(1);
                e
            }
            ErrorKind::UnknownStream => Self::new(StatusCode::NOT_FOUND, "unknown-stream", "Unknown stream", detail),
            ErrorKind::Quarantined => Self::new(StatusCode::CONFLICT, "quarantined", "Stream quarantined", detail),
            ErrorKind::StorageFull => {
                Self::new(StatusCode::INSUFFICIENT_STORAGE, "storage-full", "Insufficient storage", detail)
            }
            ErrorKind::Storage => Self::unavailable(detail),
        };
        answer.pointer = error.pointer().map(str::to_owned);
        answer
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.title, self.detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after_s {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(challenge) = self.challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge.header()));
        }
        response
    }
}
