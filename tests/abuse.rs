//! Abuse against the real binary, measured from outside (its resident memory from /proc):
//! a thousand idle WebSockets, a client sending maximum-size frames as fast as it can, and
//! a client that reads nothing while other streams go on. The figures are printed (run with
//! `--nocapture`) and recorded in EXPERIMENTS.md; the bounds asserted are a few times what
//! was measured, so a leak or a per-connection buffer of the wrong size fails.

mod common;

use std::time::{Duration, Instant};

use common::child::ChildServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const TS: f64 = 0.02;

async fn create(http: &reqwest::Client, server: &ChildServer, id: &str) {
    let definition = json!({"id": id, "channels": [{"name": "a"}, {"name": "b"}], "ts": TS,
                            "dictionary": "state", "warmup": 100});
    let r = http.post(server.url("/v1/streams")).json(&definition).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
}

fn rows(start: usize, count: usize) -> Vec<[f64; 2]> {
    (start..start + count).map(|k| [(k as f64 * 0.3).sin(), (k as f64 * 0.17).cos()]).collect()
}

fn batch(seq: u64, start: usize, count: usize) -> Value {
    json!({"seq": seq, "t0": start as f64 * TS, "x": rows(start, count)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_websockets_cost_bounded_memory() {
    let server = ChildServer::start(&[]);
    let http = reqwest::Client::new();
    create(&http, &server, "idle").await;
    let baseline = server.memory_kib("VmRSS");
    let mut sockets = Vec::new();
    for _ in 0..10 {
        let connecting = (0..100).map(|_| tokio_tungstenite::connect_async(server.ws_url("idle")));
        for result in futures_util::future::join_all(connecting).await {
            sockets.push(result.unwrap().0);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let open = server.memory_kib("VmRSS");
    let per_connection = (open.saturating_sub(baseline)) as f64 / 1000.0;
    // Every one is still served: one of them sends a batch and is acknowledged.
    let socket = sockets.last_mut().unwrap();
    socket.send(Message::text(batch(1, 0, 10).to_string())).await.unwrap();
    let ack = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap().unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("\"accepted\":10"), "{ack:?}");
    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let metrics = http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("koopstream_websocket_connections 1000"), "the gauge counts them");
    let peak = server.memory_kib("VmHWM");
    println!(
        "1000 idle WebSockets: resident {baseline} KiB before, {open} KiB open ({per_connection:.1} KiB per connection), peak {peak} KiB"
    );
    assert!(per_connection < 64.0, "{per_connection:.1} KiB per idle WebSocket");
    assert!(peak < baseline + 256 * 1024, "peak {peak} KiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximum_size_frames_as_fast_as_possible_stay_within_bounded_memory() {
    const LIMIT: usize = 1 << 20;
    let server = ChildServer::start(&[("KOOPSTREAM_LIMITS__MAX_BODY_BYTES", "1048576")]);
    let http = reqwest::Client::new();
    create(&http, &server, "flood").await;
    // The largest batch that fits in one message.
    let mut count = 40_000;
    let frame = loop {
        let text = batch(1, 0, count).to_string();
        if text.len() <= LIMIT {
            break text;
        }
        count -= 1000;
    };
    let baseline = server.memory_kib("VmRSS");
    let (socket, _) = tokio_tungstenite::connect_async(server.ws_url("flood")).await.unwrap();
    let (mut sink, mut source) = socket.split();
    const FRAMES: u64 = 40;
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let mut acks = 0;
        while acks < FRAMES {
            let message = source.next().await.unwrap().unwrap();
            if message.to_text().unwrap().contains("\"ack\"") {
                acks += 1;
            }
        }
        acks
    });
    for seq in 1..=FRAMES {
        let start = (seq as usize - 1) * count;
        let text = batch(seq, start, count).to_string();
        assert!(text.len() <= LIMIT + 64, "frame {} bytes", text.len());
        sink.send(Message::text(text)).await.unwrap();
    }
    assert_eq!(tokio::time::timeout(Duration::from_secs(300), reader).await.unwrap().unwrap(), FRAMES);
    let seconds = started.elapsed().as_secs_f64();
    let peak = server.memory_kib("VmHWM");
    println!(
        "{FRAMES} frames of {} bytes ({count} samples each) in {seconds:.1} s: resident {baseline} KiB before, peak {peak} KiB",
        frame.len()
    );
    // At most 32 frames in flight on the connection and 64 in the stream's queue, each
    // parsed into count x 2 doubles (0.4 MB), plus one message buffer: about 40 MB at worst.
    assert!(peak < baseline + 128 * 1024, "peak {peak} KiB");

    // One byte over the limit ends the connection (with a close frame, its code is 1009);
    // nothing of it is acknowledged.
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("flood")).await.unwrap();
    // The server may end the connection while the message is still being written (a reset
    // on send): that is the refusal too.
    let oversized = Message::text(format!("{}{}", frame, " ".repeat(LIMIT + 1 - frame.len())));
    let sent = socket.send(oversized).await.is_ok();
    if sent {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("the connection ends") {
                Some(Ok(Message::Close(Some(frame)))) => {
                    assert_eq!(u16::from(frame.code), 1009, "{frame:?}");
                    break;
                }
                Some(Ok(Message::Text(text))) => {
                    assert!(!text.contains("\"ack\""), "an oversized message was acknowledged")
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => break,
            }
        }
    }
    let (status, _) = (http.get(server.url("/healthz")).send().await.unwrap().status().as_u16(), ());
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_nothing_does_not_stall_other_streams() {
    let server = ChildServer::start(&[]);
    let http = reqwest::Client::new();
    create(&http, &server, "slow").await;
    create(&http, &server, "fast").await;
    // A client with a tiny receive window that sends and never reads its acknowledgements.
    let address: std::net::SocketAddr = server.address.parse().unwrap();
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let tcp = tcp.connect(address).await.unwrap();
    let (socket, _) = tokio_tungstenite::client_async(server.ws_url("slow"), tcp).await.unwrap();
    let (mut sink, source) = socket.split();
    let flooding = tokio::spawn(async move {
        for seq in 1..=100_000u64 {
            let start = seq as usize - 1;
            if sink.send(Message::text(batch(seq, start, 1).to_string())).await.is_err() {
                return;
            }
        }
    });
    // Let it fill every buffer between the two.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!flooding.is_finished(), "the reader-less client was not held back");
    let mut slowest = Duration::ZERO;
    for seq in 1..=50u64 {
        let started = Instant::now();
        let r = http.post(server.url("/v1/streams/fast/samples")).json(&batch(seq, (seq as usize - 1) * 20, 20)).send();
        let r = tokio::time::timeout(Duration::from_secs(10), r).await.expect("an ingest stalled").unwrap();
        assert_eq!(r.status().as_u16(), 200);
        slowest = slowest.max(started.elapsed());
    }
    // Readers of the stalled stream are not held either.
    let r = tokio::time::timeout(Duration::from_secs(10), http.get(server.url("/v1/streams/slow")).send()).await;
    assert_eq!(r.expect("status of the stalled stream").unwrap().status().as_u16(), 200);
    println!("50 ingests beside a client that reads nothing: slowest {} ms", slowest.as_millis());
    assert!(slowest < Duration::from_secs(2), "slowest ingest {slowest:?}");
    flooding.abort();
    drop(source);
}
