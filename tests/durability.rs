//! Durability end to end with the real binary: SIGKILL at random moments while several
//! streams ingest over HTTP and WebSocket, restart, resend what was not acknowledged, and
//! compare every model with an uninterrupted run (identical matrices, identical version);
//! graceful restarts leave a short log; a newer store is refused, a damaged stream quarantined.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::child::LoggedProcess;
use common::{TestServer, scratch_dir, van_der_pol, vdp_definition};
use futures_util::{SinkExt, StreamExt};
use redb::ReadableTable;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const TS: f64 = 0.1;
const ROWS: usize = 20;
const BATCHES: usize = 200;
const STREAMS: usize = 4;
/// Batches a WebSocket client sends ahead of its acknowledgements.
const WINDOW: usize = 8;

/// The real binary serving a data directory.
struct Process {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    fn start(data: &Path) -> Result<Self, String> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_koopstream"));
        // Only what the test sets: the runner's KOOPSTREAM_* variables must not leak in.
        for (key, _) in std::env::vars() {
            if key.starts_with("KOOPSTREAM_") {
                command.env_remove(key);
            }
        }
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
            .arg(data)
            .env("KOOPSTREAM_STORAGE__SNAPSHOT_EVERY_SAMPLES", "150");
        let LoggedProcess { child, base, log } = LoggedProcess::spawn(&mut command)?;
        Ok(Self { child, base, log })
    }

    async fn ready(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await
                && r.status().as_u16() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "not ready: {}", self.log.lock().unwrap().join("\n"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill(mut self) {
        let _ = Command::new("kill").args(["-KILL", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }

    fn terminate(mut self) -> String {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "clean exit: {}", self.log.lock().unwrap().join("\n"));
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A test that failed while its server ran must not leave it behind; after a wait
        // the child is reaped and this does nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The batches of stream `s`: a Van der Pol trajectory, different per stream.
fn batches(s: usize) -> Vec<Value> {
    let samples = van_der_pol(BATCHES * ROWS + 37 * s, TS);
    (0..BATCHES)
        .map(|b| {
            let rows: Vec<Vec<f64>> =
                samples[37 * s + b * ROWS..37 * s + (b + 1) * ROWS].iter().map(|x| x.to_vec()).collect();
            json!({"seq": b as u64 + 1, "t0": (b * ROWS) as f64 * TS, "x": rows})
        })
        .collect()
}

/// Sends stream `s`'s batches from `from` on; returns how many were acknowledged in order.
async fn send(base: &str, http: &reqwest::Client, s: usize, from: usize, websocket: bool) -> usize {
    send_counting(base, http, s, from, websocket, &AtomicUsize::new(0)).await
}

/// As [`send`], counting every acknowledgement in `progress` as it arrives.
async fn send_counting(
    base: &str,
    http: &reqwest::Client,
    s: usize,
    from: usize,
    websocket: bool,
    progress: &AtomicUsize,
) -> usize {
    let all = batches(s);
    let id = format!("d{s}");
    let mut acked = from;
    if websocket {
        let url = format!("{}/v1/streams/{id}/ws", base.replacen("http", "ws", 1));
        let Ok((mut socket, _)) = tokio_tungstenite::connect_async(url).await else { return acked };
        // Up to WINDOW batches ahead of the acknowledgements, so the server logs batches
        // queued together in one commit while the kills land.
        let mut sent = from;
        while acked < all.len() {
            while sent < all.len() && sent - acked < WINDOW {
                if socket.send(Message::text(all[sent].to_string())).await.is_err() {
                    return acked;
                }
                sent += 1;
            }
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let reply: Value = serde_json::from_str(&text).unwrap();
                    if reply["type"] == "ack" {
                        assert_eq!(reply["seq"], all[acked]["seq"], "acknowledgements come in order");
                        acked += 1;
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                    assert_ne!(reply["type"], "error", "{reply}");
                }
                Some(Ok(_)) => {}
                _ => return acked,
            }
        }
    } else {
        for batch in &all[from..] {
            match http.post(format!("{base}/v1/streams/{id}/samples")).json(batch).send().await {
                Ok(r) if r.status().is_success() => {
                    acked += 1;
                    progress.fetch_add(1, Ordering::Relaxed);
                }
                Ok(r) => panic!("unexpected status {}", r.status()),
                Err(_) => return acked,
            }
        }
    }
    acked
}

async fn create_all(base: &str, http: &reqwest::Client) {
    for s in 0..STREAMS {
        let r = http.post(format!("{base}/v1/streams")).json(&vdp_definition(&format!("d{s}"))).send().await.unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
}

/// Model documents and versions of every stream.
async fn models(base: &str, http: &reqwest::Client) -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    for s in 0..STREAMS {
        let model: Value =
            http.get(format!("{base}/v1/streams/d{s}/model")).send().await.unwrap().json().await.unwrap();
        let status: Value = http.get(format!("{base}/v1/streams/d{s}")).send().await.unwrap().json().await.unwrap();
        out.push((model, status["status"]["version"].clone()));
    }
    out
}

/// The uninterrupted reference: the same batches, once each, in order.
async fn reference() -> Vec<(Value, Value)> {
    let server = TestServer::start().await;
    create_all(&server.base, &server.http).await;
    for s in 0..STREAMS {
        assert_eq!(send(&server.base, &server.http, s, 0, false).await, BATCHES);
    }
    let out = models(&server.base, &server.http).await;
    server.stop().await;
    out
}

/// A small seeded generator for kill times.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let expected = reference().await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut kills = 0;
    for seed in [11u64, 23, 37, 41, 59] {
        let data = scratch_dir(&format!("crash-{seed}"));
        let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut acked = [0usize; STREAMS];
        let mut created = false;
        let mut rounds = 0;
        loop {
            let process = Process::start(&data).expect("the server starts");
            process.ready(&http).await;
            if !created {
                create_all(&process.base, &http).await;
                created = true;
            }
            // Everything acknowledged before the last kill is there (checked before resending).
            for (s, &a) in acked.iter().enumerate() {
                let status: Value =
                    http.get(format!("{}/v1/streams/d{s}", process.base)).send().await.unwrap().json().await.unwrap();
                let last_seq = status["status"]["last_seq"].as_u64().unwrap_or(0) as usize;
                assert!(last_seq >= a, "seed {seed}: stream d{s} acknowledged {a} batches, recovered {last_seq}");
            }
            let finished = acked.iter().all(|&a| a == BATCHES);
            if finished {
                let got = models(&process.base, &http).await;
                for (s, (g, e)) in got.iter().zip(&expected).enumerate() {
                    assert_eq!(g.1, e.1, "seed {seed}: version of d{s}");
                    assert_eq!(g.0, e.0, "seed {seed}: model of d{s}");
                }
                process.terminate();
                break;
            }
            let progress = Arc::new(AtomicUsize::new(0));
            let clients: Vec<_> = (0..STREAMS)
                .map(|s| {
                    let (base, http, from, progress) = (process.base.clone(), http.clone(), acked[s], progress.clone());
                    tokio::spawn(async move { send_counting(&base, &http, s, from, s % 2 == 0, &progress).await })
                })
                .collect();
            // Kill in the middle of the first rounds, after a random number of
            // acknowledgements (at most half of what is left, so a kill always lands
            // mid-stream whatever the machine's speed); let the last round finish.
            if rounds < 4 {
                let remaining: usize = acked.iter().map(|a| BATCHES - a).sum();
                let target = 1 + (next_random(&mut rng) as usize) % (remaining / 2).max(1);
                let deadline = Instant::now() + Duration::from_secs(60);
                while progress.load(Ordering::Relaxed) < target {
                    assert!(
                        Instant::now() < deadline,
                        "seed {seed}: clients stalled: {}",
                        process.log.lock().unwrap().join("\n")
                    );
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                // And a random few milliseconds more, so the kill also lands between acks.
                tokio::time::sleep(Duration::from_micros(next_random(&mut rng) % 3000)).await;
                process.kill();
                kills += 1;
                for (s, client) in clients.into_iter().enumerate() {
                    acked[s] = client.await.unwrap();
                }
            } else {
                for (s, client) in clients.into_iter().enumerate() {
                    acked[s] = client.await.unwrap();
                }
                process.terminate();
            }
            rounds += 1;
        }
    }
    println!("{kills} kills");
    assert!(kills >= 20, "{kills} kills");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_keeps_the_model_and_leaves_a_short_log() {
    let expected = reference().await;
    let http = reqwest::Client::new();
    let data = scratch_dir("graceful");
    let process = Process::start(&data).unwrap();
    process.ready(&http).await;
    create_all(&process.base, &http).await;
    for s in 0..STREAMS {
        let all = batches(s);
        for batch in &all[..BATCHES / 2] {
            http.post(format!("{}/v1/streams/d{s}/samples", process.base)).json(batch).send().await.unwrap();
        }
    }
    process.terminate();
    let process = Process::start(&data).unwrap();
    process.ready(&http).await;
    let metrics = http.get(format!("{}/metrics", process.base)).send().await.unwrap().text().await.unwrap();
    let log_bytes: f64 =
        metrics.lines().find_map(|l| l.strip_prefix("koopstream_log_bytes ")).unwrap().parse().unwrap();
    assert_eq!(log_bytes, 0.0, "a clean shutdown snapshots every stream and truncates the logs");
    assert!(metrics.contains("koopstream_recovery_seconds "));
    for s in 0..STREAMS {
        assert_eq!(send(&process.base, &http, s, BATCHES / 2, s % 2 == 1).await, BATCHES);
    }
    let got = models(&process.base, &http).await;
    assert_eq!(got, expected, "a graceful restart changes nothing");
    // Deleting a stream deletes its data, across a restart too.
    let r = http.delete(format!("{}/v1/streams/d0", process.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    process.terminate();
    let process = Process::start(&data).unwrap();
    process.ready(&http).await;
    let r = http.get(format!("{}/v1/streams/d0", process.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = http.get(format!("{}/v1/streams/d1", process.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    process.terminate();
}

/// Writes a store with one stream and a few batches, stopped cleanly or killed.
async fn make_store(name: &str, kill: bool) -> PathBuf {
    let http = reqwest::Client::new();
    let data = scratch_dir(name);
    let process = Process::start(&data).unwrap();
    process.ready(&http).await;
    create_all(&process.base, &http).await;
    for batch in batches(0).iter().take(5) {
        http.post(format!("{}/v1/streams/d0/samples", process.base)).json(batch).send().await.unwrap();
    }
    if kill {
        process.kill()
    } else {
        drop(process.terminate())
    }
    data
}

fn assert_clear_failure(data: &Path, why: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_koopstream"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{why}: the server must refuse to start");
    assert!(!stderr.contains("panicked"), "{why}: no panic: {stderr}");
    assert!(stderr.contains("koopstream.redb"), "{why}: the message names the file: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_or_newer_stores_are_refused_or_quarantined_and_left_untouched() {
    // A store written by a newer format is refused and not modified.
    let data = make_store("newer", false).await;
    let file = data.join("koopstream.redb");
    {
        let db = redb::Database::open(&file).unwrap();
        let write = db.begin_write().unwrap();
        write.open_table(redb::TableDefinition::<&str, u64>::new("meta")).unwrap().insert("format", 99).unwrap();
        write.commit().unwrap();
    }
    let before = std::fs::read(&file).unwrap();
    assert_clear_failure(&data, "newer format");
    assert_eq!(std::fs::read(&file).unwrap(), before, "a newer store is not overwritten");

    // A log record that cannot be decoded: its stream is quarantined, named with the record,
    // and the server starts; nothing is discarded.
    let data = make_store("bad-record", true).await;
    let file = data.join("koopstream.redb");
    {
        let db = redb::Database::open(&file).unwrap();
        let write = db.begin_write().unwrap();
        {
            let mut log = write.open_table(redb::TableDefinition::<(&str, u64), &[u8]>::new("log")).unwrap();
            let last = log.last().unwrap().map(|(k, _)| k.value().1).unwrap();
            log.insert(("d0", last), b"garbage".as_slice()).unwrap();
        }
        write.commit().unwrap();
    }
    let count_log = |file: &Path| -> (usize, bool) {
        let db = redb::Database::open(file).unwrap();
        let read = redb::ReadableDatabase::begin_read(&db).unwrap();
        let log = read.open_table(redb::TableDefinition::<(&str, u64), &[u8]>::new("log")).unwrap();
        let entries: Vec<Vec<u8>> = log.iter().unwrap().map(|e| e.unwrap().1.value().to_vec()).collect();
        (entries.len(), entries.iter().any(|e| e == b"garbage"))
    };
    let before = count_log(&file);
    let process = Process::start(&data).unwrap();
    let http = reqwest::Client::new();
    process.ready(&http).await;
    let list: Value = http.get(format!("{}/v1/streams", process.base)).send().await.unwrap().json().await.unwrap();
    let listed = list.as_array().unwrap();
    assert_eq!(listed.len(), 4, "the other streams start: {list}");
    assert_eq!((&listed[0]["id"], &listed[0]["state"]), (&json!("d0"), &json!("quarantined")), "{list}");
    assert!(listed[1..].iter().all(|s| s["status"]["state"].is_string()), "{list}");
    assert!(listed[0]["reason"].as_str().unwrap().contains("log entry"), "{list}");
    let status = http.get(format!("{}/v1/streams/d0/model", process.base)).send().await.unwrap().status();
    assert_eq!(status.as_u16(), 409, "a quarantined stream serves nothing");
    let log = process.terminate();
    assert!(log.contains("quarantined") && log.contains("`d0`") && !log.contains("panicked"), "{log}");
    assert_eq!(count_log(&file), before, "nothing was discarded, the damaged record included");

    // Bytes overwritten in the middle of the file, and a file cut short (a torn write):
    // either a clear refusal naming the file, or a recovery that serves what was committed.
    for (name, damage) in [("garbled", 0usize), ("truncated", 1)] {
        let data = make_store(name, true).await;
        let file = data.join("koopstream.redb");
        let mut bytes = std::fs::read(&file).unwrap();
        if damage == 0 {
            let middle = bytes.len() / 2;
            bytes[middle..middle + 512].iter_mut().for_each(|b| *b = 0xA5);
        } else {
            bytes.truncate(bytes.len() * 3 / 4);
        }
        std::fs::write(&file, &bytes).unwrap();
        match Process::start(&data) {
            Ok(process) => {
                let http = reqwest::Client::new();
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut outcome = None;
                while outcome.is_none() && Instant::now() < deadline {
                    if let Ok(r) = http.get(format!("{}/readyz", process.base)).send().await
                        && r.status().as_u16() == 200
                    {
                        outcome = Some("recovered");
                    } else if process.log.lock().unwrap().iter().any(|l| l.contains("recovery failed")) {
                        outcome = Some("refused");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let log = process.log.lock().unwrap().join("\n");
                assert!(!log.contains("panicked"), "{name}: {log}");
                match outcome {
                    Some("recovered") => process.terminate(),
                    Some(_) => {
                        assert!(log.contains("koopstream.redb"), "{name}: {log}");
                        process.kill();
                        String::new()
                    }
                    None => panic!("{name}: neither recovered nor refused: {log}"),
                };
            }
            Err(log) => {
                assert!(!log.contains("panicked"), "{name}: {log}");
                assert!(log.contains("koopstream.redb"), "{name}: the error names the file: {log}");
            }
        }
    }
}
