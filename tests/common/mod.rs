//! Shared harness of the end-to-end tests: the real server on a loopback port, clients,
//! and deterministic test data.
#![allow(dead_code)]

pub mod certs;
pub mod child;

use std::time::Duration;

use koopstream::config::ServiceConfig;
use koopstream::server::{ShutdownReport, run};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server started on 127.0.0.1:0 for one test.
pub struct TestServer {
    pub base: String,
    pub address: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<ShutdownReport, koopstream::server::ServeError>>>,
    pub http: reqwest::Client,
    /// The store directory this harness made (not one the test chose): removed by `stop`.
    own_store: Option<std::path::PathBuf>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(ServiceConfig::default()).await
    }

    /// Starts with `config`; a store in the default directory is moved to a fresh temporary
    /// directory, so tests never write into the working tree.
    pub async fn start_with(mut config: ServiceConfig) -> Self {
        let mut own_store = None;
        if config.data_dir == ServiceConfig::default().data_dir {
            config.data_dir = scratch_dir("store");
            own_store = Some(config.data_dir.clone());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, config, async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let server =
            Self { base: format!("http://{address}"), address, stop: Some(stop), task: Some(task), http, own_store };
        server.wait_ready().await;
        server
    }

    /// Waits until /readyz answers 200 (recovery done).
    pub async fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(self.url("/readyz")).send().await
                && r.status().as_u16() == 200
            {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the server did not become ready");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn ws_url(&self, stream: &str) -> String {
        format!("ws://{}/v1/streams/{stream}/ws", self.address)
    }

    /// Asks the server to stop and waits for its report; then removes the store directory
    /// the harness made for it.
    pub async fn stop(mut self) -> ShutdownReport {
        let _ = self.stop.take().unwrap().send(());
        let report = tokio::time::timeout(Duration::from_secs(30), self.task.take().unwrap())
            .await
            .expect("shutdown in time")
            .unwrap()
            .unwrap();
        if let Some(dir) = self.own_store.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        report
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http.post(self.url(path)).json(body).send().await.unwrap()
    }

    /// POSTs a body of the given media type (NDJSON, CSV, ...).
    pub async fn post_body(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http.post(self.url(path)).header("content-type", content_type).body(body).send().await.unwrap()
    }

    /// The sum of a counter's samples whose labels include `label` (e.g. `reason="x"`).
    pub async fn metric_sum(&self, name: &str, label: &str) -> f64 {
        let text = self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(label))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        status_and_json(self.http.get(self.url(path))).await
    }

    /// GET with a bearer token; the status and the JSON body.
    pub async fn get_json_with(&self, path: &str, token: &str) -> (u16, Value) {
        status_and_json(self.http.get(self.url(path)).bearer_auth(token)).await
    }

    /// Creates a stream and asserts it was created.
    pub async fn create(&self, definition: Value) -> Value {
        let r = self.post_json("/v1/streams", &definition).await;
        assert_eq!(r.status().as_u16(), 201, "create {definition}");
        r.json().await.unwrap()
    }

    /// Sends a JSON batch and returns the acknowledgement.
    pub async fn ingest(&self, stream: &str, batch: &Value) -> Value {
        let r = self.post_json(&format!("/v1/streams/{stream}/samples"), batch).await;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "ingest: {body}");
        body
    }
}

/// Sends a request; its status and JSON body (null when the body is not JSON).
async fn status_and_json(request: reqwest::RequestBuilder) -> (u16, Value) {
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A fresh directory under the system's temporary directory.
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "koopstream-test-{}-{name}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Van der Pol (mu = 1) sampled every `ts` by RK4 with 10 substeps, from (2, 0).
pub fn van_der_pol(samples: usize, ts: f64) -> Vec<[f64; 2]> {
    let f = |x: [f64; 2]| [x[1], (1.0 - x[0] * x[0]) * x[1] - x[0]];
    let h = ts / 10.0;
    let mut x = [2.0, 0.0];
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        out.push(x);
        for _ in 0..10 {
            let k1 = f(x);
            let k2 = f([x[0] + 0.5 * h * k1[0], x[1] + 0.5 * h * k1[1]]);
            let k3 = f([x[0] + 0.5 * h * k2[0], x[1] + 0.5 * h * k2[1]]);
            let k4 = f([x[0] + h * k3[0], x[1] + h * k3[1]]);
            for i in 0..2 {
                x[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
            }
        }
    }
    out
}

/// A JSON batch of rows starting at sample index `start`.
pub fn batch(seq: u64, start: usize, rows: &[[f64; 2]], ts: f64) -> Value {
    json!({"seq": seq, "t0": start as f64 * ts, "x": rows.iter().map(|r| vec![r[0], r[1]]).collect::<Vec<_>>()})
}

/// The Van der Pol stream definition used across tests.
pub fn vdp_definition(id: &str) -> Value {
    json!({"id": id, "channels": [{"name": "x1", "unit": "m"}, {"name": "x2", "unit": "m/s"}], "ts": 0.1,
           "dictionary": "state,const,poly:3", "mu": 1e-3, "warmup": 100})
}

/// The published model document of a stream.
pub async fn model(server: &TestServer, stream: &str) -> Value {
    let (status, body) = server.get_json(&format!("/v1/streams/{stream}/model")).await;
    assert_eq!(status, 200, "{body}");
    body
}
