//! `koopstream loadgen`: drives S streams at R samples per second each over WebSocket and
//! reports sustained throughput and the latency from send to acknowledgement. Sends follow
//! a fixed schedule (not the acknowledgements), so a slow server shows up as latency
//! instead of being hidden by a slower client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use tokio::sync::Mutex;

use crate::client::{Client, ClientError, next_message, send_batch};
use crate::config::ServiceConfig;

/// Options of `koopstream loadgen`.
#[derive(Debug, Clone, Args)]
pub struct LoadgenArgs {
    /// A running server (default: start one in this process).
    #[arg(long)]
    pub server: Option<String>,
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
    /// Double the number of streams until p99 latency exceeds this many milliseconds or
    /// the offered rate is not sustained; report the largest that passed.
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
    /// Samples per second acknowledged in all.
    pub sustained: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Largest latency in milliseconds.
    pub max_ms: f64,
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>6} streams: offered {:>10.0} samples/s, sustained {:>10.0} samples/s, latency p50 {:>7.2} ms, p99 {:>7.2} ms, max {:>7.2} ms",
            self.streams, self.offered, self.sustained, self.p50_ms, self.p99_ms, self.max_ms
        )
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

async fn drive_stream(
    client: Client,
    args: LoadgenArgs,
    stream: usize,
    warmup: usize,
    latencies: Arc<Mutex<Vec<f64>>>,
) -> Result<u64, LoadError> {
    let id = format!("load-{stream}");
    let _ = client.delete_stream(&id).await;
    let channels: Vec<_> = (1..=args.channels).map(|i| json!({"name": format!("c{i}")})).collect();
    client
        .create_stream(&json!({"id": id, "channels": channels, "ts": 1.0 / args.rate, "dictionary": args.dictionary, "warmup": warmup, "mu": 1e-3}))
        .await?;
    let (mut sink, mut source) = client.connect(&id).await?;
    // Warm-up first, unmeasured, as fast as acknowledged.
    let mut k = 0;
    let mut seq = 0u64;
    while k < warmup + 1 {
        seq += 1;
        let rows: Vec<Vec<f64>> = (k..k + 50).map(|j| sample(args.channels, stream, j)).collect();
        send_batch(&mut sink, &json!({"seq": seq, "t0": k as f64 / args.rate, "x": rows})).await?;
        while next_message(&mut source).await.is_some_and(|m| m["type"] != "ack") {}
        k += 50;
    }
    let frames = ((args.duration * args.rate) as usize / args.batch).max(1);
    let interval = Duration::from_secs_f64(args.batch as f64 / args.rate);
    let sent_at = Arc::new(Mutex::new(std::collections::HashMap::<u64, Instant>::new()));
    let reader_sent = sent_at.clone();
    let first_seq = seq + 1;
    let reader = tokio::spawn(async move {
        let mut acked = 0u64;
        let mut local = Vec::with_capacity(frames);
        while let Some(message) = next_message(&mut source).await {
            if message["type"] == "ack" {
                let seq = message["seq"].as_u64().unwrap_or(0);
                if let Some(at) = reader_sent.lock().await.remove(&seq) {
                    local.push(at.elapsed().as_secs_f64() * 1e3);
                }
                acked += message["accepted"].as_u64().unwrap_or(0);
                if seq + 1 >= first_seq + frames as u64 {
                    break;
                }
            }
        }
        (acked, local)
    });
    let start = tokio::time::Instant::now();
    for frame in 0..frames {
        tokio::time::sleep_until(start + interval * frame as u32).await;
        seq += 1;
        let rows: Vec<Vec<f64>> = (k..k + args.batch).map(|j| sample(args.channels, stream, j)).collect();
        sent_at.lock().await.insert(seq, Instant::now());
        send_batch(&mut sink, &json!({"seq": seq, "t0": k as f64 / args.rate, "x": rows})).await?;
        k += args.batch;
    }
    let (acked, local) = reader.await.unwrap_or((0, Vec::new()));
    latencies.lock().await.extend(local);
    let _ = client.delete_stream(&id).await;
    Ok(acked)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// One run with `streams` streams against `base`.
pub async fn run_once(base: &str, args: &LoadgenArgs, streams: usize) -> Result<LoadReport, LoadError> {
    let client = Client::new(base);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|s| tokio::spawn(drive_stream(client.clone(), args.clone(), s, 200, latencies.clone())))
        .collect();
    let mut acked = 0;
    for task in tasks {
        acked += task.await.unwrap_or(Ok(0))?;
    }
    // The measured phase is `duration`; warm-up and set-up add a little before it.
    let elapsed = started.elapsed().as_secs_f64().max(args.duration);
    let mut all = latencies.lock().await.clone();
    all.sort_by(f64::total_cmp);
    Ok(LoadReport {
        streams,
        offered: streams as f64 * args.rate,
        sustained: acked as f64 / args.duration.min(elapsed),
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        max_ms: all.last().copied().unwrap_or(f64::NAN),
    })
}

/// Runs the load (or the sweep) and returns one report per run.
pub async fn run(args: &LoadgenArgs) -> Result<Vec<LoadReport>, LoadError> {
    let (base, local) = match &args.server {
        Some(url) => (url.clone(), None),
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
            (base, Some((stop, task)))
        }
    };
    let mut reports = Vec::new();
    match args.sweep_p99_ms {
        None => reports.push(run_once(&base, args, args.streams).await?),
        Some(limit) => {
            let mut streams = args.streams.max(1);
            loop {
                let report = run_once(&base, args, streams).await?;
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
