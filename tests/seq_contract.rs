//! The seq contract with producers against the real server: a retry is recognised by its
//! content and survives a restart, a reused seq with other samples is refused with 409, a
//! producer that restarts its numbering does so with a higher epoch (JSON body and NDJSON
//! query), and a stale epoch is refused.

mod common;

use common::{TestServer, batch, scratch_dir, van_der_pol, vdp_definition};
use koopstream::config::ServiceConfig;
use serde_json::{Value, json};

const TS: f64 = 0.1;

async fn refused(server: &TestServer, body: &Value, needle: &str) {
    let r = server.post_json("/v1/streams/v/samples", body).await;
    assert_eq!(r.status().as_u16(), 409, "{body}");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let problem: Value = r.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(needle), "`{detail}` should mention `{needle}`");
}

async fn status(server: &TestServer) -> Value {
    server.get_json("/v1/streams/v").await.1["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_told_from_reused_seqs_across_a_restart_and_epochs_restart_numbering() {
    let data = scratch_dir("seq-contract");
    let config = || ServiceConfig { data_dir: data.clone(), ..Default::default() };
    let samples = van_der_pol(400, TS);
    let server = TestServer::start_with(config()).await;
    server.create(vdp_definition("v")).await;
    for seq in 1..=3u64 {
        let start = (seq as usize - 1) * 50;
        server.ingest("v", &batch(seq, start, &samples[start..start + 50], TS)).await;
    }
    let before = status(&server).await;
    server.stop().await;

    // After a graceful restart the digests come back with the snapshot.
    let server = TestServer::start_with(config()).await;
    let retry = server.ingest("v", &batch(2, 50, &samples[50..100], TS)).await;
    assert_eq!((retry["duplicate"].as_bool(), retry["accepted"].as_u64()), (Some(true), Some(0)));
    // The gateway restarted its counter without saying so: seq 1 again, new samples.
    refused(
        &server,
        &batch(1, 150, &samples[150..200], TS),
        "seq 1 was applied with other samples; the last applied seq is 3",
    )
    .await;
    let after = status(&server).await;
    assert_eq!(after["samples_accepted"], before["samples_accepted"], "a refused batch applies nothing");
    assert_eq!(after["last_seq"], 3);

    // Saying so with an epoch restarts the numbering; the samples are applied.
    let mut body = batch(1, 150, &samples[150..200], TS);
    body["epoch"] = json!(1);
    let ack = server.ingest("v", &body).await;
    assert_eq!((ack["duplicate"].as_bool(), ack["accepted"].as_u64()), (Some(false), Some(50)));
    let s = status(&server).await;
    assert_eq!((s["epoch"].as_u64(), s["last_seq"].as_u64()), (Some(1), Some(1)));
    // The same batch again is a retry in that epoch, and without an epoch too.
    assert_eq!(server.ingest("v", &body).await["duplicate"], true);
    let mut plain = body.clone();
    plain.as_object_mut().unwrap().remove("epoch");
    assert_eq!(server.ingest("v", &plain).await["duplicate"], true);
    // A batch of the old epoch is refused.
    let mut stale = batch(9, 200, &samples[200..250], TS);
    stale["epoch"] = json!(0);
    refused(&server, &stale, "epoch 0 is older than the stream's current producer epoch 1").await;

    // NDJSON (and CSV) carry the epoch in the query, next to the seq.
    let lines: String = samples[200..210]
        .iter()
        .enumerate()
        .map(|(k, r)| format!("{{\"t\":{},\"x\":[{},{}]}}\n", (200 + k) as f64 * TS, r[0], r[1]))
        .collect();
    let r = server.post_body("/v1/streams/v/samples?seq=1&epoch=2", "application/x-ndjson", lines).await;
    assert_eq!(r.status().as_u16(), 200);
    let ack: Value = r.json().await.unwrap();
    assert_eq!(ack["accepted"], 10);
    let s = status(&server).await;
    assert_eq!((s["epoch"].as_u64(), s["last_seq"].as_u64()), (Some(2), Some(1)));
    assert_eq!(s["samples_accepted"], 150 + 50 + 10);

    // The refusals are counted by reason.
    let conflicts = server.metric_sum("koopstream_samples_rejected_total", "reason=\"seq_conflict\"").await;
    assert_eq!(conflicts, 100.0, "two refused batches of 50 samples");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&data);
}
