//! The protobuf wire forms end to end: the schemas compile into the types the server uses
//! (and nothing duplicates them by hand), protobuf ingest over HTTP and over WebSocket
//! builds the same model, bit for bit, as JSON ingest of the same samples, refusals have
//! the JSON statuses, and the model, modes and predictions read in protobuf hold the same
//! content as in JSON. Property tests of the conversions live in `wire_protobuf/`.

mod common;
#[path = "wire_protobuf/roundtrip.rs"]
mod roundtrip;

use common::{TestServer, van_der_pol, vdp_definition};
use futures_util::{SinkExt, StreamExt};
use koopstream::wire::documents::{ModesResponse, PredictRequest, PredictResponse, TrackedModesResponse};
use koopstream::wire::model_doc::ModelDoc;
use koopstream::wire::pb::server_message::Message as Server;
use koopstream::wire::streams::IngestAckDoc;
use koopstream::wire::{PROTOBUF, pb};
use prost::Message as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const TS: f64 = 0.1;
const SAMPLES: usize = 600;
const CHUNK: usize = 50;

/// Sample k lacks its second channel (JSON null, protobuf NaN).
fn lacks_x2(k: usize) -> bool {
    k % 97 == 13
}

/// Sample k is flagged bad in protobuf (a row of nulls in JSON).
fn flagged(k: usize) -> bool {
    k % 101 == 50
}

fn json_batch(seq: u64, start: usize, rows: &[[f64; 2]]) -> Value {
    let x: Vec<Value> = (start..)
        .zip(rows)
        .map(|(k, r)| match (flagged(k), lacks_x2(k)) {
            (true, _) => json!([null, null]),
            (false, true) => json!([r[0], null]),
            (false, false) => json!([r[0], r[1]]),
        })
        .collect();
    json!({"seq": seq, "t0": start as f64 * TS, "x": x})
}

fn proto_batch(seq: u64, start: usize, rows: &[[f64; 2]]) -> pb::SampleBatch {
    let x = (start..).zip(rows).flat_map(|(k, r)| [r[0], if lacks_x2(k) { f64::NAN } else { r[1] }]).collect();
    let quality = (start..start + rows.len()).map(|k| u32::from(flagged(k))).collect();
    pb::SampleBatch { seq, t0: Some(start as f64 * TS), channels: 2, x, quality, ..Default::default() }
}

async fn post_protobuf(server: &TestServer, stream: &str, body: Vec<u8>, accept: &str) -> reqwest::Response {
    let url = server.url(&format!("/v1/streams/{stream}/samples"));
    server.http.post(url).header("content-type", PROTOBUF).header("accept", accept).body(body).send().await.unwrap()
}

