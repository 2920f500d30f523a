//! Speed of the service's ingest path on fixed inputs: parsing one batch at the edge (JSON,
//! CSV, protobuf), encoding it as a log entry, applying it to a stream's state, and one
//! command round trip through a stream's owner task, alone and queued up. Run with
//! `cargo bench --bench ingest`.
//!
//! Batches have 2 state channels and the dictionary `state,const,poly:3` (N = 10
//! observables), the small models of the 10^6 samples/s goal; the round trip sends a
//! one-sample batch, so it measures the per-command overhead (queue hop, wake-up, metrics,
//! publication, reply) rather than the update.

use std::sync::Arc;
use std::time::Duration;

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use koopstream::service::batch::{SampleBatch, Shape, Timing};
use koopstream::service::command::{Command, IngestAck};
use koopstream::service::core::Core;
use koopstream::service::definition::StreamDefinition;
use koopstream::service::metrics::{Metrics, Transport};
use koopstream::service::owner::OwnerContext;
use koopstream::service::registry::{Registry, RegistryLimits, StreamHandle};
use koopstream::store::codec;
use koopstream::wire::batch;
use koopstream::wire::pb;
use koopstream::wire::streams::CreateStream;
use prost::Message as _;

fn main() {
    divan::main();
}

const CHANNELS: usize = 2;
const DICTIONARY: &str = "state,const,poly:3";
const ROWS: [usize; 2] = [100, 1000];

/// Deterministic samples: sinusoids with a little rounding noise in the last digits, so the
/// text forms have the usual 15 to 17 significant digits.
fn values(rows: usize) -> Vec<f64> {
    (0..rows * CHANNELS).map(|i| ((i / CHANNELS) as f64 * 0.05 * (1.0 + 0.1 * (i % CHANNELS) as f64)).sin()).collect()
}

fn definition() -> StreamDefinition {
    let request: CreateStream = serde_json::from_value(serde_json::json!({
        "id": "bench",
        "channels": (0..CHANNELS).map(|i| serde_json::json!({"name": format!("c{i}")})).collect::<Vec<_>>(),
        "ts": 0.01,
        "dictionary": DICTIONARY,
        "mu": 1e-3,
        "warmup": 200,
    }))
    .expect("a valid request");
    StreamDefinition::from_request(request.into(), 300, || unreachable!()).expect("a valid definition")
}

fn shape() -> Shape {
    Shape::of(&definition(), 100_000)
}

fn json_body(rows: usize) -> Vec<u8> {
    let x: Vec<Vec<f64>> = values(rows).chunks(CHANNELS).map(<[f64]>::to_vec).collect();
    serde_json::to_vec(&serde_json::json!({"seq": 7, "t0": 12.5, "x": x})).expect("serialisable")
}

fn csv_body(rows: usize) -> Vec<u8> {
    let mut text = String::from("t,c0,c1\n");
    for (k, row) in values(rows).chunks(CHANNELS).enumerate() {
        text.push_str(&format!("{},{},{}\n", 12.5 + k as f64 * 0.01, row[0], row[1]));
    }
    text.into_bytes()
}

fn protobuf_body(rows: usize) -> Vec<u8> {
    pb::SampleBatch { seq: 7, t0: Some(12.5), channels: CHANNELS as u32, x: values(rows), ..Default::default() }
        .encode_to_vec()
}

#[divan::bench(args = ROWS)]
fn parse_json(bencher: Bencher, rows: usize) {
    let (body, shape) = (json_body(rows), shape());
    bencher.counter(ItemsCount::new(rows)).bench(|| batch::parse_json(black_box(&body), shape).expect("a valid batch"));
}

/// The general serde path (what every JSON batch took before the single-pass parser, and
/// what a batch the fast path declines still takes): the same work, for the ratio.
#[divan::bench(args = ROWS)]
fn parse_json_serde(bencher: Bencher, rows: usize) {
    let (body, shape) = (json_body(rows), shape());
    bencher.counter(ItemsCount::new(rows)).bench(|| {
        let decoded: batch::SampleBatchBody = serde_json::from_slice(black_box(&body)).expect("valid JSON");
        batch::from_body(decoded, shape).expect("a valid batch")
    });
}

#[divan::bench(args = ROWS)]
fn parse_json_bytes(bencher: Bencher, rows: usize) {
    let (body, shape) = (json_body(rows), shape());
    bencher
        .counter(BytesCount::new(body.len()))
        .bench(|| batch::parse_json(black_box(&body), shape).expect("a valid batch"));
}

#[divan::bench(args = ROWS)]
fn parse_csv(bencher: Bencher, rows: usize) {
    let (body, definition) = (csv_body(rows), definition());
    bencher.counter(ItemsCount::new(rows)).bench(|| {
        koopstream::wire::csv::parse_batch(black_box(&body), 7, &definition, 100_000).expect("a valid batch")
    });
}

#[divan::bench(args = ROWS)]
fn parse_protobuf(bencher: Bencher, rows: usize) {
    let (body, shape) = (protobuf_body(rows), shape());
    bencher
        .counter(ItemsCount::new(rows))
        .bench(|| batch::parse_protobuf(black_box(&body), "bench", shape).expect("a valid batch"));
}

