//! A small client of the service for `demo` and `loadgen`: create a stream over HTTP,
//! stream batches over its WebSocket, read modes; with a bearer token when the server
//! requires one.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The writing half of a stream's WebSocket.
pub type Sink = SplitSink<WebSocketStream<MaybeTlsStream<TcpStream>>, Message>;
/// The reading half of a stream's WebSocket.
pub type Source = SplitStream<WebSocketStream<MaybeTlsStream<TcpStream>>>;

/// A client call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// HTTP transport failure.
    #[error("HTTP request to {url} failed: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The error.
        source: reqwest::Error,
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
    /// The token cannot be sent in a header.
    #[error("the token has characters an HTTP header cannot carry")]
    Token,
    /// WebSocket failure.
    #[error("WebSocket {url}: {source}")]
    WebSocket {
        /// The URL.
        url: String,
        /// The error.
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
}

/// A connection to one service.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    /// `Bearer <token>`, sent with every request when the server requires a token.
    authorization: Option<HeaderValue>,
}

impl Client {
    /// A client of the service at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        Self { base: base.trim_end_matches('/').to_owned(), http: reqwest::Client::new(), authorization: None }
    }

    /// The same client, sending `token` as a bearer token (none: no `Authorization`).
    pub fn with_token(self, token: Option<&str>) -> Result<Self, ClientError> {
        let authorization = token
            .map(|token| HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| ClientError::Token))
            .transpose()?;
        Ok(Self { authorization, ..self })
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: String) -> Result<Value, ClientError> {
        let request = match &self.authorization {
            Some(value) => request.header(reqwest::header::AUTHORIZATION, value.as_bytes()),
            None => request,
        };
        let response = request.send().await.map_err(|source| ClientError::Http { url: url.clone(), source })?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|source| ClientError::Http { url: url.clone(), source })?;
        if status >= 400 {
            return Err(ClientError::Status { url, status, body: text });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a stream (an identical existing one is fine).
    pub async fn create_stream(&self, definition: &Value) -> Result<Value, ClientError> {
        let url = format!("{}/v1/streams", self.base);
        self.send(self.http.post(&url).json(definition), url).await
    }

    /// Deletes a stream.
    pub async fn delete_stream(&self, id: &str) -> Result<(), ClientError> {
        let url = format!("{}/v1/streams/{id}", self.base);
        self.send(self.http.delete(&url), url).await.map(|_| ())
    }

    /// GET a JSON resource under the base.
    pub async fn get(&self, path: &str) -> Result<Value, ClientError> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(&url), url).await
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
            request.headers_mut().insert("Authorization", value.clone());
        }
        Ok(request)
    }

    /// Opens a stream's WebSocket.
    pub async fn connect(&self, id: &str) -> Result<(Sink, Source), ClientError> {
        open_websocket(self.websocket_request(id)?).await
    }
}

/// Opens a WebSocket from its upgrade request.
pub async fn open_websocket(request: Request) -> Result<(Sink, Source), ClientError> {
    let url = request.uri().to_string();
    // Nagle's algorithm would hold small frames back by tens of milliseconds.
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, None, true)
        .await
        .map_err(|source| ClientError::WebSocket { url, source: Box::new(source) })?;
    Ok(socket.split())
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
