//! End to end: every error status the API promises, each as problem+json naming what was
//! wrong, and none of them changing the model; retried seqs applied once; a batch with one
//! bad row refused whole; refusals among WebSocket frames sent ahead answered in order.

mod common;

use common::{TestServer, batch, model, scratch_dir, van_der_pol, vdp_definition};
use futures_util::{SinkExt, StreamExt};
use koopstream::config::ServiceConfig;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const TS: f64 = 0.1;

/// Asserts a problem+json answer with the status, and a detail containing `needle`.
async fn expect_problem(response: reqwest::Response, status: u16, needle: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "expected {status} for `{needle}`");
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().unwrap().starts_with("urn:koopstream:problem:"));
    assert!(body["title"].is_string());
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(needle), "detail `{detail}` should mention `{needle}`");
    if status == 429 {
        assert!(retry_after.is_some(), "429 carries Retry-After");
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_a_problem_and_changes_no_model() {
    let config = ServiceConfig {
        limits: koopstream::config::Limits { max_body_bytes: 64 * 1024, max_batch_samples: 500, ..Default::default() },
        ..Default::default()
    };
    let server = TestServer::start_with(config).await;
    server.create(vdp_definition("v")).await;
    let samples = van_der_pol(400, TS);
    server.ingest("v", &batch(1, 0, &samples, TS)).await;
    let before = model(&server, "v").await;
    let samples_url = "/v1/streams/v/samples";
    let post = |body: String, content_type: &'static str| {
        server.http.post(server.url(samples_url)).header("content-type", content_type).body(body).send()
    };

    // 400: a body that is not JSON at all, or whose error lies outside any field.
    expect_problem(post("seq=2".into(), "application/json").await.unwrap(), 400, "malformed").await;
    expect_problem(post("{\"seq\": 2, \"x\": [[1, 2]]}}".into(), "application/json").await.unwrap(), 400, "trailing")
        .await;
    // 422 with the field's pointer: a body cut off inside `x`, a batch without seq.
    let cut =
        expect_problem(post("{\"seq\": 2, \"x\": [[1,".into(), "application/json").await.unwrap(), 422, "EOF").await;
    assert_eq!(cut["pointer"], "/x/0");
    let no_seq = expect_problem(post("{\"x\": [[1, 2]]}".into(), "application/json").await.unwrap(), 422, "seq").await;
    assert_eq!(no_seq["pointer"], "/seq");
    // 404: unknown stream and unknown route.
    expect_problem(server.post_json("/v1/streams/nope/samples", &batch(2, 400, &samples[..2], TS)).await, 404, "nope")
        .await;
    expect_problem(server.http.get(server.url("/v2/things")).send().await.unwrap(), 404, "/v2/things").await;
    expect_problem(server.http.get(server.url("/v1/streams/nope/model")).send().await.unwrap(), 404, "nope").await;
    // 405 on a known route.
    expect_problem(server.http.put(server.url("/v1/streams")).send().await.unwrap(), 405, "PUT").await;
    // 409: the same id with another definition; a stream without a model yet.
    let mut other = vdp_definition("v");
    other["mu"] = json!(5.0);
    expect_problem(server.post_json("/v1/streams", &other).await, 409, "different definition").await;
    let same = server.post_json("/v1/streams", &vdp_definition("v")).await;
    assert_eq!(same.status().as_u16(), 200, "an identical create is idempotent");
    server.create(vdp_definition("fresh")).await;
    expect_problem(server.http.get(server.url("/v1/streams/fresh/model")).send().await.unwrap(), 409, "warming up")
        .await;
    // 413: a body over the limit, and a batch with too many samples.
    let huge = format!("{{\"seq\": 3, \"x\": [{}]}}", vec!["[1.0, 2.0]"; 10_000].join(","));
    expect_problem(post(huge, "application/json").await.unwrap(), 413, "limit").await;
    let many = json!({"seq": 3, "x": vec![[1.0, 2.0]; 501]}).to_string();
    expect_problem(post(many, "application/json").await.unwrap(), 413, "at most 500").await;
    // 415: a media type the endpoint does not take.
    expect_problem(post("1,2".into(), "text/plain").await.unwrap(), 415, "text/plain").await;
    let r =
        server.http.post(server.url("/v1/streams")).header("content-type", "text/csv").body("x").send().await.unwrap();
    expect_problem(r, 415, "application/json").await;
    // 422: wrong channel count, a bad row among good ones, non-finite CSV, bad options.
    let wrong = json!({"seq": 4, "x": [[1.0, 2.0, 3.0]]}).to_string();
    expect_problem(post(wrong, "application/json").await.unwrap(), 422, "row 0 has 3 values").await;
    let one_bad_row = json!({"seq": 5, "t0": 40.0, "x": [[1.0, 2.0], [1.0, 2.0], [1.0], [1.0, 2.0]]}).to_string();
    expect_problem(post(one_bad_row, "application/json").await.unwrap(), 422, "row 2").await;
    let r = server.post_body("/v1/streams/v/samples?seq=6", "text/csv", "t,x1,x2\n40,1,inf\n").await;
    expect_problem(r, 422, "column `x2`").await;
    let mut bad = vdp_definition("w");
    bad["forgetting"] = json!(2.0);
    expect_problem(server.post_json("/v1/streams", &bad).await, 422, "field `forgetting`").await;
    expect_problem(server.post_json("/v1/streams/v/predict", &json!({"horizon": 0})).await, 422, "horizon").await;
    expect_problem(
        server.post_json("/v1/streams/v/predict", &json!({"horizon": 2, "start": {"x": [[1.0]]}})).await,
        422,
        "start.x",
    )
    .await;

    // None of that touched the model.
    let after = model(&server, "v").await;
    assert_eq!(before, after, "rejected requests change no model");
    let (_, status) = server.get_json("/v1/streams/v").await;
    assert_eq!(status["status"]["version"], 1);
    assert_eq!(status["status"]["samples_accepted"], 400);
    assert!(status["status"]["samples_rejected"]["invalid"].as_u64().unwrap() >= 6);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_and_changes_nothing_it_refused() {
    let config = ServiceConfig {
        limits: koopstream::config::Limits { queue_capacity: 1, ..Default::default() },
        ..Default::default()
    };
    let server = std::sync::Arc::new(TestServer::start_with(config).await);
    // 10 channels with cubic monomials: N' = 286, so a 1000-sample batch keeps the owner busy.
    let channels: Vec<Value> = (1..=10).map(|i| json!({"name": format!("c{i}")})).collect();
    server.create(json!({"id": "big", "channels": channels, "ts": 0.01, "dictionary": "state,const,poly:3", "warmup": 10, "mu": 1.0})).await;
    let rows: Vec<Vec<f64>> =
        (0..1000).map(|k| (0..10).map(|i| ((k * (i + 3)) as f64 * 0.013).sin()).collect()).collect();
    let mut tasks = Vec::new();
    for seq in 1..=12u64 {
        let server = server.clone();
        let body = json!({"seq": seq, "t0": seq as f64 * 100.0, "x": rows});
        tasks.push(tokio::spawn(async move { server.post_json("/v1/streams/big/samples", &body).await }));
    }
    let (mut ok, mut full) = (0, 0);
    for task in tasks {
        let response = task.await.unwrap();
        match response.status().as_u16() {
            // The twelve requests race: a seq that arrives after a higher one was applied is
            // neither new nor a retry of an applied batch: refused, and not applied.
            409 => {
                expect_problem(response, 409, "not above the last applied seq").await;
            }
            200 => {
                let ack: Value = response.json().await.unwrap();
                if ack["duplicate"] == false {
                    ok += 1;
                }
            }
            429 => {
                expect_problem(response, 429, "queue of stream `big` is full").await;
                full += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(full > 0 && ok > 0, "applied {ok}, full {full}");
    let (_, status) = server.get_json("/v1/streams/big").await;
    assert_eq!(status["status"]["samples_accepted"], ok * 1000, "only acknowledged batches were applied");
    assert_eq!(status["status"]["samples_rejected"]["queue_full"], full * 1000);
    assert_eq!(status["status"]["batches"], ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_seqs_apply_once_and_out_of_order_samples_are_counted() {
    let server = TestServer::start().await;
    server.create(vdp_definition("v")).await;
    let samples = van_der_pol(300, TS);
    let first = server.ingest("v", &batch(1, 0, &samples[..200], TS)).await;
    let model_after_first = model(&server, "v").await;
    let retry = server.ingest("v", &batch(1, 0, &samples[..200], TS)).await;
    assert_eq!(retry["duplicate"], true);
    assert_eq!(retry["accepted"], 0);
    assert_eq!(retry["version"], first["version"]);
    assert_eq!(model(&server, "v").await, model_after_first, "a retry is not applied twice");
    // A reused seq with other samples is no retry: refused with 409 naming the last
    // applied seq, and nothing changes; so is a lower seq that was never applied.
    let reused = server.post_json("/v1/streams/v/samples", &batch(1, 0, &samples[..10], TS)).await;
    expect_problem(reused, 409, "seq 1 was applied with other samples; the last applied seq is 1").await;
    let lower = server.post_json("/v1/streams/v/samples", &batch(0, 0, &samples[..10], TS)).await;
    expect_problem(lower, 409, "seq 0 is not above the last applied seq 1").await;
    assert_eq!(model(&server, "v").await, model_after_first, "a refused batch changes nothing");
    // New seq, but the first 50 samples lie before the last time stamp: skipped and counted.
    let overlap = server.ingest("v", &batch(2, 150, &samples[150..300], TS)).await;
    assert_eq!((overlap["accepted"].as_u64(), overlap["out_of_order"].as_u64()), (Some(100), Some(50)));
    // A missing value breaks the chain and is counted.
    let gap = server.ingest("v", &json!({"seq": 3, "t0": 30.0, "x": [[1.0, 0.5], [null, 0.4], [0.9, 0.3]]})).await;
    assert_eq!((gap["accepted"].as_u64(), gap["missing_value"].as_u64()), (Some(2), Some(1)));
    let (_, status) = server.get_json("/v1/streams/v").await;
    let s = &status["status"];
    assert_eq!(s["samples_accepted"], 302);
    assert_eq!(s["samples_rejected"]["duplicate"], 200);
    assert_eq!(s["samples_rejected"]["out_of_order"], 50);
    assert_eq!(s["samples_rejected"]["missing_value"], 1);
    assert_eq!(s["last_seq"], 3);
    // Reset restarts the model, bumps the version and clears the seq and time-stamp
    // watermarks, so the same data is applied again.
    let r = server.http.post(server.url("/v1/streams/v/reset")).send().await.unwrap();
    let reset: Value = r.json().await.unwrap();
    assert_eq!(reset["version"], s["version"].as_u64().unwrap() + 1);
    assert_eq!(reset["watermarks_cleared"], true);
    let (_, status) = server.get_json("/v1/streams/v").await;
    assert_eq!(status["status"]["state"], "warming_up");
    assert_eq!(status["status"]["last_seq"], Value::Null);
    let again = server.ingest("v", &batch(1, 0, &samples[..5], TS)).await;
    assert_eq!((again["duplicate"].as_bool(), again["accepted"].as_u64()), (Some(false), Some(5)));
    // With `keep_watermarks=true` they stay: the same batch is then a retry.
    let r = server.http.post(server.url("/v1/streams/v/reset?keep_watermarks=true")).send().await.unwrap();
    let reset: Value = r.json().await.unwrap();
    assert_eq!(reset["watermarks_cleared"], false);
    assert_eq!(server.ingest("v", &batch(1, 0, &samples[..5], TS)).await["duplicate"], true);
    // Delete removes the stream.
    let r = server.http.delete(server.url("/v1/streams/v")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    expect_problem(server.http.get(server.url("/v1/streams/v")).send().await.unwrap(), 404, "`v`").await;
    expect_problem(server.http.delete(server.url("/v1/streams/v")).send().await.unwrap(), 404, "`v`").await;
    server.stop().await;
}

/// What a frame of the pipelined WebSocket test is.
#[derive(Debug, Clone, Copy)]
enum Frame {
    /// A new batch with this seq (20 samples).
    New(u64),
    /// A resend of an earlier batch with this seq.
    Retry(u64),
    /// Truncated JSON.
    Malformed,
    /// Rows of the wrong width, seq 999.
    WrongWidth,
}

/// A client that sends every frame before reading any reply (more frames than a connection
/// keeps in flight) gets exactly one reply per frame, in the order of its frames, refusals
/// and retries included; the stream holds exactly the new batches, and its model equals
/// that of the same batches sent one at a time over HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_sent_ahead_are_answered_once_each_in_order() {
    const FRAMES: usize = 48;
    const ROWS: usize = 20;
    let server = TestServer::start().await;
    server.create(vdp_definition("ahead")).await;
    server.create(vdp_definition("one-by-one")).await;
    let samples = van_der_pol(FRAMES * ROWS, TS);
    let new_batch = |seq: u64| {
        let start = (seq as usize - 1) * ROWS;
        batch(seq, start, &samples[start..start + ROWS], TS)
    };
    let mut plan = Vec::with_capacity(FRAMES);
    let mut seq = 0;
    for i in 0..FRAMES {
        plan.push(match i {
            10 => Frame::Malformed,
            20 => Frame::WrongWidth,
            30 | 31 => Frame::Retry(5),
            _ => {
                seq += 1;
                Frame::New(seq)
            }
        });
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("ahead")).await.unwrap();
    for frame in &plan {
        let text = match *frame {
            Frame::New(seq) | Frame::Retry(seq) => new_batch(seq).to_string(),
            // Not one JSON document (a brace too many): 400, and no seq can be read.
            Frame::Malformed => r#"{"seq": 3, "x": [[1.0, 2.0]]}}"#.to_owned(),
            Frame::WrongWidth => json!({"seq": 999, "x": [[1.0, 2.0, 3.0]]}).to_string(),
        };
        socket.send(Message::text(text)).await.unwrap();
    }
    let mut replies = Vec::with_capacity(FRAMES);
    while replies.len() < FRAMES {
        let message = tokio::time::timeout(std::time::Duration::from_secs(30), socket.next())
            .await
            .expect("a reply within 30 s")
            .unwrap()
            .unwrap();
        let reply: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        if reply["type"] != "summary" {
            replies.push(reply);
        }
    }
    for (frame, reply) in plan.iter().zip(&replies) {
        match *frame {
            Frame::New(seq) => {
                assert_eq!((reply["type"].as_str(), reply["seq"].as_u64()), (Some("ack"), Some(seq)), "{reply}");
                assert_eq!(
                    (reply["duplicate"].as_bool(), reply["accepted"].as_u64()),
                    (Some(false), Some(ROWS as u64))
                );
            }
            Frame::Retry(seq) => {
                assert_eq!((reply["type"].as_str(), reply["seq"].as_u64()), (Some("ack"), Some(seq)), "{reply}");
                assert_eq!(reply["duplicate"], true, "{reply}");
            }
            Frame::Malformed => {
                assert_eq!(reply["type"], "error", "{reply}");
                assert!(reply["seq"].is_null(), "{reply}");
                assert_eq!(reply["problem"]["status"], 400, "{reply}");
            }
            Frame::WrongWidth => {
                assert_eq!((reply["type"].as_str(), reply["seq"].as_u64()), (Some("error"), Some(999)), "{reply}");
                assert_eq!(reply["problem"]["status"], 422, "{reply}");
            }
        }
    }
    socket.close(None).await.unwrap();

    for seq in 1..=seq {
        server.ingest("one-by-one", &new_batch(seq)).await;
    }
    let (_, status) = server.get_json("/v1/streams/ahead").await;
    assert_eq!(status["status"]["version"], seq, "one version per new batch");
    assert_eq!(status["status"]["samples_accepted"], seq * ROWS as u64);
    assert_eq!(model(&server, "ahead").await, model(&server, "one-by-one").await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_without_time_stamps_are_refused_unless_the_stream_allows_them() {
    let server = TestServer::start().await;
    server.create(vdp_definition("v")).await;
    let untimed = json!({"seq": 1, "x": [[1.0, 0.5], [0.9, 0.4]]});
    let r = server.post_json("/v1/streams/v/samples", &untimed).await;
    expect_problem(r, 422, "neither `t` nor `t0`").await;
    let (_, status) = server.get_json("/v1/streams/v").await;
    assert_eq!(
        (status["definition"]["implicit_timing"].as_bool(), status["status"]["samples_accepted"].as_u64()),
        (Some(false), Some(0))
    );
    // NDJSON without `t` on any line is untimed too.
    let r = server.post_body("/v1/streams/v/samples?seq=1", "application/x-ndjson", "{\"x\":[1.0,0.5]}\n").await;
    expect_problem(r, 422, "needs time stamps").await;
    // A stream that allows it takes the samples as following the last one.
    let mut definition = vdp_definition("w");
    definition["implicit_timing"] = json!(true);
    server.create(definition).await;
    assert_eq!(server.ingest("w", &untimed).await["accepted"], 2);
    let (_, status) = server.get_json("/v1/streams/w").await;
    assert_eq!(status["definition"]["implicit_timing"], true);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_stream_closes_its_websockets_at_once_with_a_documented_code() {
    let server = TestServer::start().await;
    server.create(vdp_definition("v")).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("v")).await.unwrap();
    socket.send(Message::text(batch(1, 0, &van_der_pol(10, TS), TS).to_string())).await.unwrap();
    let ack = tokio::time::timeout(std::time::Duration::from_secs(30), socket.next()).await.unwrap().unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("\"ack\""), "{ack:?}");
    // The client sends nothing more: the close must come from the delete alone.
    let r = server.http.delete(server.url("/v1/streams/v")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let closing = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
        .await
        .expect("a close frame without sending anything")
        .unwrap()
        .unwrap();
    let Message::Close(Some(frame)) = closing else { panic!("a close frame, got {closing:?}") };
    assert_eq!((u16::from(frame.code), frame.reason.as_str()), (4410, "stream deleted"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_channel_is_a_flat_line_its_samples_missing_and_counted() {
    let server = TestServer::start().await;
    let mut definition = vdp_definition("v");
    definition["flat_line"] = json!(50);
    server.create(definition).await;
    // x1 sticks at one value from sample 100 on; x2 keeps moving.
    let mut samples = van_der_pol(300, TS);
    let stuck = samples[100][0];
    samples[100..].iter_mut().for_each(|s| s[0] = stuck);
    let ack = server.ingest("v", &batch(1, 0, &samples, TS)).await;
    // The 50th identical value is sample 149: from there on the samples are flat.
    assert_eq!((ack["accepted"].as_u64(), ack["flat_line"].as_u64()), (Some(149), Some(151)));
    assert_eq!(ack["missing_value"], 0);
    let (_, status) = server.get_json("/v1/streams/v").await;
    assert_eq!(status["status"]["samples_rejected"]["flat_line"], 151);
    assert_eq!(status["definition"]["flat_line"], 50);
    // The first different value ends the run.
    let moving = van_der_pol(310, TS)[300..].to_vec();
    let ack = server.ingest("v", &batch(2, 300, &moving, TS)).await;
    assert_eq!((ack["accepted"].as_u64(), ack["flat_line"].as_u64()), (Some(10), Some(0)));
    assert_eq!(server.metric_sum("koopstream_samples_rejected_total", "reason=\"flat_line\"").await, 151.0);
    // By default the run is 1000 samples; 0 turns detection off.
    server.create(vdp_definition("w")).await;
    let (_, status) = server.get_json("/v1/streams/w").await;
    assert_eq!(status["definition"]["flat_line"], 1000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spikes_are_gated_as_outliers_counted_and_decided_alike_across_a_restart() {
    let data = scratch_dir("outlier-gate");
    let config = || ServiceConfig { data_dir: data.clone(), ..Default::default() };
    let mut definition = vdp_definition("v");
    definition["outlier_gate"] = json!(8.0);
    // Spikes of 3 (the cycle's amplitude is 2) after warm-up (100) and seeding (50).
    let mut samples = van_der_pol(600, TS);
    for k in [200, 260, 330, 410, 520] {
        samples[k][0] += 3.0;
    }
    let server = TestServer::start_with(config()).await;
    server.create(definition.clone()).await;
    let ack = server.ingest("v", &batch(1, 0, &samples[..300], TS)).await;
    assert_eq!((ack["accepted"].as_u64(), ack["outlier"].as_u64()), (Some(298), Some(2)), "{ack}");
    let (_, status) = server.get_json("/v1/streams/v").await;
    assert_eq!(status["status"]["samples_rejected"]["outlier"], 2);
    assert_eq!(status["status"]["outlier_gate_reopened"], 0);
    assert_eq!(status["definition"]["outlier_gate"], 8.0);
    assert_eq!(server.metric_sum("koopstream_samples_rejected_total", "reason=\"outlier\"").await, 2.0);
    // The bounds are checked at the edge, naming the field; off by default.
    for k in [1.0, -5.0, 101.0] {
        let mut bad = vdp_definition("bad");
        bad["outlier_gate"] = json!(k);
        expect_problem(server.post_json("/v1/streams", &bad).await, 422, "field `outlier_gate`").await;
    }
    server.create(vdp_definition("w")).await;
    assert_eq!(server.get_json("/v1/streams/w").await.1["definition"]["outlier_gate"], 0.0);
    server.stop().await;

    // After a restart the gate's scale and counts come back with the snapshot, and the
    // stream decides as one that never stopped.
    let server = TestServer::start_with(config()).await;
    let ack = server.ingest("v", &batch(2, 300, &samples[300..], TS)).await;
    assert_eq!((ack["accepted"].as_u64(), ack["outlier"].as_u64()), (Some(297), Some(3)), "{ack}");
    let (_, status) = server.get_json("/v1/streams/v").await;
    assert_eq!(status["status"]["samples_rejected"]["outlier"], 5);
    let restarted = model(&server, "v").await;
    server.stop().await;
    let reference = TestServer::start().await;
    reference.create(definition).await;
    reference.ingest("v", &batch(1, 0, &samples[..300], TS)).await;
    reference.ingest("v", &batch(2, 300, &samples[300..], TS)).await;
    let uninterrupted = model(&reference, "v").await;
    assert_eq!(restarted["a"], uninterrupted["a"]);
    assert_eq!(restarted["residual_rms"], uninterrupted["residual_rms"]);
    reference.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_string_that_does_not_fit_is_a_problem_naming_the_parameter() {
    let server = TestServer::start().await;
    server.create(vdp_definition("v")).await;
    let r = server.post_body("/v1/streams/v/samples?seq=-1", "application/x-ndjson", "{\"t\":0,\"x\":[1,2]}\n").await;
    expect_problem(r, 422, "seq").await;
    let r = server.http.post(server.url("/v1/streams/v/reset?keep_watermarks=maybe")).send().await.unwrap();
    expect_problem(r, 422, "keep_watermarks").await;
    let (_, status) = server.get_json("/v1/streams/v").await;
    assert_eq!(status["status"]["version"], 0, "nothing changed");
    // The WebSocket route asked without an upgrade answers a documented problem too.
    let r = server.http.get(server.url("/v1/streams/v/ws")).send().await.unwrap();
    expect_problem(r, 400, "this route takes a WebSocket upgrade").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integral_numbers_are_integers_and_sizes_the_schema_states_are_enforced() {
    let server = TestServer::start().await;
    // JSON has one number type: 406.0 is the integer 406 wherever an integer is expected.
    let mut definition = vdp_definition("i");
    definition["warmup"] = json!(40.0);
    definition["eigen_every"] = json!(1e2);
    let created = server.create(definition).await;
    assert_eq!(created["definition"]["warmup"], 40);
    assert_eq!(created["definition"]["eigen_every"], 100);
    let rows = van_der_pol(60, TS);
    let mut first = batch(0, 0, &rows, TS);
    first["seq"] = json!(406.0);
    let ack = server.ingest("i", &first).await;
    assert_eq!(ack["accepted"], 60, "{ack}");
    let (_, status) = server.get_json("/v1/streams/i").await;
    assert_eq!(status["status"]["last_seq"], 406, "{status}");
    let r = server.post_json("/v1/streams/i/predict", &json!({"horizon": 3.0})).await;
    assert_eq!(r.status().as_u16(), 200);
    // A fraction is not an integer, and nothing changes.
    let mut fractional = batch(407, 60, &rows[..2], TS);
    fractional["seq"] = json!(407.5);
    let problem = expect_problem(server.post_json("/v1/streams/i/samples", &fractional).await, 422, "407.5").await;
    assert_eq!(problem["pointer"], "/seq");
    expect_problem(server.post_json("/v1/streams/i/predict", &json!({"horizon": 2.5})).await, 422, "2.5").await;
    let (_, after) = server.get_json("/v1/streams/i").await;
    assert_eq!(after["status"]["version"], status["status"]["version"]);
    // Sample periods whose Nyquist band overflows, and a band that is not a pair.
    let mut tiny = vdp_definition("tiny");
    tiny["ts"] = json!(5e-324);
    expect_problem(server.post_json("/v1/streams", &tiny).await, 422, "`ts`").await;
    let mut triple = vdp_definition("triple");
    triple["modes"] = json!({"band_hz": [0.1, 0.2, 0.3]});
    expect_problem(server.post_json("/v1/streams", &triple).await, 422, "modes.band_hz").await;
    server.stop().await;
}
