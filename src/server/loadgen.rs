//! `koopstream loadgen`: drives S streams at R samples per second each over WebSocket and
//! reports sustained throughput and the latency from send to acknowledgement. Sends follow
//! a fixed schedule (not the acknowledgements), so a slow server shows up as latency and as
//! a sustained rate below the offered one, instead of being hidden by a slower client.
//!
//! The load generator shares the machine with the server it measures, so it keeps its own
//! cost small: every stream's samples are generated and encoded (JSON text or protobuf
//! packed doubles) before the measured phase, and each frame is assembled from those bytes
//! with a few copies; acknowledgements are read into a small typed struct.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::client::{Client, ClientError, ServerArgs, Sink, Source};
use crate::config::ServiceConfig;
use crate::wire::{SUBPROTOCOL_PROTO, pb};

/// Samples per warm-up frame (the warm-up is not measured).
const WARMUP_FRAME: usize = 50;
/// Warm-up samples of every stream (its model is ready after them).
const WARMUP: usize = 200;
/// Bytes of pre-encoded samples over all streams; a run longer than this cycles through
/// its stream's samples again (the estimator's cost does not depend on the values).
const POOL_BUDGET: usize = 256 << 20;
/// How long the reader waits for the next acknowledgement before giving up on a stream.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// How frames are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Encoding {
    /// JSON text frames; JSON acknowledgements.
    Json,
    /// Protobuf `SampleBatch` binary frames; protobuf `ServerMessage` acknowledgements
    /// (subprotocol `koopstream.v1.proto`).
    Protobuf,
}

/// Options of `koopstream loadgen`.
#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    /// A running server (default: start one in this process on a free loopback port).
    #[arg(long)]
    pub server: Option<String>,
    /// Token and TLS files for `--server`.
    #[command(flatten)]
    pub connection: ServerArgs,
    /// Number of streams.
    #[arg(long, default_value_t = 10)]
    pub streams: usize,
    /// Samples per second per stream.
    #[arg(long, default_value_t = 30.0)]
    pub rate: f64,
    /// Samples per WebSocket frame.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Seconds of load (after warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// State channels per stream.
    #[arg(long, default_value_t = 32)]
    pub channels: usize,
    /// Dictionary of every stream (the default gives 32 x 5 = 160 observables).
    #[arg(long, default_value = "state,delay:4")]
    pub dictionary: String,
    /// Frame encoding.
    #[arg(long, value_enum, default_value_t = Encoding::Json)]
    pub encoding: Encoding,
    /// Double the number of streams until p99 latency exceeds this many milliseconds or
    /// the offered rate is not sustained; report the largest that passed (default: no
    /// sweep, one run at --streams).
    #[arg(long)]
    pub sweep_p99_ms: Option<f64>,
}

/// One run's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadReport {
    /// Streams driven.
    pub streams: usize,
    /// Samples per second offered in all.
    pub offered: f64,
    /// Samples acknowledged in all, per second from the start of the measured phase to the
    /// last acknowledgement (below `offered` when the server falls behind).
    pub sustained: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Largest latency in milliseconds.
    pub max_ms: f64,
    /// Frames the server refused (each answered with an error message).
    pub refused: u64,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>6} streams: offered {:>10.0} samples/s, sustained {:>10.0} samples/s, latency p50 {:>7.2} ms, p99 {:>7.2} ms, max {:>7.2} ms",
            self.streams, self.offered, self.sustained, self.p50_ms, self.p99_ms, self.max_ms
        )?;
        if self.refused > 0 {
            write!(f, ", {} frames refused", self.refused)?;
        }
        Ok(())
    }
}

/// Why a load run failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Talking to the server failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The local server could not start.
    #[error("cannot start a local server: {0}")]
    Io(#[from] std::io::Error),
}

/// A synthetic sample: sinusoids of different frequencies (cheap to make, rich enough).
fn sample(channels: usize, stream: usize, k: usize) -> Vec<f64> {
    (0..channels).map(|i| ((k as f64) * 0.05 * (1.0 + 0.1 * i as f64) + stream as f64).sin()).collect()
}

fn ws_error(source: tokio_tungstenite::tungstenite::Error) -> ClientError {
    ClientError::WebSocket { url: "send".into(), source: Box::new(source) }
}

/// The samples of a stream's measured phase, encoded once: sample j is
/// `sample(stream, first + j)`; sample k of the run uses pool sample `(k - first) % len`.
struct Pool {
    len: usize,
    channels: usize,
    /// JSON rows `[a,b],[c,d],...`, each followed by a comma (the last one too).
    json: String,
    /// Where row j starts in `json`; `offsets[len]` is `json.len()`.
    offsets: Vec<usize>,
    /// The values as little-endian doubles, row-major (protobuf packed encoding).
    packed: Vec<u8>,
}

