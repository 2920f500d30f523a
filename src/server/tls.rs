//! TLS for the listener (rustls with the ring provider): the certificate chain and key from
//! PEM files, optional client-certificate verification against a CA bundle, reloading of all
//! three without dropping connections, and a listener that completes handshakes off the
//! accept path so that a slow or silent client cannot hold up others.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait in the kernel's backlog.
const HANDSHAKES_IN_FLIGHT: usize = 256;
/// Finished handshakes waiting for the server to take them.
const READY_QUEUE: usize = 64;

/// The `[tls]` section: with `cert` and `key` the server speaks HTTPS and WSS only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file with the server's certificate chain (leaf first).
    pub cert: Option<PathBuf>,
    /// PEM file with its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// PEM file of CA certificates; when set, every client must present a certificate
    /// issued by one of them (for gateways).
    pub client_ca: Option<PathBuf>,
}

/// Why TLS cannot be set up; the message names the key and the file.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: key `{key}`: {reason}")]
pub struct TlsError {
    /// The configuration key.
    pub key: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> TlsError {
    TlsError { key, reason: reason.into() }
}

impl TlsConfig {
    /// Whether TLS is configured; a key without a certificate (or the reverse) is an error.
    pub fn enabled(&self) -> Result<bool, TlsError> {
        match (&self.cert, &self.key) {
            (Some(_), Some(_)) => Ok(true),
            (None, None) if self.client_ca.is_none() => Ok(false),
            (None, _) => Err(invalid("tls.cert", "tls.key and tls.client_ca need a certificate")),
            (Some(_), None) => Err(invalid("tls.key", "a certificate needs its private key")),
        }
    }

    /// Reads the files into a rustls configuration.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let (Some(cert), Some(key)) = (&self.cert, &self.key) else {
            return Err(invalid("tls.cert", "not configured"));
        };
        let chain = read_certificates("tls.cert", cert)?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| invalid("tls.key", format!("{}: no private key could be read: {e}", key.display())))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("tls.cert", e.to_string()))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for certificate in read_certificates("tls.client_ca", path)? {
                    roots.add(certificate).map_err(|e| invalid("tls.client_ca", format!("{}: {e}", path.display())))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| invalid("tls.client_ca", format!("{}: {e}", path.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| invalid("tls.key", format!("the key does not fit the certificate: {e}")))?;
        // HTTP/1.1 only: WebSocket upgrades are HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn read_certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    if certificates.is_empty() {
        return Err(invalid(key, format!("{}: no certificate in the file", path.display())));
    }
    Ok(certificates)
}

/// The configuration in force, replaced whole by a reload; connections keep the one they
/// were accepted with.
pub struct ReloadableTls {
    config: TlsConfig,
    current: RwLock<Arc<ServerConfig>>,
}

impl ReloadableTls {
    /// Reads the files once.
    pub fn new(config: TlsConfig) -> Result<Arc<Self>, TlsError> {
        let current = RwLock::new(config.server_config()?);
        Ok(Arc::new(Self { config, current }))
    }

    /// Reads the files again; on error the configuration in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = self.config.server_config()?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// A listener that hands out connections whose TLS handshake is complete.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `tcp`; handshakes run in their own tasks, bounded in number and
    /// time.
    pub fn new(tcp: TcpListener, tls: Arc<ReloadableTls>) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (sender, ready) = mpsc::channel(READY_QUEUE);
        let accepting = tokio::spawn(accept_loop(tcp, tls, sender));
        Ok(Self { ready, local, accepting })
    }
}

async fn accept_loop(
    tcp: TcpListener,
    tls: Arc<ReloadableTls>,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_IN_FLIGHT));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot disable Nagle's algorithm");
        }
        let acceptor = tls.acceptor();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    drop(permit);
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Reloads the certificates on every SIGHUP until the process ends (Unix only).
pub fn reload_on_sighup(tls: Arc<ReloadableTls>) -> io::Result<()> {
    #[cfg(unix)]
    {
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match tls.reload() {
                    Ok(()) => tracing::info!("TLS certificates reloaded"),
                    Err(e) => tracing::error!(error = %e, "TLS reload failed; the previous certificates stay in use"),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = tls;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_a_configuration_is_refused_with_its_key() {
        let only_key = TlsConfig { key: Some("k.pem".into()), ..TlsConfig::default() };
        assert_eq!(only_key.enabled().unwrap_err().key, "tls.cert");
        let only_cert = TlsConfig { cert: Some("c.pem".into()), ..TlsConfig::default() };
        assert_eq!(only_cert.enabled().unwrap_err().key, "tls.key");
        assert!(!TlsConfig::default().enabled().unwrap());
        let missing = TlsConfig { cert: Some("no/such.pem".into()), key: Some("no/such.pem".into()), client_ca: None };
        let e = missing.server_config().unwrap_err();
        assert_eq!(e.key, "tls.cert", "{e}");
    }
}
