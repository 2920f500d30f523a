//! Generated stream definitions, extreme sizes included, against the real server: each is
//! created (or refused), fed generated batches in every body format, and every resource is
//! read, predicted from, reset and deleted. Every answer must be 2xx or 304, or a 4xx
//! problem+json; the server must stay up, and the process's peak resident memory stay
//! bounded by the configured memory budgets. Cases: KOOPSTREAM_PROPERTY_CASES (default 200),
//! under a fixed seed.

mod common;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use common::TestServer;
use koopstream::config::{Limits, ServiceConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{Value, json};

/// Budgets small enough that the extreme definitions meet them.
const STREAM_BUDGET: u64 = 64 << 20;
const TOTAL_BUDGET: u64 = 256 << 20;

fn server() -> &'static (tokio::runtime::Runtime, TestServer) {
    static SERVER: OnceLock<(tokio::runtime::Runtime, TestServer)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let limits = Limits {
            stream_memory_bytes: STREAM_BUDGET,
            total_memory_bytes: TOTAL_BUDGET,
            max_batch_samples: 5_000,
            max_horizon: 10_000,
            ..Limits::default()
        };
        let server = runtime.block_on(TestServer::start_with(ServiceConfig { limits, ..ServiceConfig::default() }));
        (runtime, server)
    })
}

fn peak_resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn channel_names() -> impl Strategy<Value = Vec<Value>> {
    let name = prop_oneof![
        32 => "[a-z]{1,6}".prop_map(Value::from),
        1 => Just(Value::from("")),
        1 => Just(Value::from("a,b")),
        1 => "[a-z]{200}".prop_map(Value::from),
        1 => Just(Value::from(7)),
    ];
    let count = prop_oneof![32 => 1usize..4, 1 => Just(0usize), 1 => Just(40usize), 1 => Just(5000usize)];
    (count, name).prop_map(|(count, name)| {
        (0..count)
            .map(|i| match &name {
                Value::String(s) if s.len() < 10 && !s.is_empty() => json!({"name": format!("{s}{i}")}),
                other => json!({"name": other}),
            })
            .collect()
    })
}

/// Absent, one of the accepted values, or (less often) one of the refused or extreme ones.
fn field(valid: Vec<Value>, extreme: Vec<Value>) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        12 => Just(None),
        12 => proptest::sample::select(valid).prop_map(Some),
        1 => proptest::sample::select(extreme).prop_map(Some),
    ]
}

