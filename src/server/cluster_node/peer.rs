//! Requests from this node to another node's API (forwarded reads and event streams), over
//! plain HTTP or, when the nodes serve HTTPS, over TLS (rustls with the ring provider)
//! trusting the cluster's peer CA (`cluster.peer_ca`), with an optional client certificate
//! for nodes that require one (`cluster.peer_cert`, `cluster.peer_key`).
//!
//! Connections are kept for the next request to the same peer (HTTP/1.1 keep-alive through
//! hyper): a forwarded read otherwise paid a TCP connection, and with TLS a handshake, every
//! time. A connection goes back to the pool once its answer has been read to the end, and
//! at most [`IDLE_PER_PEER`] wait per peer, none for longer than [`IDLE_LIMIT`]. Every
//! forwarded request is a read (and the command-line client's creates and deletes are
//! idempotent), so one sent on a kept connection that the peer had closed meanwhile is
//! sent again on a new one. reqwest's own TLS would bring rustls's default
//! provider (aws-lc-rs, which needs cmake). The client of `demo` and `loadgen` uses it too.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, Uri};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Idle connections kept per peer.
pub const IDLE_PER_PEER: usize = 8;
/// An idle connection is not used again after this long (the peer may have dropped it).
pub const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// What this node needs to reach the others: TLS settings for `https://` peers, if any, and
/// the connections kept open to them.
#[derive(Clone)]
pub struct PeerClient {
    tls: Option<TlsConnector>,
    idle: Arc<Mutex<HashMap<Peer, Vec<Kept>>>>,
    opened: Arc<AtomicU64>,
}

/// Where a connection goes: scheme, host and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Peer {
    secure: bool,
    host: String,
    port: u16,
}

/// An idle connection and when it became idle.
struct Kept {
    since: Instant,
    sender: SendRequest<Body>,
}

/// What the TLS settings are called where they were given (in errors).
pub struct TlsSettingNames {
    /// The CA bundle.
    pub ca: &'static str,
    /// The client certificate chain.
    pub cert: &'static str,
    /// Its private key.
    pub key: &'static str,
}

/// The cluster's keys (`cluster.peer_ca`, `cluster.peer_cert`, `cluster.peer_key`).
pub const CLUSTER_TLS_SETTINGS: TlsSettingNames =
    TlsSettingNames { ca: "cluster.peer_ca", cert: "cluster.peer_cert", key: "cluster.peer_key" };

/// Why the peer TLS settings cannot be used; the message names the key and the file.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: key `{key}`: {reason}")]
pub struct PeerTlsError {
    pub key: &'static str,
    pub reason: String,
}

impl PeerClient {
    /// Plain HTTP only: an `https://` peer is refused.
    pub fn plain() -> Self {
        Self::new(None)
    }

    fn new(tls: Option<TlsConnector>) -> Self {
        Self { tls, idle: Arc::default(), opened: Arc::default() }
    }

