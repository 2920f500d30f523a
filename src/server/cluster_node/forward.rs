//! Reads on every node: a stream's status, `/model`, `/modes`, `/alarms`, `/predict`,
//! `/recent` and `/modes/trend` asked of a node that does not own the stream are forwarded over HTTP to the node that
//! holds its lease, which answers from its live state. Every such answer carries
//! `koopstream-served-by: NODE`, the node whose state it is, and `koopstream-served-from:
//! owner` or `copy`: the live state of the lease holder, or (while no node holds the lease,
//! during a failover) the answering node's idle copy, which has the definition and nothing
//! applied. The owner's answer is passed on as it is (status, body, content headers); the
//! credentials go with the request, so the owner checks them as for any request. A stream's
//! server-sent events (`/events`) are forwarded the same way but passed on as they come,
//! for as long as the owner sends them; each holds one of this node's event-stream permits
//! too, so `limits.max_event_streams` bounds what a node keeps open either way.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cluster::{Cluster, NodeId};
use tokio::sync::Semaphore;

use crate::api::problem::ApiError;

use super::ownership::Owned;
use super::peer::PeerClient;

/// The header naming the node whose state answered.
pub const SERVED_BY: &str = "koopstream-served-by";
/// The header saying whose state answered: `owner` (the live state) or `copy` (an idle copy).
pub const SERVED_FROM: &str = "koopstream-served-from";
/// Marks a forwarded request, so that it is answered where it arrives and never forwarded
/// again (two nodes disagreeing for a moment about the owner cannot bounce it).
pub const FORWARDED: &str = "koopstream-forwarded-by";
/// The bound on a forwarded request.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer a forwarded read passes on (a model document at the largest sizes the
/// limits allow is far smaller); a larger one is a 503.
const ANSWER_LIMIT: usize = 1 << 30;
/// The request headers a forwarded read carries.
const REQUEST_HEADERS: [HeaderName; 5] =
    [header::AUTHORIZATION, header::ACCEPT, header::CONTENT_TYPE, header::IF_NONE_MATCH, header::ACCEPT_ENCODING];
/// The response headers passed back.
const RESPONSE_HEADERS: [HeaderName; 5] =
    [header::CONTENT_TYPE, header::ETAG, header::CACHE_CONTROL, header::CONTENT_DISPOSITION, header::RETRY_AFTER];

/// What forwarding needs.
pub struct Forwarder {
    pub cluster: Cluster,
    pub owned: Owned,
    /// Requests to the other nodes, over TLS when they serve it.
    pub peers: PeerClient,
    /// This node's event-stream permits, shared with the streams it serves itself.
    pub event_streams: Arc<Semaphore>,
    pub max_body_bytes: usize,
}

impl Forwarder {
    pub fn new(
        cluster: Cluster,
        owned: Owned,
        peers: PeerClient,
        event_streams: Arc<Semaphore>,
        max_body_bytes: usize,
    ) -> Self {
        Self { cluster, owned, peers, event_streams, max_body_bytes }
    }
}

/// How a forwarded answer is passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Read whole, then sent.
    Whole,
    /// Passed on as it comes (`text/event-stream`).
    Events,
}

/// The stream a forwardable read is about, and how its answer is passed on: `GET
/// /v1/streams/{id}`, the reads below it, and its event stream.
fn read_of(request: &Request) -> Option<(String, Answer)> {
    let rest = request.uri().path().strip_prefix("/v1/streams/")?;
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let answer = match tail {
        "" if request.method() == axum::http::Method::GET => Answer::Whole,
        "model" | "modes" | "alarms" | "predict" | "recent" | "modes/trend" => Answer::Whole,
        "events" if request.method() == axum::http::Method::GET => Answer::Events,
        _ => return None,
    };
    (!id.is_empty()).then(|| (id.to_owned(), answer))
}

/// The middleware.
pub async fn forward(State(forwarder): State<Arc<Forwarder>>, request: Request, next: Next) -> Response {
    let me = forwarder.cluster.node_id().clone();
    let Some((id, answer)) = read_of(&request) else { return next.run(request).await };
    let owned_here = forwarder.owned.lock().unwrap_or_else(|e| e.into_inner()).contains(&id);
    if owned_here || request.headers().contains_key(FORWARDED) {
        // A forwarded request reaching a node that has just given the stream up is answered
        // from its copy, and says so.
        return served_by(next.run(request).await, &me, owned_here);
    }
    let holder = match forwarder.cluster.leases().holder(&id).await {
        Ok(holder) => holder,
        Err(error) => return ApiError::unavailable(format!("the cluster cannot be reached: {error}")).into_response(),
    };
    let holder = match holder.map(NodeId::new) {
        Some(Ok(holder)) if holder != me => holder,
        // No owner yet (the stream is being taken over), or this node is taking it: the
        // local copy answers what it knows (the definition), and says whose it is.
        _ => return served_by(next.run(request).await, &me, false),
    };
    let sent = match answer {
        Answer::Whole => send(&forwarder, &holder, request).await,
        Answer::Events => send_events(&forwarder, &holder, request).await,
    };
    match sent {
        Ok(response) => response,
        Err(detail) => {
            ApiError::unavailable(format!("the owner of stream `{id}`, node `{holder}`, {detail}")).into_response()
        }
    }
}

fn served_by(mut response: Response, node: &NodeId, live: bool) -> Response {
    if let Ok(value) = HeaderValue::from_str(node.as_str()) {
        response.headers_mut().insert(SERVED_BY, value);
    }
    let from = HeaderValue::from_static(if live { "owner" } else { "copy" });
    response.headers_mut().insert(SERVED_FROM, from);
    response
}

