//! Streams fed by a C37.118.2 source, end to end over loopback: a PMU written here with the
//! project's `c37118` crate serves configuration and data frames, and the real server's
//! client subscribes to it. The model equals the one built from the same samples over
//! HTTP; STAT errors become missing samples counted by reason; a restart resumes without
//! applying a frame twice; configuration changes and reconnections are followed; bad
//! source definitions are refused with 422 at their pointer.

mod common;

use std::time::Duration;

use c37118::{
    AnalogChannel, AnalogKind, Command, CommandFrame, Config, ConfigKind, DataFrame, Format, Nominal, Phasor,
    PhasorChannel, PhasorKind, PmuConfig, Stat, Time, TimeQuality, frame_len,
};
use common::{TestServer, scratch_dir, van_der_pol};
use koopstream::config::ServiceConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TS: f64 = 0.1;
const SOC0: u32 = 1_700_000_000;
const TIME_BASE: u32 = 1_000_000;

/// One PMU with a voltage phasor and the two Van der Pol states as float analogs.
fn config(cfgcnt: u16, extra_analog: bool) -> Config {
    let mut analogs = vec![
        AnalogChannel { name: "X1".into(), kind: AnalogKind::SinglePoint, scale: 1 },
        AnalogChannel { name: "X2".into(), kind: AnalogKind::SinglePoint, scale: 1 },
    ];
    if extra_analog {
        analogs.push(AnalogChannel { name: "X3".into(), kind: AnalogKind::SinglePoint, scale: 1 });
    }
    Config {
        kind: ConfigKind::Cfg2,
        idcode: 7,
        time: Time { soc: SOC0, fracsec: 0, quality: TimeQuality::default() },
        time_base: TIME_BASE,
        pmus: vec![PmuConfig {
            station: "PMU1".into(),
            idcode: 11,
            format: Format { freq_float: true, analog_float: true, phasor_float: true, phasor_polar: true },
            phasors: vec![PhasorChannel { name: "V".into(), kind: PhasorKind::Voltage, scale: 0 }],
            analogs,
            digitals: vec![],
            nominal: Nominal::Hz60,
            cfgcnt,
        }],
        data_rate: 10,
        extras: vec![],
    }
}

/// Sample k's time and its Van der Pol values as the PMU sends them (f32).
fn time_of(k: usize) -> Time {
    let tenths = k as u32;
    Time { soc: SOC0 + tenths / 10, fracsec: (tenths % 10) * 100_000, quality: TimeQuality::default() }
}

fn seconds_of(k: usize) -> f64 {
    let t = time_of(k);
    (u64::from(t.soc) * 1_000_000 + u64::from(t.fracsec)) as f64 / 1e6
}

fn frame(config: &Config, k: usize, x: [f64; 2], stat: u16) -> Vec<u8> {
    let mut data = DataFrame::shaped_for(config);
    data.time = time_of(k);
    let pmu = &mut data.pmus[0];
    pmu.stat = Stat(stat);
    pmu.freq_hz = 60.0;
    pmu.phasors[0] = Phasor::from_polar(1.0, 0.1 * k as f64);
    pmu.analogs[0] = x[0] as f32 as f64;
    pmu.analogs[1] = x[1] as f32 as f64;
    let mut out = Vec::new();
    data.encode(config, &mut out).unwrap();
    out
}