    /// Idle connections kept, to every peer.
    pub fn idle_connections(&self) -> usize {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).values().map(Vec::len).sum()
    }

    /// Connections opened so far (a kept one reused is not counted again).
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// HTTP and HTTPS, trusting the CA certificates of `ca` (PEM), presenting the
    /// certificate chain and key of `identity` (PEM files) to peers that ask for one.
    pub fn with_tls(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, PeerTlsError> {
        Self::with_tls_as(ca, identity, &CLUSTER_TLS_SETTINGS)
    }

    /// [`PeerClient::with_tls`] for settings that go by other `names` (the command line's).
    pub fn with_tls_as(
        ca: &Path,
        identity: Option<(&Path, &Path)>,
        names: &TlsSettingNames,
    ) -> Result<Self, PeerTlsError> {
        let invalid = |key, reason: String| PeerTlsError { key, reason };
        let mut roots = rustls::RootCertStore::empty();
        let certificates = read_certificates(ca).map_err(|reason| invalid(names.ca, reason))?;
        for certificate in certificates {
            roots.add(certificate).map_err(|e| invalid(names.ca, format!("{}: {e}", ca.display())))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(names.ca, e.to_string()))?
            .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = read_certificates(cert).map_err(|reason| invalid(names.cert, reason))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| invalid(names.key, format!("{}: no private key could be read: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| invalid(names.key, format!("the key does not fit the certificate: {e}")))?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self::new(Some(TlsConnector::from(Arc::new(config)))))
    }

    /// The TLS connector of `https://` peers (none: plain HTTP only).
    pub fn tls(&self) -> Option<&TlsConnector> {
        self.tls.as_ref()
    }

    /// Sends a request to `url` (the peer's advertised address and the path); returns the
    /// answer as soon as its head is in, its body streaming. Connecting, the handshake and
    /// the head are bounded by `limit`; the body is not (the caller bounds a whole read).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: bytes::Bytes,
        limit: Duration,
    ) -> Result<Response<Body>, String> {
        tokio::time::timeout(limit, self.start(method, url, headers, body))
            .await
            .unwrap_or_else(|_| Err(format!("did not answer within {limit:?}")))
    }

    async fn start(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: bytes::Bytes,
    ) -> Result<Response<Body>, String> {
        let uri: Uri = url.parse().map_err(|e| format!("has an address that is no URL ({url}): {e}"))?;
        let host = uri.host().ok_or_else(|| format!("has an address without a host ({url})"))?;
        let secure = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("has an address that is neither http:// nor https:// ({url})")),
        };
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        // An IPv6 literal comes bracketed in the URL and bare in a socket address.
        let peer = Peer { secure, host: host.trim_start_matches('[').trim_end_matches(']').to_owned(), port };
        let authority = uri.authority().map_or(host.to_owned(), |a| a.as_str().to_owned());
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let request = || {
            let mut request = Request::builder().method(method.clone()).uri(path);
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            request
                .header(axum::http::header::HOST, &authority)
                .body(Body::from(body.clone()))
                .map_err(|e| e.to_string())
        };
        // Kept connections first; one the peer has closed meanwhile fails, and the next is
        // tried, then a new one (every request sent through here is a read or idempotent:
        // sending it again is safe).
        while let Some(mut sender) = self.take_idle(&peer) {
            if let Ok(answer) = sender.send_request(request()?).await {
                self.keep_when_done(peer, sender);
                return Ok(answer.map(Body::new));
            }
        }
        let mut sender = self.connect(&peer).await?;
        let answer = sender.send_request(request()?).await.map_err(|e| format!("did not answer: {e}"))?;
        self.keep_when_done(peer, sender);
        Ok(answer.map(Body::new))
    }

    /// A kept connection to `peer` that is still open and idle, if any (newest first).
    fn take_idle(&self, peer: &Peer) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let kept = idle.get_mut(peer)?;
        while let Some(Kept { since, sender }) = kept.pop() {
            if since.elapsed() < IDLE_LIMIT && sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    /// Puts the connection back once the answer on it has been read to the end; one whose
    /// answer is dropped half-read, or that the peer closes, is not kept.
    fn keep_when_done(&self, peer: Peer, mut sender: SendRequest<Body>) {
        let idle = self.idle.clone();
        tokio::spawn(async move {
            if sender.ready().await.is_err() {
                return;
            }
            let mut idle = idle.lock().unwrap_or_else(|e| e.into_inner());
            let kept = idle.entry(peer).or_default();
            kept.retain(|k| k.since.elapsed() < IDLE_LIMIT && !k.sender.is_closed());
            if kept.len() < IDLE_PER_PEER {
                kept.push(Kept { since: Instant::now(), sender });
            }
        });
    }

    /// A new HTTP/1.1 connection to `peer`, over TLS for `https://`.
    async fn connect(&self, peer: &Peer) -> Result<SendRequest<Body>, String> {
        let tcp =
            TcpStream::connect((peer.host.as_str(), peer.port)).await.map_err(|e| format!("cannot be reached: {e}"))?;
        let _ = tcp.set_nodelay(true);
        self.opened.fetch_add(1, Ordering::Relaxed);
        if peer.secure {
            let Some(connector) = &self.tls else {
                return Err("serves HTTPS, and this node has no cluster.peer_ca to verify it with".to_owned());
            };
            let name = ServerName::try_from(peer.host.clone())
                .map_err(|e| format!("has an address no certificate can name: {e}"))?;
            let tls = connector.connect(name, tcp).await.map_err(|e| format!("failed the TLS handshake: {e}"))?;
            handshake(TokioIo::new(tls)).await
        } else {
            handshake(TokioIo::new(tcp)).await
        }
    }
}

