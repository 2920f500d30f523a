//! A small client of the service for `demo` and `loadgen`: create a stream over HTTP,
//! stream batches over its WebSocket, read modes; over HTTPS and WSS when the server serves
//! TLS (trusting the CA given, with a client certificate when the server asks for one), and
//! with a bearer token when it requires one. Requests go through the nodes' own HTTP client
//! ([`PeerClient`]), so the connections are kept and no second TLS stack is needed.

use std::path::PathBuf;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, Method, header};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;

use crate::cluster_node::peer::{PeerClient, TlsSettingNames};

/// A byte stream a WebSocket runs over: TCP, or TLS over TCP.
pub trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// A stream's WebSocket.
pub type Socket = WebSocketStream<Box<dyn Connection>>;
/// The writing half of a stream's WebSocket.
pub type Sink = SplitSink<Socket, Message>;
/// The reading half of a stream's WebSocket.
pub type Source = SplitStream<Socket>;

/// How long a request may take to connect and answer its head.
const REQUEST_LIMIT: Duration = Duration::from_secs(30);
/// The largest answer read (a model of the largest stream is a few MB).
const ANSWER_LIMIT: usize = 64 << 20;

/// The command-line names of the TLS files.
const OPTION_NAMES: TlsSettingNames = TlsSettingNames { ca: "--ca", cert: "--cert", key: "--key" };

/// A client call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// HTTP transport failure.
    #[error("HTTP request to {url} failed: the server {reason}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The service answered with an error.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The problem document.
        body: String,
    },
    /// WebSocket failure.
    #[error("WebSocket {url}: {source}")]
    WebSocket {
        /// The URL.
        url: String,
        /// The error.
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// The server's address or the TLS files cannot be used.
    #[error("{option}: {reason}")]
    Setting {
        /// The option at fault.
        option: &'static str,
        /// Why.
        reason: String,
    },
}

/// How to reach a server: its address, and for HTTPS the CA that issued its certificate
/// and this client's own certificate and key if the server asks for one.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// Bearer token for a `--server` that requires one, with the ingest, read and admin
    /// scopes (the streams are created and deleted) (default: none; also KOOPSTREAM_TOKEN).
    #[arg(long, env = "KOOPSTREAM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA bundle that issued an `https://` server's certificate (default: none; needed
    /// for https://).
    #[arg(long, requires = "server")]
    pub ca: Option<PathBuf>,
    /// PEM certificate chain to present to a server that requires client certificates
    /// (default: none; with --key).
    #[arg(long, requires_all = ["key", "server"])]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert (default: none).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
}

/// A connection to one service.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: PeerClient,
    /// `Bearer <token>`, sent with every request when the server requires a token.
    authorization: Option<HeaderValue>,
}