fn definition() -> impl Strategy<Value = Value> {
    let sizes = (
        field(
            vec![json!(20), json!(60), json!(60.0)],
            vec![json!(0), json!(1), json!(4_000_000_000u64), json!(1_000_001), json!(-3)],
        ),
        field(vec![json!(30), json!(200)], vec![json!(0), json!(100_000_000_000u64), json!(2.5)]),
        field(vec![json!(1), json!(50)], vec![json!(0), json!(1_000_000_000_000u64)]),
        field(vec![json!(0), json!(3)], vec![json!(1_000_000_000_000_000u64), json!(-1)]),
        field(vec![json!(5), json!(500)], vec![json!(0), json!(1_000_000_000_000u64)]),
        field(vec![json!(0), json!(4.5)], vec![json!(1), json!(1000), json!(-1)]),
    );
    let model = (
        field(
            vec![
                json!("state"),
                json!("state,const,poly:2"),
                json!("state,delay:3"),
                json!("state,rbf:20"),
                json!("fourier:8"),
            ],
            vec![json!("state,delay:2000"), json!("poly:12"), json!("rbf:100000"), json!("x")],
        ),
        field(vec![json!(1e-6), json!(0.0)], vec![json!(-1.0), json!("big")]),
        field(vec![json!(0.99), json!(1.0)], vec![json!(1.5), json!(0.0)]),
        field(
            vec![json!({"band_hz": [0.1, 9.0]}), json!({"max": 3})],
            vec![json!({"max": 100000}), json!({"band_hz": [5.0]})],
        ),
        prop_oneof![24 => Just(json!(0.02)), 1 => Just(json!(0.0)), 1 => Just(json!(-1.0)), 1 => Just(json!(5e-324)), 1 => Just(json!(1e7))],
    );
    // Estimators with their parameters and presets, mostly as combinations that fit (the
    // rank is within N of every dictionary above with one channel, the delay past `delay:3`),
    // less often ones that do not: a parameter for another estimator, values out of range,
    // unknown names, a band above 0.4 / ts. The estimators other than ridge take no window,
    // so their combinations drop a generated one (null is absent).
    let method = prop_oneof![
        12 => Just(json!({})),
        2 => Just(json!({"estimator": "ridge"})),
        2 => Just(json!({"estimator": "correlation", "window": null})),
        2 => Just(json!({"estimator": "correlation", "lags": 30, "rank": 1, "window": null})),
        2 => Just(json!({"estimator": "iv", "window": null})),
        2 => Just(json!({"estimator": "iv", "instrument_delay": 12, "window": null})),
        2 => Just(json!({"preset": "pmu-ambient", "window": null})),
        2 => Just(json!({"preset": "pmu-ringdown", "warmup": 50, "window": null})),
        2 => Just(json!({"preset": "lab-nonlinear", "estimator": "correlation", "lags": 2, "window": null})),
        1 => proptest::sample::select(vec![
            json!({"lags": 10}),
            json!({"estimator": "iv", "rank": 1}),
            json!({"estimator": "correlation", "lags": 2001}),
            json!({"estimator": "correlation", "lags": -1}),
            json!({"estimator": "correlation", "rank": 5000}),
            json!({"estimator": "iv", "instrument_delay": 1_000_000_000_000u64}),
            json!({"estimator": "ols"}),
            json!({"preset": "pmu"}),
            json!({"preset": "pmu-ambient", "ts": 100.0}),
        ]),
    ];
    let identity = (
        field(
            vec![json!("p"), json!("pmu.1-a")],
            vec![json!("a b"), json!("x".repeat(300)), json!("../etc"), json!("ünï")],
        ),
        channel_names(),
        prop_oneof![6 => Just(vec![]), 1 => Just(vec![json!({"name": "u0"})])],
        proptest::bool::weighted(0.05),
    );
    (sizes, model, method, identity).prop_map(|(sizes, model, method, identity)| {
        let (warmup, window, eigen_every, flat_line, refactor_every, outlier_gate) = sizes;
        let (dictionary, mu, forgetting, modes, ts) = model;
        let (id, channels, inputs, unknown) = identity;
        let mut d = json!({"channels": channels, "inputs": inputs, "ts": ts, "implicit_timing": true});
        let fields = [
            ("id", id),
            ("warmup", warmup),
            ("window", window),
            ("eigen_every", eigen_every),
            ("flat_line", flat_line),
            ("refactor_every", refactor_every),
            ("outlier_gate", outlier_gate),
            ("dictionary", dictionary),
            ("mu", mu),
            ("forgetting", forgetting),
            ("modes", modes),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                d[key] = value;
            }
        }
        for (key, value) in method.as_object().unwrap() {
            d[key] = value.clone();
        }
        if unknown {
            d["surprise"] = json!(1);
        }
        d
    })
}

/// A batch: rows of the stream's width (or one more), with missing and extreme values.
fn batches() -> impl Strategy<Value = Vec<(usize, bool, u8, f64)>> {
    proptest::collection::vec(
        (prop_oneof![Just(0usize), Just(1), 1usize..80, Just(400)], any::<bool>(), 0u8..4, -1e3..1e3f64),
        1..5,
    )
}

