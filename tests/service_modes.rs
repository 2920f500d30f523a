//! End to end: the mode meter of a stream. A linear oscillator at 2 Hz streamed with 10 %
//! damping is tracked under one stable id with intervals that hold the truth and raises no
//! alarm; when its damping drops to 1 % the critical alarm is raised for that same id
//! (in `/alarms`, in `/modes` and in the metrics), and when the damping is restored it
//! clears, with the record kept in the history; a WebSocket client receives the alarm as it
//! is raised; tracks and alarms come back after a restart. `?all=true` gives every eigenvalue with
//! the reason it is not physical, and a bad `modes` object is refused.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, batch, scratch_dir};
use futures_util::StreamExt;
use koopstream::config::ServiceConfig;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const TS: f64 = 0.02;
const F: f64 = 2.0;
const PHASE: usize = 6000;
const BATCH: usize = 500;

/// A seeded source of standard normal numbers (xorshift64* and Box-Muller).
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }
}

/// `samples` steps of x' = r R(theta) x + w: a mode at F Hz with damping ratio `zeta`.
fn oscillate(state: &mut [f64; 2], zeta: f64, samples: usize, noise: &mut Noise) -> Vec<[f64; 2]> {
    let omega_d = std::f64::consts::TAU * F;
    let sigma = zeta * omega_d / (1.0 - zeta * zeta).sqrt();
    let (r, theta) = ((-sigma * TS).exp(), omega_d * TS);
    let (c, s) = (r * theta.cos(), r * theta.sin());
    (0..samples)
        .map(|_| {
            let [x, y] = *state;
            *state = [c * x - s * y + 0.1 * noise.normal(), s * x + c * y + 0.1 * noise.normal()];
            *state
        })
        .collect()
}

/// Streams `rows` in batches, continuing at sample `start`.
async fn stream(server: &TestServer, rows: &[[f64; 2]], start: usize, seq: &mut u64) {
    for (k, chunk) in rows.chunks(BATCH).enumerate() {
        *seq += 1;
        let mut body = batch(*seq, start + k * BATCH, chunk, TS);
        body["t0"] = json!((start + k * BATCH) as f64 * TS);
        server.ingest("osc", &body).await;
    }
}

