//! What a request from one node to another (a forwarded read) costs over the loopback: on a
//! kept connection, and on a new one each time (what every forwarded read paid before the
//! connections were kept), over plain HTTP and over TLS (rustls, ring). The peer is the real
//! server (`server::run`, in-memory durability) answering `GET /healthz`, so the figures
//! are the transport's, not a read's. Run with `cargo bench --bench peer`.

// The tests' certificate authority; this bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/common/certs.rs"]
mod certs;

use std::path::PathBuf;
use std::time::Duration;

use axum::http::{HeaderMap, Method};
use divan::Bencher;
use koopstream::cluster_node::peer::PeerClient;
use koopstream::config::{Durability, ServiceConfig, StorageConfig, TlsConfig};
use rcgen::ExtendedKeyUsagePurpose;

fn main() {
    divan::main();
}

/// A running server and what a client needs to reach it.
struct Peer {
    runtime: tokio::runtime::Runtime,
    url: String,
    ca: Option<PathBuf>,
    _dir: Option<PathBuf>,
}

fn peer(secure: bool) -> Peer {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (tls, ca, dir) = if secure {
        let dir = std::env::temp_dir().join(format!("koopstream-bench-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let authority = certs::Authority::new("bench CA");
        let leaf = authority.issue(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
        let (cert, key, ca) = (dir.join("server.pem"), dir.join("server-key.pem"), dir.join("ca.pem"));
        std::fs::write(&cert, &leaf.pem).unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        std::fs::write(&ca, authority.pem()).unwrap();
        (TlsConfig { cert: Some(cert), key: Some(key), client_ca: None }, Some(ca), Some(dir))
    } else {
        (TlsConfig::default(), None, None)
    };
    let storage = StorageConfig { durability: Durability::Memory, ..StorageConfig::default() };
    let config = ServiceConfig { tls, storage, ..ServiceConfig::default() };
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let address = listener.local_addr().unwrap();
    // Runs until the runtime is dropped at the end of the bench.
    runtime.spawn(koopstream::server::run(listener, config, std::future::pending::<()>()));
    let scheme = if secure { "https" } else { "http" };
    let peer = Peer { runtime, url: format!("{scheme}://localhost:{}/healthz", address.port()), ca, _dir: dir };
    // Ready when it answers.
    let client = peer.client();
    for _ in 0..200 {
        if peer.runtime.block_on(read(&client, &peer.url)).is_ok() {
            return peer;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the server did not start");
}

impl Peer {
    fn client(&self) -> PeerClient {
        match &self.ca {
            Some(ca) => PeerClient::with_tls(ca, None).unwrap(),
            None => PeerClient::plain(),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(dir) = &self._dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

async fn read(client: &PeerClient, url: &str) -> Result<(), String> {
    let answer = client.send(Method::GET, url, HeaderMap::new(), bytes::Bytes::new(), Duration::from_secs(5)).await?;
    axum::body::to_bytes(answer.into_body(), 1 << 20).await.map_err(|e| e.to_string())?;
    Ok(())
}

/// One read on a connection kept from the last (`secure`: over TLS).
#[divan::bench(args = [false, true])]
fn kept_connection(bencher: Bencher, secure: bool) {
    let peer = peer(secure);
    let client = peer.client();
    bencher.bench_local(|| {
        peer.runtime.block_on(async {
            read(&client, &peer.url).await.unwrap();
            // The connection goes back to the pool in a task of its own, once the answer is
            // read; the next read waits for it rather than opening another.
            while client.idle_connections() == 0 {
                tokio::task::yield_now().await;
            }
        })
    });
    assert_eq!(client.connections_opened(), 1, "a read opened a connection of its own");
}

/// One read on a new connection (a client without kept connections each time).
#[divan::bench(args = [false, true])]
fn new_connection(bencher: Bencher, secure: bool) {
    let peer = peer(secure);
    bencher.bench_local(|| {
        let client = peer.client();
        peer.runtime.block_on(read(&client, &peer.url)).unwrap();
    });
}
