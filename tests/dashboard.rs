//! The dashboard against the real server: its assets and the read-only endpoints it is
//! built on (recent measurements, the course of the modes, server-sent events), and, in
//! headless Chromium driven through WebDriver, the page itself fed by the 68-bus
//! simulator with tokens on: no console errors, the stream and its inter-area modes shown,
//! charts drawn, an alarm on the page within seconds of the server raising it.

mod common;
#[path = "dashboard/webdriver.rs"]
mod webdriver;

use std::time::{Duration, Instant};

use common::TestServer;
use experiments::identify::{Ieee68Channels, ieee68_inter_area_modes};
use koopstream::access::TokenConfig;
use koopstream::config::{AuthConfig, ServiceConfig};
use serde_json::{Value, json};
use systems::{
    AngleReference, DampingChange, Ieee68Params, Ieee68Scenario, MeasurementModel, Network, NoiseLevel,
    SimulationRequest, SystemSpec,
};

const READ: &str = "dashboard-reader-secret";
const FEED: &str = "dashboard-feeder-secret";

fn secured() -> ServiceConfig {
    let auth = AuthConfig {
        tokens: vec![
            TokenConfig::for_secret("viewer", READ, &["read"]),
            TokenConfig::for_secret("feeder", FEED, &["admin", "ingest"]),
        ],
        ..AuthConfig::default()
    };
    ServiceConfig { auth, ..ServiceConfig::default() }
}