impl Pool {
    fn new(channels: usize, stream: usize, first: usize, len: usize, encoding: Encoding) -> Self {
        let mut pool = Self { len, channels, json: String::new(), offsets: Vec::new(), packed: Vec::new() };
        for j in 0..len {
            let row = sample(channels, stream, first + j);
            match encoding {
                Encoding::Json => {
                    pool.offsets.push(pool.json.len());
                    pool.json.push_str(&serde_json::to_string(&row).expect("finite values serialise"));
                    pool.json.push(',');
                }
                Encoding::Protobuf => row.iter().for_each(|v| pool.packed.extend_from_slice(&v.to_le_bytes())),
            }
        }
        pool.offsets.push(pool.json.len());
        pool
    }

    /// Pool ranges covering `count` samples from pool index `start`, wrapping around.
    fn ranges(&self, mut start: usize, mut count: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        std::iter::from_fn(move || {
            if count == 0 {
                return None;
            }
            start %= self.len;
            let take = count.min(self.len - start);
            let range = (start, start + take);
            (start, count) = (start + take, count - take);
            Some(range)
        })
    }

    /// A JSON text frame of `count` samples from pool index `start`.
    fn json_frame(&self, seq: u64, t0: f64, start: usize, count: usize) -> Message {
        let mut text = String::with_capacity(48 + count * self.channels * 24);
        text.push_str(&format!("{{\"seq\":{seq},\"t0\":{t0},\"x\":["));
        for (a, b) in self.ranges(start, count) {
            text.push_str(&self.json[self.offsets[a]..self.offsets[b]]);
        }
        // The last row's trailing comma closes the array instead.
        text.pop();
        text.push_str("]}");
        Message::text(text)
    }

    /// A protobuf binary frame of `count` samples from pool index `start`: the header
    /// fields encoded by prost, then field `x` as packed doubles copied from the pool
    /// (protobuf fields may come in any order).
    fn protobuf_frame(&self, seq: u64, t0: f64, start: usize, count: usize) -> Message {
        let header = pb::SampleBatch { seq, t0: Some(t0), channels: self.channels as u32, ..Default::default() };
        let bytes = count * self.channels * 8;
        let mut frame = Vec::with_capacity(header.encoded_len() + 11 + bytes);
        header.encode(&mut frame).expect("a Vec grows");
        prost::encoding::encode_key(6, prost::encoding::WireType::LengthDelimited, &mut frame);
        prost::encoding::encode_varint(bytes as u64, &mut frame);
        let width = self.channels * 8;
        for (a, b) in self.ranges(start, count) {
            frame.extend_from_slice(&self.packed[a * width..b * width]);
        }
        Message::binary(frame)
    }
}

/// A server reply, as much of it as the load generator reads.
#[derive(Debug, PartialEq)]
enum Reply {
    Ack { seq: u64, accepted: u64 },
    Error { seq: Option<u64> },
    Other,
}

#[derive(Deserialize)]
struct JsonReply {
    #[serde(rename = "type")]
    kind: String,
    seq: Option<u64>,
    #[serde(default)]
    accepted: u64,
}

/// The next reply (JSON text frame or protobuf binary frame), `None` when the socket closed
/// or stayed silent too long.
async fn next_reply(source: &mut Source) -> Option<Reply> {
    loop {
        let message = tokio::time::timeout(REPLY_TIMEOUT, source.next()).await.ok()??;
        return match message {
            Ok(Message::Text(text)) => match serde_json::from_str::<JsonReply>(&text) {
                Ok(r) if r.kind == "ack" => Some(Reply::Ack { seq: r.seq.unwrap_or(0), accepted: r.accepted }),
                Ok(r) if r.kind == "error" => Some(Reply::Error { seq: r.seq }),
                _ => Some(Reply::Other),
            },
            Ok(Message::Binary(bytes)) => match pb::ServerMessage::decode(bytes).ok()?.message {
                Some(pb::server_message::Message::Ack(ack)) => {
                    Some(Reply::Ack { seq: ack.seq, accepted: ack.accepted })
                }
                Some(pb::server_message::Message::Error(error)) => Some(Reply::Error { seq: error.seq }),
                _ => Some(Reply::Other),
            },
            Ok(Message::Close(_)) | Err(_) => None,
            Ok(_) => continue,
        };
    }
}

/// A stream past warm-up, ready for the measured phase.
struct Connected {
    id: String,
    sink: Sink,
    source: Source,
    seq: u64,
    next_sample: usize,
    pool: Pool,
}

async fn connect(client: &Client, id: &str, encoding: Encoding) -> Result<(Sink, Source), ClientError> {
    let mut request = client.websocket_request(id)?;
    if encoding == Encoding::Protobuf {
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL_PROTO));
    }
    client.open_websocket(request).await
}

