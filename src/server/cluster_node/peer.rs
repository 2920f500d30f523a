//! Requests from this node to another node's API (forwarded reads and event streams), over
//! plain HTTP or, when the nodes serve HTTPS, over TLS (rustls with the ring provider)
//! trusting the cluster's peer CA (`cluster.peer_ca`), with an optional client certificate
//! for nodes that require one (`cluster.peer_cert`, `cluster.peer_key`).
//!
//! One connection per request, HTTP/1.1 through hyper: forwarded reads are not the hot path
//! (ingest is logged where it arrives), and an event stream holds its connection anyway.
//! reqwest's own TLS would bring rustls's default provider (aws-lc-rs, which needs cmake).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// What this node needs to reach the others: TLS settings for `https://` peers, if any.
#[derive(Clone)]
pub struct PeerClient {
    tls: Option<TlsConnector>,
}

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
        Self { tls: None }
    }

    /// HTTP and HTTPS, trusting the CA certificates of `ca` (PEM), presenting the
    /// certificate chain and key of `identity` (PEM files) to peers that ask for one.
    pub fn with_tls(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, PeerTlsError> {
        let invalid = |key, reason: String| PeerTlsError { key, reason };
        let mut roots = rustls::RootCertStore::empty();
        let certificates = read_certificates(ca).map_err(|reason| invalid("cluster.peer_ca", reason))?;
        for certificate in certificates {
            roots.add(certificate).map_err(|e| invalid("cluster.peer_ca", format!("{}: {e}", ca.display())))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("cluster.peer_ca", e.to_string()))?
            .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = read_certificates(cert).map_err(|reason| invalid("cluster.peer_cert", reason))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                    invalid("cluster.peer_key", format!("{}: no private key could be read: {e}", key.display()))
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| invalid("cluster.peer_key", format!("the key does not fit the certificate: {e}")))?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { tls: Some(TlsConnector::from(Arc::new(config))) })
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
        let host = uri.host().ok_or_else(|| format!("has an address without a host ({url})"))?.to_owned();
        let secure = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(format!("has an address that is neither http:// nor https:// ({url})")),
        };
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        // An IPv6 literal comes bracketed in the URL and bare in a socket address.
        let bare = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let tcp = TcpStream::connect((bare.as_str(), port)).await.map_err(|e| format!("cannot be reached: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let authority = uri.authority().map_or(host.clone(), |a| a.as_str().to_owned());
        let request =
            request.header(axum::http::header::HOST, authority).body(Body::from(body)).map_err(|e| e.to_string())?;
        if secure {
            let Some(connector) = &self.tls else {
                return Err("serves HTTPS, and this node has no cluster.peer_ca to verify it with".to_owned());
            };
            let name =
                ServerName::try_from(bare).map_err(|e| format!("has an address no certificate can name: {e}"))?;
            let tls = connector.connect(name, tcp).await.map_err(|e| format!("failed the TLS handshake: {e}"))?;
            exchange(TokioIo::new(tls), request).await
        } else {
            exchange(TokioIo::new(tcp), request).await
        }
    }
}

/// One request over a fresh HTTP/1.1 connection; the connection lives as long as the body.
async fn exchange<T>(io: T, request: Request<Body>) -> Result<Response<Body>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("refused the connection: {e}"))?;
    tokio::spawn(async move {
        // Ends when the answer's body is read or dropped; its error is the body's too.
        let _ = connection.await;
    });
    let answer = sender.send_request(request).await.map_err(|e| format!("did not answer: {e}"))?;
    Ok(answer.map(Body::new))
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
