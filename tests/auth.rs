//! Bearer tokens against the real server: the route x scope table, stream patterns, the
//! WebSocket subprotocol for browsers, rate limits with Retry-After, audit lines for admin
//! actions, and the rule that an unauthenticated server stays on loopback.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use common::{TestServer, batch, van_der_pol, vdp_definition};
use koopstream::access::TokenConfig;
use koopstream::api::auth::TokenDigest;
use koopstream::config::{AuthConfig, ServiceConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const READ: &str = "read-secret";
const INGEST: &str = "ingest-secret";
const ADMIN: &str = "admin-secret";
const METRICS: &str = "metrics-secret";
const GATEWAY: &str = "gateway-secret";

fn secured() -> ServiceConfig {
    let mut gateway = TokenConfig::for_secret("gateway", GATEWAY, &["ingest"]);
    gateway.streams = vec!["pmu-*".to_owned()];
    let mut limited = TokenConfig::for_secret("limited", "limited-secret", &["read"]);
    limited.rate_per_s = Some(0.5);
    limited.burst = Some(2.0);
    let auth = AuthConfig {
        tokens: vec![
            TokenConfig::for_secret("reader", READ, &["read"]),
            TokenConfig::for_secret("feeder", INGEST, &["ingest"]),
            TokenConfig::for_secret("operator", ADMIN, &["admin"]),
            TokenConfig::for_secret("prometheus", METRICS, &["metrics"]),
            gateway,
            limited,
        ],
        ..AuthConfig::default()
    };
    ServiceConfig { auth, ..ServiceConfig::default() }
}

/// Log lines written by the server in this test binary.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("info")
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        logs
    })
    .clone()
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    body: Option<&Value>,
    secret: Option<&str>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = server.http.request(method, server.url(path));
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(secret) = secret {
        request = request.bearer_auth(secret);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn every_route_checks_its_scope() {
    let server = TestServer::start_with(secured()).await;
    let r = send(&server, "POST", "/v1/streams", Some(&vdp_definition("a")), Some(ADMIN)).await;
    assert_eq!(r.status().as_u16(), 201);
    let rows = van_der_pol(20, 0.1);
    let predict = json!({"x0": [1.0, 0.0], "horizon": 3});
    let create = vdp_definition("b");
    let samples = batch(1, 0, &rows, 0.1);
    // (method, path, body, the scope it needs; "" = open to anyone)
    let table: Vec<(&str, &str, Option<&Value>, &str)> = vec![
        ("GET", "/healthz", None, ""),
        ("GET", "/readyz", None, ""),
        ("GET", "/openapi.json", None, ""),
        ("GET", "/", None, ""),
        ("GET", "/dashboard/app.js", None, ""),
        ("GET", "/metrics", None, "metrics"),
        ("GET", "/v1/streams", None, "read"),
        ("GET", "/v1/presets", None, "read"),
        ("GET", "/v1/streams/a", None, "read"),
        ("GET", "/v1/streams/a/model", None, "read"),
        ("GET", "/v1/streams/a/modes", None, "read"),
        ("GET", "/v1/streams/a/alarms", None, "read"),
        ("GET", "/v1/streams/a/recent", None, "read"),
        ("GET", "/v1/streams/a/modes/trend", None, "read"),
        ("GET", "/v1/streams/a/events", None, "read"),
        ("POST", "/v1/streams/a/predict", Some(&predict), "read"),
        ("POST", "/v1/streams/a/samples", Some(&samples), "ingest"),
        ("GET", "/v1/streams/a/ws", None, "ingest"),
        ("POST", "/v1/streams", Some(&create), "admin"),
        ("POST", "/v1/streams/a/reset", None, "admin"),
        ("DELETE", "/v1/streams/nowhere", None, "admin"),
    ];
    let credentials: [(&str, Option<&str>); 6] = [
        ("none", None),
        ("unknown", Some("not-a-token")),
        ("read", Some(READ)),
        ("ingest", Some(INGEST)),
        ("admin", Some(ADMIN)),
        ("metrics", Some(METRICS)),
    ];
    for (method, path, body, needs) in &table {
        for (holds, secret) in &credentials {
            let r = send(&server, method, path, *body, *secret).await;
            let status = r.status().as_u16();
            let content_type = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
            let challenge = r.headers().get("www-authenticate").is_some();
            let expected = match (*needs, *holds) {
                ("", _) => None,
                (_, "none" | "unknown") => Some(401),
                (needs, holds) if needs == holds => None,
                _ => Some(403),
            };
            match expected {
                Some(code) => {
                    assert_eq!(status, code, "{method} {path} with {holds}");
                    assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{method} {path}");
                    assert_eq!(challenge, code == 401, "{method} {path}: WWW-Authenticate only on 401");
                }
                None => {
                    assert!(![401, 403, 429].contains(&status), "{method} {path} with {holds} was refused: {status}")
                }
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn patterns_limit_the_streams_a_token_may_feed() {
    let server = TestServer::start_with(secured()).await;
    for id in ["pmu-1", "bus-1"] {
        let r = send(&server, "POST", "/v1/streams", Some(&vdp_definition(id)), Some(ADMIN)).await;
        assert_eq!(r.status().as_u16(), 201);
    }
    let rows = van_der_pol(10, 0.1);
    let r = send(&server, "POST", "/v1/streams/pmu-1/samples", Some(&batch(1, 0, &rows, 0.1)), Some(GATEWAY)).await;
    assert_eq!(r.status().as_u16(), 200);
    let r = send(&server, "POST", "/v1/streams/bus-1/samples", Some(&batch(1, 0, &rows, 0.1)), Some(GATEWAY)).await;
    assert_eq!(r.status().as_u16(), 403);
    let problem: Value = r.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("bus-1"), "{problem}");
    // Nothing of the refused batch was applied.
    let (_, status) = server.get_json_with("/v1/streams/bus-1", READ).await;
    assert_eq!(status["status"]["samples_accepted"], 0, "{status}");
    server.stop().await;
}

#[tokio::test]
async fn websockets_authenticate_by_header_or_subprotocol() {
    let server = TestServer::start_with(secured()).await;
    let r = send(&server, "POST", "/v1/streams", Some(&vdp_definition("pmu-ws")), Some(ADMIN)).await;
    assert_eq!(r.status().as_u16(), 201);
    let url = server.ws_url("pmu-ws");
    // No token: the upgrade is refused with 401.
    let refused = tokio_tungstenite::connect_async(url.as_str()).await.unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");
    // The header.
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {INGEST}").parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 101);
    drop(socket);
    // The browser's way: a subprotocol beside the one it speaks; only the latter is selected.
    let mut request = url.as_str().into_client_request().unwrap();
    let offer = format!("koopstream.v1.json, koopstream.bearer.{GATEWAY}");
    request.headers_mut().insert("sec-websocket-protocol", offer.parse().unwrap());
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "koopstream.v1.json");
    drop(socket);
    // A reader may not open an ingest socket.
    let mut request = url.as_str().into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {READ}").parse().unwrap());
    let refused = tokio_tungstenite::connect_async(request).await.unwrap_err();
    assert!(refused.to_string().contains("403"), "{refused}");
    server.stop().await;
}

#[tokio::test]
async fn a_spent_budget_answers_429_with_retry_after() {
    let server = TestServer::start_with(secured()).await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = send(&server, "GET", "/v1/streams", None, Some("limited-secret")).await;
        statuses.push(r.status().as_u16());
        if r.status().as_u16() == 429 {
            // 0.5 requests per second: the next one is free in at most 2 s.
            let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=2).contains(&retry), "Retry-After {retry}");
            let problem: Value = r.json().await.unwrap();
            assert_eq!(problem["status"], 429);
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    // Other tokens keep their own budgets.
    assert_eq!(send(&server, "GET", "/v1/streams", None, Some(READ)).await.status().as_u16(), 200);
    // Refusals are counted by reason.
    let metrics = send(&server, "GET", "/metrics", None, Some(METRICS)).await.text().await.unwrap();
    assert!(metrics.contains("koopstream_auth_refusals_total{reason=\"rate_limited\"} 1"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn admin_actions_and_refusals_are_audited_without_secrets() {
    let logs = captured_logs();
    let server = TestServer::start_with(secured()).await;
    let r = send(&server, "POST", "/v1/streams", Some(&vdp_definition("audited")), Some(ADMIN)).await;
    assert_eq!(r.status().as_u16(), 201);
    let r = send(&server, "DELETE", "/v1/streams/audited", None, Some(ADMIN)).await;
    assert_eq!(r.status().as_u16(), 204);
    let r = send(&server, "DELETE", "/v1/streams/other", None, Some(READ)).await;
    assert_eq!(r.status().as_u16(), 403);
    server.stop().await;
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let audit: Vec<&str> = text.lines().filter(|l| l.contains("koopstream::audit")).collect();
    let has = |needles: &[&str]| audit.iter().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(has(&["who=operator", "action=\"create\"", "/v1/streams/audited", "status=201"]), "{audit:#?}");
    assert!(has(&["who=operator", "action=\"delete\"", "/v1/streams/audited", "status=204"]), "{audit:#?}");
    assert!(has(&["request refused", "who=reader", "DELETE", "/v1/streams/other", "Scope(Admin)"]), "{audit:#?}");
    for secret in [READ, ADMIN, &TokenDigest::of(ADMIN).to_hex()] {
        assert!(!text.contains(secret), "a secret reached the log");
    }
}

#[tokio::test]
async fn without_tokens_the_server_stays_on_loopback() {
    let open_wide = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let config = ServiceConfig { storage: memory(), ..ServiceConfig::default() };
    let refused = koopstream::server::run(open_wide, config.clone(), async {}).await.unwrap_err();
    assert!(refused.to_string().contains("--insecure-no-auth"), "{refused}");
    // The explicit override starts it (and the shutdown future, already done, stops it).
    let open_wide = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let mut insecure = config.clone();
    insecure.auth.insecure_no_auth = true;
    koopstream::server::run(open_wide, insecure, async {}).await.unwrap();
    // Tokens configured: any address is fine.
    let open_wide = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let tokens = ServiceConfig { storage: memory(), ..secured() };
    koopstream::server::run(open_wide, tokens, async {}).await.unwrap();
}

fn memory() -> koopstream::config::StorageConfig {
    koopstream::config::StorageConfig { durability: koopstream::config::Durability::Memory, ..Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_and_loadgen_send_their_token_to_a_server_that_requires_one() {
    let mut config = secured();
    config.auth.tokens.push(TokenConfig::for_secret("demo", "demo-secret", &["read", "ingest", "admin"]));
    let server = TestServer::start_with(config).await;
    let binary = env!("CARGO_BIN_EXE_koopstream");
    let run = |args: Vec<&str>, token: Option<&str>| {
        let mut command = std::process::Command::new(binary);
        command.args(args).env_remove("KOOPSTREAM_TOKEN");
        if let Some(token) = token {
            command.env("KOOPSTREAM_TOKEN", token);
        }
        command.output().unwrap()
    };
    let demo = vec!["demo", "--system", "vdp", "--speed", "0", "--server", server.base.as_str()];
    let loadgen =
        vec!["loadgen", "--streams", "2", "--duration", "1", "--channels", "2", "--server", server.base.as_str()];
    for args in [&demo, &loadgen] {
        // Without a token: the server's refusal, once, and a failure.
        let refused = run(args.clone(), None);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success() && stderr.contains("answered 401"), "{args:?}: {stderr}");
        // From the environment, and from the command line.
        let accepted = run(args.clone(), Some("demo-secret"));
        assert!(accepted.status.success(), "{args:?}: {}", String::from_utf8_lossy(&accepted.stderr));
        let accepted = run([args.clone(), vec!["--token", "demo-secret"]].concat(), None);
        assert!(accepted.status.success(), "{args:?}: {}", String::from_utf8_lossy(&accepted.stderr));
    }
    // A token without the admin scope cannot create the demo's stream: 403, named.
    let refused = run(demo.clone(), Some(READ));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("answered 403"), "{refused:?}");
    server.stop().await;
}
