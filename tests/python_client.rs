//! The Python example client (`deploy/examples/stream_csv.py`) against the real server: it
//! streams a CSV over the WebSocket in protobuf, and the model equals, byte for byte, the
//! one built by JSON batches of the same CSV; a refused batch makes it exit non-zero.
//!
//! Needs a Python with the client's packages, so it is ignored by a plain `cargo test`
//! (listed as ignored, never passed silently); `.ci/run` makes the venv with
//! `deploy/examples/setup-venv.sh`, names its interpreter in PYTHON_FOR_TESTS and runs this
//! test with `--ignored`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{TestServer, scratch_dir, van_der_pol, vdp_definition};
use serde_json::{Value, json};

const TS: f64 = 0.1;
const SAMPLES: usize = 700;
const CHUNK: usize = 64;

/// Sample k has an empty cell (a missing value).
fn dropout(k: usize) -> Option<usize> {
    (k % 89 == 40).then_some(k % 2)
}

fn write_csv(path: &Path) -> Vec<(f64, [Option<f64>; 2])> {
    let rows: Vec<(f64, [Option<f64>; 2])> = van_der_pol(SAMPLES, TS)
        .iter()
        .enumerate()
        .map(|(k, x)| {
            let mut row = [Some(x[0]), Some(x[1])];
            if let Some(j) = dropout(k) {
                row[j] = None;
            }
            (k as f64 * TS, row)
        })
        .collect();
    let cell = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    let mut csv = String::from("t,x1,x2\n");
    for (t, row) in &rows {
        csv.push_str(&format!("{t},{},{}\n", cell(row[0]), cell(row[1])));
    }
    std::fs::write(path, csv).unwrap();
    rows
}

/// Runs the client off the async workers (the server runs on them meanwhile).
async fn run_client(python: &str, args: Vec<String>) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/examples/stream_csv.py");
    let python = python.to_owned();
    tokio::task::spawn_blocking(move || Command::new(python).arg(script).args(args).output().unwrap()).await.unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Python venv: PYTHON_FOR_TESTS=$(bash deploy/examples/setup-venv.sh)"]
async fn the_python_client_streams_a_csv_in_protobuf_and_builds_the_json_model() {
    let python = std::env::var("PYTHON_FOR_TESTS")
        .expect("PYTHON_FOR_TESTS names the venv's interpreter (bash deploy/examples/setup-venv.sh prints it)");
    let csv = scratch_dir("python-client").join("vdp.csv");
    let rows = write_csv(&csv);
    let server = TestServer::start().await;

    // The client creates the stream itself, from the CSV header and these fields.
    let definition = vdp_definition("py");
    let extra = json!({"dictionary": definition["dictionary"], "mu": definition["mu"], "warmup": definition["warmup"]});
    let output = run_client(
        &python,
        args(&[
            "--server",
            &server.base,
            "--stream",
            "py",
            "--csv",
            csv.to_str().unwrap(),
            "--ts",
            "0.1",
            "--batch",
            &CHUNK.to_string(),
            "--definition",
            &extra.to_string(),
        ]),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "client failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let batches = SAMPLES.div_ceil(CHUNK);
    assert_eq!(stdout.lines().filter(|l| l.starts_with("ack seq=")).count(), batches, "{stdout}");
    let missing = (0..SAMPLES).filter(|&k| dropout(k).is_some()).count();
    assert!(missing > 0 && stdout.contains(&format!("{} accepted, {missing} missing", SAMPLES - missing)), "{stdout}");

    // The same CSV as JSON batches over HTTP (units differ: the client did not send them).
    let mut json_definition = definition.clone();
    json_definition["id"] = json!("json");
    json_definition["channels"] = json!([{"name": "x1"}, {"name": "x2"}]);
    server.create(json_definition).await;
    for (i, chunk) in rows.chunks(CHUNK).enumerate() {
        let t: Vec<f64> = chunk.iter().map(|(t, _)| *t).collect();
        let x: Vec<Value> = chunk.iter().map(|(_, row)| json!(row)).collect();
        server.ingest("json", &json!({"seq": i + 1, "t": t, "x": x})).await;
    }

    let (_, status) = server.get_json("/v1/streams/py").await;
    let status = &status["status"];
    assert_eq!(status["samples_accepted"], SAMPLES - missing, "{status}");
    assert_eq!(
        status["samples_rejected"],
        json!({"invalid": 0, "queue_full": 0, "duplicate": 0, "out_of_order": 0, "missing_value": missing, "flat_line": 0, "outlier": 0})
    );
    assert_eq!(status["batches"], batches);
    let model = |stream: &'static str| {
        let request = server.http.get(server.url(&format!("/v1/streams/{stream}/model")));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let (python_model, json_model) = (model("py").await, model("json").await);
    assert!(python_model.contains("koopstream.model.v1"), "{python_model}");
    assert_eq!(python_model, json_model, "the model of the Python client equals the JSON one, byte for byte");

    // A batch the server refuses (3 channels expected) makes the client exit non-zero.
    server.create(json!({"id": "three", "channels": [{"name": "a"}, {"name": "b"}, {"name": "c"}], "ts": TS})).await;
    let output = run_client(
        &python,
        args(&["--server", &server.base, "--stream", "three", "--no-create", "--csv", csv.to_str().unwrap()]),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("422") && stderr.contains("the batch has 2 channels, the stream has 3"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Python venv: PYTHON_FOR_TESTS=$(bash deploy/examples/setup-venv.sh)"]
async fn the_python_client_authenticates_with_a_bearer_token() {
    use koopstream::access::TokenConfig;
    use koopstream::config::{AuthConfig, ServiceConfig};
    let python = std::env::var("PYTHON_FOR_TESTS")
        .expect("PYTHON_FOR_TESTS names the venv's interpreter (bash deploy/examples/setup-venv.sh prints it)");
    let csv = scratch_dir("python-token").join("vdp.csv");
    write_csv(&csv);
    let token = TokenConfig::for_secret("gateway", "gateway-secret", &["ingest", "admin"]);
    let config =
        ServiceConfig { auth: AuthConfig { tokens: vec![token], ..AuthConfig::default() }, ..Default::default() };
    let server = TestServer::start_with(config).await;
    let base = ["--server", &server.base, "--stream", "tok", "--csv", csv.to_str().unwrap(), "--ts", "0.1"];
    // Without the token the create is refused, and the client says so.
    let output = run_client(&python, args(&base)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    // With it (from the environment's default or the flag), everything is sent.
    let mut with_token = args(&base);
    with_token.extend(args(&["--token", "gateway-secret"]));
    let output = run_client(&python, with_token).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&format!("done: {SAMPLES} samples sent")), "{stdout}");
    server.stop().await;
}
