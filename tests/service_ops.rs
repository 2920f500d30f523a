//! End to end: many concurrent streams and readers, graceful shutdown while streaming,
//! the Prometheus exposition and the OpenAPI document.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{TestServer, batch, van_der_pol, vdp_definition};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const TS: f64 = 0.1;

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_streams_with_concurrent_readers_lose_nothing() {
    const STREAMS: usize = 120;
    const BATCHES: usize = 15;
    const ROWS: usize = 40;
    let server = Arc::new(TestServer::start().await);
    let samples = Arc::new(van_der_pol(BATCHES * ROWS, TS));
    for s in 0..STREAMS {
        server.create(vdp_definition(&format!("s{s}"))).await;
    }
    let rss_before = resident_kib();
    let done = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    // Readers poll status, model and modes of random streams while ingest runs.
    let mut readers = Vec::new();
    for r in 0..8 {
        let (server, done, reads) = (server.clone(), done.clone(), reads.clone());
        readers.push(tokio::spawn(async move {
            let mut k = r;
            while done.load(Ordering::Relaxed) < STREAMS as u64 {
                let id = format!("s{}", k % STREAMS);
                for path in ["", "/model", "/modes"] {
                    let (status, _) = server.get_json(&format!("/v1/streams/{id}{path}")).await;
                    assert!(status == 200 || status == 409, "reader got {status}");
                    reads.fetch_add(1, Ordering::Relaxed);
                }
                k += 7;
            }
        }));
    }
    let mut writers = Vec::new();
    for s in 0..STREAMS {
        let (server, samples, done) = (server.clone(), samples.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let id = format!("s{s}");
            for b in 0..BATCHES {
                let ack =
                    server.ingest(&id, &batch(b as u64 + 1, b * ROWS, &samples[b * ROWS..(b + 1) * ROWS], TS)).await;
                assert_eq!(ack["accepted"], ROWS);
            }
            done.fetch_add(1, Ordering::Relaxed);
        }));
    }
    tokio::time::timeout(Duration::from_secs(120), async {
        for w in writers {
            w.await.unwrap();
        }
        for r in readers {
            r.await.unwrap();
        }
    })
    .await
    .expect("no deadlock");
    assert!(reads.load(Ordering::Relaxed) > 0);
    let (_, list) = server.get_json("/v1/streams").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), STREAMS);
    for stream in list {
        assert_eq!(stream["status"]["samples_accepted"], (BATCHES * ROWS) as u64, "{}", stream["definition"]["id"]);
        assert_eq!(stream["status"]["state"], "ready");
    }
    let growth_mib = resident_kib().saturating_sub(rss_before) / 1024;
    assert!(growth_mib < 256, "memory grew by {growth_mib} MiB");
    let server = Arc::try_unwrap(server).ok().expect("all clients finished");
    let report = server.stop().await;
    assert!(report.streams.iter().all(|s| s.samples_accepted == (BATCHES * ROWS) as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_while_streaming_keeps_every_acknowledged_batch() {
    let server = TestServer::start().await;
    let samples = Arc::new(van_der_pol(100_000, TS));
    let mut clients = Vec::new();
    for s in 0..4 {
        let id = format!("g{s}");
        server.create(vdp_definition(&id)).await;
        let (url, samples) = (server.ws_url(&id), samples.clone());
        clients.push(tokio::spawn(async move {
            let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
            let (mut acked, mut close_code) = (0u64, None);
            'outer: for (seq, chunk) in samples.chunks(25).enumerate() {
                if socket.send(Message::text(batch(seq as u64 + 1, seq * 25, chunk, TS).to_string())).await.is_err() {
                    break;
                }
                loop {
                    match socket.next().await {
                        Some(Ok(Message::Text(text))) => {
                            let reply: Value = serde_json::from_str(&text).unwrap();
                            if reply["type"] == "ack" {
                                acked += reply["accepted"].as_u64().unwrap();
                                break;
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            close_code = frame.map(|f| u16::from(f.code));
                            break 'outer;
                        }
                        Some(Ok(_)) => {}
                        _ => break 'outer,
                    }
                }
            }
            (id, acked, close_code)
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let report = server.stop().await;
    let applied: HashMap<String, u64> = report.streams.iter().map(|s| (s.id.clone(), s.samples_accepted)).collect();
    for client in clients {
        let (id, acked, close_code) = client.await.unwrap();
        assert!(acked > 0, "{id} streamed before the shutdown");
        assert!(acked < 100_000, "{id} was cut off by the shutdown");
        assert_eq!(close_code, Some(1001), "{id} got a close frame 'going away'");
        // Everything acknowledged was applied; at most the batch in flight was applied unacknowledged.
        let applied = applied[&id];
        assert!(applied >= acked && applied <= acked + 25, "{id}: applied {applied}, acknowledged {acked}");
    }
}

/// Checks the OpenMetrics text line by line and returns `name{labels}` -> value.
fn parse_exposition(text: &str) -> HashMap<String, f64> {
    let mut values = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "the exposition ends with # EOF");
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let kind = rest.split(' ').next().unwrap();
            assert!(["HELP", "TYPE", "UNIT"].contains(&kind), "comment line `{line}`");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("sample line `{line}`"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name `{name}`"
        );
        if name_end < series.len() {
            let labels = &series[name_end..];
            assert!(labels.starts_with('{') && labels.ends_with('}'), "labels `{labels}`");
            for pair in labels[1..labels.len() - 1].split("\",").filter(|p| !p.is_empty()) {
                let (key, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("label `{pair}` in `{line}`"));
                assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "label name `{key}`");
                assert!(!v.contains('\n'));
            }
        }
        let parsed: f64 = value.parse().unwrap_or_else(|_| panic!("value `{value}` in `{line}`"));
        values.insert(series.to_owned(), parsed);
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_sent_and_openapi_lists_every_route() {
    let server = TestServer::start().await;
    server.create(vdp_definition("m")).await;
    let samples = van_der_pol(500, TS);
    for (seq, chunk) in samples.chunks(100).enumerate() {
        server.ingest("m", &batch(seq as u64 + 1, seq * 100, chunk, TS)).await;
    }
    server.ingest("m", &batch(1, 0, &samples[..100], TS)).await; // a retry
    let bad = server.post_json("/v1/streams/m/samples", &serde_json::json!({"seq": 9, "x": [[1.0]]})).await;
    assert_eq!(bad.status().as_u16(), 422);
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("m")).await.unwrap();
    let more = van_der_pol(600, TS);
    socket.send(Message::text(batch(10, 500, &more[500..600], TS).to_string())).await.unwrap();
    while let Some(Ok(message)) = socket.next().await {
        if message.to_text().unwrap().contains("\"ack\"") {
            break;
        }
    }

    let response = server.http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/openmetrics-text; version=1.0.0; charset=utf-8");
    let values = parse_exposition(&response.text().await.unwrap());
    assert_eq!(values["koopstream_samples_accepted_total{transport=\"http\"}"], 500.0);
    assert_eq!(values["koopstream_samples_accepted_total{transport=\"ws\"}"], 100.0);
    assert_eq!(values["koopstream_batches_applied_total{transport=\"http\"}"], 5.0);
    assert_eq!(values["koopstream_samples_rejected_total{transport=\"http\",reason=\"duplicate\"}"], 100.0);
    assert_eq!(values["koopstream_samples_rejected_total{transport=\"http\",reason=\"invalid\"}"], 1.0);
    assert_eq!(values["koopstream_streams"], 1.0);
    // The one stream's memory estimate, counted against limits.total_memory_bytes.
    assert!(values["koopstream_memory_estimate_bytes"] > 100_000.0, "{values:?}");
    assert_eq!(values["koopstream_websocket_connections"], 1.0);
    assert_eq!(values["koopstream_update_seconds_count"], 6.0);
    assert!(values.contains_key("koopstream_build_info{version=\"0.1.0\"}"));
    assert!(values.keys().any(|k| k.starts_with(
        "koopstream_http_request_duration_seconds_count{route=\"/v1/streams/{id}/samples\",status_class=\"2xx\"}"
    )));
    assert!(!values.keys().any(|k| k.contains("stream=")), "no per-stream labels by default");

    let (status, doc) = server.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("/v1/streams", vec!["get", "post"]),
        ("/v1/streams/{id}", vec!["get", "delete"]),
        ("/v1/streams/{id}/reset", vec!["post"]),
        ("/v1/streams/{id}/samples", vec!["post"]),
        ("/v1/streams/{id}/ws", vec!["get"]),
        ("/v1/streams/{id}/model", vec!["get"]),
        ("/v1/streams/{id}/modes", vec!["get"]),
        ("/v1/streams/{id}/alarms", vec!["get"]),
        ("/v1/streams/{id}/predict", vec!["post"]),
        ("/v1/streams/{id}/recent", vec!["get"]),
        ("/v1/streams/{id}/modes/trend", vec!["get"]),
        ("/v1/streams/{id}/events", vec!["get"]),
        ("/v1/presets", vec!["get"]),
        ("/healthz", vec!["get"]),
        ("/readyz", vec!["get"]),
        ("/metrics", vec!["get"]),
        ("/openapi.json", vec!["get"]),
    ];
    assert_eq!(paths.len(), expected.len(), "{:?}", paths.keys().collect::<Vec<_>>());
    for (path, methods) in expected {
        for method in methods {
            assert!(paths[path][method].is_object(), "{method} {path} documented");
        }
    }
    // Every schema a path references exists.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "schema {name} referenced but missing");
    }
    // Where the server is stricter than a bare type, the description says so.
    assert_eq!(schemas["CreateStream"]["properties"]["channels"]["minItems"], 1);
    assert_eq!(schemas["SampleBatchBody"]["properties"]["x"]["minItems"], 1);
    let ws = &paths["/v1/streams/{id}/ws"]["get"]["responses"];
    assert!(ws["400"].is_object(), "the refusal of a plain GET is documented");
    let band = &schemas["ModeMeterRequest"]["properties"]["band_hz"];
    assert_eq!((band["minItems"].as_u64(), band["maxItems"].as_u64()), (Some(2), Some(2)), "{band}");
    let create = &schemas["CreateStream"]["properties"];
    assert_eq!((create["lags"]["minimum"].as_u64(), create["lags"]["maximum"].as_u64()), (Some(2), Some(2000)));
    let estimators = schemas["Estimator"]["enum"].as_array().unwrap();
    assert_eq!(estimators, &["ridge", "correlation", "iv"]);
    // Query parameters are documented in the query, optional and never null (they were
    // once listed as required path parameters).
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                if name == "id" {
                    assert_eq!(parameter["in"], "path", "{method} {path}");
                    continue;
                }
                assert_eq!(parameter["in"], "query", "{method} {path} {name}");
                assert_eq!(parameter["required"], false, "{method} {path} {name}");
                assert!(!parameter["schema"]["type"].is_array(), "{method} {path} {name} is not nullable");
            }
            if item[method]["security"].is_array() {
                assert!(operation["responses"]["401"].is_object(), "{method} {path} documents 401");
            }
        }
    }
    let (status, _) = server.get_json("/readyz").await;
    assert_eq!(status, 200);
    socket.close(None).await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn the_update_rate_is_measured_while_samples_come_and_zero_once_they_stop() {
    let server = TestServer::start().await;
    server.create(vdp_definition("r")).await;
    let samples = van_der_pol(240, TS);
    let rate = || async { server.get_json("/v1/streams/r").await.1["status"]["update_rate_hz"].as_f64().unwrap() };
    // 20 samples every 100 ms for 1.1 s: about 200 per second (the clock of a loaded
    // machine stretches the gaps, so only a wide band is asserted).
    let started = tokio::time::Instant::now();
    for (k, chunk) in samples.chunks(20).enumerate() {
        tokio::time::sleep_until(started + Duration::from_millis(100 * k as u64)).await;
        server.ingest("r", &batch(k as u64 + 1, k * 20, chunk, TS)).await;
    }
    let measured = rate().await;
    assert!((50.0..=250.0).contains(&measured), "{measured}");
    // Silent for longer than 2 s (and three sample intervals): nothing is coming in.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(rate().await, 0.0);
    server.stop().await;
}