#[divan::bench(args = ROWS)]
fn encode_log_entry(bencher: Bencher, rows: usize) {
    let batch = SampleBatch { seq: 7, epoch: None, timing: Timing::Start(12.5), rows, x: values(rows), u: Vec::new() };
    bencher.counter(ItemsCount::new(rows)).bench(|| codec::encode_batch(black_box(&batch)));
}

/// A stream's state past warm-up.
fn ready_core() -> Core {
    let definition = definition();
    let mut core = Core::new(koopman::Estimator::new(definition.estimator_config()).expect("a valid config"));
    let warmup =
        SampleBatch { seq: 1, epoch: None, timing: Timing::Start(0.0), rows: 400, x: values(400), u: Vec::new() };
    core.apply(&warmup, definition.ts).expect("a new batch");
    core
}

/// Applying a batch by the stream's rules (Core::apply: time stamps, gaps, the estimator's
/// update per sample): the floor under every transport.
#[divan::bench(args = ROWS)]
fn apply_batch(bencher: Bencher, rows: usize) {
    let mut core = ready_core();
    let ts = definition().ts;
    let mut seq = 1;
    let data = values(rows);
    bencher.counter(ItemsCount::new(rows)).bench_local(|| {
        seq += 1;
        let batch = SampleBatch { seq, epoch: None, timing: Timing::Continue, rows, x: data.clone(), u: Vec::new() };
        black_box(core.apply(&batch, ts))
    });
}

struct Service {
    runtime: tokio::runtime::Runtime,
    _registry: Arc<Registry>,
    handle: Arc<StreamHandle>,
}

/// A registry with in-memory durability on a two-worker runtime (the service's shape on
/// the benchmark machine) and one stream past warm-up.
fn service() -> Service {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let context = OwnerContext {
        metrics: Arc::new(Metrics::new(0)),
        store: None,
        publish_interval: Duration::from_millis(100),
        snapshot_every: 20_000,
        snapshot_interval: Duration::from_secs(60),
        shared: None,
    };
    let registry = Arc::new(Registry::new(
        context,
        RegistryLimits {
            queue_capacity: 64,
            max_streams: 10,
            stream_memory_bytes: 1 << 30,
            total_memory_bytes: 1 << 32,
            spectra_workers: 1,
        },
    ));
    let handle = runtime.block_on(async {
        let (handle, _) = registry.create(definition()).await.expect("created");
        let warmup =
            SampleBatch { seq: 1, epoch: None, timing: Timing::Start(0.0), rows: 400, x: values(400), u: Vec::new() };
        round_trip(&handle, warmup).await;
        handle
    });
    Service { runtime, _registry: registry, handle }
}

/// Queues a batch on the stream; the receiver yields its acknowledgement.
async fn submit(handle: &StreamHandle, batch: SampleBatch) -> Answer {
    let (reply, answer) = tokio::sync::oneshot::channel();
    handle.submit(Command::Ingest { batch, transport: Transport::Ws, reply }).await.expect("queued");
    answer
}

type Answer = tokio::sync::oneshot::Receiver<Result<IngestAck, koopstream::service::error::DomainError>>;

async fn round_trip(handle: &StreamHandle, batch: SampleBatch) {
    submit(handle, batch).await.await.expect("answered").expect("applied");
}

/// Runs `each` on `count` consecutive one-sample batches per iteration, after the
/// service's warm-up batch (seq 1).
fn bench_one_sample_batches<F: std::future::Future<Output = ()>>(
    bencher: Bencher,
    count: usize,
    mut each: impl FnMut(Arc<StreamHandle>, Vec<SampleBatch>) -> F,
) {
    let service = service();
    let mut seq = 1u64;
    let data = values(1);
    bencher.counter(ItemsCount::new(count)).bench_local(|| {
        let batches = (0..count)
            .map(|_| {
                seq += 1;
                SampleBatch { seq, epoch: None, timing: Timing::Continue, rows: 1, x: data.clone(), u: Vec::new() }
            })
            .collect();
        service.runtime.block_on(each(service.handle.clone(), batches))
    });
}

/// One command round trip through the owner task for a one-sample batch: queue, wake-up,
/// apply, metrics, publication, reply. 100 round trips per iteration, so the runtime's
/// `block_on` does not dominate.
#[divan::bench]
fn owner_round_trip(bencher: Bencher) {
    bench_one_sample_batches(bencher, 100, |handle, batches| async move {
        for batch in batches {
            round_trip(&handle, batch).await;
        }
    });
}

/// The owner's cost per command when commands queue up (as under load): 100 one-sample
/// batches submitted back to back, then all replies awaited. Unlike the round trip above,
/// this is not dominated by thread wake-ups, so it shows the per-command work (and the
/// grouping of queued batches into one log write and one publication).
#[divan::bench]
fn owner_pipelined(bencher: Bencher) {
    bench_one_sample_batches(bencher, 100, |handle, batches| async move {
        let mut answers = Vec::with_capacity(batches.len());
        for batch in batches {
            answers.push(submit(&handle, batch).await);
        }
        for answer in answers {
            answer.await.expect("answered").expect("applied");
        }
    });
}
