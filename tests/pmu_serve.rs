//! `pmu-serve` end to end over loopback: the server runs in-process on 127.0.0.1:0 with a
//! short record; a raw TCP client written here with the c37118 crate turns data off, asks
//! for CFG-2 and turns data on, and the frames it receives are compared with the CSV that
//! `koopstream simulate` writes for the same options and seed: float values are exactly
//! the f32 rounding of the simulator's value (computed as the server documents:
//! volts = pu * VOLTS_PER_PU, radians from degrees), integer values within half a
//! quantisation step. Time stamps step by 1/rate. Every wait is bounded.
//!
//! The Python peer (`tests/c37118/pdc_peer.py`, on pyc37) is ignored unless
//! PYTHON_FOR_C37 names a Python with pyc37 (`tests/c37118/setup-venv.sh`); `.ci/run` runs it.

use std::net::SocketAddr;
use std::time::Duration;

use c37118::{Command, CommandFrame, Config, DataError, DataFrame, FrameKind, HeaderFrame, Phasor, Time, parse_prefix};
use clap::Parser;
use koopstream::cmd::{Cli, Command as Subcommand, PmuServeArgs};
use koopstream::pmu_serve::frames::{ANALOG_UNIT, PHUNIT, STAT_MISSING, VOLTS_PER_PU};
use koopstream::pmu_serve::{ServeConfig, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(20);

fn pmu_serve_args(options: &[&str]) -> PmuServeArgs {
    let line = ["koopstream", "pmu-serve"].iter().chain(options).copied();
    match Cli::try_parse_from(line).expect("valid options").command {
        Some(Subcommand::PmuServe(args)) => args,
        other => panic!("not pmu-serve: {other:?}"),
    }
}

/// The CSV `koopstream simulate` writes for `options`: names and rows (time first).
fn simulate_csv(options: &[&str]) -> (Vec<String>, Vec<Vec<f64>>) {
    let line = ["koopstream", "simulate"].iter().chain(options).copied();
    let Some(Subcommand::Simulate(args)) = Cli::try_parse_from(line).expect("valid options").command else {
        panic!("not simulate")
    };
    let mut csv = Vec::new();
    koopstream::simulate_cli::run_simulate(&args, &mut csv).expect("simulates");
    let text = String::from_utf8(csv).unwrap();
    let mut lines = text.lines();
    let names = lines.next().unwrap().split(',').map(str::to_owned).collect();
    let rows = lines.map(|l| l.split(',').map(|v| v.parse::<f64>().unwrap()).collect()).collect();
    (names, rows)
}

struct Server {
    address: SocketAddr,
    config: ServeConfig,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), koopstream::pmu_serve::ServeError>>,
}

impl Server {
    async fn start(options: &[&str]) -> Server {
        Self::start_with(options, None).await
    }

    async fn start_with(options: &[&str], udp: Option<UdpSocket>) -> Server {
        let config = pmu_serve_args(options).serve_config().expect("serves");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, udp, config.clone(), async {
            let _ = stopped.await;
        }));
        Server { address, config, stop: Some(stop), task }
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let result = tokio::time::timeout(WAIT, &mut self.task).await.expect("stops in time");
        result.expect("no panic").expect("serves without error");
    }
}

/// A raw C37.118.2 client over TCP.
struct Client {
    socket: TcpStream,
    buf: Vec<u8>,
    idcode: u16,
}

impl Client {
    async fn connect(address: SocketAddr, idcode: u16) -> Client {
        let socket = tokio::time::timeout(WAIT, TcpStream::connect(address)).await.unwrap().unwrap();
        Client { socket, buf: Vec::new(), idcode }
    }

    async fn command(&mut self, command: Command) {
        self.command_to(self.idcode, command).await;
    }

    async fn command_to(&mut self, idcode: u16, command: Command) {
        let mut out = Vec::new();
        CommandFrame { idcode, time: Time::default(), command, extended: Vec::new() }.encode(&mut out);
        self.socket.write_all(&out).await.unwrap();
    }