async fn send(server: &TestServer, method: reqwest::Method, path: &str, token: &str, body: Option<&Value>) -> Value {
    let mut request = server.http.request(method, server.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A damped oscillator in two channels with units, `rows` samples at 10 samples/s.
fn oscillator(rows: usize) -> Vec<[f64; 2]> {
    (0..rows)
        .map(|k| {
            let t = k as f64 * 0.1;
            let decay = (-0.02 * t).exp();
            [decay * (1.3 * t).cos() + 0.01 * ((k * 7919 % 101) as f64 / 101.0 - 0.5), decay * (1.3 * t).sin()]
        })
        .collect()
}

fn oscillator_definition(id: &str) -> Value {
    json!({"id": id, "channels": [{"name": "p", "unit": "MW"}, {"name": "q", "unit": "Mvar"}], "ts": 0.1,
        "dictionary": "state", "warmup": 40, "eigen_every": 20, "modes": {"band_hz": [0.05, 1.0], "min_energy": 0.0}})
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_without_a_token_and_the_data_needs_one() {
    let server = TestServer::start_with(secured()).await;
    let page = server.http.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    for asset in ["/dashboard/app.js", "/dashboard/app.css", "/dashboard/favicon.svg"] {
        assert!(html.contains(asset), "{asset} is linked");
        let r = server.http.get(server.url(asset)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    let script = server.http.get(server.url("/dashboard/charts.js")).send().await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    let missing = server.http.get(server.url("/dashboard/nothing.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    // What the page reads needs the read scope.
    assert_eq!(server.http.get(server.url("/v1/streams")).send().await.unwrap().status(), 401);
    send(&server, reqwest::Method::POST, "/v1/streams", FEED, Some(&oscillator_definition("osc"))).await;
    for path in ["/v1/streams/osc/recent", "/v1/streams/osc/modes/trend", "/v1/streams/osc/events"] {
        let denied = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(denied.status(), 401, "{path}");
    }
    let recent = send(&server, reqwest::Method::GET, "/v1/streams/osc/recent", READ, None).await;
    assert_eq!(recent, json!({"channels": ["p", "q"], "units": ["MW", "Mvar"], "t": [], "x": []}));
    server.stop().await;
}

#[tokio::test]
async fn recent_measurements_and_the_course_of_the_modes_are_what_was_sent_and_seen() {
    let server = TestServer::start().await;
    server.create(oscillator_definition("osc")).await;
    let rows = oscillator(400);
    for (k, chunk) in rows.chunks(50).enumerate() {
        let mut x: Vec<Value> = chunk.iter().map(|r| json!(r)).collect();
        if k == 7 {
            // A missing value is kept as measured (null), not dropped.
            x[10] = json!([null, chunk[10][1]]);
        }
        server.ingest("osc", &json!({"seq": k + 1, "t0": (k * 50) as f64 * 0.1, "x": x})).await;
    }
    let (status, recent) = server.get_json("/v1/streams/osc/recent?count=5").await;
    assert_eq!(status, 200);
    let t: Vec<f64> = serde_json::from_value(recent["t"].clone()).unwrap();
    let expected_t: Vec<f64> = (395..400).map(|k| k as f64 * 0.1).collect();
    for (got, want) in t.iter().zip(&expected_t) {
        assert!((got - want).abs() < 1e-9, "{t:?}");
    }
    assert_eq!(recent["x"][4], json!(rows[399]));
    let (_, all) = server.get_json("/v1/streams/osc/recent?count=600").await;
    assert_eq!(all["t"].as_array().unwrap().len(), 400);
    assert_eq!(all["x"][360], json!([null, rows[360][1]]));
    for bad in ["0", "601", "-1", "many"] {
        let (status, problem) = server.get_json(&format!("/v1/streams/osc/recent?count={bad}")).await;
        assert_eq!(status, 422, "count={bad}: {problem}");
    }

    // The trend: one point per refresh after the first model, each with the modes matched.
    let (_, trend) = server.get_json("/v1/streams/osc/modes/trend").await;
    let points = trend["points"].as_array().unwrap();
    // A refresh is skipped while the previous one is still queued, so fewer than
    // 400 / 20 arrive when batches come fast.
    assert!(points.len() >= 5, "{} refreshes", points.len());
    let last = points.last().unwrap();
    let (_, modes) = server.get_json("/v1/streams/osc/modes").await;
    assert_eq!(last["version"], modes["version"]);
    let tracked = &modes["modes"][0];
    let course = last["modes"].as_array().unwrap().iter().find(|m| m["id"] == tracked["id"]).unwrap();
    assert_eq!(course["frequency_hz"], tracked["frequency_hz"]);
    assert_eq!(course["damping_ratio"], tracked["damping_ratio"]);
    let f = tracked["frequency_hz"].as_f64().unwrap();
    // A sanity check of what is tracked (40 s of a decaying record), not of accuracy.
    assert!((f - 1.3 / std::f64::consts::TAU).abs() < 0.02, "{f}");
    let middle = points[points.len() / 2]["t"].as_f64().unwrap();
    let (_, later) = server.get_json(&format!("/v1/streams/osc/modes/trend?after={middle}")).await;
    let later = later["points"].as_array().unwrap();
    assert_eq!(later.len(), points.len() - points.len() / 2 - 1);
    assert!(later.iter().all(|p| p["t"].as_f64().unwrap() > middle));
    let (status, _) = server.get_json("/v1/streams/osc/modes/trend?after=NaN").await;
    assert_eq!(status, 422);
    let (status, _) = server.get_json("/v1/streams/none/recent").await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_several_spectra_workers_every_stream_is_refreshed_and_in_order() {
    let mut config = ServiceConfig::default();
    config.streams.spectra_workers = 3;
    let server = TestServer::start_with(config).await;
    let ids = ["s1", "s2", "s3", "s4", "s5"];
    for id in ids {
        server.create(oscillator_definition(id)).await;
    }
    let rows = oscillator(400);
    // The streams' batches interleave, so their refreshes queue together.
    for (k, chunk) in rows.chunks(20).enumerate() {
        for id in ids {
            server.ingest(id, &json!({"seq": k + 1, "t0": (k * 20) as f64 * 0.1, "x": chunk})).await;
        }
    }
    for id in ids {
        let (_, trend) = server.get_json(&format!("/v1/streams/{id}/modes/trend")).await;
        let versions: Vec<u64> =
            trend["points"].as_array().unwrap().iter().map(|p| p["version"].as_u64().unwrap()).collect();
        assert!(versions.len() >= 3, "{id}: {versions:?}");
        // One refresh of a stream at a time: its views are published in version order.
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{id}: {versions:?}");
    }
    let waited = server.metric_sum("koopstream_refresh_wait_seconds_count", "").await;
    assert!(waited >= 15.0, "{waited} refreshes measured");
    server.stop().await;
}

/// Reads server-sent events from `response` until `stop` says enough (or the stream ends).
async fn read_events(mut response: reqwest::Response, limit: Duration, mut stop: impl FnMut(&str, &Value) -> bool) {
    let started = Instant::now();
    let mut buffer = String::new();
    while started.elapsed() < limit {
        let chunk = match tokio::time::timeout(limit.saturating_sub(started.elapsed()), response.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            _ => return,
        };
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let name = block.lines().find_map(|l| l.strip_prefix("event:")).map(str::trim).unwrap_or("message");
            let data: String = block.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim).collect();
            if data.is_empty() {
                continue;
            }
            if stop(name, &serde_json::from_str(&data).unwrap()) {
                return;
            }
        }
    }
}

#[tokio::test]
async fn events_carry_status_refreshes_and_the_deletion_with_the_read_scope() {
    let server = TestServer::start_with(secured()).await;
    send(&server, reqwest::Method::POST, "/v1/streams", FEED, Some(&oscillator_definition("osc"))).await;
    let response = server.http.get(server.url("/v1/streams/osc/events")).bearer_auth(READ).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let feeder = {
        let server_url = server.url("/v1/streams/osc/samples");
        let http = server.http.clone();
        tokio::spawn(async move {
            for (k, chunk) in oscillator(300).chunks(20).enumerate() {
                let batch = json!({"seq": k + 1, "t0": (k * 20) as f64 * 0.1, "x": chunk});
                let r = http.post(&server_url).bearer_auth(FEED).json(&batch).send().await.unwrap();
                assert!(r.status().is_success());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    read_events(response, Duration::from_secs(30), |name, doc| {
        if name == "status" {
            assert_eq!(doc["definition"]["id"], "osc");
        }
        if name == "summary" {
            assert!(doc["version"].as_u64().is_some(), "{doc}");
        }
        *seen.entry(name.to_owned()).or_default() += 1;
        seen.contains_key("status") && seen.get("summary").is_some_and(|n| *n >= 2)
    })
    .await;
    assert!(seen.contains_key("status") && seen.get("summary").is_some_and(|n| *n >= 2), "{seen:?}");
    feeder.await.unwrap();

    // Deleting the stream ends its event stream with `deleted`.
    let response = server.http.get(server.url("/v1/streams/osc/events")).bearer_auth(READ).send().await.unwrap();
    let deleted = server.http.delete(server.url("/v1/streams/osc")).bearer_auth(FEED).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    let mut last = String::new();
    read_events(response, Duration::from_secs(10), |name, _| {
        last = name.to_owned();
        false
    })
    .await;
    assert_eq!(last, "deleted");

    let unknown = server.http.get(server.url("/v1/streams/osc2/events")).bearer_auth(READ).send().await.unwrap();
    assert_eq!(unknown.status(), 404, "a stream that does not exist has no events");

    // An open event stream does not hold up shutdown.
    send(&server, reqwest::Method::POST, "/v1/streams", FEED, Some(&oscillator_definition("again"))).await;
    let open = server.http.get(server.url("/v1/streams/again/events")).bearer_auth(READ).send().await.unwrap();
    let started = Instant::now();
    let (report, ()) = tokio::join!(server.stop(), read_events(open, Duration::from_secs(20), |_, _| false));
    let _ = report;
    assert!(started.elapsed() < Duration::from_secs(10), "shutdown took {:?}", started.elapsed());
}

#[tokio::test]
async fn event_streams_beyond_the_limit_are_refused_with_503() {
    let mut config = ServiceConfig::default();
    config.limits.max_event_streams = 2;
    let server = TestServer::start_with(config).await;
    server.create(oscillator_definition("osc")).await;
    let open = |_| server.http.get(server.url("/v1/streams/osc/events")).send();
    let first = open(0).await.unwrap();
    let second = open(1).await.unwrap();
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    let third = open(2).await.unwrap();
    assert_eq!(third.status(), 503);
    assert_eq!(third.headers()["content-type"], "application/problem+json");
    let problem: Value = third.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("limits.max_event_streams"), "{problem}");
    drop((first, second));
    server.stop().await;
}

/// The 68-bus monitoring stream of `koopstream demo --scenario stressed`: the 15 rotor
/// angles relative to G13 and the 16 speeds, with units.
fn stressed_definition() -> Value {
    let angles = (1..=16).filter(|g| *g != 13).map(|g| json!({"name": format!("delta_g{g}"), "unit": "rad"}));
    let speeds = (1..=16).map(|g| json!({"name": format!("omega_g{g}"), "unit": "pu"}));
    json!({"id": "ieee68", "channels": angles.chain(speeds).collect::<Vec<_>>(), "ts": 1.0 / 30.0,
        "dictionary": "state,const", "mu": 1e-6, "forgetting": 0.9995, "warmup": 300, "eigen_every": 300,
        "modes": {"band_hz": [0.1, 0.9]}})
}

/// Twenty minutes of ambient load noise on the 68-bus system whose damping drops to a
/// tenth at minute 10, in the stream's columns (40 dB SNR, seed 1).
fn stressed_rows() -> Vec<Vec<f64>> {
    let request = SimulationRequest::new(SystemSpec::Ieee68(Ieee68Params {
        scenario: Ieee68Scenario::Ambient(Default::default()),
        angle_reference: AngleReference::Machine(13),
        damping: DampingChange { scale: 0.1, at: Some(600.0) },
    }))
    .with_duration(1200.0)
    .with_rate(30.0)
    .with_seed(1)
    .with_measurement(MeasurementModel { noise: Some(NoiseLevel::SnrDb(40.0)), ..MeasurementModel::clean() });
    let trajectory = systems::simulate(&request).unwrap();
    let columns: Vec<usize> = (0..32).filter(|j| *j != 12).collect();
    (0..trajectory.n_rows()).map(|k| columns.iter().map(|&j| trajectory.row(k)[j]).collect()).collect()
}

async fn feed(server: &TestServer, rows: &[Vec<f64>], from: usize, to: usize) {
    for start in (from..to).step_by(150) {
        let end = (start + 150).min(to);
        let batch = json!({"seq": start / 150 + 1, "t0": start as f64 / 30.0, "x": &rows[start..end]});
        send(server, reqwest::Method::POST, "/v1/streams/ieee68/samples", FEED, Some(&batch)).await;
    }
}

/// Writes a screenshot under target/ and, when KOOPSTREAM_SCREENSHOTS names a directory
/// (docs/ when the committed ones are renewed), there too.
fn keep_screenshot(name: &str, png: &[u8]) {
    assert!(png.len() > 10_000 && png.starts_with(b"\x89PNG"), "{name}: not a PNG of a page");
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join(name), png).unwrap();
    if let Ok(dir) = std::env::var("KOOPSTREAM_SCREENSHOTS") {
        std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
    }
}

/// What the page shows, read from its DOM.
const PAGE_STATE: &str = r#"
    const rows = [...document.querySelectorAll('#modes tbody tr')];
    const path = (id) => [...document.querySelectorAll(`#${id} path.series`)].map((p) => p.getAttribute('d') || '');
    return {
      streams: [...document.querySelectorAll('#streams tbody tr')].map((r) => r.dataset.stream || ''),
      frequencies: rows.map((r) => Number(r.dataset.frequency)),
      map_points: document.querySelectorAll('#chart-map g.point').length,
      thresholds: document.querySelectorAll('#chart-map line.threshold').length,
      frequency_lines: path('chart-frequency').filter((d) => d.split('L').length > 3).length,
      shape_arrows: document.querySelectorAll('#chart-shape g.compass-arrow').length,
      shape_legend: [...document.querySelectorAll('#chart-shape text.legend')].map((t) => t.textContent),
      predicted: [...document.querySelectorAll('#chart-predict path.predicted')].map((p) => (p.getAttribute('d') || '').length),
      alarms: [...document.querySelectorAll('#alarms tbody tr')].map((r) => r.textContent),
      live: document.getElementById('live').textContent,
      errors: window.koopErrors || ['no error list: the script did not run'],
    };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromium-driver (Debian packages, installed by .ci/run)"]
async fn in_chromium_the_dashboard_shows_the_68_bus_modes_live_and_an_alarm_within_seconds() {
    let server = TestServer::start_with(secured()).await;
    let rows = tokio::task::spawn_blocking(stressed_rows).await.unwrap();
    send(&server, reqwest::Method::POST, "/v1/streams", FEED, Some(&stressed_definition())).await;
    let browser = webdriver::Browser::start(1400, 2000).await;
    // Without a token the page asks for one and does not claim to be connected.
    browser.goto(&format!("{}/", server.base)).await;
    browser
        .wait_for(
            "const pill = document.getElementById('server-state');
             return pill.textContent === 'token needed' && !pill.classList.contains('on') &&
                    !document.getElementById('token-form').hidden",
            Duration::from_secs(10),
            "the page asking for a token",
        )
        .await;
    // Away from the page (it polls), the browser has logged each refused request: only
    // those 401s, nothing else.
    browser.goto("about:blank").await;
    let refused = browser.console().await;
    assert!(refused.iter().all(|(_, message)| message.contains("401 (Unauthorized)")), "{refused:?}");
    // The read token travels in the fragment, which the page keeps and never sends on.
    browser.goto(&format!("{}/#token={READ}", server.base)).await;
    browser
        .wait_for(
            "return [...document.querySelectorAll('#streams tbody tr')].some(r => r.dataset.stream === 'ieee68')",
            Duration::from_secs(10),
            "the stream in the list",
        )
        .await;
    browser
        .wait_for("return document.getElementById('live').textContent === 'live'", Duration::from_secs(10), "live")
        .await;
    // The token left the address bar; the address names the stream shown.
    let address = browser.execute("return location.href").await;
    assert!(address.as_str().unwrap().ends_with("/#stream=ieee68"), "{address}");

    // Nine and a half healthy minutes: the inter-area modes are tracked.
    feed(&server, &rows, 0, 17_100).await;
    let truth = ieee68_inter_area_modes(Network::Pre, Ieee68Channels::Speeds).unwrap();
    let healthy = browser
        .wait_for(
            &format!(
                "const s = (() => {{ {PAGE_STATE} }})(); const truth = {truth};
                 return truth.every(f => s.frequencies.some(g => Math.abs(g - f) / f < 0.03)) && s.frequency_lines > 0 && s.predicted.length ? s : null;",
                truth = json!(truth.iter().map(|m| m.frequency_hz).collect::<Vec<_>>())
            ),
            Duration::from_secs(30),
            "every inter-area mode within 3 % of its true frequency, a frequency line and a prediction",
        )
        .await;
    // The map has a point per tracked mode and both thresholds; the compass an arrow per
    // channel, with the channels' units.
    assert_eq!(healthy["map_points"].as_u64(), Some(healthy["frequencies"].as_array().unwrap().len() as u64));
    assert_eq!(healthy["thresholds"], 2);
    assert_eq!(healthy["shape_arrows"], 31);
    assert!(healthy["shape_legend"].as_array().unwrap().iter().all(|l| {
        let l = l.as_str().unwrap();
        l.contains("(rad)") || l.contains("(pu)")
    }));
    assert!(healthy["alarms"].as_array().unwrap().is_empty(), "{healthy}");
    // The speeds' shares are tiny next to the angles' (pu against rad): the compass can show
    // one unit's channels, the largest of them drawn as 1.
    let choose = |text: &str| {
        format!(
            "const select = document.getElementById('shape-unit');
             const option = [...select.options].find((o) => o.textContent === '{text}');
             select.value = option.value;
             select.dispatchEvent(new Event('change'));
             return [...document.querySelectorAll('#chart-shape text.legend')].map((t) => t.textContent);"
        )
    };
    let speeds = browser.execute(&choose("pu channels")).await;
    let speeds: Vec<&str> = speeds.as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(speeds.len(), 12, "{speeds:?}");
    assert!(speeds.iter().all(|l| l.starts_with("omega_g") && l.contains("(pu)")), "{speeds:?}");
    assert!(speeds[0].contains(" 1.00 "), "{speeds:?}");
    assert_eq!(browser.execute("return document.querySelectorAll('#chart-shape g.compass-arrow').length").await, 16);
    browser.execute(&choose("all channels")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    keep_screenshot("dashboard-healthy.png", &browser.screenshot().await);

    // The model downloads as a MATLAB file with the token (the click is caught before the
    // browser saves anything).
    browser
        .execute(
            "window.koopDownload = {};
             const objectUrl = URL.createObjectURL;
             URL.createObjectURL = (blob) => {
               blob.slice(0, 10).text().then((head) => Object.assign(window.koopDownload, {head, size: blob.size, type: blob.type}));
               return objectUrl(blob);
             };
             HTMLAnchorElement.prototype.click = function () { window.koopDownload.name = this.download; };
             document.querySelector('#downloads button[data-format=mat]').click();
             return null;",
        )
        .await;
    let download = browser
        .wait_for(
            "const d = window.koopDownload; return d.name && d.head ? d : null;",
            Duration::from_secs(10),
            "the model downloaded",
        )
        .await;
    assert_eq!(download["head"], "MATLAB 5.0", "{download}");
    assert_eq!(download["type"], "application/x-matlab-data", "{download}");
    assert!(download["name"].as_str().unwrap().starts_with("ieee68-v"), "{download}");
    assert!(download["name"].as_str().unwrap().ends_with(".mat"), "{download}");
    assert!(download["size"].as_u64().unwrap() > 10_000, "{download}");

    // The damping drops at minute 10; an alarm raised on the server shows within seconds.
    let mut raised = None;
    let mut fed = 17_100;
    while fed < rows.len() {
        let end = (fed + 1_500).min(rows.len());
        feed(&server, &rows, fed, end).await;
        fed = end;
        let alarms = send(&server, reqwest::Method::GET, "/v1/streams/ieee68/alarms", READ, None).await;
        if let Some(first) = alarms["history"].as_array().unwrap().first() {
            raised = Some((Instant::now(), first["mode"].as_u64().unwrap()));
            break;
        }
    }
    let (raised_at, mode) = raised.expect("the stressed system raises an alarm");
    browser
        .wait_for(
            &format!(
                "return [...document.querySelectorAll('#alarms tbody tr')].some(r => r.dataset.mode === '{mode}')"
            ),
            Duration::from_secs(5),
            "the alarm on the page",
        )
        .await;
    eprintln!("alarm of mode {mode} on the page {:?} after the server had it", raised_at.elapsed());
    feed(&server, &rows, fed, rows.len()).await;
    browser
        .wait_for(
            "return [...document.querySelectorAll('#modes tbody td.alarm-critical')].length",
            Duration::from_secs(20),
            "a critical alarm in the modes table",
        )
        .await;
    // The prediction chart refreshes every three seconds.
    tokio::time::sleep(Duration::from_millis(4000)).await;
    keep_screenshot("dashboard-stressed.png", &browser.screenshot().await);

    // Nothing comes in any more: the rate falls to 0 in the list the page polls and in the
    // stream's facts (from the status event sent every second).
    browser
        .wait_for(
            "return document.getElementById('stream-facts').textContent.includes(' 0.0 updates/s') &&
                    [...document.querySelectorAll('#streams tbody tr')].some(r => r.textContent.includes('0.0/s'))",
            Duration::from_secs(10),
            "a rate of 0 once the samples stopped",
        )
        .await;

    let last = browser.execute(PAGE_STATE).await;
    assert_eq!(last["errors"], json!([]), "errors in the page");
    let console = browser.console().await;
    let severe: Vec<_> = console.iter().filter(|(level, _)| level == "SEVERE").collect();
    assert!(severe.is_empty(), "console errors: {severe:?}");
    browser.quit().await;
    server.stop().await;
}