/// Polls `path` until `done` holds for its JSON body (at most 20 s).
async fn wait_for(server: &TestServer, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = server.get_json(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never settled: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a document is of the refresh of the model whose newest sample is at `t`.
fn at(document: &Value, t: f64) -> bool {
    document["t"].as_f64().is_some_and(|v| (v - t).abs() < 1e-6)
}

fn interval(v: &Value) -> (f64, f64) {
    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracked_mode_raises_and_clears_its_damping_alarm() {
    let mut config = ServiceConfig::default();
    config.metrics.per_stream_labels = 4;
    let server = TestServer::start_with(config).await;
    // Bad meter settings are refused before anything is created.
    for (modes, field) in [
        (json!({"band_hz": [2.0, 1.0]}), "modes.band_hz"),
        (json!({"alarm": {"warning": 0.02, "critical": 0.03}}), "modes.alarm.critical"),
        (json!({"max": 0}), "modes.max"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let definition = json!({"id": "bad", "channels": [{"name": "x"}, {"name": "y"}], "ts": TS, "modes": modes});
        let r = server.post_json("/v1/streams", &definition).await;
        assert_eq!(r.status().as_u16(), 422, "{modes}");
        let problem: Value = r.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains(field), "{problem}");
    }
    assert_eq!(server.get_json("/v1/streams/bad").await.0, 404);

    // Forgetting 0.9995: about 80 s of data weigh on the model (2 / (1 - rho) samples).
    let created = server
        .create(json!({"id": "osc", "channels": [{"name": "x"}, {"name": "y"}], "ts": TS,
            "dictionary": "state,const", "mu": 1e-6, "forgetting": 0.9995, "warmup": 200, "eigen_every": 250,
            "modes": {"band_hz": [0.5, 5.0], "alarm": {"hold_s": 5}}}))
        .await;
    assert_eq!(created["definition"]["modes"]["alarm"]["warning"], 0.05, "{created}");
    assert_eq!(created["definition"]["modes"]["band_hz"], json!([0.5, 5.0]));
    let mut noise = Noise(0x5EED);
    let mut state = [0.0, 0.0];
    let mut seq = 0;

    // Healthy: 10 % damping.
    let healthy = oscillate(&mut state, 0.10, PHASE, &mut noise);
    stream(&server, &healthy, 0, &mut seq).await;
    let last_t = (PHASE - 1) as f64 * TS;
    let modes = wait_for(&server, "/v1/streams/osc/modes", |m| at(m, last_t)).await;
    let tracked = modes["modes"].as_array().unwrap();
    assert_eq!(tracked.len(), 1, "one physical mode: {modes}");
    let mode = &tracked[0];
    let id = mode["id"].as_u64().unwrap();
    assert!((mode["frequency_hz"].as_f64().unwrap() - F).abs() < 0.02, "{mode}");
    let (lo, hi) = interval(&mode["damping_ci95"]);
    assert!(lo < 0.10 && 0.10 < hi && hi - lo < 0.06, "the interval holds the truth: {mode}");
    assert!(mode["energy"].as_f64().unwrap() > 0.9, "the oscillation carries the signal: {mode}");
    assert_eq!(mode["alarm"], Value::Null);
    assert_eq!(mode["current"], true);
    let (_, alarms) = server.get_json("/v1/streams/osc/alarms").await;
    assert_eq!(alarms["active"], json!([]), "{alarms}");
    assert_eq!(alarms["history"], json!([]));
    // Every eigenvalue, each physical one with its id and the others with a reason.
    let (_, all) = server.get_json("/v1/streams/osc/modes?all=true").await;
    let all = all["modes"].as_array().unwrap().clone();
    assert_eq!(all.len(), 3);
    assert_eq!(all.iter().filter(|m| m["reason"].is_null()).count(), 1, "{all:?}");
    assert!(all.iter().any(|m| m["reason"] == "conjugate_twin"));
    assert!(all.iter().any(|m| m["reason"] == "out_of_band"), "the constant: {all:?}");
    let energy: f64 = all.iter().map(|m| m["energy"].as_f64().unwrap()).sum();
    assert!((energy - 1.0).abs() < 1e-9);
    assert_eq!(server.get_json("/v1/streams/osc/modes?all=maybe").await.0, 422);

    // Stressed: 1 % damping. The critical alarm comes for the same id, also to a WebSocket
    // client listening meanwhile.
    let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("osc")).await.unwrap();
    let stressed = oscillate(&mut state, 0.01, PHASE, &mut noise);
    stream(&server, &stressed, PHASE, &mut seq).await;
    let alarms = wait_for(&server, "/v1/streams/osc/alarms", |a| {
        a["active"].as_array().is_some_and(|a| a.iter().any(|r| r["severity"] == "critical"))
    })
    .await;
    let active = &alarms["active"].as_array().unwrap()[0];
    assert_eq!(active["mode"].as_u64(), Some(id), "{alarms}");
    assert!(active["onset"]["damping_ci95"][1].as_f64().unwrap() < 0.03, "{active}");
    assert!(active["since_t"].as_f64().unwrap() > PHASE as f64 * TS, "raised after the change: {active}");
    let (_, modes) = server.get_json("/v1/streams/osc/modes").await;
    assert_eq!(modes["modes"][0]["id"].as_u64(), Some(id));
    assert_eq!(modes["modes"][0]["alarm"], "critical");
    let pushed = tokio::time::timeout(Duration::from_secs(20), async {
        let mut alarms = Vec::new();
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Text(frame) = message {
                let push: Value = serde_json::from_str(&frame).unwrap();
                if push["type"] == "alarm" {
                    alarms.push(push.clone());
                    if push["to"] == "critical" {
                        return alarms;
                    }
                }
            }
        }
        alarms
    })
    .await
    .expect("the alarm reaches the WebSocket");
    let critical = pushed.last().unwrap();
    assert_eq!(critical["mode"].as_u64(), Some(id), "{pushed:?}");
    assert_eq!(critical["t"], active["since_t"], "the pushed alarm is the one /alarms holds");
    assert_eq!(critical["reading"], active["onset"]);
    socket.close(None).await.unwrap();
    let metrics = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"koopstream_alarms_active{stream="osc",severity="critical"} 1"#), "{metrics}");
    assert!(metrics.contains(&format!(r#"koopstream_mode_damping_ratio{{stream="osc",mode="{id}"}}"#)));

    // Restored: the alarm clears, and the history keeps it.
    let restored = oscillate(&mut state, 0.10, PHASE, &mut noise);
    stream(&server, &restored, 2 * PHASE, &mut seq).await;
    let alarms = wait_for(&server, "/v1/streams/osc/alarms", |a| a["active"] == json!([])).await;
    let history = alarms["history"].as_array().unwrap();
    assert!(history.iter().all(|r| r["mode"].as_u64() == Some(id)), "{alarms}");
    let critical = history.iter().find(|r| r["severity"] == "critical").expect("the critical record");
    assert!(critical["until_t"].as_f64().unwrap() > 2.0 * PHASE as f64 * TS, "{critical}");
    assert!(critical["clearing"]["damping_ci95"][0].as_f64().unwrap() > 0.03, "{critical}");
    let metrics = server.http.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"koopstream_alarms_active{stream="osc",severity="critical"} 0"#));
    let (_, modes) = server.get_json("/v1/streams/osc/modes").await;
    assert_eq!(modes["modes"].as_array().unwrap().len(), 1);
    assert_eq!(modes["modes"][0]["id"].as_u64(), Some(id), "the same id all along");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracks_and_alarms_survive_a_restart() {
    let data = scratch_dir("meter-restart");
    let config = ServiceConfig { data_dir: data.clone(), ..ServiceConfig::default() };
    let server = TestServer::start_with(config.clone()).await;
    server
        .create(json!({"id": "osc", "channels": [{"name": "x"}, {"name": "y"}], "ts": TS,
            "dictionary": "state,const", "mu": 1e-6, "forgetting": 0.9995, "warmup": 200, "eigen_every": 250,
            "modes": {"band_hz": [0.5, 5.0], "alarm": {"hold_s": 5}}}))
        .await;
    let mut noise = Noise(0xA1A2);
    let mut state = [0.0, 0.0];
    let mut seq = 0;
    let healthy = oscillate(&mut state, 0.10, PHASE, &mut noise);
    stream(&server, &healthy, 0, &mut seq).await;
    let stressed = oscillate(&mut state, 0.01, PHASE, &mut noise);
    stream(&server, &stressed, PHASE, &mut seq).await;
    let before = wait_for(&server, "/v1/streams/osc/alarms", |a| {
        a["active"].as_array().is_some_and(|a| a.iter().any(|r| r["severity"] == "critical"))
    })
    .await;
    // Let the refresh of the last batch land before the final snapshot.
    wait_for(&server, "/v1/streams/osc/modes", |m| at(m, (2 * PHASE - 1) as f64 * TS)).await;
    let (_, modes_before) = server.get_json("/v1/streams/osc/modes").await;
    let id = modes_before["modes"][0]["id"].as_u64().unwrap();
    server.stop().await;

    let server = TestServer::start_with(config).await;
    let (status, after) = server.get_json("/v1/streams/osc/alarms").await;
    assert_eq!(status, 200);
    assert_eq!(after["active"], before["active"], "the active alarm is back at once");
    assert_eq!(after["history"], before["history"]);
    let (_, modes) = server.get_json("/v1/streams/osc/modes").await;
    assert_eq!(modes["modes"][0]["id"].as_u64(), Some(id), "{modes}");
    assert_eq!(modes["modes"][0]["alarm"], "critical");
    assert_eq!(modes["modes"][0]["first_seen_t"], modes_before["modes"][0]["first_seen_t"]);
    // The track continues under its id: more of the same raises nothing new.
    let more = oscillate(&mut state, 0.01, 2 * BATCH, &mut noise);
    stream(&server, &more, 2 * PHASE, &mut seq).await;
    let last_t = (2 * PHASE + 2 * BATCH - 1) as f64 * TS;
    let modes = wait_for(&server, "/v1/streams/osc/modes", |m| at(m, last_t)).await;
    assert_eq!(modes["modes"].as_array().unwrap().len(), 1, "{modes}");
    assert_eq!(modes["modes"][0]["id"].as_u64(), Some(id));
    let (_, alarms) = server.get_json("/v1/streams/osc/alarms").await;
    assert_eq!(alarms["history"], before["history"], "no alarm raised twice");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&data);
}
