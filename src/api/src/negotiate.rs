//! The HTTP side of the protobuf forms: whether a client asks for protobuf (`Accept`), and
//! answering with an encoded message. JSON stays the default for every route.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use wire::{PROTOBUF, is_protobuf};

/// Whether the client prefers protobuf: `Accept` names a protobuf media type with a q above
/// zero and at least that of every JSON range it lists (`application/json`,
/// `application/*`, `*/*`). No `Accept`, or one without protobuf, means JSON, so existing
/// clients see no change.
pub fn prefers_protobuf(headers: &HeaderMap) -> bool {
    let (mut protobuf_q, mut json_q) = (0.0_f32, 0.0_f32);
    for value in headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()) {
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| {
                    let (name, value) = p.split_once('=')?;
                    name.trim().eq_ignore_ascii_case("q").then(|| value.trim().parse::<f32>().ok()).flatten()
                })
                .next()
                .unwrap_or(1.0);
            if is_protobuf(&media) {
                protobuf_q = protobuf_q.max(q);
            } else if matches!(media.as_str(), "application/json" | "application/*" | "*/*") {
                json_q = json_q.max(q);
            }
        }
    }
    protobuf_q > 0.0 && protobuf_q >= json_q
}

/// A 200 response carrying `message` as `application/x-protobuf`.
pub fn protobuf_response(message: &impl prost::Message) -> Response {
    let mut response = message.encode_to_vec().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF));
    response
}

/// Marks a response as chosen by `Accept`, so caches keep the JSON and protobuf forms apart
/// (they share the ETag: it names the model version, not the bytes).
pub fn vary_accept(response: &mut Response) {
    response.headers_mut().append(header::VARY, HeaderValue::from_static("accept"));
}
