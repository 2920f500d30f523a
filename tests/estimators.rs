//! Estimators and presets end to end: streams created with a preset and with an explicit
//! estimator, their definitions read back (and again after a restart), `GET /v1/presets`,
//! the model document naming its estimator, and every bad combination refused with a 422
//! problem naming its field, creating nothing.

mod common;

use common::{TestServer, batch, scratch_dir, van_der_pol};
use koopstream::config::ServiceConfig;
use serde_json::{Value, json};

fn two_channels(id: &str, ts: f64) -> Value {
    json!({"id": id, "channels": [{"name": "x1"}, {"name": "x2"}], "ts": ts})
}

fn with(mut base: Value, fields: Value) -> Value {
    for (key, value) in fields.as_object().unwrap() {
        base[key] = value.clone();
    }
    base
}

async fn definitions(server: &TestServer) -> Vec<Value> {
    let (status, list) = server.get_json("/v1/streams").await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().iter().map(|entry| entry["definition"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presets_and_estimators_are_defined_served_and_kept() {
    let config = ServiceConfig { data_dir: scratch_dir("estimators"), ..ServiceConfig::default() };
    let server = TestServer::start_with(config.clone()).await;

    // The presets, each with what it sets and why.
    let (status, presets) = server.get_json("/v1/presets").await;
    assert_eq!(status, 200, "{presets}");
    let names: Vec<&str> = presets.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["pmu-ambient", "pmu-ringdown", "lab-nonlinear"]);
    let ambient = &presets[0];
    assert_eq!(ambient["sets"]["estimator"], "correlation");
    assert_eq!(ambient["sets"]["modes"]["band_hz"], json!([0.1, 2.0]));
    assert!(ambient["why"]["lags"].as_str().is_some_and(|why| !why.is_empty()), "{ambient}");

    // A stream from a preset: every value it sets is in the definition.
    let created = server.create(with(two_channels("ambient", 1.0 / 30.0), json!({"preset": "pmu-ambient"}))).await;
    let d = &created["definition"];
    assert_eq!(
        (&d["preset"], &d["estimator"], &d["lags"], &d["rank"]),
        (&json!("pmu-ambient"), &json!("correlation"), &json!(120), &Value::Null)
    );
    assert_eq!(
        (&d["dictionary"], &d["forgetting"], &d["warmup"]),
        (&json!("state,delay:2"), &json!(0.9999), &json!(300))
    );
    assert_eq!(d["modes"]["band_hz"], json!([0.1, 2.0]));
    // The same request again is the same stream.
    let again = server
        .post_json("/v1/streams", &with(two_channels("ambient", 1.0 / 30.0), json!({"preset": "pmu-ambient"})))
        .await;
    assert_eq!(again.status().as_u16(), 200);

    // A preset with the request's own values on top.
    let created = server
        .create(with(
            two_channels("ringdown", 1.0),
            json!({"preset": "pmu-ringdown", "dictionary": "state,delay:4", "warmup": 100}),
        ))
        .await;
    let d = &created["definition"];
    assert_eq!(
        (&d["estimator"], &d["lags"], &d["instrument_delay"]),
        (&json!("correlation"), &json!(60), &Value::Null)
    );
    // Two channels with four delays have 10 observables: the preset's rank 32 is a ceiling.
    assert_eq!((&d["rank"], &d["mu"], &d["warmup"]), (&Value::Null, &json!(1e-6), &json!(100)));
    // At 1 frame/s the band's top comes down to 0.4 / ts.
    assert_eq!(d["modes"]["band_hz"], json!([0.1, 0.4]));

    // An explicit estimator, without a preset.
    let explicit = with(
        two_channels("iv", 0.1),
        json!({"estimator": "iv", "dictionary": "state,const,delay:2", "instrument_delay": 6, "warmup": 100}),
    );
    let created = server.create(explicit).await;
    let d = &created["definition"];
    assert_eq!((&d["estimator"], &d["instrument_delay"], &d["preset"]), (&json!("iv"), &json!(6), &Value::Null));
    let plain = server.create(two_channels("plain", 0.1)).await;
    assert_eq!((&plain["definition"]["estimator"], &plain["definition"]["lags"]), (&json!("ridge"), &Value::Null));

    // The model document names the estimator (the model itself is the estimator's affair).
    let rows = van_der_pol(300, 0.1);
    server.ingest("iv", &batch(1, 0, &rows, 0.1)).await;
    let (status, doc) = server.get_json("/v1/streams/iv/model").await;
    assert_eq!((status, &doc["estimator"]), (200, &json!("iv")), "{doc}");
    // A correlation stream serves modes and says why they carry no intervals; iv's do not
    // say so (their intervals come with the first refresh).
    let corr = with(
        two_channels("corr", 0.1),
        json!({"estimator": "correlation", "lags": 20, "dictionary": "state", "warmup": 50}),
    );
    server.create(corr).await;
    server.ingest("corr", &batch(1, 0, &rows, 0.1)).await;
    let (status, modes) = server.get_json("/v1/streams/corr/modes?all=true").await;
    assert_eq!(status, 200, "{modes}");
    assert!(modes["intervals_unavailable"].as_str().unwrap().contains("correlation"), "{modes}");
    assert!(!modes["modes"].as_array().unwrap().is_empty(), "{modes}");
    assert!(modes["modes"].as_array().unwrap().iter().all(|m| m["frequency_ci95"].is_null()), "{modes}");
    let (status, tracked) = server.get_json("/v1/streams/corr/modes").await;
    assert_eq!(status, 200, "{tracked}");
    assert!(tracked["intervals_unavailable"].is_string(), "{tracked}");
    let (_, iv_modes) = server.get_json("/v1/streams/iv/modes?all=true").await;
    assert!(iv_modes["intervals_unavailable"].is_null(), "{iv_modes}");

    // Bad combinations: 422 problem+json at the field, and no stream.
    let cases = [
        (json!({"lags": 10}), "/lags"),
        (json!({"estimator": "iv", "rank": 2}), "/rank"),
        (json!({"estimator": "ols"}), "/estimator"),
        (json!({"estimator": "correlation", "lags": 1}), "/lags"),
        (json!({"estimator": "correlation", "dictionary": "state", "rank": 3}), "/rank"),
        (json!({"estimator": "correlation", "inputs": [{"name": "u"}]}), "/estimator"),
        (json!({"estimator": "iv", "dictionary": "state,delay:5", "instrument_delay": 5}), "/instrument_delay"),
        (json!({"preset": "pmu-ambient", "instrument_delay": 4}), "/instrument_delay"),
        (json!({"preset": "pmu"}), "/preset"),
        (json!({"preset": "pmu-ambient", "window": 18000}), "/window"),
        (json!({"preset": "pmu-ambient", "ts": 10.0}), "/preset"),
        (json!({"lags": -1}), "/lags"),
    ];
    for (fields, pointer) in cases {
        let body = with(two_channels("bad", 0.1), fields);
        let r = server.post_json("/v1/streams", &body).await;
        let status = r.status().as_u16();
        let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
        let problem: Value = r.json().await.unwrap();
        assert_eq!((status, content_type.as_str()), (422, "application/problem+json"), "{body}: {problem}");
        assert_eq!(problem["pointer"], pointer, "{body}: {problem}");
        if pointer == "/preset" && body["ts"] == 0.1 {
            assert!(problem["detail"].as_str().unwrap().contains("pmu-ambient, pmu-ringdown"), "{problem}");
        }
    }
    let before = definitions(&server).await;
    assert_eq!(before.len(), 5, "no refused request created a stream");

    // A restart keeps every definition as it was.
    server.stop().await;
    let server = TestServer::start_with(config).await;
    assert_eq!(definitions(&server).await, before);
    server.stop().await;
}