/// Checks an answer: 2xx/304, or a 4xx problem+json. Returns the status and the body.
async fn check(response: reqwest::Response, what: &str) -> Result<(u16, Value), TestCaseError> {
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = response.bytes().await.map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
    let ok = (200..300).contains(&status) || status == 304;
    if !ok {
        prop_assert!((400..500).contains(&status), "{what}: status {status}: {}", String::from_utf8_lossy(&body));
        prop_assert_eq!(content_type.as_str(), "application/problem+json", "{}: {}", what, status);
        let problem: Value = serde_json::from_slice(&body).map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
        prop_assert_eq!(problem["status"].as_u64(), Some(status as u64));
    }
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

fn row(width: usize, k: usize, kind: u8, scale: f64) -> Vec<Value> {
    (0..width)
        .map(|j| match (kind, (k + j) % 7) {
            (1, 0) => Value::Null,
            (2, 3) => json!(1e308),
            _ => json!(((k as f64) * 0.37 + j as f64).sin() * scale),
        })
        .collect()
}

async fn exercise(definition: Value, feed: Vec<(usize, bool, u8, f64)>) -> Result<(), TestCaseError> {
    let server = &server().1;
    let (status, created) = check(server.post_json("/v1/streams", &definition).await, "create").await?;
    if status != 201 {
        return Ok(());
    }
    CREATED.fetch_add(1, Ordering::Relaxed);
    let id = created["definition"]["id"].as_str().unwrap().to_owned();
    let width = created["definition"]["channels"].as_array().unwrap().len();
    let inputs = created["definition"]["inputs"].as_array().unwrap().len();
    let base = format!("/v1/streams/{id}");
    let mut sample = 0usize;
    for (seq, (rows, wider, kind, scale)) in feed.into_iter().enumerate() {
        let w = width + usize::from(wider);
        let x: Vec<Vec<Value>> = (0..rows).map(|k| row(w, sample + k, kind, scale)).collect();
        let u: Vec<Vec<Value>> = (0..rows).map(|k| row(inputs, sample + k, 0, 1.0)).collect();
        let mut batch = json!({"seq": seq + 1, "t0": sample as f64 * 0.02, "x": x});
        if inputs > 0 {
            batch["u"] = json!(u);
        }
        let path = format!("{base}/samples");
        let response = match kind {
            3 => {
                let mut csv = String::from("t");
                for c in created["definition"]["channels"].as_array().unwrap() {
                    csv.push(',');
                    csv.push_str(c["name"].as_str().unwrap());
                }
                csv.push('\n');
                for (k, r) in x.iter().enumerate() {
                    let cells: Vec<String> =
                        r.iter().map(|v| v.as_f64().map_or(String::new(), |v| v.to_string())).collect();
                    csv.push_str(&format!("{},{}\n", (sample + k) as f64 * 0.02, cells.join(",")));
                }
                server.post_body(&format!("{path}?seq={}", seq + 1), "text/csv", csv).await
            }
            _ => server.post_json(&path, &batch).await,
        };
        let (status, _) = check(response, "ingest").await?;
        if status == 200 {
            ACCEPTED.fetch_add(1, Ordering::Relaxed);
        }
        sample += rows;
    }
    for resource in ["", "/model", "/modes", "/modes?all=true", "/alarms", "/model?format=npz"] {
        let response = server.http.get(server.url(&format!("{base}{resource}"))).send().await.unwrap();
        check(response, resource).await?;
    }
    for horizon in [0u64, 1, 20, 1_000_000_000] {
        check(server.post_json(&format!("{base}/predict"), &json!({"horizon": horizon})).await, "predict").await?;
    }
    check(server.http.post(server.url(&format!("{base}/reset"))).send().await.unwrap(), "reset").await?;
    let (status, _) = check(server.http.delete(server.url(&base)).send().await.unwrap(), "delete").await?;
    prop_assert_eq!(status, 204);
    Ok(())
}

/// Streams created and batches accepted.
static CREATED: AtomicU32 = AtomicU32::new(0);
static ACCEPTED: AtomicU32 = AtomicU32::new(0);

fn cases() -> u32 {
    std::env::var("KOOPSTREAM_PROPERTY_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(200)
}

#[test]
fn every_answer_is_a_success_or_a_problem_and_memory_stays_bounded() {
    let config =
        Config { cases: cases(), rng_seed: RngSeed::Fixed(20_261_204), failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&(definition(), batches()), |(d, feed)| {
        let (runtime, server) = server();
        runtime.block_on(exercise(d, feed))?;
        let (status, _) = runtime.block_on(server.get_json("/healthz"));
        prop_assert_eq!(status, 200, "the server stays up");
        // Everything a case allocates is freed when its stream is deleted; the process
        // (server and test client) never holds more than the total budget and a margin.
        let peak = peak_resident_kib();
        prop_assert!(peak < (TOTAL_BUDGET >> 10) + 512 * 1024, "peak resident {} KiB", peak);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generators must reach the server's inner paths, not only its refusals.
    let (created, accepted) = (CREATED.load(Ordering::Relaxed), ACCEPTED.load(Ordering::Relaxed));
    println!(
        "{} cases: {created} streams created, {accepted} batches accepted, peak resident {} KiB",
        cases(),
        peak_resident_kib()
    );
    assert!(created * 4 >= cases() && accepted * 2 >= created, "{created} created, {accepted} accepted");
}