async fn get_bytes(server: &TestServer, path: &str, accept: &str) -> reqwest::Response {
    server.http.get(server.url(path)).header("accept", accept).send().await.unwrap()
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket asking for `subprotocol` (none when empty); checks the server agreed.
async fn connect(server: &TestServer, stream: &str, subprotocol: &'static str) -> Socket {
    let mut request = server.ws_url(stream).into_client_request().unwrap();
    if !subprotocol.is_empty() {
        request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static(subprotocol));
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    let agreed = response.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(agreed.as_deref(), (!subprotocol.is_empty()).then_some(subprotocol));
    socket
}

/// The next protobuf server message that is not a summary.
async fn next_reply(socket: &mut Socket) -> Server {
    loop {
        match socket.next().await.unwrap().unwrap() {
            Message::Binary(bytes) => match pb::ServerMessage::decode(&bytes[..]).unwrap().message.unwrap() {
                Server::Summary(summary) => assert!(summary.version > 0),
                reply => return reply,
            },
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }
}

async fn status(server: &TestServer, stream: &str) -> Value {
    server.get_json(&format!("/v1/streams/{stream}")).await.1["status"].clone()
}

#[test]
fn the_schemas_compile_into_the_types_the_server_uses_and_nothing_duplicates_them() {
    // Every message of every schema has its generated type (this list fails to compile if
    // the build did not generate one, and the count below catches a message added later).
    let generated = [
        std::any::type_name::<pb::Matrix>(),
        std::any::type_name::<pb::Complex>(),
        std::any::type_name::<pb::DoubleList>(),
        std::any::type_name::<pb::Problem>(),
        std::any::type_name::<pb::SampleBatch>(),
        std::any::type_name::<pb::IngestAck>(),
        std::any::type_name::<pb::IngestError>(),
        std::any::type_name::<pb::ModeBrief>(),
        std::any::type_name::<pb::ModelSummary>(),
        std::any::type_name::<pb::ServerMessage>(),
        std::any::type_name::<pb::Standardisation>(),
        std::any::type_name::<pb::Exponents>(),
        std::any::type_name::<pb::Rbf>(),
        std::any::type_name::<pb::Fourier>(),
        std::any::type_name::<pb::Dictionary>(),
        std::any::type_name::<pb::Eigenvalue>(),
        std::any::type_name::<pb::ModelDoc>(),
        std::any::type_name::<pb::ModeFlags>(),
        std::any::type_name::<pb::Mode>(),
        std::any::type_name::<pb::ModesResponse>(),
        std::any::type_name::<pb::Interval>(),
        std::any::type_name::<pb::Reading>(),
        std::any::type_name::<pb::AlarmChange>(),
        std::any::type_name::<pb::ModeChanged>(),
        std::any::type_name::<pb::TrackedMode>(),
        std::any::type_name::<pb::TrackedModesResponse>(),
        std::any::type_name::<pb::PredictStart>(),
        std::any::type_name::<pb::PredictRequest>(),
        std::any::type_name::<pb::PredictResponse>(),
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut declared = Vec::new();
    for entry in std::fs::read_dir(root.join("proto/koopstream/v1")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(text.contains("syntax = \"proto3\";") && text.contains("package koopstream.v1;"));
        declared.extend(
            text.lines().filter_map(|l| l.strip_prefix("message ")?.split_whitespace().next().map(str::to_owned)),
        );
    }
    declared.sort();
    let mut names: Vec<String> = generated.iter().map(|n| n.rsplit("::").next().unwrap().to_owned()).collect();
    names.sort();
    assert_eq!(declared, names);
    // The generated code is included once, and no source derives a protobuf message itself.
    let mut includes = Vec::new();
    let mut stack = vec![root.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let derives_prost = text.lines().any(|l| l.contains("derive(") && l.contains("prost"));
                assert!(!derives_prost, "{} hand-writes a wire type", path.display());
                if text.contains("include!(concat!(env!(\"OUT_DIR\")") {
                    includes.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
    }
    assert_eq!(includes, ["src/wire/src/lib.rs"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_over_http_and_websocket_builds_the_json_model_bit_for_bit() {
    let samples = van_der_pol(SAMPLES, TS);
    let server = TestServer::start().await;
    for stream in ["json", "http-pb", "ws-pb"] {
        server.create(vdp_definition(stream)).await;
    }
    let mut socket = connect(&server, "ws-pb", "koopstream.v1.proto").await;
    let missing = (0..SAMPLES).filter(|&k| flagged(k) || lacks_x2(k)).count() as u64;
    for (i, chunk) in samples.chunks(CHUNK).enumerate() {
        let (seq, start) = (i as u64 + 1, i * CHUNK);
        let json_ack = server.ingest("json", &json_batch(seq, start, chunk)).await;
        // Over HTTP, every other acknowledgement in protobuf; the stream id named once.
        let mut message = proto_batch(seq, start, chunk);
        if i == 3 {
            message.stream_id = "http-pb".into();
        }
        let response =
            post_protobuf(&server, "http-pb", message.encode_to_vec(), if i % 2 == 0 { PROTOBUF } else { "*/*" }).await;
        assert_eq!(response.status().as_u16(), 200);
        let http_ack: Value = if i % 2 == 0 {
            assert_eq!(response.headers()["content-type"], PROTOBUF);
            let ack = pb::IngestAck::decode(response.bytes().await.unwrap()).unwrap();
            serde_json::to_value(IngestAckDoc::from(&koopstream::service::command::IngestAck::try_from(&ack).unwrap()))
                .unwrap()
        } else {
            response.json().await.unwrap()
        };
        socket.send(Message::binary(proto_batch(seq, start, chunk).encode_to_vec())).await.unwrap();
        let Server::Ack(ws_ack) = next_reply(&mut socket).await else { panic!("expected an acknowledgement") };
        let ws_ack = serde_json::to_value(IngestAckDoc::from(
            &koopstream::service::command::IngestAck::try_from(&ws_ack).unwrap(),
        ))
        .unwrap();
        assert_eq!(http_ack, json_ack, "batch {seq}");
        assert_eq!(ws_ack, json_ack, "batch {seq}");
    }
    socket.close(None).await.unwrap();

    let expected = server.http.get(server.url("/v1/streams/json/model")).send().await.unwrap().text().await.unwrap();
    for stream in ["http-pb", "ws-pb"] {
        let served = server.http.get(server.url(&format!("/v1/streams/{stream}/model"))).send().await.unwrap();
        assert_eq!(served.text().await.unwrap(), expected, "{stream}: the model document, byte for byte");
        let status = status(&server, stream).await;
        assert_eq!(status["samples_accepted"], SAMPLES as u64 - missing, "{stream}");
        assert_eq!(status["samples_rejected"]["missing_value"], missing, "{stream}");
    }
    assert_eq!(status(&server, "json").await["samples_rejected"]["missing_value"], missing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_protobuf_batches_have_the_json_statuses() {
    let server = TestServer::start().await;
    server.create(vdp_definition("r")).await;
    let rows = van_der_pol(3, TS);
    let good = proto_batch(1, 0, &rows);
    let cases: [(pb::SampleBatch, u16, &str); 5] = [
        (
            pb::SampleBatch { channels: 3, x: vec![0.0; 9], ..good.clone() },
            422,
            "the batch has 3 channels, the stream has 2",
        ),
        (pb::SampleBatch { stream_id: "other".into(), ..good.clone() }, 422, "for stream `other`"),
        (pb::SampleBatch { x: vec![1.0, f64::INFINITY, 0.0, 0.0, 0.0, 0.0], ..good.clone() }, 422, "not finite"),
        (pb::SampleBatch { x: vec![0.0; 200_002], quality: vec![], ..good.clone() }, 413, "at most 100000"),
        (pb::SampleBatch { x: vec![], quality: vec![], ..good.clone() }, 422, "no samples"),
    ];
    for (message, status, detail) in cases {
        let response = post_protobuf(&server, "r", message.encode_to_vec(), "application/json").await;
        assert_eq!(response.status().as_u16(), status, "{detail}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains(detail), "{problem}");
    }
    let response = post_protobuf(&server, "r", vec![0xff, 0xff, 0xff], PROTOBUF).await;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(response.headers()["content-type"], "application/problem+json");

    // Over the WebSocket: errors as protobuf, the connection stays open.
    let mut socket = connect(&server, "r", "koopstream.v1.proto").await;
    socket.send(Message::binary(vec![0xff, 0xff, 0xff])).await.unwrap();
    let Server::Error(error) = next_reply(&mut socket).await else { panic!("expected an error") };
    assert_eq!((error.seq, error.problem.unwrap().status), (None, 400));
    let wrong = pb::SampleBatch { seq: 5, channels: 1, x: vec![1.0], t0: None, quality: vec![], ..good.clone() };
    socket.send(Message::binary(wrong.encode_to_vec())).await.unwrap();
    let Server::Error(error) = next_reply(&mut socket).await else { panic!("expected an error") };
    assert_eq!((error.seq, error.problem.as_ref().unwrap().status), (Some(5), 422));
    // A JSON text frame is read as JSON; the acknowledgement follows the subprotocol.
    socket.send(Message::text(json_batch(6, 0, &rows).to_string())).await.unwrap();
    let Server::Ack(ack) = next_reply(&mut socket).await else { panic!("expected an acknowledgement") };
    assert_eq!((ack.seq, ack.accepted), (6, 3));
    // Without a subprotocol a binary batch is still read; the answer is the JSON of old.
    let mut plain = connect(&server, "r", "").await;
    plain.send(Message::binary(proto_batch(7, 3, &rows).encode_to_vec())).await.unwrap();
    let reply: Value = serde_json::from_str(plain.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(
        (reply["type"].as_str(), reply["seq"].as_u64(), reply["accepted"].as_u64()),
        (Some("ack"), Some(7), Some(3))
    );
    // Refusals count their samples: 3 + 3 + 3 + 100001 (the oversized batch) for the HTTP
    // batches with rows, 1 each for the empty batch, the two undecodable bodies and the
    // one-sample WebSocket batch.
    assert_eq!(status(&server, "r").await["samples_rejected"]["invalid"], 100_014);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_modes_and_predictions_in_protobuf_hold_the_json_content() {
    let server = TestServer::start().await;
    server.create(vdp_definition("m")).await;
    let samples = van_der_pol(400, TS);
    for (i, chunk) in samples.chunks(100).enumerate() {
        server.ingest("m", &common::batch(i as u64 + 1, i * 100, chunk, TS)).await;
    }
    let json = get_bytes(&server, "/v1/streams/m/model", "application/json").await;
    let tag = json.headers()["etag"].clone();
    let json_doc: ModelDoc = json.json().await.unwrap();
    for (path, accept) in [("/v1/streams/m/model", PROTOBUF), ("/v1/streams/m/model?format=protobuf", "*/*")] {
        let response = get_bytes(&server, path, accept).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["content-type"], PROTOBUF);
        assert_eq!(response.headers()["etag"], tag);
        assert_eq!(response.headers()["vary"], "accept");
        let doc = pb::ModelDoc::decode(response.bytes().await.unwrap()).unwrap();
        assert_eq!(ModelDoc::try_from(&doc).unwrap(), json_doc);
    }
    let cached =
        server.http.get(server.url("/v1/streams/m/model")).header("accept", PROTOBUF).header("if-none-match", tag);
    assert_eq!(cached.send().await.unwrap().status().as_u16(), 304);
    // JSON stays the default, and wins when preferred.
    let preferred =
        get_bytes(&server, "/v1/streams/m/modes?all=true", "application/json, application/x-protobuf;q=0.5").await;
    let json_modes: ModesResponse = preferred.json().await.unwrap();
    let response = get_bytes(&server, "/v1/streams/m/modes?all=true", PROTOBUF).await;
    assert_eq!(response.headers()["content-type"], PROTOBUF);
    let modes = pb::ModesResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(ModesResponse::try_from(&modes).unwrap(), json_modes);
    assert!(!json_modes.modes.is_empty());
    // The tracked modes, by default, in both forms.
    let json_tracked: TrackedModesResponse =
        get_bytes(&server, "/v1/streams/m/modes", "*/*").await.json().await.unwrap();
    let response = get_bytes(&server, "/v1/streams/m/modes", PROTOBUF).await;
    let tracked = pb::TrackedModesResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(TrackedModesResponse::from(&tracked), json_tracked);

    let request = json!({"horizon": 5, "mode": "relift", "start": {"x": [[1.0, 0.5]], "t": 2.0}});
    let json_prediction: PredictResponse =
        server.post_json("/v1/streams/m/predict", &request).await.json().await.unwrap();
    let request: PredictRequest = serde_json::from_value(request).unwrap();
    let message = pb::PredictRequest::try_from(&request).unwrap();
    let response = server
        .http
        .post(server.url("/v1/streams/m/predict"))
        .header("content-type", PROTOBUF)
        .header("accept", PROTOBUF)
        .body(message.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let prediction = pb::PredictResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(PredictResponse::try_from(&prediction).unwrap(), json_prediction);
    let garbage =
        server.http.post(server.url("/v1/streams/m/predict")).header("content-type", PROTOBUF).body(vec![0xff]);
    assert_eq!(garbage.send().await.unwrap().status().as_u16(), 400);
}
