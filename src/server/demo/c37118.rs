//! `demo --system ieee68 --via c37118`: the whole chain from PMUs to tracked modes on one
//! machine. `pmu-serve` serves the 68-bus record as a PDC of simulated PMUs over
//! C37.118.2 on a loopback port, the server subscribes to it as a stream's source, and the
//! demo only watches: WebSocket summaries and alarms, and the stream's status for progress.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use serde_json::{Value, json};

use super::{DemoError, Scenario, Table};
use crate::client::{Client, ClientError, next_message};
use crate::cmd::{Cli, Command};
use crate::progress::ProgressBar;

/// Builds the `pmu-serve` options of the scenario (the same record `simulate` would write).
fn serve_args(scenario: &str, duration: f64, speed: f64, seed: u64) -> Result<crate::cmd::PmuServeArgs, DemoError> {
    let line = [
        "koopstream".to_owned(),
        "pmu-serve".into(),
        "--system".into(),
        "ieee68".into(),
        "--scenario".into(),
        scenario.into(),
        "--measure".into(),
        "pmu".into(),
        "--rate".into(),
        "30".into(),
        "--duration".into(),
        duration.to_string(),
        "--speed".into(),
        speed.to_string(),
        "--seed".into(),
        seed.to_string(),
    ];
    match Cli::try_parse_from(line) {
        Ok(Cli { command: Some(Command::PmuServe(args)) }) => Ok(args),
        Ok(_) => Err(DemoError::Via("pmu-serve options".into())),
        Err(e) => Err(DemoError::Via(e.to_string())),
    }
}

/// The source mapping of the demo's PMU channels (`b<N>_va`, `b<N>_f`): station `BUS<N>`
/// of the PDC stream `pmu-serve` sends.
fn source(address: &str, definition: &Value, idcode: u16) -> Result<Value, DemoError> {
    let channels = definition["channels"].as_array().cloned().unwrap_or_default();
    let mut mappings = Vec::with_capacity(channels.len());
    for channel in &channels {
        let name = channel["name"].as_str().unwrap_or_default();
        let (bus, quantity) = name
            .strip_prefix('b')
            .and_then(|rest| rest.split_once('_'))
            .ok_or_else(|| DemoError::Via(format!("channel `{name}` is not a PMU column")))?;
        let quantity = match quantity {
            "va" => "va",
            "f" => "freq",
            other => return Err(DemoError::Via(format!("channel `{name}`: quantity `{other}` is not streamed"))),
        };
        mappings.push(json!({"pmu": format!("BUS{bus}"), "quantity": quantity, "name": name}));
    }
    Ok(json!({"c37118": {"address": address, "idcode": idcode, "transport": "tcp", "channels": mappings}}))
}

/// Serves the scenario's record over C37.118.2 and watches the stream it feeds until the
/// last frame is applied; `table` shows the tracked modes as they refresh.
pub(super) async fn run(
    client: &Client,
    scenario: &Scenario,
    which: &str,
    speed: f64,
    seed: u64,
    table: &mut Table,
) -> Result<(), DemoError> {
    let duration = scenario.request.duration.unwrap_or(30.0);
    let args = serve_args(which, duration, speed, seed)?;
    let config = args.serve_config().map_err(|e| DemoError::Via(e.to_string()))?;
    let frames = config.source.len();
    let start_soc = config.source.time(0).soc;
    let idcode = config.source.idcode();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let pmus = tokio::spawn(crate::pmu_serve::run(listener, None, config, async move {
        let _ = stopped.await;
    }));
    println!("pmu-serve: {frames} frames of 12 PMUs at 30 frames/s on {address} (C37.118.2, IDCODE {idcode})");

    // Paced, the stream joins after the frames the demo skips (the fault itself): a client
    // gets frames from the one due when it connects.
    if speed > 0.0 && scenario.skip > 0 {
        let join_at = f64::from(start_soc) + (scenario.skip + 3) as f64 / (30.0 * speed);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        if join_at > now {
            tokio::time::sleep(Duration::from_secs_f64(join_at - now)).await;
        }
    }
    let mut definition = scenario.definition.clone();
    definition["source"] = source(&address, &definition, idcode)?;
    let id = definition["id"].as_str().unwrap_or("demo").to_owned();
    client.create_stream(&definition).await?;
    let (_sink, mut messages) = client.connect(&id).await?;
    // Frame times are UTC: the table counts from the first frame served.
    table.origin = f64::from(start_soc);
    table.warming_up();

    let last_frame = f64::from(start_soc) + (frames - 1) as f64 / 30.0;
    let mut bar = ProgressBar::new(frames as u64, "frames applied");
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut progress_at = tokio::time::Instant::now();
    let mut last_seen = None;
    loop {
        tokio::select! {
            message = next_message(&mut messages) => {
                let message = message.ok_or(DemoError::Closed)?;
                match message["type"].as_str() {
                    Some("summary") => super::refresh(client, &id, table).await?,
                    Some("alarm") => table.alarm(&message),
                    _ => {}
                }
            }
            _ = tick.tick() => {
                let stream = client.get(&format!("/v1/streams/{id}")).await?;
                let t = stream["status"]["last_timestamp"].as_f64();
                let done = t.map_or(0, |t| ((t - f64::from(start_soc)) * 30.0).round() as u64 + 1);
                bar.update(done, done);
                if t.is_some_and(|t| t >= last_frame - 1e-3) {
                    break;
                }
                if t != last_seen {
                    last_seen = t;
                    progress_at = tokio::time::Instant::now();
                } else if progress_at.elapsed() > Duration::from_secs(30) {
                    return Err(DemoError::Client(ClientError::Status {
                        url: id.clone(),
                        status: 504,
                        body: format!("no frame applied for 30 s; the source says {}", stream["source"]),
                    }));
                }
            }
        }
    }
    bar.finish(frames as u64);
    let _ = stop.send(());
    let _ = pmus.await;
    Ok(())
}