/// Sends `request` to the holder; returns its answer as soon as its head is in.
async fn ask(forwarder: &Forwarder, holder: &NodeId, request: Request) -> Result<Response, String> {
    let address = match forwarder.cluster.membership().address_of(holder).await {
        Ok(Some(address)) => address,
        Ok(None) => return Err("advertises no address".to_owned()),
        Err(error) => return Err(format!("cannot be looked up: {error}")),
    };
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let body = to_bytes(body, forwarder.max_body_bytes).await.map_err(|e| format!("got no body: {e}"))?;
    let mut headers = HeaderMap::new();
    for name in REQUEST_HEADERS {
        if let Some(value) = parts.headers.get(&name) {
            headers.insert(name, value.clone());
        }
    }
    if let Ok(me) = HeaderValue::from_str(forwarder.cluster.node_id().as_str()) {
        headers.insert(FORWARDED, me);
    }
    let url = format!("{}{path}", address.trim_end_matches('/'));
    forwarder.peers.send(parts.method, &url, headers, body, FORWARD_TIMEOUT).await
}

/// The answer's status and passed-on headers around `body`, labelled with whose state it is.
fn passed_on(answer: &Response, holder: &NodeId, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = answer.status();
    for name in RESPONSE_HEADERS {
        if let Some(value) = answer.headers().get(&name) {
            response.headers_mut().insert(name, value.clone());
        }
    }
    // The node that answered says whose state it used (`copy` if it had just given the
    // stream up); an answer without the header is the holder's own.
    let live = answer_from(&answer.headers().get(SERVED_FROM).cloned()) != Some(false);
    served_by(response, holder, live)
}

async fn send(forwarder: &Forwarder, holder: &NodeId, request: Request) -> Result<Response, String> {
    let started = tokio::time::Instant::now();
    let answer = ask(forwarder, holder, request).await?;
    let head = passed_on(&answer, holder, Body::empty());
    // The whole exchange is bounded, the body included.
    let left = FORWARD_TIMEOUT.saturating_sub(started.elapsed());
    let body = tokio::time::timeout(left, to_bytes(answer.into_body(), ANSWER_LIMIT))
        .await
        .map_err(|_| format!("did not finish its answer within {FORWARD_TIMEOUT:?}"))?
        .map_err(|e| format!("broke off its answer: {e}"))?;
    let (parts, _) = head.into_parts();
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Forwards an event stream: the owner's events are passed on as they come, until either
/// side ends (the owner stops or hands the stream off, the client goes away); the client's
/// reconnection then finds the stream's owner again. Holds one of this node's permits.
async fn send_events(forwarder: &Forwarder, holder: &NodeId, request: Request) -> Result<Response, String> {
    let Ok(permit) = forwarder.event_streams.clone().try_acquire_owned() else {
        return Ok(ApiError::unavailable(
            "as many event streams are open on this node as limits.max_event_streams allows",
        )
        .into_response());
    };
    let answer = ask(forwarder, holder, request).await?;
    let head = passed_on(&answer, holder, Body::empty());
    let events = answer.into_body().into_data_stream();
    // The permit is held for as long as the body is.
    let events = futures_util::StreamExt::map(events, move |chunk| {
        let _held = &permit;
        chunk
    });
    let (parts, _) = head.into_parts();
    Ok(Response::from_parts(parts, Body::from_stream(events)))
}

/// Whether a `koopstream-served-from` value says the live state (`Some(true)`) or a copy.
fn answer_from(value: &Option<HeaderValue>) -> Option<bool> {
    match value.as_ref().map(HeaderValue::as_bytes) {
        Some(b"owner") => Some(true),
        Some(b"copy") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str) -> Request {
        Request::builder().method(method).uri(path).body(Body::empty()).unwrap()
    }

    #[test]
    fn an_answer_says_whether_it_came_from_the_owner_or_a_copy() {
        let node = NodeId::new("n1").unwrap();
        for (live, from) in [(true, "owner"), (false, "copy")] {
            let response = served_by(Response::new(Body::empty()), &node, live);
            assert_eq!(response.headers()[SERVED_BY], "n1");
            assert_eq!(response.headers()[SERVED_FROM], from);
            assert_eq!(answer_from(&response.headers().get(SERVED_FROM).cloned()), Some(live));
        }
        // An owner of an older version sends no such header: its answer is its own state.
        assert_eq!(answer_from(&None), None);
        assert_eq!(answer_from(&Some(HeaderValue::from_static("other"))), None);
    }

    #[test]
    fn only_a_streams_status_reads_and_events_are_forwarded() {
        let whole = |id: &str| Some((id.to_owned(), Answer::Whole));
        assert_eq!(read_of(&request("GET", "/v1/streams/pmu.1")), whole("pmu.1"));
        for read in ["model", "modes", "alarms", "recent", "modes/trend"] {
            assert_eq!(read_of(&request("GET", &format!("/v1/streams/a/{read}?all=true"))), whole("a"));
        }
        assert_eq!(read_of(&request("POST", "/v1/streams/a/predict")), whole("a"));
        assert_eq!(read_of(&request("GET", "/v1/streams/a/events")), Some(("a".to_owned(), Answer::Events)));
        // Writes are handled where they arrive: ingest goes to the log, deletes and
        // creates to the definitions.
        for (method, path) in [
            ("POST", "/v1/streams/a/samples"),
            ("DELETE", "/v1/streams/a"),
            ("POST", "/v1/streams"),
            ("GET", "/v1/streams"),
            ("GET", "/v1/streams/"),
            ("POST", "/v1/streams/a/events"),
            ("GET", "/v1/streams/a/ws"),
            ("GET", "/healthz"),
        ] {
            assert_eq!(read_of(&request(method, path)), None, "{method} {path}");
        }
    }
}
