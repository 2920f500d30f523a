//! HTTPS and WSS against the real server with certificates made at test time (rcgen): the
//! handshake, plain HTTP refused, client certificates required with a client CA, and a
//! SIGHUP that swaps the certificate for new connections while open ones go on.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::certs::{Authority, Leaf};
use futures_util::{SinkExt, StreamExt};
use koopstream::config::{Durability, ServiceConfig, StorageConfig, TlsConfig};
use rcgen::ExtendedKeyUsagePurpose;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

fn server_leaf(ca: &Authority) -> Leaf {
    ca.issue(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth)
}

fn write_leaf(dir: &Path, leaf: &Leaf) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("server.pem"), dir.join("server-key.pem"));
    std::fs::write(&cert, &leaf.pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    (cert, key)
}

struct Running {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<koopstream::server::ShutdownReport, koopstream::server::ServeError>>,
}

async fn start(tls: TlsConfig) -> Running {
    let storage = StorageConfig { durability: Durability::Memory, ..StorageConfig::default() };
    let config = ServiceConfig { tls, storage, ..ServiceConfig::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(koopstream::server::run(listener, config, async move {
        let _ = stopped.await;
    }));
    Running { address, stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task).await.unwrap().unwrap().unwrap();
    }
}

fn client_config(ca: &Authority, identity: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(ca.roots());
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(leaf) => {
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
            builder.with_client_auth_cert(vec![leaf.der.clone()], key).unwrap()
        }
    };
    Arc::new(config)
}

async fn connect(address: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(address).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(config).connect(name, tcp).await
}

/// One HTTP/1.1 GET on an open connection (kept alive); the status and the body.
async fn get(stream: &mut TlsStream<TcpStream>, path: &str) -> std::io::Result<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await??;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed"));
        }
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received).to_string();
        let Some(end) = text.find("\r\n\r\n") else { continue };
        let length: usize = text[..end]
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0);
        if received.len() >= end + 4 + length {
            let status = text[9..12].parse().unwrap();
            return Ok((status, text[end + 4..end + 4 + length].to_owned()));
        }
    }
}

async fn wait_ready(address: SocketAddr, config: Arc<rustls::ClientConfig>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut stream) = connect(address, config.clone()).await
            && let Ok((200, _)) = get(&mut stream, "/readyz").await
        {
            return;
        }
        assert!(Instant::now() < deadline, "the TLS server did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn https_and_wss_are_served_and_plain_http_is_not() {
    let dir = common::scratch_dir("tls");
    let ca = Authority::new("koopstream test CA");
    let (cert, key) = write_leaf(&dir, &server_leaf(&ca));
    let server = start(TlsConfig { cert: Some(cert), key: Some(key), client_ca: None }).await;
    let client = client_config(&ca, None);
    wait_ready(server.address, client.clone()).await;

    let mut stream = connect(server.address, client.clone()).await.unwrap();
    assert_eq!(get(&mut stream, "/healthz").await.unwrap().0, 200);
    let body =
        serde_json::json!({"id": "s", "channels": [{"name": "a"}], "ts": 0.1, "dictionary": "state", "warmup": 10});
    let body = body.to_string();
    let create = format!(
        "POST /v1/streams HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(create.as_bytes()).await.unwrap();
    let mut reply = [0u8; 12];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply[9..12], b"201", "{}", String::from_utf8_lossy(&reply));

    // WSS on a TLS connection of its own.
    let tls = connect(server.address, client.clone()).await.unwrap();
    let url = format!("wss://localhost:{}/v1/streams/s/ws", server.address.port());
    let (mut socket, response) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    assert_eq!(response.status().as_u16(), 101);
    let batch = serde_json::json!({"seq": 1, "t0": 0.0, "x": [[1.0], [0.5]]});
    socket.send(Message::text(batch.to_string())).await.unwrap();
    let ack = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap().unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("\"accepted\":2"), "{ack:?}");
    drop(socket);

    // A client speaking plain HTTP gets no HTTP answer.
    let mut plain = TcpStream::connect(server.address).await.unwrap();
    plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"), "plain HTTP was served");
    server.stop().await;
}

#[tokio::test]
async fn a_client_ca_requires_client_certificates_it_issued() {
    let dir = common::scratch_dir("mtls");
    let ca = Authority::new("koopstream test CA");
    let (cert, key) = write_leaf(&dir, &server_leaf(&ca));
    let gateways = Authority::new("gateway CA");
    let client_ca = dir.join("gateways.pem");
    std::fs::write(&client_ca, gateways.pem()).unwrap();
    let server = start(TlsConfig { cert: Some(cert), key: Some(key), client_ca: Some(client_ca) }).await;

    let gateway = gateways.issue(&["gateway-1"], ExtendedKeyUsagePurpose::ClientAuth);
    let trusted = client_config(&ca, Some(&gateway));
    wait_ready(server.address, trusted.clone()).await;
    let mut stream = connect(server.address, trusted).await.unwrap();
    assert_eq!(get(&mut stream, "/healthz").await.unwrap().0, 200);

    // No certificate, or one from another CA: no answer (TLS 1.3 reports the refusal on
    // the client's first read).
    let stranger = Authority::new("someone else").issue(&["gateway-1"], ExtendedKeyUsagePurpose::ClientAuth);
    for identity in [None, Some(&stranger)] {
        let refused = match connect(server.address, client_config(&ca, identity)).await {
            Err(_) => true,
            Ok(mut stream) => get(&mut stream, "/healthz").await.is_err(),
        };
        assert!(refused, "a client without a trusted certificate was served");
    }
    server.stop().await;
}