/// Creates a stream, connects, warms it up (unmeasured, as fast as acknowledged) and
/// encodes the samples of its measured phase.
async fn set_up(client: Client, args: LoadgenArgs, stream: usize, pool_len: usize) -> Result<Connected, LoadError> {
    let id = format!("load-{stream}");
    let _ = client.delete_stream(&id).await;
    let channels: Vec<_> = (1..=args.channels).map(|i| json!({"name": format!("c{i}")})).collect();
    client
        .create_stream(&json!({"id": id, "channels": channels, "ts": 1.0 / args.rate, "dictionary": args.dictionary, "warmup": WARMUP, "mu": 1e-3}))
        .await?;
    let (mut sink, mut source) = connect(&client, &id, args.encoding).await?;
    let (mut k, mut seq) = (0, 0u64);
    while k < WARMUP + 1 {
        seq += 1;
        let rows: Vec<Vec<f64>> = (k..k + WARMUP_FRAME).map(|j| sample(args.channels, stream, j)).collect();
        let frame = json!({"seq": seq, "t0": k as f64 / args.rate, "x": rows}).to_string();
        sink.send(Message::text(frame)).await.map_err(ws_error)?;
        while next_reply(&mut source).await.ok_or(ClientError::WebSocket {
            url: id.clone(),
            source: Box::new(tokio_tungstenite::tungstenite::Error::ConnectionClosed),
        })? == Reply::Other
        {}
        k += WARMUP_FRAME;
    }
    let pool = Pool::new(args.channels, stream, k, pool_len, args.encoding);
    Ok(Connected { id, sink, source, seq, next_sample: k, pool })
}

/// What one stream's measured phase gave.
struct StreamResult {
    acked: u64,
    refused: u64,
    latencies_ms: Vec<f64>,
    last_reply: Option<Instant>,
}

/// Sends a stream's frames on schedule from `start` while a separate task reads the
/// acknowledgements.
async fn measure(
    connected: Connected,
    args: LoadgenArgs,
    start: tokio::time::Instant,
) -> Result<StreamResult, LoadError> {
    let Connected { mut sink, mut source, mut seq, next_sample, pool, .. } = connected;
    let frames = frames(&args);
    let interval = Duration::from_secs_f64(args.batch as f64 / args.rate);
    let origin = start.into_std();
    // Send times in nanoseconds after `origin`, by frame (written before the frame is sent,
    // so the reader always finds its frame's time).
    let sent_at: Arc<[AtomicU64]> = (0..frames).map(|_| AtomicU64::new(0)).collect();
    let first_seq = seq + 1;
    let reader_sent = sent_at.clone();
    let reader = tokio::spawn(async move {
        let mut result =
            StreamResult { acked: 0, refused: 0, latencies_ms: Vec::with_capacity(frames), last_reply: None };
        while let Some(reply) = next_reply(&mut source).await {
            let seq = match reply {
                Reply::Ack { seq, accepted } => {
                    if let Some(frame) = seq.checked_sub(first_seq).filter(|&f| f < frames as u64) {
                        let sent = Duration::from_nanos(reader_sent[frame as usize].load(Ordering::Acquire));
                        result.latencies_ms.push((origin.elapsed().saturating_sub(sent)).as_secs_f64() * 1e3);
                        result.acked += accepted;
                    }
                    seq
                }
                Reply::Error { seq } => {
                    result.refused += 1;
                    seq.unwrap_or(0)
                }
                Reply::Other => continue,
            };
            result.last_reply = Some(Instant::now());
            if seq + 1 >= first_seq + frames as u64 {
                break;
            }
        }
        result
    });
    let mut k = next_sample;
    for frame in 0..frames {
        tokio::time::sleep_until(start + interval * frame as u32).await;
        seq += 1;
        let t0 = k as f64 / args.rate;
        let from = k - next_sample;
        let message = match args.encoding {
            Encoding::Json => pool.json_frame(seq, t0, from, args.batch),
            Encoding::Protobuf => pool.protobuf_frame(seq, t0, from, args.batch),
        };
        sent_at[frame].store(origin.elapsed().as_nanos() as u64, Ordering::Release);
        sink.send(message).await.map_err(ws_error)?;
        k += args.batch;
    }
    let result =
        reader.await.unwrap_or(StreamResult { acked: 0, refused: 0, latencies_ms: Vec::new(), last_reply: None });
    let _ = sink.close().await;
    Ok(result)
}

