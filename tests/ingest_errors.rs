//! End to end: a type or value error in any body format is answered with the status the
//! one rule gives it (422 when it can be located at a field, 400 when the body is not a
//! document of its media type) and a problem whose `pointer` names the place; the refused
//! samples, not the refused requests, are counted in `samples_rejected`.

mod common;

use common::{TestServer, vdp_definition};
use futures_util::{SinkExt, StreamExt};
use koopstream::wire::{PROTOBUF, pb};
use prost::Message as _;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const SAMPLES: &str = "/v1/streams/v/samples";
/// NDJSON and CSV batches take their seq from the query.
const SAMPLES_SEQ_1: &str = "/v1/streams/v/samples?seq=1";

/// Asserts a problem with this status and pointer (`None`: no pointer member), the pointer
/// also named in the detail.
async fn expect(response: reqwest::Response, status: u16, pointer: Option<&str>, case: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "{case}");
    assert_eq!(response.headers()["content-type"], "application/problem+json", "{case}");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], status, "{case}: {problem}");
    assert_eq!(problem["pointer"].as_str(), pointer, "{case}: {problem}");
    if let Some(pointer) = pointer {
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(&format!("(at `{pointer}`)")), "{case}: {detail}");
    }
    problem
}

async fn invalid_samples(server: &TestServer) -> f64 {
    server.metric_sum("koopstream_samples_rejected_total", "reason=\"invalid\"").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_and_value_errors_name_their_field_in_every_format() {
    let server = TestServer::start().await;
    server.create(vdp_definition("v")).await;
    let json = |body: &'static str| server.post_body(SAMPLES, "application/json", body);
    let ndjson = |body: &'static str| server.post_body(SAMPLES_SEQ_1, "application/x-ndjson", body);
    let csv = |body: &'static str| server.post_body(SAMPLES_SEQ_1, "text/csv", body);
    let protobuf = |body: Vec<u8>| server.post_body(SAMPLES, PROTOBUF, body);

    // JSON: a NaN literal, a string number, a wrong row length; a body that is not JSON.
    let before = invalid_samples(&server).await;
    expect(json(r#"{"seq":1,"t0":0,"x":[[1,2],[3,4],[5,6],[7,NaN]]}"#).await, 422, Some("/x/3/1"), "JSON NaN").await;
    // The four samples of the refused batch are counted, not one request.
    assert_eq!(invalid_samples(&server).await - before, 4.0);
    expect(json(r#"{"seq":1,"t0":0,"x":[[1,"2.0"]]}"#).await, 422, Some("/x/0/1"), "JSON string").await;
    expect(json(r#"{"seq":1,"t0":0,"x":[[1,2],[1]]}"#).await, 422, Some("/x/1"), "JSON row").await;
    expect(json(r#"{"t0":0,"x":[[1,2]]}"#).await, 422, Some("/seq"), "JSON missing seq").await;
    expect(json("not json").await, 400, None, "not JSON").await;

    // NDJSON: the 1-based line number, then the path inside the line.
    let before = invalid_samples(&server).await;
    expect(
        ndjson("{\"t\":0,\"x\":[1,2]}\n{\"t\":1,\"x\":[3,NaN]}\n{\"t\":2,\"x\":[5,6]}\n").await,
        422,
        Some("/2/x/1"),
        "NDJSON NaN",
    )
    .await;
    assert_eq!(invalid_samples(&server).await - before, 3.0);
    expect(ndjson("{\"t\":0,\"x\":[1,\"2.0\"]}\n").await, 422, Some("/1/x/1"), "NDJSON string").await;
    expect(ndjson("{\"t\":0,\"x\":[1,2]}\n{\"t\":1,\"x\":[3]}\n").await, 422, Some("/2/x"), "NDJSON row").await;
    expect(ndjson("{\"t\":0,\"x\":[1,2]}\nhello\n").await, 400, Some("/2"), "NDJSON line not JSON").await;

    // CSV: the 1-based line number (the header is line 1), then the column. `NaN` is the
    // grammar's missing value, so the non-numbers here are text and an infinity.
    let before = invalid_samples(&server).await;
    expect(csv("t,x1,x2\n0,1,2\n1,3,abc\n2,5,6\n").await, 422, Some("/3/x2"), "CSV text").await;
    assert_eq!(invalid_samples(&server).await - before, 3.0);
    expect(csv("t,x1,x2\n0,1,inf\n").await, 422, Some("/2/x2"), "CSV infinity").await;
    expect(csv("t,x1,x2\n0,1,2\n1,3\n").await, 422, Some("/3"), "CSV row").await;
    expect(csv("").await, 422, Some("/1"), "CSV empty").await;

    // Protobuf: the message's field names; packed values by index.
    let good =
        pb::SampleBatch { seq: 1, t0: Some(0.0), channels: 2, x: vec![1.0, 2.0, 3.0, 4.0], ..Default::default() };
    let infinite = pb::SampleBatch { x: vec![1.0, 2.0, 3.0, f64::INFINITY], ..good.clone() };
    let before = invalid_samples(&server).await;
    expect(protobuf(infinite.encode_to_vec()).await, 422, Some("/x/3"), "protobuf infinity").await;
    assert_eq!(invalid_samples(&server).await - before, 2.0);
    // A string where the packed doubles belong: field 6 (`x`) as a varint.
    let mut typed = good.encode_to_vec();
    typed.extend([0x30, 0x01]);
    expect(protobuf(typed).await, 422, Some("/x"), "protobuf wrong type").await;
    let ragged = pb::SampleBatch { x: vec![1.0, 2.0, 3.0], ..good.clone() };
    expect(protobuf(ragged.encode_to_vec()).await, 422, Some("/x"), "protobuf row").await;
    expect(protobuf(vec![0xff, 0xff, 0xff]).await, 400, None, "not protobuf").await;

    // Stream definitions and predict requests follow the same rule.
    let definition = server.post_body("/v1/streams", "application/json", r#"{"channels":[{"name":"a"}],"ts":"0.1"}"#);
    expect(definition.await, 422, Some("/ts"), "definition string").await;
    let definition =
        server.post_body("/v1/streams", "application/json", r#"{"channels":[{"name":"a"},{"name":"a"}],"ts":1}"#);
    expect(definition.await, 422, Some("/channels/1/name"), "definition name").await;
    let predict =
        server.post_body("/v1/streams/v/predict", "application/json", r#"{"horizon":2,"start":{"x":[[1,NaN]]}}"#);
    expect(predict.await, 422, Some("/start/x/0/1"), "predict NaN").await;

    // The WebSocket answers the same problems, pointer included, in either encoding.
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("v")).await.unwrap();
    socket.send(Message::text(r#"{"seq":9,"t0":0,"x":[[1,2],[3,NaN]]}"#)).await.unwrap();
    let Some(Ok(Message::Text(reply))) = socket.next().await else { panic!("expected a text reply") };
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(
        (reply["problem"]["status"].as_u64(), reply["problem"]["pointer"].as_str()),
        (Some(422), Some("/x/1/1"))
    );
    socket.send(Message::binary(infinite.encode_to_vec())).await.unwrap();
    let Some(Ok(Message::Text(reply))) = socket.next().await else { panic!("expected a text reply") };
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!((reply["seq"].as_u64(), reply["problem"]["pointer"].as_str()), (Some(1), Some("/x/3")));
    socket.close(None).await.unwrap();

    // None of it was applied.
    let (_, status) = server.get_json("/v1/streams/v").await;
    assert_eq!(status["status"]["samples_accepted"], 0);
    server.stop().await;
}