impl Client {
    /// A plain-HTTP client of the service at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        Self { base: base.trim_end_matches('/').to_owned(), http: PeerClient::plain(), authorization: None }
    }

    /// The server's address, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A client of the server at `base` (`http://` or `https://` HOST[:PORT]) as `args`
    /// say; the address and the files are checked before anything is sent.
    pub fn connect_to(base: &str, args: &ServerArgs) -> Result<Self, ClientError> {
        let setting = |option, reason: String| ClientError::Setting { option, reason };
        let base = base.trim_end_matches('/');
        let secure = if base.starts_with("https://") {
            true
        } else if base.starts_with("http://") {
            false
        } else {
            return Err(setting("--server", format!("`{base}` is not http://HOST[:PORT] or https://HOST[:PORT]")));
        };
        let uri: axum::http::Uri = base.parse().map_err(|e| setting("--server", format!("`{base}`: {e}")))?;
        if uri.host().is_none_or(str::is_empty) || uri.path_and_query().is_some_and(|p| p.as_str() != "/") {
            return Err(setting("--server", format!("`{base}` is not http://HOST[:PORT] or https://HOST[:PORT]")));
        }
        let identity = args.cert.as_deref().zip(args.key.as_deref());
        let http = match (&args.ca, secure) {
            (Some(ca), true) => {
                PeerClient::with_tls_as(ca, identity, &OPTION_NAMES).map_err(|e| setting(e.key, e.reason))?
            }
            (None, true) => {
                return Err(setting(
                    "--ca",
                    format!("{base} serves HTTPS: give the PEM CA that issued its certificate"),
                ));
            }
            (Some(_), false) => return Err(setting("--ca", format!("{base} is plain HTTP: a CA is not used"))),
            (None, false) if identity.is_some() => {
                return Err(setting("--cert", format!("{base} is plain HTTP: a client certificate is not used")));
            }
            (None, false) => PeerClient::plain(),
        };
        let authorization = match &args.token {
            Some(token) => Some(
                HeaderValue::from_str(&format!("Bearer {}", token.trim()))
                    .map_err(|_| setting("--token", "has characters an HTTP header cannot carry".into()))?,
            ),
            None => None,
        };
        Ok(Self { base: base.to_owned(), http, authorization })
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        let failed = |reason: String| ClientError::Http { url: url.clone(), reason };
        let mut headers = HeaderMap::new();
        if let Some(value) = &self.authorization {
            headers.insert(header::AUTHORIZATION, value.clone());
        }
        let body = match body {
            Some(body) => {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                bytes::Bytes::from(body.to_string())
            }
            None => bytes::Bytes::new(),
        };
        let response = self.http.send(method, &url, headers, body, REQUEST_LIMIT).await.map_err(&failed)?;
        let status = response.status().as_u16();
        let text = tokio::time::timeout(REQUEST_LIMIT, axum::body::to_bytes(response.into_body(), ANSWER_LIMIT))
            .await
            .map_err(|_| failed(format!("did not finish its answer within {REQUEST_LIMIT:?}")))?
            .map_err(|e| failed(format!("broke off its answer: {e}")))?;
        let text = String::from_utf8_lossy(&text).into_owned();
        if status >= 400 {
            return Err(ClientError::Status { url, status, body: text });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a stream (an identical existing one is fine).
    pub async fn create_stream(&self, definition: &Value) -> Result<Value, ClientError> {
        self.send(Method::POST, "/v1/streams", Some(definition)).await
    }

    /// Deletes a stream.
    pub async fn delete_stream(&self, id: &str) -> Result<(), ClientError> {
        self.send(Method::DELETE, &format!("/v1/streams/{id}"), None).await.map(|_| ())
    }

    /// GET a JSON resource under the base.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.send(Method::GET, path, None).await
    }

    /// The upgrade request of a stream's WebSocket, with the token (a caller may add
    /// headers, such as a subprotocol).
    pub fn websocket_request(&self, id: &str) -> Result<Request, ClientError> {
        let url = format!("{}/v1/streams/{id}/ws", self.base.replacen("http", "ws", 1));
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|source| ClientError::WebSocket { url: url.clone(), source: Box::new(source) })?;
        if let Some(value) = &self.authorization {
            request.headers_mut().insert(header::AUTHORIZATION, value.clone());
        }
        Ok(request)
    }

    /// Opens a stream's WebSocket.
    pub async fn connect(&self, id: &str) -> Result<(Sink, Source), ClientError> {
        self.open_websocket(self.websocket_request(id)?).await
    }

    /// Opens a WebSocket from its upgrade request: TCP, TLS for `wss://`, the upgrade.
    pub async fn open_websocket(&self, request: Request) -> Result<(Sink, Source), ClientError> {
        let url = request.uri().to_string();
        let failed = |reason: String| ClientError::Http { url: url.clone(), reason };
        let host = request.uri().host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
        let secure = request.uri().scheme_str() == Some("wss");
        let port = request.uri().port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tcp = tokio::time::timeout(REQUEST_LIMIT, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|_| failed(format!("did not accept a connection within {REQUEST_LIMIT:?}")))?
            .map_err(|e| failed(format!("cannot be reached: {e}")))?;
        // Nagle's algorithm would hold small frames back by tens of milliseconds.
        let _ = tcp.set_nodelay(true);
        let connection: Box<dyn Connection> = match (secure, self.http.tls()) {
            (false, _) => Box::new(tcp),
            (true, Some(connector)) => {
                let name = ServerName::try_from(host)
                    .map_err(|e| failed(format!("has a name no certificate can name: {e}")))?;
                let tls =
                    connector.connect(name, tcp).await.map_err(|e| failed(format!("failed the TLS handshake: {e}")))?;
                Box::new(tls)
            }
            (true, None) => return Err(failed("serves WSS, and no --ca was given to verify it".into())),
        };
        let (socket, _) = tokio_tungstenite::client_async_with_config(request, connection, None)
            .await
            .map_err(|source| ClientError::WebSocket { url, source: Box::new(source) })?;
        Ok(socket.split())
    }
}

/// Sends one JSON batch as a text frame.
pub async fn send_batch(sink: &mut Sink, batch: &Value) -> Result<(), ClientError> {
    sink.send(Message::text(batch.to_string()))
        .await
        .map_err(|source| ClientError::WebSocket { url: "send".into(), source: Box::new(source) })
}

/// The next JSON message from the server, or `None` when the socket closed.
pub async fn next_message(source: &mut Source) -> Option<Value> {
    while let Some(message) = source.next().await {
        match message {
            Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    None
}