/// The PMU's end of one connection: the stream and the bytes read but not yet used.
struct Peer {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Peer {
    /// Reads one command frame.
    async fn read_command(&mut self) -> Command {
        loop {
            if let Some(len) = frame_len(&self.buffer).unwrap()
                && self.buffer.len() >= len
            {
                let command = CommandFrame::parse(&self.buffer[..len]).unwrap().command;
                self.buffer.drain(..len);
                return command;
            }
            let mut chunk = [0u8; 256];
            let n = tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut chunk)).await.unwrap().unwrap();
            assert!(n > 0, "the client closed the connection");
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// How many command frames arrive within `window` (the client keeps the connection).
    async fn commands_within(&mut self, window: Duration) -> usize {
        let mut count = 0;
        while tokio::time::timeout(window, self.read_command()).await.is_ok() {
            count += 1;
        }
        count
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }
}

/// Accepts the client and answers its commands until it turns data on.
async fn accept_until_data_on(listener: &TcpListener, config: &Config) -> Peer {
    let (stream, _) = tokio::time::timeout(Duration::from_secs(30), listener.accept()).await.unwrap().unwrap();
    let mut peer = Peer { stream, buffer: Vec::new() };
    loop {
        match peer.read_command().await {
            Command::SendCfg2 => {
                let mut bytes = Vec::new();
                config.encode(&mut bytes);
                peer.send(&bytes).await;
            }
            Command::DataOn => return peer,
            _ => {}
        }
    }
}

fn source_definition(id: &str, address: &str) -> Value {
    json!({"id": id, "channels": [{"name": "x1"}, {"name": "x2"}], "ts": TS,
           "dictionary": "state,const,poly:3", "mu": 1e-3, "warmup": 100,
           "source": {"c37118": {"address": address, "idcode": 7, "channels": [
               {"pmu": "PMU1", "quantity": "analog:X1", "name": "x1"},
               {"pmu": 11, "quantity": "analog:X2", "name": "x2"}]}}})
}

fn http_definition(id: &str) -> Value {
    json!({"id": id, "channels": [{"name": "x1"}, {"name": "x2"}], "ts": TS,
           "dictionary": "state,const,poly:3", "mu": 1e-3, "warmup": 100})
}

/// Waits until the stream's status satisfies `done`.
async fn wait_for(server: &TestServer, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = server.get_json(&format!("/v1/streams/{id}")).await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn handled(body: &Value) -> u64 {
    let s = &body["status"];
    s["samples_accepted"].as_u64().unwrap() + s["samples_rejected"]["missing_value"].as_u64().unwrap()
}

/// The same samples over HTTP (missing ones as null), in batches of 50.
async fn send_over_http(server: &TestServer, id: &str, rows: &[(usize, Option<[f64; 2]>)]) {
    for (seq, chunk) in rows.chunks(50).enumerate() {
        let t: Vec<f64> = chunk.iter().map(|(k, _)| seconds_of(*k)).collect();
        let x: Vec<Value> = chunk
            .iter()
            .map(|(_, v)| match v {
                Some(v) => json!([v[0] as f32 as f64, v[1] as f32 as f64]),
                None => json!([null, null]),
            })
            .collect();
        server.ingest(id, &json!({"seq": seq + 1, "t": t, "x": x})).await;
    }
}

/// The identified linear model (A, B, C, offset) and the pairs it was fitted on.
fn operator(model: &Value) -> Value {
    let operator = json!([model["a"], model["b"], model["c"], model["c_offset"], model["pairs"]]);
    assert!(model["a"]["data"].as_array().is_some_and(|a| !a.is_empty()), "no model: {model}");
    operator
}

#[tokio::test]
async fn a_pmu_feeds_the_same_model_as_http_and_stat_errors_are_missing_samples() {
    let mut config_with_labels = ServiceConfig::default();
    config_with_labels.metrics.per_stream_labels = 4;
    let server = TestServer::start_with(config_with_labels).await;
    let pmu = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = pmu.local_addr().unwrap().to_string();
    let data = van_der_pol(400, TS);
    let cfg = config(1, false);
    server.create(source_definition("pmu", &address)).await;

    let mut stream = accept_until_data_on(&pmu, &cfg).await;
    let mut expected = Vec::new();
    for (k, x) in data.iter().enumerate() {
        // A data error, a lost sync and an unlocked clock, each once, after warm-up.
        let stat = match k {
            150 => 0x4000,
            220 => 0x2000,
            300 => 0x0020,
            _ => 0,
        };
        stream.send(&frame(&cfg, k, *x, stat)).await;
        expected.push((k, if stat == 0 { Some(*x) } else { None }));
    }
    let body = wait_for(&server, "pmu", "every frame", |b| handled(b) == 400).await;
    let source = &body["source"];
    assert_eq!(source["connected"], true, "{body}");
    assert_eq!(source["frames_received"], 400);
    assert_eq!(source["samples_submitted"], 400);
    assert_eq!(source["missing"], json!({"data_error": 1, "sync_lost": 1, "unlocked": 1, "missing_value": 0}));
    assert_eq!(source["configuration"], json!({"rate_hz": 10.0, "stations": ["PMU1"], "cfgcnt": [1]}));
    assert_eq!(source["last_timestamp"].as_f64().unwrap(), seconds_of(399));
    assert_eq!(source["clock_quality"], 0);
    assert_eq!(body["status"]["samples_rejected"]["missing_value"], 3);
    assert_eq!(body["definition"]["source"]["c37118"]["channels"][1]["pmu"], 11);

    server.create(http_definition("http")).await;
    send_over_http(&server, "http", &expected).await;
    let over_pmu = common::model(&server, "pmu").await;
    let over_http = common::model(&server, "http").await;
    assert_eq!(operator(&over_pmu), operator(&over_http), "the same samples make the same operator");
    assert_eq!(server.metric_sum("koopstream_source_samples_submitted_total", "stream=\"pmu\"").await, 400.0);
    assert_eq!(server.metric_sum("koopstream_source_samples_missing_total", "reason=\"sync_lost\"").await, 1.0);
    assert_eq!(server.metric_sum("koopstream_source_connected", "stream=\"pmu\"").await, 1.0);
    drop(stream);
    server.stop().await;
}

#[tokio::test]
async fn a_restart_resumes_without_applying_a_frame_twice() {
    let dir = scratch_dir("c37118-restart");
    let config_with_dir = || ServiceConfig { data_dir: dir.clone(), ..ServiceConfig::default() };
    let pmu = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = pmu.local_addr().unwrap().to_string();
    let data = van_der_pol(600, TS);
    let cfg = config(1, false);

    let server = TestServer::start_with(config_with_dir()).await;
    server.create(source_definition("pmu", &address)).await;
    let mut stream = accept_until_data_on(&pmu, &cfg).await;
    for (k, x) in data.iter().enumerate().take(300) {
        stream.send(&frame(&cfg, k, *x, 0)).await;
    }
    wait_for(&server, "pmu", "the first 300 frames", |b| handled(b) == 300).await;
    server.stop().await;
    drop(stream);

    // The PMU sends the last 50 frames again on the new connection, then the rest.
    let server = TestServer::start_with(config_with_dir()).await;
    let mut stream = accept_until_data_on(&pmu, &cfg).await;
    for (k, x) in data.iter().enumerate().skip(250) {
        stream.send(&frame(&cfg, k, *x, 0)).await;
    }
    let body = wait_for(&server, "pmu", "all 600 frames", |b| handled(b) == 600).await;
    assert_eq!(body["source"]["stale_frames"], 50, "{body}");
    assert_eq!(body["status"]["samples_rejected"]["out_of_order"], 0);

    server.create(http_definition("http")).await;
    let all: Vec<_> = data.iter().enumerate().map(|(k, x)| (k, Some(*x))).collect();
    send_over_http(&server, "http", &all).await;
    assert_eq!(
        operator(&common::model(&server, "pmu").await),
        operator(&common::model(&server, "http").await),
        "a restart mid-stream changes nothing"
    );
    drop(stream);
    server.stop().await;
}

#[tokio::test]
async fn configuration_changes_and_reconnections_are_followed() {
    let server = TestServer::start().await;
    let pmu = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = pmu.local_addr().unwrap().to_string();
    let data = van_der_pol(300, TS);
    let first = config(1, false);
    let second = config(2, true);
    server.create(source_definition("pmu", &address)).await;

    let mut stream = accept_until_data_on(&pmu, &first).await;
    for (k, x) in data.iter().enumerate().take(100) {
        stream.send(&frame(&first, k, *x, 0)).await;
    }
    wait_for(&server, "pmu", "100 frames", |b| handled(b) == 100).await;
    // The PMU changes its configuration: the next frame has the new shape and the STAT
    // bit; the client asks for CFG-2 and must get the new one before its frames count.
    stream.send(&frame(&second, 100, data[100], 0x0400)).await;
    assert_eq!(stream.read_command().await, Command::SendCfg2);
    let mut bytes = Vec::new();
    second.encode(&mut bytes);
    stream.send(&bytes).await;
    // The standard keeps the STAT bit set for a while after a change: it must not make the
    // client ask again at every frame.
    for (k, x) in data.iter().enumerate().take(200).skip(101) {
        stream.send(&frame(&second, k, *x, 0x0400)).await;
    }
    let body = wait_for(&server, "pmu", "frames under the new configuration", |b| handled(b) == 199).await;
    assert_eq!(stream.commands_within(Duration::from_millis(300)).await, 0, "no request per frame");
    assert_eq!(body["source"]["configuration"]["cfgcnt"], json!([2]), "{body}");

    // The PMU drops the connection; the client reconnects and goes on.
    drop(stream);
    let mut stream = accept_until_data_on(&pmu, &second).await;
    for (k, x) in data.iter().enumerate().skip(200) {
        stream.send(&frame(&second, k, *x, 0)).await;
    }
    let body = wait_for(&server, "pmu", "frames after reconnecting", |b| handled(b) == 299).await;
    assert_eq!(body["source"]["connects"], 2, "{body}");
    assert!(body["source"]["last_error"]["message"].as_str().unwrap().contains("closed"), "{body}");
    drop(stream);
    server.stop().await;
}

#[tokio::test]
async fn bad_sources_are_refused_at_their_pointer() {
    let server = TestServer::start().await;
    let base = source_definition("bad", "127.0.0.1:4712");
    let cases = [
        ("/source/c37118/address", json!("no-port")),
        // Well-formed, but not a host the configuration allows (loopback by default).
        ("/source/c37118/address", json!("192.0.2.7:4712")),
        ("/source/c37118/channels/0/quantity", json!("hz")),
        ("/source/c37118/channels/1/name", json!("x9")),
    ];
    for (pointer, value) in cases {
        let mut body = base.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        let r = server.post_json("/v1/streams", &body).await;
        assert_eq!(r.status().as_u16(), 422, "{pointer}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["pointer"], pointer, "{problem}");
    }
    let mut one_missing = base.clone();
    one_missing["source"]["c37118"]["channels"].as_array_mut().unwrap().pop();
    let r = server.post_json("/v1/streams", &one_missing).await;
    assert_eq!(r.status().as_u16(), 422);
    let (_, list) = server.get_json("/v1/streams").await;
    assert_eq!(list, json!([]), "a refused definition creates nothing");
    server.stop().await;
}

/// A PMU nobody here wrote: pyc37's `Pmu` (PyPI) serves frames of a damped oscillator, and
/// the model koopstream builds from them equals the one from the same samples over HTTP.
#[tokio::test]
#[ignore = "needs pyc37 (PYTHON_FOR_C37 from tests/c37118/setup-venv.sh)"]
async fn a_pyc37_pmu_feeds_the_same_model_as_http() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    use std::process::{Command as Process, Stdio};

    let python = std::env::var("PYTHON_FOR_C37")
        .expect("PYTHON_FOR_C37 names the venv's interpreter (bash tests/c37118/setup-venv.sh prints it)");
    const FRAMES: usize = 300;
    const RATE: u32 = 50;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut peer = Process::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c37118/pmu_peer.py"))
        .args([port.to_string(), FRAMES.to_string(), RATE.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group: pyc37 forks a process per client, and all of them end with it.
        .process_group(0)
        .spawn()
        .expect("python starts");
    // Ends the peer's process group however the test ends (a panic included).
    struct KillGroup(u32);
    impl Drop for KillGroup {
        fn drop(&mut self) {
            let _ = Process::new("kill").args(["--", &format!("-{}", self.0)]).status();
        }
    }
    let _group = KillGroup(peer.id());
    // The peer's own lines start with `KS ` (pyc37 logs to standard output too).
    let mut lines = BufReader::new(peer.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.strip_prefix("KS ").map(str::to_owned));
    assert_eq!(lines.next().as_deref(), Some("ready"));

    let server = TestServer::start().await;
    let ts = 1.0 / f64::from(RATE);
    let definition = |id: &str, source: bool| {
        let mut d = json!({"id": id, "channels": [{"name": "x1"}, {"name": "x2"}], "ts": ts,
                           "dictionary": "state", "mu": 1e-6, "warmup": 50});
        if source {
            d["source"] = json!({"c37118": {"address": format!("127.0.0.1:{port}"), "idcode": 7, "channels": [
                {"pmu": "PYPMU", "quantity": "analog:X1", "name": "x1"},
                {"pmu": 11, "quantity": "analog:X2", "name": "x2"}]}});
        }
        d
    };
    server.create(definition("pyc37", true)).await;
    let sent: Vec<(f64, [f64; 2])> = tokio::task::spawn_blocking(move || {
        let mut sent = Vec::new();
        for line in lines.by_ref() {
            if line == "sent" {
                // Keep reading whatever else comes, so the peer never blocks on a full pipe.
                std::thread::spawn(move || lines.for_each(drop));
                break;
            }
            let v: Value = serde_json::from_str(&line).unwrap();
            let micros = v["soc"].as_u64().unwrap() * 1_000_000 + v["fracsec"].as_u64().unwrap();
            let x = [v["x"][0].as_f64().unwrap() as f32 as f64, v["x"][1].as_f64().unwrap() as f32 as f64];
            sent.push((micros as f64 / 1e6, x));
        }
        sent
    })
    .await
    .unwrap();
    assert_eq!(sent.len(), FRAMES);
    // pyc37 paces frames itself (about 0.1 s each); allow for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let body = loop {
        let (_, body) = server.get_json("/v1/streams/pyc37").await;
        if handled(&body) == FRAMES as u64 {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "pyc37's frames did not all arrive: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(body["source"]["configuration"]["stations"], json!(["PYPMU"]), "{body}");
    assert_eq!(body["status"]["samples_rejected"]["missing_value"], 0);

    server.create(definition("http", false)).await;
    for (seq, chunk) in sent.chunks(50).enumerate() {
        let t: Vec<f64> = chunk.iter().map(|(t, _)| *t).collect();
        let x: Vec<Value> = chunk.iter().map(|(_, x)| json!(x)).collect();
        server.ingest("http", &json!({"seq": seq + 1, "t": t, "x": x})).await;
    }
    assert_eq!(
        operator(&common::model(&server, "pyc37").await),
        operator(&common::model(&server, "http").await),
        "pyc37's frames make the model the same samples make over HTTP"
    );
    server.stop().await;
    drop(peer.stdin.take());
    drop(_group);
    let _ = peer.wait();
}

/// koopstream subscribed to its own `pmu-serve`: Van der Pol as integer analogs, whose unit
/// the source's `scale` gives (pmu-serve's integer analogs are integer * ANUNIT * 1e-5).
/// The model equals the one from the decoded values over HTTP.
#[tokio::test]
async fn a_stream_fed_by_pmu_serve_in_integer_format_scales_its_analogs() {
    use clap::Parser;
    use koopstream::cmd::{Cli, Command as Subcommand};
    use koopstream::pmu_serve::frames::ANALOG_UNIT;

    let line =
        ["koopstream", "pmu-serve", "--system", "vdp", "--rate", "10", "--duration", "40", "--format", "integer"];
    let Some(Subcommand::PmuServe(args)) = Cli::try_parse_from(line).unwrap().command else { unreachable!() };
    let mut config = args.serve_config().unwrap();
    config.speed = 0.0;
    let source = config.source.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let pmus = tokio::spawn(koopstream::pmu_serve::run(listener, None, config, async move {
        let _ = stopped.await;
    }));

    // What a PDC decodes, frame by frame.
    let cfg = source.config().clone();
    let mut expected = Vec::new();
    for k in 0..source.len() {
        let mut frame = DataFrame::shaped_for(&cfg);
        source.fill(k, &mut frame);
        let mut bytes = Vec::new();
        frame.encode(&cfg, &mut bytes).unwrap();
        let decoded = DataFrame::parse(&bytes, &cfg).unwrap();
        let t = &decoded.time;
        let seconds = (u64::from(t.soc) * 1_000_000 + u64::from(t.fracsec)) as f64 / 1e6;
        let a = &decoded.pmus[0].analogs;
        expected.push((seconds, [a[0] * ANALOG_UNIT, a[1] * ANALOG_UNIT]));
    }

    let server = TestServer::start().await;
    let station = cfg.pmus[0].station.clone();
    let names: Vec<String> = cfg.pmus[0].analogs.iter().map(|a| a.name.clone()).collect();
    let mut definition = http_definition("served");
    definition["source"] = json!({"c37118": {"address": address, "idcode": cfg.idcode, "channels": [
        {"pmu": station, "quantity": format!("analog:{}", names[0]), "name": "x1", "scale": ANALOG_UNIT},
        {"pmu": station, "quantity": format!("analog:{}", names[1]), "name": "x2", "scale": ANALOG_UNIT}]}});
    server.create(definition).await;
    let frames = expected.len() as u64;
    wait_for(&server, "served", "every frame of pmu-serve", |b| handled(b) == frames).await;

    server.create(http_definition("http")).await;
    for (seq, chunk) in expected.chunks(50).enumerate() {
        let t: Vec<f64> = chunk.iter().map(|(t, _)| *t).collect();
        let x: Vec<Value> = chunk.iter().map(|(_, x)| json!(x)).collect();
        server.ingest("http", &json!({"seq": seq + 1, "t": t, "x": x})).await;
    }
    let served = common::model(&server, "served").await;
    assert_eq!(operator(&served), operator(&common::model(&server, "http").await));
    server.stop().await;
    let _ = stop.send(());
    let _ = pmus.await;
}

/// The same over UDP: commands and data frames as datagrams to and from `pmu-serve --udp`.
#[tokio::test]
async fn a_stream_is_fed_over_udp() {
    use clap::Parser;
    use koopstream::cmd::{Cli, Command as Subcommand};

    let line = ["koopstream", "pmu-serve", "--system", "vdp", "--rate", "10", "--duration", "30"];
    let Some(Subcommand::PmuServe(args)) = Cli::try_parse_from(line).unwrap().command else { unreachable!() };
    let mut config = args.serve_config().unwrap();
    // Paced (at 50 times real time) rather than as fast as possible: UDP has no flow control.
    config.speed = 50.0;
    let frames = config.source.len() as u64;
    let station = config.source.config().pmus[0].station.clone();
    let idcode = config.source.idcode();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = udp.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let pmus = tokio::spawn(koopstream::pmu_serve::run(tcp, Some(udp), config, async move {
        let _ = stopped.await;
    }));

    let server = TestServer::start().await;
    let mut definition = http_definition("udp");
    definition["source"] = json!({"c37118": {"address": address, "idcode": idcode, "transport": "udp", "channels": [
        {"pmu": station, "quantity": "analog:x1", "name": "x1"},
        {"pmu": station, "quantity": "analog:x2", "name": "x2"}]}});
    server.create(definition).await;
    // The client joins a paced stream a little after its start: it gets the frames from then on.
    let body = wait_for(&server, "udp", "frames over UDP", |b| {
        b["source"]["last_timestamp"].as_f64().is_some() && b["status"]["samples_accepted"].as_u64() > Some(frames / 2)
    })
    .await;
    assert_eq!(body["definition"]["source"]["c37118"]["transport"], "udp");
    assert_eq!(body["source"]["configuration"]["stations"], json!([station]), "{body}");
    server.stop().await;
    let _ = stop.send(());
    let _ = pmus.await;
}

/// The standard's TCP/UDP mode: commands and configuration over TCP, data frames as
/// datagrams to the client's `udp_port` (`pmu-serve --udp-data`).
#[tokio::test]
async fn a_stream_is_fed_by_commands_over_tcp_and_data_over_udp() {
    use clap::Parser;
    use koopstream::cmd::{Cli, Command as Subcommand};

    // The client's data port: a free one, released for the client to bind.
    let data_port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let to = format!("127.0.0.1:{data_port}");
    let line = ["koopstream", "pmu-serve", "--system", "vdp", "--rate", "10", "--duration", "30", "--udp-data", &to];
    let Some(Subcommand::PmuServe(args)) = Cli::try_parse_from(line).unwrap().command else { unreachable!() };
    let mut config = args.serve_config().unwrap();
    config.speed = 50.0;
    let frames = config.source.len() as u64;
    let station = config.source.config().pmus[0].station.clone();
    let idcode = config.source.idcode();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = tcp.local_addr().unwrap().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let pmus = tokio::spawn(koopstream::pmu_serve::run(tcp, None, config, async move {
        let _ = stopped.await;
    }));

    let server = TestServer::start().await;
    let mut definition = http_definition("tcp-udp");
    definition["source"] = json!({"c37118": {"address": address, "idcode": idcode, "transport": "tcp-udp",
        "udp_port": data_port, "channels": [
        {"pmu": station, "quantity": "analog:x1", "name": "x1"},
        {"pmu": station, "quantity": "analog:x2", "name": "x2"}]}});
    server.create(definition).await;
    let body = wait_for(&server, "tcp-udp", "data frames over UDP", |b| {
        b["status"]["samples_accepted"].as_u64() > Some(frames / 2)
    })
    .await;
    assert_eq!(body["definition"]["source"]["c37118"]["udp_port"], data_port, "{body}");
    assert_eq!(body["source"]["configuration"]["stations"], json!([station]));

    // `udp_port` goes with `tcp-udp` only, and `tcp-udp` needs it.
    let mut wrong = http_definition("wrong");
    wrong["source"] = json!({"c37118": {"address": address, "idcode": idcode, "transport": "tcp-udp", "channels": [
        {"pmu": station, "quantity": "analog:x1", "name": "x1"},
        {"pmu": station, "quantity": "analog:x2", "name": "x2"}]}});
    let r = server.post_json("/v1/streams", &wrong).await;
    assert_eq!(r.status().as_u16(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["pointer"], "/source/c37118/udp_port");
    server.stop().await;
    let _ = stop.send(());
    let _ = pmus.await;
}
