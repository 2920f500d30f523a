//! Sizes a client sends are bounded before anything is allocated: absurd warm-ups, windows
//! and dictionaries are refused with 422 naming the field or the memory budget, the server
//! stays up, and a stored stream that cannot be rebuilt is quarantined at start-up while
//! every other stream starts.

mod common;

use common::{TestServer, scratch_dir, van_der_pol};
use koopstream::config::ServiceConfig;
use serde_json::{Value, json};

fn two_channels(extra: Value) -> Value {
    let mut body = json!({"channels": [{"name": "a"}, {"name": "b"}], "ts": 0.1});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn refused(server: &TestServer, body: &Value, status: u16, needle: &str) {
    let r = server.post_json("/v1/streams", body).await;
    assert_eq!(r.status().as_u16(), status, "{body}");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let problem: Value = r.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(needle), "{body}: {detail}");
    let (health, _) = server.get_json("/healthz").await;
    assert_eq!(health, 200, "the server is still up after {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_sizes_are_refused_before_allocation_and_change_nothing() {
    let server = TestServer::start().await;
    // The two requests of the security report: each used to abort the process.
    refused(&server, &two_channels(json!({"warmup": 4_000_000_000u64})), 422, "`warmup`").await;
    refused(&server, &two_channels(json!({"window": 100_000_000_000u64})), 422, "`window`").await;
    // 1.4 GB of matrices: beyond the per-stream budget, which the answer names.
    refused(&server, &two_channels(json!({"dictionary": "state,delay:2000"})), 422, "limits.stream_memory_bytes").await;
    // 3000 channels with the default quadratic dictionary: millions of observables.
    let many: Vec<Value> = (0..3000).map(|i| json!({"name": format!("c{i}")})).collect();
    refused(&server, &json!({"channels": many, "ts": 0.1}), 422, "`dictionary`").await;
    // 3000 channels of the state alone fit the observable limit but not the budget.
    refused(&server, &json!({"channels": many, "ts": 0.1, "dictionary": "state"}), 422, "limits.stream_memory_bytes")
        .await;
    let long_name = json!({"channels": [{"name": "n".repeat(10_000)}], "ts": 0.1});
    refused(&server, &long_name, 422, "at most 128 bytes").await;
    let (_, list) = server.get_json("/v1/streams").await;
    assert_eq!(list, json!([]), "no refused request left a stream behind");
    // A prediction's answer is bounded in values (steps x channels), not only in steps:
    // 5000 steps of 1000 channels would be 5 million values.
    let wide: Vec<Value> = (0..1000).map(|i| json!({"name": format!("c{i}")})).collect();
    server.create(json!({"id": "wide", "channels": wide, "ts": 0.1, "dictionary": "state"})).await;
    let r = server.post_json("/v1/streams/wide/predict", &json!({"horizon": 5000})).await;
    assert_eq!(r.status().as_u16(), 422);
    let problem: Value = r.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("predicted values"), "{problem}");
    let r = server.http.delete(server.url("/v1/streams/wide")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    // A stream of ordinary size is still created and learns.
    server.create(two_channels(json!({"id": "ok", "warmup": 50}))).await;
    let rows = van_der_pol(120, 0.1);
    server.ingest("ok", &common::batch(1, 0, &rows, 0.1)).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_total_memory_budget_bounds_all_streams_together() {
    // state,delay:100 on 2 channels: N = 202, about 6.8 MiB a stream (estimator, its ring
    // of recent residuals, published model, what a mode-meter refresh holds); four fit in
    // 30 MiB, the fifth does not.
    let mut config = ServiceConfig::default();
    config.limits.stream_memory_bytes = 8 << 20;
    config.limits.total_memory_bytes = 30 << 20;
    let server = TestServer::start_with(config).await;
    let definition = |id: &str| two_channels(json!({"id": id, "dictionary": "state,delay:100"}));
    for i in 0..4 {
        server.create(definition(&format!("s{i}"))).await;
    }
    refused(&server, &definition("s4"), 422, "limits.total_memory_bytes").await;
    // Deleting a stream gives its share back.
    let r = server.http.delete(server.url("/v1/streams/s0")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    server.create(definition("s4")).await;
    server.stop().await;
}

/// Rewrites a stored stream definition in place, as an older version might have stored it.
fn rewrite_definition(data: &std::path::Path, id: &str, change: impl FnOnce(&mut Value)) {
    let table = redb::TableDefinition::<&str, &[u8]>::new("streams");
    let db = redb::Database::open(data.join("koopstream.redb")).unwrap();
    let write = db.begin_write().unwrap();
    {
        let mut streams = write.open_table(table).unwrap();
        let mut definition: Value =
            serde_json::from_slice(redb::ReadableTable::get(&streams, id).unwrap().unwrap().value()).unwrap();
        change(&mut definition);
        streams.insert(id, serde_json::to_vec(&definition).unwrap().as_slice()).unwrap();
    }
    write.commit().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_stream_that_cannot_be_rebuilt_is_quarantined_and_the_rest_start() {
    let data = scratch_dir("quarantine");
    let config = ServiceConfig { data_dir: data.clone(), ..ServiceConfig::default() };
    let rows = van_der_pol(300, 0.1);
    let server = TestServer::start_with(config.clone()).await;
    for id in ["good", "bad"] {
        server.create(two_channels(json!({"id": id, "warmup": 50}))).await;
        server.ingest(id, &common::batch(1, 0, &rows[..100], 0.1)).await;
    }
    server.stop().await;

    // The definition the report describes: accepted by the old server, a window of 10^11
    // pairs that aborted every start-up at the end of warm-up.
    rewrite_definition(&data, "bad", |d| d["window"] = json!(100_000_000_000u64));
    let server = TestServer::start_with(config.clone()).await;
    let (status, list) = server.get_json("/v1/streams").await;
    assert_eq!(status, 200);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["id"], "bad");
    assert_eq!(list[0]["state"], "quarantined");
    assert!(list[0]["reason"].as_str().unwrap().contains("window"), "{}", list[0]);
    assert_eq!(list[1]["definition"]["id"], "good");
    // The quarantined stream refuses everything but delete, with 409 naming the reason.
    for (method, path, body) in [
        ("GET", "/v1/streams/bad", None),
        ("GET", "/v1/streams/bad/model", None),
        ("POST", "/v1/streams/bad/samples", Some(common::batch(2, 100, &rows[100..110], 0.1))),
        ("POST", "/v1/streams", Some(two_channels(json!({"id": "bad"})))),
    ] {
        let request = server.http.request(method.parse().unwrap(), server.url(path));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let r = request.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 409, "{method} {path}");
        let problem: Value = r.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains("quarantined"), "{problem}");
    }
    // The other stream continues where it was.
    server.ingest("good", &common::batch(2, 100, &rows[100..200], 0.1)).await;
    let (_, good) = server.get_json("/v1/streams/good").await;
    assert_eq!(good["status"]["samples_accepted"], 200);
    server.stop().await;

    // Restarting keeps it quarantined (its records were left as they were); deleting it
    // removes them, and the next start has only the good stream.
    let server = TestServer::start_with(config.clone()).await;
    let (_, list) = server.get_json("/v1/streams").await;
    assert_eq!(list[0]["state"], "quarantined", "{list}");
    let r = server.http.delete(server.url("/v1/streams/bad")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let r = server.http.delete(server.url("/v1/streams/bad")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    server.stop().await;
    let server = TestServer::start_with(config).await;
    let (_, list) = server.get_json("/v1/streams").await;
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|s| s["definition"]["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["good"]);
    server.stop().await;
}
