//! One stream's C37.118.2 client: connect, send data off and a CFG-2 request, resolve the
//! stream's channels against the configuration, send data on, then turn every data frame
//! into a sample. It follows configuration changes (the STAT bit, a frame that no longer
//! fits, a new configuration frame) and reconnects with exponential backoff until the
//! stream is deleted or the service stops. Every change of connection or configuration is
//! logged and shows in the stream's status.

use std::sync::Arc;
use std::time::Duration;

use c37118::{Command, Config, ConfigKind, DataFrame, FrameKind, ParseError, parse_prefix};
use domain::metrics::Metrics;
use domain::registry::StreamHandle;
use domain::source::{C37118Source, SourceConfiguration, SourceMonitor, SourceSpec};

use crate::feeder::{FeedError, Feeder, micros};
use crate::link::{Link, LinkError};
use crate::mapping::{FrameMap, MapError};

/// The pause between two commands sent back to back.
const COMMAND_GAP: Duration = Duration::from_millis(200);

/// How long to wait for a configuration before asking again.
const CONFIG_RETRY: Duration = Duration::from_secs(1);

/// Timing of the client.
#[derive(Debug, Clone, Copy)]
pub struct ClientSettings {
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Longest wait for the configuration after asking for it.
    pub config_timeout: Duration,
    /// Longest silence of a streaming peer before the client reconnects.
    pub idle_timeout: Duration,
    /// First wait before reconnecting; doubled after each failure.
    pub backoff_min: Duration,
    /// Longest wait before reconnecting.
    pub backoff_max: Duration,
    /// Most samples per batch.
    pub max_batch: usize,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            config_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            max_batch: 256,
        }
    }
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Link(#[from] LinkError),
    #[error("protocol error: {0}")]
    Protocol(#[from] ParseError),
    #[error("no configuration within {0:?} of asking for it")]
    NoConfiguration(Duration),
    #[error("no frame for {0:?}")]
    Idle(Duration),
    #[error("the configuration cannot feed the stream: {0}")]
    Mapping(#[from] MapError),
    #[error("the source sends {rate} frames/s; the stream's ts of {ts} s needs {expected}")]
    Rate { rate: f64, ts: f64, expected: f64 },
    #[error("{0}")]
    Feed(#[from] FeedError),
}

/// Runs the client until the monitor says stop or the stream's queue closes.
pub async fn run(
    handle: Arc<StreamHandle>,
    monitor: Arc<SourceMonitor>,
    metrics: Arc<Metrics>,
    settings: ClientSettings,
) {
    let SourceSpec::C37118(spec) = monitor.spec.clone();
    let id = handle.definition.id.clone();
    let mut stop = monitor.stopped();
    let mut feeder = Feeder::new(handle.clone(), monitor.clone(), metrics.clone(), settings.max_batch);
    let mut backoff = settings.backoff_min;
    loop {
        if *stop.borrow() {
            break;
        }
        let mut streamed = false;
        let outcome = tokio::select! {
            _ = stop.changed() => break,
            outcome = session(&handle, &spec, &monitor, &metrics, &settings, &mut feeder, &mut streamed) => outcome,
        };
        set_connected(&monitor, &metrics, &id, false);
        match outcome {
            Err(SessionError::Feed(FeedError::Closed)) => break,
            Err(error) => {
                tracing::warn!(stream = %id, address = %spec.address, %error, retry_in = ?backoff, "C37.118.2 source disconnected");
                monitor.update(|s| s.last_error = Some((error.to_string(), crate::unix_millis())));
            }
            Ok(()) => {}
        }
        if streamed {
            backoff = settings.backoff_min;
        }
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(settings.backoff_max);
    }
    // What arrived before the stop is applied (the owner stops after its queue).
    let _ = feeder.drain().await;
    set_connected(&monitor, &metrics, &id, false);
    tracing::info!(stream = %id, "C37.118.2 source stopped");
}

fn set_connected(monitor: &SourceMonitor, metrics: &Metrics, id: &str, connected: bool) {
    monitor.update(|s| s.connected = connected);
    metrics.source_connected(id, connected);
}

/// One connection, from the first command to the first error.
async fn session(
    handle: &StreamHandle,
    spec: &C37118Source,
    monitor: &SourceMonitor,
    metrics: &Metrics,
    settings: &ClientSettings,
    feeder: &mut Feeder,
    streamed: &mut bool,
) -> Result<(), SessionError> {
    let id = &handle.definition.id;
    let mut link = Link::connect(&spec.address, spec.transport, spec.udp_port, settings.connect_timeout).await?;
    monitor.update(|s| s.connects += 1);
    tracing::info!(stream = %id, address = %spec.address, transport = ?spec.transport, "C37.118.2 source connected");
    link.send(spec.idcode, Command::DataOff).await?;
    // Some PMUs read one command per receive call and drop what else came with it (pyc37
    // does): the next command goes out after a pause.
    tokio::time::sleep(COMMAND_GAP).await;
    link.send(spec.idcode, Command::SendCfg2).await?;
    let config = wait_for_config(&mut link, spec.idcode, settings.config_timeout).await?;
    let mut current = adopt(handle, spec, monitor, config)?;
    link.send(spec.idcode, Command::DataOn).await?;
    set_connected(monitor, metrics, id, true);

    let width = handle.definition.n_states() + handle.definition.n_inputs();
    let mut row = vec![0.0; width];
    let mut frame = DataFrame::shaped_for(&current.config);
    // When a configuration was last asked for: at most one request per `config_timeout`.
    let mut asked_at: Option<tokio::time::Instant> = None;
    loop {
        if !feeder.busy() {
            feeder.send().await?;
        }
        let bytes = tokio::select! {
            biased;
            acked = feeder.acknowledged(), if feeder.busy() => {
                acked?;
                continue;
            }
            read = tokio::time::timeout(settings.idle_timeout, link.next_frame()), if !feeder.full() => match read {
                Ok(bytes) => bytes?,
                Err(_) => return Err(SessionError::Idle(settings.idle_timeout)),
            },
        };
        let prefix = parse_prefix(bytes)?;
        // Commands go out after the frame's bytes are done with (they borrow the link).
        let mut ask_for_config = None;
        match prefix.kind {
            FrameKind::Data => match frame.decode_into(bytes, &current.config) {
                Ok(()) => {
                    *streamed = true;
                    let changed = frame.pmus.iter().any(|p| p.stat.config_changed());
                    let micros = micros(&frame.time, current.config.time_base);
                    let quality = frame.time.quality.code;
                    let missing = current.map.sample(&frame, &mut row);
                    feeder.push(micros, &row, missing);
                    monitor.update(|s| {
                        s.frames_received += 1;
                        s.last_timestamp = Some(micros as f64 / 1e6);
                        s.clock_quality = Some(quality);
                    });
                    if changed {
                        ask_for_config = Some("the PMU signals a configuration change");
                    }
                }
                Err(ParseError::ShapeMismatch) => {
                    // The configuration changed under us: ask for it (once per timeout) and
                    // skip frames until it comes.
                    ask_for_config = Some("a data frame no longer fits the configuration");
                    monitor.update(|s| s.frames_received += 1);
                }
                Err(error) => return Err(error.into()),
            },
            FrameKind::Cfg1 | FrameKind::Cfg2 => {
                let config = Config::parse(bytes)?;
                if config != current.config {
                    current = adopt(handle, spec, monitor, config)?;
                    frame = DataFrame::shaped_for(&current.config);
                }
                // `asked_at` stays: the STAT bit stays set for a while after a change (a
                // minute, in the standard), and it must not make every frame ask again.
            }
            // Headers, commands and CFG-3 are not for a client that asked for CFG-2.
            FrameKind::Header | FrameKind::Command | FrameKind::Cfg3 => {}
        }
        if let Some(why) = ask_for_config
            && asked_at.is_none_or(|t| t.elapsed() > settings.config_timeout)
        {
            tracing::info!(stream = %id, "{why}; asking for CFG-2");
            link.send(spec.idcode, Command::SendCfg2).await?;
            asked_at = Some(tokio::time::Instant::now());
        }
    }
}

/// A configuration in force and the stream's channels resolved against it.
struct Current {
    config: Config,
    map: FrameMap,
}

/// Waits for a CFG-1 or CFG-2 frame, skipping anything else (data frames of a stream that
/// was already on), and asks again every second: a command can be lost (a UDP datagram,
/// or a PMU that drops commands arriving together).
async fn wait_for_config(link: &mut Link, idcode: u16, timeout: Duration) -> Result<Config, SessionError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let ask_again = (tokio::time::Instant::now() + CONFIG_RETRY).min(deadline);
        let wait = async {
            loop {
                let bytes = link.next_frame().await?;
                let prefix = parse_prefix(bytes)?;
                if matches!(prefix.kind, FrameKind::Cfg1 | FrameKind::Cfg2) {
                    return Ok::<_, SessionError>(Config::parse(bytes)?);
                }
            }
        };
        match tokio::time::timeout_at(ask_again, wait).await {
            Ok(config) => return config,
            Err(_) if ask_again >= deadline => return Err(SessionError::NoConfiguration(timeout)),
            Err(_) => link.send(idcode, Command::SendCfg2).await?,
        }
    }
}

/// Checks a configuration against the stream (rate, channels) and makes it current.
fn adopt(
    handle: &StreamHandle,
    spec: &C37118Source,
    monitor: &SourceMonitor,
    config: Config,
) -> Result<Current, SessionError> {
    let ts = handle.definition.ts;
    let rate = config.rate_hz();
    if !((rate * ts) - 1.0).abs().le(&1e-6) {
        return Err(SessionError::Rate { rate, ts, expected: 1.0 / ts });
    }
    let map = FrameMap::new(spec, &config)?;
    let brief = SourceConfiguration {
        rate_hz: rate,
        stations: config.pmus.iter().map(|p| p.station.clone()).collect(),
        cfgcnt: config.pmus.iter().map(|p| p.cfgcnt).collect(),
    };
    tracing::info!(
        stream = %handle.definition.id,
        kind = if config.kind == ConfigKind::Cfg1 { "CFG-1" } else { "CFG-2" },
        idcode = config.idcode,
        rate_hz = rate,
        stations = ?brief.stations,
        cfgcnt = ?brief.cfgcnt,
        "C37.118.2 configuration in force"
    );
    monitor.update(|s| s.configuration = Some(brief));
    Ok(Current { config, map })
}
