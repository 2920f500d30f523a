//! The middleware in front of every route: finds the presented token, checks it against
//! the route's requirement, counts and audits refusals, and writes an audit line for every
//! admin action once its answer is known.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{AUDIT_TARGET, BEARER_SUBPROTOCOL_PREFIX, Requirement};
use crate::AppState;
use crate::problem::ApiError;

/// The token a request presents: `Authorization: Bearer <token>`, or on the WebSocket route
/// a `koopstream.bearer.<token>` subprotocol.
fn presented_token(headers: &HeaderMap, websocket: bool) -> Option<&str> {
    let bearer = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    if bearer.is_some() || !websocket {
        return bearer;
    }
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(BEARER_SUBPROTOCOL_PREFIX))
}

/// The admin action a request performs, for the audit log.
fn admin_action(method: &Method, route: Option<&str>) -> Option<&'static str> {
    match (route?, method) {
        ("/v1/streams", &Method::POST) => Some("create"),
        ("/v1/streams/{id}", &Method::DELETE) => Some("delete"),
        ("/v1/streams/{id}/reset", &Method::POST) => Some("reset"),
        _ => None,
    }
}

/// The middleware: authenticates, authorises, rate-limits, and writes audit lines.
pub async fn authorize(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string()).unwrap_or_default();
    let need = state.access.requirement(&method, route.as_deref(), &path);
    let action = admin_action(&method, route.as_deref());
    let who = match (&need, state.access.enabled()) {
        (Requirement::Open, _) => return next.run(request).await,
        (_, false) => "anonymous (authentication off)".to_owned(),
        (need, true) => {
            let websocket = route.as_deref() == Some("/v1/streams/{id}/ws");
            let token = presented_token(request.headers(), websocket);
            match state.access.check(token, need, Instant::now()) {
                Ok(principal) => {
                    let name = principal.name.clone();
                    request.extensions_mut().insert(principal);
                    name
                }
                Err(denied) => {
                    state.metrics.auth_refused(denied.reason());
                    let who = token.and_then(|t| state.access.name_of(t)).unwrap_or("?");
                    tracing::warn!(target: AUDIT_TARGET, %who, %method, %path, %peer, refused = ?denied, "request refused");
                    return ApiError::from(denied).into_response();
                }
            }
        }
    };
    let response = next.run(request).await;
    if let Some(action) = action {
        let stream = match action {
            "create" => response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned(),
            _ => path.clone(),
        };
        let status = response.status().as_u16();
        tracing::info!(target: AUDIT_TARGET, %who, action, %stream, status, %peer, "admin action");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_header_or_the_websocket_subprotocol() {
        let mut headers = HeaderMap::new();
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, "koopstream.v1.json, koopstream.bearer.abc".parse().unwrap());
        assert_eq!(presented_token(&headers, true), Some("abc"));
        assert_eq!(presented_token(&headers, false), None);
        headers.insert(header::AUTHORIZATION, "bearer xyz".parse().unwrap());
        assert_eq!(presented_token(&headers, true), Some("xyz"));
        headers.insert(header::AUTHORIZATION, "Basic xyz".parse().unwrap());
        assert_eq!(presented_token(&headers, false), None);
    }
}
