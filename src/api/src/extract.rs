//! Request extraction at the edge: bodies and media types, with every rejection turned
//! into a problem document instead of the framework's plain-text answers.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::problem::ApiError;

/// The raw body, within the configured size limit.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state).await.map(RawBody).map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large("the request body is larger than the configured limit (limits.max_body_bytes)")
            } else {
                ApiError::malformed(format!("the request body could not be read: {rejection}"))
            }
        })
    }
}

/// A query string deserialised into `T`; a query that does not fit (`?seq=-1`, `?all=1`
/// where a boolean is expected) is a 422 problem naming the parameter, not axum's plain-text
/// 400.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|rejection| ApiError::invalid(format!("the query string: {}", rejection.body_text())))
    }
}

/// The media type of the body, lower case, without parameters.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
}

/// Parses a JSON body, insisting on a JSON media type.
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    match media_type(headers).as_deref() {
        Some("application/json") => {}
        Some(other) => {
            return Err(ApiError::unsupported_media_type(format!(
                "`{other}` is not accepted here; send application/json"
            )));
        }
        None => {
            return Err(ApiError::unsupported_media_type("the Content-Type header is missing; send application/json"));
        }
    }
    // Located at the value being read: 422 with a pointer, 400 only when no field can be
    // named (see `problem`).
    Ok(wire::located::from_json(body, "the JSON body")?)
}