#[tokio::test]
async fn sighup_swaps_the_certificate_without_dropping_connections() {
    let dir = common::scratch_dir("reload");
    let ca = Authority::new("koopstream test CA");
    let first = server_leaf(&ca);
    let (cert, key) = write_leaf(&dir, &first);
    let server = start(TlsConfig { cert: Some(cert.clone()), key: Some(key.clone()), client_ca: None }).await;
    let client = client_config(&ca, None);
    wait_ready(server.address, client.clone()).await;
    let mut open = connect(server.address, client.clone()).await.unwrap();
    assert_eq!(get(&mut open, "/healthz").await.unwrap().0, 200);
    let presented = |s: &TlsStream<TcpStream>| s.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(presented(&open), first.der);

    // A broken file on reload keeps the certificate in force.
    std::fs::write(&cert, "not a certificate").unwrap();
    hang_up();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fresh = connect(server.address, client.clone()).await.unwrap();
    assert_eq!(get(&mut fresh, "/healthz").await.unwrap().0, 200);
    assert_eq!(presented(&fresh), first.der);

    let second = server_leaf(&ca);
    write_leaf(&dir, &second);
    hang_up();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fresh = connect(server.address, client.clone()).await.unwrap();
        if presented(&fresh) == second.der {
            break;
        }
        assert!(Instant::now() < deadline, "the new certificate was not served after SIGHUP");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The connection opened before the reload is still served, under its old certificate.
    assert_eq!(get(&mut open, "/healthz").await.unwrap().0, 200);
    assert_eq!(presented(&open), first.der);
    server.stop().await;
}

/// Sends SIGHUP to this test process; the server under test has installed its handler.
fn hang_up() {
    let status = std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status().unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_and_loadgen_reach_a_server_that_requires_client_certificates() {
    let dir = common::scratch_dir("tls-cli");
    let ca = Authority::new("koopstream test CA");
    let (cert, key) = write_leaf(&dir, &server_leaf(&ca));
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let gateways = Authority::new("gateway CA");
    let client_ca = dir.join("gateways.pem");
    std::fs::write(&client_ca, gateways.pem()).unwrap();
    let gateway = gateways.issue(&["gateway-1"], ExtendedKeyUsagePurpose::ClientAuth);
    let (gateway_cert, gateway_key) = (dir.join("gateway.pem"), dir.join("gateway-key.pem"));
    std::fs::write(&gateway_cert, &gateway.pem).unwrap();
    std::fs::write(&gateway_key, &gateway.key_pem).unwrap();
    let server = start(TlsConfig { cert: Some(cert), key: Some(key), client_ca: Some(client_ca) }).await;
    wait_ready(server.address, client_config(&ca, Some(&gateway))).await;

    let base = format!("https://localhost:{}", server.address.port());
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let tls = vec![
        "--ca".to_owned(),
        path(&ca_file),
        "--cert".into(),
        path(&gateway_cert),
        "--key".into(),
        path(&gateway_key),
    ];
    let run = |args: &[&str], extra: &[String]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_koopstream"))
            .args(args)
            .args(extra)
            .env_remove("KOOPSTREAM_TOKEN")
            .output()
            .unwrap()
    };
    let demo = ["demo", "--system", "vdp", "--speed", "0", "--server", base.as_str()];
    let out = run(&demo, &tls);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("final"), "{stdout}");
    let loadgen = ["loadgen", "--streams", "2", "--duration", "1", "--channels", "2", "--server", base.as_str()];
    let out = run(&loadgen, &tls);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Without its certificate the server hangs up (TLS 1.3 says so at the first read);
    // the rest is refused before anything is sent, each naming its option.
    let plain = base.replacen("https", "http", 1);
    for (args, extra, cause) in [
        (&demo[..], &tls[..2], "failed: the server did not answer"),
        (&demo[..], &[][..], "--ca: https://localhost"),
        (&["demo", "--server", plain.as_str()][..], &tls[..2], "--ca: http://localhost"),
        (&["demo", "--server", "localhost:1"][..], &[][..], "--server: `localhost:1` is not http://HOST[:PORT]"),
        (&["demo", "--server", base.as_str(), "--ca", "/nonexistent.pem"][..], &[][..], "--ca: /nonexistent.pem"),
        // The files are for a --server; the demo's own server is plain.
        (&["demo"][..], &tls[..2], "--server <SERVER>"),
    ] {
        let out = run(args, extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(cause), "{args:?} {extra:?}: {stderr}");
    }
    server.stop().await;
}