/// HTTP/1.1 over `io`; the connection runs in a task of its own until either side closes it.
async fn handshake<T>(io: T) -> Result<SendRequest<Body>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("refused the connection: {e}"))?;
    tokio::spawn(async move {
        // Its error, if any, reaches the request or the answer's body on it.
        let _ = connection.await;
    });
    Ok(sender)
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::AtomicUsize;

    use axum::Router;
    use axum::extract::ConnectInfo;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Serves `app` on a loopback port, with `/port` added: it answers the client's port
    /// (one per connection).
    async fn serve_with_port(app: Router) -> String {
        let app = app
            .route("/port", get(|ConnectInfo(from): ConnectInfo<SocketAddr>| async move { from.port().to_string() }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, service).await });
        format!("http://{address}")
    }

    async fn read(client: &PeerClient, url: &str) -> Result<String, String> {
        let answer =
            client.send(Method::GET, url, HeaderMap::new(), bytes::Bytes::new(), Duration::from_secs(5)).await?;
        assert_eq!(answer.status(), 200);
        let body = axum::body::to_bytes(answer.into_body(), 1024).await.map_err(|e| e.to_string())?;
        Ok(String::from_utf8(body.to_vec()).unwrap())
    }

    /// Waits until `client` keeps an idle connection (it is put back by a task of its own
    /// once the answer has been read).
    async fn until_kept(client: &PeerClient) {
        for _ in 0..200 {
            if client.idle_connections() > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("no connection was kept");
    }

    #[tokio::test]
    async fn reads_one_after_another_share_one_connection() {
        let base = serve_with_port(Router::new()).await;
        let client = PeerClient::plain();
        let mut ports = Vec::new();
        for _ in 0..5 {
            ports.push(read(&client, &format!("{base}/port")).await.unwrap());
            until_kept(&client).await;
        }
        assert!(ports.iter().all(|port| *port == ports[0]), "{ports:?}");
        assert_eq!(client.connections_opened(), 1);
    }

    #[tokio::test]
    async fn a_read_on_a_kept_connection_the_peer_closed_is_sent_again_on_a_new_one() {
        // Answers the first request on each connection and closes it at the second, unanswered:
        // what a peer that dropped an idle connection looks like to a client that has not yet
        // seen the close.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        let Ok(n @ 1..) = socket.read(&mut buffer).await else { return };
                        head.extend_from_slice(&buffer[..n]);
                    }
                    let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                    let _ = socket.read(&mut buffer).await;
                });
            }
        });
        let client = PeerClient::plain();
        assert_eq!(read(&client, &format!("{base}/a")).await.unwrap(), "ok");
        until_kept(&client).await;
        assert_eq!(read(&client, &format!("{base}/b")).await.unwrap(), "ok");
        assert_eq!((accepted.load(Ordering::Relaxed), client.connections_opened()), (2, 2));
    }

    /// A server with a 10 MB answer at `/big`, larger than any socket buffer: the
    /// connection carries it until the client has read it all.
    async fn big_answer_server() -> String {
        serve_with_port(Router::new().route("/big", get(|| async { vec![b'x'; 10_000_000] }))).await
    }

    async fn big(client: &PeerClient, base: &str) -> Response<Body> {
        let url = format!("{base}/big");
        client.send(Method::GET, &url, HeaderMap::new(), bytes::Bytes::new(), Duration::from_secs(5)).await.unwrap()
    }

    #[tokio::test]
    async fn a_connection_is_kept_only_once_its_answer_has_been_read_to_the_end() {
        let base = big_answer_server().await;
        let client = PeerClient::plain();
        let answer = big(&client, &base).await;
        // The head is in, the body is not read: the connection is busy, not idle.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(client.idle_connections(), 0);
        // A read meanwhile cannot share it.
        assert!(read(&client, &format!("{base}/port")).await.unwrap().parse::<u16>().is_ok());
        assert_eq!(client.connections_opened(), 2);
        until_kept(&client).await;
        assert_eq!(client.idle_connections(), 1);
        let body = axum::body::to_bytes(answer.into_body(), 20_000_000).await.unwrap();
        assert_eq!(body.len(), 10_000_000);
        // Read to the end, the first connection is kept beside the second.
        for _ in 0..200 {
            if client.idle_connections() == 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the connection whose answer was read to the end was not kept");
    }

    #[tokio::test]
    async fn an_answer_dropped_half_read_does_not_leave_its_connection_for_the_next() {
        let base = big_answer_server().await;
        let client = PeerClient::plain();
        drop(big(&client, &base).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(client.idle_connections(), 0);
        assert!(read(&client, &format!("{base}/port")).await.unwrap().parse::<u16>().is_ok());
        assert_eq!(client.connections_opened(), 2);
    }
}