    /// The next frame, or `None` when the server closed the connection.
    async fn frame(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Some(len) = c37118::frame_len(&self.buf).expect("well-formed stream")
                && self.buf.len() >= len
            {
                return Some(self.buf.drain(..len).collect());
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(WAIT, self.socket.read(&mut chunk)).await.expect("a frame in time").ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn config(&mut self) -> Config {
        self.command(Command::SendCfg2).await;
        let frame = self.frame().await.expect("a frame");
        Config::parse(&frame).expect("CFG-2")
    }

    async fn data(&mut self, config: &Config, n: usize) -> Vec<DataFrame> {
        let mut frames = Vec::with_capacity(n);
        while frames.len() < n {
            let frame = self.frame().await.expect("data");
            frames.push(DataFrame::parse(&frame, config).expect("a data frame of the configuration"));
        }
        frames
    }
}

fn column(names: &[String], name: &str) -> Option<usize> {
    names.iter().position(|n| n == name)
}

fn f32_of(x: f64) -> f64 {
    f64::from(x as f32)
}

/// The same value, or both NaN.
fn same(got: f64, want: f64) -> bool {
    got == want || (got.is_nan() && want.is_nan())
}

fn check_time_steps(frames: &[DataFrame], rate: f64) {
    for pair in frames.windows(2) {
        let step = pair[1].time.seconds(1_000_000) - pair[0].time.seconds(1_000_000);
        assert!((step - 1.0 / rate).abs() < 1.5e-6, "time step {step}");
        assert_eq!(pair[1].time.quality.code, 0, "time locked");
    }
}

/// Checks the PMU stream of `buses` against the simulator's CSV.
fn check_buses(frames: &[DataFrame], buses: &[usize], csv: &(Vec<String>, Vec<Vec<f64>>), float: bool, polar: bool) {
    let (names, rows) = csv;
    for (k, frame) in frames.iter().enumerate() {
        let row = &rows[k];
        for (data, &bus) in frame.pmus.iter().zip(buses) {
            let get = |q: &str| column(names, &format!("b{bus}_{q}")).map_or(0.0, |j| row[j]);
            let (vm, va, f, rocof) = (get("vm"), get("va"), get("f"), get("rocof"));
            let missing = [vm, va, f, rocof].iter().any(|x| x.is_nan());
            assert_eq!(data.stat.0, if missing { STAT_MISSING } else { 0 }, "STAT of bus {bus}, sample {k}");
            let want = Phasor::from_polar(vm * VOLTS_PER_PU, va.to_radians());
            let got = data.phasors[0];
            if float {
                if polar {
                    // Sent as the f32 pair (magnitude, angle); the crate rebuilds re/im from it.
                    let sent = Phasor::from_polar(f32_of(want.magnitude()), f32_of(want.angle()));
                    assert!(same(got.re, sent.re) && same(got.im, sent.im), "bus {bus} k {k}: {got:?} {want:?}");
                } else {
                    assert!(same(got.re, f32_of(want.re)) && same(got.im, f32_of(want.im)), "bus {bus} k {k}");
                }
                assert!(same(data.freq_hz, f32_of(f)), "FREQ bus {bus} k {k}: {} {f}", data.freq_hz);
                assert!(same(data.rocof, f32_of(rocof)), "DFREQ bus {bus} k {k}");
            } else if !missing {
                let step = f64::from(PHUNIT) * 1e-5;
                if polar {
                    assert!((got.magnitude() - want.magnitude()).abs() <= step / 2.0 + 1e-6, "bus {bus} k {k}");
                    let d = (got.angle() - want.angle() + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU)
                        - std::f64::consts::PI;
                    assert!(d.abs() <= 0.5e-4 + 1e-9, "angle bus {bus} k {k}: {d}");
                } else {
                    assert!((got.re - want.re).abs() <= step / 2.0 + 1e-6, "re bus {bus} k {k}");
                    assert!((got.im - want.im).abs() <= step / 2.0 + 1e-6, "im bus {bus} k {k}");
                }
                assert!((data.freq_hz - f).abs() <= 0.5e-3 + 1e-9, "FREQ bus {bus} k {k}");
                assert!((data.rocof - rocof).abs() <= 0.5e-2 + 1e-9, "DFREQ bus {bus} k {k}");
            }
        }
    }
}

const BUSES: [usize; 3] = [29, 41, 65];

async fn bus_stream(format: &str, coordinates: &str, dropout: &str) {
    let options = [
        "--system",
        "ieee68",
        "--measure",
        "pmu",
        "--buses",
        "29,41,65",
        "--duration",
        "2",
        "--rate",
        "30",
        "--seed",
        "3",
        "--speed",
        "0",
        "--dropout",
        dropout,
    ];
    let mut serve = options.to_vec();
    serve.extend(["--format", format, "--coordinates", coordinates]);
    let server = Server::start(&serve).await;
    let mut client = Client::connect(server.address, 7).await;
    client.command(Command::DataOff).await;
    let config = client.config().await;
    let stations: Vec<_> = config.pmus.iter().map(|p| (p.station.as_str(), p.idcode)).collect();
    assert_eq!(stations, [("BUS29", 1029), ("BUS41", 1041), ("BUS65", 1065)]);
    let float = format == "float";
    let polar = coordinates == "polar";
    for pmu in &config.pmus {
        assert_eq!(pmu.phasors.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["V"]);
        assert_eq!(pmu.phasors[0].scale, PHUNIT);
        assert!(pmu.analogs.is_empty() && pmu.digitals.is_empty());
        assert_eq!((pmu.format.phasor_float, pmu.format.freq_float, pmu.format.phasor_polar), (float, float, polar));
        assert_eq!(pmu.nominal.hz(), 60.0);
    }
    assert_eq!((config.idcode, config.data_rate, config.time_base), (7, 30, 1_000_000));
    client.command(Command::DataOn).await;
    let frames = client.data(&config, 61).await;
    check_time_steps(&frames, 30.0);
    assert_eq!(frames[0].time, server.config.source.time(0));
    // The record has 61 samples: then data stops, and the connection stays open.
    client.command(Command::SendHeader).await;
    let header = client.frame().await.expect("header");
    assert_eq!(parse_prefix(&header).unwrap().kind, FrameKind::Header);
    let mut simulate = options[..options.len() - 4].to_vec();
    simulate.extend(["--quantities", "vm,va,f,rocof", "--dropout", dropout]);
    let csv = simulate_csv(&simulate);
    assert_eq!(csv.1.len(), 61);
    check_buses(&frames, &BUSES, &csv, float, polar);
    if dropout != "0" {
        let lost =
            frames.iter().flat_map(|f| &f.pmus).filter(|p| p.stat.data_error() == DataError::PmuErrorNoData).count();
        assert!(lost > 0, "dropouts reach the STAT words");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn ieee68_pmus_float_polar() {
    bus_stream("float", "polar", "0").await;
}

#[tokio::test]
async fn ieee68_pmus_float_rectangular_with_dropouts() {
    bus_stream("float", "rectangular", "0.02").await;
}

#[tokio::test]
async fn ieee68_pmus_integer_rectangular() {
    bus_stream("integer", "rectangular", "0").await;
}

#[tokio::test]
async fn ieee68_pmus_integer_polar_with_dropouts() {
    bus_stream("integer", "polar", "0.02").await;
}

async fn analog_stream(system: &str, format: &str) {
    let options = ["--system", system, "--duration", "3", "--rate", "10", "--seed", "5", "--dropout", "0.05"];
    let mut serve = options.to_vec();
    serve.extend(["--speed", "0", "--format", format, "--idcode", "12"]);
    let server = Server::start(&serve).await;
    let mut client = Client::connect(server.address, 12).await;
    client.command(Command::DataOff).await;
    let config = client.config().await;
    let (names, rows) = simulate_csv(&options);
    assert_eq!(config.pmus.len(), 1);
    let pmu = &config.pmus[0];
    assert_eq!((pmu.station.as_str(), pmu.idcode, config.data_rate), (system.to_uppercase().as_str(), 12, 10));
    let channels: Vec<_> = pmu.analogs.iter().map(|a| a.name.clone()).collect();
    assert_eq!(channels, names[1..]);
    assert_eq!(pmu.format.analog_float, format == "float");
    client.command(Command::DataOn).await;
    let frames = client.data(&config, rows.len()).await;
    check_time_steps(&frames, 10.0);
    for (k, frame) in frames.iter().enumerate() {
        let data = &frame.pmus[0];
        let row = &rows[k][1..];
        let missing = row.iter().any(|x| x.is_nan());
        assert_eq!(data.stat.0, if missing { STAT_MISSING } else { 0 }, "sample {k}");
        assert_eq!((data.freq_hz, data.rocof), (60.0, 0.0));
        for ((got, &want), channel) in data.analogs.iter().zip(row).zip(&pmu.analogs) {
            if format == "float" {
                assert!(same(*got, f32_of(want)), "{} k {k}: {got} {want}", channel.name);
            } else if want.is_nan() {
                assert_eq!(*got, 0.0);
            } else {
                let step = f64::from(channel.scale) * ANALOG_UNIT;
                assert!((got * ANALOG_UNIT - want).abs() <= step / 2.0 + 1e-12, "{} k {k}: {got} {want}", channel.name);
            }
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn vdp_analogs_float() {
    analog_stream("vdp", "float").await;
}

#[tokio::test]
async fn vdp_analogs_integer() {
    analog_stream("vdp", "integer").await;
}

#[tokio::test]
async fn ieee68_machine_states_integer() {
    analog_stream("ieee68", "integer").await;
}

/// Commands with another IDCODE are ignored, CFG-1 and the header answer, data off stops
/// the stream, a malformed frame closes only its own connection.
#[tokio::test]
async fn protocol_commands_and_errors() {
    // Long enough that the socket buffers cannot take the whole record before data off.
    let server = Server::start(&["--system", "vdp", "--duration", "2000", "--rate", "100", "--speed", "0"]).await;
    let mut bad = Client::connect(server.address, 7).await;
    let mut client = Client::connect(server.address, 7).await;
    // Another IDCODE: ignored, so the first answer is to the CFG-1 request that follows.
    client.command_to(99, Command::SendCfg2).await;
    client.command(Command::SendCfg1).await;
    let cfg1 = client.frame().await.unwrap();
    assert_eq!(parse_prefix(&cfg1).unwrap().kind, FrameKind::Cfg1);
    let config = Config::parse(&cfg1).unwrap();
    client.command(Command::SendHeader).await;
    let header = HeaderFrame::parse(&client.frame().await.unwrap()).unwrap();
    let text = String::from_utf8(header.text).unwrap();
    assert!(text.contains("koopstream pmu-serve") && text.contains("vdp"), "{text}");
    // CFG-3 describes the same stations, channels and rate as CFG-2.
    let cfg2 = client.config().await;
    client.command(Command::SendCfg3).await;
    let cfg3_frame = client.frame().await.unwrap();
    assert_eq!(parse_prefix(&cfg3_frame).unwrap().kind, FrameKind::Cfg3);
    let cfg3 = Config::parse(&cfg3_frame).expect("CFG-3");
    assert_eq!((cfg3.idcode, cfg3.time_base, cfg3.data_rate), (cfg2.idcode, cfg2.time_base, cfg2.data_rate));
    assert_eq!(cfg3.pmus.len(), cfg2.pmus.len());
    assert_eq!(cfg3.extras.len(), cfg2.pmus.len());
    for (a, b) in cfg3.pmus.iter().zip(&cfg2.pmus) {
        assert_eq!(
            (&a.station, a.idcode, a.format, a.nominal, a.cfgcnt),
            (&b.station, b.idcode, b.format, b.nominal, b.cfgcnt)
        );
        let phasors = |p: &c37118::PmuConfig| p.phasors.iter().map(|c| (c.name.clone(), c.kind)).collect::<Vec<_>>();
        assert_eq!(phasors(a), phasors(b));
        let analogs = |p: &c37118::PmuConfig| p.analogs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        assert_eq!(analogs(a), analogs(b));
        assert_eq!(a.digitals, b.digitals);
    }
    client.command(Command::DataOn).await;
    let first = client.data(&config, 5).await;
    assert_eq!(first[0].time, server.config.source.time(0));
    client.command(Command::DataOff).await;
    // Whatever was in flight before data off, then nothing: the next frame is the header.
    client.command(Command::SendHeader).await;
    let mut in_flight = 0;
    loop {
        let frame = client.frame().await.unwrap();
        match parse_prefix(&frame).unwrap().kind {
            FrameKind::Data => in_flight += 1,
            FrameKind::Header => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(in_flight < 200_000, "data off stops the stream");
    // Data on again continues where the stream stopped (unpaced streams).
    client.command(Command::DataOn).await;
    let again = client.data(&config, 1).await;
    assert_eq!(again[0].time, server.config.source.time(5 + in_flight));

    // A frame that is not a command frame, then garbage: the connection is closed.
    let mut frame = Vec::new();
    HeaderFrame { idcode: 7, time: Time::default(), text: b"hello".to_vec() }.encode(&mut frame);
    bad.socket.write_all(&frame).await.unwrap();
    assert!(bad.frame().await.is_none(), "closed after a malformed frame");
    let mut garbage = Client::connect(server.address, 7).await;
    garbage.socket.write_all(&[0x55; 64]).await.unwrap();
    assert!(garbage.frame().await.is_none(), "closed after garbage");
    // The first client is still served.
    client.command(Command::DataOff).await;
    client.command(Command::SendCfg2).await;
    loop {
        let frame = client.frame().await.unwrap();
        if parse_prefix(&frame).unwrap().kind == FrameKind::Cfg2 {
            break;
        }
    }
    server.shutdown().await;
}

/// At speed 1 each frame leaves at the wall-clock instant of its time stamp: never early
/// (which would show a drifting or unpaced schedule), and late only by the machine's load.
#[tokio::test]
async fn real_time_pacing() {
    let server = Server::start(&["--system", "vdp", "--duration", "10", "--rate", "20", "--speed", "1"]).await;
    let mut client = Client::connect(server.address, 7).await;
    let config = client.config().await;
    client.command(Command::DataOn).await;
    let mut frames = Vec::new();
    let mut lateness = Vec::new();
    while frames.len() < 21 {
        let frame = client.data(&config, 1).await.remove(0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        lateness.push(now - frame.time.seconds(1_000_000));
        frames.push(frame);
    }
    check_time_steps(&frames, 20.0);
    // The first frame is the latest one due when data went on, up to one period old.
    assert!(lateness[0] > -0.02 && lateness[0] < 0.05 + 0.5, "first frame {} s late", lateness[0]);
    for (k, late) in lateness.iter().enumerate().skip(1) {
        assert!(*late > -0.02, "frame {k} is {} s early", -late);
        assert!(*late < 0.5, "frame {k} is {late} s late");
    }
    server.shutdown().await;
}

/// More clients than allowed: the extra one is closed at once, the others are served.
#[tokio::test]
async fn clients_are_bounded() {
    let server = Server::start(&["--system", "vdp", "--duration", "1", "--speed", "0", "--max-clients", "2"]).await;
    let mut a = Client::connect(server.address, 7).await;
    let mut b = Client::connect(server.address, 7).await;
    // Both are accepted before the third connects.
    let _ = a.config().await;
    let _ = b.config().await;
    let mut c = Client::connect(server.address, 7).await;
    assert!(c.frame().await.is_none(), "a third client is closed");
    drop(a);
    // A freed place takes a new client (the server notices the close on its next read).
    let mut d = None;
    for _ in 0..50 {
        let mut client = Client::connect(server.address, 7).await;
        client.command(Command::SendCfg2).await;
        if client.frame().await.is_some() {
            d = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(d.is_some(), "a place frees when a client leaves");
    let _ = b.config().await;
    server.shutdown().await;
}

/// UDP: commands in datagrams, answers and data frames to the sender of the latest command.
#[tokio::test]
async fn udp_commands_and_data() {
    let server_udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_address = server_udp.local_addr().unwrap();
    let server =
        Server::start_with(&["--system", "vdp", "--duration", "2", "--rate", "10", "--speed", "0"], Some(server_udp))
            .await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let send = async |command: Command| {
        let mut out = Vec::new();
        CommandFrame { idcode: 7, time: Time::default(), command, extended: Vec::new() }.encode(&mut out);
        client.send_to(&out, server_address).await.unwrap();
    };
    let receive = async || {
        let mut buf = vec![0u8; 65_536];
        let (n, _) = tokio::time::timeout(WAIT, client.recv_from(&mut buf)).await.expect("a datagram").unwrap();
        buf.truncate(n);
        buf
    };
    // Garbage is dropped; the session goes on.
    client.send_to(&[0xAA, 0x41, 0, 3], server_address).await.unwrap();
    send(Command::SendCfg2).await;
    let config = Config::parse(&receive().await).expect("CFG-2 in one datagram");
    assert_eq!(config.pmus[0].station, "VDP");
    send(Command::DataOn).await;
    let mut frames = Vec::new();
    while frames.len() < 21 {
        let datagram = receive().await;
        frames.push(DataFrame::parse(&datagram, &config).expect("one data frame per datagram"));
    }
    check_time_steps(&frames, 10.0);
    assert_eq!(frames[0].time, server.config.source.time(0));
    server.shutdown().await;
}

/// The Python peer's decoded values against the simulator's CSV (see pdc_peer.py).
fn check_python_peer(serve: &[&str], simulate: &[&str], buses: &[usize], float: bool, frames: usize) {
    let Some(python) = std::env::var_os("PYTHON_FOR_C37") else {
        panic!("set PYTHON_FOR_C37 (bash tests/c37118/setup-venv.sh prints it)")
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(Server::start(serve));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c37118/pdc_peer.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .args(["127.0.0.1", &server.address.port().to_string(), "7", &frames.to_string()])
        .output()
        .expect("python runs");
    runtime.block_on(server.shutdown());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "pdc_peer.py failed: {stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let (names, rows) = simulate_csv(simulate);
    assert_eq!(doc["idcode"], 7);
    assert_eq!(doc["time_base"], 1_000_000);
    assert!(doc["header"].as_str().unwrap().starts_with("koopstream pmu-serve"), "{}", doc["header"]);
    let received = doc["frames"].as_array().unwrap();
    assert_eq!(received.len(), frames);
    let value = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let times: Vec<f64> = received.iter().map(|f| value(&f["time"])).collect();
    let rate = doc["data_rate"].as_f64().unwrap();
    for pair in times.windows(2) {
        assert!((pair[1] - pair[0] - 1.0 / rate).abs() < 2e-6, "time step {}", pair[1] - pair[0]);
    }
    let close =
        |got: f64, want: f64, tolerance: f64| (got.is_nan() && want.is_nan()) || (got - want).abs() <= tolerance;
    if buses.is_empty() {
        let channels: Vec<&str> = doc["channels"][0].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert_eq!(channels, names[1..]);
        // Integer analogs: the scale of each channel is the server's (ANUNIT), checked in
        // the Rust tests; here the tolerance is the coarsest step of a 16-bit channel.
        for (k, frame) in received.iter().enumerate() {
            let pmu = &frame["pmus"][0];
            let row = &rows[k][1..];
            let missing = row.iter().any(|x| x.is_nan());
            assert_eq!(pmu["status"], if missing { "error" } else { "ok" }, "sample {k}");
            for (got, &want) in pmu["analogs"].as_array().unwrap().iter().zip(row) {
                let got = value(got);
                if float {
                    assert!(close(got, f32_of(want), 0.0), "k {k}: {got} {want}");
                } else if !want.is_nan() {
                    assert!((got - want).abs() <= 1e-3, "k {k}: {got} {want}");
                }
            }
        }
    } else {
        let stations: Vec<String> = buses.iter().map(|b| format!("BUS{b}")).collect();
        assert_eq!(doc["stations"], serde_json::json!(stations));
        let idcodes: Vec<usize> = buses.iter().map(|b| 1000 + b).collect();
        assert_eq!(doc["idcodes"], serde_json::json!(idcodes));
        for (k, frame) in received.iter().enumerate() {
            for (pmu, &bus) in frame["pmus"].as_array().unwrap().iter().zip(buses) {
                assert_eq!(pmu["analogs"], serde_json::json!([]));
                let get = |q: &str| column(&names, &format!("b{bus}_{q}")).map_or(0.0, |j| rows[k][j]);
                let (vm, va, f, rocof) = (get("vm"), get("va"), get("f"), get("rocof"));
                let missing = [vm, va, f, rocof].iter().any(|x| x.is_nan());
                assert_eq!(pmu["status"], if missing { "error" } else { "ok" }, "bus {bus} sample {k}");
                let want = Phasor::from_polar(vm * VOLTS_PER_PU, va.to_radians());
                let (mag, angle) = (value(&pmu["phasors"][0][0]), value(&pmu["phasors"][0][1]));
                let (freq, dfreq) = (value(&pmu["freq_hz"]), value(&pmu["rocof"]));
                if float {
                    // f32 rounding of the parts, then Python's polar conversion.
                    assert!(close(mag, want.magnitude(), 1e-6 * want.magnitude()), "bus {bus} k {k}: {mag}");
                    assert!(close(angle, want.angle(), 1e-6), "bus {bus} k {k}: {angle}");
                    assert!(close(freq, f32_of(f), 0.0) && close(dfreq, f32_of(rocof), 0.0), "bus {bus} k {k}");
                } else if !missing {
                    // Rectangular parts within 5 V each: the magnitude within 7.1 V.
                    assert!((mag - want.magnitude()).abs() <= 7.1, "bus {bus} k {k}: {mag}");
                    assert!((angle - want.angle()).abs() <= 7.1 / want.magnitude(), "bus {bus} k {k}: {angle}");
                    assert!((freq - f).abs() <= 0.5e-3 + 1e-9 && (dfreq - rocof).abs() <= 0.5e-2 + 1e-9);
                }
            }
        }
    }
}

/// The 68-bus record both pyc37 tests serve: three buses, two seconds.
const PEER_IEEE68: [&str; 12] =
    ["--system", "ieee68", "--measure", "pmu", "--buses", "29,41,65", "--duration", "2", "--rate", "30", "--seed", "4"];

/// pyc37 refuses NaN polar angles when it decodes, so dropouts go with rectangular phasors.
#[test]
#[ignore = "needs pyc37 (PYTHON_FOR_C37 from tests/c37118/setup-venv.sh)"]
fn python_peer_ieee68_float() {
    let base = PEER_IEEE68;
    let mut simulate = base.to_vec();
    simulate.extend(["--quantities", "vm,va,f,rocof", "--dropout", "0.02"]);
    let mut serve = base.to_vec();
    serve.extend(["--speed", "0", "--dropout", "0.02", "--coordinates", "rectangular"]);
    check_python_peer(&serve, &simulate, &BUSES, true, 60);
    let mut simulate = base.to_vec();
    simulate.extend(["--quantities", "vm,va,f,rocof"]);
    let mut serve = base.to_vec();
    serve.extend(["--speed", "0", "--coordinates", "polar"]);
    check_python_peer(&serve, &simulate, &BUSES, true, 60);
}

/// pyc37 scales an integer polar angle by PHUNIT like the magnitude, so integers go rectangular.
#[test]
#[ignore = "needs pyc37 (PYTHON_FOR_C37 from tests/c37118/setup-venv.sh)"]
fn python_peer_integer() {
    let base = PEER_IEEE68;
    let mut simulate = base.to_vec();
    simulate.extend(["--quantities", "vm,va,f,rocof"]);
    let mut serve = base.to_vec();
    serve.extend(["--speed", "0", "--format", "integer", "--coordinates", "rectangular"]);
    check_python_peer(&serve, &simulate, &BUSES, false, 60);
    let base = ["--system", "vdp", "--duration", "5", "--rate", "10", "--seed", "4", "--dropout", "0.1"];
    let mut serve = base.to_vec();
    serve.extend(["--speed", "0", "--format", "integer"]);
    check_python_peer(&serve, &base, &[], false, 50);
    let mut serve = base.to_vec();
    serve.extend(["--speed", "0", "--format", "float"]);
    check_python_peer(&serve, &base, &[], true, 50);
}