/// Frames of the measured phase, per stream.
fn frames(args: &LoadgenArgs) -> usize {
    ((args.duration * args.rate) as usize / args.batch.max(1)).max(1)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// One run with `streams` streams through `client`: every stream is created and warmed up
/// first, then all start their schedules at the same instant.
pub async fn run_once(client: &Client, args: &LoadgenArgs, streams: usize) -> Result<LoadReport, LoadError> {
    let per_sample = args.channels * if args.encoding == Encoding::Json { 24 } else { 8 };
    let pool_len = (POOL_BUDGET / (streams.max(1) * per_sample.max(1))).clamp(args.batch, frames(args) * args.batch);
    let set_ups: Vec<_> =
        (0..streams).map(|s| tokio::spawn(set_up(client.clone(), args.clone(), s, pool_len))).collect();
    let mut connected = Vec::with_capacity(streams);
    for task in set_ups {
        connected.push(task.await.map_err(|e| std::io::Error::other(e.to_string()))??);
    }
    let ids: Vec<String> = connected.iter().map(|c| c.id.clone()).collect();
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let tasks: Vec<_> = connected.into_iter().map(|c| tokio::spawn(measure(c, args.clone(), start))).collect();
    let (mut acked, mut refused, mut all, mut last) = (0, 0, Vec::new(), start.into_std());
    for task in tasks {
        let result = task.await.map_err(|e| std::io::Error::other(e.to_string()))??;
        acked += result.acked;
        refused += result.refused;
        all.extend(result.latencies_ms);
        last = last.max(result.last_reply.unwrap_or(last));
    }
    for id in ids {
        let _ = client.delete_stream(&id).await;
    }
    // The measured phase lasts `duration` when the server keeps up, longer when it falls
    // behind (the last acknowledgement comes late).
    let elapsed = last.saturating_duration_since(start.into_std()).as_secs_f64().max(args.duration);
    all.sort_by(f64::total_cmp);
    Ok(LoadReport {
        streams,
        offered: streams as f64 * args.rate,
        sustained: acked as f64 / elapsed,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        max_ms: all.last().copied().unwrap_or(f64::NAN),
        refused,
    })
}

/// Runs the load (or the sweep) and returns one report per run.
pub async fn run(args: &LoadgenArgs) -> Result<Vec<LoadReport>, LoadError> {
    let args = &LoadgenArgs { batch: args.batch.max(1), ..args.clone() };
    // A given server's address and files are checked once, before anything starts.
    let (client, local) = match &args.server {
        Some(url) => (Client::connect_to(url, &args.connection)?, None),
        None => {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let base = format!("http://{}", listener.local_addr()?);
            let config = ServiceConfig {
                limits: crate::config::Limits { max_streams: 100_000, ..Default::default() },
                storage: crate::config::StorageConfig {
                    durability: crate::config::Durability::Memory,
                    ..Default::default()
                },
                ..Default::default()
            };
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(crate::server::run(listener, config, async move {
                let _ = stopped.await;
            }));
            (Client::new(&base), Some((stop, task)))
        }
    };
    let mut reports = Vec::new();
    match args.sweep_p99_ms {
        None => reports.push(run_once(&client, args, args.streams).await?),
        Some(limit) => {
            let mut streams = args.streams.max(1);
            loop {
                let report = run_once(&client, args, streams).await?;
                eprintln!("{report}");
                let passed = report.p99_ms <= limit && report.sustained >= 0.95 * report.offered;
                reports.push(report);
                if !passed || streams >= 100_000 {
                    break;
                }
                streams *= 2;
            }
        }
    }
    if let Some((stop, task)) = local {
        let _ = stop.send(());
        let _ = task.await;
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::batch::{Shape, Timing};
    use crate::wire::batch;

    #[test]
    fn frames_decode_to_the_samples_they_stand_for_across_the_wrap() {
        let (channels, stream, first) = (3, 2, 250);
        let shape = Shape { n: channels, m: 0, max_samples: 100 };
        for encoding in [Encoding::Json, Encoding::Protobuf] {
            let pool = Pool::new(channels, stream, first, 7, encoding);
            // Pool samples 5, 6, 0, 1, 2: the frame wraps around the pool's end.
            let frame = match encoding {
                Encoding::Json => pool.json_frame(9, 1.25, 12, 5),
                Encoding::Protobuf => pool.protobuf_frame(9, 1.25, 12, 5),
            };
            let parsed = match frame {
                Message::Text(text) => batch::parse_json(text.as_bytes(), shape),
                Message::Binary(bytes) => batch::parse_protobuf(&bytes, "s", shape),
                _ => unreachable!(),
            }
            .unwrap();
            assert_eq!((parsed.seq, parsed.rows, parsed.timing), (9, 5, Timing::Start(1.25)));
            let expected: Vec<f64> = [5, 6, 0, 1, 2].iter().flat_map(|j| sample(channels, stream, first + j)).collect();
            assert_eq!(parsed.x, expected, "{encoding:?}");
        }
    }
}
